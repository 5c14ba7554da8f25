//! The same mapping exported into a SQLite database (one file any SQL tool opens).

use relgraph::Store;
use rusqlite::types::Value as Lite;
use rusqlite::Connection;

use crate::codec::Val;
use crate::image::TableSec;
use crate::mapping::{q, Dialect, Mapping, SLOTS_TABLE, STATE_TABLE, VACANT_TABLE};
use crate::pg::{ExportReport, RowSink};
use crate::text::float_text;
use crate::Error;

struct LiteSink<'c> {
    tx: &'c rusqlite::Transaction<'c>,
    sql: String,
    table: String,
    rows: u64,
}

fn lite(v: &Val) -> Lite {
    match v {
        Val::Null => Lite::Null,
        Val::Bool(b) => Lite::Integer(i64::from(*b)),
        Val::Int(i) => Lite::Integer(*i),
        Val::Big(s) => Lite::Text(s.clone()),
        // SQLite turns NaN into NULL: non-finite floats are kept as text
        Val::Float(f) if !f.is_finite() => Lite::Text(float_text(*f)),
        Val::Float(f) => Lite::Real(*f),
        Val::Text(s) => Lite::Text(s.clone()),
        Val::Bytes(b) => Lite::Blob(b.clone()),
        Val::Json(j) => Lite::Text(j.to_string()),
    }
}

impl RowSink for LiteSink<'_> {
    fn begin(&mut self, table: &str, columns: &[String]) -> Result<(), Error> {
        let cols: Vec<String> = columns.iter().map(|c| q(c)).collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        self.sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            q(table),
            cols.join(", "),
            marks.join(", ")
        );
        self.table = table.to_string();
        self.rows = 0;
        Ok(())
    }

    fn row(&mut self, row: &[Val]) -> Result<(), Error> {
        let mut stmt = self.tx.prepare_cached(&self.sql)?;
        let values: Vec<Lite> = row.iter().map(lite).collect();
        stmt.execute(rusqlite::params_from_iter(values))
            .map_err(|e| {
                Error::Value(format!(
                    "table {}, row {}: {e}",
                    self.table,
                    row.first().map_or(-1, Val::int)
                ))
            })?;
        self.rows += 1;
        Ok(())
    }

    fn end(&mut self) -> Result<u64, Error> {
        Ok(self.rows)
    }
}

impl Mapping {
    /// Writes the whole store into a SQLite database without the mapping's tables, in
    /// one transaction: the same tables, columns, foreign keys (declared inline, with
    /// the same `ON DELETE` rules; SQLite enforces them with `PRAGMA foreign_keys = ON`)
    /// and indexes as in PostgreSQL, SQLite's types standing in (`INTEGER`, `REAL`,
    /// `TEXT`, `BLOB`; nested values as JSON text, integers beyond 64 bits as text).
    /// O(rows + links).
    ///
    /// # Errors
    ///
    /// [`Error::NotEmpty`] if a table of the mapping exists; [`Error::Sqlite`];
    /// [`Error::Snapshot`] if the store cannot be encoded. On any error nothing is
    /// written.
    pub fn export_sqlite(
        &self,
        conn: &mut Connection,
        store: &Store,
    ) -> Result<ExportReport, Error> {
        let bytes = store
            .to_snapshot()
            .map_err(|e| Error::Snapshot(e.to_string()))?;
        let parsed = self.parse(&bytes)?;
        let applied_seq = store.feed_cursor().position().saturating_sub(1);
        let tx = conn.transaction()?;
        for name in self.table_names() {
            let exists: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&name],
                |r| r.get(0),
            )?;
            if exists > 0 {
                return Err(Error::NotEmpty(format!(
                    "table {name} exists already: export writes into a database without the \
                     schema's tables"
                )));
            }
        }
        let ddl = self.ddl(Dialect::Sqlite);
        for s in &ddl.tables {
            tx.execute_batch(s)?;
        }
        let (rows, links) = self.write_tables(
            &parsed,
            &mut LiteSink {
                tx: &tx,
                sql: String::new(),
                table: String::new(),
                rows: 0,
            },
        )?;
        for s in &ddl.constraints {
            tx.execute_batch(s)?;
        }
        tx.execute(
            &format!("INSERT INTO {STATE_TABLE} (id, fingerprint, applied_seq) VALUES (1, ?1, ?2)"),
            rusqlite::params![format!("{:016x}", self.fingerprint), applied_seq as i64],
        )?;
        for (t, tm) in self.tables.iter().enumerate() {
            if let TableSec::Slots { raw, vacant, .. } = &parsed.tables[t] {
                tx.execute(
                    &format!("INSERT INTO {SLOTS_TABLE} (table_name, slots) VALUES (?1, ?2)"),
                    rusqlite::params![tm.name, raw],
                )?;
                for &(id, high) in vacant {
                    tx.execute(
                        &format!(
                            "INSERT INTO {VACANT_TABLE} (table_name, id, version) VALUES (?1, ?2, ?3)"
                        ),
                        rusqlite::params![tm.name, id, high],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(ExportReport {
            rows,
            links,
            applied_seq,
        })
    }
}
