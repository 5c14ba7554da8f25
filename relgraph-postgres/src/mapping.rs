//! The SQL layout of a schema: tables, columns, foreign keys, association tables, and the
//! DDL for PostgreSQL and SQLite. See `docs/postgres.md`.

use std::collections::HashSet;

use relgraph::{DeleteRule, RelationKind, Schema, TypeShape};

use crate::codec::{col_type, peel, ColType};
use crate::Error;

/// A column holding a row (or payload) field.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub name: String,
    pub shape: TypeShape,
    pub ty: ColType,
    pub nullable: bool,
}

/// The columns a relation or polymorphic parent end adds to a child table.
#[derive(Clone, Debug)]
pub(crate) struct LinkCols {
    /// `{end}_table` (polymorphic parent end only).
    pub table: Option<String>,
    pub id: String,
    /// `{end}_pos` (one-to-many only).
    pub pos: Option<String>,
}

/// One entity table (plain, base or kind).
#[derive(Clone, Debug)]
pub(crate) struct TableMap {
    pub name: &'static str,
    pub base: Option<usize>,
    pub kinds: Vec<usize>,
    pub cols: Vec<Column>,
}

/// One relation.
#[derive(Clone, Debug)]
pub(crate) struct RelMap {
    pub index: usize,
    pub kind: RelationKind,
    pub a_table: usize,
    pub b_table: usize,
    pub name: String,
    pub rule_a: DeleteRule,
    pub rule_b: DeleteRule,
    /// One-to-many and one-to-one: the columns on the second end's table.
    pub link: Option<LinkCols>,
    /// Polymorphic parent end.
    pub group: Option<usize>,
    /// Many-to-many: the association table and its columns.
    pub assoc: Option<Assoc>,
}

/// A many-to-many's association table.
#[derive(Clone, Debug)]
pub(crate) struct Assoc {
    pub table: String,
    pub a_id: String,
    pub a_pos: String,
    pub b_id: String,
    pub b_pos: String,
    pub payload: Vec<Column>,
}

/// The SQL layout of a [`Schema`]: made once, used by every export, import and sync of
/// stores of that schema. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub(crate) schema: Schema,
    pub(crate) tables: Vec<TableMap>,
    pub(crate) relations: Vec<RelMap>,
    pub(crate) fingerprint: u64,
}

/// SQL dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

/// Quotes an SQL identifier.
pub(crate) fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub(crate) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The fields of a row shape as columns: a struct's fields, nothing for a unit, else one
/// column `value`.
fn columns_of(shape: &TypeShape) -> Vec<Column> {
    let fields: Vec<(String, TypeShape)> = match peel(shape) {
        TypeShape::Struct { fields, .. } => fields
            .iter()
            .map(|(n, s)| ((*n).to_string(), s.clone()))
            .collect(),
        TypeShape::Unit => Vec::new(),
        TypeShape::TupleStruct { fields, .. } => fields
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("f{i}"), s.clone()))
            .collect(),
        _ => vec![("value".to_string(), shape.clone())],
    };
    fields
        .into_iter()
        .map(|(name, shape)| {
            let (ty, nullable) = col_type(&shape);
            Column {
                name,
                shape,
                ty,
                nullable,
            }
        })
        .collect()
}

fn on_delete(rule: DeleteRule) -> &'static str {
    match rule {
        DeleteRule::Nullify => "SET NULL",
        DeleteRule::Cascade | DeleteRule::DeleteOrphan => "CASCADE",
        DeleteRule::Restrict => "RESTRICT",
    }
}

impl Mapping {
    /// The SQL layout of `schema`.
    ///
    /// # Errors
    ///
    /// [`Error::Mapping`] naming the table or relation if a row or payload type cannot
    /// be traced (its `Deserialize` asks for `deserialize_any` or an identifier), a
    /// column name is used twice in a table (a field named like a relation's column, or
    /// `id`, `version`, `pos`), or two tables would share a name.
    pub fn new(schema: &Schema) -> Result<Mapping, Error> {
        let described = schema.describe_tables();
        let mut tables = Vec::with_capacity(described.len());
        for t in &described {
            let row = t.row.as_ref().ok_or_else(|| {
                Error::Mapping(format!(
                    "table {}: the row type {} cannot be traced for its fields (its \
                     Deserialize asks for deserialize_any or an identifier)",
                    t.name, t.type_name
                ))
            })?;
            tables.push(TableMap {
                name: t.name,
                base: t.base,
                kinds: t.kinds.clone(),
                cols: columns_of(row),
            });
        }
        let groups = schema.describe_poly_parents();
        let mut relations = Vec::new();
        for r in schema.describe_relations() {
            let group = r.poly_parent;
            let link = match (r.kind, group) {
                (RelationKind::ManyToMany, _) => None,
                (_, Some(g)) => {
                    let end = groups[g].end;
                    Some(LinkCols {
                        table: Some(format!("{end}_table")),
                        id: format!("{end}_id"),
                        pos: Some(format!("{end}_pos")),
                    })
                }
                (kind, None) => Some(LinkCols {
                    table: None,
                    id: format!("{}_id", r.name.b_end),
                    pos: (kind == RelationKind::OneToMany).then(|| format!("{}_pos", r.name.b_end)),
                }),
            };
            let assoc = match r.kind {
                RelationKind::ManyToMany => {
                    let payload = r.payload.as_ref().ok_or_else(|| {
                        Error::Mapping(format!(
                            "relation {}: the payload type cannot be traced for its fields",
                            r.name
                        ))
                    })?;
                    let (a_id, b_id) = if r.a_table == r.b_table {
                        (
                            format!("{}_id", r.name.b_end),
                            format!("{}_id", r.name.a_end),
                        )
                    } else {
                        (
                            format!("{}_id", r.name.a_table),
                            format!("{}_id", r.name.b_table),
                        )
                    };
                    Some(Assoc {
                        table: format!("{}_{}", r.name.a_table, r.name.a_end),
                        a_id,
                        a_pos: format!("{}_pos", r.name.a_end),
                        b_id,
                        b_pos: format!("{}_pos", r.name.b_end),
                        payload: columns_of(payload),
                    })
                }
                _ => None,
            };
            relations.push(RelMap {
                index: r.index,
                kind: r.kind,
                a_table: r.a_table,
                b_table: r.b_table,
                name: r.name.to_string(),
                rule_a: r.rules.delete_rule_a(),
                rule_b: r.rules.delete_rule_b(),
                link,
                group,
                assoc,
            });
        }
        let m = Mapping {
            schema: schema.clone(),
            tables,
            relations,
            fingerprint: schema.fingerprint(),
        };
        m.check_names()?;
        Ok(m)
    }

    /// The schema this mapping lays out.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Every column name of an entity table, in order: `id`, `version` (or `pos` for a
    /// kind), the fields, then the relations' columns.
    pub(crate) fn all_columns(&self, t: usize) -> Vec<String> {
        let tm = &self.tables[t];
        let mut names = vec!["id".to_string()];
        names.push(if tm.base.is_some() { "pos" } else { "version" }.to_string());
        names.extend(tm.cols.iter().map(|c| c.name.clone()));
        for l in self.links_on(t) {
            names.extend(l.table.clone());
            names.push(l.id.clone());
            names.extend(l.pos.clone());
        }
        names
    }

    /// The link columns held by table `t`, one per relation or polymorphic parent end
    /// (a group's relations share theirs).
    pub(crate) fn links_on(&self, t: usize) -> Vec<&LinkCols> {
        let mut seen = HashSet::new();
        self.relations
            .iter()
            .filter(|r| r.b_table == t)
            .filter_map(|r| {
                let l = r.link.as_ref()?;
                match r.group {
                    Some(g) => seen.insert(g).then_some(l),
                    None => Some(l),
                }
            })
            .collect()
    }

    fn check_names(&self) -> Result<(), Error> {
        let mut table_names = HashSet::new();
        let mut names: Vec<&str> = self.tables.iter().map(|t| t.name).collect();
        names.extend(
            self.relations
                .iter()
                .filter_map(|r| r.assoc.as_ref().map(|a| a.table.as_str())),
        );
        for n in names {
            if n.starts_with("relgraph_") || !table_names.insert(n) {
                return Err(Error::Mapping(format!(
                    "table name {n} is taken twice (or by relgraph's own tables): rename a \
                     table or a many-to-many's first end"
                )));
            }
        }
        for (t, tm) in self.tables.iter().enumerate() {
            let mut seen = HashSet::new();
            for c in self.all_columns(t) {
                if !seen.insert(c.clone()) {
                    return Err(Error::Mapping(format!(
                        "table {}: column {c} is taken twice (a field named like a \
                         relation's column, or id, version, pos)",
                        tm.name
                    )));
                }
            }
        }
        for r in &self.relations {
            if let Some(a) = &r.assoc {
                let mut seen = HashSet::new();
                let fixed = [&a.a_id, &a.a_pos, &a.b_id, &a.b_pos];
                for c in fixed.into_iter().chain(a.payload.iter().map(|c| &c.name)) {
                    if !seen.insert(c.clone()) {
                        return Err(Error::Mapping(format!(
                            "relation {}: column {c} of table {} is taken twice",
                            r.name, a.table
                        )));
                    }
                }
            }
            if let Some(g) = r.group {
                let parents: Vec<usize> = self
                    .relations
                    .iter()
                    .filter(|o| o.group == Some(g))
                    .map(|o| o.a_table)
                    .collect();
                if parents.iter().filter(|&&p| p == r.a_table).count() > 1 {
                    return Err(Error::Mapping(format!(
                        "relation {}: two relations of one polymorphic parent end have the \
                         same parent table, which its (table, id) columns cannot tell apart",
                        r.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The PostgreSQL DDL of the schema, as a database administrator would read it:
    /// tables (relgraph's bookkeeping tables last), then foreign keys and indexes.
    pub fn postgres_ddl(&self) -> String {
        let d = self.ddl(Dialect::Postgres);
        let mut s = String::new();
        for stmt in d.tables.iter().chain(&d.constraints) {
            s.push_str(stmt);
            s.push_str(";\n");
        }
        s
    }

    /// The SQLite DDL of the schema (foreign keys inline: SQLite cannot add them later).
    pub fn sqlite_ddl(&self) -> String {
        let d = self.ddl(Dialect::Sqlite);
        let mut s = String::new();
        for stmt in d.tables.iter().chain(&d.constraints) {
            s.push_str(stmt);
            s.push_str(";\n");
        }
        s
    }

    /// Every table the mapping creates (entity tables, association tables, bookkeeping).
    pub fn table_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tables.iter().map(|t| t.name.to_string()).collect();
        v.extend(
            self.relations
                .iter()
                .filter_map(|r| r.assoc.as_ref().map(|a| a.table.clone())),
        );
        v.push(STATE_TABLE.to_string());
        v.push(SLOTS_TABLE.to_string());
        v.push(VACANT_TABLE.to_string());
        v
    }

    pub(crate) fn ddl(&self, dialect: Dialect) -> Ddl {
        let pg = dialect == Dialect::Postgres;
        let key = if pg { "bigint" } else { "INTEGER" };
        let mut tables = Vec::new();
        let mut constraints = Vec::new();
        for (t, tm) in self.tables.iter().enumerate() {
            let mut cols = vec![format!("{} {key} PRIMARY KEY", q("id"))];
            let mut inline_fk = Vec::new();
            match tm.base {
                None => cols.push(format!("{} {key} NOT NULL", q("version"))),
                Some(b) => {
                    cols.push(format!("{} {key} NOT NULL", q("pos")));
                    let fk = format!(
                        "FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE CASCADE",
                        q("id"),
                        q(self.tables[b].name),
                        q("id")
                    );
                    if pg {
                        constraints.push(format!("ALTER TABLE {} ADD {fk}", q(tm.name)));
                    } else {
                        inline_fk.push(fk);
                    }
                }
            }
            for c in &tm.cols {
                cols.push(column_sql(c, dialect));
            }
            for r in self.relations.iter().filter(|r| r.b_table == t) {
                let Some(l) = &r.link else { continue };
                if let Some(g) = r.group {
                    // once per group: the first relation of the group on this table
                    if self
                        .relations
                        .iter()
                        .find(|o| o.group == Some(g))
                        .map(|o| o.index)
                        != Some(r.index)
                    {
                        continue;
                    }
                    let parents: Vec<String> = self
                        .relations
                        .iter()
                        .filter(|o| o.group == Some(g))
                        .map(|o| lit(self.tables[o.a_table].name))
                        .collect();
                    let tc = l.table.as_deref().unwrap_or("table");
                    cols.push(format!(
                        "{} text CHECK ({} IN ({}))",
                        q(tc),
                        q(tc),
                        parents.join(", ")
                    ));
                    cols.push(format!("{} {key}", q(&l.id)));
                    if let Some(p) = &l.pos {
                        cols.push(format!("{} {key}", q(p)));
                    }
                    cols.push(format!(
                        "CHECK (({} IS NULL) = ({} IS NULL))",
                        q(tc),
                        q(&l.id)
                    ));
                    constraints.push(format!(
                        "CREATE INDEX {} ON {} ({}, {})",
                        q(&format!("{}_{}_idx", tm.name, l.id)),
                        q(tm.name),
                        q(tc),
                        q(&l.id)
                    ));
                    continue;
                }
                let unique = if r.kind == RelationKind::OneToOne {
                    " UNIQUE"
                } else {
                    ""
                };
                cols.push(format!("{} {key}{unique}", q(&l.id)));
                if let Some(p) = &l.pos {
                    cols.push(format!("{} {key}", q(p)));
                }
                let fk = format!(
                    "FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {}",
                    q(&l.id),
                    q(self.tables[r.a_table].name),
                    q("id"),
                    on_delete(r.rule_a)
                );
                if pg {
                    constraints.push(format!("ALTER TABLE {} ADD {fk}", q(tm.name)));
                } else {
                    inline_fk.push(fk);
                }
                if r.kind == RelationKind::OneToMany {
                    constraints.push(format!(
                        "CREATE INDEX {} ON {} ({})",
                        q(&format!("{}_{}_idx", tm.name, l.id)),
                        q(tm.name),
                        q(&l.id)
                    ));
                }
            }
            cols.extend(inline_fk);
            tables.push(format!(
                "CREATE TABLE {} (\n  {}\n)",
                q(tm.name),
                cols.join(",\n  ")
            ));
        }
        for r in &self.relations {
            let Some(a) = &r.assoc else { continue };
            let mut cols = vec![
                format!("{} {key} NOT NULL", q(&a.a_id)),
                format!("{} {key} NOT NULL", q(&a.a_pos)),
                format!("{} {key} NOT NULL", q(&a.b_id)),
                format!("{} {key} NOT NULL", q(&a.b_pos)),
            ];
            for c in &a.payload {
                cols.push(column_sql(c, dialect));
            }
            cols.push(format!("PRIMARY KEY ({}, {})", q(&a.a_id), q(&a.b_id)));
            let rule = |r: DeleteRule| {
                if r == DeleteRule::Restrict {
                    "RESTRICT"
                } else {
                    "CASCADE"
                }
            };
            let fks = [
                format!(
                    "FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {}",
                    q(&a.a_id),
                    q(self.tables[r.a_table].name),
                    q("id"),
                    rule(r.rule_a)
                ),
                format!(
                    "FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {}",
                    q(&a.b_id),
                    q(self.tables[r.b_table].name),
                    q("id"),
                    rule(r.rule_b)
                ),
            ];
            for fk in fks {
                if pg {
                    constraints.push(format!("ALTER TABLE {} ADD {fk}", q(&a.table)));
                } else {
                    cols.push(fk);
                }
            }
            constraints.push(format!(
                "CREATE INDEX {} ON {} ({})",
                q(&format!("{}_{}_idx", a.table, a.b_id)),
                q(&a.table),
                q(&a.b_id)
            ));
            tables.push(format!(
                "CREATE TABLE {} (\n  {}\n)",
                q(&a.table),
                cols.join(",\n  ")
            ));
        }
        tables.push(format!(
            "CREATE TABLE {STATE_TABLE} (\n  id integer PRIMARY KEY CHECK (id = 1),\n  \
             fingerprint text NOT NULL,\n  applied_seq {key} NOT NULL\n)"
        ));
        let blob = if pg { "bytea" } else { "BLOB" };
        tables.push(format!(
            "CREATE TABLE {SLOTS_TABLE} (\n  table_name text PRIMARY KEY,\n  slots {blob}\n)"
        ));
        tables.push(format!(
            "CREATE TABLE {VACANT_TABLE} (\n  table_name text NOT NULL,\n  id {key} NOT NULL,\n  \
             version {key} NOT NULL,\n  PRIMARY KEY (table_name, id)\n)"
        ));
        Ddl {
            tables,
            constraints,
        }
    }
}

/// relgraph's bookkeeping: the schema fingerprint and the last batch applied.
pub(crate) const STATE_TABLE: &str = "relgraph_state";
/// relgraph's bookkeeping: each plain table's slot states and free list, as a snapshot
/// holds them (NULL once the change feed changed the table).
pub(crate) const SLOTS_TABLE: &str = "relgraph_slots";

/// relgraph's bookkeeping: per plain table, the highest version issued for each slot
/// vacant at the export or vacated by a synced batch, so that an import after a sync
/// never issues a key again.
pub(crate) const VACANT_TABLE: &str = "relgraph_vacant";

/// DDL statements: tables (with their checks), then foreign keys and indexes.
pub(crate) struct Ddl {
    pub tables: Vec<String>,
    pub constraints: Vec<String>,
}

/// The SQL type name of a column type.
pub(crate) fn sql_type(ty: &ColType, dialect: Dialect) -> &'static str {
    let pg = dialect == Dialect::Postgres;
    match ty {
        ColType::Bool => {
            if pg {
                "boolean"
            } else {
                "INTEGER"
            }
        }
        ColType::Small => {
            if pg {
                "smallint"
            } else {
                "INTEGER"
            }
        }
        ColType::Int => {
            if pg {
                "integer"
            } else {
                "INTEGER"
            }
        }
        ColType::Big => {
            if pg {
                "bigint"
            } else {
                "INTEGER"
            }
        }
        ColType::Numeric20 => {
            if pg {
                "numeric(20,0)"
            } else {
                "TEXT"
            }
        }
        ColType::Numeric39 => {
            if pg {
                "numeric(39,0)"
            } else {
                "TEXT"
            }
        }
        ColType::Real => {
            if pg {
                "real"
            } else {
                "REAL"
            }
        }
        ColType::Double => {
            if pg {
                "double precision"
            } else {
                "REAL"
            }
        }
        ColType::Char | ColType::Text | ColType::Variant(_) => {
            if pg {
                "text"
            } else {
                "TEXT"
            }
        }
        ColType::Bytes => {
            if pg {
                "bytea"
            } else {
                "BLOB"
            }
        }
        ColType::Json => {
            if pg {
                "jsonb"
            } else {
                "TEXT"
            }
        }
    }
}

fn column_sql(c: &Column, dialect: Dialect) -> String {
    let mut s = format!("{} {}", q(&c.name), sql_type(&c.ty, dialect));
    if !c.nullable && c.ty != ColType::Json {
        s.push_str(" NOT NULL");
    }
    let n = q(&c.name);
    let field = match peel(&c.shape) {
        TypeShape::Option(inner) => peel(inner).clone(),
        other => other.clone(),
    };
    let range = match field {
        TypeShape::I8 => Some("-128 AND 127".to_string()),
        TypeShape::U8 => Some("0 AND 255".to_string()),
        TypeShape::U16 => Some("0 AND 65535".to_string()),
        TypeShape::U32 => Some(format!("0 AND {}", u32::MAX)),
        TypeShape::U64 => Some(format!("0 AND {}", u64::MAX)),
        TypeShape::U128 if dialect == Dialect::Postgres => Some(format!("0 AND {}", u128::MAX)),
        _ => None,
    };
    if let (Some(r), true) = (range, dialect == Dialect::Postgres || !c.ty_is_text()) {
        s.push_str(&format!(" CHECK ({n} BETWEEN {r})"));
    }
    match &c.ty {
        ColType::Variant(vs) => {
            let l: Vec<String> = vs.iter().map(|v| lit(v)).collect();
            s.push_str(&format!(" CHECK ({n} IN ({}))", l.join(", ")));
        }
        ColType::Char => {
            let f = if dialect == Dialect::Postgres {
                "char_length"
            } else {
                "length"
            };
            s.push_str(&format!(" CHECK ({f}({n}) = 1)"));
        }
        _ => {}
    }
    s
}

impl Column {
    fn ty_is_text(&self) -> bool {
        matches!(self.ty, ColType::Numeric20 | ColType::Numeric39)
    }
}
