//! The graph of a snapshot as Graphviz DOT, without the program's types.

use std::collections::{HashMap, HashSet, VecDeque};

use super::error::SnapshotError;
use super::image::{Image, RelationImage};
use crate::dot::{edge_line, node_line, HEAD};

/// Which part of a snapshot's graph [`dot`](fn@dot) draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DotScope {
    /// Every entity and link.
    All,
    /// The entities of one table (or kind), their links, and the entities at the other
    /// end of those links.
    Table(String),
    /// The entity at slot `index` of `table` and what its links reach, breadth first and
    /// in both directions (children and parents, partners at either end), at most `depth`
    /// links away.
    Around {
        /// The table of the root entity.
        table: String,
        /// The root entity's slot index.
        index: u32,
        /// How many links deep to go; `None`: no limit.
        depth: Option<u32>,
    },
}

type Node = (u32, u32); // (root table, slot index)

/// Draws the graph of a snapshot (checked as by [`verify`](super::verify)) as Graphviz
/// DOT: one node per entity, labelled with its table, key and kind; one edge per link from
/// its first end to its second, labelled with the first end's name. O(entities + links).
///
/// # Errors
///
/// As [`verify`](super::verify), and [`SnapshotError::Malformed`] if the scope names an
/// unknown table or a slot with no entity of that table.
pub fn dot(bytes: &[u8], scope: &DotScope) -> Result<String, SnapshotError> {
    let img = Image::parse(bytes)?;
    let live = super::check_graph(&img)?;
    let desc = &img.schema;
    let table_index = |name: &str| {
        desc.tables
            .iter()
            .position(|t| t.name == name)
            .map(|t| t as u32)
            .ok_or_else(|| SnapshotError::Malformed {
                section: "dot scope".into(),
                offset: 0,
                detail: format!("the snapshot has no table `{name}`"),
            })
    };
    // edges, from first end to second, with the relation's first-end name
    let mut edges: Vec<(Node, Node, usize)> = Vec::new();
    for (r, (rel, image)) in desc.relations.iter().zip(&img.relations).enumerate() {
        let (ra, rb) = (desc.root(rel.a_table), desc.root(rel.b_table));
        let mut push = |a: u32, b: u32| edges.push(((ra, a), (rb, b), r));
        match image {
            RelationImage::OneToMany(lists) | RelationImage::ManyToMany { a: lists, .. } => {
                for (owner, items) in lists.iter() {
                    for &i in items {
                        push(owner, i);
                    }
                }
            }
            RelationImage::OneToOne(pairs) => {
                for &(a, b) in pairs {
                    push(a, b);
                }
            }
        }
    }
    let in_table = |t: u32, n: Node| {
        desc.root(t) == n.0 && live[t as usize].get(n.1 as usize).is_some_and(|&v| v != 0)
    };
    let (nodes, edges): (Vec<Node>, Vec<(Node, Node, usize)>) = match scope {
        DotScope::All => {
            let mut nodes = Vec::new();
            for (t, d) in desc.tables.iter().enumerate() {
                if d.base.is_none() {
                    for (i, &v) in live[t].iter().enumerate() {
                        if v != 0 {
                            nodes.push((t as u32, i as u32));
                        }
                    }
                }
            }
            (nodes, edges)
        }
        DotScope::Table(name) => {
            let t = table_index(name)?;
            let mut seen = HashSet::new();
            let mut nodes = Vec::new();
            for (i, &v) in live[t as usize].iter().enumerate() {
                if v != 0 && seen.insert((desc.root(t), i as u32)) {
                    nodes.push((desc.root(t), i as u32));
                }
            }
            let edges: Vec<_> = edges
                .into_iter()
                .filter(|&(a, b, _)| in_table(t, a) || in_table(t, b))
                .collect();
            for &(a, b, _) in &edges {
                for n in [a, b] {
                    if seen.insert(n) {
                        nodes.push(n);
                    }
                }
            }
            (nodes, edges)
        }
        DotScope::Around {
            table,
            index,
            depth,
        } => {
            let t = table_index(table)?;
            let start = (desc.root(t), *index);
            if !in_table(t, start) {
                return Err(SnapshotError::Malformed {
                    section: "dot scope".into(),
                    offset: 0,
                    detail: format!("table `{table}` has no entity at slot {index}"),
                });
            }
            // every link at both of its ends
            let mut touching: HashMap<Node, Vec<usize>> = HashMap::new();
            for (e, &(a, b, _)) in edges.iter().enumerate() {
                touching.entry(a).or_default().push(e);
                if b != a {
                    touching.entry(b).or_default().push(e);
                }
            }
            let mut seen = HashSet::from([start]);
            let mut nodes = vec![start];
            let mut kept = vec![false; edges.len()];
            let mut queue = VecDeque::from([(start, 0u32)]);
            while let Some((n, d)) = queue.pop_front() {
                if depth.is_some_and(|max| d >= max) {
                    continue;
                }
                for &e in touching.get(&n).map_or(&[][..], |v| v.as_slice()) {
                    kept[e] = true;
                    let (a, b, _) = edges[e];
                    let other = if a == n { b } else { a };
                    if seen.insert(other) {
                        nodes.push(other);
                        queue.push_back((other, d + 1));
                    }
                }
            }
            let edges = edges.into_iter().zip(kept).filter(|&(_, k)| k);
            (nodes, edges.map(|(e, _)| e).collect())
        }
    };
    let kind_of = |n: Node| {
        desc.tables
            .iter()
            .enumerate()
            .find(|(k, d)| d.base == Some(n.0) && live[*k][n.1 as usize] != 0)
            .map(|(_, d)| d.name)
    };
    let mut s = String::from(HEAD);
    for &(t, i) in &nodes {
        let version = live[t as usize][i as usize];
        let name = desc.tables[t as usize].name;
        s.push_str(&node_line(name, i, version, kind_of((t, i)), &[]));
    }
    for &(a, b, r) in &edges {
        let name = |n: Node| (desc.tables[n.0 as usize].name, n.1);
        s.push_str(&edge_line(name(a), name(b), desc.relations[r].a_end));
    }
    s.push_str("}\n");
    Ok(s)
}
