//! The umbrella [`Error`] and [`Result`]: every error relgraph returns, storage and
//! snapshot alike. Above both (it wraps [`SnapshotError`]), so that the storage's errors
//! in `error.rs` do not depend on the file format.

use std::fmt;

use crate::error::{IntegrityError, KindError, LinkError, RemoveError, StaleKey};
use crate::snapshot::SnapshotError;

/// Every error relgraph returns, for callers that handle them alike: `?` converts each of
/// them, snapshot errors included, so `fn main() -> relgraph::Result<()>` can use
/// `store.link(..)?` and `store.save(..)?` alike.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A stale key.
    Stale(StaleKey),
    /// A refused link operation.
    Link(LinkError),
    /// A refused delete.
    Remove(RemoveError),
    /// A violated invariant.
    Integrity(IntegrityError),
    /// A refused change of kind.
    Kind(KindError),
    /// A snapshot that could not be saved or loaded.
    Snapshot(SnapshotError),
    /// An undo or redo that was refused.
    History(crate::history::HistoryError),
    /// A change feed that could not be read or applied.
    Feed(crate::feed::FeedError),
    /// A change a unique index refused (boxed: it names the value and its holder).
    Index(Box<crate::index::IndexError>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Stale(e) => e.fmt(f),
            Error::Link(e) => e.fmt(f),
            Error::Remove(e) => e.fmt(f),
            Error::Integrity(e) => e.fmt(f),
            Error::Kind(e) => e.fmt(f),
            Error::Snapshot(e) => e.fmt(f),
            Error::History(e) => e.fmt(f),
            Error::Feed(e) => e.fmt(f),
            Error::Index(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Stale(e) => Some(e),
            Error::Link(e) => Some(e),
            Error::Remove(e) => Some(e),
            Error::Integrity(e) => Some(e),
            Error::Kind(e) => Some(e),
            Error::Snapshot(e) => Some(e),
            Error::History(e) => Some(e),
            Error::Feed(e) => Some(e),
            Error::Index(e) => Some(&**e),
        }
    }
}

impl From<crate::history::HistoryError> for Error {
    fn from(e: crate::history::HistoryError) -> Self {
        Error::History(e)
    }
}

impl From<crate::index::IndexError> for Error {
    fn from(e: crate::index::IndexError) -> Self {
        Error::Index(Box::new(e))
    }
}

impl From<SnapshotError> for Error {
    fn from(e: SnapshotError) -> Self {
        Error::Snapshot(e)
    }
}

impl From<StaleKey> for Error {
    fn from(e: StaleKey) -> Self {
        Error::Stale(e)
    }
}
impl From<LinkError> for Error {
    fn from(e: LinkError) -> Self {
        Error::Link(e)
    }
}
impl From<RemoveError> for Error {
    fn from(e: RemoveError) -> Self {
        Error::Remove(e)
    }
}
impl From<KindError> for Error {
    fn from(e: KindError) -> Self {
        Error::Kind(e)
    }
}
impl From<IntegrityError> for Error {
    fn from(e: IntegrityError) -> Self {
        Error::Integrity(e)
    }
}

/// `Result` with relgraph's umbrella [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
