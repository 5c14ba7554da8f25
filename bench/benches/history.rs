//! Criterion benchmarks of history, the change feed and the shared handle, each next to
//! the same work without them, in the same run (figures in the README are ratios of the
//! two):
//!
//! - history recording on W1 one call at a time, W4 moves and W7 cascade deletes;
//! - undo and redo of W7's cascade deletes, next to the deletes themselves;
//! - the feed on W4 (recording, and reading every event: events per second);
//! - W2 read throughput through a `SharedStore` with 1, 2 and 4 reader threads, next to
//!   the same threads reading a plain `&Store`.
//!
//! `cargo bench -p relgraph-bench --bench history`; `RELGRAPH_SCALE=0.1` for a tenth of the size.

use std::hint::black_box;
use std::time::Duration;

mod common;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use relgraph::{SharedStore, Store};
use relgraph_bench::*;

use common::{group, on_built};

fn config<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    group(c, name, Duration::from_secs(5))
}

/// An editor's history: the last 100 steps.
const STEPS: usize = 100;

fn history_on(s: &mut Store) {
    s.enable_history(STEPS);
}

fn feed_on(s: &mut Store) {
    s.enable_feed(1 << 20);
}

/// Times `work` on the W1 state, built (untimed) on a store that `setup` prepared.
fn on_w1_state(
    g: &mut BenchmarkGroup<'_, WallTime>,
    data: &BlogData,
    name: &str,
    setup: fn(&mut Store),
    work: impl Fn(&mut RgBlog) -> u64,
) {
    let build = || {
        let mut s = rg_w1(data.clone()).0;
        setup(&mut s.store);
        s
    };
    on_built(g, name, build, work);
}

fn recording(c: &mut Criterion) {
    let scale = Scale::from_env(1.0);
    let data = BlogData::new(&scale);

    let mut g = config(c, "H1 W1 one call at a time");
    g.bench_function("history off", |b| {
        b.iter_batched(|| data.clone(), rg_w1_each, BatchSize::PerIteration)
    });
    g.bench_function("history on", |b| {
        b.iter_batched(
            || data.clone(),
            |d| rg_w1_each_on(d, history_on),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("feed on", |b| {
        b.iter_batched(
            || data.clone(),
            |d| rg_w1_each_on(d, feed_on),
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = config(c, "H2 W4 moves");
    let w4 = |s: &mut RgBlog| rg_w4(s, &data.moves);
    on_w1_state(&mut g, &data, "history off", |_| {}, w4);
    on_w1_state(&mut g, &data, "history on", history_on, w4);
    on_w1_state(&mut g, &data, "feed on", feed_on, w4);
    g.finish();

    let mut g = config(c, "H3 W7 cascade deletes");
    let w7 = |s: &mut RgBlog| rg_w7(s, &data.deletes);
    on_w1_state(&mut g, &data, "history off", |_| {}, w7);
    on_w1_state(&mut g, &data, "history on", history_on, w7);
    // the deletes as one step, undone and redone
    let deleted = || {
        let mut s = rg_w1(data.clone()).0;
        s.store.enable_history(STEPS);
        let users = s.users.clone();
        s.store
            .step("W7", |st| {
                for &u in &data.deletes {
                    st.remove(users[u as usize])?;
                }
                Ok::<_, relgraph::RemoveError>(())
            })
            .expect("not restricted");
        s
    };
    g.bench_function("deletes as one step", |b| {
        b.iter_batched(
            || {
                let mut s = rg_w1(data.clone()).0;
                s.store.enable_history(STEPS);
                s
            },
            |mut s| {
                let users = s.users.clone();
                s.store
                    .step("W7", |st| {
                        for &u in &data.deletes {
                            st.remove(users[u as usize])?;
                        }
                        Ok::<_, relgraph::RemoveError>(())
                    })
                    .expect("not restricted");
                s
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("undo of the step", |b| {
        b.iter_batched(
            deleted,
            |mut s| {
                s.store.undo().expect("a step");
                s
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("redo of the step", |b| {
        b.iter_batched(
            || {
                let mut s = deleted();
                s.store.undo().expect("a step");
                s
            },
            |mut s| {
                s.store.redo().expect("a step");
                s
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // reading the feed of W4: every change of every batch
    let mut moved = rg_w1(data.clone()).0;
    moved.store.enable_feed(1 << 21);
    let cursor = moved.store.feed_cursor();
    rg_w4(&mut moved, &data.moves);
    let events = {
        let mut c = cursor.clone();
        count_events(&moved.store, &mut c)
    };
    let mut g = config(c, "H4 feed of W4");
    g.throughput(Throughput::Elements(events));
    g.bench_function("read every event", |b| {
        b.iter(|| {
            let mut c = cursor.clone();
            count_events(black_box(&moved.store), &mut c)
        })
    });
    g.finish();
}

fn count_events(s: &Store, cursor: &mut relgraph::FeedCursor) -> u64 {
    s.read_feed(cursor)
        .expect("no batch dropped")
        .iter()
        .map(|v| v.changes().count() as u64)
        .sum()
}

/// W2 over a borrowed store: for every user, the scores of its posts.
fn w2(s: &Store, rel: relgraph::OneToMany<User, Post>, users: &[relgraph::Key<User>]) -> u64 {
    let posts = s.rows::<Post>();
    let mut sum = 0u64;
    for &u in users {
        for p in s.children(rel, u) {
            sum += u64::from(posts[p].score);
        }
    }
    sum
}

fn shared_reads(c: &mut Criterion) {
    let scale = Scale::from_env(1.0);
    let data = BlogData::new(&scale);
    let plain = rg_w1(data.clone()).0;
    let expected = rg_w2(&plain);
    let (rel, users) = (plain.authorship, plain.users.clone());
    let shared = SharedStore::new(rg_w1(data.clone()).0.store);
    let mut g = config(c, "H5 W2 reads from threads");
    for threads in [1usize, 2, 4] {
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function(format!("plain &Store, {threads} threads"), |b| {
            b.iter(|| {
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| assert_eq!(w2(&plain.store, rel, &users), expected));
                    }
                })
            })
        });
        g.bench_function(format!("SharedStore::read, {threads} threads"), |b| {
            b.iter(|| {
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| shared.read(|s| assert_eq!(w2(s, rel, &users), expected)));
                    }
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, recording, shared_reads);
criterion_main!(benches);
