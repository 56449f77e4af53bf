//! Seeded fuzzing, in process, of the request decoder (admission + body decoding, for every API
//! and version the broker and the controller serve) and of produce's record-batch validation
//! (header, CRC, records, codecs). Inputs are mutations of valid frames and batches: counts,
//! lengths, varints, codecs, truncations, random bytes. Every outcome must be a decoded request
//! (a valid batch) or an error with a message; no panic, no allocation beyond a bound.
//!
//! Bounded by a count so CI runs it: `KAOS_FUZZ_ITERATIONS` (default 20,000 of each kind) and
//! `KAOS_FUZZ_SEED` (default fixed) set a longer or different run; a failure prints the seed,
//! the iteration and the input.

mod alloc_meter;
mod codecs;
mod hostile;

use std::time::Instant;

use broker::api::table::{serves, Role};
use broker::wire::batch::{self, build_raw_batch, put_varint};
use broker::wire::records;
use bytes::Bytes;

const ITERATIONS_DEFAULT: u64 = 20_000;
const SEED_DEFAULT: u64 = 0x6b61_6f73_2d66_757a;
/// Largest single allocation decoding a fuzzed frame (a few KiB) may make.
const DECODE_ALLOCATION_BYTES_MAX: usize = 1 << 20;
/// `message.max.bytes` given to the batch validation.
const MESSAGE_BYTES_MAX: usize = 1 << 20;

/// SplitMix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
        Err(_) => default,
    }
}

const INTERESTING_I32: [i32; 9] = [0, 1, -1, -2, 2, 0x7fff_ffff, i32::MIN, 0x7fff, 0x1_0000];

/// Applies one random mutation to `bytes` (kept non-empty where possible).
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, donors: &[Vec<u8>]) {
    let at = rng.below(bytes.len());
    match rng.below(9) {
        // An i32 count or length.
        0 if bytes.len() >= 4 => {
            let at = rng.below(bytes.len() - 3);
            let value = INTERESTING_I32[rng.below(INTERESTING_I32.len())];
            bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        // An i16 string length.
        1 if bytes.len() >= 2 => {
            let at = rng.below(bytes.len() - 1);
            let value = [0x7fff_i16, -1, -2, 0, 1][rng.below(5)];
            bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
        }
        // A varint (compact length, record field) replaced by an interesting or overlong one.
        2 if !bytes.is_empty() => {
            let mut varint = Vec::new();
            if rng.chance(30) {
                varint.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
            } else {
                put_varint(
                    &mut varint,
                    i64::from(INTERESTING_I32[rng.below(INTERESTING_I32.len())]),
                );
            }
            bytes.splice(at..at + 1, varint);
        }
        3 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
        4 => bytes.truncate(rng.below(bytes.len() + 1)),
        5 => {
            let count = 1 + rng.below(16);
            let random: Vec<u8> = (0..count).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, random);
        }
        6 if !bytes.is_empty() => bytes[at] = rng.next() as u8,
        7 if !donors.is_empty() => {
            let donor = &donors[rng.below(donors.len())];
            let from = rng.below(donor.len());
            let to = from + rng.below(donor.len() - from + 1);
            bytes.splice(at..at, donor[from..to].iter().copied());
        }
        _ => {
            let cut = rng.below(bytes.len() + 1);
            bytes.drain(at.min(cut)..at.max(cut));
        }
    }
}

/// What the decoder made of one frame.
#[derive(Default, Debug)]
struct RequestOutcomes {
    decoded: u64,
    refused_at_admission: u64,
    refused_body: u64,
}

/// Admits and decodes `frame` as the broker (`apis` = its APIs) would; panics if an error has no
/// message or the decoding allocates more than the bound.
fn decode_frame(frame: &[u8], apis: Apis, outcomes: &mut RequestOutcomes) {
    let (outcome, largest) = alloc_meter::measure(|| {
        match broker::api::table::admit(Bytes::copy_from_slice(frame), apis) {
            Err(reason) => Err(reason.to_string()),
            Ok(broker::api::Admission::Answered(_)) => Ok(()),
            Ok(broker::api::Admission::Request(admitted)) => {
                hostile::decode_body(admitted.api, admitted.version, admitted.body)
                    .map_err(|e| format!("body: {e:#}"))
            }
        }
    });
    assert!(
        largest <= DECODE_ALLOCATION_BYTES_MAX,
        "decoding allocated {largest} bytes at once"
    );
    match outcome {
        Ok(()) => outcomes.decoded += 1,
        Err(message) if message.starts_with("body: ") => {
            assert!(message.len() > "body: ".len(), "an error without a message");
            outcomes.refused_body += 1;
        }
        Err(message) => {
            assert!(!message.is_empty(), "an error without a message");
            outcomes.refused_at_admission += 1;
        }
    }
}

/// The process whose APIs (with version ranges) a frame is admitted against.
type Apis = Role;

fn request_seeds() -> Vec<(Vec<u8>, Apis)> {
    let mut seeds = Vec::new();
    for (api, version) in hostile::all_api_versions() {
        let body = hostile::populated_body(api, version)
            .unwrap_or_else(|| panic!("no request of {api:?} v{version}"));
        let frame = hostile::frame(api, version, 1, &body);
        let apis = if serves(Role::ClusterBroker, api) {
            Role::ClusterBroker
        } else if serves(Role::SingleBroker, api) {
            Role::SingleBroker
        } else {
            Role::Controller
        };
        seeds.push((frame, apis));
    }
    seeds
}

/// Runs `iterations` mutated frames from `seed`; returns the outcomes.
fn fuzz_requests(seed: u64, iterations: u64) -> RequestOutcomes {
    let seeds = request_seeds();
    let donors: Vec<Vec<u8>> = seeds.iter().map(|(f, _)| f.clone()).collect();
    let mut rng = Rng(seed);
    let mut outcomes = RequestOutcomes::default();
    for iteration in 0..iterations {
        let (frame, apis) = &seeds[rng.below(seeds.len())];
        let mut frame = frame.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut frame, &donors);
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decode_frame(&frame, *apis, &mut outcomes)
        }));
        if result.is_err() {
            panic!("request fuzz failed: KAOS_FUZZ_SEED={seed} iteration {iteration}, frame {frame:02x?}");
        }
    }
    outcomes
}

/// Record bytes with keys, values and headers (offsetDeltas 0..n), for the batch seeds.
fn rich_records(count: usize) -> Vec<u8> {
    let mut section = Vec::new();
    for delta in 0..count {
        let mut body = vec![0u8];
        put_varint(&mut body, delta as i64 * 3);
        put_varint(&mut body, delta as i64);
        put_varint(&mut body, 3);
        body.extend_from_slice(b"key");
        put_varint(&mut body, 5);
        body.extend_from_slice(b"value");
        put_varint(&mut body, 1);
        put_varint(&mut body, 1);
        body.push(b'h');
        put_varint(&mut body, -1);
        put_varint(&mut section, body.len() as i64);
        section.extend_from_slice(&body);
    }
    section
}

/// Validates `records` as produce does; Ok(batches) or an error message.
fn validate_as_produce(records: &[u8]) -> Result<usize, String> {
    let spans = batch::validate_records(records, MESSAGE_BYTES_MAX).map_err(|e| e.to_string())?;
    for span in &spans {
        let batch = &records[span.position..span.position + span.header.total_bytes];
        records::validate_batch_records(batch, &span.header).map_err(|e| e.to_string())?;
    }
    Ok(spans.len())
}

/// One fuzzed batch: mutate the uncompressed records (then compress) or the batch bytes, then
/// usually repair the length and CRC so that the record validation is reached.
fn fuzzed_batch(rng: &mut Rng, donors: &[Vec<u8>]) -> Vec<u8> {
    let count = 1 + rng.below(4);
    let mut section = rich_records(count);
    let codec = [0i16, 0, 1, 2, 3, 4, 5, 7][rng.below(8)];
    if rng.chance(60) {
        for _ in 0..1 + rng.below(3) {
            mutate(rng, &mut section, donors);
        }
    }
    let declared = if rng.chance(20) {
        INTERESTING_I32[rng.below(INTERESTING_I32.len())].max(1)
    } else {
        count as i32
    };
    let mut batch = build_raw_batch(
        codec,
        declared - 1,
        declared,
        &codecs::compress(codec, &section),
    );
    if rng.chance(30) {
        mutate(rng, &mut batch, donors);
        if batch.len() >= 12 && rng.chance(80) {
            let length = (batch.len() - 12) as i32;
            batch[8..12].copy_from_slice(&length.to_be_bytes());
        }
        if batch.len() > 21 && rng.chance(80) {
            batch::seal(&mut batch);
        }
    }
    batch
}

#[derive(Default, Debug)]
struct BatchOutcomes {
    valid: u64,
    refused: u64,
}

fn fuzz_batches(seed: u64, iterations: u64) -> BatchOutcomes {
    let donors = vec![rich_records(3), batch::build_batch(0, 1, &[b"a", b"b"])];
    let mut rng = Rng(seed ^ 0x5eed);
    let mut outcomes = BatchOutcomes::default();
    for iteration in 0..iterations {
        let batch = fuzzed_batch(&mut rng, &donors);
        let result =
            std::panic::catch_unwind(|| alloc_meter::measure(|| validate_as_produce(&batch)));
        match result {
            Ok((Ok(_), _)) => outcomes.valid += 1,
            Ok((Err(message), largest)) => {
                assert!(!message.is_empty(), "an error without a message");
                assert!(
                    largest <= 2 * broker::limits::DECOMPRESSED_BATCH_BYTES_MAX,
                    "KAOS_FUZZ_SEED={seed} iteration {iteration}: allocated {largest} bytes"
                );
                outcomes.refused += 1;
            }
            Err(_) => panic!(
                "batch fuzz failed: KAOS_FUZZ_SEED={seed} iteration {iteration}, batch {batch:02x?}"
            ),
        }
    }
    outcomes
}

#[test]
fn fuzzed_request_frames_decode_or_are_refused_with_a_reason() {
    let seed = setting("KAOS_FUZZ_SEED", SEED_DEFAULT);
    let iterations = setting("KAOS_FUZZ_ITERATIONS", ITERATIONS_DEFAULT);
    let started = Instant::now();
    let outcomes = fuzz_requests(seed, iterations);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "request fuzz: seed {seed}, {iterations} frames in {seconds:.1} s ({:.0}/s): {outcomes:?}",
        iterations as f64 / seconds.max(1e-9)
    );
    // The mutations reach both sides: some frames still decode, many bodies are refused.
    assert!(
        outcomes.decoded > 0 && outcomes.refused_body > 0,
        "{outcomes:?}"
    );
}

#[test]
fn fuzzed_record_batches_validate_or_are_refused_with_a_reason() {
    let seed = setting("KAOS_FUZZ_SEED", SEED_DEFAULT);
    let iterations = setting("KAOS_FUZZ_ITERATIONS", ITERATIONS_DEFAULT);
    let started = Instant::now();
    let outcomes = fuzz_batches(seed, iterations);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "batch fuzz: seed {seed}, {iterations} batches in {seconds:.1} s ({:.0}/s): {outcomes:?}",
        iterations as f64 / seconds.max(1e-9)
    );
    assert!(outcomes.valid > 0 && outcomes.refused > 0, "{outcomes:?}");
}
