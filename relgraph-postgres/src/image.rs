//! A store's snapshot (format version 2, `docs/design.md`) read into tables and lists, and
//! written back from them: the export reads a store through its snapshot, the import
//! builds one and loads it with the store's own validating loader.

use relgraph::snapshot::{checksum, Header, FORMAT_VERSION, HEADER_LEN};
use relgraph::{RelationKind, Store};

use crate::mapping::Mapping;
use crate::Error;

/// One table's section.
#[derive(PartialEq)]
pub(crate) enum TableSec {
    /// A plain table or base: the slot section as stored (count, states, free list), the
    /// live slots (index, version) in slot order, their encoded rows end to end.
    Slots {
        raw: Vec<u8>,
        live: Vec<(u32, u32)>,
        /// Vacant slots (index, highest version issued).
        vacant: Vec<(u32, u32)>,
        rows: Vec<u8>,
    },
    /// A kind: its rows' slots in the kind's order, their encoded rows.
    Kind { keys: Vec<u32>, rows: Vec<u8> },
}

/// Non-empty lists in ascending owner order.
pub(crate) type Lists = Vec<(u32, Vec<u32>)>;

/// One relation's section.
#[derive(PartialEq)]
pub(crate) enum RelSec {
    OneToMany(Lists),
    OneToOne(Vec<(u32, u32)>),
    ManyToMany {
        a: Lists,
        payloads: Vec<u8>,
        b: Lists,
    },
}

/// A parsed snapshot.
pub(crate) struct Parsed {
    pub tables: Vec<TableSec>,
    pub relations: Vec<RelSec>,
}

struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn bad() -> Error {
        Error::Snapshot("the snapshot does not parse as format version 2".into())
    }

    fn varint(&mut self) -> Result<u64, Error> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = *self.b.get(self.pos).ok_or_else(Self::bad)?;
            self.pos += 1;
            if shift >= 64 {
                return Err(Self::bad());
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn u32(&mut self) -> Result<u32, Error> {
        u32::try_from(self.varint()?).map_err(|_| Self::bad())
    }

    fn blob(&mut self) -> Result<&'a [u8], Error> {
        let n = self.b.get(self.pos..self.pos + 8).ok_or_else(Self::bad)?;
        let n = u64::from_le_bytes(n.try_into().map_err(|_| Self::bad())?) as usize;
        self.pos += 8;
        let s = self.b.get(self.pos..self.pos + n).ok_or_else(Self::bad)?;
        self.pos += n;
        Ok(s)
    }

    fn lists(&mut self) -> Result<Lists, Error> {
        let n = self.varint()? as usize;
        let mut out = Vec::with_capacity(n.min(self.b.len()));
        for _ in 0..n {
            let owner = self.u32()?;
            let len = self.varint()? as usize;
            let mut items = Vec::with_capacity(len.min(self.b.len()));
            for _ in 0..len {
                items.push(self.u32()?);
            }
            out.push((owner, items));
        }
        Ok(out)
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_lists(out: &mut Vec<u8>, lists: &Lists) {
    put_varint(out, lists.len() as u64);
    for (owner, items) in lists {
        put_varint(out, u64::from(*owner));
        put_varint(out, items.len() as u64);
        for &i in items {
            put_varint(out, u64::from(i));
        }
    }
}

impl Mapping {
    /// The schema section of this schema's snapshots: an empty store's payload less its
    /// empty table and relation sections.
    pub(crate) fn schema_section(&self) -> Result<Vec<u8>, Error> {
        let bytes = Store::new(self.schema.clone())
            .to_snapshot()
            .map_err(|e| Error::Snapshot(e.to_string()))?;
        let payload = &bytes[HEADER_LEN..];
        let mut empty = 0;
        for t in &self.tables {
            empty += if t.base.is_some() { 9 } else { 10 };
        }
        for r in &self.relations {
            empty += if r.kind == RelationKind::ManyToMany {
                10
            } else {
                1
            };
        }
        Ok(payload[..payload.len() - empty].to_vec())
    }

    /// Parses a snapshot of a store of this mapping's schema.
    pub(crate) fn parse(&self, bytes: &[u8]) -> Result<Parsed, Error> {
        let schema_len = self.schema_section()?.len();
        let mut r = Rd {
            b: &bytes[HEADER_LEN..],
            pos: schema_len,
        };
        let mut tables = Vec::with_capacity(self.tables.len());
        for t in &self.tables {
            let start = r.pos;
            let n = r.varint()? as usize;
            if t.base.is_some() {
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(r.u32()?);
                }
                let rows = r.blob()?.to_vec();
                tables.push(TableSec::Kind { keys, rows });
                continue;
            }
            let mut live = Vec::new();
            let mut vacant = Vec::new();
            for i in 0..n {
                let x = r.varint()?;
                let high = (x >> 2) as u32;
                let version = match x & 3 {
                    0 => 0,
                    1 => high,
                    _ => r.u32()?,
                };
                if version != 0 {
                    live.push((i as u32, version));
                } else {
                    vacant.push((i as u32, high));
                }
            }
            let free = r.varint()?;
            for _ in 0..free {
                r.varint()?;
            }
            let raw = r.b[start..r.pos].to_vec();
            let rows = r.blob()?.to_vec();
            tables.push(TableSec::Slots {
                raw,
                live,
                vacant,
                rows,
            });
        }
        let mut relations = Vec::with_capacity(self.relations.len());
        for rel in &self.relations {
            relations.push(match rel.kind {
                RelationKind::OneToMany => RelSec::OneToMany(r.lists()?),
                RelationKind::OneToOne => {
                    let n = r.varint()? as usize;
                    let mut pairs = Vec::with_capacity(n);
                    for _ in 0..n {
                        pairs.push((r.u32()?, r.u32()?));
                    }
                    RelSec::OneToOne(pairs)
                }
                RelationKind::ManyToMany => {
                    let a = r.lists()?;
                    let payloads = r.blob()?.to_vec();
                    let b = r.lists()?;
                    RelSec::ManyToMany { a, payloads, b }
                }
            });
        }
        if r.pos != r.b.len() {
            return Err(Rd::bad());
        }
        Ok(Parsed { tables, relations })
    }

    /// A snapshot of `parsed` (tables' `raw` slot sections as given), loaded into a store
    /// by the store's own loader, which checks every invariant.
    pub(crate) fn build(&self, parsed: &Parsed) -> Result<Store, Error> {
        let mut out = vec![0u8; HEADER_LEN];
        out.extend_from_slice(&self.schema_section()?);
        let mut entities = 0u64;
        for t in &parsed.tables {
            match t {
                TableSec::Slots {
                    raw, live, rows, ..
                } => {
                    entities += live.len() as u64;
                    out.extend_from_slice(raw);
                    put_blob(&mut out, rows);
                }
                TableSec::Kind { keys, rows } => {
                    put_varint(&mut out, keys.len() as u64);
                    for &k in keys {
                        put_varint(&mut out, u64::from(k));
                    }
                    put_blob(&mut out, rows);
                }
            }
        }
        let mut links = 0u64;
        let count = |l: &Lists| l.iter().map(|(_, i)| i.len() as u64).sum::<u64>();
        for r in &parsed.relations {
            match r {
                RelSec::OneToMany(l) => {
                    links += count(l);
                    put_lists(&mut out, l);
                }
                RelSec::OneToOne(pairs) => {
                    links += pairs.len() as u64;
                    put_varint(&mut out, pairs.len() as u64);
                    for &(a, b) in pairs {
                        put_varint(&mut out, u64::from(a));
                        put_varint(&mut out, u64::from(b));
                    }
                }
                RelSec::ManyToMany { a, payloads, b } => {
                    links += count(a);
                    put_lists(&mut out, a);
                    put_blob(&mut out, payloads);
                    put_lists(&mut out, b);
                }
            }
        }
        let payload = &out[HEADER_LEN..];
        let header = Header {
            version: FORMAT_VERSION,
            flags: 0,
            fingerprint: self.fingerprint,
            payload_len: payload.len() as u64,
            entities,
            links,
            payload_checksum: checksum(payload),
        };
        out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
        Store::from_snapshot(self.schema.clone(), &out).map_err(|e| {
            Error::Invalid(format!(
                "the database's content does not make a valid store: {e}"
            ))
        })
    }
}

/// The slot section of a plain table whose slot states are not known (the change feed
/// changed the table): slots up to the highest live or recorded vacant one, each live
/// slot at its version, each vacant one at the highest version recorded for it in
/// `relgraph_vacant` (1 if none), the lowest vacant slot reused first. No key the store
/// issued is issued again.
pub(crate) fn derived_slots(live: &[(u32, u32)], vacant: &[(u32, u32)]) -> Vec<u8> {
    let n = live
        .iter()
        .chain(vacant)
        .map(|&(i, _)| i as usize + 1)
        .max()
        .unwrap_or(0);
    let mut states = vec![(1u32, 0u32); n];
    for &(i, high) in vacant {
        let s = &mut states[i as usize];
        s.0 = s.0.max(high);
    }
    for &(i, v) in live {
        states[i as usize].1 = v;
    }
    let mut out = Vec::new();
    put_varint(&mut out, n as u64);
    let mut free = Vec::new();
    for (i, &(high, version)) in states.iter().enumerate() {
        if version == 0 {
            if high < u32::MAX {
                free.push(i as u32);
            }
            put_varint(&mut out, u64::from(high) << 2);
        } else if version >= high {
            put_varint(&mut out, u64::from(version) << 2 | 1);
        } else {
            put_varint(&mut out, u64::from(high) << 2 | 2);
            put_varint(&mut out, u64::from(version));
        }
    }
    put_varint(&mut out, free.len() as u64);
    for i in free {
        put_varint(&mut out, u64::from(i));
    }
    out
}
