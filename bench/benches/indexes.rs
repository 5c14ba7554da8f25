//! Secondary indexes: a lookup by an indexed field in a table of 1M rows against a scan and
//! against a hand-written `HashMap<String, key>` beside a slotmap; a range of an ordered
//! index against a hand-written `BTreeMap`; the cost of keeping two indexes during W1 (one
//! call at a time) and W7, against the same work without indexes and against the
//! hand-written baseline with the same two indexes kept by hand (a `HashMap` of titles, a
//! `BTreeSet` of `(score, post)`).
//!
//! `cargo bench -p relgraph-bench --bench indexes` (full size; `RELGRAPH_SCALE=0.1` for a
//! tenth).

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::ops::Bound::{Included, Unbounded};
use std::time::Duration;

mod common;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use relgraph::{Schema, Store};
use slotmap::{new_key_type, SlotMap};

use common::{group, on_built};

use relgraph_bench::*;

new_key_type! {
    struct RowKey;
}

fn config<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    group(c, name, Duration::from_secs(3))
}

fn lookups(c: &mut Criterion) {
    let scale = Scale::from_env(1.0);
    let data = BlogData::new(&scale);
    let mut schema = Schema::new();
    let posts = schema.table::<Post>("posts");
    let by_title = schema.index(posts, "posts_by_title", |p: &Post| p.title.clone());
    let by_title_ordered =
        schema.ordered_index(posts, "posts_by_title_ordered", |p: &Post| p.title.clone());
    let mut store = Store::new(schema);
    store.reserve::<Post>(data.posts.len());
    for p in data.posts.iter().cloned() {
        store.insert(p);
    }
    let mut rows: SlotMap<RowKey, Post> = SlotMap::with_capacity_and_key(data.posts.len());
    let mut by_name: HashMap<String, RowKey> = HashMap::with_capacity(data.posts.len());
    let mut ordered: BTreeMap<String, RowKey> = BTreeMap::new();
    for p in data.posts.iter().cloned() {
        let title = p.title.clone();
        let k = rows.insert(p);
        by_name.insert(title.clone(), k);
        ordered.insert(title, k);
    }
    // the titles looked up, in a shuffled order
    let probes: Vec<&str> = data.shuffled[..1000.min(data.shuffled.len())]
        .iter()
        .map(|&i| data.posts[i as usize].title.as_str())
        .collect();

    let mut g = config(c, "index lookup by title, 1M rows (one lookup)");
    let mut i = 0;
    g.bench_function("relgraph hash index", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(store.lookup(by_title, black_box(probes[i])))
        })
    });
    let mut i = 0;
    g.bench_function("relgraph ordered index", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(store.lookup(by_title_ordered, black_box(probes[i])))
        })
    });
    let mut i = 0;
    g.bench_function("hand-written HashMap beside a slotmap", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(by_name.get(black_box(probes[i])).map(|&k| &rows[k]))
        })
    });
    let mut i = 0;
    g.bench_function("relgraph scan (Store::find)", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            let t = black_box(probes[i]);
            black_box(store.find::<Post>(|p| p.title == t))
        })
    });
    g.finish();

    // 100 rows from a random title on, in title order
    let mut g = config(c, "ordered index range, 100 rows");
    let mut i = 0;
    g.bench_function("relgraph ordered index", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            let n: u64 = store
                .range::<_, _, str, _>(
                    by_title_ordered,
                    (Included(black_box(probes[i])), Unbounded),
                )
                .take(100)
                .map(|(t, _)| t.len() as u64)
                .sum();
            black_box(n)
        })
    });
    let mut i = 0;
    g.bench_function("hand-written BTreeMap", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            let n: u64 = ordered
                .range::<str, _>((Included(black_box(probes[i])), Unbounded))
                .take(100)
                .map(|(t, _)| t.len() as u64)
                .sum();
            black_box(n)
        })
    });
    g.finish();
}

fn upkeep(c: &mut Criterion) {
    let scale = Scale::from_env(1.0);
    let data = BlogData::new(&scale);
    let (_, plain) = rg_w1_each(data.clone());
    let (_, indexed) = rg_w1_each_indexed(data.clone());
    assert_eq!(plain, indexed, "W1 checksums differ");
    assert_eq!(
        plain,
        base_w1_indexed(data.clone()).1,
        "W1 checksums differ"
    );

    let mut g = config(c, "W1 one by one, two indexes on posts");
    g.bench_function("relgraph without indexes", |b| {
        b.iter_batched(|| data.clone(), rg_w1_each, BatchSize::PerIteration)
    });
    g.bench_function("relgraph with two indexes", |b| {
        b.iter_batched(|| data.clone(), rg_w1_each_indexed, BatchSize::PerIteration)
    });
    g.bench_function("hand-written without indexes", |b| {
        b.iter_batched(|| data.clone(), base_w1, BatchSize::PerIteration)
    });
    g.bench_function("hand-written with the two indexes kept by hand", |b| {
        b.iter_batched(|| data.clone(), base_w1_indexed, BatchSize::PerIteration)
    });
    g.finish();

    let mut g = config(c, "W7 cascade delete, two indexes on posts");
    on_built(
        &mut g,
        "relgraph without indexes",
        || rg_w1_each(data.clone()).0,
        |s| rg_w7(s, &data.deletes),
    );
    on_built(
        &mut g,
        "relgraph with two indexes",
        || rg_w1_each_indexed(data.clone()).0,
        |s| rg_w7(s, &data.deletes),
    );
    on_built(
        &mut g,
        "hand-written without indexes",
        || base_w1(data.clone()).0,
        |s| base_w7(s, &data.deletes),
    );
    on_built(
        &mut g,
        "hand-written with the two indexes kept by hand",
        || base_w1_indexed(data.clone()).0,
        |s| base_w7_indexed(s, &data.deletes),
    );
    g.finish();
}

criterion_group!(benches, lookups, upkeep);
criterion_main!(benches);
