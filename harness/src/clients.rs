//! Client processes: `kaos client --spec FILE`, one OS process each, its ops piped into the
//! history and its standard error into `clients/<name>.log`.

use crate::history::Recorder;
use crate::process;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Child;
use tokio::task::JoinHandle;
use workloads::ClientSpec;

pub struct ClientProcess {
    pub name: String,
    child: Option<Child>,
    pump: Option<JoinHandle<u64>>,
}

impl ClientProcess {
    /// Writes the spec into `clients_dir`, starts the client and records a `client_start` op with
    /// its spec (so the checker can tie anomalies to the client's settings).
    pub async fn spawn(kaos_bin: &Path, clients_dir: &Path, name: &str, spec: &ClientSpec, recorder: &Recorder) -> Result<Self> {
        std::fs::create_dir_all(clients_dir).with_context(|| format!("creating {}", clients_dir.display()))?;
        let spec_path: PathBuf = clients_dir.join(format!("{name}.json"));
        std::fs::write(&spec_path, serde_json::to_vec_pretty(spec)?).with_context(|| format!("writing {}", spec_path.display()))?;
        let log_path = clients_dir.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut child = process::command(kaos_bin)
            .arg("client")
            .arg("--spec")
            .arg(&spec_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting client {name} ({})", kaos_bin.display()))?;
        recorder
            .op("harness", "info", "client_start", serde_json::json!({"client": name, "pid": child.id(), "spec": spec}), None)
            .await;
        let stdout = child.stdout.take().context("client stdout was not piped")?;
        let recorder = recorder.clone();
        let process: Arc<str> = Arc::from(name);
        let pump = tokio::spawn(async move { recorder.pump(process, stdout).await });
        Ok(ClientProcess { name: name.to_string(), child: Some(child), pump: Some(pump) })
    }

    /// Waits for the client to end by itself, at most `timeout`; then SIGKILLs it.
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else { anyhow::bail!("client {} already ended", self.name) };
        let status = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => status?,
            Err(_) => process::kill(child).await?,
        };
        self.child = None;
        self.finish_pump().await;
        Ok(status)
    }

    /// Asks the client to stop (SIGTERM) and gives it `grace` to finish what is in flight.
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else { anyhow::bail!("client {} already ended", self.name) };
        let status = process::stop(child, grace).await?;
        self.child = None;
        self.finish_pump().await;
        Ok(status)
    }

    /// Every line the client wrote is in the history once its pipe is drained.
    async fn finish_pump(&mut self) {
        if let Some(pump) = self.pump.take() {
            if let Ok(rejected) = pump.await {
                if rejected > 0 {
                    eprintln!("kaos: client {} printed {rejected} lines that were not ops", self.name);
                }
            }
        }
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            process::kill_now(child);
        }
    }
}
