//! The local platform: each broker node is a child process in its own process group, with its data
//! directory, config file and log under the run directory's `nodes/<name>/`. A node keeps its port
//! across restarts.

use crate::limits::{NODE_PROBE_INTERVAL_MS, NODE_START_TIMEOUT_MS, NODE_STOP_TIMEOUT_MS};
use crate::process;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

pub struct Node {
    pub name: String,
    pub node_id: u32,
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("broker.log")
    }
}

pub struct LocalPlatform {
    broker_bin: PathBuf,
    pub nodes: Vec<Node>,
}

impl LocalPlatform {
    /// Lays out `count` nodes under `nodes_dir`, each with its config file and a free port.
    pub fn new(broker_bin: &Path, nodes_dir: &Path, count: u32, settings: &toml::Table) -> Result<Self> {
        let mut nodes = Vec::new();
        for k in 1..=count {
            let name = format!("n{k}");
            let dir = nodes_dir.join(&name);
            std::fs::create_dir_all(dir.join("data")).with_context(|| format!("creating {}", dir.display()))?;
            let addr = free_port()?;
            let mut config = settings.clone();
            config.entry("advertised.listener").or_insert_with(|| toml::Value::String(addr.to_string()));
            let text = toml::to_string(&config).context("writing a broker config")?;
            std::fs::write(dir.join("broker.toml"), text).with_context(|| format!("writing {}/broker.toml", dir.display()))?;
            nodes.push(Node { name, node_id: k, addr, dir, child: None });
        }
        Ok(LocalPlatform { broker_bin: broker_bin.to_path_buf(), nodes })
    }

    pub fn bootstrap(&self) -> String {
        self.nodes.iter().map(|n| n.addr.to_string()).collect::<Vec<_>>().join(",")
    }

    /// Starts node `i` and waits until it answers ApiVersions.
    pub async fn start(&mut self, i: usize) -> Result<u32> {
        let bin = self.broker_bin.clone();
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            bail!("node {} is already running", node.name);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())
            .with_context(|| format!("opening {}", node.log_path().display()))?;
        let mut cmd = process::command(&bin);
        cmd.arg("--node-id")
            .arg(node.node_id.to_string())
            .arg("--listen")
            .arg(node.addr.to_string())
            .arg("--data-dir")
            .arg(node.dir.join("data"))
            .arg("--config")
            .arg(node.dir.join("broker.toml"))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let child = cmd.spawn().with_context(|| format!("starting {} for node {}", bin.display(), node.name))?;
        let pid = child.id().unwrap_or(0);
        node.child = Some(child);
        wait_serving(node).await?;
        Ok(pid)
    }

    /// SIGKILLs node `i`; returns the PID it had.
    pub async fn kill(&mut self, i: usize) -> Result<Option<u32>> {
        let node = &mut self.nodes[i];
        let Some(mut child) = node.child.take() else { return Ok(None) };
        let pid = child.id();
        process::kill(&mut child).await.with_context(|| format!("killing node {}", node.name))?;
        Ok(pid)
    }

    /// Stops every node gracefully (SIGTERM, then SIGKILL after a grace period).
    pub async fn stop_all(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                if let Err(e) = process::stop(&mut child, Duration::from_millis(NODE_STOP_TIMEOUT_MS)).await {
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
    }
}

fn free_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?)
}

/// Polls the node with an ApiVersions v0 request until it answers, it exits, or time runs out.
async fn wait_serving(node: &mut Node) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(NODE_START_TIMEOUT_MS);
    loop {
        if let Some(child) = node.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                node.child = None;
                bail!("node {} exited while starting ({status}); see {}", node.name, node.log_path().display());
            }
        }
        if probe(node.addr).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("node {} did not answer on {} within {} ms; see {}", node.name, node.addr, NODE_START_TIMEOUT_MS, node.log_path().display());
        }
        tokio::time::sleep(Duration::from_millis(NODE_PROBE_INTERVAL_MS)).await;
    }
}

/// One ApiVersions v0 round trip: true when a response with our correlation id comes back.
pub async fn probe(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        // size, api_key 18, version 0, correlation id 7, null client id
        let request: [u8; 14] = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff];
        s.write_all(&request).await.ok()?;
        let mut head = [0u8; 8];
        s.read_exact(&mut head).await.ok()?;
        (head[4..8] == [0, 0, 0, 7]).then_some(())
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), attempt).await, Ok(Some(())))
}
