//! Snapshot bytes written by hand, for the corruption, limit and validation tests (T5-T7):
//! a writer that follows the payload layout of `src/snapshot/image.rs`, a structured
//! description of a whole payload (schema description, table sections, relation sections)
//! that a test can break in one place, and sealing with a correct header.

#![allow(dead_code)] // each test file uses a different part

use relgraph::snapshot::{checksum, Header, FORMAT_VERSION, HEADER_LEN};

/// A header around `payload` with its length and checksum computed: a snapshot the
/// decoder reaches.
pub fn seal(payload: &[u8], fingerprint: u64, entities: u64, links: u64) -> Vec<u8> {
    let header = Header {
        version: FORMAT_VERSION,
        flags: 0,
        fingerprint,
        payload_len: payload.len() as u64,
        entities,
        links,
        payload_checksum: checksum(payload),
    };
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// The header of a valid snapshot, parsed.
pub fn header_of(bytes: &[u8]) -> Header {
    Header::parse(bytes).expect("a valid snapshot")
}

/// `bytes` (a valid snapshot) with its header changed by `change` and its header checksum
/// recomputed; the payload is kept as it is.
pub fn with_header(bytes: &[u8], change: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut h = header_of(bytes);
    change(&mut h);
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(&bytes[HEADER_LEN..]);
    out
}

/// The header of `original` (a valid snapshot) around a new `payload`: its length and
/// checksum recomputed, every other field kept.
pub fn with_payload(original: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut h = header_of(original);
    h.payload_len = payload.len() as u64;
    h.payload_checksum = checksum(payload);
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Appends `v` as an unsigned LEB128 varint, the integer encoding of the payload's
/// structure.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` as bincode's standard varint, the integer encoding of rows and payloads:
/// one byte below 251, else a marker (251: u16, 252: u32, 253: u64) and the value
/// little-endian.
pub fn bincode_varint(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.push(251);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(252);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends a `String` as bincode encodes it: its length, then its bytes.
pub fn bincode_str(out: &mut Vec<u8>, s: &str) {
    bincode_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Every length-prefixed container of the payload's structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// Number of tables in the schema description.
    TableCount,
    /// A table name.
    TableName,
    /// Number of relations in the schema description.
    RelationCount,
    /// The name of a relation end.
    EndName,
    /// Number of polymorphic parent ends in the schema description.
    GroupCount,
    /// Number of slots of a plain table or base.
    SlotCount,
    /// Number of rows of a kind.
    KindKeyCount,
    /// Length of a table's encoded rows (a fixed 8-byte length).
    RowBlob,
    /// Number of lists of a one-to-many (or of a many-to-many end).
    ListCount,
    /// Length of one list.
    ListLength,
    /// Number of pairs of a one-to-one.
    PairCount,
    /// Length of a many-to-many's encoded payloads (a fixed 8-byte length).
    PayloadBlob,
    /// Number of slots on a table's free list.
    FreeCount,
}

impl Container {
    /// Whether the length is a fixed little-endian u64 rather than a varint.
    fn fixed(self) -> bool {
        matches!(self, Container::RowBlob | Container::PayloadBlob)
    }
}

/// A payload under construction. When `hostile` is set, the first length written for that
/// container is replaced by the hostile value (the rest is written as usual).
#[derive(Default)]
pub struct Writer {
    pub out: Vec<u8>,
    pub hostile: Option<(Container, u64)>,
}

impl Writer {
    pub fn varint(&mut self, v: u64) {
        varint(&mut self.out, v);
    }

    pub fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    /// The length of a container, or the hostile value in its place.
    pub fn len(&mut self, c: Container, real: usize) {
        let v = match self.hostile {
            Some((h, v)) if h == c => {
                self.hostile = None;
                v
            }
            _ => real as u64,
        };
        if c.fixed() {
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            self.varint(v);
        }
    }

    /// A name: its length (a varint), then its bytes.
    pub fn name(&mut self, c: Container, s: &str) {
        self.len(c, s.len());
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A blob: its length (8 bytes), then its bytes.
    pub fn blob(&mut self, c: Container, b: &[u8]) {
        self.len(c, b.len());
        self.out.extend_from_slice(b);
    }
}

/// One table of a schema description.
#[derive(Clone, Debug)]
pub struct TableSpec {
    pub name: String,
    pub version: u32,
    /// For a kind: its base table's index.
    pub base: Option<u32>,
    /// The shape fingerprint of its row type.
    pub shape: Option<u64>,
}

/// Relation kind codes.
pub const ONE_TO_MANY: u8 = 0;
pub const ONE_TO_ONE: u8 = 1;
pub const MANY_TO_MANY: u8 = 2;

/// Relation flag bits.
pub const NO_SELF_LINKS: u8 = 1;
pub const ACYCLIC: u8 = 3; // acyclic implies no self-links

/// One relation of a schema description.
#[derive(Clone, Debug)]
pub struct RelationSpec {
    pub kind: u8,
    pub a_table: u32,
    pub a_end: String,
    pub b_table: u32,
    pub b_end: String,
    /// Delete rule codes (0 nullify, 1 cascade, 2 restrict, 3 delete-orphan).
    pub on_delete: (u8, u8),
    pub flags: u8,
    pub group: Option<u32>,
    /// The payload version and shape (written for many-to-many relations only).
    pub payload_version: u32,
    pub payload_shape: Option<u64>,
}

impl RelationSpec {
    pub fn new(kind: u8, (a_table, a_end): (u32, &str), (b_table, b_end): (u32, &str)) -> Self {
        RelationSpec {
            kind,
            a_table,
            a_end: a_end.into(),
            b_table,
            b_end: b_end.into(),
            on_delete: (0, 0),
            flags: 0,
            group: None,
            payload_version: 1,
            payload_shape: None,
        }
    }

    pub fn flags(mut self, flags: u8) -> Self {
        self.flags = flags;
        self
    }

    pub fn group(mut self, group: u32) -> Self {
        self.group = Some(group);
        self
    }
}

/// One polymorphic parent end of a schema description.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub child_table: u32,
    pub end: String,
}

/// The schema a payload describes.
#[derive(Clone, Debug, Default)]
pub struct Desc {
    pub tables: Vec<TableSpec>,
    pub relations: Vec<RelationSpec>,
    pub groups: Vec<GroupSpec>,
}

impl Desc {
    pub fn table(mut self, name: &str) -> Self {
        self.tables.push(TableSpec {
            name: name.into(),
            version: 1,
            base: None,
            shape: None,
        });
        self
    }

    pub fn kind(mut self, name: &str, base: u32) -> Self {
        self.tables.push(TableSpec {
            name: name.into(),
            version: 1,
            base: Some(base),
            shape: None,
        });
        self
    }

    pub fn relation(mut self, r: RelationSpec) -> Self {
        self.relations.push(r);
        self
    }

    pub fn poly_parent(mut self, child_table: u32, end: &str) -> Self {
        self.groups.push(GroupSpec {
            child_table,
            end: end.into(),
        });
        self
    }

    /// The type shapes (and payload versions) a snapshot of the same schema records,
    /// table by table and relation by relation: they are computed by relgraph from the
    /// program's types.
    pub fn shapes_of(mut self, snapshot: &[u8]) -> Self {
        let info = relgraph::snapshot::inspect(snapshot).expect("a valid snapshot");
        for (t, i) in self.tables.iter_mut().zip(&info.tables) {
            t.shape = i.shape;
        }
        for (r, i) in self.relations.iter_mut().zip(&info.relations) {
            r.payload_version = i.payload_version;
            r.payload_shape = i.payload_shape;
        }
        self
    }

    pub fn write(&self, w: &mut Writer) {
        w.len(Container::TableCount, self.tables.len());
        for t in &self.tables {
            w.name(Container::TableName, &t.name);
            w.varint(u64::from(t.version));
            w.varint(t.base.map_or(0, |b| u64::from(b) + 1));
            shape(w, t.shape);
        }
        w.len(Container::RelationCount, self.relations.len());
        for r in &self.relations {
            w.byte(r.kind);
            w.varint(u64::from(r.a_table));
            w.name(Container::EndName, &r.a_end);
            w.varint(u64::from(r.b_table));
            w.name(Container::EndName, &r.b_end);
            w.byte(r.on_delete.0);
            w.byte(r.on_delete.1);
            w.byte(r.flags);
            w.varint(r.group.map_or(0, |g| u64::from(g) + 1));
            if r.kind == MANY_TO_MANY {
                w.varint(u64::from(r.payload_version));
                shape(w, r.payload_shape);
            }
        }
        w.len(Container::GroupCount, self.groups.len());
        for g in &self.groups {
            w.varint(u64::from(g.child_table));
            w.name(Container::EndName, &g.end);
        }
    }
}

/// A type's shape fingerprint: `0`, or `1` and the fingerprint as 8 bytes little-endian.
fn shape(w: &mut Writer, shape: Option<u64>) {
    match shape {
        None => w.byte(0),
        Some(h) => {
            w.byte(1);
            w.out.extend_from_slice(&h.to_le_bytes());
        }
    }
}

/// The free list a store has after vacating `slots` only by removals outside
/// transactions, in index order: the last vacated first.
pub fn vacated_in_order(slots: &[Slot]) -> Vec<u32> {
    (0..slots.len() as u32)
        .rev()
        .filter(|&i| matches!(slots[i as usize], Slot::Vacant(h) if h < u32::MAX))
        .collect()
}

/// One slot of a plain table or base, as stored: `high << 2 | tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Tag 0: no entity; `high` is the highest version the slot issued.
    Vacant(u32),
    /// Tag 1: an entity at the slot's highest version.
    Live(u32),
    /// Tag 2: an entity at `version`, below the slot's highest version `high`.
    Older { high: u32, version: u32 },
}

impl Slot {
    /// The version of the entity in the slot (0: none).
    pub fn version(self) -> u32 {
        match self {
            Slot::Vacant(_) => 0,
            Slot::Live(v) => v,
            Slot::Older { version, .. } => version,
        }
    }

    fn write(self, w: &mut Writer) {
        match self {
            Slot::Vacant(high) => w.varint(u64::from(high) << 2),
            Slot::Live(high) => w.varint(u64::from(high) << 2 | 1),
            Slot::Older { high, version } => {
                w.varint(u64::from(high) << 2 | 2);
                w.varint(u64::from(version));
            }
        }
    }
}

/// The section of one table.
#[derive(Clone, Debug)]
pub enum TableSection {
    /// A plain table or a base: its slots, its free list (the slot reused first first)
    /// and the encoded rows of the live ones.
    Slots {
        slots: Vec<Slot>,
        free: Vec<u32>,
        rows: Vec<u8>,
    },
    /// A kind: the base slot of each of its rows, and the encoded rows.
    Kind { keys: Vec<u32>, rows: Vec<u8> },
}

/// Lists by owner: (owner slot, items' slots).
pub type Lists = Vec<(u32, Vec<u32>)>;

/// The section of one relation.
#[derive(Clone, Debug)]
pub enum RelationSection {
    OneToMany(Lists),
    OneToOne(Vec<(u32, u32)>),
    /// The first end's lists, the encoded payload of each link (in the first end's
    /// order), and the second end's lists.
    ManyToMany {
        a: Lists,
        payloads: Vec<u8>,
        b: Lists,
    },
}

impl RelationSection {
    pub fn links(&self) -> u64 {
        match self {
            RelationSection::OneToMany(lists) | RelationSection::ManyToMany { a: lists, .. } => {
                lists.iter().map(|(_, l)| l.len() as u64).sum()
            }
            RelationSection::OneToOne(pairs) => pairs.len() as u64,
        }
    }
}

fn write_lists(w: &mut Writer, lists: &Lists) {
    w.len(Container::ListCount, lists.len());
    for (owner, items) in lists {
        w.varint(u64::from(*owner));
        w.len(Container::ListLength, items.len());
        for &i in items {
            w.varint(u64::from(i));
        }
    }
}

/// A whole snapshot, described section by section.
#[derive(Clone, Debug)]
pub struct Snap {
    pub fingerprint: u64,
    pub desc: Desc,
    pub tables: Vec<TableSection>,
    pub relations: Vec<RelationSection>,
    /// The header's entity count, when not the one the tables hold.
    pub entities: Option<u64>,
    /// The header's link count, when not the one the relations hold.
    pub links: Option<u64>,
}

impl Snap {
    /// The payload, with the first length of `hostile`'s container replaced by its value.
    pub fn payload_with(&self, hostile: Option<(Container, u64)>) -> Vec<u8> {
        let mut w = Writer {
            out: Vec::new(),
            hostile,
        };
        self.desc.write(&mut w);
        for t in &self.tables {
            match t {
                TableSection::Slots { slots, free, rows } => {
                    w.len(Container::SlotCount, slots.len());
                    for s in slots {
                        s.write(&mut w);
                    }
                    w.len(Container::FreeCount, free.len());
                    for &i in free {
                        w.varint(u64::from(i));
                    }
                    w.blob(Container::RowBlob, rows);
                }
                TableSection::Kind { keys, rows } => {
                    w.len(Container::KindKeyCount, keys.len());
                    for &k in keys {
                        w.varint(u64::from(k));
                    }
                    w.blob(Container::RowBlob, rows);
                }
            }
        }
        for r in &self.relations {
            match r {
                RelationSection::OneToMany(lists) => write_lists(&mut w, lists),
                RelationSection::OneToOne(pairs) => {
                    w.len(Container::PairCount, pairs.len());
                    for &(a, b) in pairs {
                        w.varint(u64::from(a));
                        w.varint(u64::from(b));
                    }
                }
                RelationSection::ManyToMany { a, payloads, b } => {
                    write_lists(&mut w, a);
                    w.blob(Container::PayloadBlob, payloads);
                    write_lists(&mut w, b);
                }
            }
        }
        assert!(w.hostile.is_none(), "the payload has no {hostile:?}");
        w.out
    }

    pub fn payload(&self) -> Vec<u8> {
        self.payload_with(None)
    }

    /// Entities the tables hold (live slots of plain tables and bases).
    pub fn entity_count(&self) -> u64 {
        self.tables
            .iter()
            .map(|t| match t {
                TableSection::Slots { slots, .. } => {
                    slots.iter().filter(|s| s.version() != 0).count() as u64
                }
                TableSection::Kind { .. } => 0,
            })
            .sum()
    }

    pub fn link_count(&self) -> u64 {
        self.relations.iter().map(RelationSection::links).sum()
    }

    /// The sealed snapshot: header with lengths, counts and checksums computed.
    pub fn bytes_with(&self, hostile: Option<(Container, u64)>) -> Vec<u8> {
        let payload = self.payload_with(hostile);
        let entities = self.entities.unwrap_or_else(|| self.entity_count());
        let links = self.links.unwrap_or_else(|| self.link_count());
        seal(&payload, self.fingerprint, entities, links)
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.bytes_with(None)
    }

    /// The slots of plain table or base `t`, mutably.
    pub fn slots(&mut self, t: usize) -> &mut Vec<Slot> {
        match &mut self.tables[t] {
            TableSection::Slots { slots, .. } => slots,
            other => panic!("table {t} is {other:?}"),
        }
    }

    /// The free list of plain table or base `t`, mutably.
    pub fn free(&mut self, t: usize) -> &mut Vec<u32> {
        match &mut self.tables[t] {
            TableSection::Slots { free, .. } => free,
            other => panic!("table {t} is {other:?}"),
        }
    }

    /// The base slots of the rows of kind `t`, mutably.
    pub fn kind_keys(&mut self, t: usize) -> &mut Vec<u32> {
        match &mut self.tables[t] {
            TableSection::Kind { keys, .. } => keys,
            other => panic!("table {t} is {other:?}"),
        }
    }

    /// The lists of one-to-many `r`, mutably.
    pub fn one_to_many(&mut self, r: usize) -> &mut Lists {
        match &mut self.relations[r] {
            RelationSection::OneToMany(lists) => lists,
            other => panic!("relation {r} is {other:?}"),
        }
    }

    /// The pairs of one-to-one `r`, mutably.
    pub fn one_to_one(&mut self, r: usize) -> &mut Vec<(u32, u32)> {
        match &mut self.relations[r] {
            RelationSection::OneToOne(pairs) => pairs,
            other => panic!("relation {r} is {other:?}"),
        }
    }

    /// The first end's lists, payloads and second end's lists of many-to-many `r`.
    pub fn many_to_many(&mut self, r: usize) -> (&mut Lists, &mut Vec<u8>, &mut Lists) {
        match &mut self.relations[r] {
            RelationSection::ManyToMany { a, payloads, b } => (a, payloads, b),
            other => panic!("relation {r} is {other:?}"),
        }
    }
}
