//! The message id in every record a kaos producer writes: the value starts with `kaos:<id>:`, then
//! padding up to the configured size, so any reader can trace a record back to its send.

const PREFIX: &[u8] = b"kaos:";

/// The value of the record carrying message `id`, `size_bytes` long (longer if the id needs it).
pub fn encode(id: u64, size_bytes: usize) -> Vec<u8> {
    let mut value = Vec::with_capacity(size_bytes.max(32));
    value.extend_from_slice(PREFIX);
    value.extend_from_slice(id.to_string().as_bytes());
    value.push(b':');
    while value.len() < size_bytes {
        value.push(b'.');
    }
    value
}

/// The message id a record value carries, if it is one of ours.
pub fn decode(value: &[u8]) -> Option<u64> {
    let rest = value.strip_prefix(PREFIX)?;
    let end = rest.iter().position(|&b| b == b':')?;
    let digits = std::str::from_utf8(&rest[..end]).ok()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A number in [0, 1) drawn from `seed` and message `id` (splitmix64's mixer): the same for the
/// same pair in every run, so that a choice made per message (a poison message, an aborted
/// transaction) repeats with the seed.
pub(crate) fn seeded_unit(seed: u64, id: u64) -> f64 {
    let mut z = id ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z as f64 / u64::MAX as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        for id in [0u64, 7, 1 << 40, u64::MAX] {
            let v = encode(id, 100);
            assert!(v.len() >= 100);
            assert_eq!(decode(&v), Some(id));
        }
        assert_eq!(encode(5, 10), b"kaos:5:...".to_vec());
    }

    #[test]
    fn foreign_values_have_no_id() {
        for v in [
            &b""[..],
            b"kaos:",
            b"kaos::",
            b"kaos:12",
            b"kaos:1x:",
            b"hello",
            b"kaos:99999999999999999999999:",
        ] {
            assert_eq!(decode(v), None, "{:?}", String::from_utf8_lossy(v));
        }
    }
}
