//! The local platform: each broker node is a child process in its own process group, with its data
//! directory, config file and log under the run directory's `nodes/<name>/`. A node keeps its port
//! across restarts.
//!
//! With [`LocalPlatform::use_network`], each node runs in a network namespace of its own
//! ([`crate::netns`]) with its own address, and (for link faults) each broker behind a
//! [`Proxy`] on the host side that it advertises.

pub use super::nodes::Role;
use super::nodes::{self, Lazyfs, Spot};
use crate::cluster::Cluster;
use crate::limits::{NODE_PROBE_INTERVAL_MS, NODE_START_TIMEOUT_MS, NODE_STOP_TIMEOUT_MS};
use crate::netns::{Endpoint, Network};
use crate::process;
use crate::profile::{Broker, NodeRole, Vars};
use crate::proxy::{Proxy, Sources};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

pub struct Node {
    spot: Spot,
    /// The node's number (1…N for brokers, 0 for the controller).
    k: u32,
    /// The address the broker advertises (its own, or its proxy's with link faults).
    advertised: SocketAddr,
    /// A second address of the node's own ({aux_listen} in a profile).
    aux: SocketAddr,
    /// The scenario's settings for this node (the profile's defaults are added when written).
    settings: toml::Table,
    child: Option<Child>,
    /// Stopped by SIGSTOP (and not yet woken by SIGCONT).
    paused: bool,
}

super::nodes::derefs_to_spot!(Node);

impl Node {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
    pub fn is_paused(&self) -> bool {
        self.paused
    }
    /// The process id of the running node (its process group leader).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }
}

/// Brokers `n1`…`nN` at indexes 0…N-1, then the controller (if any) last.
pub struct LocalPlatform {
    broker: Broker,
    pub nodes: Vec<Node>,
    /// With lazyfs (power loss): how it serves the brokers' data directories.
    lazyfs: Option<Lazyfs>,
    /// The proxy in front of each broker (by node index), when the run has link faults.
    proxies: Vec<Option<Proxy>>,
    /// The nodes' namespaces; last, so that it is removed after the nodes are killed.
    network: Option<Network>,
}

impl LocalPlatform {
    /// Lays out the cluster's nodes under `nodes_dir`, each with its settings file (as the
    /// broker's profile writes it) and a free port.
    pub fn new(broker: &Broker, nodes_dir: &Path, cluster: &Cluster) -> Result<Self> {
        let mut nodes = Vec::new();
        for k in 1..=cluster.brokers {
            let name = format!("n{k}");
            let settings = cluster.broker_settings(&name);
            let node_id = broker.profile.node_id_of(k)?;
            nodes.push(lay_out(
                nodes_dir,
                name,
                Role::Broker { node_id },
                k,
                settings,
            )?);
        }
        if cluster.has_controller() {
            let settings = cluster.controller_settings.clone();
            nodes.push(lay_out(
                nodes_dir,
                "controller".into(),
                Role::Controller,
                0,
                settings,
            )?);
        }
        let platform = LocalPlatform {
            broker: broker.clone(),
            nodes,
            lazyfs: None,
            proxies: Vec::new(),
            network: None,
        };
        for i in 0..platform.nodes.len() {
            platform.write_settings(i)?;
        }
        Ok(platform)
    }

    /// The broker profile the nodes run.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The template variables of node `i` (see [`crate::profile::VARIABLES`]).
    pub fn vars(&self, i: usize) -> Vars {
        let place = |j: usize| {
            let n = &self.nodes[j];
            nodes::Place {
                k: n.k,
                listen: n.addr,
                advertised: n.advertised,
                aux: n.aux,
            }
        };
        let paths = nodes::Paths {
            data_dir: self.nodes[i].data_dir().display().to_string(),
            dir: Some(self.nodes[i].dir.display().to_string()),
            config: self.config_path(i).display().to_string(),
        };
        nodes::vars(
            &self.nodes,
            i,
            place,
            paths,
            nodes::controller_addr(&self.nodes),
        )
    }

    /// Node `i`'s settings file (whether or not the profile writes one).
    pub fn config_path(&self, i: usize) -> PathBuf {
        self.nodes[i].config_path(&self.broker)
    }

    /// The node's role as the profile knows it.
    fn role(&self, i: usize) -> NodeRole {
        self.nodes[i].role.profile_role()
    }

    /// Writes node `i`'s settings file as its profile says (nothing with format `none`).
    fn write_settings(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        node.write_settings(&self.broker, &node.settings, &self.vars(i))
    }

    /// Asks the broker program to validate node `i`'s settings (the profile's `check`), so that
    /// a setting it would refuse ends the run before anything starts, with its own reason.
    pub async fn check_config(&self, i: usize) -> Result<()> {
        let Some(args) = self.broker.check_args(self.role(i), &self.vars(i))? else {
            return Ok(());
        };
        nodes::check_config(
            &self.broker.program,
            &self.nodes[i].name,
            &args,
            &self.config_path(i),
        )
        .await
    }

    /// Serve every broker's data directory from `kaos lazyfs` (over `nodes/<n>/disk`), so that a
    /// power loss can drop what the broker had not fsynced. Call before the first start.
    pub fn use_lazyfs(&mut self, lazyfs: Lazyfs) {
        self.lazyfs = Some(lazyfs);
    }

    /// Moves every node into a network namespace of its own (see [`crate::netns`]), with its own
    /// address; with `proxies`, starts a proxy on the host side in front of each broker and makes
    /// the broker advertise it. Call before the first start. Needs root, `ip` and `nft`.
    pub async fn use_network(&mut self, proxies: bool) -> Result<()> {
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let mut network = Network::create(&names)?;
        let node_ips: Vec<std::net::Ipv4Addr> =
            (0..names.len()).map(|i| network.node_ip(i)).collect();
        self.proxies = (0..names.len()).map(|_| None).collect();
        for i in 0..self.nodes.len() {
            let addr = SocketAddr::from((network.node_ip(i), self.nodes[i].addr.port()));
            self.nodes[i].addr = addr;
            self.nodes[i].aux = SocketAddr::from((network.node_ip(i), self.nodes[i].aux.port()));
            self.nodes[i].advertised = addr;
            if proxies && matches!(self.nodes[i].role, Role::Broker { .. }) {
                let sources = Sources {
                    node_ips: node_ips.clone(),
                    client_src: network.client_ip(),
                    relay_src: network.relay_ip(),
                };
                let proxy = Proxy::start(
                    SocketAddr::from((network.client_ip(), 0)),
                    addr,
                    Some(sources),
                )
                .await?;
                network.set_proxy_port(i, proxy.addr.port());
                self.nodes[i].advertised = proxy.addr;
                self.proxies[i] = Some(proxy);
            }
        }
        // The settings again, with the addresses in the namespaces (a scenario's own
        // advertised address stays as it wrote it).
        for i in 0..self.nodes.len() {
            self.write_settings(i)?;
        }
        self.network = Some(network);
        Ok(())
    }
    /// The node's namespace name, when the nodes run in namespaces.
    pub fn netns_name(&self, i: usize) -> Option<&str> {
        self.network.as_ref().map(|n| n.netns_name(i))
    }

    /// Drops every packet across each cut until [`Self::heal_network`] (replaces any partition).
    pub fn partition(&mut self, cuts: &[(Vec<Endpoint>, Vec<Endpoint>)]) -> Result<()> {
        self.network
            .as_mut()
            .context("partitions need the nodes in network namespaces")?
            .partition(cuts)
    }

    /// The proxy in front of each broker (by node index), when the run has link faults.
    pub fn proxies(&self) -> &[Option<Proxy>] {
        &self.proxies
    }

    /// Lifts every partition and link fault; true if the run has a network to heal.
    pub fn heal_network(&mut self) -> Result<bool> {
        nodes::lift_link_faults(&self.proxies);
        match self.network.as_mut() {
            Some(network) => network.heal().map(|()| true),
            None => Ok(false),
        }
    }

    /// Stops the proxies and deletes the namespaces (after [`Self::stop_all`]).
    pub fn remove_network(&mut self) -> Result<()> {
        self.proxies.clear();
        match self.network.take() {
            Some(mut network) => network.remove(),
            None => Ok(()),
        }
    }

    pub fn brokers(&self) -> impl Iterator<Item = &Node> {
        nodes::brokers(&self.nodes)
    }

    /// The brokers' addresses as clients should use them (their proxies', when they have one).
    pub fn bootstrap(&self) -> String {
        nodes::bootstrap(&self.nodes, &self.proxies)
    }

    /// The index of the broker with Kafka node id `node_id`.
    pub fn broker_index(&self, node_id: i32) -> Option<usize> {
        nodes::broker_index(&self.nodes, node_id)
    }

    /// Starts node `i` as its profile says and waits until it answers a Kafka Metadata request.
    pub async fn start(&mut self, i: usize) -> Result<u32> {
        self.launch(i, true).await
    }

    /// Starts node `i`; with `wait`, waits until it answers a Metadata request.
    pub async fn launch(&mut self, i: usize, wait: bool) -> Result<u32> {
        let with_controller = nodes::controller_addr(&self.nodes).is_some();
        let launch = self
            .broker
            .command(self.role(i), &self.vars(i), with_controller)?;
        let netns = self.network.as_ref().map(|n| n.netns_path(i));
        self.nodes[i].ensure_lazyfs(self.lazyfs.as_ref()).await?;
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            bail!("node {} is already running", node.name);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())
            .with_context(|| format!("opening {}", node.log_path().display()))?;
        let bin = &launch.program;
        let mut cmd = match &netns {
            Some(ns) => process::command_in_netns(bin, ns)
                .with_context(|| format!("opening {}", ns.display()))?,
            None => process::command(bin),
        };
        cmd.args(&launch.args)
            .envs(&launch.env)
            .current_dir(launch.cwd.as_deref().unwrap_or(&node.dir))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let child = cmd.spawn().with_context(|| {
            format!(
                "starting {} {} for node {}",
                bin.display(),
                launch.args.join(" "),
                node.name
            )
        })?;
        let pid = child.id().unwrap_or(0);
        node.child = Some(child);
        if wait {
            wait_serving(node).await?;
        }
        Ok(pid)
    }

    /// SIGKILLs node `i`; returns the PID it had.
    pub async fn kill(&mut self, i: usize) -> Result<Option<u32>> {
        let node = &mut self.nodes[i];
        let Some(mut child) = node.child.take() else {
            return Ok(None);
        };
        node.paused = false;
        let pid = child.id();
        process::kill(&mut child)
            .await
            .with_context(|| format!("killing node {}", node.name))?;
        Ok(pid)
    }

    /// Stops every lazyfs daemon (after the brokers) and makes sure no mount is left.
    pub async fn unmount_all(&mut self) {
        for node in &mut self.nodes {
            node.stop_lazyfs().await;
        }
    }

    /// Sends SIGSTOP (`pause = true`) or SIGCONT to node `i`'s process group; returns its PID.
    pub fn pause(&mut self, i: usize, pause: bool) -> Result<Option<u32>> {
        let node = &mut self.nodes[i];
        let Some(pid) = node.child.as_ref().and_then(|c| c.id()) else {
            return Ok(None);
        };
        process::pause_group(pid, pause, &format!("node {}", node.name))?;
        node.paused = pause;
        Ok(Some(pid))
    }

    /// The nodes whose process ended on its own since the last look (not by a kill of the
    /// nemesis, which reaps what it kills), with how each ended; each is down from now on.
    pub fn exited(&mut self) -> Vec<(usize, std::process::ExitStatus)> {
        let mut ended = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let status = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = status {
                node.child = None;
                node.paused = false;
                ended.push((i, status));
            }
        }
        ended
    }

    /// Stops every node gracefully (SIGTERM, then SIGKILL after a grace period). A paused node is
    /// woken first so that it can stop.
    pub async fn stop_all(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                if let Some(pid) = child.id() {
                    let _ = process::signal_group(pid, nix::sys::signal::Signal::SIGCONT);
                }
                node.paused = false;
                if let Err(e) =
                    process::stop(&mut child, Duration::from_millis(NODE_STOP_TIMEOUT_MS)).await
                {
                    eprintln!("kaos: stopping node {}: {e}", node.name);
                }
            }
        }
    }
}

impl Drop for LocalPlatform {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(child) = &node.child {
                process::kill_now(child);
            }
        }
        for node in &self.nodes {
            node.kill_lazyfs_now();
        }
    }
}

fn lay_out(
    nodes_dir: &Path,
    name: String,
    role: Role,
    k: u32,
    settings: toml::Table,
) -> Result<Node> {
    let dir = nodes_dir.join(&name);
    std::fs::create_dir_all(dir.join("data"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let addr = free_port()?;
    Ok(Node {
        spot: Spot::new(name, role, addr, dir),
        k,
        advertised: addr,
        aux: free_port()?,
        settings,
        child: None,
        paused: false,
    })
}

fn free_port() -> Result<SocketAddr> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?)
}

/// Polls the node with a Kafka Metadata request until it answers, it exits, or time runs out.
async fn wait_serving(node: &mut Node) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(NODE_START_TIMEOUT_MS);
    loop {
        if let Some(child) = node.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                node.child = None;
                bail!(
                    "node {} exited while starting ({status}):\n  {}\n(the whole log: {})",
                    node.name,
                    super::log_tail(&node.log_path()),
                    node.log_path().display()
                );
            }
        }
        if probe(node.addr).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "node {} did not answer on {} within {} ms; see {}",
                node.name,
                node.addr,
                NODE_START_TIMEOUT_MS,
                node.log_path().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(NODE_PROBE_INTERVAL_MS)).await;
    }
}

/// One Kafka Metadata round trip (v4, for no topic: every Kafka-compatible broker answers it, Kafka
/// 4 included, which dropped v0–v3): true when a response with our correlation id comes back.
pub async fn probe(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        // size 15; api_key 3, version 4, correlation id 7, null client id; an empty topic array,
        // allow_auto_topic_creation false.
        let request: [u8; 19] = [
            0, 0, 0, 15, 0, 3, 0, 4, 0, 0, 0, 7, 0xff, 0xff, 0, 0, 0, 0, 0,
        ];
        s.write_all(&request).await.ok()?;
        let mut head = [0u8; 8];
        s.read_exact(&mut head).await.ok()?;
        (head[4..8] == [0, 0, 0, 7]).then_some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(()))
    )
}

/// The local platform can do everything kaos knows how to do (partitions and `isolate` steps
/// in network namespaces it creates, power loss with lazyfs).
pub fn can(capability: super::capability::Capability) -> bool {
    use super::capability::Capability as C;
    match capability {
        C::SignalProcesses | C::ControlNodes | C::PowerLoss | C::DropCaches => true,
        C::Partitions | C::LinkFaults | C::IsolateSteps => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default profile with `kaos-broker` beside the test binary's directory
    /// (target/<profile>/deps/..).
    fn broker_bin() -> Broker {
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target/<profile>");
        let bin = dir.join("kaos-broker");
        assert!(
            bin.is_file(),
            "{} is missing: build the workspace (cargo test --workspace builds it)",
            bin.display()
        );
        Broker::default_with(Some(&bin)).expect("the default profile")
    }

    fn one_broker() -> Cluster {
        toml::from_str("brokers = 1").expect("cluster")
    }

    #[tokio::test]
    async fn a_node_is_killed_paused_resumed_and_restarted_for_real() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut platform =
            LocalPlatform::new(&broker_bin(), tmp.path(), &one_broker()).expect("lay out");
        let addr = platform.nodes[0].addr;
        platform.start(0).await.expect("start");
        assert!(probe(addr).await, "a started node answers");

        let pid = platform.pause(0, true).expect("pause").expect("running");
        // The signal is delivered asynchronously: wait (bounded) for the stopped state.
        let state = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or("?")
                .to_string()
        };
        let mut seen = state(pid);
        for _ in 0..200 {
            if seen == "T" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            seen = state(pid);
        }
        assert_eq!(seen, "T", "SIGSTOP stops the process");
        assert!(!probe(addr).await, "a paused node answers nothing");
        platform.pause(0, false).expect("resume");
        assert!(probe(addr).await, "a resumed node answers again");

        let killed = platform
            .kill(0)
            .await
            .expect("kill")
            .expect("it was running");
        assert!(
            !std::path::Path::new(&format!("/proc/{killed}")).exists(),
            "SIGKILLed and reaped"
        );
        assert!(!probe(addr).await, "a killed node answers nothing");
        platform.start(0).await.expect("restart");
        assert!(
            probe(addr).await,
            "a restarted node answers on the same address"
        );
        platform.stop_all().await;
        assert!(!probe(addr).await);
    }

    #[test]
    fn a_controller_is_laid_out_after_the_brokers_with_its_own_config() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cluster: Cluster = toml::from_str(
            "brokers = 2\nsettings = { \"flush.messages\" = 1 }\n[node_settings.n2]\n\"flush.messages\" = 5\n",
        )
        .expect("cluster");
        let platform = LocalPlatform::new(&broker_bin(), tmp.path(), &cluster).expect("lay out");
        let names: Vec<_> = platform.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2", "controller"]);
        assert_eq!(platform.broker_index(2), Some(1));
        assert_eq!(
            platform.bootstrap().split(',').count(),
            2,
            "only brokers bootstrap clients"
        );
        let n2: toml::Table = toml::from_str(
            &std::fs::read_to_string(tmp.path().join("n2/config.toml")).expect("n2 config"),
        )
        .expect("toml");
        assert_eq!(
            n2.get("flush.messages").and_then(|v| v.as_integer()),
            Some(5)
        );
        let n1: toml::Table = toml::from_str(
            &std::fs::read_to_string(tmp.path().join("n1/config.toml")).expect("n1 config"),
        )
        .expect("toml");
        assert_eq!(
            n1.get("flush.messages").and_then(|v| v.as_integer()),
            Some(1)
        );
        assert!(tmp.path().join("controller/config.toml").is_file());
    }
}
