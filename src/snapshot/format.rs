//! The byte layout of a snapshot: the fixed header, the checksum, and the varint reader and
//! writer of the payload's structure. Rows and link payloads are encoded by `crate::codec`;
//! the checksum is `crate::checksum`'s.

use super::error::SnapshotError;
pub use crate::checksum::checksum;

/// The first eight bytes of every snapshot: a high-bit byte (catches 7-bit transfers),
/// `RLG`, CR LF (catches newline conversion), SUB (stops `type` on DOS) and LF.
pub const MAGIC: [u8; 8] = *b"\x89RLG\r\n\x1a\n";

/// The format version this build writes. Every earlier version stays loadable.
pub const FORMAT_VERSION: u32 = 2;

/// Length in bytes of the header (versions 1 and 2).
pub const HEADER_LEN: usize = 72;

/// The fixed header of a snapshot (all integers little-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | [`MAGIC`] |
/// | 8 | 4 | format version |
/// | 12 | 4 | flags (none defined; a set bit is rejected) |
/// | 16 | 4 | header length (72) |
/// | 20 | 4 | reserved, zero |
/// | 24 | 8 | schema fingerprint |
/// | 32 | 8 | payload length |
/// | 40 | 8 | entity count (rows of plain tables and polymorphic bases) |
/// | 48 | 8 | link count (all relations) |
/// | 56 | 8 | payload checksum ([`checksum`] of the payload) |
/// | 64 | 8 | header checksum ([`checksum`] of bytes 0..64) |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u32,
    /// Flags; zero in versions 1 and 2.
    pub flags: u32,
    /// Fingerprint of the schema the snapshot was written with.
    pub fingerprint: u64,
    /// Length of the payload that follows the header.
    pub payload_len: u64,
    /// Entities stored (rows of plain tables and bases; kind rows are counted with their base).
    pub entities: u64,
    /// Links stored, over all relations.
    pub links: u64,
    /// Checksum of the payload.
    pub payload_checksum: u64,
}

impl Header {
    /// The header's bytes, with the header checksum computed.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[12..16].copy_from_slice(&self.flags.to_le_bytes());
        h[16..20].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        h[24..32].copy_from_slice(&self.fingerprint.to_le_bytes());
        h[32..40].copy_from_slice(&self.payload_len.to_le_bytes());
        h[40..48].copy_from_slice(&self.entities.to_le_bytes());
        h[48..56].copy_from_slice(&self.links.to_le_bytes());
        h[56..64].copy_from_slice(&self.payload_checksum.to_le_bytes());
        let sum = checksum(&h[..64]);
        h[64..72].copy_from_slice(&sum.to_le_bytes());
        h
    }

    /// Parses and checks the header at the start of `bytes` (the whole snapshot): magic,
    /// version, header checksum, flags, header length, and that the payload length
    /// matches the input. Does not check the payload's checksum.
    ///
    /// # Errors
    ///
    /// The first check that fails.
    pub fn parse(bytes: &[u8]) -> Result<Header, SnapshotError> {
        let header = Header::fields(bytes)?;
        let expected = (HEADER_LEN as u64).saturating_add(header.payload_len);
        let found = bytes.len() as u64;
        if found < expected {
            return Err(SnapshotError::Truncated { expected, found });
        }
        if found > expected {
            return Err(SnapshotError::TrailingBytes {
                extra: found - expected,
            });
        }
        Ok(header)
    }

    /// The checks of [`parse`](Self::parse) but the last: the header of a file cut short
    /// or with bytes appended still reads.
    pub(crate) fn fields(bytes: &[u8]) -> Result<Header, SnapshotError> {
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(SnapshotError::NotASnapshot);
        }
        if bytes.len() < HEADER_LEN {
            return Err(SnapshotError::Truncated {
                expected: HEADER_LEN as u64,
                found: bytes.len() as u64,
            });
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version == 0 || version > FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if checksum(&bytes[..64]) != u64_at(64) {
            return Err(SnapshotError::HeaderCorrupt {
                detail: "header checksum mismatch",
            });
        }
        let flags = u32_at(12);
        if flags != 0 {
            return Err(SnapshotError::UnknownFlags { flags });
        }
        if u32_at(16) as usize != HEADER_LEN {
            return Err(SnapshotError::HeaderCorrupt {
                detail: "header length is not 72",
            });
        }
        if u32_at(20) != 0 {
            return Err(SnapshotError::HeaderCorrupt {
                detail: "reserved header field is not zero",
            });
        }
        Ok(Header {
            version,
            flags,
            fingerprint: u64_at(24),
            payload_len: u64_at(32),
            entities: u64_at(40),
            links: u64_at(48),
            payload_checksum: u64_at(56),
        })
    }
}

/// Appends `v` as an unsigned LEB128 varint (7 bits per byte, low first; minimal).
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A bounds-checked cursor over the payload. Every count it returns has been checked
/// against the bytes left (each item needs at least one byte), so that a hostile count
/// can never make the caller allocate more than a small multiple of the input.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// What is being read, for error messages.
    pub section: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            section: "payload",
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn malformed(&self, detail: impl Into<String>) -> SnapshotError {
        SnapshotError::Malformed {
            section: self.section.to_string(),
            offset: self.pos as u64,
            detail: detail.into(),
        }
    }

    fn end(&self) -> SnapshotError {
        self.malformed("unexpected end of payload")
    }

    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.end())?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, SnapshotError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.data.get(self.pos).ok_or_else(|| self.end())?;
            self.pos += 1;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(self.malformed("varint overflows 64 bits"));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(self.malformed("varint is not minimal"));
                }
                return Ok(v);
            }
        }
        Err(self.malformed("varint longer than 10 bytes"))
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        // the common forms (one to three bytes, minimal by construction) without the
        // general loop; anything else takes the checked path
        if let Some(&b0) = self.data.get(self.pos) {
            if b0 < 0x80 {
                self.pos += 1;
                return Ok(u32::from(b0));
            }
            if let Some(&b1) = self.data.get(self.pos + 1) {
                if (1..0x80).contains(&b1) {
                    self.pos += 2;
                    return Ok(u32::from(b0 & 0x7f) | u32::from(b1) << 7);
                }
                if b1 >= 0x80 {
                    if let Some(&b2) = self.data.get(self.pos + 2) {
                        if (1..0x80).contains(&b2) {
                            self.pos += 3;
                            return Ok(u32::from(b0 & 0x7f)
                                | u32::from(b1 & 0x7f) << 7
                                | u32::from(b2) << 14);
                        }
                    }
                }
            }
        }
        self.u32_slow()
    }

    #[cold]
    fn u32_slow(&mut self) -> Result<u32, SnapshotError> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| self.malformed(format!("{v} does not fit 32 bits")))
    }

    pub fn u64_le(&mut self) -> Result<u64, SnapshotError> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// Moves past `n` varints without decoding them (the byte after each is the one
    /// whose high bit is clear); an error if the payload ends first.
    pub fn skip_varints(&mut self, n: usize) -> Result<(), SnapshotError> {
        let mut left = n;
        let mut at = self.pos;
        // whole chunks while they end fewer varints than are left (a count the compiler
        // vectorises), then byte by byte
        for chunk in self.data[at..].chunks_exact(32) {
            let ends = chunk.iter().filter(|&&b| b < 0x80).count();
            if ends >= left {
                break;
            }
            left -= ends;
            at += 32;
        }
        while left > 0 {
            let &b = self.data.get(at).ok_or_else(|| self.end())?;
            left -= usize::from(b < 0x80);
            at += 1;
        }
        self.pos = at;
        Ok(())
    }

    /// A count of items that each take at least `min_bytes` bytes.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, SnapshotError> {
        let n = self.varint()?;
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(min_bytes.max(1)))
            .is_some_and(|need| need <= self.left());
        if !fits {
            return Err(self.malformed(format!("count {n} exceeds the {} bytes left", self.left())));
        }
        Ok(n as usize)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if n > self.left() {
            return Err(self.end());
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// A byte blob with a fixed 8-byte length prefix.
    pub fn blob(&mut self) -> Result<&'a [u8], SnapshotError> {
        let n = self.u64_le()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.left() => self.bytes(n),
            _ => Err(self.malformed(format!(
                "blob of {n} bytes exceeds the {} bytes left",
                self.left()
            ))),
        }
    }

    pub fn str(&mut self) -> Result<&'a str, SnapshotError> {
        let n = self.count(1)?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| self.malformed("name is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u32_fast_paths_agree_with_the_general_decoder() {
        // every length boundary, and non-minimal forms of each length
        let mut inputs: Vec<Vec<u8>> = [0u64, 1, 127, 128, 255, 16_383, 16_384, 2_097_151]
            .iter()
            .chain(&[2_097_152, u32::MAX as u64, u32::MAX as u64 + 1])
            .map(|&v| {
                let mut out = Vec::new();
                put_varint(&mut out, v);
                out
            })
            .collect();
        inputs.extend([
            vec![0x80, 0x00],
            vec![0x81, 0x80, 0x00],
            vec![0xff, 0xff, 0x00],
            vec![0x80],
            vec![0xff, 0xff],
            vec![],
        ]);
        for bytes in inputs {
            let mut fast = Reader::new(&bytes);
            let mut slow = Reader::new(&bytes);
            let general = slow.varint().ok().and_then(|v| u32::try_from(v).ok());
            assert_eq!(fast.u32().ok(), general, "{bytes:02x?}");
            if general.is_some() {
                assert_eq!(fast.left(), slow.left(), "{bytes:02x?}");
            }
        }
    }

    #[test]
    fn varints_round_trip_and_reject_non_minimal_forms() {
        let values = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let mut out = Vec::new();
        for &v in &values {
            put_varint(&mut out, v);
        }
        let mut r = Reader::new(&out);
        for &v in &values {
            assert_eq!(r.varint().unwrap(), v);
        }
        assert_eq!(r.left(), 0);
        assert!(Reader::new(&[0x80, 0x00]).varint().is_err());
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
    }

    #[test]
    fn a_count_larger_than_the_input_is_refused() {
        let mut out = Vec::new();
        put_varint(&mut out, 1 << 40);
        assert!(Reader::new(&out).count(1).is_err());
    }

    #[test]
    fn skipping_varints_lands_where_decoding_them_does() {
        // lengths one to ten bytes, across several 32-byte chunks and their boundaries
        let values: Vec<u64> = (0..200u64).map(|i| (1u64 << (i * 7 % 64)) - 1).collect();
        let mut out = Vec::new();
        for &v in &values {
            put_varint(&mut out, v);
        }
        for n in 0..=values.len() {
            let mut decoded = Reader::new(&out);
            for _ in 0..n {
                decoded.varint().unwrap();
            }
            let mut skipped = Reader::new(&out);
            skipped.skip_varints(n).unwrap();
            assert_eq!(skipped.pos(), decoded.pos(), "{n} varints");
        }
        // more varints than the input ends: an error, at any length
        assert!(Reader::new(&out).skip_varints(201).is_err());
        assert!(Reader::new(&out[..out.len() - 1])
            .skip_varints(200)
            .is_err());
        assert!(Reader::new(&[0x80; 40]).skip_varints(1).is_err());
        assert!(Reader::new(&[]).skip_varints(1).is_err());
        assert!(Reader::new(&[]).skip_varints(0).is_ok());
    }
}
