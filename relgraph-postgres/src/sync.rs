//! A database kept in step with a store by its change feed: each batch one transaction,
//! made idempotent by the batch number recorded in `relgraph_state`.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, Statement, Transaction};
use relgraph::{Change, ChangeBatch, End, EntityRef, FeedCursor, Store};

use crate::codec::{decode_col, Bin};
use crate::mapping::{
    lit, q, sql_type, Column, Dialect, Mapping, SLOTS_TABLE, STATE_TABLE, VACANT_TABLE,
};
use crate::text::val_text;
use crate::Error;

/// Applies change feed batches to a database: the part of [`PgSync`] that owns the
/// connection (also the write-behind thread's).
struct Applier {
    mapping: Mapping,
    client: Client,
    statements: HashMap<String, Statement>,
    /// Database batch number = store batch number + offset.
    offset: i64,
}

/// What applying one batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applied {
    /// The batch was written in its own transaction.
    Written,
    /// The database holds it already (recorded batch number at or past it): skipped.
    Skipped,
}

type Param = Option<String>;

impl Applier {
    fn stmt(&mut self, sql: &str) -> Result<Statement, Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn apply(&mut self, batch: &ChangeBatch) -> Result<Applied, Error> {
        let seq = batch.seq as i64 + self.offset;
        // statements prepared before the transaction borrows the client
        let mut sqls = Vec::new();
        for c in &batch.changes {
            self.plan(c, &mut sqls)?;
        }
        let mut prepared = Vec::with_capacity(sqls.len());
        for (sql, params) in sqls {
            prepared.push((self.stmt(&sql)?, params));
        }
        let claim = self.stmt(&format!(
            "UPDATE {STATE_TABLE} SET applied_seq = $1 WHERE applied_seq = $2"
        ))?;
        let mut tx = self.client.transaction()?;
        if tx.execute(&claim, &[&seq, &(seq - 1)])? == 0 {
            let row = tx.query_one(&format!("SELECT applied_seq FROM {STATE_TABLE}"), &[])?;
            let applied: i64 = row.get(0);
            tx.rollback()?;
            if applied >= seq {
                return Ok(Applied::Skipped);
            }
            return Err(Error::Gap {
                applied: applied as u64,
                batch: seq as u64,
            });
        }
        for (stmt, params) in &prepared {
            run(&mut tx, stmt, params)?;
        }
        tx.commit()?;
        Ok(Applied::Written)
    }

    /// The statements (SQL, text parameters) of one change.
    fn plan(&self, c: &Change, out: &mut Vec<(String, Vec<Param>)>) -> Result<(), Error> {
        let m = &self.mapping;
        let id = |e: &EntityRef| Some(e.key.index().to_string());
        match c {
            Change::Inserted { entity, row } => {
                let t = entity.table.index();
                let tm = &m.tables[t];
                let mut params = vec![id(entity)];
                let (second, second_val) = match tm.base {
                    None => ("version", "$2::text::bigint".to_string()),
                    Some(_) => ("pos", format!("(SELECT count(*) FROM {})", q(tm.name))),
                };
                if tm.base.is_none() {
                    params.push(Some(entity.key.version().to_string()));
                    out.push(slots_stale(tm.name));
                }
                out.push(insert_row(tm, (second, second_val), row, params)?);
            }
            Change::Updated { entity, row } => {
                let tm = &m.tables[entity.table.index()];
                let mut params = vec![id(entity)];
                let (names, values) = value_params(&tm.cols, row, &mut params, tm.name)?;
                if !names.is_empty() {
                    out.push((
                        format!(
                            "UPDATE {} SET {} WHERE id = $1::text::bigint",
                            q(tm.name),
                            assignments(&names, &values)
                        ),
                        params,
                    ));
                }
            }
            Change::Removed { entity } => {
                let t = entity.table.index();
                let tm = &m.tables[t];
                match tm.base {
                    Some(_) => swap_remove(tm.name, id(entity), out),
                    None => {
                        for &k in &tm.kinds {
                            swap_remove(m.tables[k].name, id(entity), out);
                        }
                        out.push((
                            format!("DELETE FROM {} WHERE id = $1::text::bigint", q(tm.name)),
                            vec![id(entity)],
                        ));
                        out.push(slots_stale(tm.name));
                        out.push((
                            format!(
                                "INSERT INTO {VACANT_TABLE} (table_name, id, version) \
                                 VALUES ($1, $2::text::bigint, $3::text::bigint) \
                                 ON CONFLICT (table_name, id) DO UPDATE SET version = \
                                 greatest({VACANT_TABLE}.version, excluded.version)"
                            ),
                            vec![
                                Some(tm.name.to_string()),
                                id(entity),
                                Some(entity.key.version().to_string()),
                            ],
                        ));
                    }
                }
            }
            Change::KindChanged {
                entity,
                from,
                to,
                row,
            } => {
                swap_remove(m.tables[from.index()].name, id(entity), out);
                let tm = &m.tables[to.index()];
                let pos = format!("(SELECT count(*) FROM {})", q(tm.name));
                out.push(insert_row(tm, ("pos", pos), row, vec![id(entity)])?);
            }
            Change::KindRowsSwapped { kind, position } => {
                let k = q(m.tables[kind.index()].name);
                out.push((
                    format!(
                        "UPDATE {k} SET pos = CASE WHEN pos = $1::text::bigint \
                         THEN (SELECT count(*) - 1 FROM {k}) ELSE $1::text::bigint END \
                         WHERE pos = $1::text::bigint OR pos = (SELECT count(*) - 1 FROM {k})"
                    ),
                    vec![Some(position.to_string())],
                ));
            }
            Change::Linked {
                relation,
                a,
                b,
                payload,
            } => {
                let r = &m.relations[relation.index()];
                if let Some(assoc) = &r.assoc {
                    let t = q(&assoc.table);
                    let mut params = vec![id(a), id(b)];
                    let (names, values) = match payload {
                        Some(p) => value_params(&assoc.payload, p, &mut params, &assoc.table)?,
                        None => (Vec::new(), Vec::new()),
                    };
                    let (ai, ap, bi, bp) = (
                        q(&assoc.a_id),
                        q(&assoc.a_pos),
                        q(&assoc.b_id),
                        q(&assoc.b_pos),
                    );
                    let mut cols = vec![ai.clone(), ap.clone(), bi.clone(), bp.clone()];
                    cols.extend(names);
                    let mut vals = vec![
                        "$1::text::bigint".to_string(),
                        format!(
                            "(SELECT coalesce(max({ap}) + 1, 0) FROM {t} WHERE {ai} = \
                             $1::text::bigint)"
                        ),
                        "$2::text::bigint".to_string(),
                        format!(
                            "(SELECT coalesce(max({bp}) + 1, 0) FROM {t} WHERE {bi} = \
                             $2::text::bigint)"
                        ),
                    ];
                    vals.extend(values);
                    out.push((
                        format!(
                            "INSERT INTO {t} ({}) VALUES ({})",
                            cols.join(", "),
                            vals.join(", ")
                        ),
                        params,
                    ));
                } else {
                    out.push(self.attach(r.index, a, b));
                }
            }
            Change::Moved {
                relation,
                child,
                to,
                ..
            } => {
                out.push(self.attach(relation.index(), to, child));
            }
            Change::Unlinked { relation, a, b } => {
                let r = &m.relations[relation.index()];
                if let Some(assoc) = &r.assoc {
                    out.push((
                        format!(
                            "DELETE FROM {} WHERE {} = $1::text::bigint AND {} = $2::text::bigint",
                            q(&assoc.table),
                            q(&assoc.a_id),
                            q(&assoc.b_id)
                        ),
                        vec![id(a), id(b)],
                    ));
                } else if let Some(l) = &r.link {
                    let mut sets = vec![format!("{} = NULL", q(&l.id))];
                    sets.extend(l.pos.iter().map(|p| format!("{} = NULL", q(p))));
                    sets.extend(l.table.iter().map(|p| format!("{} = NULL", q(p))));
                    out.push((
                        format!(
                            "UPDATE {} SET {} WHERE id = $1::text::bigint",
                            q(m.tables[r.b_table].name),
                            sets.join(", ")
                        ),
                        vec![id(b)],
                    ));
                }
            }
            Change::Reordered {
                relation,
                end,
                owner,
                order,
            } => {
                let r = &m.relations[relation.index()];
                let list = format!(
                    "{{{}}}",
                    order
                        .iter()
                        .map(|k| k.index().to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let sql = match (&r.assoc, &r.link, end) {
                    (Some(a), _, End::A) => format!(
                        "UPDATE {t} SET {ap} = o.ord FROM unnest($2::text::bigint[]) \
                         WITH ORDINALITY AS o(k, ord) WHERE {t}.{ai} = $1::text::bigint \
                         AND {t}.{bi} = o.k",
                        t = q(&a.table),
                        ap = q(&a.a_pos),
                        ai = q(&a.a_id),
                        bi = q(&a.b_id)
                    ),
                    (Some(a), _, End::B) => format!(
                        "UPDATE {t} SET {bp} = o.ord FROM unnest($2::text::bigint[]) \
                         WITH ORDINALITY AS o(k, ord) WHERE {t}.{bi} = $1::text::bigint \
                         AND {t}.{ai} = o.k",
                        t = q(&a.table),
                        bp = q(&a.b_pos),
                        ai = q(&a.a_id),
                        bi = q(&a.b_id)
                    ),
                    (None, Some(l), End::A) if l.pos.is_some() => format!(
                        "UPDATE {t} SET {p} = o.ord FROM unnest($2::text::bigint[]) \
                         WITH ORDINALITY AS o(k, ord) WHERE {t}.id = o.k \
                         AND {t}.{i} = $1::text::bigint",
                        t = q(m.tables[r.b_table].name),
                        p = q(l.pos.as_deref().unwrap_or("pos")),
                        i = q(&l.id)
                    ),
                    _ => return Ok(()),
                };
                out.push((sql, vec![id(owner), Some(list)]));
            }
            Change::PayloadChanged {
                relation,
                a,
                b,
                payload,
            } => {
                let r = &m.relations[relation.index()];
                let Some(assoc) = &r.assoc else { return Ok(()) };
                let mut params = vec![id(a), id(b)];
                let (names, values) =
                    value_params(&assoc.payload, payload, &mut params, &assoc.table)?;
                if !names.is_empty() {
                    out.push((
                        format!(
                            "UPDATE {} SET {} WHERE {} = $1::text::bigint AND {} = \
                             $2::text::bigint",
                            q(&assoc.table),
                            assignments(&names, &values),
                            q(&assoc.a_id),
                            q(&assoc.b_id)
                        ),
                        params,
                    ));
                }
            }
            other => {
                return Err(Error::Invalid(format!(
                    "a change this version cannot apply: {other}"
                )))
            }
        }
        Ok(())
    }

    /// Links child `b` to parent `a` (one-to-many: appended to the parent's list).
    fn attach(&self, rel: usize, a: &EntityRef, b: &EntityRef) -> (String, Vec<Param>) {
        let m = &self.mapping;
        let r = &m.relations[rel];
        let t = q(m.tables[r.b_table].name);
        let Some(l) = &r.link else {
            return (String::from("SELECT 1"), Vec::new());
        };
        let mut sets = vec![format!("{} = $1::text::bigint", q(&l.id))];
        let table_filter = match &l.table {
            Some(tc) => {
                let parent = lit(m.tables[r.a_table].name);
                sets.push(format!("{} = {parent}", q(tc)));
                format!(" AND {} = {parent}", q(tc))
            }
            None => String::new(),
        };
        if let Some(p) = &l.pos {
            sets.push(format!(
                "{p} = (SELECT coalesce(max({p}) + 1, 0) FROM {t} WHERE {i} = $1::text::bigint\
                 {table_filter})",
                p = q(p),
                i = q(&l.id)
            ));
        }
        (
            format!(
                "UPDATE {t} SET {} WHERE id = $2::text::bigint",
                sets.join(", ")
            ),
            vec![
                Some(a.key.index().to_string()),
                Some(b.key.index().to_string()),
            ],
        )
    }
}

fn run(tx: &mut Transaction<'_>, stmt: &Statement, params: &[Param]) -> Result<u64, Error> {
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
    Ok(tx.execute(stmt, &refs)?)
}

/// The `INSERT` of one row: its id (`$1`, first of `params`), a second column (the
/// version of a table row, the position of a kind row) and the row's values.
fn insert_row(
    tm: &crate::mapping::TableMap,
    (second, second_val): (&str, String),
    row: &relgraph::Encoded,
    mut params: Vec<Param>,
) -> Result<(String, Vec<Param>), Error> {
    let (names, values) = value_params(&tm.cols, row, &mut params, tm.name)?;
    let mut cols = vec![q("id"), q(second)];
    cols.extend(names);
    let mut vals = vec!["$1::text::bigint".to_string(), second_val];
    vals.extend(values);
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        q(tm.name),
        cols.join(", "),
        vals.join(", ")
    );
    Ok((sql, params))
}

/// Marks a table's saved slot states as unknown (the feed changed its slots).
fn slots_stale(table: &str) -> (String, Vec<Param>) {
    (
        format!(
            "UPDATE {SLOTS_TABLE} SET slots = NULL WHERE table_name = $1 AND slots IS NOT NULL"
        ),
        vec![Some(table.to_string())],
    )
}

/// Removes a kind row as the store does: the kind's last row takes its place. (The
/// update sees the table as it was before the delete.)
fn swap_remove(kind: &str, id: Param, out: &mut Vec<(String, Vec<Param>)>) {
    let k = q(kind);
    out.push((
        format!(
            "WITH d AS (DELETE FROM {k} WHERE id = $1::text::bigint RETURNING pos) \
             UPDATE {k} SET pos = d.pos FROM d \
             WHERE {k}.pos = (SELECT max(pos) FROM {k}) AND {k}.pos <> d.pos"
        ),
        vec![id],
    ));
}

/// `name = value, ...` for an `UPDATE`'s `SET`.
fn assignments(names: &[String], values: &[String]) -> String {
    let sets: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n} = {v}"))
        .collect();
    sets.join(", ")
}

/// The column names and `$n::text::type` placeholders of a row's values, their texts
/// appended to `params`.
fn value_params(
    cols: &[Column],
    row: &relgraph::Encoded,
    params: &mut Vec<Param>,
    table: &str,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let bytes = row
        .bytes()
        .map_err(|e| Error::Value(format!("table {table}: a value was not encodable: {e}")))?;
    let mut bin = Bin::new(bytes);
    let mut names = Vec::with_capacity(cols.len());
    let mut values = Vec::with_capacity(cols.len());
    for c in cols {
        let v = decode_col(&mut bin, &c.shape, &c.ty)
            .map_err(|e| Error::Value(format!("table {table}, column {}: {e}", c.name)))?;
        let text = val_text(&v)
            .map_err(|e| Error::Value(format!("table {table}, column {}: {e}", c.name)))?;
        params.push(text);
        names.push(q(&c.name));
        let ty = match sql_type(&c.ty, Dialect::Postgres) {
            "numeric(20,0)" | "numeric(39,0)" => "numeric",
            t => t,
        };
        values.push(format!("${}::text::{ty}", params.len()));
    }
    Ok((names, values))
}

/// A database kept in step with a store: reads the store's change feed through a cursor
/// and applies each batch as one transaction that also advances `relgraph_state`'s batch
/// number, so a batch the database holds already is skipped and a missing one is
/// refused. Batches read but not yet written stay queued, so after an error (a dropped
/// connection, a database restart) [`push`](Self::push) after
/// [`reconnect`](Self::reconnect) resumes where it stopped, and after a crash of the
/// program a new `PgSync` over a replay of its batches skips those already written.
pub struct PgSync {
    applier: Applier,
    cursor: FeedCursor,
    pending: VecDeque<ChangeBatch>,
}

impl PgSync {
    /// Keeps the database in step from `cursor` on. The database's batch numbers are the
    /// store's (as when the database was exported from this store, or from the state its
    /// batches are replayed from).
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] if the database does not hold the mapping's tables;
    /// [`Error::Postgres`].
    pub fn new(mapping: &Mapping, mut client: Client, cursor: FeedCursor) -> Result<Self, Error> {
        mapping.check(&mut client)?;
        Ok(PgSync {
            applier: Applier {
                mapping: mapping.clone(),
                client,
                statements: HashMap::new(),
                offset: 0,
            },
            cursor,
            pending: VecDeque::new(),
        })
    }

    /// Keeps the database in step with a store whose state now equals the database's
    /// (imported from it, or loaded from a snapshot taken when the database was in step):
    /// the store's next batch becomes the database's next.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn attach(mapping: &Mapping, client: Client, store: &Store) -> Result<Self, Error> {
        let mut s = PgSync::new(mapping, client, store.feed_cursor())?;
        let applied = mapping.applied_seq(&mut s.applier.client)? as i64;
        s.applier.offset = applied - (s.cursor.position() as i64 - 1);
        Ok(s)
    }

    /// Reads the store's new batches into the queue. O(batches).
    ///
    /// # Errors
    ///
    /// [`Error::Feed`]: the feed is off, or the cursor fell behind (batches were dropped
    /// before they were read: export again).
    pub fn pull(&mut self, store: &Store) -> Result<usize, Error> {
        let views = store.read_feed(&mut self.cursor)?;
        let n = views.len();
        self.pending
            .extend(views.into_iter().map(|v| v.batch().clone()));
        Ok(n)
    }

    /// Writes the queued batches, one transaction each, oldest first; returns how many
    /// were written (skipped ones not counted).
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] (the batch stays queued: reconnect and push again);
    /// [`Error::Gap`] if the database is behind the queue's oldest batch;
    /// [`Error::Value`] for a value the database cannot hold.
    pub fn push(&mut self) -> Result<usize, Error> {
        let mut written = 0;
        while let Some(b) = self.pending.front() {
            if self.applier.apply(b)? == Applied::Written {
                written += 1;
            }
            self.pending.pop_front();
        }
        Ok(written)
    }

    /// [`pull`](Self::pull) then [`push`](Self::push).
    ///
    /// # Errors
    ///
    /// As both.
    pub fn sync(&mut self, store: &Store) -> Result<usize, Error> {
        self.pull(store)?;
        self.push()
    }

    /// Batches read and not yet written.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Replaces the connection (after an error); queued batches stay.
    pub fn reconnect(&mut self, client: Client) {
        self.applier.client = client;
        self.applier.statements.clear();
    }

    /// The connection, for queries between syncs.
    pub fn client(&mut self) -> &mut Client {
        &mut self.applier.client
    }

    /// Applies the batches on a background thread: see [`WriteBehind`].
    pub fn write_behind<F>(self, capacity: usize, connect: F) -> WriteBehind
    where
        F: FnMut() -> Result<Client, Error> + Send + 'static,
    {
        WriteBehind::start(self, capacity, connect)
    }
}

#[derive(Default)]
struct Progress {
    sent: u64,
    done: u64,
    error: Option<String>,
    /// Set by `Drop`: stop retrying.
    abandon: bool,
}

/// Write-behind: the program's thread reads the feed ([`send`](Self::send)) and a
/// background thread writes each batch in its own transaction. The queue between them
/// holds at most `capacity` batches; when it is full, `send` blocks until the writer has
/// taken one (back-pressure: the program never runs more than `capacity` batches ahead of
/// the database, and its memory for them is bounded), and [`try_send`](Self::try_send)
/// returns instead. A failed write (a dropped connection, a database restart) is retried
/// on a new connection from `connect`, with a pause doubling from 50 ms to 2 s, until it
/// succeeds: the batch number makes the retry safe. An error that retrying cannot fix (a
/// gap, a value the database cannot hold) stops the writer; `send` and `flush` return it.
pub struct WriteBehind {
    cursor: FeedCursor,
    tx: Option<SyncSender<ChangeBatch>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    handle: Option<JoinHandle<()>>,
    /// A batch read but refused by a full queue (`try_send`).
    held: VecDeque<ChangeBatch>,
}

impl WriteBehind {
    fn start<F>(sync: PgSync, capacity: usize, mut connect: F) -> WriteBehind
    where
        F: FnMut() -> Result<Client, Error> + Send + 'static,
    {
        let PgSync {
            mut applier,
            cursor,
            pending,
        } = sync;
        let (tx, rx): (SyncSender<ChangeBatch>, Receiver<ChangeBatch>) =
            sync_channel(capacity.max(1));
        let progress = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
        let p = progress.clone();
        let handle = std::thread::spawn(move || {
            for batch in pending.into_iter().chain(rx) {
                let mut pause = Duration::from_millis(50);
                loop {
                    match applier.apply(&batch) {
                        Ok(_) => break,
                        Err(Error::Postgres(_)) | Err(Error::Io(_)) => {
                            if p.0.lock().unwrap_or_else(|e| e.into_inner()).abandon {
                                return;
                            }
                            std::thread::sleep(pause);
                            pause = (pause * 2).min(Duration::from_secs(2));
                            if let Ok(c) = connect() {
                                applier.client = c;
                                applier.statements.clear();
                            }
                        }
                        Err(e) => {
                            let (m, cv) = &*p;
                            m.lock().unwrap_or_else(|e| e.into_inner()).error = Some(e.to_string());
                            cv.notify_all();
                            return;
                        }
                    }
                }
                let (m, cv) = &*p;
                m.lock().unwrap_or_else(|e| e.into_inner()).done += 1;
                cv.notify_all();
            }
        });
        WriteBehind {
            cursor,
            tx: Some(tx),
            progress,
            handle: Some(handle),
            held: VecDeque::new(),
        }
    }

    fn failed(&self) -> Result<(), Error> {
        let g = self.progress.0.lock().unwrap_or_else(|e| e.into_inner());
        match &g.error {
            Some(e) => Err(Error::WriterStopped(e.clone())),
            None => Ok(()),
        }
    }

    /// Queues the store's new batches for the writer, blocking while the queue is full.
    /// Returns the batches queued.
    ///
    /// # Errors
    ///
    /// [`Error::Feed`] (feed off, cursor behind); [`Error::WriterStopped`] if the writer
    /// stopped on an error.
    pub fn send(&mut self, store: &Store) -> Result<usize, Error> {
        self.failed()?;
        let views = store.read_feed(&mut self.cursor)?;
        self.held
            .extend(views.into_iter().map(|v| v.batch().clone()));
        let n = self.held.len();
        while let Some(b) = self.held.pop_front() {
            self.queue(b, true)?;
        }
        Ok(n)
    }

    /// As [`send`](Self::send) without blocking: batches that do not fit stay held
    /// (and go first on the next call). Returns whether everything was queued.
    ///
    /// # Errors
    ///
    /// As `send`.
    pub fn try_send(&mut self, store: &Store) -> Result<bool, Error> {
        self.failed()?;
        let views = store.read_feed(&mut self.cursor)?;
        self.held
            .extend(views.into_iter().map(|v| v.batch().clone()));
        while let Some(b) = self.held.pop_front() {
            if let Some(back) = self.queue(b, false)? {
                self.held.push_front(back);
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn queue(&mut self, b: ChangeBatch, block: bool) -> Result<Option<ChangeBatch>, Error> {
        let Some(tx) = &self.tx else {
            return Err(Error::WriterStopped("the writer is finished".into()));
        };
        let r = if block {
            tx.send(b).map_err(|e| TrySendError::Disconnected(e.0))
        } else {
            tx.try_send(b)
        };
        match r {
            Ok(()) => {
                self.progress
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .sent += 1;
                Ok(None)
            }
            Err(TrySendError::Full(b)) => Ok(Some(b)),
            Err(TrySendError::Disconnected(_)) => {
                self.failed()?;
                Err(Error::WriterStopped("the writer thread ended".into()))
            }
        }
    }

    /// Waits until every queued batch is written.
    ///
    /// # Errors
    ///
    /// [`Error::WriterStopped`] if the writer stopped on an error.
    pub fn flush(&self) -> Result<(), Error> {
        let (m, cv) = &*self.progress;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(e) = &g.error {
                return Err(Error::WriterStopped(e.clone()));
            }
            if g.done >= g.sent {
                return Ok(());
            }
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Flushes, then stops the writer thread.
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush).
    pub fn finish(mut self) -> Result<(), Error> {
        let r = self.flush();
        self.stop();
        r
    }

    fn stop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for WriteBehind {
    /// Stops the writer: the batches already queued are written if the database takes
    /// them; a batch that fails is not retried (the database's batch number says where a
    /// later sync resumes). Use [`finish`](WriteBehind::finish) to wait for every batch.
    fn drop(&mut self) {
        self.progress
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abandon = true;
        self.stop();
    }
}
