//! What the local and docker platforms share: a node's place in the run ([`Spot`]: name, role,
//! address, directory and its lazyfs daemon, whichever way the node runs), and what is read off
//! the list of nodes and the proxies in front of them.

use crate::limits::{LAZYFS_READY_TIMEOUT_MS, NODE_PROBE_INTERVAL_MS, NODE_STOP_TIMEOUT_MS};
use crate::process;
use crate::proxy::{LinkFault, Links, Proxy};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Child;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Broker { node_id: u32 },
    Controller,
}

impl Role {
    /// The node's role as its profile knows it.
    pub fn profile_role(self) -> crate::profile::NodeRole {
        match self {
            Role::Broker { .. } => crate::profile::NodeRole::Broker,
            Role::Controller => crate::profile::NodeRole::Controller,
        }
    }
}

/// A node's place in the run: `nodes/<name>/` holds its config, data and log.
pub struct Spot {
    pub name: String,
    pub role: Role,
    pub addr: SocketAddr,
    pub(super) dir: PathBuf,
    /// The `kaos lazyfs` daemon serving its data directory, when the cluster runs on it.
    pub(super) lazyfs: Option<Child>,
}

impl Spot {
    pub fn new(name: String, role: Role, addr: SocketAddr, dir: PathBuf) -> Spot {
        Spot {
            name,
            role,
            addr,
            dir,
            lazyfs: None,
        }
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(match self.role {
            Role::Broker { .. } => "broker.log",
            Role::Controller => "controller.log",
        })
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's settings file, named as `broker`'s profile says (whether or not it writes one).
    pub fn config_path(&self, broker: &crate::profile::Broker) -> PathBuf {
        self.dir.join(&broker.profile.settings.file)
    }

    /// Writes the node's settings file from the scenario's `settings` as `broker`'s profile says,
    /// over the node's template variables `vars` (nothing with format `none`).
    pub(super) fn write_settings(
        &self,
        broker: &crate::profile::Broker,
        settings: &toml::Table,
        vars: &crate::profile::Vars,
    ) -> Result<()> {
        let text = broker.settings_text(self.role.profile_role(), settings, vars)?;
        if let Some(text) = text {
            let path = self.config_path(broker);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// A broker's lazyfs daemon started (once) when the run serves data directories from it.
    pub(super) async fn ensure_lazyfs(&mut self, lazyfs: Option<&Lazyfs>) -> Result<()> {
        if let (Some(lazyfs), Role::Broker { .. }) = (lazyfs, self.role) {
            if self.lazyfs.is_none() {
                let daemon = start_lazyfs(lazyfs, &self.name, &self.dir).await?;
                self.lazyfs = Some(daemon);
            }
        }
        Ok(())
    }

    /// Stops its lazyfs daemon (after the node) and makes sure no mount is left.
    pub(super) async fn stop_lazyfs(&mut self) {
        if let Some(mut daemon) = self.lazyfs.take() {
            let grace = Duration::from_millis(NODE_STOP_TIMEOUT_MS);
            if let Err(e) = process::stop(&mut daemon, grace).await {
                eprintln!("kaos: stopping lazyfs of node {}: {e}", self.name);
            }
            if let Err(e) = crate::lazyfs::unmount(&self.data_dir()) {
                eprintln!("kaos: unmounting {}: {e}", self.data_dir().display());
            }
        }
    }

    /// A power loss's second half, once the node is dead: its lazyfs drops every write not
    /// fsynced. What lazyfs says it dropped.
    pub(super) async fn cut_power(&self) -> Result<String> {
        cut_power(self.lazyfs.as_ref(), &self.name, &self.dir).await
    }

    /// The `Drop` path: SIGKILL to its lazyfs daemon and a best-effort unmount.
    pub(super) fn kill_lazyfs_now(&self) {
        if let Some(daemon) = &self.lazyfs {
            process::kill_now(daemon);
            let _ = crate::lazyfs::unmount(&self.data_dir());
        }
    }
}

/// A platform's node is a [`Spot`] and what that platform adds: its `spot` field, reached by
/// deref (`node.name`, `node.log_path()`).
macro_rules! derefs_to_spot {
    ($node:ty) => {
        impl std::ops::Deref for $node {
            type Target = $crate::platform::nodes::Spot;
            fn deref(&self) -> &Self::Target {
                &self.spot
            }
        }
        impl std::ops::DerefMut for $node {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.spot
            }
        }
    };
}
pub(crate) use derefs_to_spot;

/// The brokers among `nodes`.
pub fn brokers<N: Deref<Target = Spot>>(nodes: &[N]) -> impl Iterator<Item = &N> {
    nodes
        .iter()
        .filter(|n| matches!(n.role, Role::Broker { .. }))
}

/// Where one node is, as its profile's templates see it on a platform.
pub struct Place {
    /// The node's number (1…N for brokers, 0 for the controller).
    pub k: u32,
    pub listen: SocketAddr,
    pub advertised: SocketAddr,
    /// A second address of the node's own ({aux_listen}).
    pub aux: SocketAddr,
}

/// The paths a node's templates name: `dir` is None where the node's directory is not visible to
/// the broker (in a container).
pub struct Paths {
    pub data_dir: String,
    pub dir: Option<String>,
    pub config: String,
}

/// The template variables of node `i` (see [`crate::profile::VARIABLES`]), the same on every
/// platform: `place` says where each node is, `controller` the controller's address as the
/// nodes reach it.
pub fn vars<N: Deref<Target = Spot>>(
    nodes: &[N],
    i: usize,
    place: impl Fn(usize) -> Place,
    paths: Paths,
    controller: Option<SocketAddr>,
) -> crate::profile::Vars {
    let node = &nodes[i];
    let me = place(i);
    let mut v = crate::profile::Vars::default();
    if let Role::Broker { node_id } = node.role {
        v.set("k", me.k);
        v.set("node_id", node_id);
    }
    v.set("name", &node.name);
    v.set("listen", me.listen);
    v.set("listen_host", me.listen.ip());
    v.set("listen_port", me.listen.port());
    v.set("advertised", me.advertised);
    v.set("advertised_host", me.advertised.ip());
    v.set("advertised_port", me.advertised.port());
    v.set("aux_listen", me.aux);
    let mut voters = Vec::new();
    let mut peers = Vec::new();
    for (j, b) in nodes.iter().enumerate() {
        if let Role::Broker { node_id } = b.role {
            let aux = place(j).aux;
            voters.push(format!("{node_id}@{aux}"));
            peers.push(aux.to_string());
        }
    }
    v.set("voters", voters.join(","));
    v.set("aux_peers", peers.join(","));
    if let Some(c) = controller {
        v.set("controller", c);
    }
    v.set("brokers", peers.len());
    v.set("brokers_up_to_3", peers.len().min(3));
    v.set("data_dir", paths.data_dir);
    if let Some(dir) = paths.dir {
        v.set("dir", dir);
    }
    v.set("config", paths.config);
    v
}

/// The brokers' addresses as clients should use them (their proxies', when they have one).
pub fn bootstrap<N: Deref<Target = Spot>>(nodes: &[N], proxies: &[Option<Proxy>]) -> String {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.role, Role::Broker { .. }))
        .map(|(i, n)| {
            proxies
                .get(i)
                .and_then(Option::as_ref)
                .map_or(n.addr, |p| p.addr)
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The controller's address, if the cluster has one.
pub fn controller_addr<N: Deref<Target = Spot>>(nodes: &[N]) -> Option<SocketAddr> {
    nodes
        .iter()
        .find(|n| n.role == Role::Controller)
        .map(|n| n.addr)
}

/// The index of the broker with Kafka node id `node_id`.
pub fn broker_index<N: Deref<Target = Spot>>(nodes: &[N], node_id: i32) -> Option<usize> {
    let node_id = u32::try_from(node_id).ok()?;
    nodes
        .iter()
        .position(|n| n.role == Role::Broker { node_id })
}

/// Puts a link fault on node `i`'s proxy (None lifts it).
pub fn link_fault(
    proxies: &[Option<Proxy>],
    i: usize,
    name: &str,
    fault: Option<LinkFault>,
) -> Result<()> {
    crate::proxy::of_node(proxies, i, name)?.set_fault(fault);
    Ok(())
}

/// Resets the connections through node `i`'s proxy on `links`.
pub fn reset_links(
    proxies: &[Option<Proxy>],
    i: usize,
    name: &str,
    links: Links,
    cut_request: bool,
) -> Result<()> {
    crate::proxy::of_node(proxies, i, name)?.reset(links, cut_request);
    Ok(())
}

/// Lifts the link faults of every proxy.
pub fn lift_link_faults(proxies: &[Option<Proxy>]) {
    for proxy in proxies.iter().flatten() {
        proxy.set_fault(None);
    }
}

/// The broker `program` run with `args` (a profile's `check`) on node `name`'s settings file
/// `config`: the broker's own reason when it refuses a setting. A program that does not know the
/// command (`--broker-bin` of another broker under the default profile) is not asked further.
pub async fn check_config(
    program: &Path,
    name: &str,
    args: &[String],
    config: &Path,
) -> Result<()> {
    let out = crate::process::command(program)
        .args(args)
        .output()
        .await
        .with_context(|| format!("running {} {}", program.display(), args.join(" ")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || stderr.contains("unrecognized subcommand") {
        return Ok(());
    }
    bail!(
        "the broker refuses the settings of node {name} ({}): {}",
        config.display(),
        stderr.trim()
    )
}

/// How a run serves its brokers' data directories from `kaos lazyfs` (power loss).
#[derive(Debug, Clone)]
pub struct Lazyfs {
    /// The kaos binary (it serves `kaos lazyfs`).
    pub kaos_bin: PathBuf,
    /// The seed of the torn-write prefixes.
    pub seed: u64,
    /// `--torn-writes`: a power loss leaves a prefix of each file's last unsynced write
    /// (`[nemesis] torn_writes`).
    pub torn_writes: bool,
}

/// Starts `kaos lazyfs` over `nodes/<n>/disk` at the node's data directory (`dir/data`) and waits
/// for its ready file. The docker platform mounts it the same way, before it bind-mounts `data`.
async fn start_lazyfs(lazyfs: &Lazyfs, name: &str, dir: &Path) -> Result<Child> {
    let backing = dir.join("disk");
    std::fs::create_dir_all(&backing).with_context(|| format!("creating {}", backing.display()))?;
    let ready = dir.join("lazyfs.ready");
    let _ = std::fs::remove_file(&ready);
    let log_path = dir.join("lazyfs.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut command = process::command(&lazyfs.kaos_bin);
    command.arg("lazyfs");
    if lazyfs.torn_writes {
        command.arg("--torn-writes");
    }
    let mut daemon = command
        .arg("--backing")
        .arg(&backing)
        .arg("--mount")
        .arg(dir.join("data"))
        .arg("--ready-file")
        .arg(&ready)
        .arg("--seed")
        .arg(lazyfs.seed.to_string())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("starting kaos lazyfs for node {name}"))?;
    let deadline = Instant::now() + Duration::from_millis(LAZYFS_READY_TIMEOUT_MS);
    while read_ready(&ready).is_none() {
        if let Some(status) = daemon.try_wait()? {
            bail!(
                "kaos lazyfs for node {name} exited ({status}); see {}",
                log_path.display()
            );
        }
        if Instant::now() > deadline {
            process::kill(&mut daemon).await.ok();
            bail!("kaos lazyfs for node {name} was not ready within {LAZYFS_READY_TIMEOUT_MS} ms; see {}", log_path.display());
        }
        tokio::time::sleep(Duration::from_millis(NODE_PROBE_INTERVAL_MS)).await;
    }
    Ok(daemon)
}

/// The lazyfs half of a power loss (the broker is already dead): SIGUSR1 to the node's lazyfs,
/// which drops every write not fsynced, then wait (bounded) for its ready file to count one more
/// power loss. Returns what lazyfs says it dropped.
async fn cut_power(daemon: Option<&Child>, name: &str, dir: &Path) -> Result<String> {
    let daemon = daemon
        .and_then(|d| d.id())
        .with_context(|| format!("node {name} has no lazyfs"))?;
    let ready = dir.join("lazyfs.ready");
    let before = power_losses(&ready);
    process::signal_group(daemon, nix::sys::signal::Signal::SIGUSR1)
        .context("signalling lazyfs")?;
    let deadline = Instant::now() + Duration::from_millis(LAZYFS_READY_TIMEOUT_MS);
    loop {
        if power_losses(&ready) > before {
            return Ok(read_ready(&ready)
                .and_then(|v| v.get("last_power_loss").map(|r| r.to_string()))
                .unwrap_or_default());
        }
        if Instant::now() > deadline {
            bail!("lazyfs of node {name} did not report the power loss within {LAZYFS_READY_TIMEOUT_MS} ms; see {}", dir.join("lazyfs.log").display());
        }
        tokio::time::sleep(Duration::from_millis(NODE_PROBE_INTERVAL_MS)).await;
    }
}

fn read_ready(path: &Path) -> Option<serde_json::Value> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

fn power_losses(ready: &Path) -> u64 {
    read_ready(ready)
        .and_then(|v| v.get("power_losses").and_then(|n| n.as_u64()))
        .unwrap_or(0)
}
