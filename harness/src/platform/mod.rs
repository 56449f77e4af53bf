//! Platforms know how to start, stop, kill and restart a node; the nemesis only asks them to.
//! `local` runs broker nodes as child processes on this machine; `docker` runs each node in its
//! own container on a private network; `external` is a cluster kaos neither starts nor controls.
//! [`Platform`] is the one the run loop and the nemesis use.

pub mod capability;
pub mod docker;
pub mod external;
pub mod local;
pub mod nodes;
pub use capability::Capability;
pub use docker::DockerPlatform;
pub use external::ExternalPlatform;
pub use local::LocalPlatform;

use crate::cluster::{Cluster, PlatformKind};
use crate::netns::Endpoint;
use crate::profile::Broker;
use crate::proxy::{LinkFault, Links};
use anyhow::Result;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Whether a platform of this kind can do `capability` (each platform's own answer).
pub fn can(kind: PlatformKind, capability: Capability) -> bool {
    match kind {
        PlatformKind::Local => local::can(capability),
        PlatformKind::Docker => docker::can(capability),
        PlatformKind::External => external::can(capability),
    }
}

/// What [`Platform::new`] needs to lay a run's nodes out.
pub struct Setup<'a> {
    pub kind: PlatformKind,
    pub cluster: &'a Cluster,
    /// Serve the brokers' data directories from lazyfs, seeded so (power_loss faults).
    pub lazyfs_seed: Option<u64>,
    /// With lazyfs: a power loss leaves torn writes (`[nemesis] torn_writes`).
    pub torn_writes: bool,
    /// The addresses of an external cluster.
    pub bootstrap: Option<&'a str>,
}

/// The platform a run's nodes live on.
pub enum Platform {
    Local(LocalPlatform),
    Docker(DockerPlatform),
    External(ExternalPlatform),
}

/// Forwards a method to whichever platform this is.
macro_rules! each {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            Platform::Local($p) => $e,
            Platform::Docker($p) => $e,
            Platform::External($p) => $e,
        }
    };
}

impl Setup<'_> {
    fn lazyfs(&self, kaos_bin: &Path) -> Option<nodes::Lazyfs> {
        self.lazyfs_seed.map(|seed| nodes::Lazyfs {
            kaos_bin: kaos_bin.to_path_buf(),
            seed,
            torn_writes: self.torn_writes,
        })
    }
}

impl Platform {
    /// Lays out the cluster's nodes under `nodes_dir` on the chosen platform. For docker this
    /// also builds (or reuses) the broker image and creates the run's network.
    pub async fn new(
        setup: Setup<'_>,
        broker: &Broker,
        kaos_bin: &Path,
        nodes_dir: &Path,
    ) -> Result<Self> {
        Ok(match setup.kind {
            PlatformKind::Local => {
                let mut p = LocalPlatform::new(broker, nodes_dir, setup.cluster)?;
                if let Some(lazyfs) = setup.lazyfs(kaos_bin) {
                    p.use_lazyfs(lazyfs);
                }
                Platform::Local(p)
            }
            PlatformKind::Docker => {
                let mut p = DockerPlatform::new(broker, nodes_dir, setup.cluster).await?;
                if let Some(lazyfs) = setup.lazyfs(kaos_bin) {
                    p.use_lazyfs(lazyfs);
                }
                Platform::Docker(p)
            }
            PlatformKind::External => {
                let bootstrap = setup.bootstrap.ok_or_else(|| {
                    anyhow::anyhow!("platform external needs bootstrap addresses")
                })?;
                Platform::External(ExternalPlatform::new(bootstrap))
            }
        })
    }

    pub fn node_count(&self) -> usize {
        each!(self, p => p.nodes.len())
    }
    pub fn name(&self, i: usize) -> &str {
        each!(self, p => &p.nodes[i].name)
    }
    pub fn addr(&self, i: usize) -> SocketAddr {
        each!(self, p => p.nodes[i].addr)
    }
    pub fn is_running(&self, i: usize) -> bool {
        each!(self, p => p.nodes[i].is_running())
    }
    /// Stopped by a pause and not yet resumed.
    pub fn is_paused(&self, i: usize) -> bool {
        each!(self, p => p.nodes[i].is_paused())
    }
    /// Asks the broker program to validate every node's settings (its profile's `check`, e.g.
    /// `kaos-broker check-config`) before anything starts, so that a setting the broker would
    /// refuse (a typo, a wrong type) ends the run at once with the broker's own reason.
    pub async fn check_configs(&self) -> Result<()> {
        for i in 0..self.node_count() {
            match self {
                Platform::Local(p) => p.check_config(i).await?,
                Platform::Docker(p) => p.check_config(i).await?,
                Platform::External(_) => {}
            }
        }
        Ok(())
    }
    /// The broker profile the nodes run (none on the external platform).
    pub fn broker(&self) -> Option<&Broker> {
        match self {
            Platform::Local(p) => Some(p.broker()),
            Platform::Docker(p) => Some(p.broker()),
            Platform::External(_) => None,
        }
    }
    /// What a node's exit status means, by its profile's exit codes, and whether it makes the
    /// run invalid.
    pub fn exit_meaning(&self, status: &std::process::ExitStatus) -> (String, bool) {
        match self.broker() {
            Some(b) => b.profile.exit_meaning(status),
            None => crate::profile::Profile::generic_exit_meaning(status),
        }
    }
    pub fn log_path(&self, i: usize) -> PathBuf {
        each!(self, p => p.nodes[i].log_path())
    }
    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        each!(self, p => p.nodes.iter().position(|n| n.name == name))
    }
    /// Each broker's name, directory (`nodes/<name>/`) and data directory, as seen from this host.
    pub fn broker_dirs(&self) -> Vec<(String, PathBuf, PathBuf)> {
        each!(self, p => p.brokers().map(|n| (n.name.clone(), n.dir().to_path_buf(), n.data_dir())).collect())
    }
    pub fn bootstrap(&self) -> String {
        each!(self, p => p.bootstrap())
    }
    pub fn broker_index(&self, node_id: i32) -> Option<usize> {
        each!(self, p => p.broker_index(node_id))
    }
    /// Starts node `i` and waits until it answers; returns its PID on this host.
    pub async fn start(&mut self, i: usize) -> Result<u32> {
        each!(self, p => p.start(i).await)
    }
    /// Starts node `i` without waiting for it to answer (a sequence's `start` step: a node that
    /// cannot answer yet, e.g. a broker whose controller is paused); returns its PID.
    pub async fn start_unwaited(&mut self, i: usize) -> Result<u32> {
        each!(self, p => p.launch(i, false).await)
    }
    pub async fn kill(&mut self, i: usize) -> Result<Option<u32>> {
        each!(self, p => p.kill(i).await)
    }
    /// Power loss of node `i`: kill it (and wait for its exit, so that its last write has been
    /// handled: local reaps the child, docker waits for the container), then make its lazyfs
    /// drop everything not fsynced. Returns the PID and what lazyfs says it dropped.
    pub async fn power_loss(&mut self, i: usize) -> Result<(Option<u32>, String)> {
        if let Platform::External(_) = self {
            anyhow::bail!("the external platform cannot cut a node's power (node index {i})");
        }
        let pid = self.kill(i).await?;
        let dropped = each!(self, p => p.nodes[i].cut_power().await?);
        Ok((pid, dropped))
    }
    pub async fn pause(&mut self, i: usize, pause: bool) -> Result<Option<u32>> {
        match self {
            Platform::Local(p) => p.pause(i, pause),
            Platform::Docker(p) => p.pause(i, pause).await,
            Platform::External(p) => p.pause(i, pause).await,
        }
    }
    /// For network faults: namespaces and proxies (local), proxies (docker; partitions need no
    /// set-up there). The external platform refuses network faults at load.
    pub async fn use_network(&mut self, proxies: bool, partitions: bool) -> Result<()> {
        match self {
            Platform::Local(p) => p.use_network(proxies).await,
            Platform::Docker(p) => p.use_network(proxies, partitions).await,
            Platform::External(_) => anyhow::bail!(
                "network faults need nodes this run controls; the external platform has none"
            ),
        }
    }
    pub fn netns_name(&self, i: usize) -> Option<&str> {
        match self {
            Platform::Local(p) => p.netns_name(i),
            Platform::Docker(_) | Platform::External(_) => None,
        }
    }
    pub fn partition(&mut self, cuts: &[(Vec<Endpoint>, Vec<Endpoint>)]) -> Result<()> {
        match self {
            Platform::Local(p) => p.partition(cuts),
            Platform::Docker(p) => p.partition(cuts),
            Platform::External(_) => {
                anyhow::bail!("partitions are not available on the external platform")
            }
        }
    }
    /// Puts a link fault on node `i`'s proxy (None lifts it).
    pub fn link_fault(&mut self, i: usize, fault: Option<LinkFault>) -> Result<()> {
        let (proxies, name) = self.proxies(i)?;
        nodes::link_fault(proxies, i, name, fault)
    }
    /// Resets the connections through node `i`'s proxy on `links` (`cut_request`: each after
    /// holding back its next request).
    pub fn reset_links(&mut self, i: usize, links: Links, cut_request: bool) -> Result<()> {
        let (proxies, name) = self.proxies(i)?;
        nodes::reset_links(proxies, i, name, links, cut_request)
    }
    /// The proxies of the run and node `i`'s name.
    fn proxies(&self, i: usize) -> Result<(&[Option<crate::proxy::Proxy>], &str)> {
        match self {
            Platform::Local(p) => Ok((p.proxies(), &p.nodes[i].name)),
            Platform::Docker(p) => Ok((p.proxies(), &p.nodes[i].name)),
            Platform::External(_) => {
                anyhow::bail!("link faults are not available on the external platform")
            }
        }
    }
    /// What each node's proxy saw of requests in flight since the last call (nodes whose proxy
    /// saw none left out), by node name.
    pub fn take_in_flight(&self) -> Vec<(String, crate::proxy::InFlight)> {
        (0..self.node_count())
            .filter_map(|i| {
                let (proxies, name) = self.proxies(i).ok()?;
                let seen = proxies.get(i)?.as_ref()?.take_in_flight();
                (seen != crate::proxy::InFlight::default()).then(|| (name.to_string(), seen))
            })
            .collect()
    }
    /// Lifts every partition and link fault; whether there was anything to lift.
    pub fn heal_network(&mut self) -> Result<bool> {
        match self {
            Platform::Local(p) => p.heal_network(),
            Platform::Docker(p) => p.heal_network(),
            Platform::External(_) => Ok(false),
        }
    }
    /// The nodes that exited on their own since the last look, with how (local: the child's exit
    /// status; docker: the container's exit code, its output saved to the node's log). The
    /// external platform's nodes are not ours to watch.
    pub async fn exited(&mut self) -> Vec<(usize, std::process::ExitStatus)> {
        match self {
            Platform::Local(p) => p.exited(),
            Platform::Docker(p) => p.exited().await,
            Platform::External(_) => Vec::new(),
        }
    }
    pub async fn stop_all(&mut self) {
        each!(self, p => p.stop_all().await)
    }
    /// After the replica dumps: unmount lazyfs and remove the network namespaces (local), remove
    /// every container, the network and the lazyfs mounts (docker).
    pub async fn release(&mut self) {
        match self {
            Platform::Local(p) => {
                p.unmount_all().await;
                if let Err(e) = p.remove_network() {
                    eprintln!("kaos: {e:#}");
                }
            }
            Platform::Docker(p) => p.remove_all().await,
            Platform::External(_) => {}
        }
    }
}

/// What a node's (or client's) log says at its end, for an error message: from the last line that
/// starts an error report (`Error:`, the broker's exit) up to any backtrace, or else the last
/// lines. Reads at most the log's last `LOG_TAIL_BYTES_MAX` bytes.
pub fn log_tail(path: &Path) -> String {
    use crate::limits::{LOG_TAIL_BYTES_MAX, LOG_TAIL_LINES_MAX};
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES_MAX)));
        let _ = f.take(LOG_TAIL_BYTES_MAX).read_to_end(&mut bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = match lines.iter().rposition(|l| l.starts_with("Error:")) {
        Some(k) => k,
        None => lines.len().saturating_sub(LOG_TAIL_LINES_MAX),
    };
    let end = lines[start..]
        .iter()
        .position(|l| l.contains("backtrace:") || l.contains("Backtrace"))
        .map_or(lines.len(), |k| start + k);
    lines[start..end]
        .iter()
        .take(LOG_TAIL_LINES_MAX)
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_says_what_it_can_do() {
        use super::{can, Capability as C};
        let all = [
            C::SignalProcesses,
            C::ControlNodes,
            C::PowerLoss,
            C::DropCaches,
            C::Partitions,
            C::LinkFaults,
            C::IsolateSteps,
        ];
        let able = |kind| all.iter().filter(|c| can(kind, **c)).count();
        assert_eq!(
            able(PlatformKind::Local),
            all.len(),
            "local can do everything"
        );
        assert!(!can(PlatformKind::Docker, C::IsolateSteps));
        assert_eq!(able(PlatformKind::Docker), all.len() - 1);
        assert!(can(PlatformKind::External, C::SignalProcesses));
        assert_eq!(
            able(PlatformKind::External),
            1,
            "external only signals clients"
        );
    }

    #[test]
    fn a_log_tail_is_the_error_report_without_its_backtrace_or_the_last_lines() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("broker.log");
        std::fs::write(
            &log,
            "INFO a\nINFO b\nError: kaos-broker stopped with an error\n\nCaused by:\n    disk on fire\n\nStack backtrace:\n   0: frame\n",
        )
        .expect("write");
        assert_eq!(
            log_tail(&log),
            "Error: kaos-broker stopped with an error\n  Caused by:\n      disk on fire"
        );
        let lines: String = (0..40).map(|k| format!("line {k}\n")).collect();
        std::fs::write(&log, lines).expect("write");
        let tail = log_tail(&log);
        assert!(
            tail.starts_with("line 28") && tail.ends_with("line 39"),
            "{tail}"
        );
        assert_eq!(log_tail(&tmp.path().join("missing.log")), "");
    }
}
