//! The typeless image of a snapshot: its header, the schema it describes, and each table
//! and relation section with row data left as bytes. Parsing checks the structure and the
//! canonical form; `build.rs` checks the graph. Needs no Rust type of the program, so the
//! command-line tool works on any snapshot.

use std::fmt::Write as _;

use super::error::{InvalidGraph, Invariant, SnapshotError};
use super::format::{checksum, put_str, put_varint, Header, Reader, FORMAT_VERSION, HEADER_LEN};
use crate::rows::Layout;
use crate::schema::{DeleteRule, RelationKind, Rules, Schema};

/// One table as the snapshot describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableDesc<'a> {
    pub name: &'a str,
    pub version: u32,
    /// For a kind: its base table's index.
    pub base: Option<u32>,
    /// The shape fingerprint of its row type (none: untraceable, or a version-1 file).
    pub shape: Option<u64>,
}

/// One relation as the snapshot describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RelationDesc<'a> {
    pub kind: RelationKind,
    pub a_table: u32,
    pub a_end: &'a str,
    pub b_table: u32,
    pub b_end: &'a str,
    pub rules: Rules,
    pub group: Option<u32>,
    /// Version of the payload type (1 for relations without payloads).
    pub payload_version: u32,
    /// The shape fingerprint of the payload type (many-to-many only).
    pub payload_shape: Option<u64>,
}

/// One polymorphic parent end as the snapshot describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupDesc<'a> {
    pub child_table: u32,
    pub end: &'a str,
}

/// The schema a snapshot was written with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SchemaDesc<'a> {
    pub tables: Vec<TableDesc<'a>>,
    pub relations: Vec<RelationDesc<'a>>,
    pub groups: Vec<GroupDesc<'a>>,
}

fn rule_code(r: DeleteRule) -> u8 {
    match r {
        DeleteRule::Nullify => 0,
        DeleteRule::Cascade => 1,
        DeleteRule::Restrict => 2,
        DeleteRule::DeleteOrphan => 3,
    }
}

fn rule_of(code: u8) -> Option<DeleteRule> {
    Some(match code {
        0 => DeleteRule::Nullify,
        1 => DeleteRule::Cascade,
        2 => DeleteRule::Restrict,
        3 => DeleteRule::DeleteOrphan,
        _ => return None,
    })
}

/// A type's shape fingerprint: `u8 0` (none) or `u8 1` and the fingerprint, 8 bytes
/// little-endian.
fn put_shape(out: &mut Vec<u8>, shape: Option<u64>) {
    match shape {
        None => out.push(0),
        Some(h) => {
            out.push(1);
            out.extend_from_slice(&h.to_le_bytes());
        }
    }
}

fn read_shape(r: &mut Reader<'_>) -> Result<Option<u64>, SnapshotError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.u64_le()?)),
        t => Err(r.malformed(format!("unknown shape tag {t}"))),
    }
}

fn kind_code(k: RelationKind) -> u8 {
    match k {
        RelationKind::OneToMany => 0,
        RelationKind::OneToOne => 1,
        RelationKind::ManyToMany => 2,
    }
}

pub(crate) fn kind_name(k: RelationKind) -> &'static str {
    match k {
        RelationKind::OneToMany => "one_to_many",
        RelationKind::OneToOne => "one_to_one",
        RelationKind::ManyToMany => "many_to_many",
    }
}

/// The fingerprint lives with the schema description it is computed from, so that the
/// schema (below the file format) does not import the format.
impl Schema {
    /// The schema's fingerprint: the format's [`checksum`](crate::snapshot::checksum) of
    /// its canonical text (tables with versions, kinds and the shape fingerprints of their
    /// row types, relations with ends, rules, payload versions and payload shapes,
    /// polymorphic parent ends, in declaration order). A type's shape is what its
    /// `Deserialize` reads, names left out: a type whose `Deserialize` cannot be traced
    /// (it uses `deserialize_any`, refuses placeholder values, or panics) has none and is
    /// not checked on load. Snapshots record it; two schemas
    /// with the same fingerprint load each other's snapshots without comparison.
    #[track_caller]
    pub fn fingerprint(&self) -> u64 {
        SchemaDesc::of(self).fingerprint()
    }
}

impl<'a> SchemaDesc<'a> {
    /// The description of a program's schema.
    pub fn of(schema: &'a Schema) -> SchemaDesc<'a> {
        SchemaDesc {
            tables: schema
                .tables
                .iter()
                .map(|t| TableDesc {
                    name: t.name,
                    version: t.version,
                    base: t.base,
                    shape: t.shape,
                })
                .collect(),
            relations: schema
                .relations
                .iter()
                .map(|r| RelationDesc {
                    kind: r.kind,
                    a_table: r.a_table,
                    a_end: r.name.a_end,
                    b_table: r.b_table,
                    b_end: r.name.b_end,
                    rules: r.rules,
                    group: r.group,
                    payload_version: r.payload_version,
                    payload_shape: match r.kind {
                        RelationKind::ManyToMany => r.payload_shape,
                        _ => None,
                    },
                })
                .collect(),
            groups: schema
                .groups
                .iter()
                .map(|g| GroupDesc {
                    child_table: g.child_table,
                    end: g.end,
                })
                .collect(),
        }
    }

    /// The canonical text of the schema in a format version's terms: one line per table,
    /// relation and polymorphic parent end, in declaration order. Its checksum is the
    /// schema fingerprint. Version 2 adds the type shapes and the payload versions.
    pub fn canonical_text(&self, format: u32) -> String {
        let mut s = format!("relgraph schema {}\n", format.min(2));
        let shape = |shape: Option<u64>| match (format, shape) {
            (1, _) => String::new(),
            (_, Some(h)) => format!(" shape {h:016x}"),
            (_, None) => " shape none".into(),
        };
        for t in &self.tables {
            match t.base {
                Some(b) => writeln!(
                    s,
                    "kind {} v{} of {}{}",
                    t.name,
                    t.version,
                    self.table(b),
                    shape(t.shape)
                ),
                None => writeln!(s, "table {} v{}{}", t.name, t.version, shape(t.shape)),
            }
            .expect("writing to a String");
        }
        for r in &self.relations {
            let payload = if format >= 2 && r.kind == RelationKind::ManyToMany {
                format!(" payload v{}{}", r.payload_version, shape(r.payload_shape))
            } else {
                String::new()
            };
            writeln!(
                s,
                "relation {} {}.{} {}.{} on_delete {:?} {:?}{}{}{}{payload}",
                kind_name(r.kind),
                self.table(r.a_table),
                r.a_end,
                self.table(r.b_table),
                r.b_end,
                r.rules.on_delete_a,
                r.rules.on_delete_b,
                if r.rules.forbid_self_links {
                    " no_self_links"
                } else {
                    ""
                },
                if r.rules.acyclic { " acyclic" } else { "" },
                match r.group {
                    Some(g) => format!(" poly_parent {}", self.groups[g as usize].end),
                    None => String::new(),
                }
            )
            .expect("writing to a String");
        }
        for g in &self.groups {
            writeln!(s, "poly_parent {}.{}", self.table(g.child_table), g.end)
                .expect("writing to a String");
        }
        s
    }

    fn table(&self, i: u32) -> &str {
        self.tables.get(i as usize).map_or("?", |t| t.name)
    }

    /// The fingerprint of the current format version.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint_in(FORMAT_VERSION)
    }

    /// The fingerprint in a given format version's terms.
    pub fn fingerprint_in(&self, format: u32) -> u64 {
        checksum(self.canonical_text(format).as_bytes())
    }

    pub fn relation_name(&self, r: &RelationDesc<'_>) -> String {
        format!(
            "{}.{} <-> {}.{}",
            self.table(r.a_table),
            r.a_end,
            self.table(r.b_table),
            r.b_end
        )
    }

    /// The table whose slots a table's keys index: itself, or a kind's base.
    pub fn root(&self, t: u32) -> u32 {
        self.tables[t as usize].base.unwrap_or(t)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        put_varint(out, self.tables.len() as u64);
        for t in &self.tables {
            put_str(out, t.name);
            put_varint(out, u64::from(t.version));
            put_varint(out, t.base.map_or(0, |b| u64::from(b) + 1));
            put_shape(out, t.shape);
        }
        put_varint(out, self.relations.len() as u64);
        for r in &self.relations {
            out.push(kind_code(r.kind));
            put_varint(out, u64::from(r.a_table));
            put_str(out, r.a_end);
            put_varint(out, u64::from(r.b_table));
            put_str(out, r.b_end);
            out.push(rule_code(r.rules.on_delete_a));
            out.push(rule_code(r.rules.on_delete_b));
            out.push(u8::from(r.rules.forbid_self_links) | u8::from(r.rules.acyclic) << 1);
            put_varint(out, r.group.map_or(0, |g| u64::from(g) + 1));
            if r.kind == RelationKind::ManyToMany {
                put_varint(out, u64::from(r.payload_version));
                put_shape(out, r.payload_shape);
            }
        }
        put_varint(out, self.groups.len() as u64);
        for g in &self.groups {
            put_varint(out, u64::from(g.child_table));
            put_str(out, g.end);
        }
    }

    fn read(r: &mut Reader<'a>, format: u32) -> Result<SchemaDesc<'a>, SnapshotError> {
        r.section = "schema description";
        let bad = |detail: String| {
            SnapshotError::Invalid(InvalidGraph::new(
                Invariant::SchemaDescription,
                "schema description",
                None,
                detail,
            ))
        };
        let mut desc = SchemaDesc::default();
        for _ in 0..r.count(3)? {
            let name = r.str()?;
            let version = r.u32()?;
            let base = r.u32()?.checked_sub(1);
            let shape = if format >= 2 { read_shape(r)? } else { None };
            desc.tables.push(TableDesc {
                name,
                version,
                base,
                shape,
            });
        }
        for _ in 0..r.count(9)? {
            let kind = match r.u8()? {
                0 => RelationKind::OneToMany,
                1 => RelationKind::OneToOne,
                2 => RelationKind::ManyToMany,
                k => return Err(bad(format!("unknown relation kind {k}"))),
            };
            let a_table = r.u32()?;
            let a_end = r.str()?;
            let b_table = r.u32()?;
            let b_end = r.str()?;
            let (ra, rb, flags) = (r.u8()?, r.u8()?, r.u8()?);
            let (Some(on_delete_a), Some(on_delete_b)) = (rule_of(ra), rule_of(rb)) else {
                return Err(bad(format!("unknown delete rule {ra} or {rb}")));
            };
            if flags > 3 || flags == 2 {
                return Err(bad(format!("unknown relation flags {flags}")));
            }
            let group = r.u32()?.checked_sub(1);
            let (payload_version, payload_shape) =
                if format >= 2 && kind == RelationKind::ManyToMany {
                    (r.u32()?, read_shape(r)?)
                } else {
                    (1, None)
                };
            desc.relations.push(RelationDesc {
                kind,
                a_table,
                a_end,
                b_table,
                b_end,
                rules: Rules {
                    on_delete_a,
                    on_delete_b,
                    forbid_self_links: flags & 1 != 0,
                    acyclic: flags & 2 != 0,
                },
                group,
                payload_version,
                payload_shape,
            });
        }
        for _ in 0..r.count(2)? {
            let child_table = r.u32()?;
            let end = r.str()?;
            desc.groups.push(GroupDesc { child_table, end });
        }
        desc.check().map_err(bad)?;
        Ok(desc)
    }

    /// Indices in range, names unique, shapes a schema can declare.
    fn check(&self) -> Result<(), String> {
        let n = self.tables.len() as u32;
        for (i, t) in self.tables.iter().enumerate() {
            if t.version == 0 {
                return Err(format!("table `{}` has version 0", t.name));
            }
            if self.tables[..i].iter().any(|u| u.name == t.name) {
                return Err(format!("table name `{}` appears twice", t.name));
            }
            if let Some(b) = t.base {
                if b as usize >= i || self.tables[b as usize].base.is_some() {
                    return Err(format!("kind `{}` names an invalid base {b}", t.name));
                }
            }
        }
        for (i, rel) in self.relations.iter().enumerate() {
            if rel.payload_version == 0 {
                return Err(format!("relation {i} has payload version 0"));
            }
            if rel.a_table >= n || rel.b_table >= n {
                return Err(format!("relation {i} names a table out of range"));
            }
            if (rel.rules.forbid_self_links || rel.rules.acyclic) && rel.a_table != rel.b_table {
                return Err(format!(
                    "relation {i} forbids self-links between two tables"
                ));
            }
            if let Some(g) = rel.group {
                let ok = self
                    .groups
                    .get(g as usize)
                    .is_some_and(|g| g.child_table == rel.b_table && g.end == rel.b_end)
                    && rel.kind == RelationKind::OneToMany;
                if !ok {
                    return Err(format!(
                        "relation {i} names an invalid polymorphic parent end"
                    ));
                }
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            if g.child_table >= n {
                return Err(format!(
                    "polymorphic parent end {i} names a table out of range"
                ));
            }
        }
        Ok(())
    }
}

/// Owners and their ordered lists, flattened: list `i` is owned by `owners[i]` and holds
/// `items[ends[i - 1]..ends[i]]` (slot indices).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lists {
    pub owners: Vec<u32>,
    pub ends: Vec<u32>,
    pub items: Vec<u32>,
}

impl Lists {
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u32])> + '_ {
        let mut start = 0usize;
        self.owners.iter().zip(&self.ends).map(move |(&o, &end)| {
            let list = &self.items[start..end as usize];
            start = end as usize;
            (o, list)
        })
    }

    /// Writes `count` non-empty lists given as (owner, length, items), in ascending owner
    /// order.
    pub fn write<I: IntoIterator<Item = u32>>(
        out: &mut Vec<u8>,
        count: usize,
        lists: impl Iterator<Item = (u32, usize, I)>,
    ) {
        put_varint(out, count as u64);
        let mut written = 0;
        for (owner, len, items) in lists {
            debug_assert!(len > 0);
            written += 1;
            put_varint(out, u64::from(owner));
            put_varint(out, len as u64);
            // at most five bytes an item: the pushes below never reallocate
            out.reserve(len.saturating_mul(5));
            for i in items {
                put_varint(out, u64::from(i));
            }
        }
        debug_assert_eq!(written, count);
    }

    /// The items of the `n` lists ahead of `r`, by a scan of their lengths that skips
    /// each item's varint (bounded by the bytes left: each item takes one at least); 0
    /// where the scan fails, which [`Lists::read`] then reports. One allocation of the
    /// items instead of a doubling one.
    fn items_ahead(mut r: Reader<'_>, n: usize) -> usize {
        let mut total = 0usize;
        for _ in 0..n {
            let (Ok(_), Ok(len)) = (r.u32(), r.count(1)) else {
                return 0;
            };
            if r.skip_varints(len).is_err() {
                return 0;
            }
            total += len;
        }
        total
    }

    fn read(r: &mut Reader<'_>) -> Result<Lists, SnapshotError> {
        let n = r.count(3)?;
        let mut lists = Lists {
            owners: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
            items: Vec::with_capacity(Self::items_ahead(r.clone(), n)),
        };
        for _ in 0..n {
            let owner = r.u32()?;
            if lists.owners.last().is_some_and(|&last| last >= owner) {
                return Err(not_canonical(r, "lists are not in ascending owner order"));
            }
            let len = r.count(1)?;
            if len == 0 {
                return Err(not_canonical(r, "an empty list is stored"));
            }
            for _ in 0..len {
                lists.items.push(r.u32()?);
            }
            lists.owners.push(owner);
            lists.ends.push(
                u32::try_from(lists.items.len()).map_err(|_| r.malformed("over 2^32 items"))?,
            );
        }
        Ok(lists)
    }
}

fn not_canonical(r: &Reader<'_>, detail: &str) -> SnapshotError {
    SnapshotError::Invalid(InvalidGraph::new(
        Invariant::Canonical,
        r.section,
        None,
        detail,
    ))
}

/// The stored state of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TableImage<'a> {
    /// A plain table or a base: every slot's highest issued version and, if occupied, the
    /// version of its entity (0: vacant); the encoded rows of the occupied slots in order.
    Slots {
        slots: Vec<(u32, u32)>,
        /// The free list, the slot reused first first.
        free: Vec<u32>,
        live: usize,
        rows: &'a [u8],
        /// Payload offset of `rows`.
        rows_at: usize,
    },
    /// A kind: the base slots of its rows in the kind's order, and their encoded rows.
    Kind {
        keys: Vec<u32>,
        rows: &'a [u8],
        rows_at: usize,
    },
}

impl TableImage<'_> {
    pub fn rows(&self) -> usize {
        match self {
            TableImage::Slots { live, .. } => *live,
            TableImage::Kind { keys, .. } => keys.len(),
        }
    }

    pub fn row_bytes(&self) -> &[u8] {
        match self {
            TableImage::Slots { rows, .. } | TableImage::Kind { rows, .. } => rows,
        }
    }

    /// Where the rows go, for the table's typed loader.
    pub fn layout(&self) -> Layout<'_> {
        match self {
            TableImage::Slots { slots, free, .. } => Layout::Slots { slots, free },
            TableImage::Kind { keys, .. } => Layout::Kind { keys },
        }
    }

    /// Payload offset of the encoded rows.
    pub fn rows_at(&self) -> usize {
        match self {
            TableImage::Slots { rows_at, .. } | TableImage::Kind { rows_at, .. } => *rows_at,
        }
    }
}

/// Slot state encoding: `high << 2 | tag`; tag 0 vacant, 1 live at version `high`,
/// 2 live at a lower version that follows as a varint.
pub(crate) fn put_slot(out: &mut Vec<u8>, high: u32, version: u32) {
    let high64 = u64::from(high) << 2;
    if version == 0 {
        put_varint(out, high64);
    } else if version == high {
        put_varint(out, high64 | 1);
    } else {
        put_varint(out, high64 | 2);
        put_varint(out, u64::from(version));
    }
}

/// Writes a table's free list (format version 2): its length, then the slot indices, the
/// one reused first first.
pub(crate) fn put_free_list(out: &mut Vec<u8>, arena: &dyn crate::arena::ErasedArena) {
    let mut free = Vec::new();
    arena.free_order(&mut |i| free.push(i));
    put_varint(out, free.len() as u64);
    for i in free {
        put_varint(out, u64::from(i));
    }
}

fn read_slots<'a>(r: &mut Reader<'a>, format: u32) -> Result<TableImage<'a>, SnapshotError> {
    let n = r.count(1)?;
    let mut slots = Vec::with_capacity(n);
    let mut live = 0;
    for _ in 0..n {
        let x = r.varint()?;
        let high = u32::try_from(x >> 2).map_err(|_| r.malformed("slot version over 2^32"))?;
        let version = match x & 3 {
            0 => 0,
            1 => high,
            2 => r.u32()?,
            _ => return Err(r.malformed("unknown slot state")),
        };
        let bad_version = match x & 3 {
            0 => false,
            1 => high == 0,
            _ => version == 0 || version >= high,
        };
        if bad_version {
            return Err(SnapshotError::Invalid(InvalidGraph::new(
                Invariant::SlotVersion,
                r.section,
                None,
                format!("slot {} has version {version} of {high}", slots.len()),
            )));
        }
        live += usize::from(version != 0);
        slots.push((high, version));
    }
    let free = if format >= 2 {
        read_free(r, &slots)?
    } else {
        // version 1 kept no free list: the lowest vacant slot is reused first
        (0..slots.len() as u32)
            .filter(|&i| reusable(slots[i as usize]))
            .collect()
    };
    let rows_at = r.pos() + 8;
    let rows = r.blob()?;
    Ok(TableImage::Slots {
        slots,
        free,
        live,
        rows,
        rows_at,
    })
}

/// A vacant slot that a fresh insert may reuse (not at its last version).
fn reusable((high, version): (u32, u32)) -> bool {
    version == 0 && high < u32::MAX
}

/// The free list of a table (format version 2): slot indices in range, each at most once,
/// none at its last version, and every reusable vacant slot among them. An occupied slot
/// may be listed (a rollback reoccupied it; see `Arena`).
fn read_free(r: &mut Reader<'_>, slots: &[(u32, u32)]) -> Result<Vec<u32>, SnapshotError> {
    let n = r.count(1)?;
    let bad = |key: Option<u32>, detail: String| {
        SnapshotError::Invalid(InvalidGraph::new(
            Invariant::FreeList,
            "table section",
            key.and_then(|i| crate::key::RawKey::from_bits(1 << 32 | u64::from(i))),
            detail,
        ))
    };
    if n > slots.len() {
        return Err(bad(
            None,
            format!("{n} free slots listed, the table has {}", slots.len()),
        ));
    }
    // a table that never had a removal (the common save) lists nothing: no scratch
    // vector for it
    let mut listed = if n == 0 {
        Vec::new()
    } else {
        vec![false; slots.len()]
    };
    let mut free = Vec::with_capacity(n);
    for _ in 0..n {
        let i = r.u32()?;
        let Some(&(high, _)) = slots.get(i as usize) else {
            return Err(bad(
                None,
                format!("the free list names slot {i} of {}", slots.len()),
            ));
        };
        if std::mem::replace(&mut listed[i as usize], true) {
            return Err(bad(Some(i), format!("slot {i} is listed twice")));
        }
        if high == u32::MAX {
            return Err(bad(
                Some(i),
                format!("slot {i} is at its last version and must not be reused"),
            ));
        }
        free.push(i);
    }
    if let Some(i) = (0..slots.len()).find(|&i| reusable(slots[i]) && listed.get(i) != Some(&true))
    {
        return Err(bad(
            Some(i as u32),
            format!("vacant slot {i} is not on the free list"),
        ));
    }
    Ok(free)
}

fn read_kind<'a>(r: &mut Reader<'a>) -> Result<TableImage<'a>, SnapshotError> {
    let n = r.count(1)?;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        keys.push(r.u32()?);
    }
    let rows_at = r.pos() + 8;
    let rows = r.blob()?;
    Ok(TableImage::Kind {
        keys,
        rows,
        rows_at,
    })
}

/// The stored links of one relation (slot indices; versions come from the tables).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RelationImage<'a> {
    /// Children lists by parent.
    OneToMany(Lists),
    /// Pairs in ascending order of the first end.
    OneToOne(Vec<(u32, u32)>),
    /// Lists at both ends, and the payloads in the order of the first end's lists.
    ManyToMany {
        a: Lists,
        payloads: &'a [u8],
        b: Lists,
    },
}

impl RelationImage<'_> {
    pub fn links(&self) -> usize {
        match self {
            RelationImage::OneToMany(l) => l.items.len(),
            RelationImage::OneToOne(p) => p.len(),
            RelationImage::ManyToMany { a, .. } => a.items.len(),
        }
    }
}

fn read_pairs(r: &mut Reader<'_>) -> Result<Vec<(u32, u32)>, SnapshotError> {
    let n = r.count(2)?;
    let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(n);
    for _ in 0..n {
        let a = r.u32()?;
        let b = r.u32()?;
        if pairs.last().is_some_and(|&(last, _)| last >= a) {
            return Err(not_canonical(r, "pairs are not in ascending order"));
        }
        pairs.push((a, b));
    }
    Ok(pairs)
}

/// Names the table or relation a section error was found in.
fn relabel(e: SnapshotError, name: impl FnOnce() -> String) -> SnapshotError {
    match e {
        SnapshotError::Malformed { offset, detail, .. } => SnapshotError::Malformed {
            section: name(),
            offset,
            detail,
        },
        SnapshotError::Invalid(mut g) => {
            g.location = name();
            SnapshotError::Invalid(g)
        }
        e => e,
    }
}

/// A whole snapshot, parsed and checked for structure, not yet for graph invariants.
#[derive(Debug)]
pub(crate) struct Image<'a> {
    pub header: Header,
    pub schema: SchemaDesc<'a>,
    pub tables: Vec<TableImage<'a>>,
    pub relations: Vec<RelationImage<'a>>,
    /// Bytes each table section takes.
    pub table_bytes: Vec<usize>,
    /// Bytes each relation section takes.
    pub relation_bytes: Vec<usize>,
    pub schema_bytes: usize,
}

impl<'a> Image<'a> {
    /// Header checks, the payload checksum, then the structure of the payload, which must
    /// be used up exactly.
    pub fn parse(bytes: &'a [u8]) -> Result<Image<'a>, SnapshotError> {
        let header = Header::parse(bytes)?;
        let payload = &bytes[HEADER_LEN..];
        let computed = checksum(payload);
        if computed != header.payload_checksum {
            return Err(SnapshotError::ChecksumMismatch {
                stored: header.payload_checksum,
                computed,
            });
        }
        Self::parse_payload(header, payload)
    }

    /// Parses a payload whose checksum is already verified (or deliberately skipped by a
    /// fuzz target).
    pub fn parse_payload(header: Header, payload: &'a [u8]) -> Result<Image<'a>, SnapshotError> {
        let mut parts = Sections::default();
        parts.read(header, payload)?;
        let Sections {
            schema: Some(schema),
            schema_bytes,
            tables,
            table_bytes,
            relations,
            relation_bytes,
        } = parts
        else {
            unreachable!("a payload read to its end has a schema")
        };
        Ok(Image {
            header,
            schema,
            tables,
            relations,
            table_bytes,
            relation_bytes,
            schema_bytes,
        })
    }
}

/// The sections of a payload, as far as they were read: [`Sections::read`] stops at the
/// first failure and leaves what it read before, for a report on a damaged file.
#[derive(Debug, Default)]
pub(crate) struct Sections<'a> {
    pub schema: Option<SchemaDesc<'a>>,
    pub schema_bytes: usize,
    pub tables: Vec<TableImage<'a>>,
    pub table_bytes: Vec<usize>,
    pub relations: Vec<RelationImage<'a>>,
    pub relation_bytes: Vec<usize>,
}

impl<'a> Sections<'a> {
    /// Reads the schema description (checked against the header's fingerprint), then
    /// every table and relation section; the payload must be used up exactly.
    pub fn read(&mut self, header: Header, payload: &'a [u8]) -> Result<(), SnapshotError> {
        let mut r = Reader::new(payload);
        let format = header.version;
        let schema = SchemaDesc::read(&mut r, format)?;
        if schema.fingerprint_in(format) != header.fingerprint {
            return Err(SnapshotError::Invalid(InvalidGraph::new(
                Invariant::Fingerprint,
                "header",
                None,
                "the schema fingerprint does not match the schema the payload describes",
            )));
        }
        self.schema_bytes = r.pos();
        let schema = self.schema.insert(schema);
        self.tables.reserve(schema.tables.len());
        self.table_bytes.reserve(schema.tables.len());
        for t in &schema.tables {
            r.section = "table section";
            let start = r.pos();
            let table = match t.base {
                None => read_slots(&mut r, format),
                Some(_) => read_kind(&mut r),
            };
            let table = table.map_err(|e| relabel(e, || format!("table {}", t.name)))?;
            self.tables.push(table);
            self.table_bytes.push(r.pos() - start);
        }
        self.relations.reserve(schema.relations.len());
        self.relation_bytes.reserve(schema.relations.len());
        for rel in &schema.relations {
            r.section = "relation section";
            let start = r.pos();
            let relation = match rel.kind {
                RelationKind::OneToMany => Lists::read(&mut r).map(RelationImage::OneToMany),
                RelationKind::OneToOne => read_pairs(&mut r).map(RelationImage::OneToOne),
                RelationKind::ManyToMany => (|| {
                    let a = Lists::read(&mut r)?;
                    let payloads = r.blob()?;
                    let b = Lists::read(&mut r)?;
                    Ok(RelationImage::ManyToMany { a, payloads, b })
                })(),
            };
            let relation = relation
                .map_err(|e| relabel(e, || format!("relation {}", schema.relation_name(rel))))?;
            self.relations.push(relation);
            self.relation_bytes.push(r.pos() - start);
        }
        if r.left() != 0 {
            r.section = "payload";
            return Err(r.malformed(format!("{} bytes after the last section", r.left())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists_bytes(lists: &[(u32, Vec<u32>)]) -> Vec<u8> {
        let mut out = Vec::new();
        Lists::write(
            &mut out,
            lists.len(),
            lists
                .iter()
                .map(|(o, items)| (*o, items.len(), items.iter().copied())),
        );
        out
    }

    #[test]
    fn lists_are_read_into_items_allocated_once_at_their_length() {
        let lists: Vec<(u32, Vec<u32>)> = (0..300u32)
            .map(|o| (o * 3, (0..o % 7 + 1).map(|i| i * 40_000 + o).collect()))
            .collect();
        let bytes = lists_bytes(&lists);
        let read = Lists::read(&mut Reader::new(&bytes)).unwrap();
        let items: Vec<u32> = lists.iter().flat_map(|(_, i)| i.clone()).collect();
        assert_eq!(read.items, items);
        assert_eq!(read.items.capacity(), items.len());
        let back: Vec<(u32, Vec<u32>)> = read.iter().map(|(o, i)| (o, i.to_vec())).collect();
        assert_eq!(back, lists);
    }

    #[test]
    fn lists_cut_short_are_refused_where_their_bytes_end() {
        let lists: Vec<(u32, Vec<u32>)> = (0..40u32).map(|o| (o, vec![o, o + 1000])).collect();
        let bytes = lists_bytes(&lists);
        for cut in 0..bytes.len() {
            let mut r = Reader::new(&bytes[..cut]);
            match Lists::read(&mut r) {
                Err(SnapshotError::Malformed { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
}
