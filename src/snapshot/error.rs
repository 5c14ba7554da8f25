//! What can go wrong saving or loading a snapshot.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::key::RawKey;
use crate::schema::RelationKind;

/// Why a snapshot could not be saved or loaded. A failed load hands back no store and
/// touches none; a failed save leaves the previous file in place.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading or writing a file failed: at which step, on which file.
    Io {
        /// The step that failed.
        step: IoStep,
        /// The file (or folder) it acted on; `None` for a reader or writer handed in by
        /// the program.
        path: Option<PathBuf>,
        /// The operating system's error.
        source: io::Error,
    },
    /// The bytes do not start with the snapshot magic.
    NotASnapshot,
    /// The file ends before the header or the payload it announces.
    Truncated {
        /// Bytes the header announces (or the header's own length).
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Bytes follow the payload the header announces.
    TrailingBytes {
        /// How many.
        extra: u64,
    },
    /// The input is larger than the cap given to the load.
    TooLarge {
        /// Its size (at least).
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// The format version is not one this build reads (written by a newer build, or
    /// damaged).
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The header sets flags this build does not know.
    UnknownFlags {
        /// The flags.
        flags: u32,
    },
    /// The header is damaged.
    HeaderCorrupt {
        /// What is wrong.
        detail: &'static str,
    },
    /// The payload does not match its checksum: the file is damaged.
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u64,
        /// The checksum of the payload.
        computed: u64,
    },
    /// The snapshot was written with a schema this program cannot load it into.
    SchemaMismatch(SchemaDifference),
    /// Decoding asked for more memory than the limit derived from the input's size.
    LimitExceeded {
        /// Where.
        section: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The payload is not a well-formed encoding.
    Malformed {
        /// Where.
        section: String,
        /// Byte offset in the payload (for a row: where the row starts).
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The payload decodes, but the graph it describes breaks an invariant.
    Invalid(InvalidGraph),
    /// A row or payload could not be encoded (its `Serialize` implementation failed).
    Encode {
        /// The table or relation.
        section: String,
        /// The serializer's message.
        detail: String,
    },
    /// A snapshot can't be taken inside a transaction: it would hold uncommitted changes.
    InTransaction,
    /// A migration refused a stored row or payload (it returned an error or panicked).
    Migration {
        /// The table (`table users`) or relation (`relation a.x <-> b.y`).
        section: String,
        /// The row's key (`key 3v1`) or the link's two keys (`link 0v1 -> 2v1`).
        at: String,
        /// The version the value was stored at.
        from: u32,
        /// The migration's error message, or the panic's.
        message: String,
    },
    /// A row or link payload encodes to bytes that would not load back as the value
    /// saved, so the save is refused before any file is touched: its type uses a serde
    /// feature the snapshot encoding cannot carry (see [`Entity`](crate::Entity)).
    Unencodable {
        /// The table (`table NAME`) or many-to-many relation (`relation NAME`).
        section: String,
        /// The row's key, or the link's pair of keys `(a, b)`.
        key: String,
        /// Why, and what to change.
        cause: String,
    },
    /// A unique index the program declares refuses the stored rows (two hold the same
    /// value: the snapshot was saved by a program without that index, or with another
    /// key). Indexes are rebuilt by every load, after every other check.
    Index(Box<crate::index::IndexError>),
}

/// The step of a save or a load at which a file operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoStep {
    /// Reading the target of a symbolic link the save writes through.
    ResolveLink,
    /// Listing the target's folder, to find temp files left by interrupted saves.
    ListFolder,
    /// Removing a temp file left by an interrupted save.
    RemoveStaleTemp,
    /// Creating the temp file.
    Create,
    /// Writing the snapshot.
    Write,
    /// Syncing the temp file (`fsync`).
    Sync,
    /// Renaming the temp file over the target.
    Rename {
        /// The target.
        to: PathBuf,
    },
    /// Syncing the target's folder.
    SyncFolder,
    /// Opening the snapshot file.
    Open,
    /// Reading the snapshot.
    Read,
}

impl SnapshotError {
    /// An I/O error at `step` on `path`.
    pub(crate) fn io(step: IoStep, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SnapshotError::Io {
            step,
            path: Some(path.into()),
            source,
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Io { step, path, source } => {
                let verb = match step {
                    IoStep::ResolveLink => "resolve the symbolic link",
                    IoStep::ListFolder => "list the folder",
                    IoStep::RemoveStaleTemp => "remove the stale temp file",
                    IoStep::Create => "create",
                    IoStep::Write => "write",
                    IoStep::Sync => "sync",
                    IoStep::Rename { .. } => "rename",
                    IoStep::SyncFolder => "sync the folder",
                    IoStep::Open => "open",
                    IoStep::Read => "read",
                };
                match path {
                    Some(p) => write!(f, "could not {verb} {}", p.display())?,
                    None => write!(f, "could not {verb} the snapshot")?,
                }
                if let IoStep::Rename { to } = step {
                    write!(f, " to {}", to.display())?;
                }
                write!(f, ": {source}")
            }
            SnapshotError::NotASnapshot => write!(f, "not a relgraph snapshot (wrong magic bytes)"),
            SnapshotError::Truncated { expected, found } => write!(
                f,
                "truncated snapshot: {found} bytes, the header announces {expected}"
            ),
            SnapshotError::TrailingBytes { extra } => {
                write!(f, "{extra} unexpected bytes after the snapshot's payload")
            }
            SnapshotError::TooLarge { size, cap } => {
                write!(f, "input of {size} bytes exceeds the cap of {cap} bytes")
            }
            SnapshotError::UnsupportedVersion { found, supported } => write!(
                f,
                "unsupported snapshot format version {found} (this build reads 1 to {supported})"
            ),
            SnapshotError::UnknownFlags { flags } => {
                write!(f, "unknown header flags {flags:#x}")
            }
            SnapshotError::HeaderCorrupt { detail } => write!(f, "corrupt header: {detail}"),
            SnapshotError::ChecksumMismatch { stored, computed } => write!(
                f,
                "payload checksum mismatch (stored {stored:016x}, computed {computed:016x}): \
                 the file is damaged"
            ),
            SnapshotError::SchemaMismatch(d) => write!(f, "schema mismatch: {d}"),
            SnapshotError::LimitExceeded { section, limit } => write!(
                f,
                "decoding {section} exceeds the memory limit of {limit} bytes"
            ),
            SnapshotError::Malformed {
                section,
                offset,
                detail,
            } => {
                write!(
                    f,
                    "malformed {section} at payload offset {offset}: {detail}"
                )?;
                if section.starts_with("row ") || section.starts_with("payload ") {
                    // the common cause, when the checksum held: the type, not the file
                    write!(
                        f,
                        " (if the row or payload type changed since the snapshot was saved, \
                         raise its version with `Schema::set_version` or \
                         `Schema::set_payload_version` and register a migration)"
                    )?;
                }
                Ok(())
            }
            SnapshotError::Invalid(e) => write!(f, "invalid graph: {e}"),
            SnapshotError::Encode { section, detail } => {
                write!(f, "cannot encode {section}: {detail}")
            }
            SnapshotError::InTransaction => {
                write!(f, "cannot take a snapshot inside a transaction")
            }
            SnapshotError::Migration {
                section,
                at,
                from,
                message,
            } => write!(
                f,
                "the migration of {section} from version {from} failed at {at}: {message}"
            ),
            SnapshotError::Unencodable {
                section,
                key,
                cause,
            } => write!(f, "cannot save {section} at {key}: {cause}"),
            SnapshotError::Index(e) => write!(f, "cannot rebuild the indexes: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io { source, .. } => Some(source),
            SnapshotError::SchemaMismatch(e) => Some(e),
            SnapshotError::Invalid(e) => Some(e),
            SnapshotError::Index(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<InvalidGraph> for SnapshotError {
    fn from(e: InvalidGraph) -> Self {
        SnapshotError::Invalid(e)
    }
}

impl From<SchemaDifference> for SnapshotError {
    fn from(e: SchemaDifference) -> Self {
        SnapshotError::SchemaMismatch(e)
    }
}

/// How the schema a snapshot was written with differs from the program's, in a way that
/// stops the load. (A program may add tables and relations, change delete rules, and raise
/// table and payload versions with a migration: those load.)
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaDifference {
    /// The snapshot has a table the program does not declare.
    MissingTable {
        /// The table.
        table: String,
    },
    /// A table is a kind in one schema and not in the other, or a kind of another base.
    TableShape {
        /// The table.
        table: String,
        /// Its shape in the snapshot.
        snapshot: String,
        /// Its shape in the program.
        program: String,
    },
    /// A table's version in the snapshot is newer than the program's.
    VersionTooNew {
        /// The table.
        table: String,
        /// Version in the snapshot.
        snapshot: u32,
        /// Version in the program.
        program: u32,
    },
    /// A table's version in the snapshot is older and no migration from it is registered.
    NoMigration {
        /// The table.
        table: String,
        /// Version in the snapshot.
        snapshot: u32,
        /// Version in the program.
        program: u32,
    },
    /// The snapshot has a relation the program does not declare.
    MissingRelation {
        /// The relation, as `a_table.a_end <-> b_table.b_end`.
        relation: String,
    },
    /// A relation is of another kind in the program.
    RelationKind {
        /// The relation.
        relation: String,
        /// Its kind in the snapshot.
        snapshot: RelationKind,
        /// Its kind in the program.
        program: RelationKind,
    },
    /// A relation belongs to a polymorphic parent end in one schema and not the other.
    PolyParent {
        /// The relation.
        relation: String,
    },
    /// A table is stored at the program's version, but its row type's shape differs
    /// from the one it was saved with: the type changed without a version raise.
    RowTypeChanged {
        /// The table.
        table: String,
        /// The version both give.
        version: u32,
        /// Shape fingerprint in the snapshot.
        snapshot: u64,
        /// Shape fingerprint of the program's type.
        program: u64,
    },
    /// A many-to-many's payloads are stored at the program's payload version, but the
    /// payload type's shape differs from the one they were saved with.
    PayloadTypeChanged {
        /// The relation.
        relation: String,
        /// The payload version both give.
        version: u32,
        /// Shape fingerprint in the snapshot.
        snapshot: u64,
        /// Shape fingerprint of the program's type.
        program: u64,
    },
    /// A relation's payload version in the snapshot is newer than the program's.
    PayloadVersionTooNew {
        /// The relation.
        relation: String,
        /// Version in the snapshot.
        snapshot: u32,
        /// Version in the program.
        program: u32,
    },
    /// A relation's payload version in the snapshot is older and no payload migration
    /// from it is registered.
    NoPayloadMigration {
        /// The relation.
        relation: String,
        /// Version in the snapshot.
        snapshot: u32,
        /// Version in the program.
        program: u32,
    },
}

impl fmt::Display for SchemaDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaDifference::MissingTable { table } => write!(
                f,
                "the snapshot has table `{table}`, which the program does not declare"
            ),
            SchemaDifference::TableShape {
                table,
                snapshot,
                program,
            } => write!(
                f,
                "table `{table}` is {snapshot} in the snapshot but {program} in the program"
            ),
            SchemaDifference::VersionTooNew {
                table,
                snapshot,
                program,
            } => write!(
                f,
                "table `{table}` has version {snapshot} in the snapshot, newer than the \
                 program's {program}"
            ),
            SchemaDifference::NoMigration {
                table,
                snapshot,
                program,
            } => write!(
                f,
                "table `{table}` has version {snapshot} in the snapshot and {program} in the \
                 program, and no migration from version {snapshot} is registered"
            ),
            SchemaDifference::MissingRelation { relation } => write!(
                f,
                "the snapshot has relation {relation}, which the program does not declare"
            ),
            SchemaDifference::RelationKind {
                relation,
                snapshot,
                program,
            } => write!(
                f,
                "relation {relation} is {snapshot:?} in the snapshot but {program:?} in the \
                 program"
            ),
            SchemaDifference::PolyParent { relation } => write!(
                f,
                "relation {relation} belongs to a different polymorphic parent end in the \
                 snapshot and in the program"
            ),
            SchemaDifference::RowTypeChanged {
                table,
                version,
                snapshot,
                program,
            } => write!(
                f,
                "the row type of table `{table}` changed without a version raise (both at \
                 version {version}, shape {snapshot:016x} in the snapshot, {program:016x} in \
                 the program): raise its version with `Schema::set_version` and register a \
                 migration from version {version} with `Schema::migrate`"
            ),
            SchemaDifference::PayloadTypeChanged {
                relation,
                version,
                snapshot,
                program,
            } => write!(
                f,
                "the payload type of relation {relation} changed without a version raise \
                 (both at payload version {version}, shape {snapshot:016x} in the snapshot, \
                 {program:016x} in the program): raise its version with \
                 `Schema::set_payload_version` and register a migration from version \
                 {version} with `Schema::migrate_payload`"
            ),
            SchemaDifference::PayloadVersionTooNew {
                relation,
                snapshot,
                program,
            } => write!(
                f,
                "relation {relation} has payload version {snapshot} in the snapshot, newer \
                 than the program's {program}"
            ),
            SchemaDifference::NoPayloadMigration {
                relation,
                snapshot,
                program,
            } => write!(
                f,
                "relation {relation} has payload version {snapshot} in the snapshot and \
                 {program} in the program, and no payload migration from version {snapshot} \
                 is registered"
            ),
        }
    }
}

impl std::error::Error for SchemaDifference {}

/// The invariants a loaded snapshot must hold; each failure names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invariant {
    /// The header's schema fingerprint is the hash of the schema the payload describes.
    Fingerprint,
    /// The payload's schema description is well formed (indices in range, names unique).
    SchemaDescription,
    /// A slot's version is nonzero and not above the highest version the slot issued.
    SlotVersion,
    /// Sections appear in ascending key order, lists are not empty, rows and payloads are
    /// in their canonical encoding (no longer varint forms): the one canonical encoding of
    /// a store, so that re-saving it gives the same bytes.
    Canonical,
    /// Every link endpoint is a live entity of the relation's table.
    LiveEndpoint,
    /// A one-to-many child has at most one parent; a one-to-one entity at most one partner.
    Cardinality,
    /// A many-to-many pair is linked at most once, and each end lists exactly its links.
    DuplicateLink,
    /// No entity is linked to itself where the relation forbids it.
    NoSelfLink,
    /// A relation declared acyclic holds no cycle.
    Acyclic,
    /// Every row of a polymorphic base has exactly one kind, every kind row a base row.
    OneKind,
    /// A child has a parent in at most one relation of a polymorphic parent end.
    OnePolyParent,
    /// The entity and link counts match the header.
    Counts,
    /// A table's free list names slots in range, each at most once, none at its last
    /// version, and every vacant slot that can be reused.
    FreeList,
}

/// A decodable snapshot whose graph breaks an invariant: which one, where, and the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidGraph {
    /// The invariant broken.
    pub invariant: Invariant,
    /// The table or relation where it was found.
    pub location: String,
    /// The offending entity, when there is one.
    pub key: Option<RawKey>,
    /// What exactly is wrong.
    pub detail: String,
}

impl InvalidGraph {
    pub(crate) fn new(
        invariant: Invariant,
        location: impl Into<String>,
        key: Option<RawKey>,
        detail: impl Into<String>,
    ) -> Self {
        InvalidGraph {
            invariant,
            location: location.into(),
            key,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for InvalidGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} broken in {}", self.invariant, self.location)?;
        if let Some(k) = self.key {
            write!(f, " at {k}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl std::error::Error for InvalidGraph {}
