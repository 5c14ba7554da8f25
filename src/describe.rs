//! Schema introspection: the declared tables, relations and polymorphic parent ends, with
//! the named shapes of their row and payload types, for programs that lay a store out
//! elsewhere (SQL DDL, exports) without its Rust types.

use crate::schema::{RelationKind, RelationName, Rules, Schema};
use crate::shape::TypeShape;

/// One declared table (a plain table, a polymorphic base or a kind), as
/// [`Schema::describe_tables`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDescription {
    /// Its place in the schema (declaration order; the order of a snapshot's sections).
    pub index: usize,
    /// The table's name (a kind's tag).
    pub name: &'static str,
    /// The Rust type's name (for messages only; not stable).
    pub type_name: &'static str,
    /// The row type's version ([`Schema::set_version`]).
    pub version: u32,
    /// For a kind: its base table's index.
    pub base: Option<usize>,
    /// For a polymorphic base: its kinds' indices, in declaration order.
    pub kinds: Vec<usize>,
    /// The row type's named shape; `None` if its `Deserialize` cannot be traced.
    pub row: Option<TypeShape>,
}

/// One declared relation, as [`Schema::describe_relations`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationDescription {
    /// Its place in the schema (declaration order).
    pub index: usize,
    /// One-to-many, one-to-one or many-to-many.
    pub kind: RelationKind,
    /// Its tables and end names.
    pub name: RelationName,
    /// The first end's table index (a one-to-many's parent).
    pub a_table: usize,
    /// The second end's table index.
    pub b_table: usize,
    /// Delete rules and self-referential policies.
    pub rules: Rules,
    /// The polymorphic parent end this one-to-many belongs to, by index.
    pub poly_parent: Option<usize>,
    /// The payload type's named shape (many-to-many only; `TypeShape::Unit` for `()`);
    /// `None` for other relations or an untraceable payload type.
    pub payload: Option<TypeShape>,
}

/// One polymorphic parent end, as [`Schema::describe_poly_parents`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolyParentDescription {
    /// Its place in the schema (declaration order).
    pub index: usize,
    /// The children's table index.
    pub child_table: usize,
    /// The end's name on the child (e.g. `target`).
    pub end: &'static str,
    /// The one-to-many relations sharing it, by index.
    pub relations: Vec<usize>,
}

impl Schema {
    /// Every declared table, in declaration order, with its row type's named shape.
    /// Traces each row type: microseconds a type for common types.
    pub fn describe_tables(&self) -> Vec<TableDescription> {
        self.tables
            .iter()
            .enumerate()
            .map(|(index, t)| TableDescription {
                index,
                name: t.name,
                type_name: t.type_name,
                version: t.version,
                base: t.base.map(|b| b as usize),
                kinds: t.kinds.iter().map(|&k| k as usize).collect(),
                row: (t.describe)(),
            })
            .collect()
    }

    /// Every declared relation, in declaration order, with a many-to-many's payload
    /// shape. Traces each payload type.
    pub fn describe_relations(&self) -> Vec<RelationDescription> {
        self.relations
            .iter()
            .enumerate()
            .map(|(index, r)| RelationDescription {
                index,
                kind: r.kind,
                name: r.name,
                a_table: r.a_table as usize,
                b_table: r.b_table as usize,
                rules: r.rules,
                poly_parent: r.group.map(|g| g as usize),
                payload: match r.kind {
                    RelationKind::ManyToMany => (r.describe_payload)(),
                    _ => None,
                },
            })
            .collect()
    }

    /// Every declared polymorphic parent end, in declaration order.
    pub fn describe_poly_parents(&self) -> Vec<PolyParentDescription> {
        self.groups
            .iter()
            .enumerate()
            .map(|(index, g)| PolyParentDescription {
                index,
                child_table: g.child_table as usize,
                end: g.end,
                relations: g.members.iter().map(|&m| m as usize).collect(),
            })
            .collect()
    }
}
