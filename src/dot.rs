//! Drawing a store as Graphviz DOT, its rows labelled by the program ([`DotLabels`]), in
//! the layout of `relgraph dot`, which draws a snapshot without the program's types
//! (`snapshot/dot.rs`; both use the node and edge lines below).

use std::any::{type_name, TypeId};
use std::fmt;
use std::io::{self, Write};

use crate::key::{Key, RawKey};
use crate::schema::{End, Entity};
use crate::store::Store;

/// Escapes `s` for a quoted DOT string: backslashes, quotes, and control characters (a
/// line break becomes DOT's `\n`, which Graphviz draws as one).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.extend(c.escape_default().flat_map(|e| {
                // the escape's own backslash, kept literal
                (e == '\\').then_some('\\').into_iter().chain([e])
            })),
            c => out.push(c),
        }
    }
    out
}

/// The first line of a DOT graph of relgraph entities.
pub(crate) const HEAD: &str = "digraph relgraph {\n  node [shape=box, fontname=\"monospace\"];\n";

/// One entity: its node id is `table:index`, its label `table indexvversion`, then
/// ` (kind)` for a row of a kind, then each of `lines` on a line of its own.
pub(crate) fn node_line(
    table: &str,
    index: u32,
    version: u32,
    kind: Option<&str>,
    lines: &[String],
) -> String {
    let kind = kind.map_or(String::new(), |k| format!(" ({k})"));
    let mut label = format!("{table} {index}v{version}{kind}");
    for line in lines {
        label.push('\n');
        label.push_str(line);
    }
    format!(
        "  \"{}:{index}\" [label=\"{}\"];\n",
        quote(table),
        quote(&label)
    )
}

/// One link, from its first end to its second, labelled with the first end's name.
pub(crate) fn edge_line(a: (&str, u32), b: (&str, u32), end: &str) -> String {
    format!(
        "  \"{}:{}\" -> \"{}:{}\" [label=\"{}\"];\n",
        quote(a.0),
        a.1,
        quote(b.0),
        b.1,
        quote(end)
    )
}

/// A label of one table's rows, type-erased: the row under a key, as text.
type Label<'a> = Box<dyn Fn(&Store, RawKey) -> Option<String> + 'a>;

/// How [`Store::write_dot`] labels rows: one function per table (or kind) that turns a
/// row into text. Rows of tables without a function are drawn with their table and key
/// only.
///
/// ```
/// use relgraph::{DeleteRule, DotLabels, Schema, Store};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct User { name: String }
/// #[derive(Serialize, Deserialize)]
/// struct Post { title: String }
///
/// let mut schema = Schema::new();
/// let users = schema.table::<User>("users");
/// let posts = schema.table::<Post>("posts");
/// let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
/// let mut store = Store::new(schema);
/// let alice = store.insert(User { name: "Alice".into() });
/// let guide = store.insert(Post { title: "SQLAlchemy Guide".into() });
/// store.link(authorship, alice, guide)?;
///
/// let labels = DotLabels::new()
///     .table(|u: &User| u.name.clone())
///     .table(|p: &Post| format!("{:?}", p.title));
/// let mut dot = Vec::new();
/// store.write_dot(&mut dot, &labels)?;
/// let dot = String::from_utf8(dot)?;
/// assert!(dot.contains(r#""users:0" [label="users 0v1\nAlice"];"#));
/// assert!(dot.contains(r#""users:0" -> "posts:0" [label="posts"];"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct DotLabels<'a> {
    labels: Vec<(TypeId, &'static str, Label<'a>)>,
}

impl<'a> DotLabels<'a> {
    /// No labels: every row is drawn with its table and key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Labels the rows of the table (or kind) of `T` with `label`, which may borrow. A
    /// second function for the same table replaces the first. Rows of a kind get their
    /// base's label, then their kind's.
    pub fn table<T: Entity>(mut self, label: impl Fn(&T) -> String + 'a) -> Self {
        let erased: Label<'a> =
            Box::new(move |store, raw| store.get(Key::<T>::from_raw(raw)).map(&label));
        self.labels.retain(|(t, _, _)| *t != TypeId::of::<T>());
        self.labels
            .push((TypeId::of::<T>(), type_name::<T>(), erased));
        self
    }
}

impl fmt::Debug for DotLabels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DotLabels")
            .field(
                "tables",
                &self.labels.iter().map(|l| l.1).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Store {
    /// Writes the store as a Graphviz DOT graph to `out`: one node per entity, labelled
    /// with its table, key and kind and the text `labels` gives its rows, and one edge per
    /// link from its first end to its second, labelled with the first end's name; the
    /// layout `relgraph dot` draws a snapshot in, which cannot read rows. Entities in
    /// slot order, table by table; links relation by relation. O(entities + links), plus
    /// one call of a label function per labelled row.
    ///
    /// ```sh
    /// dot -Tsvg store.dot > store.svg
    /// ```
    ///
    /// # Errors
    ///
    /// The first error `out` returns.
    ///
    /// # Panics
    ///
    /// If `labels` labels a type that is not a table of this store. A label function that
    /// panics leaves the store as it was (drawing only reads it).
    #[track_caller]
    pub fn write_dot(&self, out: impl Write, labels: &DotLabels<'_>) -> io::Result<()> {
        let tables = &self.schema.tables;
        let mut by_table: Vec<Option<&Label<'_>>> = vec![None; tables.len()];
        for (type_id, name, label) in &labels.labels {
            match self.schema.by_type.get(type_id) {
                Some(&t) => by_table[t as usize] = Some(label),
                None => panic!(
                    "write_dot: type {name} is labelled but is not a table of this store: \
                     drop its label, or register it with `schema.table::<{name}>(\"NAME\")`"
                ),
            }
        }
        let mut out = io::BufWriter::new(out);
        out.write_all(HEAD.as_bytes())?;
        let kinds_of = |t: usize| {
            tables
                .iter()
                .enumerate()
                .filter(move |(_, k)| k.base == Some(t as u32))
        };
        for (t, def) in tables.iter().enumerate() {
            if def.base.is_some() {
                continue; // a kind's rows are drawn with their base's
            }
            for key in self.tables[t].keys() {
                let kind = kinds_of(t).find(|&(k, _)| self.tables[k].contains(key));
                let mut lines = Vec::new();
                for table in std::iter::once(t).chain(kind.map(|(k, _)| k)) {
                    if let Some(text) = by_table[table].and_then(|label| label(self, key)) {
                        lines.push(text);
                    }
                }
                let kind = kind.map(|(_, d)| d.name);
                let line = node_line(def.name, key.index(), key.version(), kind, &lines);
                out.write_all(line.as_bytes())?;
            }
        }
        let root = |t: u32| {
            let def = &tables[t as usize];
            tables[def.base.unwrap_or(t) as usize].name
        };
        for (def, relation) in self.schema.relations.iter().zip(&self.relations) {
            let (a_table, b_table) = (root(def.a_table), root(def.b_table));
            let mut owners = self.tables[def.a_table as usize].keys();
            owners.sort_unstable_by_key(|k| k.index()); // a kind's rows are not in slot order
            for a in owners {
                let mut lines = Vec::new();
                relation.for_each_partner(End::A, a, |b| {
                    let (a, b) = ((a_table, a.index()), (b_table, b.index()));
                    lines.push(edge_line(a, b, def.name.a_end));
                });
                for line in lines {
                    out.write_all(line.as_bytes())?;
                }
            }
        }
        out.write_all(b"}\n")?;
        out.flush()
    }
}
