//! kcat (Debian's 1.7.1) against a real broker process: -P produces lines, -C -e reads them back,
//! -L lists metadata. kcat missing from PATH is a failure: CI installs it.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const KCAT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs kcat with `args` and `stdin`, bounded in time.
fn kcat(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = match Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("kcat is not on PATH: install it (`apt-get install -y kcat`); CI installs it, so this test must not be skipped")
        }
        Err(e) => panic!("cannot run kcat: {e}"),
    };
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    // Drain output on threads so a chatty kcat cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > KCAT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kcat {args:?} did not finish within {KCAT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_thread.join().expect("stdout thread"),
        stderr: err_thread.join().expect("stderr thread"),
    }
}

#[test]
fn kcat_produces_consumes_and_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), "");
    let bootstrap = broker.bootstrap();
    let lines: Vec<String> = (0..500).map(|i| format!("line-{i}")).collect();
    let input = lines.join("\n") + "\n";

    let produced = kcat(
        &["-b", &bootstrap, "-P", "-t", "kcat-topic", "-X", "acks=all"],
        input.as_bytes(),
    );
    assert!(
        produced.status.success(),
        "kcat -P failed: {}",
        String::from_utf8_lossy(&produced.stderr)
    );

    let consumed = kcat(
        &[
            "-b",
            &bootstrap,
            "-C",
            "-t",
            "kcat-topic",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%p %o %s\\n",
        ],
        b"",
    );
    assert!(
        consumed.status.success(),
        "kcat -C failed: {}",
        String::from_utf8_lossy(&consumed.stderr)
    );
    let text = String::from_utf8(consumed.stdout).expect("utf8");
    let expected: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| format!("0 {i} {line}"))
        .collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);

    let listed = kcat(&["-b", &bootstrap, "-L"], b"");
    assert!(
        listed.status.success(),
        "kcat -L failed: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let metadata = String::from_utf8(listed.stdout).expect("utf8");
    assert!(
        metadata.contains(&format!("broker 1 at {bootstrap} (controller)")),
        "{metadata}"
    );
    assert!(
        metadata.contains("topic \"kcat-topic\" with 1 partitions"),
        "{metadata}"
    );
    assert!(
        metadata.contains("partition 0, leader 1, replicas: 1, isrs: 1"),
        "{metadata}"
    );
}
