//! The docker platform: each node (brokers and the controller) in its own container on a private
//! bridge network created for the run, at a fixed address, so that it can be killed
//! (`docker kill -s KILL`), restarted (`docker start`) and paused (`docker pause`) like a host.
//! Clients stay on this host and talk to the containers' addresses directly.
//!
//! The image is built here, `FROM scratch`, from the broker profile's program (kaos-broker, or
//! another broker's, e.g. tansu) and the libraries it links (no registry is needed), tagged by a
//! hash of both, and reused while they do not change. Each container runs the program with the
//! profile's arguments over the container's own addresses and paths (it listens on port 9092 of
//! every address, its data directory is `/data`). Each node's `nodes/<name>/data` and settings
//! file (if the profile writes one) are bind-mounted into its container, so data, dumps and logs
//! land in the run directory. Everything created carries the label
//! `org.kaos.run=<id>` and is removed at the end of the run, after a failure and on Ctrl-C (the
//! `Drop` of [`DockerPlatform`]).
//!
//! Power loss works as on the local platform: `kaos lazyfs` (a child of the harness) serves each
//! broker's `nodes/<n>/data` from `nodes/<n>/disk`, mounted before the container's bind mount is
//! made, so that the broker in the container writes through it; a power loss is a
//! `docker kill -s KILL`, then SIGUSR1 to that node's lazyfs.
//!
//! Partitions (`partition_node`, `partition_halves`, `partition_clients`) drop real packets: an
//! nftables table `kaos_<harness pid>` in each affected container's network namespace, loaded from
//! the host with `nsenter -t <container pid> -n nft -f -` (root), dropping by address (the other
//! nodes' container addresses; the clients are the host, i.e. the network's gateway address). Heal
//! deletes the tables; a container that was restarted meanwhile has a fresh namespace without them,
//! and the tables die with the containers in any case.
//!
//! Link faults go through the userspace [`Proxy`] on this host, one in front of each broker,
//! listening on the network's gateway address; each broker advertises its proxy, so clients and
//! the other brokers (replication) reach it through the proxy, which tells a broker's connection
//! from a client's by its source address (a node's container address). It relays a client's
//! connection from the gateway address; with partitions in the same run it relays a broker's from
//! a second address of this host on the run's bridge (`.254`, added to the bridge, which the
//! network's removal takes away), so that a node's partition rules can tell a relayed broker from a
//! client, as on the local platform; a partition also cuts a node's links through the proxies of
//! the nodes on the other side (by the proxies' ports).
//!
//! The engine is driven through the `docker` CLI, which negotiates the API version with any
//! engine. The run-time paths (kill, restart) keep to as few CLI calls as they can: a call costs
//! a process start and a round trip to the engine, and on a loaded two-core machine a restart that
//! asked the engine about the container after every readiness probe took seconds.

use super::local::probe;
use super::nodes::{self, Lazyfs, Role, Spot};
use crate::cluster::Cluster;
use crate::limits::{
    DOCKER_COMMAND_TIMEOUT_MS, DOCKER_SUBNET_ATTEMPTS_MAX, NODE_PROBE_INTERVAL_MS,
    NODE_START_TIMEOUT_MS, NODE_STOP_TIMEOUT_MS,
};
use crate::netns::Endpoint;
use crate::process;
use crate::profile::Broker;
use crate::proxy::{Proxy, Sources};
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
/// A second port of each node's own ({aux_listen}: e.g. a KRaft controller listener).
pub const AUX_PORT: u16 = 9093;
/// Where a node's settings file is mounted in its container.
pub const CONFIG_DIR: &str = "/etc/kaos";
/// The Dockerfile, shared with `docker/build-image.sh`.
const DOCKERFILE: &str = include_str!("../../../docker/Dockerfile");

pub struct Node {
    spot: Spot,
    /// The node's number (1…N for brokers, 0 for the controller).
    k: u32,
    /// The address the broker advertises (its container's, or its proxy's with link faults).
    advertised: SocketAddr,
    /// The scenario's settings for this node (the profile's defaults are added when written).
    settings: toml::Table,
    container: String,
    created: bool,
    running: bool,
    paused: bool,
    /// The host PID of the container's process while it runs (asked once per start).
    pid: Option<u32>,
}

super::nodes::derefs_to_spot!(Node);

impl Node {
    pub fn is_running(&self) -> bool {
        self.running
    }
    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// Brokers `n1`…`nN` at indexes 0…N-1, then the controller (if any) last, as on the local platform.
pub struct DockerPlatform {
    /// The broker profile: the image holds its program, each container runs it with the
    /// profile's arguments over the container's addresses and paths.
    broker: Broker,
    image: String,
    /// The run's id: the network's name, the containers' name prefix and the label's value.
    id: String,
    run_dir: String,
    network_created: bool,
    pub nodes: Vec<Node>,
    /// With lazyfs (power loss): how it serves the brokers' data directories.
    lazyfs: Option<Lazyfs>,
    /// The network's gateway: this host's address on it, where client connections come from.
    gateway: Ipv4Addr,
    /// The proxy in front of each broker (by node index), when the run has link faults.
    proxies: Vec<Option<Proxy>>,
    /// The nodes (by index) holding this run's partition table now.
    ruled: Vec<usize>,
    /// The bridge's name on this host (set at creation, so that an address can be added to it).
    bridge: String,
    /// With link faults and partitions together: this host's second address on the bridge, from
    /// which the proxies relay the brokers' connections.
    relay: Option<Ipv4Addr>,
}

impl DockerPlatform {
    /// Checks the engine, builds or reuses the image, creates the network and lays out the nodes
    /// under `nodes_dir` with their addresses and config files. Nothing is started yet.
    pub async fn new(broker: &Broker, nodes_dir: &Path, cluster: &Cluster) -> Result<Self> {
        check_engine().await?;
        remove_stale().await;
        let image = ensure_image(&broker.program).await?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = format!("kaos-{}-{:x}", std::process::id(), nanos & 0xffff_ffff);
        // An interface name has at most 15 bytes.
        let bridge = format!("kd{:012x}", fnv1a(&[id.as_bytes()]) & 0xffff_ffff_ffff);
        let run_dir = std::path::absolute(nodes_dir.parent().unwrap_or(nodes_dir))
            .unwrap_or_else(|_| nodes_dir.to_path_buf());
        // Built before anything is created, so that its Drop removes whatever exists if a later
        // step fails.
        let mut platform = DockerPlatform {
            broker: broker.clone(),
            image,
            id,
            run_dir: run_dir.display().to_string(),
            network_created: false,
            nodes: Vec::new(),
            lazyfs: None,
            gateway: Ipv4Addr::UNSPECIFIED,
            proxies: Vec::new(),
            ruled: Vec::new(),
            bridge,
            relay: None,
        };
        let subnet = platform.create_network().await?;
        // `docker network create --subnet` gives the bridge the first address.
        platform.gateway = Ipv4Addr::new(subnet[0], subnet[1], subnet[2], 1);
        let ip = |host: u8| {
            SocketAddr::from((
                Ipv4Addr::new(subnet[0], subnet[1], subnet[2], host),
                NODE_PORT,
            ))
        };
        for k in 1..=cluster.brokers {
            let name = format!("n{k}");
            let settings = cluster.broker_settings(&name);
            let node_id = broker.profile.node_id_of(k)?;
            let addr = ip(10 + k as u8);
            platform.lay_out(nodes_dir, name, Role::Broker { node_id }, k, addr, settings)?;
        }
        if cluster.has_controller() {
            platform.lay_out(
                nodes_dir,
                "controller".into(),
                Role::Controller,
                0,
                ip(10),
                cluster.controller_settings.clone(),
            )?;
        }
        for i in 0..platform.nodes.len() {
            platform.write_settings(i)?;
        }
        Ok(platform)
    }

    /// The broker profile the nodes run.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Asks the broker program (on this host) to validate node `i`'s settings file (the
    /// profile's `check`).
    pub async fn check_config(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        let config = self.config_path(i);
        let mut vars = crate::profile::Vars::default();
        vars.set("config", config.display());
        match self.broker.check_args(node.role.profile_role(), &vars)? {
            Some(args) => {
                nodes::check_config(&self.broker.program, &node.name, &args, &config).await
            }
            None => Ok(()),
        }
    }

    /// Node `i`'s settings file on this host (bind-mounted at [`CONFIG_DIR`] in its container).
    fn config_path(&self, i: usize) -> PathBuf {
        self.nodes[i].config_path(&self.broker)
    }

    /// The template variables of node `i` as its container sees them: it listens on
    /// [`NODE_PORT`] on every address, advertises its container address (or its proxy's), its
    /// data directory is `/data` and its settings file is in [`CONFIG_DIR`]; `{dir}` has no value
    /// (the node's directory is not in the container).
    fn vars(&self, i: usize) -> crate::profile::Vars {
        let place = |j: usize| {
            let n = &self.nodes[j];
            nodes::Place {
                k: n.k,
                listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, NODE_PORT)),
                advertised: n.advertised,
                aux: SocketAddr::new(n.addr.ip(), AUX_PORT),
            }
        };
        let paths = nodes::Paths {
            data_dir: "/data".into(),
            dir: None,
            config: format!("{CONFIG_DIR}/{}", self.broker.profile.settings.file),
        };
        nodes::vars(
            &self.nodes,
            i,
            place,
            paths,
            nodes::controller_addr(&self.nodes),
        )
    }

    /// Writes node `i`'s settings file as its profile says (nothing with format `none`).
    fn write_settings(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        node.write_settings(&self.broker, &node.settings, &self.vars(i))
    }

    fn lay_out(
        &mut self,
        nodes_dir: &Path,
        name: String,
        role: Role,
        k: u32,
        addr: SocketAddr,
        settings: toml::Table,
    ) -> Result<()> {
        let dir =
            std::path::absolute(nodes_dir.join(&name)).context("resolving the nodes directory")?;
        std::fs::create_dir_all(dir.join("data"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let container = format!("{}-{name}", self.id);
        self.nodes.push(Node {
            spot: Spot::new(name, role, addr, dir),
            k,
            advertised: addr,
            settings,
            container,
            created: false,
            running: false,
            paused: false,
            pid: None,
        });
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
            let bridge_option = format!("com.docker.network.bridge.name={}", self.bridge);
            let result = docker(&[
                "network",
                "create",
                "--driver",
                "bridge",
                "--subnet",
                &cidr,
                "--opt",
                &bridge_option,
                "--label",
                &self.label(),
                "--label",
                &self.dir_label(),
                &self.id,
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
    pub fn use_lazyfs(&mut self, lazyfs: Lazyfs) {
        self.lazyfs = Some(lazyfs);
    }

    pub fn brokers(&self) -> impl Iterator<Item = &Node> {
        nodes::brokers(&self.nodes)
    }

    /// The brokers' addresses as clients should use them (their proxies', when they have one).
    pub fn bootstrap(&self) -> String {
        nodes::bootstrap(&self.nodes, &self.proxies)
    }

    /// For link faults: a proxy on this host (on the gateway address) in front of each broker,
    /// which the broker advertises (unless the scenario set its own `advertised.listener`); with
    /// `partitions` too, the relay address on the bridge (needs root). Partitions need nothing
    /// else set up: their tables are loaded when they start. Call before the first start.
    pub async fn use_network(&mut self, proxies: bool, partitions: bool) -> Result<()> {
        if !proxies {
            return Ok(());
        }
        if partitions {
            let o = self.gateway.octets();
            let relay = Ipv4Addr::new(o[0], o[1], o[2], 254);
            crate::netns::ip(&["addr", "add", &format!("{relay}/24"), "dev", &self.bridge])
                .with_context(|| format!("adding {relay} to the bridge {}", self.bridge))?;
            self.relay = Some(relay);
        }
        let node_ips: Vec<Ipv4Addr> = self
            .nodes
            .iter()
            .filter_map(|n| match n.addr.ip() {
                std::net::IpAddr::V4(ip) => Some(ip),
                std::net::IpAddr::V6(_) => None,
            })
            .collect();
        self.proxies = (0..self.nodes.len()).map(|_| None).collect();
        for i in 0..self.nodes.len() {
            if !matches!(self.nodes[i].role, Role::Broker { .. }) {
                continue;
            }
            let sources = Sources {
                node_ips: node_ips.clone(),
                client_src: self.gateway,
                relay_src: self.relay.unwrap_or(self.gateway),
            };
            let proxy = Proxy::start(
                SocketAddr::from((self.gateway, 0)),
                self.nodes[i].addr,
                Some(sources),
            )
            .await?;
            // `{advertised}` is the proxy's from now on (a scenario's own advertised.listener
            // setting stays as it is).
            self.nodes[i].advertised = proxy.addr;
            self.proxies[i] = Some(proxy);
            self.write_settings(i)?;
        }
        Ok(())
    }

    /// Drops every packet across each cut (both directions) until [`Self::heal_network`],
    /// replacing any partition in force: a table in each affected node's network namespace.
    /// The rules are [`crate::netns::cut_rules`]: a node is its container's address, the clients
    /// and the proxies are this host's gateway address.
    pub fn partition(&mut self, cuts: &[(Vec<Endpoint>, Vec<Endpoint>)]) -> Result<()> {
        let proxy_ports: Vec<Option<u16>> = (0..self.nodes.len())
            .map(|j| {
                self.proxies
                    .get(j)
                    .and_then(Option::as_ref)
                    .map(|p| p.addr.port())
            })
            .collect();
        let rules = crate::netns::cut_rules(
            cuts,
            |j| self.nodes[j].addr.ip(),
            self.gateway.into(),
            &proxy_ports,
        )?;
        self.heal_partition()?;
        let table = partition_table();
        for (i, (input, output)) in rules {
            let node = &self.nodes[i];
            let pid = node.pid.filter(|_| node.running).with_context(|| {
                format!(
                    "node {} is not running: its packets cannot be filtered",
                    node.name
                )
            })?;
            self.ruled.push(i);
            nft_in_container(pid, &crate::netns::cut_script(&table, &input, &output))
                .with_context(|| format!("partitioning node {}", node.name))?;
        }
        Ok(())
    }

    /// Removes this run's partition table from every node that has one. A node that is not
    /// running, or was restarted (a new namespace), has none left.
    fn heal_partition(&mut self) -> Result<()> {
        let table = partition_table();
        let mut first_error = None;
        for i in std::mem::take(&mut self.ruled) {
            let node = &self.nodes[i];
            let Some(pid) = node.pid.filter(|_| node.running) else {
                continue;
            };
            if let Err(e) = nft_in_container(pid, &format!("delete table inet {table}\n")) {
                if !format!("{e:#}").contains("No such file or directory") {
                    first_error.get_or_insert(e.context(format!("healing node {}", node.name)));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The proxy in front of each broker (by node index), when the run has link faults.
    pub fn proxies(&self) -> &[Option<Proxy>] {
        &self.proxies
    }

    /// Lifts every partition and link fault; true if the run has network faults to heal.
    pub fn heal_network(&mut self) -> Result<bool> {
        nodes::lift_link_faults(&self.proxies);
        let had = !self.proxies.is_empty() || !self.ruled.is_empty();
        self.heal_partition()?;
        Ok(had)
    }

    pub fn broker_index(&self, node_id: i32) -> Option<usize> {
        nodes::broker_index(&self.nodes, node_id)
    }

    /// Creates and starts node `i`'s container the first time, starts it again after a kill;
    /// waits until it answers ApiVersions on its address. Returns the host PID of its process.
    pub async fn start(&mut self, i: usize) -> Result<u32> {
        self.launch(i, true).await
    }

    /// Starts node `i`; with `wait`, waits until it answers a Metadata request.
    pub async fn launch(&mut self, i: usize, wait: bool) -> Result<u32> {
        self.nodes[i].ensure_lazyfs(self.lazyfs.as_ref()).await?;
        let args = self.run_args(i)?;
        let node = &mut self.nodes[i];
        if node.running {
            bail!("node {} is already running", node.name);
        }
        if node.created {
            docker(&["start", &node.container])
                .await
                .with_context(|| format!("restarting the container of node {}", node.name))?;
        } else {
            node.created = true;
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            docker(&args)
                .await
                .with_context(|| format!("starting the container of node {}", node.name))?;
        }
        node.running = true;
        // Asked once: while the node starts, whether it is still alive is read from /proc, not
        // from the engine (a CLI call per probe stole the CPU the starting broker needed).
        let pid = pid(&node.container).await.ok().filter(|&p| p != 0);
        node.pid = pid;
        if wait {
            wait_serving(node, pid).await?;
        }
        match pid {
            Some(p) => Ok(p),
            None => self::pid(&node.container).await,
        }
    }

    /// The `docker run` command line that creates node `i`'s container: the profile's program
    /// in the image, its arguments, working directory and environment over the container's
    /// variables ([`Self::vars`]).
    fn run_args(&self, i: usize) -> Result<Vec<String>> {
        let node = &self.nodes[i];
        let launch = self.broker.command(
            node.role.profile_role(),
            &self.vars(i),
            nodes::controller_addr(&self.nodes).is_some(),
        )?;
        let ip = node.addr.ip().to_string();
        let data = format!("{}:/data", node.data_dir().display());
        // The broker runs as the harness's user, so the run directory stays the user's.
        let user = format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid());
        let (label, dir_label) = (self.label(), self.dir_label());
        let mut args: Vec<String> = [
            "run",
            "--detach",
            "--name",
            &node.container,
            "--hostname",
            &node.name,
            "--label",
            &label,
            "--label",
            &dir_label,
            "--network",
            &self.id,
            "--ip",
            &ip,
            "--user",
            &user,
            "--volume",
            &data,
        ]
        .map(String::from)
        .to_vec();
        let config = self.config_path(i);
        if config.is_file() {
            let file = &self.broker.profile.settings.file;
            args.push("--volume".into());
            args.push(format!("{}:{CONFIG_DIR}/{file}:ro", config.display()));
        }
        if let Some(cwd) = &launch.cwd {
            args.push("--workdir".into());
            args.push(cwd.display().to_string());
        }
        for (key, value) in &launch.env {
            args.push("--env".into());
            args.push(format!("{key}={value}"));
        }
        args.push("--entrypoint".into());
        args.push(program_in_image(&launch.program));
        args.push(self.image.clone());
        args.extend(launch.args);
        Ok(args)
    }

    /// SIGKILL to the container's process (its host PID, known since the start: the process
    /// dies at once, with no engine round trip before it; `docker kill -s KILL` when the PID is
    /// unknown or cannot be signalled), then waits until the engine has seen the container exit
    /// (so that it can be started again). Returns the PID it had.
    pub async fn kill(&mut self, i: usize) -> Result<Option<u32>> {
        let node = &mut self.nodes[i];
        if !node.running {
            return Ok(None);
        }
        let pid = node.pid.take();
        node.running = false;
        if node.paused {
            // The engine refuses to signal a paused container: thaw it, then kill at once.
            docker(&["unpause", &node.container])
                .await
                .with_context(|| format!("unpausing node {} to kill it", node.name))?;
        }
        node.paused = false;
        let signalled = pid.is_some_and(|p| {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok()
        });
        if !signalled {
            docker(&["kill", "--signal", "KILL", &node.container])
                .await
                .with_context(|| format!("killing node {}", node.name))?;
        }
        docker(&["wait", &node.container])
            .await
            .with_context(|| format!("waiting for node {} to exit", node.name))?;
        Ok(pid)
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
            .with_context(|| {
                format!(
                    "{} node {}",
                    if pause { "pausing" } else { "unpausing" },
                    node.name
                )
            })?;
        node.paused = pause;
        Ok(node.pid)
    }

    /// The nodes whose container's process ended on its own since the last look (not by a kill
    /// of the nemesis, which marks a node down before it kills it), with how each ended: the exit
    /// code `docker wait` reports (the engine's 128 + n for a process killed by signal n is
    /// given back as that signal, as the local platform sees it). Each is down from now on, and
    /// its output (`docker logs`) is saved to its log file, where its last lines are read.
    /// Whether a node's process lives is read from /proc by its host PID (asked at its start),
    /// so that a look costs no engine call while every node runs; the engine confirms a death.
    pub async fn exited(&mut self) -> Vec<(usize, std::process::ExitStatus)> {
        let mut ended = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if !node.running {
                continue;
            }
            // The engine is asked only when /proc has no such process (or no PID is known).
            let alive = node.pid.is_some_and(process::exists);
            if alive || container_running(&node.container).await {
                continue;
            }
            let code = match docker(&["wait", &node.container]).await {
                Ok(text) => text.trim().parse::<i32>().ok(),
                Err(e) => {
                    eprintln!("kaos: asking how node {} ended: {e:#}", node.name);
                    None
                }
            };
            node.running = false;
            node.paused = false;
            node.pid = None;
            save_log(node).await;
            ended.push((i, exit_status(code.unwrap_or(-1))));
        }
        ended
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
                node.pid = None;
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
        self.proxies.clear();
        self.ruled.clear();
        match remove_labelled(
            &self.label(),
            self.network_created.then_some(self.id.as_str()),
        )
        .await
        {
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
            node.stop_lazyfs().await;
        }
    }
}

impl Drop for DockerPlatform {
    /// The error and Ctrl-C path: synchronous, best effort, by label.
    fn drop(&mut self) {
        self.remove_now();
        for node in &self.nodes {
            node.kill_lazyfs_now();
        }
    }
}

impl DockerPlatform {
    fn remove_now(&self) {
        if !self.network_created && !self.nodes.iter().any(|n| n.created) {
            return;
        }
        let filter = format!("label={}", self.label());
        let ids = std::process::Command::new("docker")
            .args(["ps", "--all", "--quiet", "--filter", &filter])
            .stdin(Stdio::null())
            .output();
        if let Ok(out) = ids {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(["rm", "--force", "--volumes"])
                    .args(&ids)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if self.network_created {
            let _ = std::process::Command::new("docker")
                .args(["network", "rm", &self.id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// This harness's partition table: one name per harness process, as on the local platform.
fn partition_table() -> String {
    format!("kaos_{}", std::process::id())
}

/// Runs an nft script in the network namespace of the process `pid` (a container's), from this
/// host: `nsenter -t PID -n nft -f -` (needs root). Only the network namespace is entered, so the
/// host's nft runs, whatever the image holds.
fn nft_in_container(pid: u32, script: &str) -> Result<()> {
    let pid = pid.to_string();
    crate::netns::nft_script(
        &["nsenter", "-t", &pid, "-n"],
        &format!("the namespace of PID {pid}"),
        script,
    )
}

/// Polls a starting node until it answers ApiVersions, its process (`pid`) is gone, or time runs
/// out.
async fn wait_serving(node: &mut Node, pid: Option<u32>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(NODE_START_TIMEOUT_MS);
    loop {
        if probe(node.addr).await {
            return Ok(());
        }
        let alive = pid.is_some_and(process::exists);
        if !alive && !container_running(&node.container).await {
            node.running = false;
            node.pid = None;
            save_log(node).await;
            bail!(
                "node {} exited while starting:\n  {}\n(the whole log: {})",
                node.name,
                super::log_tail(&node.log_path()),
                node.log_path().display()
            );
        }
        if Instant::now() > deadline {
            save_log(node).await;
            bail!(
                "node {} did not answer on {} within {NODE_START_TIMEOUT_MS} ms; see {}",
                node.name,
                node.addr,
                node.log_path().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(NODE_PROBE_INTERVAL_MS)).await;
    }
}

/// Whether partitions can be made on containers here: root (nsenter into another process's
/// namespace), `nsenter` and `nft`.
pub fn partitions_available() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("partitions on the docker platform need root (nsenter into each container's network namespace to load nftables rules)".into());
    }
    for (tool, package) in [("nsenter", "util-linux"), ("nft", "nftables")] {
        let ok = std::process::Command::new(tool)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "partitions on the docker platform need `{tool}` (Debian package {package})"
            ));
        }
    }
    Ok(())
}

/// Removes the containers and networks of runs whose harness is dead (a harness killed with
/// SIGKILL runs no destructor): the run id in their label is `kaos-<harness pid>-<n>`, and a
/// pid with no /proc entry is a dead harness. Best effort; says what it removed.
async fn remove_stale() {
    let filter = format!("label={RUN_LABEL}");
    let format = format!("{{{{.Label \"{RUN_LABEL}\"}}}}");
    let containers = docker(&["ps", "--all", "--filter", &filter, "--format", &format])
        .await
        .unwrap_or_default();
    let networks = docker(&[
        "network",
        "ls",
        "--filter",
        &filter,
        "--format",
        "{{.Name}}",
    ])
    .await
    .unwrap_or_default();
    let mut runs: Vec<&str> = containers
        .split_whitespace()
        .chain(networks.split_whitespace())
        .collect();
    runs.sort_unstable();
    runs.dedup();
    for run in runs {
        let Some(pid) = process::dead_harness(run, "kaos-", '-') else {
            continue;
        };
        let network = networks.split_whitespace().any(|n| n == run).then_some(run);
        match remove_labelled(&format!("{RUN_LABEL}={run}"), network).await {
            Ok(()) => eprintln!("kaos: removed the containers and network of run {run}, whose harness (pid {pid}) is gone"),
            Err(e) => eprintln!("kaos: removing what run {run} left (its harness is gone): {e:#}"),
        }
    }
}

/// Removes the containers carrying `label` (`key=value`), then the network `network`.
async fn remove_labelled(label: &str, network: Option<&str>) -> Result<()> {
    let ids = docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &format!("label={label}"),
    ])
    .await?;
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
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
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

/// A container's exit code as the exit status of its process: the engine reports a process
/// killed by signal n as 128 + n.
fn exit_status(code: i32) -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match code {
        129..=192 => std::process::ExitStatus::from_raw(code - 128),
        code => std::process::ExitStatus::from_raw((code & 0xff) << 8),
    }
}

async fn container_running(container: &str) -> bool {
    docker(&["inspect", "--format", "{{.State.Running}}", container])
        .await
        .is_ok_and(|s| s.trim() == "true")
}

async fn pid(container: &str) -> Result<u32> {
    let text = docker(&["inspect", "--format", "{{.State.Pid}}", container]).await?;
    text.trim()
        .parse()
        .with_context(|| format!("docker inspect gave PID {text:?} for {container}"))
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
    let out = tokio::time::timeout(
        Duration::from_millis(DOCKER_COMMAND_TIMEOUT_MS),
        child.wait_with_output(),
    )
    .await
    .with_context(|| {
        format!(
            "`docker {}` did not finish within {DOCKER_COMMAND_TIMEOUT_MS} ms",
            args.join(" ")
        )
    })??;
    if !out.status.success() {
        bail!(
            "`docker {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
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

/// The broker image for `broker_bin`: `<name>:<hash of the binary and the Dockerfile>`, named
/// after the program (`kaos-broker`, `kaos-tansu`: [`image_name`]), built `FROM scratch` from the
/// binary (at [`program_in_image`]) and the shared libraries `ldd` names unless the engine
/// already has it. Returns the tag.
pub async fn ensure_image(broker_bin: &Path) -> Result<String> {
    let bytes = std::fs::read(broker_bin)
        .with_context(|| format!("reading the broker binary {}", broker_bin.display()))?;
    let tag = format!(
        "{}:{:016x}",
        image_name(broker_bin),
        fnv1a(&[&bytes, DOCKERFILE.as_bytes()])
    );
    if docker(&["image", "inspect", "--format", "{{.Id}}", &tag])
        .await
        .is_ok()
    {
        return Ok(tag);
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let stage = std::env::temp_dir().join(format!("kaos-image-{}-{nanos:x}", std::process::id()));
    let result = build_image(broker_bin, &stage, &tag).await;
    let _ = std::fs::remove_dir_all(&stage);
    result.with_context(|| {
        format!(
            "building the broker image {tag} from {}",
            broker_bin.display()
        )
    })?;
    Ok(tag)
}

async fn build_image(broker_bin: &Path, stage: &Path, tag: &str) -> Result<()> {
    let rootfs = stage.join("rootfs");
    for dir in ["usr/local/bin", "data", "tmp", "etc/kaos"] {
        std::fs::create_dir_all(rootfs.join(dir))
            .with_context(|| format!("creating {}", rootfs.join(dir).display()))?;
    }
    let in_image = program_in_image(broker_bin);
    std::fs::copy(broker_bin, rootfs.join(in_image.trim_start_matches('/')))
        .context("copying the broker binary")?;
    for lib in linked_libraries(broker_bin).await? {
        let target = rootfs.join(lib.strip_prefix("/").unwrap_or(&lib));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        // std::fs::copy follows symbolic links: the loader finds the real file under the name.
        std::fs::copy(&lib, &target).with_context(|| format!("copying {}", lib.display()))?;
    }
    std::fs::write(stage.join("Dockerfile"), DOCKERFILE).context("writing the Dockerfile")?;
    let stage_text = stage.display().to_string();
    docker(&[
        "build",
        "--quiet",
        "--label",
        IMAGE_LABEL,
        "--tag",
        tag,
        &stage_text,
    ])
    .await?;
    Ok(())
}

/// The program's file name, as docker accepts it in an image name: lower case, other characters
/// than letters, digits, `.`, `_` and `-` made `-`.
fn program_name(program: &Path) -> String {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches(['.', '_', '-']);
    if name.is_empty() {
        "broker".into()
    } else {
        name.into()
    }
}

/// The image's name for `program`: `kaos-broker` for kaos's own, `kaos-<program>` for another
/// broker's (never a bare name another image on the machine may have).
pub fn image_name(program: &Path) -> String {
    let name = program_name(program);
    if name.starts_with("kaos-") {
        name
    } else {
        format!("kaos-{name}")
    }
}

/// Where the image holds `program`: `/usr/local/bin/<its name>` (kaos-broker's is the
/// Dockerfile's entrypoint; a node's container names it with `--entrypoint` in any case).
pub fn program_in_image(program: &Path) -> String {
    format!("/usr/local/bin/{}", program_name(program))
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

/// What the docker platform carries out: kill (SIGKILL to the container's process), pause
/// (`docker pause`), power_loss (lazyfs under the bind mount), drop_caches (host-wide),
/// partitions (nftables in the containers' network namespaces), link faults (the proxies on the
/// host), and the sequence steps `docker kill`, `docker start`, `docker pause` / `unpause` and
/// waits make; not the `isolate` and `heal` steps, built on the local platform's namespaces
/// (docker's partitions are faults of their own, not steps yet).
pub fn can(capability: super::capability::Capability) -> bool {
    use super::capability::Capability as C;
    match capability {
        C::SignalProcesses | C::ControlNodes | C::PowerLoss | C::DropCaches => true,
        C::Partitions | C::LinkFaults => true,
        C::IsolateSteps => false,
    }
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

    #[test]
    fn a_containers_exit_code_reads_as_the_local_platforms_exit_status() {
        let profile = crate::profile::Profile::builtin(crate::profile::DEFAULT).expect("default");
        let meaning = |code| profile.exit_meaning(&exit_status(code)).0;
        assert_eq!(meaning(71), "invariant violated (exit 71)");
        assert_eq!(meaning(70), "internal error (exit 70)");
        assert_eq!(meaning(0), "stopped (exit 0)");
        assert_eq!(meaning(137), "killed by signal SIGKILL");
        assert_eq!(meaning(139), "killed by signal SIGSEGV");
        assert_eq!(meaning(-1), "exited with code 255");
    }
}
