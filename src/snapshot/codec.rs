//! The only module that calls bincode (2.0.1, pinned; see `clippy.toml`). Rows and link
//! payloads are encoded with its standard configuration (little-endian, varint integers)
//! and always decoded with a limit derived from the length of the bytes they come from.

#![allow(clippy::disallowed_methods)]

use bincode::config::{self, Config};
use bincode::enc::write::Writer;
use bincode::error::{DecodeError, EncodeError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why one value failed to encode or decode.
pub(crate) enum CodecError {
    /// The decoder asked for more memory than the limit allows.
    Limit,
    /// Anything else, described.
    Other(String),
    /// The value decoded, but from a longer form than its encoding (bincode also accepts
    /// non-minimal varints): a re-save would write other bytes.
    NotCanonical,
}

/// Appends the encoding of `value` to `out`.
#[inline]
pub(crate) fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, config::standard())
        .map(|_| ())
        .map_err(|e| CodecError::Other(e.to_string()))
}

/// The decode limit chosen for a blob of bytes: the smallest power of four, at least
/// 4 KiB, that is at least 16 times the blob's length (bincode counts decoded in-memory
/// bytes, and one byte of input decodes to at most 16: a varint `u128`). At most 2^44.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limit(u8);

impl Limit {
    pub fn for_len(len: usize) -> Limit {
        let need = (len as u128).saturating_mul(16).max(1 << 12);
        let mut exp = 12u8;
        while (1u128 << exp) < need && exp < 44 {
            exp += 2;
        }
        Limit(exp)
    }

    /// The limit in bytes.
    pub fn bytes(self) -> u64 {
        1 << self.0
    }
}

fn with_limit<T: DeserializeOwned, C: Config>(
    bytes: &[u8],
    config: C,
) -> Result<(T, usize), CodecError> {
    bincode::serde::decode_from_slice(bytes, config).map_err(|e| match e {
        DecodeError::LimitExceeded => CodecError::Limit,
        e => CodecError::Other(e.to_string()),
    })
}

/// Decodes one value from the start of `bytes`; returns it and the bytes it took.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    limit: Limit,
) -> Result<(T, usize), CodecError> {
    let c = config::standard();
    match limit.0 {
        12 => with_limit(bytes, c.with_limit::<{ 1 << 12 }>()),
        14 => with_limit(bytes, c.with_limit::<{ 1 << 14 }>()),
        16 => with_limit(bytes, c.with_limit::<{ 1 << 16 }>()),
        18 => with_limit(bytes, c.with_limit::<{ 1 << 18 }>()),
        20 => with_limit(bytes, c.with_limit::<{ 1 << 20 }>()),
        22 => with_limit(bytes, c.with_limit::<{ 1 << 22 }>()),
        24 => with_limit(bytes, c.with_limit::<{ 1 << 24 }>()),
        26 => with_limit(bytes, c.with_limit::<{ 1 << 26 }>()),
        28 => with_limit(bytes, c.with_limit::<{ 1 << 28 }>()),
        30 => with_limit(bytes, c.with_limit::<{ 1 << 30 }>()),
        32 => with_limit(bytes, c.with_limit::<{ 1 << 32 }>()),
        34 => with_limit(bytes, c.with_limit::<{ 1 << 34 }>()),
        36 => with_limit(bytes, c.with_limit::<{ 1 << 36 }>()),
        38 => with_limit(bytes, c.with_limit::<{ 1 << 38 }>()),
        40 => with_limit(bytes, c.with_limit::<{ 1 << 40 }>()),
        42 => with_limit(bytes, c.with_limit::<{ 1 << 42 }>()),
        _ => with_limit(bytes, c.with_limit::<{ 1 << 44 }>()),
    }
}

/// A writer that checks what is written against the bytes a value was decoded from.
struct Compare<'a>(&'a [u8]);

impl Writer for Compare<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        match self.0.strip_prefix(bytes) {
            Some(rest) => {
                self.0 = rest;
                Ok(())
            }
            None => Err(EncodeError::Other("not the canonical encoding")),
        }
    }
}

/// As [`decode`], and the bytes taken must be exactly those [`encode`] writes for the
/// value (checked by encoding it against them, without allocating): bincode also accepts
/// longer forms of its varints (integers, lengths, enum tags), which would make a re-save
/// of the loaded store differ from the file.
#[inline]
pub(crate) fn decode_canonical<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    limit: Limit,
) -> Result<(T, usize), CodecError> {
    let (value, used) = decode::<T>(bytes, limit)?;
    let mut rest = Compare(&bytes[..used]);
    match bincode::serde::encode_into_writer(&value, &mut rest, config::standard()) {
        Ok(()) if rest.0.is_empty() => Ok((value, used)),
        _ => Err(CodecError::NotCanonical),
    }
}

/// Decodes exactly `n` values laid end to end in `bytes`, which they must use up, each in
/// its canonical encoding, calling `f` with each. The limit is set by the length of the
/// whole blob.
pub(crate) fn decode_all<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    n: usize,
    mut f: impl FnMut(T),
) -> Result<(), (usize, CodecError)> {
    let limit = Limit::for_len(bytes.len());
    let mut pos = 0;
    for i in 0..n {
        let (value, used) = decode_canonical::<T>(&bytes[pos..], limit).map_err(|e| (i, e))?;
        pos += used;
        f(value);
    }
    if pos != bytes.len() {
        return Err((
            n,
            CodecError::Other(format!(
                "{} bytes left after the last value",
                bytes.len() - pos
            )),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_a_power_of_four_at_least_sixteen_times_the_input() {
        assert_eq!(Limit::for_len(0).bytes(), 4096);
        assert_eq!(Limit::for_len(256).bytes(), 4096);
        assert_eq!(Limit::for_len(257).bytes(), 16384);
        assert_eq!(Limit::for_len(1 << 20).bytes(), 1 << 24);
        assert_eq!(Limit::for_len((1 << 20) + 1).bytes(), 1 << 26);
        assert_eq!(Limit::for_len(usize::MAX).bytes(), 1 << 44);
    }

    #[test]
    fn a_hostile_string_length_is_refused_by_the_limit() {
        // a varint length prefix of 2^62 followed by nothing
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        let r = decode::<String>(&bytes, Limit::for_len(bytes.len()));
        assert!(matches!(r, Err(CodecError::Limit)));
    }

    #[test]
    fn a_non_minimal_varint_decodes_but_is_not_canonical() {
        // 5 as a varint with a u16 marker: bincode accepts it, the format does not
        let bytes = [251u8, 5, 0];
        let limit = Limit::for_len(bytes.len());
        assert!(matches!(decode::<u32>(&bytes, limit), Ok((5, 3))));
        assert!(matches!(
            decode_canonical::<u32>(&bytes, limit),
            Err(CodecError::NotCanonical)
        ));
        assert!(matches!(decode_canonical::<u32>(&[5], limit), Ok((5, 1))));
        assert!(decode_all::<u32>(&bytes, 1, |_| ()).is_err());
    }

    #[test]
    fn values_round_trip_and_leftovers_are_refused() {
        let mut out = Vec::new();
        for s in ["a", "bc", ""] {
            encode(&s.to_string(), &mut out).ok().unwrap();
        }
        let mut got = Vec::new();
        assert!(decode_all::<String>(&out, 3, |s| got.push(s)).is_ok());
        assert_eq!(got, ["a", "bc", ""]);
        assert!(decode_all::<String>(&out, 2, |_| ()).is_err());
    }
}
