//! Error types of the storage: one small enum per failure domain. The umbrella
//! [`Error`](crate::Error), which also wraps snapshot errors, is in `umbrella.rs`.

use std::fmt;

use crate::key::{AnyKey, RawKey};
use crate::schema::{End, RelationName};

/// A key whose entity has been removed (or never existed in this store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaleKey {
    /// The key's entity.
    pub key: AnyKey,
}

impl fmt::Display for StaleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stale key {}: no such entity", self.key)
    }
}

impl std::error::Error for StaleKey {}

/// Why a link, unlink or collection change was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// One of the keys is stale.
    Stale(StaleKey),
    /// The relation forbids linking an entity to itself.
    SelfLink {
        /// The relation.
        relation: RelationName,
        /// The entity.
        key: RawKey,
    },
    /// The relation is declared acyclic and the link would close a cycle.
    Cycle {
        /// The relation.
        relation: RelationName,
        /// The first-end (parent) entity of the refused link.
        a: RawKey,
        /// The second-end (child) entity of the refused link.
        b: RawKey,
    },
    /// A replacement collection or ordering names the same entity twice.
    Duplicate {
        /// The relation.
        relation: RelationName,
        /// The repeated entity.
        key: RawKey,
    },
    /// Unlinking would delete an orphan (delete-orphan rule), and that delete is refused.
    OrphanDelete(RemoveError),
    /// The orphans a change leaves would, through their delete rules, delete an entity
    /// that the change itself links: the change would undo itself, so it is refused.
    DeletesEndpoint {
        /// The relation being changed.
        relation: RelationName,
        /// The linked entity that would be deleted.
        key: AnyKey,
    },
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Stale(e) => e.fmt(f),
            LinkError::SelfLink { relation, key } => write!(
                f,
                "relation {relation} forbids linking {}[{key}] to itself",
                relation.a_table
            ),
            LinkError::Cycle { relation, a, b } => write!(
                f,
                "linking {}[{a}] to {}[{b}] in acyclic relation {relation} would close a cycle",
                relation.a_table, relation.b_table
            ),
            LinkError::Duplicate { relation, key } => write!(
                f,
                "{}[{key}] appears twice in a new collection of relation {relation}",
                relation.b_table
            ),
            LinkError::OrphanDelete(e) => write!(f, "deleting the orphan failed: {e}"),
            LinkError::DeletesEndpoint { relation, key } => write!(
                f,
                "the orphans of this change in relation {relation} would cascade to {key}, \
                 which the change links"
            ),
        }
    }
}

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LinkError::Stale(e) => Some(e),
            LinkError::OrphanDelete(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StaleKey> for LinkError {
    fn from(e: StaleKey) -> Self {
        LinkError::Stale(e)
    }
}

/// Why a delete was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoveError {
    /// The key is stale.
    Stale(StaleKey),
    /// A restrict rule blocks the delete: `blocker` is linked to `key`, which the delete
    /// would remove, through `relation`, and `blocker` itself would survive.
    Restricted {
        /// The relation whose rule refuses.
        relation: RelationName,
        /// The entity that would be deleted.
        key: AnyKey,
        /// The linked entity that keeps it.
        blocker: AnyKey,
    },
}

impl fmt::Display for RemoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoveError::Stale(e) => e.fmt(f),
            RemoveError::Restricted {
                relation,
                key,
                blocker,
            } => write!(
                f,
                "cannot delete {key}: relation {relation} restricts it while {blocker} is linked"
            ),
        }
    }
}

impl std::error::Error for RemoveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RemoveError::Stale(e) => Some(e),
            RemoveError::Restricted { .. } => None,
        }
    }
}

impl From<StaleKey> for RemoveError {
    fn from(e: StaleKey) -> Self {
        RemoveError::Stale(e)
    }
}

/// Why changing a row's kind was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KindError {
    /// The key is stale.
    Stale(StaleKey),
    /// The row is linked through a relation declared on its current kind; such links
    /// can't follow it to another kind. Unlink them first.
    Linked {
        /// The relation on the current kind.
        relation: RelationName,
        /// The row.
        key: AnyKey,
    },
}

impl fmt::Display for KindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KindError::Stale(e) => e.fmt(f),
            KindError::Linked { relation, key } => write!(
                f,
                "cannot change the kind of {key}: it is linked through relation {relation} \
                 of its current kind"
            ),
        }
    }
}

impl std::error::Error for KindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KindError::Stale(e) => Some(e),
            KindError::Linked { .. } => None,
        }
    }
}

impl From<StaleKey> for KindError {
    fn from(e: StaleKey) -> Self {
        KindError::Stale(e)
    }
}

/// The first violated invariant found by [`Store::check_integrity`](crate::Store::check_integrity).
/// Seeing one means a bug in relgraph (or a hand-forged state): every public call keeps
/// these invariants.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityError {
    /// A link names an entity that is not alive.
    DeadEndpoint {
        /// The relation.
        relation: RelationName,
        /// The end where the dead key was found.
        end: End,
        /// The dead key.
        key: RawKey,
    },
    /// The two sides of a relation disagree about a link.
    Disagree {
        /// The relation.
        relation: RelationName,
        /// The entity whose view is not mirrored.
        key: RawKey,
        /// What disagrees.
        detail: &'static str,
    },
    /// A stored count does not match what is stored.
    CountMismatch {
        /// What is counted (a table or relation name).
        what: String,
        /// The stored count.
        stored: usize,
        /// The actual number.
        actual: usize,
    },
    /// A relation that forbids self-links holds one.
    SelfLink {
        /// The relation.
        relation: RelationName,
        /// The entity linked to itself.
        key: RawKey,
    },
    /// An acyclic relation holds a cycle through `key`.
    Cycle {
        /// The relation.
        relation: RelationName,
        /// An entity on the cycle.
        key: RawKey,
    },
    /// A row of a polymorphic base has no kind or several, or a kind row has no base row.
    Kind {
        /// The base table.
        table: &'static str,
        /// The row.
        key: RawKey,
        /// What is wrong.
        detail: &'static str,
    },
    /// A child has a parent in two relations of one polymorphic parent end.
    TwoParents {
        /// The child's table.
        table: &'static str,
        /// The polymorphic parent end.
        end: &'static str,
        /// The child.
        key: RawKey,
    },
    /// A table's list of free slots breaks its invariant: every vacant slot that can be
    /// reused listed exactly once, no retired slot listed (so no key is issued twice).
    FreeList {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntegrityError::DeadEndpoint { relation, end, key } => write!(
                f,
                "relation {relation} links dead entity {key} at end {end:?}"
            ),
            IntegrityError::Disagree {
                relation,
                key,
                detail,
            } => write!(f, "relation {relation} disagrees about {key}: {detail}"),
            IntegrityError::CountMismatch {
                what,
                stored,
                actual,
            } => write!(f, "{what}: stored count {stored}, actual {actual}"),
            IntegrityError::SelfLink { relation, key } => {
                write!(
                    f,
                    "relation {relation} forbids self-links but links {key} to itself"
                )
            }
            IntegrityError::Cycle { relation, key } => {
                write!(f, "acyclic relation {relation} has a cycle through {key}")
            }
            IntegrityError::Kind { table, key, detail } => {
                write!(f, "row {table}[{key}]: {detail}")
            }
            IntegrityError::TwoParents { table, end, key } => write!(
                f,
                "{table}[{key}] has two parents through its polymorphic end `{end}`"
            ),
            IntegrityError::FreeList { table, detail } => {
                write!(f, "free slots of table {table}: {detail}")
            }
        }
    }
}

impl std::error::Error for IntegrityError {}
