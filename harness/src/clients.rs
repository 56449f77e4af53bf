//! Client processes: `kaos client --spec FILE`, one OS process each, its ops piped into the
//! history and its standard error into `clients/<name>.log`.

use crate::history::Recorder;
use crate::process;
use anyhow::{Context, Result};
use kaos_history::{OpType, F, HARNESS};
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
    pub async fn spawn(
        kaos_bin: &Path,
        clients_dir: &Path,
        name: &str,
        spec: &ClientSpec,
        recorder: &Recorder,
    ) -> Result<Self> {
        std::fs::create_dir_all(clients_dir)
            .with_context(|| format!("creating {}", clients_dir.display()))?;
        let spec_path: PathBuf = clients_dir.join(format!("{name}.json"));
        std::fs::write(&spec_path, serde_json::to_vec_pretty(spec)?)
            .with_context(|| format!("writing {}", spec_path.display()))?;
        let log_path = clients_dir.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
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
            .op(
                HARNESS,
                OpType::Info,
                F::ClientStart,
                serde_json::json!({"client": name, "pid": child.id(), "spec": spec}),
                None,
            )
            .await;
        let stdout = child.stdout.take().context("client stdout was not piped")?;
        let recorder = recorder.clone();
        let process: Arc<str> = Arc::from(name);
        let pump = tokio::spawn(async move { recorder.pump(process, stdout).await });
        Ok(ClientProcess {
            name: name.to_string(),
            child: Some(child),
            pump: Some(pump),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// SIGKILLs the client's process group and drains what it had written.
    pub async fn kill(&mut self) -> Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            anyhow::bail!("client {} already ended", self.name)
        };
        let status = process::kill(child).await?;
        self.child = None;
        self.finish_pump().await;
        Ok(status)
    }

    /// Waits for the client to end by itself, at most `timeout`; then SIGKILLs it.
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match self.wait_at_most(timeout).await? {
            Some(status) => Ok(status),
            None => self.kill().await,
        }
    }

    /// Waits for the client to end by itself, at most `timeout`: its exit status, or None while
    /// it still runs (it is left running).
    pub async fn wait_at_most(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            anyhow::bail!("client {} already ended", self.name)
        };
        // Child::wait is cancel-safe: a timeout leaves the child as it was.
        let Ok(status) = tokio::time::timeout(timeout, child.wait()).await else {
            return Ok(None);
        };
        let status = status?;
        self.child = None;
        self.finish_pump().await;
        Ok(Some(status))
    }

    /// Asks the client to stop (SIGTERM) and gives it `grace` to finish what is in flight.
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            anyhow::bail!("client {} already ended", self.name)
        };
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
                    eprintln!(
                        "kaos: client {} printed {rejected} lines that were not ops",
                        self.name
                    );
                }
            }
        }
    }
}

/// The scenario's client processes by name (`producer-1`, `consumer-1`, …): each entry keeps its
/// spec so that the nemesis can kill a client and start it again as a new process
/// (`producer-1.2`, …), which the history records as a process of its own.
pub struct ClientSet {
    kaos_bin: PathBuf,
    clients_dir: PathBuf,
    pub entries: Vec<ClientEntry>,
}

pub struct ClientEntry {
    pub name: String,
    pub spec: ClientSpec,
    /// How long a stop may take (its sends drain): the producer's message timeout plus a grace.
    pub stop_grace: Duration,
    /// 1 for the first process, then one more per restart.
    pub incarnation: u32,
    pub process: Option<ClientProcess>,
}

impl ClientSet {
    pub fn new(kaos_bin: &Path, clients_dir: &Path) -> Self {
        ClientSet {
            kaos_bin: kaos_bin.to_path_buf(),
            clients_dir: clients_dir.to_path_buf(),
            entries: Vec::new(),
        }
    }

    pub async fn start(
        &mut self,
        name: &str,
        spec: ClientSpec,
        stop_grace: Duration,
        rec: &Recorder,
    ) -> Result<()> {
        let process =
            ClientProcess::spawn(&self.kaos_bin, &self.clients_dir, name, &spec, rec).await?;
        self.entries.push(ClientEntry {
            name: name.to_string(),
            spec,
            stop_grace,
            incarnation: 1,
            process: Some(process),
        });
        Ok(())
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// SIGKILLs client `i`; returns the PID it had.
    pub async fn kill(&mut self, i: usize) -> Result<Option<u32>> {
        let Some(mut p) = self.entries[i].process.take() else {
            return Ok(None);
        };
        let pid = p.pid();
        p.kill().await?;
        Ok(pid)
    }

    /// SIGSTOP / SIGCONT client `i`.
    pub fn pause(&mut self, i: usize, pause: bool) -> Result<Option<u32>> {
        let Some(pid) = self.entries[i].process.as_ref().and_then(|p| p.pid()) else {
            return Ok(None);
        };
        process::pause_group(pid, pause, &self.entries[i].name)?;
        Ok(Some(pid))
    }

    /// Starts client `i` again as a new process (a producer gets fresh message ids; an outbox
    /// producer resumes its outbox). Returns the new process's name.
    pub async fn restart(&mut self, i: usize, rec: &Recorder) -> Result<String> {
        let entry = &mut self.entries[i];
        if entry.process.is_some() {
            return Ok(entry.name.clone());
        }
        entry.incarnation += 1;
        let mut spec = entry.spec.clone();
        if let ClientSpec::Producer(p) = &mut spec {
            p.id_base += u64::from(entry.incarnation - 1) * crate::limits::ID_INCARNATION_BLOCK;
        }
        let name = format!("{}.{}", entry.name, entry.incarnation);
        entry.process =
            Some(ClientProcess::spawn(&self.kaos_bin, &self.clients_dir, &name, &spec, rec).await?);
        Ok(name)
    }

    /// Stops (SIGTERM, then SIGKILL after its grace) every client for which `which` holds, waking
    /// paused ones first; records each exit. A client that exited with an error code (by itself,
    /// or at the stop: not a SIGKILL of the nemesis, whose victims are restarted as new processes)
    /// fails the run, with the end of its log: its ops cannot be trusted to be complete.
    pub async fn stop_where(
        &mut self,
        which: impl Fn(&ClientSpec) -> bool,
        rec: &Recorder,
    ) -> Result<()> {
        let mut failed = Vec::new();
        for entry in self.entries.iter_mut().filter(|e| which(&e.spec)) {
            if let Some(mut p) = entry.process.take() {
                if let Some(pid) = p.pid() {
                    let _ = process::signal_group(pid, nix::sys::signal::Signal::SIGCONT);
                }
                let status = p.stop(entry.stop_grace).await?;
                rec.op(HARNESS, OpType::Info, F::ClientExit, serde_json::json!({"client": p.name, "status": status.to_string(), "success": status.success()}), None).await;
                if status.code().is_some_and(|c| c != 0) {
                    let log = self.clients_dir.join(format!("{}.log", p.name));
                    failed.push(format!(
                        "client {} exited with {status}:\n  {}\n(its log: {})",
                        p.name,
                        crate::platform::log_tail(&log),
                        log.display()
                    ));
                }
            }
        }
        if !failed.is_empty() {
            anyhow::bail!("{}", failed.join("\n"));
        }
        Ok(())
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            process::kill_now(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A "kaos" whose client prints librdkafka-like lines and exits with an error code.
    fn failing_client(dir: &Path) -> PathBuf {
        let path = dir.join("failing-kaos");
        std::fs::write(
            &path,
            "#!/bin/sh\necho 'INFO librdkafka: starting' >&2\necho 'kaos client: librdkafka: creating the producer: Client creation error: broken' >&2\nexit 3\n",
        )
        .expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[tokio::test]
    async fn a_client_that_exits_with_an_error_code_fails_the_stop_naming_it_with_its_log() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (rec, writer) =
            crate::history::open(&tmp.path().join("h.jsonl"), std::time::Instant::now())
                .expect("history");
        let mut clients = ClientSet::new(&failing_client(tmp.path()), &tmp.path().join("clients"));
        let spec = ClientSpec::FinalRead(workloads::FinalReadSpec {
            bootstrap: "127.0.0.1:1".into(),
            topic: "t".into(),
            timeout_ms: 1,
            config: Default::default(),
        });
        clients
            .start("producer-1", spec, Duration::from_secs(5), &rec)
            .await
            .expect("start");
        // Let it exit by itself.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let err = clients
            .stop_where(|_| true, &rec)
            .await
            .expect_err("a failed client fails the stop");
        let message = format!("{err:#}");
        assert!(
            message.contains("client producer-1 exited with exit status: 3")
                && message.contains("Client creation error: broken"),
            "{message}"
        );
        drop(rec);
        writer.finish().await.expect("history");
    }
}
