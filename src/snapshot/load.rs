//! Loading a snapshot into a fresh store: schema comparison, graph checks, row decoding.

use super::build::{build_relation, check_counts, check_groups, liveness};
use super::codec::{self, Blob, CodecError, Limit};
use super::error::{InvalidGraph, Invariant, SchemaDifference, SnapshotError};
use super::image::{Image, RelationImage, SchemaDesc, TableImage};
use crate::arena::{Arena, Column, ErasedArena, KindArena};
use crate::key::RawKey;
use crate::relation::{ErasedPayloads, PayloadVec, RelationStore};
use crate::schema::{Entity, RelationDef, RelationName, RowDecoder, Schema, TableDef};
use crate::Store;

/// Loads one table's rows (monomorphised per row type, stored in its `TableDef`).
pub(crate) type LoadTable =
    fn(&TableDef, &TableImage<'_>, u32, &[u32]) -> Result<Box<dyn ErasedArena>, SnapshotError>;

/// Decodes one many-to-many's payloads (monomorphised per payload type).
pub(crate) type LoadPayloads =
    fn(&[u8], usize, RelationName) -> Result<Box<dyn ErasedPayloads>, SnapshotError>;

fn codec_error(section: String, limit: Limit, offset: usize, e: CodecError) -> SnapshotError {
    match e {
        CodecError::Limit => SnapshotError::LimitExceeded {
            section,
            limit: limit.bytes(),
        },
        CodecError::Other(detail) => SnapshotError::Malformed {
            section,
            offset: offset as u64,
            detail,
        },
        CodecError::NotCanonical => SnapshotError::Invalid(InvalidGraph::new(
            Invariant::Canonical,
            section.clone(),
            None,
            format!("{section} is not in its canonical encoding"),
        )),
    }
}

/// Decodes the rows of a table stored at `version` into a column. `root_live` gives the
/// live version of each slot of the table's root (itself, or a kind's base).
pub(crate) fn load_table<T: Entity>(
    def: &TableDef,
    image: &TableImage<'_>,
    version: u32,
    root_live: &[u32],
) -> Result<Box<dyn ErasedArena>, SnapshotError> {
    let migration = if version == def.version {
        None
    } else {
        let m = def
            .migrations
            .iter()
            .find(|(from, _)| *from == version)
            .and_then(|(_, m)| m.downcast_ref::<RowDecoder<T>>());
        match m {
            Some(m) => Some(m),
            None => {
                return Err(SchemaDifference::NoMigration {
                    table: def.name.to_string(),
                    snapshot: version,
                    program: def.version,
                }
                .into())
            }
        }
    };
    let rows = image.row_bytes();
    let blob = Blob::new(rows.len());
    let limit = blob.limit();
    let mut pos = 0usize;
    let mut row = 0usize;
    let column = {
        let mut next = || -> Result<T, SnapshotError> {
            let bytes = &rows[pos..];
            let decoded = match migration {
                Some(m) => m(bytes, &blob),
                None => codec::decode_canonical_in::<T>(bytes, &blob),
            };
            let (value, used) = decoded.map_err(|e| {
                let at = image.rows_at() + pos;
                codec_error(format!("row {row} of table {}", def.name), limit, at, e)
            })?;
            pos += used;
            row += 1;
            Ok(value)
        };
        match image {
            TableImage::Slots { slots, .. } => Column::Slots(Arena::from_slots(slots, &mut next)?),
            TableImage::Kind { keys, .. } => {
                let keys = keys.iter().map(|&i| {
                    RawKey::from_bits(u64::from(root_live[i as usize]) << 32 | u64::from(i))
                        .expect("kind rows were checked against their base")
                });
                Column::Kind(KindArena::from_keys(keys, root_live.len(), &mut next)?)
            }
        }
    };
    if pos != rows.len() {
        return Err(SnapshotError::Malformed {
            section: format!("rows of table {}", def.name),
            offset: (image.rows_at() + pos) as u64,
            detail: format!("{} bytes left after the last row", rows.len() - pos),
        });
    }
    Ok(Box::new(column))
}

/// Decodes the `n` payloads of the many-to-many `relation`, stored end to end in `bytes`.
pub(crate) fn load_payloads<W: Entity>(
    bytes: &[u8],
    n: usize,
    relation: RelationName,
) -> Result<Box<dyn ErasedPayloads>, SnapshotError> {
    let limit = Limit::for_len(bytes.len());
    let mut v = PayloadVec::<W>(Vec::with_capacity(n.min(bytes.len().max(1) * 4)));
    codec::decode_all::<W>(bytes, n, |w| v.0.push(w))
        .map_err(|(i, e)| codec_error(format!("payload {i} of {relation}"), limit, 0, e))?;
    Ok(Box::new(v))
}

fn shape(desc: &SchemaDesc<'_>, t: usize) -> String {
    match desc.tables[t].base {
        Some(b) => format!("a kind of `{}`", desc.tables[b as usize].name),
        None if desc.tables.iter().any(|u| u.base == Some(t as u32)) => "a polymorphic base".into(),
        None => "a plain table".into(),
    }
}

/// For each table and relation of the snapshot, the program's: or the first difference
/// that stops the load.
fn map_schema(
    file: &SchemaDesc<'_>,
    schema: &Schema,
) -> Result<(Vec<usize>, Vec<usize>), SchemaDifference> {
    let program = SchemaDesc::of(schema);
    let mut tables = Vec::with_capacity(file.tables.len());
    for (ft, t) in file.tables.iter().enumerate() {
        let Some(pt) = program.tables.iter().position(|p| p.name == t.name) else {
            return Err(SchemaDifference::MissingTable {
                table: t.name.into(),
            });
        };
        let (snap_shape, prog_shape) = (shape(file, ft), shape(&program, pt));
        if snap_shape != prog_shape {
            return Err(SchemaDifference::TableShape {
                table: t.name.into(),
                snapshot: snap_shape,
                program: prog_shape,
            });
        }
        let pv = program.tables[pt].version;
        if t.version > pv {
            return Err(SchemaDifference::VersionTooNew {
                table: t.name.into(),
                snapshot: t.version,
                program: pv,
            });
        }
        if t.version < pv
            && !schema.tables[pt]
                .migrations
                .iter()
                .any(|m| m.0 == t.version)
        {
            return Err(SchemaDifference::NoMigration {
                table: t.name.into(),
                snapshot: t.version,
                program: pv,
            });
        }
        tables.push(pt);
    }
    let mut relations = Vec::with_capacity(file.relations.len());
    for r in &file.relations {
        let (a, b) = (tables[r.a_table as usize], tables[r.b_table as usize]);
        let Some(pr) = program.relations.iter().position(|p| {
            (p.a_table as usize, p.a_end, p.b_table as usize, p.b_end) == (a, r.a_end, b, r.b_end)
        }) else {
            return Err(SchemaDifference::MissingRelation {
                relation: file.relation_name(r),
            });
        };
        let p = &program.relations[pr];
        if p.kind != r.kind {
            return Err(SchemaDifference::RelationKind {
                relation: file.relation_name(r),
                snapshot: r.kind,
                program: p.kind,
            });
        }
        if p.group.is_some() != r.group.is_some() {
            return Err(SchemaDifference::PolyParent {
                relation: file.relation_name(r),
            });
        }
        relations.push(pr);
    }
    Ok((tables, relations))
}

/// Loads a parsed snapshot into a fresh store of `schema`.
pub(crate) fn load_image(schema: Schema, img: &Image<'_>) -> Result<Store, SnapshotError> {
    let (table_map, relation_map) = map_schema(&img.schema, &schema)?;
    let live = liveness(img)?;
    let mut built = Vec::with_capacity(img.relations.len());
    for (fr, image) in img.relations.iter().enumerate() {
        let def: &RelationDef = &schema.relations[relation_map[fr]];
        let desc = &img.schema.relations[fr];
        let payloads = match image {
            RelationImage::ManyToMany { a, payloads, .. } => {
                (def.load_payloads)(payloads, a.items.len(), def.name)?
            }
            _ => (def.make_payloads)(),
        };
        let lives = (
            live[desc.a_table as usize].as_slice(),
            live[desc.b_table as usize].as_slice(),
        );
        let name = def.name.to_string();
        built.push(build_relation(
            def.kind, def.rules, image, lives, payloads, &name,
        )?);
    }
    check_groups(&img.schema, &live, &built)?;
    let mut tables: Vec<Option<Box<dyn ErasedArena>>> =
        (0..schema.tables.len()).map(|_| None).collect();
    for (ft, image) in img.tables.iter().enumerate() {
        let pt = table_map[ft];
        let def = &schema.tables[pt];
        let root = img.schema.root(ft as u32) as usize;
        tables[pt] = Some((def.load)(
            def,
            image,
            img.schema.tables[ft].version,
            &live[root],
        )?);
    }
    check_counts(img)?;
    let mut relations: Vec<Option<RelationStore>> =
        (0..schema.relations.len()).map(|_| None).collect();
    for (fr, store) in built.into_iter().enumerate() {
        relations[relation_map[fr]] = Some(store);
    }
    let tables = tables
        .into_iter()
        .zip(&schema.tables)
        .map(|(t, def)| t.unwrap_or_else(def.make))
        .collect();
    let relations = relations
        .into_iter()
        .zip(&schema.relations)
        .map(|(r, def)| r.unwrap_or_else(|| RelationStore::new(def)))
        .collect();
    let store = Store::from_parts(schema, tables, relations);
    debug_assert_eq!(store.check_integrity(), Ok(()));
    Ok(store)
}
