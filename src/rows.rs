//! Typed decoding of stored rows into storage: a table's rows into its column, a
//! many-to-many's payloads into their vector, each through its migration when stored at an
//! older version. Monomorphised per row and payload type when the schema declares the
//! table or relation (the `load` and `load_payloads` function pointers of its definition),
//! so that a snapshot, which knows no row type, can decode them. The snapshot module
//! parses the file and turns a [`RowsError`] into its own error, naming the section.

use crate::arena::{Arena, Column, ErasedArena, KindArena};
use crate::codec::{self, Blob, Limit};
use crate::key::RawKey;
use crate::relation::{ErasedPayloads, PayloadVec};
use crate::schema::{Entity, RelationDef, RowDecoder, RowError, TableDef};

/// Where a table's rows go.
pub(crate) enum Layout<'a> {
    /// A plain table or a base: every slot's highest issued version and the version of its
    /// entity (0: vacant), and the free list, the slot reused first first. One row per
    /// occupied slot, in slot order.
    Slots {
        slots: &'a [(u32, u32)],
        free: &'a [u32],
    },
    /// A kind: the base slots of its rows, in the kind's order.
    Kind { keys: &'a [u32] },
}

/// Why stored rows or payloads did not decode. Offsets count from the start of the rows'
/// (or payloads') bytes.
pub(crate) enum RowsError {
    /// They are stored at a version older than the program's, with no migration from it.
    NoMigration,
    /// Row or payload `index`, at `offset`, did not decode (or its migration failed);
    /// `limit` is the decoding limit that applied.
    Row {
        index: usize,
        offset: usize,
        limit: Limit,
        error: RowError,
    },
    /// Bytes are left after the last row or payload, from `offset` on.
    Trailing { offset: usize, left: usize },
}

/// Loads one table's rows (monomorphised per row type, stored in its `TableDef`): the
/// layout, the rows' bytes, the version they were stored at, and the live version of each
/// slot of the table's root (itself, or a kind's base).
pub(crate) type LoadTable =
    fn(&TableDef, Layout<'_>, &[u8], u32, &[u32]) -> Result<Box<dyn ErasedArena>, RowsError>;

/// Decodes one many-to-many's payloads (monomorphised per payload type, stored in its
/// `RelationDef`): their bytes, their number, and the payload version they were stored at.
pub(crate) type LoadPayloads =
    fn(&RelationDef, &[u8], usize, u32) -> Result<Box<dyn ErasedPayloads>, RowsError>;

/// Decodes the rows of a table stored at `version` into a column (see [`LoadTable`]).
pub(crate) fn load_table<T: Entity>(
    def: &TableDef,
    layout: Layout<'_>,
    rows: &[u8],
    version: u32,
    root_live: &[u32],
) -> Result<Box<dyn ErasedArena>, RowsError> {
    let migration = if version == def.version {
        None
    } else {
        let m = def
            .migrations
            .iter()
            .find(|(from, _)| *from == version)
            .and_then(|(_, m)| m.downcast_ref::<RowDecoder<T>>());
        Some(m.ok_or(RowsError::NoMigration)?)
    };
    let blob = Blob::new(rows.len());
    let limit = blob.limit();
    let mut pos = 0usize;
    let mut row = 0usize;
    let column = {
        let mut next = || -> Result<T, RowsError> {
            let bytes = &rows[pos..];
            let decoded = match migration {
                Some(m) => m(bytes, &blob),
                None => codec::decode_canonical_in::<T>(bytes, &blob).map_err(RowError::Codec),
            };
            let (value, used) = decoded.map_err(|error| RowsError::Row {
                index: row,
                offset: pos,
                limit,
                error,
            })?;
            pos += used;
            row += 1;
            Ok(value)
        };
        match layout {
            Layout::Slots { slots, free } => {
                Column::Slots(Arena::from_slots(slots, free, &mut next)?)
            }
            Layout::Kind { keys } => {
                let keys = keys.iter().map(|&i| {
                    RawKey::at(i as usize, root_live[i as usize])
                        .expect("kind rows were checked against their base")
                });
                Column::Kind(KindArena::from_keys(keys, root_live.len(), &mut next)?)
            }
        }
    };
    if pos != rows.len() {
        return Err(RowsError::Trailing {
            offset: pos,
            left: rows.len() - pos,
        });
    }
    Ok(Box::new(column))
}

/// Decodes the `n` payloads of the many-to-many `def`, stored end to end in `bytes` at
/// payload version `version` (through its migration if older than the program's).
pub(crate) fn load_payloads<W: Entity>(
    def: &RelationDef,
    bytes: &[u8],
    n: usize,
    version: u32,
) -> Result<Box<dyn ErasedPayloads>, RowsError> {
    let limit = Limit::for_len(bytes.len());
    let mut v = PayloadVec::<W>(Vec::with_capacity(n.min(bytes.len().max(1) * 4)));
    if version == def.payload_version {
        codec::decode_all::<W>(bytes, n, |w| v.0.push(w)).map_err(|(index, e)| RowsError::Row {
            index,
            offset: 0,
            limit,
            error: RowError::Codec(e),
        })?;
        return Ok(Box::new(v));
    }
    let m = def
        .payload_migrations
        .iter()
        .find(|(from, _)| *from == version)
        .and_then(|(_, m)| m.downcast_ref::<RowDecoder<W>>())
        .ok_or(RowsError::NoMigration)?;
    let blob = Blob::new(bytes.len());
    let mut pos = 0;
    for index in 0..n {
        let (w, used) = m(&bytes[pos..], &blob).map_err(|error| RowsError::Row {
            index,
            offset: pos,
            limit,
            error,
        })?;
        pos += used;
        v.0.push(w);
    }
    if pos != bytes.len() {
        return Err(RowsError::Trailing {
            offset: pos,
            left: bytes.len() - pos,
        });
    }
    Ok(Box::new(v))
}
