//! Checking the graph of a parsed snapshot and building its relation stores. Nothing here
//! trusts the input: every key is checked against the tables before it is used, and the
//! second side of every relation is rebuilt from the first.

use super::error::{InvalidGraph, Invariant};
use super::image::{Image, Lists, RelationImage, SchemaDesc, TableImage};
use crate::key::RawKey;
use crate::relation::{
    ErasedPayloads, ManyToManyStore, OneToManyStore, OneToOneStore, RelationStore,
};
use crate::schema::{End, RelationKind, Rules};

/// The key of slot `index` in a table whose live versions are `live` (0: no entity).
#[inline]
fn key_at(live: &[u32], index: u32) -> Option<RawKey> {
    let v = *live.get(index as usize)?;
    RawKey::from_bits(u64::from(v) << 32 | u64::from(index))
}

fn slot_key(index: u32) -> RawKey {
    RawKey::from_bits(1 << 32 | u64::from(index)).expect("nonzero version")
}

/// Per table of the image: the version of the live entity of that table at each slot index
/// (0: none). Checks that every base row has exactly one kind, every kind row a base row.
pub(crate) fn liveness(img: &Image<'_>) -> Result<Vec<Vec<u32>>, InvalidGraph> {
    let desc = &img.schema;
    let mut live: Vec<Vec<u32>> = Vec::with_capacity(img.tables.len());
    for (t, table) in img.tables.iter().enumerate() {
        match table {
            TableImage::Slots { slots, .. } => {
                live.push(slots.iter().map(|&(_, v)| v).collect());
            }
            TableImage::Kind { keys, .. } => {
                let name = desc.tables[t].name;
                let base = desc.root(t as u32) as usize;
                let base_live = &live[base];
                let mut mine = vec![0u32; base_live.len()];
                for &i in keys {
                    let Some(key) = key_at(base_live, i) else {
                        return Err(InvalidGraph::new(
                            Invariant::OneKind,
                            name,
                            Some(slot_key(i)),
                            "kind row without a base row",
                        ));
                    };
                    if mine[i as usize] != 0 {
                        return Err(InvalidGraph::new(
                            Invariant::OneKind,
                            name,
                            Some(key),
                            "kind row stored twice",
                        ));
                    }
                    mine[i as usize] = key.version();
                }
                live.push(mine);
            }
        }
    }
    // every live row of a base has exactly one kind
    for (b, base) in desc.tables.iter().enumerate() {
        let kinds: Vec<usize> = (0..desc.tables.len())
            .filter(|&k| desc.tables[k].base == Some(b as u32))
            .collect();
        if kinds.is_empty() {
            continue;
        }
        for (i, &v) in live[b].iter().enumerate() {
            if v == 0 {
                continue;
            }
            let n = kinds.iter().filter(|&&k| live[k][i] != 0).count();
            if n != 1 {
                return Err(InvalidGraph::new(
                    Invariant::OneKind,
                    base.name,
                    RawKey::from_bits(u64::from(v) << 32 | i as u64),
                    if n == 0 {
                        "row without a kind"
                    } else {
                        "row of two kinds"
                    },
                ));
            }
        }
    }
    Ok(live)
}

/// Builds one relation's store from its image, checking every link.
pub(crate) fn build_relation(
    kind: RelationKind,
    rules: Rules,
    image: &RelationImage<'_>,
    (live_a, live_b): (&[u32], &[u32]),
    payloads: Box<dyn ErasedPayloads>,
    name: &str,
) -> Result<RelationStore, InvalidGraph> {
    let invalid = |inv: Invariant, key: Option<RawKey>, detail: &str| {
        InvalidGraph::new(inv, name, key, detail)
    };
    let dead = |end: End, i: u32| {
        invalid(
            Invariant::LiveEndpoint,
            Some(slot_key(i)),
            match end {
                End::A => "the first end names no live entity of its table",
                End::B => "the second end names no live entity of its table",
            },
        )
    };
    let store = match (kind, image) {
        (RelationKind::OneToMany, RelationImage::OneToMany(lists)) => {
            let mut s = OneToManyStore::default();
            s.reserve_slots(End::A, live_a.len());
            // the children's entries: as many as the child table has slots (each of which
            // the input spent bytes on)
            if !lists.items.is_empty() {
                s.size_parents(live_b.len());
            }
            s.reserve_lists(lists.iter().map(|(_, items)| items.len()));
            let mut keys = Vec::new();
            for (owner, items) in lists.iter() {
                let p = key_at(live_a, owner).ok_or_else(|| dead(End::A, owner))?;
                keys.clear();
                for &i in items {
                    let c = key_at(live_b, i).ok_or_else(|| dead(End::B, i))?;
                    if rules.forbid_self_links && p == c {
                        return Err(invalid(Invariant::NoSelfLink, Some(c), "its own parent"));
                    }
                    keys.push(c);
                }
                if let Err(c) = s.attach_list(p, &keys) {
                    return Err(invalid(Invariant::Cardinality, Some(c), "two parents"));
                }
            }
            if rules.acyclic {
                if let Some(k) = s.find_cycle() {
                    return Err(invalid(Invariant::Acyclic, Some(k), "on a cycle"));
                }
            }
            RelationStore::OneToMany(s)
        }
        (RelationKind::OneToOne, RelationImage::OneToOne(pairs)) => {
            let mut s = OneToOneStore::default();
            for &(ia, ib) in pairs {
                let a = key_at(live_a, ia).ok_or_else(|| dead(End::A, ia))?;
                let b = key_at(live_b, ib).ok_or_else(|| dead(End::B, ib))?;
                if s.partner(End::B, b).is_some() {
                    return Err(invalid(Invariant::Cardinality, Some(b), "two partners"));
                }
                if rules.forbid_self_links && a == b {
                    return Err(invalid(Invariant::NoSelfLink, Some(a), "its own partner"));
                }
                s.attach(a, b);
            }
            if rules.acyclic {
                if let Some(k) = s.find_cycle() {
                    return Err(invalid(Invariant::Acyclic, Some(k), "on a cycle"));
                }
            }
            RelationStore::OneToOne(s)
        }
        (RelationKind::ManyToMany, RelationImage::ManyToMany { a, b, .. }) => {
            let mut s = ManyToManyStore::new(payloads);
            s.reserve_pairs(a.items.len());
            s.reserve_slots(End::A, live_a.len());
            s.reserve_slots(End::B, live_b.len());
            // per second-end slot: the number of the last first-end list that named it
            // (owners are ascending, so each first-end entity has one list): a pair
            // listed twice is found in O(links) without a pair lookup
            let mut named = vec![0u32; live_b.len()];
            // every list is allocated once at its stored length (bounded by the input's);
            // the second end's owners are checked by `order_b_end`
            for (owner, items) in b.iter() {
                if let Some(kb) = key_at(live_b, owner) {
                    s.reserve_list(End::B, kb, items.len());
                }
            }
            for (stamp, (owner, items)) in (1u32..).zip(a.iter()) {
                let ka = key_at(live_a, owner).ok_or_else(|| dead(End::A, owner))?;
                s.reserve_list(End::A, ka, items.len());
                for &i in items {
                    let kb = key_at(live_b, i).ok_or_else(|| dead(End::B, i))?;
                    if rules.forbid_self_links && ka == kb {
                        return Err(invalid(Invariant::NoSelfLink, Some(ka), "linked to itself"));
                    }
                    if std::mem::replace(&mut named[i as usize], stamp) == stamp {
                        return Err(invalid(Invariant::DuplicateLink, Some(ka), "pair twice"));
                    }
                    s.push_link_unchecked(ka, kb);
                }
            }
            order_b_end(&mut s, b, (live_a, live_b), &invalid, &dead)?;
            if rules.acyclic {
                if let Some(k) = s.find_cycle() {
                    return Err(invalid(Invariant::Acyclic, Some(k), "on a cycle"));
                }
            }
            RelationStore::ManyToMany(s)
        }
        _ => unreachable!("the image was parsed by the relation's kind"),
    };
    Ok(store)
}

/// Puts the second end's lists of a many-to-many in their stored order, checking that
/// they list exactly the links of the first end's lists.
fn order_b_end(
    s: &mut ManyToManyStore,
    b: &Lists,
    (live_a, live_b): (&[u32], &[u32]),
    invalid: &dyn Fn(Invariant, Option<RawKey>, &str) -> InvalidGraph,
    dead: &dyn Fn(End, u32) -> InvalidGraph,
) -> Result<(), InvalidGraph> {
    let links = s.link_count();
    // per first-end slot: (number of the second-end list being ordered, link index); USED
    // once the stored order has named it
    const USED: u32 = u32::MAX;
    let mut mark = vec![(0u32, 0u32); live_a.len()];
    let mut total = 0usize;
    let mut order = Vec::new();
    for (stamp, (owner, items)) in (1u32..).zip(b.iter()) {
        let kb = key_at(live_b, owner).ok_or_else(|| dead(End::B, owner))?;
        if items.len() != s.count(End::B, kb) {
            return Err(invalid(
                Invariant::DuplicateLink,
                Some(kb),
                "the second end lists another number of links than the first",
            ));
        }
        // the common case: the stored order is the order the first end's lists gave,
        // and the lists are then the same (each built link is in exactly one list)
        let same = items
            .iter()
            .zip(s.entries(End::B, kb))
            .all(|(&i, (ka, _))| ka.index() == i);
        if !same {
            for (ka, link) in s.entries(End::B, kb) {
                mark[ka.idx()] = (stamp, link);
            }
            order.clear();
            for &i in items {
                let ka = key_at(live_a, i).ok_or_else(|| dead(End::A, i))?;
                let (st, link) = mark[i as usize];
                if st == USED {
                    return Err(invalid(Invariant::DuplicateLink, Some(kb), "listed twice"));
                }
                if st != stamp {
                    return Err(invalid(
                        Invariant::DuplicateLink,
                        Some(kb),
                        "the second end lists a link the first does not",
                    ));
                }
                mark[i as usize].0 = USED;
                order.push(Some((ka, link)));
            }
            s.set_order(End::B, kb, std::mem::take(&mut order));
        }
        total += items.len();
    }
    if total != links {
        return Err(invalid(
            Invariant::DuplicateLink,
            None,
            "the second end's lists miss links of the first",
        ));
    }
    Ok(())
}

/// A child has a parent in at most one member of each polymorphic parent end.
pub(crate) fn check_groups(
    desc: &SchemaDesc<'_>,
    live: &[Vec<u32>],
    relations: &[RelationStore],
) -> Result<(), InvalidGraph> {
    for (g, group) in desc.groups.iter().enumerate() {
        let mut seen = vec![false; live[desc.root(group.child_table) as usize].len()];
        for (r, rel) in desc.relations.iter().enumerate() {
            if rel.group != Some(g as u32) {
                continue;
            }
            let RelationStore::OneToMany(s) = &relations[r] else {
                continue;
            };
            for child in s.linked_children() {
                if std::mem::replace(&mut seen[child.idx()], true) {
                    return Err(InvalidGraph::new(
                        Invariant::OnePolyParent,
                        format!(
                            "{}.{}",
                            desc.tables[group.child_table as usize].name, group.end
                        ),
                        Some(child),
                        "a parent in two relations of one polymorphic parent end",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The header's entity and link counts match the sections. Checked last, so that a fuzzer
/// that does not fix the counts still reaches every other check.
pub(crate) fn check_counts(img: &Image<'_>) -> Result<(), InvalidGraph> {
    let entities: u64 = img
        .tables
        .iter()
        .filter_map(|t| match t {
            TableImage::Slots { live, .. } => Some(*live as u64),
            TableImage::Kind { .. } => None,
        })
        .sum();
    if entities != img.header.entities {
        return Err(InvalidGraph::new(
            Invariant::Counts,
            "header",
            None,
            format!(
                "the header counts {} entities, the tables hold {entities}",
                img.header.entities
            ),
        ));
    }

    let links: u64 = img.relations.iter().map(|r| r.links() as u64).sum();
    if links != img.header.links {
        return Err(InvalidGraph::new(
            Invariant::Counts,
            "header",
            None,
            format!(
                "the header counts {} links, the relations hold {links}",
                img.header.links
            ),
        ));
    }
    Ok(())
}
