//! Loading a snapshot into a fresh store: schema comparison, graph checks, and the rows
//! decoded by each table's and relation's typed loader (`src/rows.rs`).

use super::build::{build_relation, check_counts, check_groups, liveness};
use super::error::{InvalidGraph, Invariant, SchemaDifference, SnapshotError};
use super::image::{Image, RelationImage, SchemaDesc, TableImage};
use crate::arena::ErasedArena;
use crate::codec::{CodecError, Limit};
use crate::key::RawKey;
use crate::relation::RelationStore;
use crate::rows::RowsError;
use crate::schema::{RelationDef, RowError, Schema, TableDef};
use crate::Store;

/// A row or payload error of a migration: the codec's, or the migration's own.
fn row_error(
    e: RowError,
    codec_section: impl FnOnce() -> String,
    migration_at: impl FnOnce() -> (String, String),
    (limit, offset, from): (Limit, usize, u32),
) -> SnapshotError {
    match e {
        RowError::Codec(e) => codec_error(codec_section(), limit, offset, e),
        RowError::Migration(message) => {
            let (section, at) = migration_at();
            SnapshotError::Migration {
                section,
                at,
                from,
                message,
            }
        }
    }
}

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

/// The snapshot's error for a table's rows that did not load: the section and key named,
/// offsets made the payload's.
fn table_error(
    e: RowsError,
    def: &TableDef,
    image: &TableImage<'_>,
    version: u32,
    root_live: &[u32],
) -> SnapshotError {
    match e {
        RowsError::NoMigration => SchemaDifference::NoMigration {
            table: def.name.to_string(),
            snapshot: version,
            program: def.version,
        }
        .into(),
        RowsError::Row {
            index,
            offset,
            limit,
            error,
        } => row_error(
            error,
            || format!("row {index} of table {}", def.name),
            || {
                let key = row_key(image, root_live, index);
                (format!("table {}", def.name), format!("key {key}"))
            },
            (limit, image.rows_at() + offset, version),
        ),
        RowsError::Trailing { offset, left } => SnapshotError::Malformed {
            section: format!("rows of table {}", def.name),
            offset: (image.rows_at() + offset) as u64,
            detail: format!("{left} bytes left after the last row"),
        },
    }
}

/// The key of the `row`-th row of a table image (the row's slot, or a kind's row).
fn row_key(image: &TableImage<'_>, root_live: &[u32], row: usize) -> String {
    let key = match image {
        TableImage::Slots { slots, .. } => slots
            .iter()
            .enumerate()
            .filter(|(_, &(_, v))| v != 0)
            .nth(row)
            .and_then(|(i, &(_, v))| RawKey::from_bits(u64::from(v) << 32 | i as u64)),
        TableImage::Kind { keys, .. } => keys.get(row).and_then(|&i| {
            let v = root_live.get(i as usize).copied().unwrap_or(0);
            RawKey::from_bits(u64::from(v) << 32 | u64::from(i))
        }),
    };
    key.map_or_else(|| format!("row {row}"), |k| k.to_string())
}

/// The snapshot's error for a many-to-many's payloads that did not load; `link` names the
/// link of a payload.
fn payloads_error(
    e: RowsError,
    def: &RelationDef,
    version: u32,
    link: impl FnOnce(usize) -> String,
) -> SnapshotError {
    let relation = def.name;
    match e {
        RowsError::NoMigration => SchemaDifference::NoPayloadMigration {
            relation: relation.to_string(),
            snapshot: version,
            program: def.payload_version,
        }
        .into(),
        RowsError::Row {
            index,
            offset,
            limit,
            error,
        } => row_error(
            error,
            || format!("payload {index} of {relation}"),
            || (format!("relation {relation}"), link(index)),
            (limit, offset, version),
        ),
        RowsError::Trailing { offset, left } => SnapshotError::Malformed {
            section: format!("payloads of {relation}"),
            offset: offset as u64,
            detail: format!("{left} bytes left after the last payload"),
        },
    }
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
        if let (true, Some(snapshot), Some(program)) =
            (t.version == pv, t.shape, program.tables[pt].shape)
        {
            if snapshot != program {
                return Err(SchemaDifference::RowTypeChanged {
                    table: t.name.into(),
                    version: pv,
                    snapshot,
                    program,
                });
            }
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
        let pv = p.payload_version;
        if r.payload_version > pv {
            return Err(SchemaDifference::PayloadVersionTooNew {
                relation: file.relation_name(r),
                snapshot: r.payload_version,
                program: pv,
            });
        }
        if r.payload_version < pv
            && !schema.relations[pr]
                .payload_migrations
                .iter()
                .any(|m| m.0 == r.payload_version)
        {
            return Err(SchemaDifference::NoPayloadMigration {
                relation: file.relation_name(r),
                snapshot: r.payload_version,
                program: pv,
            });
        }
        if let (true, Some(snapshot), Some(program)) =
            (r.payload_version == pv, r.payload_shape, p.payload_shape)
        {
            if snapshot != program {
                return Err(SchemaDifference::PayloadTypeChanged {
                    relation: file.relation_name(r),
                    version: pv,
                    snapshot,
                    program,
                });
            }
        }
        relations.push(pr);
    }
    Ok((tables, relations))
}

/// The `i`-th link of a many-to-many's first-end lists, as `a -> b` (keys where the slots
/// are live, slot indices otherwise).
fn link_name(a: &super::image::Lists, (live_a, live_b): (&[u32], &[u32]), i: usize) -> String {
    let key = |live: &[u32], index: u32| {
        let v = live.get(index as usize).copied().unwrap_or(0);
        RawKey::from_bits(u64::from(v) << 32 | u64::from(index))
            .map_or_else(|| format!("slot {index}"), |k| k.to_string())
    };
    match a
        .owners
        .iter()
        .zip(&a.ends)
        .find(|(_, &end)| i < end as usize)
    {
        Some((&owner, _)) => format!("link {} -> {}", key(live_a, owner), key(live_b, a.items[i])),
        None => format!("link {i}"),
    }
}

/// Loads a parsed snapshot into a fresh store of `schema`.
pub(crate) fn load_image(schema: Schema, img: &Image<'_>) -> Result<Store, SnapshotError> {
    let (table_map, relation_map) = map_schema(&img.schema, &schema)?;
    let live = liveness(img)?;
    let mut built = Vec::with_capacity(img.relations.len());
    for (fr, image) in img.relations.iter().enumerate() {
        let def: &RelationDef = &schema.relations[relation_map[fr]];
        let desc = &img.schema.relations[fr];
        let lives = (
            live[desc.a_table as usize].as_slice(),
            live[desc.b_table as usize].as_slice(),
        );
        let payloads = match image {
            RelationImage::ManyToMany { a, payloads, .. } => {
                let version = desc.payload_version;
                (def.load_payloads)(def, payloads, a.items.len(), version)
                    .map_err(|e| payloads_error(e, def, version, |i| link_name(a, lives, i)))?
            }
            _ => (def.make_payloads)(),
        };
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
        let root_live = &live[img.schema.root(ft as u32) as usize];
        let version = img.schema.tables[ft].version;
        let rows = image.row_bytes();
        let column = (def.load)(def, image.layout(), rows, version, root_live)
            .map_err(|e| table_error(e, def, image, version, root_live))?;
        tables[pt] = Some(column);
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
    let mut store = Store::from_parts(schema, tables, relations);
    debug_assert_eq!(store.check_integrity(), Ok(()));
    // indexes are not stored: rebuilt from the rows (see docs/design.md, "Indexes")
    store
        .rebuild_indexes()
        .map_err(|e| SnapshotError::Index(Box::new(e)))?;
    Ok(store)
}
