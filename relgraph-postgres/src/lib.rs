//! # relgraph-postgres
//!
//! A relgraph store's model in PostgreSQL (and SQLite): the DDL a database administrator
//! would write for a [`Schema`](relgraph::Schema), an export of a whole store in one
//! transaction with `COPY`, an import back into a store with the same keys, orders and
//! payloads, and a database kept in step by the store's change feed ([`PgSync`], and
//! [`WriteBehind`] on a background thread). The mapping is described in
//! `docs/postgres.md`.
//!
//! ```no_run
//! use relgraph::{Schema, Store};
//! use relgraph_postgres::Mapping;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let schema = Schema::new();
//! # let store = Store::new(schema.clone());
//! let mapping = Mapping::new(&schema)?;
//! println!("{}", mapping.postgres_ddl());
//! let mut client = postgres::Client::connect("host=/tmp user=postgres", postgres::NoTls)?;
//! mapping.export(&mut client, &store)?;
//! let back = mapping.import(&mut client)?;
//! # Ok(()) }
//! ```

mod codec;
mod image;
mod mapping;
mod pg;
mod server;
mod sqlite;
mod sync;
mod text;

use std::fmt;

pub use mapping::Mapping;
pub use pg::ExportReport;
pub use server::TempServer;
pub use sync::{PgSync, WriteBehind};

/// What went wrong. Messages name the table, column, row or relation involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The schema cannot be laid out in SQL (an untraceable row type, a column name
    /// taken twice).
    Mapping(String),
    /// The export's target holds a table of the mapping already; nothing was written.
    NotEmpty(String),
    /// The database does not hold this schema's tables, columns or fingerprint.
    SchemaMismatch(String),
    /// A value that does not fit its column or field.
    Value(String),
    /// The database's content does not make a valid store.
    Invalid(String),
    /// The database's content differs from the store's ([`Mapping::compare`]).
    Differs(String),
    /// The store's snapshot could not be made or read.
    Snapshot(String),
    /// The database holds batches up to `applied`; the next batch offered was `batch`:
    /// batches in between are missing (export again).
    Gap {
        /// The last batch the database holds.
        applied: u64,
        /// The batch offered.
        batch: u64,
    },
    /// Reading the change feed failed.
    Feed(relgraph::FeedError),
    /// The write-behind thread stopped on this error.
    WriterStopped(String),
    /// A `COPY` stream failed, or the temporary server could not be set up.
    Io(String),
    /// PostgreSQL reported an error (the transaction was rolled back).
    Postgres(postgres::Error),
    /// SQLite reported an error (the transaction was rolled back).
    Sqlite(rusqlite::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Mapping(s) => write!(f, "cannot map the schema: {s}"),
            Error::NotEmpty(s) => write!(f, "the database is not empty: {s}"),
            Error::SchemaMismatch(s) => write!(f, "the database does not match the schema: {s}"),
            Error::Value(s) => write!(f, "a value does not fit: {s}"),
            Error::Invalid(s) => f.write_str(s),
            Error::Snapshot(s) => write!(f, "snapshot: {s}"),
            Error::Differs(s) => write!(f, "the database differs from the store: {s}"),
            Error::Gap { applied, batch } => write!(
                f,
                "the database holds batches up to {applied}, the next offered is {batch}: \
                 batches {} to {} are missing",
                applied + 1,
                batch - 1
            ),
            Error::Feed(e) => write!(f, "change feed: {e}"),
            Error::WriterStopped(s) => write!(f, "the write-behind writer stopped: {s}"),
            Error::Io(s) => write!(f, "copy stream: {s}"),
            Error::Postgres(e) => write!(f, "postgresql: {e}"),
            Error::Sqlite(e) => write!(f, "sqlite: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Postgres(e) => Some(e),
            Error::Sqlite(e) => Some(e),
            _ => None,
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Postgres(e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}

impl From<relgraph::FeedError> for Error {
    fn from(e: relgraph::FeedError) -> Self {
        Error::Feed(e)
    }
}
