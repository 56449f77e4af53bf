//! The docker platform: each node (brokers and the controller) in its own container on a private
//! bridge network created for the run, at a fixed address, so that it can be killed
//! (`docker kill -s KILL`), restarted (`docker start`) and paused (`docker pause`) like a host.
//! Clients stay on this host and talk to the containers' addresses directly.
//!
//! The image is built here, `FROM scratch`, from the broker binary and the libraries it links
//! (no registry is needed), tagged by a hash of both, and reused while they do not change. Each
//! node's `nodes/<name>/data` and `config.toml` are bind-mounted into its container, so data,
//! dumps and logs land in the run directory. Everything created carries the label
//! `org.kaos.run=<id>` and is removed at the end of the run, after a failure and on Ctrl-C (the
//! `Drop` of [`DockerPlatform`]).
//!
//! Power loss works as on the local platform: `kaos lazyfs` (a child of the harness) serves each
//! broker's `nodes/<n>/data` from `nodes/<n>/disk`, mounted before the container's bind mount is
//! made, so that the broker in the container writes through it; a power loss is a
//! `docker kill -s KILL`, then SIGUSR1 to that node's lazyfs.
//!
//! The engine is driven through the `docker` CLI, which negotiates the API version with any
//! engine.

use super::local::{power_losses, probe, read_ready, start_lazyfs, Role};
use crate::limits::{
    DOCKER_COMMAND_TIMEOUT_MS, DOCKER_SUBNET_ATTEMPTS_MAX, LAZYFS_READY_TIMEOUT_MS, NODE_PROBE_INTERVAL_MS, NODE_START_TIMEOUT_MS, NODE_STOP_TIMEOUT_MS,
};
use crate::process;
use crate::scenario::Cluster;
use anyhow::{bail, Context, Result};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Every container and network a run creates carries this label, valued with the run's id.
pub const RUN_LABEL: &str = "org.kaos.run";
/// … and this one, valued with the run directory (so that a test can find what its run created).
pub const RUN_DIR_LABEL: &str = "org.kaos.run_dir";
/// Images built by kaos carry this label (`docker image prune --filter label=org.kaos.component`).
pub const IMAGE_LABEL: &str = "org.kaos.component=broker";
/// The port every node listens on inside its container.
pub const NODE_PORT: u16 = 9092;
/// The Dockerfile, shared with `docker/build-image.sh`.
const DOCKERFILE: &str = include_str!("../../../docker/Dockerfile");

pub struct Node {
    pub name: String,
    pub role: Role,
    pub addr: SocketAddr,
    dir: PathBuf,
    container: String,
    created: bool,
    running: bool,
    paused: bool,
    /// The `kaos lazyfs` daemon serving this node's data directory, when the cluster runs on it.
    lazyfs: Option<tokio::process::Child>,
}

impl Node {
    pub fn is_running(&self) -> bool {
        self.running
    }
    pub fn is_paused(&self) -> bool {
        self.paused
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
}

/// Brokers `n1`…`nN` at indexes 0…N-1, then the controller (if any) last, as on the local platform.
pub struct DockerPlatform {
    image: String,
    /// The run's id: the network's name, the containers' name prefix and the label's value.
    id: String,
    run_dir: String,
    network_created: bool,
    pub nodes: Vec<Node>,
    /// With lazyfs: the kaos binary (it serves `kaos lazyfs`) and the seed for torn writes.
    lazyfs: Option<(PathBuf, u64)>,
}

impl DockerPlatform {
    /// Checks the engine, builds or reuses the image, creates the network and lays out the nodes
    /// under `nodes_dir` with their addresses and config files. Nothing is started yet.
    pub async fn new(broker_bin: &Path, nodes_dir: &Path, cluster: &Cluster) -> Result<Self> {
        check_engine().await?;
        let image = ensure_image(broker_bin).await?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let id = format!("kaos-{}-{:x}", std::process::id(), nanos & 0xffff_ffff);
        let run_dir = std::path::absolute(nodes_dir.parent().unwrap_or(nodes_dir)).unwrap_or_else(|_| nodes_dir.to_path_buf());
        // Built before anything is created, so that its Drop removes whatever exists if a later
        // step fails.
        let mut platform = DockerPlatform { image, id, run_dir: run_dir.display().to_string(), network_created: false, nodes: Vec::new(), lazyfs: None };
        let subnet = platform.create_network().await?;
        let ip = |host: u8| SocketAddr::from((Ipv4Addr::new(subnet[0], subnet[1], subnet[2], host), NODE_PORT));
        for k in 1..=cluster.brokers {
            let name = format!("n{k}");
            let mut config = cluster.settings.clone();
            // As on the local platform: Kafka's default of 3 cannot be met by a smaller cluster.
            config.entry("offsets.topic.replication.factor").or_insert(toml::Value::Integer(i64::from(cluster.brokers.min(3))));
            if let Some(overrides) = cluster.node_settings.get(&name) {
                config.extend(overrides.clone());
            }
            let addr = ip(10 + k as u8);
            config.entry("advertised.listener").or_insert_with(|| toml::Value::String(addr.to_string()));
            platform.lay_out(nodes_dir, name, Role::Broker { node_id: k }, addr, config)?;
        }
        if cluster.has_controller() {
            platform.lay_out(nodes_dir, "controller".into(), Role::Controller, ip(10), cluster.controller_settings.clone())?;
        }
        Ok(platform)
    }

    fn lay_out(&mut self, nodes_dir: &Path, name: String, role: Role, addr: SocketAddr, config: toml::Table) -> Result<()> {
        let dir = std::path::absolute(nodes_dir.join(&name)).context("resolving the nodes directory")?;
        std::fs::create_dir_all(dir.join("data")).with_context(|| format!("creating {}", dir.display()))?;
        let text = toml::to_string(&config).context("writing a node config")?;
        std::fs::write(dir.join("config.toml"), text).with_context(|| format!("writing {}/config.toml", dir.display()))?;
        let container = format!("{}-{name}", self.id);
        self.nodes.push(Node { name, role, addr, dir, container, created: false, running: false, paused: false, lazyfs: None });
        Ok(())
    }

    /// A bridge network with a /24 of our own choosing (fixed addresses need one), trying other
    /// /24s while the engine says they overlap with an existing network.
    async fn create_network(&mut self) -> Result<[u8; 3]> {
        let mut third = (std::process::id() % 250) as u8;
        let mut last_error = String::new();
        for _ in 0..DOCKER_SUBNET_ATTEMPTS_MAX {
            let subnet = [172, 29, third];
            let cidr = format!("{}.{}.{}.0/24", subnet[0], subnet[1], subnet[2]);
            let result = docker(&[
                "network", "create", "--driver", "bridge", "--subnet", &cidr,
                "--label", &self.label(), "--label", &self.dir_label(), &self.id,
            ])
            .await;
            match result {
                Ok(_) => {
                    self.network_created = true;
                    return Ok(subnet);
                }
                Err(e) if format!("{e:#}").contains("overlap") => {
                    last_error = format!("{e:#}");
                    third = third.wrapping_add(37) % 250;
                }
                Err(e) => return Err(e).context("creating the run's docker network"),
            }
        }
        bail!("no free /24 in 172.29.0.0/16 for the run's docker network after {DOCKER_SUBNET_ATTEMPTS_MAX} attempts: {last_error}")
    }

    fn label(&self) -> String {
        format!("{RUN_LABEL}={}", self.id)
    }
    fn dir_label(&self) -> String {
        format!("{RUN_DIR_LABEL}={}", self.run_dir)
    }

    /// Serve every broker's data directory from `kaos lazyfs` (see the module's documentation).
    /// Call before the first start.
    pub fn use_lazyfs(&mut self, kaos_bin: &Path, seed: u64) {
        self.lazyfs = Some((kaos_bin.to_path_buf(), seed));
    }

    pub fn brokers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| matches!(n.role, Role::Broker { .. }))
    }

    pub fn bootstrap(&self) -> String {
        self.brokers().map(|n| n.addr.to_string()).collect::<Vec<_>>().join(",")
    }

    fn controller_addr(&self) -> Option<SocketAddr> {
        self.nodes.iter().find(|n| n.role == Role::Controller).map(|n| n.addr)
    }

    pub fn broker_index(&self, node_id: i32) -> Option<usize> {
        self.nodes.iter().position(|n| n.role == Role::Broker { node_id: node_id as u32 })
    }

    /// Creates and starts node `i`'s container the first time, starts it again after a kill;
    /// waits until it answers ApiVersions on its address. Returns the host PID of its process.
    pub async fn start(&mut self, i: usize) -> Result<u32> {
        let controller = self.controller_addr();
        let (label, dir_label, image, network) = (self.label(), self.dir_label(), self.image.clone(), self.id.clone());
        if let (Some((kaos_bin, seed)), Role::Broker { .. }) = (&self.lazyfs, self.nodes[i].role) {
            if self.nodes[i].lazyfs.is_none() {
                let daemon = start_lazyfs(kaos_bin, *seed, &self.nodes[i].name, &self.nodes[i].dir).await?;
                self.nodes[i].lazyfs = Some(daemon);
            }
        }
        let node = &mut self.nodes[i];
        if node.running {
            bail!("node {} is already running", node.name);
        }
        if node.created {
            docker(&["start", &node.container]).await.with_context(|| format!("restarting the container of node {}", node.name))?;
        } else {
            let ip = node.addr.ip().to_string();
            let data = format!("{}:/data", node.data_dir().display());
            let config = format!("{}:/etc/kaos/config.toml:ro", node.dir.join("config.toml").display());
            // The broker runs as the harness's user, so the run directory stays the user's.
            let user = format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid());
            let mut args: Vec<String> = ["run", "--detach", "--name", &node.container, "--hostname", &node.name, "--label", &label, "--label", &dir_label]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend(["--network", &network, "--ip", &ip, "--user", &user, "--volume", &data, "--volume", &config, &image].map(String::from));
            match node.role {
                Role::Controller => args.push("controller".into()),
                Role::Broker { node_id } => {
                    args.extend(["--node-id".into(), node_id.to_string()]);
                    if let Some(c) = controller {
                        args.extend(["--controller".into(), c.to_string()]);
                    }
                }
            }
            args.extend(["--listen", &format!("0.0.0.0:{NODE_PORT}"), "--data-dir", "/data", "--config", "/etc/kaos/config.toml"].map(String::from));
            node.created = true;
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            docker(&args).await.with_context(|| format!("starting the container of node {}", node.name))?;
        }
        node.running = true;
        let deadline = Instant::now() + Duration::from_millis(NODE_START_TIMEOUT_MS);
        loop {
            if probe(node.addr).await {
                break;
            }
            if !container_running(&node.container).await {
                node.running = false;
                save_log(node).await;
                bail!("node {} exited while starting; see {}", node.name, node.log_path().display());
            }
            if Instant::now() > deadline {
                save_log(node).await;
                bail!("node {} did not answer on {} within {NODE_START_TIMEOUT_MS} ms; see {}", node.name, node.addr, node.log_path().display());
            }
            tokio::time::sleep(Duration::from_millis(NODE_PROBE_INTERVAL_MS)).await;
        }
        pid(&node.container).await
    }

    /// `docker kill -s KILL`, then waits until the engine has seen the container exit (so that
    /// it can be started again). Returns the PID it had.
    pub async fn kill(&mut self, i: usize) -> Result<Option<u32>> {
        let node = &mut self.nodes[i];
        if !node.running {
            return Ok(None);
        }
        let pid = pid(&node.container).await.ok();
        node.running = false;
        if node.paused {
            // The engine refuses to signal a paused container: thaw it, then kill at once.
            docker(&["unpause", &node.container]).await.with_context(|| format!("unpausing node {} to kill it", node.name))?;
        }
        node.paused = false;
        docker(&["kill", "--signal", "KILL", &node.container]).await.with_context(|| format!("killing node {}", node.name))?;
        docker(&["wait", &node.container]).await.with_context(|| format!("waiting for node {} to exit", node.name))?;
        Ok(pid)
    }

    /// Power loss of node `i`: `docker kill -s KILL` (and wait for the exit, so that its last
    /// write has been handled), then make its lazyfs drop everything not fsynced. Returns the PID
    /// and what lazyfs says it dropped.
    pub async fn power_loss(&mut self, i: usize) -> Result<(Option<u32>, String)> {
        let pid = self.kill(i).await?;
        let node = &self.nodes[i];
        let daemon = node.lazyfs.as_ref().and_then(|d| d.id()).with_context(|| format!("node {} has no lazyfs", node.name))?;
        let ready = node.dir.join("lazyfs.ready");
        let before = power_losses(&ready);
        process::signal_group(daemon, nix::sys::signal::Signal::SIGUSR1).context("signalling lazyfs")?;
        let deadline = Instant::now() + Duration::from_millis(LAZYFS_READY_TIMEOUT_MS);
        loop {
            if power_losses(&ready) > before {
                let report = read_ready(&ready).and_then(|v| v.get("last_power_loss").map(|r| r.to_string())).unwrap_or_default();
                return Ok((pid, report));
            }
            if Instant::now() > deadline {
                bail!("lazyfs of node {} did not report the power loss within {LAZYFS_READY_TIMEOUT_MS} ms; see {}", node.name, node.dir.join("lazyfs.log").display());
            }
            tokio::time::sleep(Duration::from_millis(NODE_PROBE_INTERVAL_MS)).await;
        }
    }

    /// `docker pause` (every process of the container frozen by the cgroup freezer) or
    /// `docker unpause`; returns the PID.
    pub async fn pause(&mut self, i: usize, pause: bool) -> Result<Option<u32>> {
        let node = &mut self.nodes[i];
        if !node.running || node.paused == pause {
            return Ok(None);
        }
        docker(&[if pause { "pause" } else { "unpause" }, &node.container])
            .await
            .with_context(|| format!("{} node {}", if pause { "pausing" } else { "unpausing" }, node.name))?;
        node.paused = pause;
        pid(&node.container).await.map(Some)
    }

    /// Stops every node gracefully (`docker stop`: SIGTERM, then SIGKILL after a grace period),
    /// unpausing it first, and saves every container's output to the node's log file.
    pub async fn stop_all(&mut self) {
        let grace = (NODE_STOP_TIMEOUT_MS / 1000).to_string();
        for node in &mut self.nodes {
            if node.paused {
                if let Err(e) = docker(&["unpause", &node.container]).await {
                    eprintln!("kaos: unpausing node {}: {e:#}", node.name);
                }
                node.paused = false;
            }
            if node.running {
                if let Err(e) = docker(&["stop", "--time", &grace, &node.container]).await {
                    eprintln!("kaos: stopping node {}: {e:#}", node.name);
                }
                node.running = false;
            }
            if node.created {
                save_log(node).await;
            }
        }
    }

    /// Removes every container and the network of this run (found by label, so that a container
    /// whose creation was interrupted goes too), then stops every lazyfs daemon and makes sure no
    /// mount is left.
    pub async fn remove_all(&mut self) {
        match remove_labelled(&self.label(), self.network_created.then_some(self.id.as_str())).await {
            Ok(()) => {
                self.network_created = false;
                for node in &mut self.nodes {
                    node.created = false;
                    node.running = false;
                }
            }
            Err(e) => eprintln!("kaos: removing the run's containers: {e:#}"),
        }
        for node in &mut self.nodes {
            if let Some(mut daemon) = node.lazyfs.take() {
                if let Err(e) = process::stop(&mut daemon, Duration::from_millis(NODE_STOP_TIMEOUT_MS)).await {
                    eprintln!("kaos: stopping lazyfs of node {}: {e}", node.name);
                }
                if let Err(e) = crate::lazyfs::unmount(&node.data_dir()) {
                    eprintln!("kaos: unmounting {}: {e}", node.data_dir().display());
                }
            }
        }
    }
}

impl Drop for DockerPlatform {
    /// The error and Ctrl-C path: synchronous, best effort, by label.
    fn drop(&mut self) {
        self.remove_now();
        for node in &self.nodes {
            if let Some(daemon) = &node.lazyfs {
                process::kill_now(daemon);
                let _ = crate::lazyfs::unmount(&node.data_dir());
            }
        }
    }
}

impl DockerPlatform {
    fn remove_now(&self) {
        if !self.network_created && !self.nodes.iter().any(|n| n.created) {
            return;
        }
        let filter = format!("label={}", self.label());
        let ids = std::process::Command::new("docker").args(["ps", "--all", "--quiet", "--filter", &filter]).stdin(Stdio::null()).output();
        if let Ok(out) = ids {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker").args(["rm", "--force", "--volumes"]).args(&ids).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
            }
        }
        if self.network_created {
            let _ = std::process::Command::new("docker").args(["network", "rm", &self.id]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// Removes the containers carrying `label` (`key=value`), then the network `network`.
async fn remove_labelled(label: &str, network: Option<&str>) -> Result<()> {
    let ids = docker(&["ps", "--all", "--quiet", "--filter", &format!("label={label}")]).await?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "--force", "--volumes"];
        args.extend(&ids);
        docker(&args).await?;
    }
    if let Some(network) = network {
        docker(&["network", "rm", network]).await?;
    }
    Ok(())
}

/// Writes the container's whole output (every start of it) to the node's log file.
async fn save_log(node: &Node) {
    let path = node.log_path();
    let result = async {
        let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let status = tokio::process::Command::new("docker")
            .args(["logs", &node.container])
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .status()
            .await?;
        anyhow::ensure!(status.success(), "docker logs ended with {status}");
        Ok(())
    }
    .await;
    if let Err(e) = result {
        eprintln!("kaos: saving the log of node {}: {e:#}", node.name);
    }
}

async fn container_running(container: &str) -> bool {
    docker(&["inspect", "--format", "{{.State.Running}}", container]).await.is_ok_and(|s| s.trim() == "true")
}

async fn pid(container: &str) -> Result<u32> {
    let text = docker(&["inspect", "--format", "{{.State.Pid}}", container]).await?;
    text.trim().parse().with_context(|| format!("docker inspect gave PID {text:?} for {container}"))
}

/// Runs `docker ARGS`, bounded in time; its standard output, or an error with its standard error.
pub async fn docker(args: &[&str]) -> Result<String> {
    let child = tokio::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("the docker CLI is not installed (the docker platform needs it and a running Docker engine)")
            } else {
                anyhow::Error::from(e).context("running docker")
            }
        })?;
    let out = tokio::time::timeout(Duration::from_millis(DOCKER_COMMAND_TIMEOUT_MS), child.wait_with_output())
        .await
        .with_context(|| format!("`docker {}` did not finish within {DOCKER_COMMAND_TIMEOUT_MS} ms", args.join(" ")))??;
    if !out.status.success() {
        bail!("`docker {}` failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails with a clear message when no Docker engine answers.
pub async fn check_engine() -> Result<()> {
    docker(&["version", "--format", "{{.Server.Version}}"])
        .await
        .context("no Docker engine is reachable (the docker platform needs one: start dockerd, or check DOCKER_HOST)")?;
    Ok(())
}

/// The broker image for `broker_bin`: `kaos-broker:<hash of the binary and the Dockerfile>`,
/// built `FROM scratch` from the binary and the shared libraries `ldd` names unless the engine
/// already has it. Returns the tag.
pub async fn ensure_image(broker_bin: &Path) -> Result<String> {
    let bytes = std::fs::read(broker_bin).with_context(|| format!("reading the broker binary {}", broker_bin.display()))?;
    let tag = format!("kaos-broker:{:016x}", fnv1a(&[&bytes, DOCKERFILE.as_bytes()]));
    if docker(&["image", "inspect", "--format", "{{.Id}}", &tag]).await.is_ok() {
        return Ok(tag);
    }
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let stage = std::env::temp_dir().join(format!("kaos-image-{}-{nanos:x}", std::process::id()));
    let result = build_image(broker_bin, &stage, &tag).await;
    let _ = std::fs::remove_dir_all(&stage);
    result.with_context(|| format!("building the broker image {tag} from {}", broker_bin.display()))?;
    Ok(tag)
}

async fn build_image(broker_bin: &Path, stage: &Path, tag: &str) -> Result<()> {
    let rootfs = stage.join("rootfs");
    for dir in ["usr/local/bin", "data", "tmp", "etc/kaos"] {
        std::fs::create_dir_all(rootfs.join(dir)).with_context(|| format!("creating {}", rootfs.join(dir).display()))?;
    }
    std::fs::copy(broker_bin, rootfs.join("usr/local/bin/kaos-broker")).context("copying the broker binary")?;
    for lib in linked_libraries(broker_bin).await? {
        let target = rootfs.join(lib.strip_prefix("/").unwrap_or(&lib));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        // std::fs::copy follows symbolic links: the loader finds the real file under the name.
        std::fs::copy(&lib, &target).with_context(|| format!("copying {}", lib.display()))?;
    }
    std::fs::write(stage.join("Dockerfile"), DOCKERFILE).context("writing the Dockerfile")?;
    let stage_text = stage.display().to_string();
    docker(&["build", "--quiet", "--label", IMAGE_LABEL, "--tag", tag, &stage_text]).await?;
    Ok(())
}

/// The shared libraries (and the loader) that `ldd` says the binary needs; none for a static one.
async fn linked_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = tokio::process::Command::new("ldd")
        .arg(bin)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running ldd (from libc-bin) to find the broker's shared libraries")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
        if all.contains("not a dynamic executable") || all.contains("statically linked") {
            return Ok(Vec::new());
        }
        bail!("ldd {} failed: {}", bin.display(), all.trim());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// FNV-1a, 64 bits, over the parts in order: a stable content hash for the image tag.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_hash_follows_the_content() {
        assert_eq!(fnv1a(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"ab", b"d"]));
    }
}
