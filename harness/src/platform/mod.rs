//! Platforms know how to start, stop, kill and restart a node; the nemesis only asks them to.
//! `local` runs broker nodes as child processes on this machine; `docker` runs each node in its
//! own container on a private network. [`Platform`] is the one the run loop and the nemesis use.

pub mod docker;
pub mod local;
pub use docker::DockerPlatform;
pub use local::LocalPlatform;

use crate::scenario::{PlatformKind, Scenario};
use anyhow::Result;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The platform a run's nodes live on.
pub enum Platform {
    Local(LocalPlatform),
    Docker(DockerPlatform),
}

/// Forwards a method to whichever platform this is.
macro_rules! each {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            Platform::Local($p) => $e,
            Platform::Docker($p) => $e,
        }
    };
}

impl Platform {
    /// Lays out the scenario's nodes under `nodes_dir` on the scenario's platform. For docker this
    /// also builds (or reuses) the broker image and creates the run's network.
    pub async fn new(scenario: &Scenario, broker_bin: &Path, kaos_bin: &Path, nodes_dir: &Path) -> Result<Self> {
        Ok(match scenario.platform {
            PlatformKind::Local => {
                let mut p = LocalPlatform::new(broker_bin, nodes_dir, &scenario.cluster)?;
                if scenario.uses_lazyfs() {
                    p.use_lazyfs(kaos_bin, scenario.seed);
                }
                Platform::Local(p)
            }
            PlatformKind::Docker => {
                let mut p = DockerPlatform::new(broker_bin, nodes_dir, &scenario.cluster).await?;
                if scenario.uses_lazyfs() {
                    p.use_lazyfs(kaos_bin, scenario.seed);
                }
                Platform::Docker(p)
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
    pub async fn kill(&mut self, i: usize) -> Result<Option<u32>> {
        each!(self, p => p.kill(i).await)
    }
    pub async fn power_loss(&mut self, i: usize) -> Result<(Option<u32>, String)> {
        each!(self, p => p.power_loss(i).await)
    }
    pub async fn pause(&mut self, i: usize, pause: bool) -> Result<Option<u32>> {
        match self {
            Platform::Local(p) => p.pause(i, pause),
            Platform::Docker(p) => p.pause(i, pause).await,
        }
    }
    pub async fn stop_all(&mut self) {
        each!(self, p => p.stop_all().await)
    }
    /// After the replica dumps: unmount lazyfs (local), remove every container and the network
    /// (docker).
    pub async fn release(&mut self) {
        match self {
            Platform::Local(p) => p.unmount_all().await,
            Platform::Docker(p) => p.remove_all().await,
        }
    }
}
