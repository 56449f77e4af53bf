//! Test support: start the real `kaos-broker` binary (a broker or the controller) on 127.0.0.1
//! port 0, wait for its ready line, kill it by PID on drop; plus a tiny raw Kafka client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the stderr lines kept per process.
const LOG_LINES_MAX: usize = 50_000;

/// One child process (controller or broker); SIGKILLed on drop.
pub struct Proc {
    child: Child,
    pub address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// The thread draining stderr (ends at the process's exit).
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Starts `kaos-broker ARGS` and waits (bounded) for the stderr line carrying `ready_marker`
    /// and `listen=ADDRESS`; stderr is drained (and kept, bounded) for the process's whole life.
    pub fn spawn(args: &[String], ready_marker: &'static str) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kaos-broker"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kaos-broker");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_sender, ready_receiver) = mpsc::channel();
        let writer = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split(ready_marker).nth(1) {
                    if let Some(address) = rest.split("listen=").nth(1) {
                        let _ = ready_sender.send(address.trim().to_string());
                    }
                }
                let mut log = writer.lock().expect("log lock");
                if log.len() < LOG_LINES_MAX {
                    log.push(line);
                }
            }
        });
        match ready_receiver.recv_timeout(READY_TIMEOUT) {
            Ok(address) => Proc {
                child,
                address: address.parse().expect("ready line has an address"),
                log,
                reader: Some(reader),
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{ready_marker} not seen within {READY_TIMEOUT:?}; log:\n{}",
                    log.lock().expect("log").join("\n")
                );
            }
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.log
            .lock()
            .expect("log")
            .iter()
            .any(|l| l.contains(needle))
    }

    pub fn signal(&self, signal: Signal) {
        let _ = kill(self.pid(), signal);
    }

    /// SIGSTOP, then waits (bounded) until every thread is stopped: kill(2) returns before the
    /// stop reaches threads running on another core, which on a loaded machine can still serve
    /// a response or send a fetch after the call. Returns once nothing of the process runs.
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
        let tasks = format!("/proc/{}/task", self.child.id());
        let all_stopped = || -> Option<bool> {
            let mut any = false;
            for task in std::fs::read_dir(&tasks).ok()? {
                let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
                // The state follows the command's closing parenthesis: "pid (comm) S ...".
                let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
                if state != "T" && state != "t" {
                    return Some(false);
                }
                any = true;
            }
            Some(any)
        };
        let started = Instant::now();
        while all_stopped() != Some(true) {
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "process {} not stopped within {READY_TIMEOUT:?} of SIGSTOP",
                self.child.id()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (bounded by `timeout`) for the process to exit on its own; its exit status.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn sigkill(mut self) {
        let _ = kill(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (bounded); returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = kill(self.pid(), Signal::SIGTERM);
        let started = Instant::now();
        while started.elapsed() < EXIT_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                if status.code() != Some(0) {
                    eprintln!("exited with {status}; log:\n{}", self.log_text());
                }
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "did not exit within {EXIT_TIMEOUT:?} of SIGTERM; log:\n{}",
            self.log_text()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(self.pid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A single broker (no controller) on its own data dir; SIGKILLed on drop.
pub struct BrokerProcess {
    process: Proc,
    pub address: SocketAddr,
    pub data_dir: PathBuf,
}

impl BrokerProcess {
    /// Starts the broker on `data_dir` with optional extra TOML config.
    pub fn start(data_dir: &Path, config_toml: &str) -> BrokerProcess {
        let config_path = data_dir.with_extension("toml");
        std::fs::write(&config_path, config_toml).expect("write config");
        let args: Vec<String> = ["--node-id", "1", "--listen", "127.0.0.1:0", "--data-dir"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                data_dir.display().to_string(),
                "--config".to_string(),
                config_path.display().to_string(),
            ])
            .collect();
        let process = Proc::spawn(&args, "kaos-broker ready");
        BrokerProcess {
            address: process.address,
            process,
            data_dir: data_dir.to_owned(),
        }
    }

    pub fn bootstrap(&self) -> String {
        self.address.to_string()
    }

    pub fn pid(&self) -> Pid {
        self.process.pid()
    }

    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// SIGKILL and reap.
    pub fn kill(self) {
        self.process.sigkill();
    }

    /// SIGTERM and wait (bounded) for exit; returns the exit code.
    pub fn terminate(self) -> Option<i32> {
        self.process.terminate()
    }

    /// SIGTERM and wait (bounded) for exit; returns the exit code and the whole log.
    pub fn terminate_with_log(mut self) -> (Option<i32>, String) {
        let log = Arc::clone(&self.process.log);
        let reader = self.process.reader.take();
        let code = self.process.terminate();
        // The stderr reader ends at the exited process's EOF.
        if let Some(reader) = reader {
            let _ = reader.join();
        }
        let text = log.lock().expect("log").join("\n");
        (code, text)
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Waits (bounded) for the broker to exit on its own; its exit status.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.process.wait_for_exit(timeout)
    }
}

/// A blocking raw Kafka connection for protocol tests.
pub struct RawClient {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    pub fn connect(address: SocketAddr) -> RawClient {
        let stream =
            TcpStream::connect_timeout(&address, Duration::from_secs(10)).expect("connect");
        RawClient::from_stream(stream)
    }

    /// Wraps a connected stream (e.g. one bound to a chosen source address).
    pub fn from_stream(stream: TcpStream) -> RawClient {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        RawClient {
            stream,
            correlation_id: 0,
        }
    }

    /// Frames and sends a request; returns its correlation id.
    pub fn send<R: Encodable>(&mut self, api: ApiKey, version: i16, request: &R) -> i32 {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("kaos-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .expect("encode header");
        request.encode(&mut body, version).expect("encode request");
        self.send_frame(&body);
        self.correlation_id
    }

    pub fn send_frame(&mut self, body: &[u8]) {
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.put_slice(body);
        self.stream.write_all(&frame).expect("write frame");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        // The broker may already have closed the socket; that is fine for these tests.
        let _ = self.stream.write_all(bytes);
    }

    /// Reads one response frame: `Some(body after the length)`, or `None` if the broker closed.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length).ok()?;
        let length = i32::from_be_bytes(length);
        assert!(
            (0..100 << 20).contains(&length),
            "bad response length {length}"
        );
        let mut body = vec![0u8; length as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// True when the broker closed the connection (EOF or reset), within the read timeout.
    pub fn is_closed_by_broker(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
        }
    }
}

impl RawClient {
    /// Sends `request` and reads and decodes its response (of the same correlation id).
    pub fn call<Q: Encodable, R: kafka_protocol::protocol::Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Q,
    ) -> R {
        let correlation_id = self.send(api, version, request);
        let frame = self
            .read_frame()
            .unwrap_or_else(|| panic!("{api:?} v{version}: the broker closed the connection"));
        let (got, response) = decode_response(api, version, frame);
        assert_eq!(got, correlation_id, "{api:?} v{version}: correlation id");
        response
    }
}

/// [`RawClient::call`] on a connection of its own.
pub fn call<Q: Encodable, R: kafka_protocol::protocol::Decodable>(
    address: SocketAddr,
    api: ApiKey,
    version: i16,
    request: &Q,
) -> R {
    RawClient::connect(address).call(api, version, request)
}

/// A broker on a data dir `data` in a new temporary dir (removed when the dir is dropped).
pub fn start_broker(config_toml: &str) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), config_toml);
    (dir, broker)
}

/// [`start_broker`] with topic `name` of `partitions` partitions (replication factor 1) created,
/// and a connection to the broker.
pub fn start_broker_with_topic(
    config_toml: &str,
    name: &str,
    partitions: i32,
) -> (tempfile::TempDir, BrokerProcess, RawClient) {
    let (dir, broker) = start_broker(config_toml);
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, name, partitions, 1, false), 0);
    (dir, broker, client)
}

/// What Metadata v12 says of topic `name` (no auto-creation).
pub fn topic_metadata(
    address: SocketAddr,
    name: &str,
) -> kafka_protocol::messages::metadata_response::MetadataResponseTopic {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(name)))
        ]))
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = call(address, ApiKey::Metadata, 12, &request);
    response.topics.into_iter().next().expect("one topic")
}

/// librdkafka's admin client for `bootstrap`, and a runtime to wait for its futures on.
pub fn admin_client(
    bootstrap: &str,
) -> (
    rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    tokio::runtime::Runtime,
) {
    let admin = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (admin, runtime)
}

/// Reads the response header (correlation id) and decodes the body.
pub fn decode_response<R: kafka_protocol::protocol::Decodable>(
    api: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> (i32, R) {
    let header =
        <kafka_protocol::messages::ResponseHeader as kafka_protocol::protocol::Decodable>::decode(
            &mut frame,
            api.response_header_version(version),
        )
        .expect("response header");
    let body = R::decode(&mut frame, version).expect("response body");
    (header.correlation_id, body)
}

/// Calls `condition` until it returns Some, at most `attempts` times, `pause` apart.
pub fn poll_until<T>(
    attempts: usize,
    pause: Duration,
    mut condition: impl FnMut() -> Option<T>,
) -> Option<T> {
    for _ in 0..attempts {
        if let Some(value) = condition() {
            return Some(value);
        }
        std::thread::sleep(pause);
    }
    None
}

/// Every `<20 digits>.log` in a partition dir, sorted.
pub fn segment_files(partition_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .expect("read partition dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Bytes of the segment files of a partition dir.
pub fn log_bytes(partition_dir: &Path) -> u64 {
    segment_files(partition_dir)
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum()
}

/// (position, total bytes) of every batch in a segment file, by walking the length fields.
pub fn batch_positions(segment: &Path) -> Vec<(usize, usize)> {
    let data = std::fs::read(segment).expect("read segment");
    let mut positions = Vec::new();
    let mut at = 0;
    while at + 12 <= data.len() {
        let length = i32::from_be_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
        let total = 12 + length as usize;
        if at + total > data.len() {
            break;
        }
        positions.push((at, total));
        at += total;
    }
    positions
}

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ListOffsetsRequest,
    ListOffsetsResponse, ProduceRequest, ProduceResponse, TopicName,
};

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// CreateTopics v7 for one topic; returns its error code.
pub fn create_topic(
    client: &mut RawClient,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    validate_only: bool,
) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)])
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request);
    response.topics[0].error_code
}

/// Produce v9 of raw `records` to one partition: (error code, base offset); `None` for acks=0.
pub fn produce_records(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    records: Vec<u8>,
    acks: i16,
) -> Option<(i16, i64)> {
    produce_records_within(client, topic, partition, records, acks, 10_000)
}

/// Produce v9 on a fresh connection that waits `read_timeout` for the answer (the broker waits
/// up to `timeout_ms` for acks=-1): (error code, base offset). `acks` must not be 0.
pub fn produce_on_new_connection(
    address: SocketAddr,
    topic: &str,
    partition: i32,
    records: Vec<u8>,
    acks: i16,
    (timeout_ms, read_timeout): (i32, Duration),
) -> (i16, i64) {
    let mut client = RawClient::connect(address);
    client
        .stream
        .set_read_timeout(Some(read_timeout))
        .expect("timeout");
    produce_records_within(&mut client, topic, partition, records, acks, timeout_ms)
        .expect("a Produce response (acks is not 0)")
}

/// [`produce_records`] with the broker's wait for acks=-1 of `timeout_ms`.
pub fn produce_records_within(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    records: Vec<u8>,
    acks: i16,
    timeout_ms: i32,
) -> Option<(i16, i64)> {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(records)))])]);
    let correlation_id = client.send(ApiKey::Produce, 9, &request);
    if acks == 0 {
        return None;
    }
    let frame = client.read_frame().expect("Produce response");
    let (got, response): (i32, ProduceResponse) = decode_response(ApiKey::Produce, 9, frame);
    assert_eq!(got, correlation_id);
    let partition = &response.responses[0].partition_responses[0];
    Some((partition.error_code, partition.base_offset))
}

/// Produce one batch of `values` (acks=1); returns (error code, base offset).
pub fn produce_values(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    values: &[&[u8]],
) -> (i16, i64) {
    let batch = broker::wire::batch::build_batch(0, 1_700_000_000_000, values);
    produce_records(client, topic, partition, batch, 1).expect("acks=1 answers")
}

/// Sends a Fetch v12 of one partition (min_bytes 1); returns the correlation id.
pub fn send_fetch(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> i32 {
    let request = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    client.send(ApiKey::Fetch, 12, &request)
}

/// Reads a Fetch v12 response: (error code, high watermark, raw records).
pub fn read_fetch(client: &mut RawClient, correlation_id: i32) -> (i16, i64, Bytes) {
    let frame = client.read_frame().expect("Fetch response");
    let (got, response): (i32, FetchResponse) = decode_response(ApiKey::Fetch, 12, frame);
    assert_eq!(got, correlation_id);
    assert_eq!(response.error_code, 0);
    let data = &response.responses[0].partitions[0];
    (
        data.error_code,
        data.high_watermark,
        data.records.clone().unwrap_or_default(),
    )
}

/// One Fetch v12 of one partition: (error code, high watermark, raw records).
pub fn fetch_once(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> (i16, i64, Bytes) {
    let correlation_id = send_fetch(client, topic, partition, offset, max_wait_ms);
    read_fetch(client, correlation_id)
}

/// Reads every record of a partition from `from` to the HW: (offset, value).
pub fn fetch_all(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    from: i64,
) -> Vec<(i64, Vec<u8>)> {
    fetch_all_keyed(client, topic, partition, from)
        .into_iter()
        .map(|(offset, _, value)| (offset, value))
        .collect()
}

/// Reads every record of a partition from `from` to the HW: (offset, key, value).
pub fn fetch_all_keyed(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    from: i64,
) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
    let mut records = Vec::new();
    let mut offset = from;
    for _ in 0..100_000 {
        let (error_code, high_watermark, mut data) =
            fetch_once(client, topic, partition, offset, 0);
        assert_eq!(error_code, 0, "fetch at {offset}");
        if offset >= high_watermark {
            return records;
        }
        assert!(
            !data.is_empty(),
            "no data at {offset} below HW {high_watermark}"
        );
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut data)
            .expect("decodable batches");
        for set in sets {
            for record in set.records {
                if record.offset >= offset {
                    assert_eq!(record.offset, offset, "offsets must be contiguous");
                    records.push((
                        record.offset,
                        record.key.map(|k| k.to_vec()).unwrap_or_default(),
                        record.value.map(|v| v.to_vec()).unwrap_or_default(),
                    ));
                    offset += 1;
                }
            }
        }
    }
    panic!("fetch_all did not reach the HW");
}

/// ListOffsets v7 for one partition: (error code, offset).
pub fn list_offset(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 7, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// Validates every stored batch of a partition dir: CRC, magic, length, contiguous offsets.
/// Returns the LEO.
pub fn validate_partition_dir(dir: &Path) -> i64 {
    let mut expected: Option<i64> = None;
    for segment in segment_files(dir) {
        let data = std::fs::read(&segment).expect("read segment");
        let name = segment.file_stem().and_then(|s| s.to_str()).expect("name");
        let base: i64 = name.parse().expect("20-digit base offset");
        if let Some(expected) = expected {
            assert_eq!(
                base,
                expected,
                "segment {} does not follow the previous one",
                segment.display()
            );
        }
        let mut next = base;
        let mut at = 0;
        while at < data.len() {
            let header = broker::wire::batch::validate_batch(&data[at..], 1 << 30)
                .unwrap_or_else(|e| panic!("{} at {at}: {e}", segment.display()));
            assert_eq!(header.base_offset, next, "{} at {at}", segment.display());
            next = header.next_offset();
            at += header.total_bytes;
        }
        expected = Some(next);
    }
    expected.unwrap_or(0)
}

/// ApiVersions v3 on a fresh connection must answer with error 0 and list Produce and Fetch.
pub fn assert_api_versions_served(address: SocketAddr) {
    let mut client = RawClient::connect(address);
    let request = kafka_protocol::messages::ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kaos-test"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let response: kafka_protocol::messages::ApiVersionsResponse =
        client.call(ApiKey::ApiVersions, 3, &request);
    assert_eq!(response.error_code, 0);
    let keys: Vec<i16> = response.api_keys.iter().map(|k| k.api_key).collect();
    assert!(
        keys.contains(&(ApiKey::Produce as i16)) && keys.contains(&(ApiKey::Fetch as i16)),
        "{keys:?}"
    );
}

/// Runs `broker/tests/py/<script>` with `args` under python3 (confluent-kafka, which .ci/run
/// installs), asserts it succeeded (its stderr in the message) and returns the one JSON object it
/// prints on stdout.
pub fn run_python_report(script: &str, args: &[String]) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let output = Command::new("python3")
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 must be installed (.ci/run installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client {script} failed (is confluent-kafka installed? `python3 -m pip install confluent-kafka`):\n{stderr}"
    );
    serde_json::from_slice(&output.stdout).expect("the script prints one JSON object")
}
