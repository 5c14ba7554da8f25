//! Snapshots: the whole store in one file, saved atomically and loaded with validation.
//!
//! [`Store::save`] writes every table (keys, rows, free slots), every relation (links in
//! order, payloads) and a description of the schema to a temp file in the target's folder,
//! syncs it, renames it over the target and syncs the folder: a crash at any point leaves
//! the old file or the new one. Before any file is touched, the save decodes what it
//! encoded, as a load will, and refuses rows and payloads that would not load back
//! ([`SnapshotError::Unencodable`]), so a save never replaces a loadable file with one
//! that is not. [`Store::load`] checks the header and the checksum, decodes
//! with memory limits derived from the input's size, rebuilds the second side of every
//! relation, checks every invariant, and only then hands back a store. Keys saved are the
//! keys loaded, and re-saving a loaded store gives the same bytes (for row types that
//! serialize deterministically: a `BTreeMap`, not a `HashMap`).
//!
//! Tables and many-to-many payloads carry a version and a shape fingerprint of their type;
//! a program registers migrations from older row and payload types with
//! [`Schema::migrate`](crate::Schema::migrate) and
//! [`Schema::migrate_payload`](crate::Schema::migrate_payload), and a type changed without
//! a version raise is refused on load. A snapshot describes its own tables and
//! relations, so [`inspect`], [`verify`] and [`dot`](fn@dot) (and the `relgraph`
//! command-line tool) work on any snapshot without the program's types.
//!
//! The byte layout is in `docs/design.md`.
//!
//! ```
//! use relgraph::{DeleteRule, Schema, Store};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct User { name: String }
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Post { title: String }
//!
//! fn schema() -> Schema {
//!     let mut schema = Schema::new();
//!     let users = schema.table::<User>("users");
//!     let posts = schema.table::<Post>("posts");
//!     schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
//!     schema
//! }
//!
//! let mut store = Store::new(schema());
//! let alice = store.insert(User { name: "Alice".into() });
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("world.rlg");
//! store.save(&path)?;
//!
//! let loaded = Store::load(schema(), &path)?;
//! assert_eq!(loaded.get(alice), Some(&User { name: "Alice".into() }));
//! assert_eq!(loaded.to_snapshot()?, store.to_snapshot()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod dot;
mod error;
mod format;
pub(crate) mod image;
mod load;
mod save;

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

pub use dot::{dot, DotScope};
pub use error::{InvalidGraph, Invariant, IoStep, SchemaDifference, SnapshotError};
pub use format::{checksum, Header, FORMAT_VERSION, HEADER_LEN, MAGIC};
pub use save::{is_temp_of, temp_files, temp_path, FileSystem, StdFileSystem};

use crate::relation::PayloadVec;
use crate::schema::{RelationKind, Rules};
use crate::Store;
use image::{Image, RelationImage, SchemaDesc, TableImage};

/// The largest snapshot [`Store::load`] reads: 4 GiB. Use [`Store::load_capped`] for
/// another cap.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

impl Store {
    /// The snapshot of the whole store as bytes. O(entities + links): every row and link
    /// payload is encoded, then decoded back as a load decodes it, to check that it loads
    /// (about the cost of a load's decoding on top of the encoding).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::InTransaction`] inside a transaction; [`SnapshotError::Encode`] if
    /// a row's `Serialize` implementation fails; [`SnapshotError::Unencodable`], naming the
    /// table (or relation) and the key (or pair), if a row or payload would not load back
    /// (its type needs a self-describing format: `#[serde(tag)]`, `untagged`, `flatten`;
    /// or it decodes to another value: `skip_serializing_if`; see
    /// [`Entity`](crate::Entity)), or if its `Deserialize` panics while checked.
    pub fn to_snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        save::encode(self)
    }

    /// Writes the snapshot to `writer` (for programs that manage their own files; nothing
    /// here makes the write atomic or durable).
    ///
    /// # Errors
    ///
    /// As [`to_snapshot`](Self::to_snapshot) (then nothing is written), and
    /// [`SnapshotError::Io`] (step [`IoStep::Write`], no path).
    pub fn write_snapshot(&self, mut writer: impl Write) -> Result<(), SnapshotError> {
        let bytes = save::encode(self)?;
        writer
            .write_all(&bytes)
            .and_then(|()| writer.flush())
            .map_err(|source| SnapshotError::Io {
                step: IoStep::Write,
                path: None,
                source,
            })
    }

    /// Saves the snapshot to `path` atomically: encoded and checked in memory (nothing is
    /// touched if a row would not load back), written to a temp file of a fresh name
    /// ([`temp_path`]) in the same folder, synced, renamed over `path`, folder synced; `Ok`
    /// only then. A crash at any moment leaves the previous file or the new one; the next
    /// save removes the temp file it left. If `path` is a symbolic link (or a chain of
    /// them, at most 40), the save writes atomically to the file it finally points to and
    /// the link stays. Concurrent saves of one path (threads or processes) all succeed,
    /// each with its own temp file; the file holds the snapshot of the last rename.
    ///
    /// # Errors
    ///
    /// As [`to_snapshot`](Self::to_snapshot), and [`SnapshotError::Io`] naming the step and
    /// the file: then `path` is unchanged, unless only the final folder sync failed (the
    /// rename happened but may not be durable), and the temp file is removed (if that
    /// removal fails too, the next save removes it).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SnapshotError> {
        self.save_with(&mut StdFileSystem, path)
    }

    /// [`save`](Self::save) through the file operations of `fs` (for fault injection and
    /// crash simulation).
    ///
    /// # Errors
    ///
    /// As [`save`](Self::save).
    pub fn save_with<F: FileSystem>(
        &self,
        fs: &mut F,
        path: impl AsRef<Path>,
    ) -> Result<(), SnapshotError> {
        let bytes = save::encode(self)?;
        save::write_atomic(fs, path.as_ref(), &bytes)
    }

    /// Loads a store of `schema` from snapshot bytes: header, checksum, limited decode,
    /// schema comparison (with migrations), validation of every invariant. O(bytes).
    ///
    /// # Errors
    ///
    /// One [`SnapshotError`] variant per kind of failure; no store is built.
    pub fn from_snapshot(schema: crate::Schema, bytes: &[u8]) -> Result<Store, SnapshotError> {
        let img = Image::parse(bytes)?;
        load::load_image(schema, &img)
    }

    /// Reads a snapshot from `reader`, refusing more than `max_bytes`, and loads it.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::TooLarge`] past the cap, [`SnapshotError::Io`], and as
    /// [`from_snapshot`](Self::from_snapshot).
    pub fn read_snapshot(
        schema: crate::Schema,
        reader: impl Read,
        max_bytes: u64,
    ) -> Result<Store, SnapshotError> {
        let bytes = read_capped(reader, max_bytes, None)?;
        Store::from_snapshot(schema, &bytes)
    }

    /// Loads the snapshot file at `path` (at most [`DEFAULT_MAX_BYTES`]).
    ///
    /// # Errors
    ///
    /// As [`read_snapshot`](Self::read_snapshot).
    pub fn load(schema: crate::Schema, path: impl AsRef<Path>) -> Result<Store, SnapshotError> {
        Store::load_capped(schema, path, DEFAULT_MAX_BYTES)
    }

    /// Loads the snapshot file at `path`, refusing files over `max_bytes` before reading.
    ///
    /// # Errors
    ///
    /// As [`read_snapshot`](Self::read_snapshot).
    pub fn load_capped(
        schema: crate::Schema,
        path: impl AsRef<Path>,
        max_bytes: u64,
    ) -> Result<Store, SnapshotError> {
        let bytes = read_file(path.as_ref(), max_bytes)?;
        Store::from_snapshot(schema, &bytes)
    }
}

/// Writes snapshot bytes to `path` atomically, as [`Store::save`] does.
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    save::write_atomic(&mut StdFileSystem, path, bytes)
}

impl Store {
    /// Checks snapshot bytes with the program's `schema`, as a load would: header,
    /// checksum, structure, schema comparison (with migrations), every graph invariant,
    /// and every row and link payload decoded with the program's types (in its canonical
    /// encoding). The store built is dropped. This is what [`verify`] cannot do without the
    /// types. O(bytes), the cost and memory of a load.
    ///
    /// # Errors
    ///
    /// As [`from_snapshot`](Self::from_snapshot).
    pub fn verify_snapshot(schema: crate::Schema, bytes: &[u8]) -> Result<Verified, SnapshotError> {
        let info = inspect(bytes)?;
        drop(Store::from_snapshot(schema, bytes)?);
        let rows = info.tables.iter().map(|t| t.rows).sum();
        let payloads = info
            .relations
            .iter()
            .filter(|r| r.kind == RelationKind::ManyToMany)
            .map(|r| r.links)
            .sum();
        Ok(Verified {
            info,
            rows,
            payloads,
        })
    }

    /// [`verify_snapshot`](Self::verify_snapshot) of the file at `path` (at most
    /// [`DEFAULT_MAX_BYTES`]).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn verify_file(
        schema: crate::Schema,
        path: impl AsRef<Path>,
    ) -> Result<Verified, SnapshotError> {
        let bytes = read_file(path.as_ref(), DEFAULT_MAX_BYTES)?;
        Store::verify_snapshot(schema, &bytes)
    }
}

/// What [`Store::verify_file`] checked: everything a load checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// What the snapshot holds.
    pub info: SnapshotInfo,
    /// Rows decoded with the program's types (kind rows included).
    pub rows: u64,
    /// Many-to-many link payloads decoded with the program's types.
    pub payloads: u64,
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "header, checksum, structure, schema and graph invariants hold; {} rows and {} \
             link payloads decode with the program's types",
            self.rows, self.payloads
        )
    }
}

/// Reads at most `max_bytes` from `reader` (the file at `path`, if any).
fn read_capped(
    reader: impl Read,
    max_bytes: u64,
    path: Option<&Path>,
) -> Result<Vec<u8>, SnapshotError> {
    let mut bytes = Vec::new();
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| SnapshotError::Io {
            step: IoStep::Read,
            path: path.map(Path::to_path_buf),
            source,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(SnapshotError::TooLarge {
            size: bytes.len() as u64,
            cap: max_bytes,
        });
    }
    Ok(bytes)
}

/// Reads the file at `path`, refusing one over `max_bytes` before reading it.
///
/// # Errors
///
/// [`SnapshotError::Io`] (steps [`IoStep::Open`], [`IoStep::Read`]) naming `path`;
/// [`SnapshotError::TooLarge`] past the cap.
pub fn read_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, SnapshotError> {
    let file = std::fs::File::open(path).map_err(|e| SnapshotError::io(IoStep::Open, path, e))?;
    let size = file
        .metadata()
        .map_err(|e| SnapshotError::io(IoStep::Read, path, e))?
        .len();
    if size > max_bytes {
        return Err(SnapshotError::TooLarge {
            size,
            cap: max_bytes,
        });
    }
    read_capped(file, max_bytes, Some(path))
}

/// A table as a snapshot describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Version of its row type.
    pub version: u32,
    /// Shape fingerprint of its row type (see [`Schema::fingerprint`](crate::Schema)),
    /// `None` if the type could not be traced or the file is of format version 1.
    pub shape: Option<u64>,
    /// For a kind, its base table.
    pub kind_of: Option<String>,
    /// Rows stored.
    pub rows: u64,
    /// Slots stored (live and vacant) for a plain table or base; rows for a kind.
    pub slots: u64,
    /// Bytes of the table's section.
    pub bytes: u64,
    /// Bytes of its encoded rows.
    pub row_bytes: u64,
}

/// A relation as a snapshot describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationInfo {
    /// `a_table.a_end <-> b_table.b_end`.
    pub name: String,
    /// Its kind.
    pub kind: RelationKind,
    /// Its delete rules and policies.
    pub rules: Rules,
    /// The polymorphic parent end it belongs to, if any.
    pub poly_parent: Option<String>,
    /// Version of its payload type (1 for relations without payloads).
    pub payload_version: u32,
    /// Shape fingerprint of its payload type (many-to-many relations of format version 2
    /// whose payload type could be traced).
    pub payload_shape: Option<u64>,
    /// Links stored.
    pub links: u64,
    /// Bytes of the relation's section.
    pub bytes: u64,
}

/// What a snapshot holds, read without the program's types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The header.
    pub header: Header,
    /// Size of the whole snapshot.
    pub file_bytes: u64,
    /// Bytes of the schema description.
    pub schema_bytes: u64,
    /// Its tables, in declaration order.
    pub tables: Vec<TableInfo>,
    /// Its relations, in declaration order.
    pub relations: Vec<RelationInfo>,
}

impl SnapshotInfo {
    fn of(img: &Image<'_>, file_bytes: usize) -> SnapshotInfo {
        SnapshotInfo {
            header: img.header,
            file_bytes: file_bytes as u64,
            schema_bytes: img.schema_bytes as u64,
            tables: table_infos(&img.schema, &img.tables, &img.table_bytes),
            relations: relation_infos(&img.schema, &img.relations, &img.relation_bytes),
        }
    }
}

/// The tables of `desc` whose sections were read (`tables`, each taking `bytes`).
fn table_infos(
    desc: &SchemaDesc<'_>,
    tables: &[TableImage<'_>],
    bytes: &[usize],
) -> Vec<TableInfo> {
    desc.tables
        .iter()
        .zip(tables)
        .zip(bytes)
        .map(|((t, image), &bytes)| TableInfo {
            name: t.name.to_string(),
            version: t.version,
            shape: t.shape,
            kind_of: t.base.map(|b| desc.tables[b as usize].name.to_string()),
            rows: image.rows() as u64,
            slots: match image {
                TableImage::Slots { slots, .. } => slots.len() as u64,
                TableImage::Kind { keys, .. } => keys.len() as u64,
            },
            bytes: bytes as u64,
            row_bytes: image.row_bytes().len() as u64,
        })
        .collect()
}

/// The relations of `desc` whose sections were read (`relations`, each taking `bytes`).
fn relation_infos(
    desc: &SchemaDesc<'_>,
    relations: &[RelationImage<'_>],
    bytes: &[usize],
) -> Vec<RelationInfo> {
    desc.relations
        .iter()
        .zip(relations)
        .zip(bytes)
        .map(|((r, image), &bytes)| RelationInfo {
            name: desc.relation_name(r),
            kind: r.kind,
            rules: r.rules,
            poly_parent: r.group.map(|g| {
                let g = &desc.groups[g as usize];
                format!("{}.{}", desc.tables[g.child_table as usize].name, g.end)
            }),
            payload_version: r.payload_version,
            payload_shape: r.payload_shape,
            links: image.links() as u64,
            bytes: bytes as u64,
        })
        .collect()
}

/// What [`inspect_partial`] could read of a snapshot, sound or damaged.
#[derive(Debug)]
pub struct PartialInfo {
    /// The header, if its own checks pass (magic, version, header checksum, flags and
    /// fixed fields): also for a file cut short, with bytes appended, or with a damaged
    /// payload.
    pub header: Option<Header>,
    /// Size of the whole file.
    pub file_bytes: u64,
    /// Bytes of the schema description, if it was read and matches the header's
    /// fingerprint.
    pub schema_bytes: Option<u64>,
    /// The tables whose sections were read, in declaration order: all of them, or those
    /// before the first section that failed.
    pub tables: Vec<TableInfo>,
    /// The relations whose sections were read, likewise.
    pub relations: Vec<RelationInfo>,
    /// The tables the schema describes whose sections were not read.
    pub unread_tables: Vec<String>,
    /// The relations the schema describes whose sections were not read.
    pub unread_relations: Vec<String>,
    /// The first failure, as [`inspect`] reports it; `None` for a sound snapshot.
    pub error: Option<SnapshotError>,
}

/// Reads what it can of a snapshot, damaged or not: as [`inspect`], but on a failure it
/// still returns the header and the sections it read, the payload read as far as the
/// first section that fails to parse even when the payload's checksum does not match (so
/// the counts after a damaged byte may be wrong; the error says the file is damaged).
/// O(bytes), twice for a damaged file. Never fails: the failure is in
/// [`PartialInfo::error`].
pub fn inspect_partial(bytes: &[u8]) -> PartialInfo {
    let error = match inspect(bytes) {
        Ok(info) => {
            return PartialInfo {
                header: Some(info.header),
                file_bytes: info.file_bytes,
                schema_bytes: Some(info.schema_bytes),
                tables: info.tables,
                relations: info.relations,
                unread_tables: Vec::new(),
                unread_relations: Vec::new(),
                error: None,
            }
        }
        Err(e) => e,
    };
    let header = Header::fields(bytes).ok();
    let mut sections = image::Sections::default();
    if let Some(h) = header {
        let end = usize::try_from(h.payload_len).map_or(bytes.len(), |len| {
            HEADER_LEN.saturating_add(len).min(bytes.len())
        });
        // what fails here is reported by `inspect` above, or follows from its failure
        let _ = sections.read(h, &bytes[HEADER_LEN..end]);
    }
    let (mut tables, mut relations) = (Vec::new(), Vec::new());
    let (mut unread_tables, mut unread_relations) = (Vec::new(), Vec::new());
    if let Some(desc) = &sections.schema {
        tables = table_infos(desc, &sections.tables, &sections.table_bytes);
        relations = relation_infos(desc, &sections.relations, &sections.relation_bytes);
        unread_tables = desc.tables[tables.len()..]
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        unread_relations = desc.relations[relations.len()..]
            .iter()
            .map(|r| desc.relation_name(r))
            .collect();
    }
    PartialInfo {
        header,
        file_bytes: bytes.len() as u64,
        schema_bytes: sections
            .schema
            .as_ref()
            .map(|_| sections.schema_bytes as u64),
        tables,
        relations,
        unread_tables,
        unread_relations,
        error: Some(error),
    }
}

/// Reads what a snapshot holds: header, checksum, and the structure of every section,
/// without decoding rows or checking the graph. O(bytes).
///
/// # Errors
///
/// As [`Store::from_snapshot`], short of row decoding and graph checks.
pub fn inspect(bytes: &[u8]) -> Result<SnapshotInfo, SnapshotError> {
    let img = Image::parse(bytes)?;
    Ok(SnapshotInfo::of(&img, bytes.len()))
}

/// Checks a snapshot without the program's types: header, checksum, structure, and every
/// graph invariant under the snapshot's own schema (live endpoints, cardinalities, no
/// duplicate links, self-link and acyclicity rules, kinds, counts). O(bytes).
///
/// What it cannot check: rows and link payloads are not decoded (that needs their
/// types), so a file whose rows do not decode passes, and so does one whose schema the
/// program would refuse. [`Store::verify_file`] checks those with the program's schema.
///
/// # Errors
///
/// The first failure found.
pub fn verify(bytes: &[u8]) -> Result<SnapshotInfo, SnapshotError> {
    let img = Image::parse(bytes)?;
    check_graph(&img)?;
    Ok(SnapshotInfo::of(&img, bytes.len()))
}

/// The typeless graph checks of [`verify`]; returns the live version of every slot of
/// every table (see `build::liveness`).
fn check_graph(img: &Image<'_>) -> Result<Vec<Vec<u32>>, SnapshotError> {
    let live = build::liveness(img)?;
    let mut built = Vec::with_capacity(img.relations.len());
    for (r, image) in img.schema.relations.iter().zip(&img.relations) {
        let payloads = Box::new(PayloadVec::<()>(vec![(); image.links()]));
        let name = img.schema.relation_name(r);
        built.push(build::build_relation(
            r.kind,
            r.rules,
            image,
            (&live[r.a_table as usize], &live[r.b_table as usize]),
            payloads,
            &name,
        )?);
    }
    build::check_groups(&img.schema, &live, &built)?;
    build::check_counts(img)?;
    Ok(live)
}
