//! Typed generational keys.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::num::NonZeroU32;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An untyped generational key: a slot index and the version of the entity in that slot.
///
/// Every [`Key<T>`] is a `RawKey` with a type attached. A `RawKey` names no table on its own;
/// it appears in errors and in type-erased reports such as [`DeletePreview`](crate::DeletePreview).
/// It displays as `index v version`, e.g. `3v1`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RawKey {
    index: u32,
    version: NonZeroU32,
}

impl RawKey {
    pub(crate) const fn new(index: u32, version: NonZeroU32) -> Self {
        RawKey { index, version }
    }

    /// The slot index of the key.
    pub fn index(self) -> u32 {
        self.index
    }

    /// The version (generation) of the key; never zero.
    pub fn version(self) -> u32 {
        self.version.get()
    }

    pub(crate) fn idx(self) -> usize {
        self.index as usize
    }

    /// The key of slot `index` at `version`, as the relations' stores keep a slot's
    /// owner: `None` for version 0 (no owner). `index` must fit in 32 bits.
    #[inline]
    pub(crate) fn at(index: usize, version: u32) -> Option<Self> {
        Some(RawKey {
            index: index as u32,
            version: NonZeroU32::new(version)?,
        })
    }

    /// Packs the key into a `u64` (version in the high half, index in the low half).
    pub fn to_bits(self) -> u64 {
        (u64::from(self.version.get()) << 32) | u64::from(self.index)
    }

    /// Unpacks a key made by [`to_bits`](Self::to_bits); `None` if the version half is zero.
    pub fn from_bits(bits: u64) -> Option<Self> {
        let version = NonZeroU32::new((bits >> 32) as u32)?;
        Some(RawKey {
            index: bits as u32,
            version,
        })
    }
}

impl Hash for RawKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.to_bits());
    }
}

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}v{}", self.index, self.version)
    }
}

impl fmt::Display for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Serialize for RawKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.to_bits())
    }
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bits = u64::deserialize(d)?;
        RawKey::from_bits(bits).ok_or_else(|| serde::de::Error::custom("key with version zero"))
    }
}

/// A typed, `Copy`, 8-byte generational handle to an entity of type `T`.
///
/// A `Key<Post>` can't be passed where a `Key<User>` is expected. Keys are never reused for
/// a different entity: once an entity is removed, its key is *stale* and every lookup with it
/// answers `None` (or a [`StaleKey`](crate::StaleKey) error), even after the slot is reused.
///
/// A key belongs to the store that issued it (and to the stores loaded from that store's
/// snapshots, which keep every key). It does not record which store that is: used on
/// another store of the same schema, a key names whatever entity of its table sits in its
/// slot at its version there, if any, as a `slotmap` key does with another map. Keep keys
/// with the store they came from.
pub struct Key<T> {
    raw: RawKey,
    _type: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    /// Attaches a type to a raw key. The key's index and version are checked when it is
    /// used, so a forged key never reaches a removed entity or memory outside the table: it
    /// is stale, or it names the entity that holds that slot at that version, whichever
    /// entity that is (a raw key carries no store or table of its own).
    pub fn from_raw(raw: RawKey) -> Self {
        Key {
            raw,
            _type: PhantomData,
        }
    }

    /// The untyped key.
    pub fn raw(self) -> RawKey {
        self.raw
    }
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Key<T> {}
impl<T> PartialEq for Key<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<T> Eq for Key<T> {}
impl<T> PartialOrd for Key<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Key<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.raw.cmp(&other.raw)
    }
}
impl<T> Hash for Key<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state)
    }
}
impl<T> fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.raw)
    }
}
impl<T> From<Key<T>> for RawKey {
    fn from(k: Key<T>) -> RawKey {
        k.raw
    }
}
impl<T> Serialize for Key<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}
impl<'de, T> Deserialize<'de> for Key<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawKey::deserialize(d).map(Key::from_raw)
    }
}

/// A key together with the table it belongs to: how type-erased reports name an entity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnyKey {
    /// The table's name, as declared in the [`Schema`](crate::Schema).
    pub table: &'static str,
    /// The key within that table.
    pub key: RawKey,
}

impl fmt::Debug for AnyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{:?}]", self.table, self.key)
    }
}

impl fmt::Display for AnyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_bits_and_are_eight_bytes() {
        let k = RawKey::new(7, NonZeroU32::new(3).unwrap());
        assert_eq!(RawKey::from_bits(k.to_bits()), Some(k));
        assert_eq!(RawKey::from_bits(7), None);
        assert_eq!(std::mem::size_of::<Key<String>>(), 8);
        assert_eq!(std::mem::size_of::<Option<Key<String>>>(), 8);
    }
}
