//! Index lookups and ranges beside their hand-written counterparts, for callgrind
//! (instruction counts of each named function): 10 000 lookups by title in a hash index
//! and in a `HashMap<String, key>` beside a slotmap, 10 000 ranges of 100 titles in an
//! ordered index and in a `BTreeMap<String, key>`. `RELGRAPH_SCALE` (default 0.1) sizes
//! the posts.
//!
//! `valgrind --tool=callgrind target/profiling/examples/index_probe`, then
//! `callgrind_annotate --inclusive=yes callgrind.out.* | grep index_probe::`.
use relgraph::{Index, Key, Ordered, Schema, Store};
use relgraph_bench::*;
use slotmap::SlotMap;
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::ops::Bound::{Included, Unbounded};

#[inline(never)]
fn rg_lookups(store: &Store, idx: Index<Key<Post>, String>, probes: &[&str]) -> usize {
    probes
        .iter()
        .filter(|p| store.lookup(idx, black_box(**p)).is_some())
        .count()
}
#[inline(never)]
fn base_lookups(
    m: &HashMap<String, PostKey>,
    rows: &SlotMap<PostKey, Post>,
    probes: &[&str],
) -> usize {
    probes
        .iter()
        .filter(|p| m.get(black_box(**p)).map(|&k| &rows[k]).is_some())
        .count()
}
#[inline(never)]
fn rg_ranges(store: &Store, idx: Index<Key<Post>, String, Ordered>, probes: &[&str]) -> u64 {
    let mut n = 0;
    for p in probes {
        n += store
            .range::<_, _, str, _>(idx, (Included(black_box(*p)), Unbounded))
            .take(100)
            .map(|(t, _)| t.len() as u64)
            .sum::<u64>();
    }
    n
}
#[inline(never)]
fn base_ranges(m: &BTreeMap<String, PostKey>, probes: &[&str]) -> u64 {
    let mut n = 0;
    for p in probes {
        n += m
            .range::<str, _>((Included(black_box(*p)), Unbounded))
            .take(100)
            .map(|(t, _)| t.len() as u64)
            .sum::<u64>();
    }
    n
}

fn main() {
    let scale = Scale::from_env(0.1);
    let data = BlogData::new(&scale);
    let mut schema = Schema::new();
    let posts = schema.table::<Post>("posts");
    let h = schema.index(posts, "h", |p: &Post| p.title.clone());
    let o = schema.ordered_index(posts, "o", |p: &Post| p.title.clone());
    let mut store = Store::new(schema);
    let mut rows: SlotMap<PostKey, Post> = SlotMap::with_key();
    let mut hm = HashMap::new();
    let mut bt = BTreeMap::new();
    for p in data.posts.iter().cloned() {
        store.insert(p.clone());
        let t = p.title.clone();
        let k = rows.insert(p);
        hm.insert(t.clone(), k);
        bt.insert(t, k);
    }
    let probes: Vec<&str> = data.shuffled[..10000.min(data.shuffled.len())]
        .iter()
        .map(|&i| data.posts[i as usize].title.as_str())
        .collect();
    println!(
        "{} {} {} {}",
        rg_lookups(&store, h, &probes),
        base_lookups(&hm, &rows, &probes),
        rg_ranges(&store, o, &probes),
        base_ranges(&bt, &probes)
    );
}
