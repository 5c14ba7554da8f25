//! Export of a store into an empty PostgreSQL database, import back, schema check.

use std::collections::HashMap;
use std::io::{Read, Write};

use postgres::{Client, IsolationLevel, Transaction};
use relgraph::{RelationKind, Store};

use crate::codec::{decode_col, encode_col, Bin, Val};
use crate::image::{derived_slots, Lists, Parsed, RelSec, TableSec};
use crate::mapping::{q, sql_type, Dialect, Mapping, SLOTS_TABLE, STATE_TABLE, VACANT_TABLE};
use crate::text::{copy_field, copy_rows, parse_val};
use crate::Error;

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Rows written to entity tables (kind rows counted apart from their base rows).
    pub rows: u64,
    /// Rows written to association tables (many-to-many links).
    pub links: u64,
    /// The batch number recorded as applied (the store's last change feed batch; 0 with
    /// the feed off).
    pub applied_seq: u64,
}

/// Per child slot: (parent slot, position, parent table) of one link column set.
type LinkVals = Vec<Option<(u32, u32, &'static str)>>;

/// Where decoded rows go: a `COPY` stream or SQLite inserts.
pub(crate) trait RowSink {
    /// A table starts: its name and columns.
    fn begin(&mut self, table: &str, columns: &[String]) -> Result<(), Error>;
    /// One row, in the columns' order.
    fn row(&mut self, row: &[Val]) -> Result<(), Error>;
    /// The table ends: the rows written.
    fn end(&mut self) -> Result<u64, Error>;
}

impl Mapping {
    /// Decodes a parsed snapshot into the rows of every table, in the mapping's column
    /// order (entity tables, then association tables), row by row into `sink`. Used by
    /// both exports. Returns the rows of entity tables and of association tables.
    pub(crate) fn write_tables(
        &self,
        parsed: &Parsed,
        sink: &mut dyn RowSink,
    ) -> Result<(u64, u64), Error> {
        let (mut entity_rows, mut link_rows) = (0, 0);
        let mut row: Vec<Val> = Vec::new();
        for (t, tm) in self.tables.iter().enumerate() {
            let slots = match &parsed.tables[t] {
                TableSec::Slots { live, .. } => live.last().map_or(0, |l| l.0 as usize + 1),
                TableSec::Kind { keys, .. } => keys.iter().max().map_or(0, |&m| m as usize + 1),
            };
            let mut link_vals: Vec<LinkVals> = Vec::new();
            for l in self.links_on(t) {
                let mut vals: LinkVals = vec![None; slots];
                for r in &self.relations {
                    if r.b_table != t || r.link.as_ref().map(|x| &x.id) != Some(&l.id) {
                        continue;
                    }
                    let parent = self.tables[r.a_table].name;
                    match &parsed.relations[r.index] {
                        RelSec::OneToMany(lists) => {
                            for (owner, items) in lists {
                                for (pos, &c) in items.iter().enumerate() {
                                    if let Some(v) = vals.get_mut(c as usize) {
                                        *v = Some((*owner, pos as u32, parent));
                                    }
                                }
                            }
                        }
                        RelSec::OneToOne(pairs) => {
                            for &(a, b) in pairs {
                                if let Some(v) = vals.get_mut(b as usize) {
                                    *v = Some((a, 0, parent));
                                }
                            }
                        }
                        RelSec::ManyToMany { .. } => {}
                    }
                }
                link_vals.push(vals);
            }
            let links = self.links_on(t);
            let decode_row =
                |bin: &mut Bin<'_>, id: u32, row: &mut Vec<Val>| -> Result<(), Error> {
                    for c in &tm.cols {
                        row.push(decode_col(bin, &c.shape, &c.ty).map_err(|e| {
                            Error::Value(format!(
                                "table {}, row {id}, column {}: {e}",
                                tm.name, c.name
                            ))
                        })?);
                    }
                    for (l, vals) in links.iter().zip(&link_vals) {
                        let v = vals.get(id as usize).copied().flatten();
                        if l.table.is_some() {
                            row.push(v.map_or(Val::Null, |x| Val::Text(x.2.to_string())));
                        }
                        row.push(v.map_or(Val::Null, |x| Val::Int(i64::from(x.0))));
                        if l.pos.is_some() {
                            row.push(v.map_or(Val::Null, |x| Val::Int(i64::from(x.1))));
                        }
                    }
                    Ok(())
                };
            sink.begin(tm.name, &self.all_columns(t))?;
            match &parsed.tables[t] {
                TableSec::Slots {
                    live, rows: bytes, ..
                } => {
                    let mut bin = Bin::new(bytes);
                    for &(id, version) in live {
                        row.clear();
                        row.push(Val::Int(i64::from(id)));
                        row.push(Val::Int(i64::from(version)));
                        decode_row(&mut bin, id, &mut row)?;
                        sink.row(&row)?;
                    }
                }
                TableSec::Kind { keys, rows: bytes } => {
                    let mut bin = Bin::new(bytes);
                    for (pos, &id) in keys.iter().enumerate() {
                        row.clear();
                        row.push(Val::Int(i64::from(id)));
                        row.push(Val::Int(pos as i64));
                        decode_row(&mut bin, id, &mut row)?;
                        sink.row(&row)?;
                    }
                }
            }
            entity_rows += sink.end()?;
        }
        for r in &self.relations {
            let (
                Some(a),
                RelSec::ManyToMany {
                    a: la,
                    payloads,
                    b: lb,
                },
            ) = (&r.assoc, &parsed.relations[r.index])
            else {
                continue;
            };
            let mut b_pos: HashMap<u64, u32> = HashMap::with_capacity(lb.len() * 2);
            for (owner, items) in lb {
                for (pos, &x) in items.iter().enumerate() {
                    b_pos.insert(u64::from(x) << 32 | u64::from(*owner), pos as u32);
                }
            }
            let mut bin = Bin::new(payloads);
            let mut columns = vec![
                a.a_id.clone(),
                a.a_pos.clone(),
                a.b_id.clone(),
                a.b_pos.clone(),
            ];
            columns.extend(a.payload.iter().map(|c| c.name.clone()));
            sink.begin(&a.table, &columns)?;
            for (owner, items) in la {
                for (pos, &bk) in items.iter().enumerate() {
                    let bp = b_pos
                        .get(&(u64::from(*owner) << 32 | u64::from(bk)))
                        .copied();
                    row.clear();
                    row.extend([
                        Val::Int(i64::from(*owner)),
                        Val::Int(pos as i64),
                        Val::Int(i64::from(bk)),
                        Val::Int(i64::from(bp.unwrap_or(0))),
                    ]);
                    for c in &a.payload {
                        row.push(decode_col(&mut bin, &c.shape, &c.ty).map_err(|e| {
                            Error::Value(format!("relation {}, column {}: {e}", r.name, c.name))
                        })?);
                    }
                    sink.row(&row)?;
                }
            }
            link_rows += sink.end()?;
        }
        Ok((entity_rows, link_rows))
    }

    /// Writes the whole store into the connected database, which must hold none of the
    /// mapping's tables: in one transaction, the tables are created, filled with `COPY`,
    /// then given their foreign keys and indexes, and relgraph's bookkeeping rows (the
    /// schema fingerprint, the last change feed batch, each table's slot states) are
    /// written. O(rows + links) plus the database's work; the store is read through its
    /// snapshot (one encode of every row).
    ///
    /// # Errors
    ///
    /// [`Error::NotEmpty`] if a table of the mapping exists already; [`Error::Value`]
    /// for a value PostgreSQL cannot hold (a NUL character in a string), naming the table,
    /// row and column; [`Error::Snapshot`] if the store cannot be encoded;
    /// [`Error::Postgres`]. On any error nothing is written (the transaction rolls back).
    pub fn export(&self, client: &mut Client, store: &Store) -> Result<ExportReport, Error> {
        let bytes = store
            .to_snapshot()
            .map_err(|e| Error::Snapshot(e.to_string()))?;
        let parsed = self.parse(&bytes)?;
        let applied_seq = store.feed_cursor().position().saturating_sub(1);
        let mut tx = client.transaction()?;
        self.refuse_existing(&mut tx)?;
        let ddl = self.ddl(Dialect::Postgres);
        for s in &ddl.tables {
            tx.batch_execute(s)?;
        }
        let mut report = ExportReport {
            applied_seq,
            ..ExportReport::default()
        };
        let (rows, links) = self.write_tables(
            &parsed,
            &mut CopySink {
                tx: &mut tx,
                buf: Vec::with_capacity(1 << 20),
                table: String::new(),
                columns: Vec::new(),
                rows: 0,
            },
        )?;
        report.rows = rows;
        report.links = links;
        for s in &ddl.constraints {
            tx.batch_execute(s)?;
        }
        self.write_bookkeeping(&mut tx, &parsed, applied_seq)?;
        tx.commit()?;
        Ok(report)
    }

    fn refuse_existing(&self, tx: &mut Transaction<'_>) -> Result<(), Error> {
        let names = self.table_names();
        let rows = tx.query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = ANY($1)",
            &[&names],
        )?;
        if let Some(r) = rows.first() {
            let name: String = r.get(0);
            return Err(Error::NotEmpty(format!(
                "table {name} exists already: export writes into a database without the \
                 schema's tables"
            )));
        }
        Ok(())
    }

    fn write_bookkeeping(
        &self,
        tx: &mut Transaction<'_>,
        parsed: &Parsed,
        applied_seq: u64,
    ) -> Result<(), Error> {
        tx.execute(
            &format!("INSERT INTO {STATE_TABLE} (id, fingerprint, applied_seq) VALUES (1, $1, $2)"),
            &[&format!("{:016x}", self.fingerprint), &(applied_seq as i64)],
        )?;
        for (t, tm) in self.tables.iter().enumerate() {
            if let TableSec::Slots { raw, vacant, .. } = &parsed.tables[t] {
                tx.execute(
                    &format!("INSERT INTO {SLOTS_TABLE} (table_name, slots) VALUES ($1, $2)"),
                    &[&tm.name, raw],
                )?;
                let ids: Vec<i64> = vacant.iter().map(|v| i64::from(v.0)).collect();
                let highs: Vec<i64> = vacant.iter().map(|v| i64::from(v.1)).collect();
                tx.execute(
                    &format!(
                        "INSERT INTO {VACANT_TABLE} (table_name, id, version) \
                         SELECT $1, * FROM unnest($2::bigint[], $3::bigint[])"
                    ),
                    &[&tm.name, &ids, &highs],
                )?;
            }
        }
        Ok(())
    }

    /// Checks that the connected database holds this mapping's tables, with every
    /// column and type, and the same schema fingerprint. Reads only.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] naming the missing table, the missing, extra or retyped
    /// column, or the other fingerprint; [`Error::Postgres`].
    pub fn check(&self, client: &mut Client) -> Result<(), Error> {
        let mut tx = client.transaction()?;
        self.check_in(&mut tx)
    }

    fn expected_columns(&self) -> Vec<(String, Vec<(String, String)>)> {
        let ddl_type = |s: &str| -> String {
            // information_schema's data_type names
            match s {
                "numeric(20,0)" | "numeric(39,0)" => "numeric".into(),
                other => other.into(),
            }
        };
        let mut out = Vec::new();
        for (t, tm) in self.tables.iter().enumerate() {
            let mut cols = vec![("id".to_string(), "bigint".to_string())];
            cols.push((
                if tm.base.is_some() { "pos" } else { "version" }.to_string(),
                "bigint".to_string(),
            ));
            for c in &tm.cols {
                cols.push((c.name.clone(), ddl_type(sql_type(&c.ty, Dialect::Postgres))));
            }
            for l in self.links_on(t) {
                if let Some(tc) = &l.table {
                    cols.push((tc.clone(), "text".into()));
                }
                cols.push((l.id.clone(), "bigint".into()));
                if let Some(p) = &l.pos {
                    cols.push((p.clone(), "bigint".into()));
                }
            }
            out.push((tm.name.to_string(), cols));
        }
        for r in &self.relations {
            let Some(a) = &r.assoc else { continue };
            let mut cols: Vec<(String, String)> = [&a.a_id, &a.a_pos, &a.b_id, &a.b_pos]
                .iter()
                .map(|c| ((*c).clone(), "bigint".to_string()))
                .collect();
            for c in &a.payload {
                cols.push((c.name.clone(), ddl_type(sql_type(&c.ty, Dialect::Postgres))));
            }
            out.push((a.table.clone(), cols));
        }
        out
    }

    pub(crate) fn check_in(&self, tx: &mut Transaction<'_>) -> Result<(), Error> {
        let rows = tx.query(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = current_schema()",
            &[],
        )?;
        let mut found: HashMap<String, HashMap<String, String>> = HashMap::new();
        for r in rows {
            found
                .entry(r.get(0))
                .or_default()
                .insert(r.get(1), r.get(2));
        }
        let mismatch = |s: String| Err(Error::SchemaMismatch(s));
        for (table, cols) in self.expected_columns() {
            let Some(have) = found.get(&table) else {
                return mismatch(format!("table {table} is missing"));
            };
            for (c, ty) in &cols {
                match have.get(c) {
                    None => return mismatch(format!("table {table}: column {c} is missing")),
                    Some(t) if t != ty => {
                        return mismatch(format!(
                            "table {table}: column {c} is {t}, the schema maps it to {ty}"
                        ))
                    }
                    _ => {}
                }
            }
            if let Some(extra) = have.keys().find(|k| !cols.iter().any(|(c, _)| c == *k)) {
                return mismatch(format!(
                    "table {table}: column {extra} is not in the schema's mapping"
                ));
            }
        }
        for t in [STATE_TABLE, SLOTS_TABLE, VACANT_TABLE] {
            if !found.contains_key(t) {
                return mismatch(format!("table {t} is missing (not a relgraph database)"));
            }
        }
        let fp: Option<String> = tx
            .query_opt(&format!("SELECT fingerprint FROM {STATE_TABLE}"), &[])?
            .map(|r| r.get(0));
        let want = format!("{:016x}", self.fingerprint);
        match fp {
            Some(f) if f == want => Ok(()),
            Some(f) => mismatch(format!(
                "the database was written with schema fingerprint {f}, this schema's is {want}"
            )),
            None => mismatch(format!("{STATE_TABLE} has no row")),
        }
    }

    /// Checks that the database holds exactly the store's content: the same live keys,
    /// rows, kinds in the same order, links in the same order, payloads (not the slot
    /// states of vacant slots). Reads the database as [`import`](Self::import) does.
    ///
    /// # Errors
    ///
    /// [`Error::Differs`] naming the first table or relation that differs; the errors of
    /// `import`.
    pub fn compare(&self, client: &mut Client, store: &Store) -> Result<(), Error> {
        let back = self.import(client)?;
        let snap = |s: &Store| s.to_snapshot().map_err(|e| Error::Snapshot(e.to_string()));
        let (a, b) = (self.parse(&snap(store)?)?, self.parse(&snap(&back)?)?);
        for (t, tm) in self.tables.iter().enumerate() {
            let same = match (&a.tables[t], &b.tables[t]) {
                (
                    TableSec::Slots {
                        live: l1, rows: r1, ..
                    },
                    TableSec::Slots {
                        live: l2, rows: r2, ..
                    },
                ) => {
                    if l1 != l2 {
                        let first = l1.iter().zip(l2).find(|(x, y)| x != y);
                        return Err(Error::Differs(format!(
                            "table {}: the live keys differ ({} in the store, {} in the \
                             database; first difference {first:?})",
                            tm.name,
                            l1.len(),
                            l2.len()
                        )));
                    }
                    r1 == r2
                }
                (x, y) => x == y,
            };
            if !same {
                return Err(Error::Differs(format!(
                    "table {}: the rows (or a kind's order) differ",
                    tm.name
                )));
            }
        }
        for r in &self.relations {
            if a.relations[r.index] != b.relations[r.index] {
                return Err(Error::Differs(format!(
                    "relation {}: the links, their order or payloads differ",
                    r.name
                )));
            }
        }
        Ok(())
    }

    /// The number of the last change feed batch the database holds (recorded by the
    /// export, advanced by every synced batch).
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`], [`Error::SchemaMismatch`] if there is no bookkeeping row.
    pub fn applied_seq(&self, client: &mut Client) -> Result<u64, Error> {
        let row = client
            .query_opt(&format!("SELECT applied_seq FROM {STATE_TABLE}"), &[])?
            .ok_or_else(|| Error::SchemaMismatch(format!("{STATE_TABLE} has no row")))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// Reads the database back into a store: the same keys, the same order of every
    /// collection and kind, the same rows and payloads. If no change feed batch changed
    /// a table since the export, its slot states and free list are those the store had,
    /// so the store re-saves to the same snapshot bytes; otherwise its vacant slots are
    /// rebuilt from the highest versions recorded in `relgraph_vacant` (no key is issued
    /// twice) and reused lowest first. The result
    /// goes through the store's snapshot loader, which checks every invariant. Reads in
    /// one repeatable-read transaction.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] (see [`check`](Self::check)); [`Error::Value`] for a
    /// value that does not fit its field (naming the table, row and column);
    /// [`Error::Invalid`] if the content breaks an invariant of the store (a link to a
    /// missing row, a child listed twice...); [`Error::Postgres`].
    pub fn import(&self, client: &mut Client) -> Result<Store, Error> {
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        self.check_in(&mut tx)?;
        let mut saved: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        for r in tx.query(&format!("SELECT table_name, slots FROM {SLOTS_TABLE}"), &[])? {
            saved.insert(r.get(0), r.get(1));
        }
        let mut vacated: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        for r in tx.query(
            &format!("SELECT table_name, id, version FROM {VACANT_TABLE} ORDER BY table_name, id"),
            &[],
        )? {
            let (id, v): (i64, i64) = (r.get(1), r.get(2));
            let (Ok(id), Ok(v)) = (u32::try_from(id), u32::try_from(v)) else {
                return Err(Error::Value(format!(
                    "{VACANT_TABLE}: slot {id} version {v}"
                )));
            };
            vacated.entry(r.get(0)).or_default().push((id, v));
        }
        let mut tables = Vec::with_capacity(self.tables.len());
        for tm in &self.tables {
            let mut cols = vec![
                q("id"),
                q(if tm.base.is_some() { "pos" } else { "version" }),
            ];
            cols.extend(tm.cols.iter().map(|c| q(&c.name)));
            let order = if tm.base.is_some() { "pos" } else { "id" };
            let data = copy_out(
                &mut tx,
                &format!(
                    "SELECT {} FROM {} ORDER BY {}",
                    cols.join(", "),
                    q(tm.name),
                    q(order)
                ),
            )?;
            let rows = copy_rows(&data).map_err(Error::Value)?;
            let mut bytes = Vec::new();
            let mut keys = Vec::with_capacity(rows.len());
            for row in &rows {
                let id = int_field(row, 0, tm.name)?;
                let second = int_field(row, 1, tm.name)?;
                keys.push((id, second));
                for (i, c) in tm.cols.iter().enumerate() {
                    let v = parse_val(row.get(i + 2).and_then(|x| x.as_deref()), &c.ty)
                        .and_then(|v| encode_col(&mut bytes, &c.shape, &c.ty, &v));
                    v.map_err(|e| {
                        Error::Value(format!(
                            "table {}, row {id}, column {}: {e}",
                            tm.name, c.name
                        ))
                    })?;
                }
            }
            if tm.base.is_some() {
                tables.push(TableSec::Kind {
                    keys: keys.iter().map(|k| k.0).collect(),
                    rows: bytes,
                });
                continue;
            }
            let live = keys;
            let vacant = vacated.remove(tm.name).unwrap_or_default();
            let raw = match saved.get(tm.name).cloned().flatten() {
                Some(raw) if slots_match(&raw, &live) => raw,
                _ => derived_slots(&live, &vacant),
            };
            tables.push(TableSec::Slots {
                raw,
                live,
                vacant,
                rows: bytes,
            });
        }
        let mut relations = Vec::with_capacity(self.relations.len());
        for r in &self.relations {
            relations.push(match (&r.link, &r.assoc) {
                (Some(l), _) => {
                    let child = q(self.tables[r.b_table].name);
                    let filter = match &l.table {
                        Some(tc) => format!(
                            " AND {} = {}",
                            q(tc),
                            crate::mapping::lit(self.tables[r.a_table].name)
                        ),
                        None => String::new(),
                    };
                    let order = match &l.pos {
                        Some(p) => format!("{}, {}, id", q(&l.id), q(p)),
                        None => q(&l.id),
                    };
                    let data = copy_out(
                        &mut tx,
                        &format!(
                            "SELECT {}, id FROM {child} WHERE {} IS NOT NULL{filter} ORDER BY {order}",
                            q(&l.id),
                            q(&l.id)
                        ),
                    )?;
                    let pairs = pairs_of(&data, &r.name)?;
                    if r.kind == RelationKind::OneToOne {
                        RelSec::OneToOne(pairs)
                    } else {
                        RelSec::OneToMany(group(pairs))
                    }
                }
                (None, Some(a)) => {
                    let mut cols = vec![q(&a.a_id), q(&a.b_id)];
                    cols.extend(a.payload.iter().map(|c| q(&c.name)));
                    let data = copy_out(
                        &mut tx,
                        &format!(
                            "SELECT {} FROM {} ORDER BY {}, {}, {}",
                            cols.join(", "),
                            q(&a.table),
                            q(&a.a_id),
                            q(&a.a_pos),
                            q(&a.b_id)
                        ),
                    )?;
                    let rows = copy_rows(&data).map_err(Error::Value)?;
                    let mut pairs = Vec::with_capacity(rows.len());
                    let mut payloads = Vec::new();
                    for row in &rows {
                        let x = int_field(row, 0, &a.table)?;
                        let y = int_field(row, 1, &a.table)?;
                        pairs.push((x, y));
                        for (i, c) in a.payload.iter().enumerate() {
                            let v = parse_val(row.get(i + 2).and_then(|x| x.as_deref()), &c.ty)
                                .and_then(|v| encode_col(&mut payloads, &c.shape, &c.ty, &v));
                            v.map_err(|e| {
                                Error::Value(format!(
                                    "table {}, link {x} -> {y}, column {}: {e}",
                                    a.table, c.name
                                ))
                            })?;
                        }
                    }
                    let data = copy_out(
                        &mut tx,
                        &format!(
                            "SELECT {}, {} FROM {} ORDER BY {}, {}, {}",
                            q(&a.b_id),
                            q(&a.a_id),
                            q(&a.table),
                            q(&a.b_id),
                            q(&a.b_pos),
                            q(&a.a_id)
                        ),
                    )?;
                    RelSec::ManyToMany {
                        a: group(pairs),
                        payloads,
                        b: group(pairs_of(&data, &r.name)?),
                    }
                }
                (None, None) => RelSec::OneToMany(Vec::new()),
            });
        }
        tx.commit()?;
        self.build(&Parsed { tables, relations })
    }
}

fn int_field(row: &[Option<String>], i: usize, table: &str) -> Result<u32, Error> {
    row.get(i)
        .and_then(|x| x.as_deref())
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| Error::Value(format!("table {table}: a key column is not a slot number")))
}

fn pairs_of(data: &[u8], what: &str) -> Result<Vec<(u32, u32)>, Error> {
    copy_rows(data)
        .map_err(Error::Value)?
        .iter()
        .map(|r| Ok((int_field(r, 0, what)?, int_field(r, 1, what)?)))
        .collect()
}

/// Consecutive pairs with the same first element as lists.
fn group(pairs: Vec<(u32, u32)>) -> Lists {
    let mut out: Lists = Vec::new();
    for (o, x) in pairs {
        match out.last_mut() {
            Some((last, items)) if *last == o => items.push(x),
            _ => out.push((o, vec![x])),
        }
    }
    out
}

/// Whether a saved slot section describes exactly these live slots.
fn slots_match(raw: &[u8], live: &[(u32, u32)]) -> bool {
    let mut pos = 0;
    let mut next = || -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = *raw.get(pos)?;
            pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    };
    let Some(n) = next() else { return false };
    let mut found = Vec::new();
    for i in 0..n {
        let Some(x) = next() else { return false };
        let version = match x & 3 {
            0 => 0,
            1 => (x >> 2) as u32,
            _ => match next() {
                Some(v) => v as u32,
                None => return false,
            },
        };
        if version != 0 {
            found.push((i as u32, version));
        }
    }
    found == live
}

/// Writes a table's rows as `COPY` text, sent with `COPY ... FROM STDIN` at its end.
struct CopySink<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    buf: Vec<u8>,
    table: String,
    columns: Vec<String>,
    rows: u64,
}

impl RowSink for CopySink<'_, '_> {
    fn begin(&mut self, table: &str, columns: &[String]) -> Result<(), Error> {
        self.table = table.to_string();
        self.columns = columns.to_vec();
        self.rows = 0;
        self.buf.clear();
        Ok(())
    }

    fn row(&mut self, row: &[Val]) -> Result<(), Error> {
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                self.buf.push(b'\t');
            }
            copy_field(&mut self.buf, v).map_err(|e| {
                Error::Value(format!(
                    "table {}, row {}, column {}: {e}",
                    self.table,
                    row[0].int(),
                    self.columns[j]
                ))
            })?;
        }
        self.buf.push(b'\n');
        self.rows += 1;
        Ok(())
    }

    fn end(&mut self) -> Result<u64, Error> {
        let cols: Vec<String> = self.columns.iter().map(|c| q(c)).collect();
        let mut w = self.tx.copy_in(&format!(
            "COPY {} ({}) FROM STDIN",
            q(&self.table),
            cols.join(", ")
        ))?;
        for chunk in self.buf.chunks(1 << 20) {
            w.write_all(chunk).map_err(|e| Error::Io(e.to_string()))?;
        }
        let n = w.finish()?;
        self.buf.clear();
        Ok(n)
    }
}

fn copy_out(tx: &mut Transaction<'_>, select: &str) -> Result<Vec<u8>, Error> {
    let mut r = tx.copy_out(&format!("COPY ({select}) TO STDOUT"))?;
    let mut data = Vec::new();
    r.read_to_end(&mut data)
        .map_err(|e| Error::Io(e.to_string()))?;
    Ok(data)
}
