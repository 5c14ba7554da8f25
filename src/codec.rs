//! The only module that calls bincode (2.0.1, pinned; see `clippy.toml`). Rows and link
//! payloads are encoded with its standard configuration (little-endian, varint integers)
//! and always decoded with a limit derived from the length of the bytes they come from.
//!
//! bincode's limit counts the bytes of the integers, strings and byte buffers it decodes.
//! Decoding goes through serde, to which bincode hands a sequence's (or map's) stored length
//! as its size hint; two gaps that leaves are closed here by a [`Guarded`] deserializer
//! around bincode's, through which every sequence, map, option, newtype and enum of the
//! value decodes, nested ones included:
//!
//! - serde pre-allocates up to 1 MiB for a sequence from its size hint before bincode reads
//!   an element: the hint passed on is capped at [`HINT_CAP`] elements and at the elements
//!   the call may still take, and a longer legitimate sequence grows as a `Vec` does;
//! - a sequence of elements encoded in no bytes (`Vec<()>`) would loop for as long as its
//!   stored length says: the elements of sequences and entries of maps all the values of
//!   one [`Blob`] take are counted, and refused past its length plus [`SLACK`], which
//!   elements that each take at least a byte of input never exceed.
//!
//! The in-memory size of the elements is not counted: memory is bounded by the input times
//! the largest element of the row types (`docs/design.md`, "Snapshots").

#![allow(clippy::disallowed_methods)]

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use bincode::config::{self, Config};
use bincode::enc::write::Writer;
use bincode::error::{DecodeError, EncodeError};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
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

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Limit => f.write_str("the value needs more memory than the limit allows"),
            CodecError::Other(m) => f.write_str(m),
            CodecError::NotCanonical => f.write_str("the value is not in its shortest encoding"),
        }
    }
}

/// Appends the encoding of `value` to `out`.
#[inline]
pub(crate) fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_writer(value, Append(out), config::standard())
        .map_err(|e| CodecError::Other(e.to_string()))
}

/// Decodes one value that must take all of `bytes` (a change feed's row or payload),
/// under the limit a blob of that length gets.
pub(crate) fn decode_one<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let blob = Blob::new(bytes.len());
    let (value, used) = decode_in::<T>(bytes, &blob).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!(
            "{} bytes left over after the value",
            bytes.len() - used
        ));
    }
    Ok(value)
}

/// Appends to a `Vec`: bincode writes most values (varints, tags) a byte or a few at a
/// time, which a push takes without the call to `memcpy` that `extend_from_slice` makes.
struct Append<'a>(&'a mut Vec<u8>);

impl Writer for Append<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        if let [b] = bytes {
            self.0.push(*b);
        } else {
            self.0.extend_from_slice(bytes);
        }
        Ok(())
    }
}

/// Appends the encodings of `values`, end to end, one encoder call each, and pushes on
/// `ends` where each value's bytes end, counted from where they start. (One call for all,
/// as a tuple, through a writer that records the length, took more instructions.)
fn encode_all<T: Serialize>(
    values: impl Iterator<Item = T>,
    out: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> Result<(), CodecError> {
    let start = out.len();
    for v in values {
        bincode::serde::encode_into_writer(&v, Append(out), config::standard())
            .map_err(|e| CodecError::Other(e.to_string()))?;
        ends.push(out.len() - start);
    }
    Ok(())
}

/// Why values could not be saved.
pub(crate) enum Unloadable {
    /// A `Serialize` implementation failed.
    Encode(CodecError),
    /// Value `index` (in the order given) encodes to bytes that do not load back as it.
    Value {
        /// Its position.
        index: usize,
        /// Why, in words a user can act on.
        cause: String,
    },
}

/// Appends the encodings of the `n` values of `values` end to end (as one call of
/// [`encode`] for each), then checks that they load back: decoding them one after the
/// other exactly as a load does (the same limit, the same shared allowance of elements,
/// the same canonical check), each value must take exactly its own bytes. So a value
/// whose type needs a self-describing format (`deserialize_any`), or whose encoding the
/// decoder reads differently (a field skipped when serialized and not when deserialized),
/// is refused. A panic in a `Deserialize` (or a `Drop` of a decoded value) is caught and
/// refuses the value it decoded. Costs one decode of the values.
pub(crate) fn encode_checked<'a, T: Serialize + DeserializeOwned + 'a>(
    n: usize,
    values: impl Iterator<Item = &'a T>,
    out: &mut Vec<u8>,
) -> Result<(), Unloadable> {
    let start = out.len();
    let mut ends = Vec::with_capacity(n);
    match encode_all(values, out, &mut ends) {
        Ok(()) => {}
        Err(CodecError::Other(detail)) if detail.contains("SequenceMustHaveLength") => {
            return Err(Unloadable::Value {
                index: ends.len(),
                cause: format!(
                    "its type writes a map or sequence of unknown length, which the snapshot \
                     encoding cannot carry (#[serde(flatten)], or a Serialize that calls \
                     serialize_map or serialize_seq without a length): {detail}"
                ),
            })
        }
        Err(e) => return Err(Unloadable::Encode(e)),
    }
    let bytes = &out[start..];
    let at = Cell::new(0usize);
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let blob = Blob::new(bytes.len());
        let mut pos = 0;
        for (i, &end) in ends.iter().enumerate() {
            at.set(i);
            let own = end - pos;
            match decode_canonical_in::<T>(&bytes[pos..], &blob) {
                Ok((_, used)) if used == own => {}
                Ok((_, used)) => return Err((i, mismatch(used, own))),
                Err(e) => return Err((i, not_decodable(e))),
            }
            pos = end;
        }
        Ok(())
    }));
    match checked {
        Ok(Ok(())) => Ok(()),
        Ok(Err((index, cause))) => Err(Unloadable::Value { index, cause }),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(Unloadable::Value {
                index: at.get(),
                cause: format!("its Deserialize panicked decoding it back ({msg})"),
            })
        }
    }
}

/// What a value that decodes back to another value may be using.
const DIFFERS: &str = "#[serde(skip_serializing_if)], #[serde(skip_serializing)], or a \
                       Serialize and Deserialize that disagree";

fn mismatch(used: usize, own: usize) -> String {
    format!(
        "its encoding is {own} bytes, but decoding it back reads {used}: it does not decode \
         to the value saved ({DIFFERS})"
    )
}

fn not_decodable(e: CodecError) -> String {
    match e {
        CodecError::Other(detail) if detail.contains("AnyNotSupported") => format!(
            "its type needs a self-describing format, which the snapshot encoding is not \
             (#[serde(tag = ...)], #[serde(untagged)], #[serde(flatten)], or a Deserialize \
             that calls deserialize_any or deserialize_ignored_any): {detail}"
        ),
        CodecError::Other(detail) if detail.contains(TOO_MANY) => format!(
            "it holds more sequence elements encoded in no bytes (`()`, unit structs) than a \
             load accepts: {detail}"
        ),
        CodecError::Other(detail) => format!(
            "it does not decode back ({detail}): it is read differently from how it is \
             written ({DIFFERS})"
        ),
        CodecError::Limit => "decoding it back exceeds the memory limit a load allows".into(),
        CodecError::NotCanonical => {
            format!("it decodes back to a value that encodes to other bytes ({DIFFERS})")
        }
    }
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
    left: &Cell<u64>,
) -> Result<(T, usize), CodecError> {
    let seed = GuardedSeed {
        seed: PhantomData::<T>,
        budget: Budget(left),
        counted: false,
    };
    bincode::serde::seed_decode_from_slice(seed, bytes, config).map_err(|e| match e {
        DecodeError::LimitExceeded => CodecError::Limit,
        e => CodecError::Other(e.to_string()),
    })
}

/// Decodes one value from the start of `bytes`; returns it and the bytes it took. The
/// value may take as many sequence elements as `bytes` has bytes, plus [`SLACK`].
#[cfg(test)]
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    limit: Limit,
) -> Result<(T, usize), CodecError> {
    let left = Cell::new((bytes.len() as u64).saturating_add(SLACK));
    decode_counted(bytes, limit, &left)
}

/// A blob of values laid end to end: its decode limit, and the sequence elements all its
/// values together may still take (its length plus [`SLACK`]), so that many values of
/// zero-sized elements can't each take the whole blob's allowance.
pub(crate) struct Blob {
    limit: Limit,
    left: Cell<u64>,
}

impl Blob {
    pub fn new(len: usize) -> Blob {
        Blob {
            limit: Limit::for_len(len),
            left: Cell::new((len as u64).saturating_add(SLACK)),
        }
    }

    pub fn limit(&self) -> Limit {
        self.limit
    }
}

/// Decodes one value of `blob` from the start of `bytes`, counting its elements against
/// the blob's allowance; returns it and the bytes it took.
#[inline]
pub(crate) fn decode_in<T: DeserializeOwned>(
    bytes: &[u8],
    blob: &Blob,
) -> Result<(T, usize), CodecError> {
    decode_counted(bytes, blob.limit, &blob.left)
}

#[inline]
fn decode_counted<T: DeserializeOwned>(
    bytes: &[u8],
    limit: Limit,
    left: &Cell<u64>,
) -> Result<(T, usize), CodecError> {
    let c = config::standard();
    match limit.0 {
        12 => with_limit(bytes, c.with_limit::<{ 1 << 12 }>(), left),
        14 => with_limit(bytes, c.with_limit::<{ 1 << 14 }>(), left),
        16 => with_limit(bytes, c.with_limit::<{ 1 << 16 }>(), left),
        18 => with_limit(bytes, c.with_limit::<{ 1 << 18 }>(), left),
        20 => with_limit(bytes, c.with_limit::<{ 1 << 20 }>(), left),
        22 => with_limit(bytes, c.with_limit::<{ 1 << 22 }>(), left),
        24 => with_limit(bytes, c.with_limit::<{ 1 << 24 }>(), left),
        26 => with_limit(bytes, c.with_limit::<{ 1 << 26 }>(), left),
        28 => with_limit(bytes, c.with_limit::<{ 1 << 28 }>(), left),
        30 => with_limit(bytes, c.with_limit::<{ 1 << 30 }>(), left),
        32 => with_limit(bytes, c.with_limit::<{ 1 << 32 }>(), left),
        34 => with_limit(bytes, c.with_limit::<{ 1 << 34 }>(), left),
        36 => with_limit(bytes, c.with_limit::<{ 1 << 36 }>(), left),
        38 => with_limit(bytes, c.with_limit::<{ 1 << 38 }>(), left),
        40 => with_limit(bytes, c.with_limit::<{ 1 << 40 }>(), left),
        42 => with_limit(bytes, c.with_limit::<{ 1 << 42 }>(), left),
        _ => with_limit(bytes, c.with_limit::<{ 1 << 44 }>(), left),
    }
}

/// A writer that only counts the bytes written.
struct Count(usize);

impl Writer for Count {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0 += bytes.len();
        Ok(())
    }
}

/// [`decode_canonical_in`] of one value alone.
#[cfg(test)]
pub(crate) fn decode_canonical<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    limit: Limit,
) -> Result<(T, usize), CodecError> {
    canonical(decode::<T>(bytes, limit)?)
}

/// As [`decode_in`], and the bytes taken must be as many as [`encode`] writes for the
/// value (counted by encoding it, without allocating): bincode also accepts longer forms
/// of its varints (integers, lengths, enum tags), which would make a re-save of the loaded
/// store differ from the file. Lengths, not bytes, are compared: a value whose encoding
/// depends on more than the value (a `HashMap`'s iteration order) encodes to the same
/// length in any order, and loads.
#[inline]
pub(crate) fn decode_canonical_in<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    blob: &Blob,
) -> Result<(T, usize), CodecError> {
    canonical(decode_in::<T>(bytes, blob)?)
}

#[inline]
fn canonical<T: Serialize>((value, used): (T, usize)) -> Result<(T, usize), CodecError> {
    let mut count = Count(0);
    match bincode::serde::encode_into_writer(&value, &mut count, config::standard()) {
        Ok(()) if count.0 == used => Ok((value, used)),
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
    let blob = Blob::new(bytes.len());
    let mut pos = 0;
    for i in 0..n {
        let (value, used) = decode_canonical_in::<T>(&bytes[pos..], &blob).map_err(|e| (i, e))?;
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

/// The most elements (or entries) a sequence's (or map's) size hint passes on to serde,
/// which pre-allocates that many before reading any: 512 `u64`s are 4 KiB, the smallest
/// decode limit. The hint is also never above the elements the decode may still take
/// (its input's length plus [`SLACK`]), so in a blob of at most 256 bytes (limit 4 KiB) a
/// hostile length of `u32`s pre-allocates at most 272 of them, 1088 bytes. A longer
/// legitimate sequence grows as a `Vec` does, by doubling.
const HINT_CAP: usize = 512;

/// The elements of sequences and entries of maps a decode call may take beyond the length
/// of its input: each element that takes at least a byte of input is covered by the input,
/// so only sequences of elements encoded in no bytes (`()`, unit structs, skipped fields)
/// can exceed the count, and then only by more than this.
const SLACK: u64 = 16;

/// The error when the count is exceeded.
const TOO_MANY: &str = "more sequence elements than bytes: zero-sized elements?";

/// The elements and entries a decode may still take (of one value, or of a whole blob),
/// shared by all its wrappers.
#[derive(Clone, Copy)]
struct Budget<'b>(&'b Cell<u64>);

impl Budget<'_> {
    /// Counts one element or entry about to be decoded.
    #[inline]
    fn take<E: de::Error>(self) -> Result<(), E> {
        match self.0.get().checked_sub(1) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => Err(E::custom(TOO_MANY)),
        }
    }

    /// The size hint passed on to serde: capped if the length was read from the input
    /// (`counted`), as is otherwise (a tuple's or array's length is the type's).
    #[inline]
    fn hint(self, hint: Option<usize>, counted: bool) -> Option<usize> {
        if !counted {
            return hint;
        }
        let left = usize::try_from(self.0.get()).unwrap_or(usize::MAX);
        hint.map(|h| h.min(HINT_CAP).min(left))
    }
}

/// A deserializer that decodes through `inner`, wrapping every visitor it is given so that
/// what it visits (sequences, maps, enums, options, newtypes) is decoded through a
/// `Guarded` too.
struct Guarded<'b, D> {
    inner: D,
    budget: Budget<'b>,
}

impl<'b, D> Guarded<'b, D> {
    #[inline]
    fn visitor<V>(&self, inner: V, counted: bool) -> GuardedVisitor<'b, V> {
        GuardedVisitor {
            inner,
            budget: self.budget,
            counted,
        }
    }
}

/// Forwards `deserialize_*` methods that take only a visitor.
macro_rules! forward_deserialize {
    ($($method:ident: $counted:literal,)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.visitor(visitor, $counted);
            self.inner.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guarded<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any: false,
        deserialize_bool: false,
        deserialize_i8: false,
        deserialize_i16: false,
        deserialize_i32: false,
        deserialize_i64: false,
        deserialize_i128: false,
        deserialize_u8: false,
        deserialize_u16: false,
        deserialize_u32: false,
        deserialize_u64: false,
        deserialize_u128: false,
        deserialize_f32: false,
        deserialize_f64: false,
        deserialize_char: false,
        deserialize_str: false,
        deserialize_bytes: false,
        deserialize_option: false,
        deserialize_unit: false,
        deserialize_seq: true,
        deserialize_map: true,
        deserialize_identifier: false,
        deserialize_ignored_any: false,
    }

    // owned strings and byte buffers: read borrowed, then copied into an allocation of
    // their exact length (bincode's own path allocates them zeroed and copies in, which
    // took half the time of decoding a row of short strings)

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_str(Owned(visitor))
    }

    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_bytes(Owned(visitor))
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_unit_struct(name, visitor)
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    // tuples, tuple structs and structs: a length fixed by the type, not read from the input

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_tuple(len, visitor)
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_struct(name, fields, visitor)
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_enum(name, variants, visitor)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor that hands a borrowed string or byte slice to `V` as an owned `String` or
/// `Vec<u8>`, as `deserialize_string` and `deserialize_byte_buf` promise; anything else
/// is passed through.
struct Owned<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Owned<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    #[inline]
    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.0.visit_string(v.to_owned())
    }

    #[inline]
    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.0.visit_string(v)
    }

    #[inline]
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<V::Value, E> {
        self.0.visit_byte_buf(v.to_vec())
    }

    #[inline]
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<V::Value, E> {
        self.0.visit_byte_buf(v)
    }
}

/// A seed that decodes through a [`Guarded`] deserializer; `counted` if what it decodes is
/// an element of a sequence or the key of a map entry.
struct GuardedSeed<'b, S> {
    seed: S,
    budget: Budget<'b>,
    counted: bool,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for GuardedSeed<'_, S> {
    type Value = S::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        if self.counted {
            self.budget.take()?;
        }
        self.seed.deserialize(Guarded {
            inner,
            budget: self.budget,
        })
    }
}

/// A visitor that wraps every deserializer, sequence, map and enum it is given. `counted`
/// if it came from a sequence or map whose length is read from the input.
struct GuardedVisitor<'b, V> {
    inner: V,
    budget: Budget<'b>,
    counted: bool,
}

/// Forwards `visit_*` methods that take a plain value.
macro_rules! forward_visit {
    ($($method:ident($ty:ty),)*) => {$(
        #[inline]
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for GuardedVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    }

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Guarded {
            inner,
            budget: self.budget,
        })
    }

    #[inline]
    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Guarded {
            inner,
            budget: self.budget,
        })
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, inner: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(GuardedSeq {
            inner,
            budget: self.budget,
            counted: self.counted,
        })
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, inner: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(GuardedMap {
            inner,
            budget: self.budget,
            counted: self.counted,
        })
    }

    #[inline]
    fn visit_enum<A: EnumAccess<'de>>(self, inner: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(GuardedEnum {
            inner,
            budget: self.budget,
        })
    }
}

/// A sequence whose elements decode through [`Guarded`] deserializers; `counted` if its
/// length was read from the input, and then its size hint is capped.
struct GuardedSeq<'b, A> {
    inner: A,
    budget: Budget<'b>,
    counted: bool,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for GuardedSeq<'_, A> {
    type Error = A::Error;

    #[inline]
    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.inner.next_element_seed(GuardedSeed {
            seed,
            budget: self.budget,
            counted: self.counted,
        })
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.budget.hint(self.inner.size_hint(), self.counted)
    }
}

/// A map whose keys and values decode through [`Guarded`] deserializers; as [`GuardedSeq`],
/// with an entry counted as one element.
struct GuardedMap<'b, A> {
    inner: A,
    budget: Budget<'b>,
    counted: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for GuardedMap<'_, A> {
    type Error = A::Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(GuardedSeed {
            seed,
            budget: self.budget,
            counted: self.counted,
        })
    }

    #[inline]
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.next_value_seed(GuardedSeed {
            seed,
            budget: self.budget,
            counted: false,
        })
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.budget.hint(self.inner.size_hint(), self.counted)
    }
}

/// An enum whose variant and contents decode through [`Guarded`] deserializers.
struct GuardedEnum<'b, A> {
    inner: A,
    budget: Budget<'b>,
}

impl<'de, 'b, A: EnumAccess<'de>> EnumAccess<'de> for GuardedEnum<'b, A> {
    type Error = A::Error;
    type Variant = GuardedEnum<'b, A::Variant>;

    #[inline]
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let seed = GuardedSeed {
            seed,
            budget: self.budget,
            counted: false,
        };
        let (value, inner) = self.inner.variant_seed(seed)?;
        Ok((
            value,
            GuardedEnum {
                inner,
                budget: self.budget,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for GuardedEnum<'_, A> {
    type Error = A::Error;

    #[inline]
    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    #[inline]
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.newtype_variant_seed(GuardedSeed {
            seed,
            budget: self.budget,
            counted: false,
        })
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = GuardedVisitor {
            inner: visitor,
            budget: self.budget,
            counted: false,
        };
        self.inner.tuple_variant(len, visitor)
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = GuardedVisitor {
            inner: visitor,
            budget: self.budget,
            counted: false,
        };
        self.inner.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    /// A string type whose visitor takes only owned strings (serde's default `visit_str`
    /// refuses): the owned-string path must hand it a `String`.
    #[derive(Debug, PartialEq)]
    struct OnlyOwned(String);

    impl<'de> serde::Deserialize<'de> for OnlyOwned {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            // deliberately: the case the owned-string path must still serve
            #[allow(clippy::serde_api_misuse)]
            impl<'de> Visitor<'de> for V {
                type Value = OnlyOwned;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an owned string")
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<OnlyOwned, E> {
                    Ok(OnlyOwned(v))
                }
            }
            d.deserialize_string(V)
        }
    }

    /// Bytes read through `deserialize_byte_buf`, as `serde_bytes::ByteBuf` does.
    #[derive(Debug, PartialEq)]
    struct Buf(Vec<u8>);

    impl<'de> serde::Deserialize<'de> for Buf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Buf;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("owned bytes")
                }
                fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Buf, E> {
                    Ok(Buf(v))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    #[test]
    fn owned_strings_and_byte_buffers_reach_visitors_that_take_only_owned_values() {
        let mut bytes = Vec::new();
        encode(&"héllo".to_string(), &mut bytes).ok().unwrap();
        let (v, used) = decode::<OnlyOwned>(&bytes, Limit::for_len(bytes.len()))
            .ok()
            .unwrap();
        assert_eq!((v, used), (OnlyOwned("héllo".into()), bytes.len()));
        let (s, _) = decode::<String>(&bytes, Limit::for_len(bytes.len()))
            .ok()
            .unwrap();
        assert_eq!(s, "héllo");
        let (b, _) = decode::<Box<str>>(&bytes, Limit::for_len(bytes.len()))
            .ok()
            .unwrap();
        assert_eq!(&*b, "héllo");

        let mut raw = Vec::new();
        encode(&serde_bytes_like(&[1, 2, 255]), &mut raw)
            .ok()
            .unwrap();
        let (v, _) = decode::<Buf>(&raw, Limit::for_len(raw.len())).ok().unwrap();
        assert_eq!(v, Buf(vec![1, 2, 255]));

        // invalid UTF-8 is still refused
        let bad = [2u8, 0xc3, 0x28];
        assert!(decode::<String>(&bad, Limit::for_len(bad.len())).is_err());
        assert!(decode::<OnlyOwned>(&bad, Limit::for_len(bad.len())).is_err());
    }

    /// Serializes as bytes (`serialize_bytes`), the encoding `deserialize_byte_buf` reads.
    fn serde_bytes_like(b: &[u8]) -> impl Serialize + '_ {
        struct B<'a>(&'a [u8]);
        impl Serialize for B<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        B(b)
    }

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
    fn the_values_of_one_blob_share_its_allowance_of_elements() {
        let mut one = Vec::new();
        encode(&vec![(); 10], &mut one).ok().unwrap();
        assert_eq!(one.len(), 1);
        assert!(decode_all::<Vec<()>>(&one, 1, |_| ()).is_ok());
        // five rows of ten units in five bytes: 50 elements, more than 5 + SLACK
        let five: Vec<u8> = one.repeat(5);
        let r = decode_all::<Vec<()>>(&five, 5, |_| ());
        assert!(matches!(r, Err((_, CodecError::Other(e))) if e.contains(TOO_MANY)));
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

    /// A varint length prefix of `len` (bincode's standard configuration), then nothing.
    fn hostile_length(len: u64) -> Vec<u8> {
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes
    }

    fn is_too_many<T>(r: Result<T, CodecError>) -> bool {
        matches!(r, Err(CodecError::Other(e)) if e.contains(TOO_MANY))
    }

    #[test]
    fn a_hostile_length_of_zero_sized_elements_is_refused() {
        #[derive(serde::Deserialize)]
        struct Unit;
        for len in [u32::MAX as u64, 1 << 60, u64::MAX] {
            let bytes = hostile_length(len);
            let limit = Limit::for_len(bytes.len());
            assert!(is_too_many(decode::<Vec<()>>(&bytes, limit)), "{len}");
            assert!(is_too_many(decode::<Vec<Unit>>(&bytes, limit)), "{len}");
            assert!(is_too_many(decode::<Vec<[u64; 0]>>(&bytes, limit)), "{len}");
            assert!(is_too_many(decode_canonical::<Vec<()>>(&bytes, limit)));
            assert!(is_too_many(decode::<BTreeMap<(), ()>>(&bytes, limit)));
            assert!(is_too_many(decode::<HashMap<(), ()>>(&bytes, limit)));
            // nested, after other values
            let mut nested = vec![1, 0, 1];
            nested.extend_from_slice(&bytes);
            let got = decode::<(Vec<u8>, Option<Vec<()>>)>(&nested, limit);
            assert!(is_too_many(got), "{len}");
        }
    }

    #[test]
    fn sequences_of_zero_sized_elements_are_bounded_by_the_input_plus_slack() {
        let limit = Limit::for_len(1);
        let most = 1 + SLACK as usize;
        let mut out = Vec::new();
        encode(&vec![(); most], &mut out).ok().unwrap();
        assert_eq!(out.len(), 1);
        let got = decode_canonical::<Vec<()>>(&out, limit);
        assert!(matches!(got, Ok((v, 1)) if v.len() == most));
        out.clear();
        encode(&vec![(); most + 1], &mut out).ok().unwrap();
        assert!(is_too_many(decode::<Vec<()>>(&out, limit)));
        // the count is of the whole call: two sequences share it
        out.clear();
        encode(&(vec![(); 9], vec![(); 9]), &mut out).ok().unwrap();
        assert!(matches!(
            decode::<(Vec<()>, Vec<()>)>(&out, limit),
            Ok((_, 2))
        ));
        out.clear();
        encode(&(vec![(); 9], vec![(); 10]), &mut out).ok().unwrap();
        assert!(is_too_many(decode::<(Vec<()>, Vec<()>)>(&out, limit)));
    }

    /// The size hint serde would pre-allocate a sequence from (its elements left unread).
    #[derive(Debug, PartialEq)]
    struct Hint(Option<usize>);

    impl<'de> serde::Deserialize<'de> for Hint {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Hint, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Hint;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a sequence")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Hint, A::Error> {
                    Ok(Hint(seq.size_hint()))
                }
            }
            d.deserialize_seq(V)
        }
    }

    fn hint(bytes: &[u8]) -> Option<usize> {
        match decode::<Hint>(bytes, Limit::for_len(bytes.len())) {
            Ok((Hint(hint), _)) => hint,
            Err(_) => panic!("the length decodes"),
        }
    }

    #[test]
    fn the_size_hint_of_a_sequence_is_capped() {
        for len in [u32::MAX as u64, 1 << 60, u64::MAX] {
            // never above what the call may still take: its input's length plus the slack
            let mut bytes = hostile_length(len);
            bytes.extend_from_slice(&[1, 2, 3]);
            assert_eq!(hint(&bytes), Some(bytes.len() + SLACK as usize), "{len}");
            let r = decode::<Vec<u32>>(&bytes, Limit::for_len(bytes.len()));
            assert!(matches!(r, Err(CodecError::Other(_))), "{len}");
            let r = decode::<HashMap<u32, u32>>(&bytes, Limit::for_len(bytes.len()));
            assert!(matches!(r, Err(CodecError::Other(_))), "{len}");
        }
        // a short legitimate sequence's hint is its length
        let mut out = Vec::new();
        encode(&vec![7u32; 100], &mut out).ok().unwrap();
        assert_eq!(hint(&out), Some(100));
        // a long one's is capped, and the sequence still decodes
        let long: Vec<u32> = (0..10_000).collect();
        out.clear();
        encode(&long, &mut out).ok().unwrap();
        assert_eq!(hint(&out), Some(HINT_CAP));
        let got = decode_canonical::<Vec<u32>>(&out, Limit::for_len(out.len()));
        assert!(matches!(got, Ok((v, used)) if v == long && used == out.len()));
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    enum Shape {
        Unit,
        Newtype(Vec<u16>),
        Tuple(Vec<u8>, Option<Vec<String>>),
        Struct {
            a: Vec<Vec<u64>>,
            b: BTreeMap<u8, Vec<i32>>,
        },
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    struct Wrapper(Vec<Shape>);

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    struct Row {
        bytes: Vec<Vec<u8>>,
        names: Option<Vec<String>>,
        none: Option<Vec<String>>,
        map: HashMap<String, Vec<u32>>,
        sorted: BTreeMap<String, Vec<u32>>,
        shapes: Vec<Shape>,
        wrapped: Wrapper,
        array: [u64; 4],
        tuple: (u128, char, f64, bool, ()),
        boxed: Box<Option<Vec<()>>>,
        long: Vec<u64>,
    }

    fn round_trip<T>(value: &T)
    where
        T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
    {
        let mut out = Vec::new();
        encode(value, &mut out).ok().unwrap();
        let limit = Limit::for_len(out.len());
        match decode_canonical::<T>(&out, limit) {
            Ok((got, used)) => {
                assert!(got == *value, "{value:?}");
                assert_eq!(used, out.len());
            }
            Err(CodecError::Other(e)) => panic!("{value:?}: {e}"),
            Err(CodecError::Limit) => panic!("{value:?}: over the limit"),
            Err(CodecError::NotCanonical) => panic!("{value:?}: not canonical"),
        }
    }

    #[test]
    fn nested_values_round_trip_through_the_guarded_decoder() {
        round_trip(&vec![vec![1u8, 2], vec![], vec![3; 700]]);
        round_trip(&Some(vec!["a".to_string(), String::new()]));
        round_trip(&None::<Vec<String>>);
        // a `HashMap` re-encodes in another order: the same length, so it is canonical
        let one: HashMap<String, Vec<u32>> = [("k".to_string(), vec![1, 2])].into();
        round_trip(&one);
        let map: HashMap<String, Vec<u32>> = (0..600)
            .map(|i| (format!("k{i}"), (0..i % 7).collect()))
            .collect();
        round_trip(&map);
        let sorted: BTreeMap<String, Vec<u32>> = map.into_iter().collect();
        round_trip(&sorted);
        let shapes = vec![
            Shape::Unit,
            Shape::Newtype(vec![1, 2, 600]),
            Shape::Tuple(vec![9; 3], Some(vec!["x".into()])),
            Shape::Tuple(vec![], None),
            Shape::Struct {
                a: vec![vec![u64::MAX], vec![]],
                b: [(1, vec![-1, 2]), (2, vec![])].into_iter().collect(),
            },
        ];
        for s in &shapes {
            round_trip(s);
        }
        round_trip(&Row {
            bytes: vec![vec![0; 5], vec![]],
            names: Some(vec!["n".into(); 3]),
            none: None,
            map: one,
            sorted,
            shapes: shapes.clone(),
            wrapped: Wrapper(shapes),
            array: [1, 2, 3, u64::MAX],
            tuple: (u128::MAX, 'é', -1.5, true, ()),
            boxed: Box::new(Some(vec![(); 4])),
            long: (0..5_000).collect(),
        });
    }
}
