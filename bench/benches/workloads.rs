//! Criterion benchmarks of the workloads W1-W9 of WORKLOADS.md: relgraph against a
//! hand-written slotmap + Vec baseline, on the same fixed-seed data, in the same run.
//!
//! `cargo bench -p relgraph-bench` runs the full size; `RELGRAPH_SCALE=0.1 cargo bench -p
//! relgraph-bench` a tenth of it.
//! Compare each `relgraph` time with the `baseline` time of the same group.

use std::hint::black_box;
use std::time::Duration;

mod common;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};

use common::{group, on_built};

use relgraph_bench::*;

fn config<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    group(c, name, Duration::from_secs(5))
}

fn blog(c: &mut Criterion) {
    let scale = Scale::from_env(1.0);
    let data = BlogData::new(&scale);
    let (rg, rg_sum) = rg_w1(data.clone());
    let (base, base_sum) = base_w1(data.clone());
    assert_eq!(rg_sum, base_sum, "W1 checksums differ");

    let mut g = config(c, "W1 build one-to-many");
    g.bench_function("relgraph", |b| {
        b.iter_batched(|| data.clone(), rg_w1, BatchSize::PerIteration)
    });
    g.bench_function("baseline", |b| {
        b.iter_batched(|| data.clone(), base_w1, BatchSize::PerIteration)
    });
    // the same state one `insert` and `link` at a time, after `reserve`
    g.bench_function("relgraph one by one", |b| {
        b.iter_batched(|| data.clone(), rg_w1_each, BatchSize::PerIteration)
    });
    // as a user writes it: one `insert` and `link` at a time, no `reserve`
    g.bench_function("relgraph one by one, no reserve", |b| {
        b.iter_batched(|| data.clone(), rg_w1_user, BatchSize::PerIteration)
    });
    // each post made as its author's child (`insert_child`), no `reserve`
    g.bench_function("relgraph insert_child, no reserve", |b| {
        b.iter_batched(|| data.clone(), rg_w1_child, BatchSize::PerIteration)
    });
    // the baseline written the same way: nothing sized up front
    g.bench_function("baseline, nothing sized", |b| {
        b.iter_batched(|| data.clone(), base_w1_user, BatchSize::PerIteration)
    });
    g.finish();

    let mut g = config(c, "W2 forward traversal");
    g.bench_function("relgraph", |b| b.iter(|| rg_w2(black_box(&rg))));
    g.bench_function("baseline", |b| b.iter(|| base_w2(black_box(&base))));
    g.finish();

    let mut g = config(c, "W3 back-reference lookup");
    g.bench_function("relgraph", |b| {
        b.iter(|| rg_w3(black_box(&rg), &data.shuffled))
    });
    // the relation's view taken once, `row` per post
    g.bench_function("relgraph parents view", |b| {
        b.iter(|| rg_w3_view(black_box(&rg), &data.shuffled))
    });
    // as a user writes it: `parent_row` per post, no view
    g.bench_function("relgraph parent_row", |b| {
        b.iter(|| rg_w3_user(black_box(&rg), &data.shuffled))
    });
    g.bench_function("baseline", |b| {
        b.iter(|| base_w3(black_box(&base), &data.shuffled))
    });
    g.finish();

    let mut g = config(c, "W4 reassign");
    on_built(
        &mut g,
        "relgraph",
        || rg_w1(data.clone()).0,
        |s| rg_w4(s, &data.moves),
    );
    on_built(
        &mut g,
        "baseline",
        || base_w1(data.clone()).0,
        |s| base_w4(s, &data.moves),
    );
    g.finish();

    let mut g = config(c, "W7 cascade delete");
    on_built(
        &mut g,
        "relgraph",
        || rg_w1(data.clone()).0,
        |s| rg_w7(s, &data.deletes),
    );
    on_built(
        &mut g,
        "baseline",
        || base_w1(data.clone()).0,
        |s| base_w7(s, &data.deletes),
    );
    g.finish();
}

fn school(c: &mut Criterion) {
    let data = SchoolData::new(&Scale::from_env(1.0));
    let mut g = config(c, "W5 many-to-many");
    g.bench_function("relgraph", |b| {
        b.iter_batched(|| data.clone(), rg_w5, BatchSize::PerIteration)
    });
    g.bench_function("relgraph, one link_with at a time, no reserve", |b| {
        b.iter_batched(|| data.clone(), rg_w5_each, BatchSize::PerIteration)
    });
    g.bench_function("relgraph, link_all_with, no reserve", |b| {
        b.iter_batched(|| data.clone(), rg_w5_bulk, BatchSize::PerIteration)
    });
    g.bench_function("baseline", |b| {
        b.iter_batched(|| data.clone(), base_w5, BatchSize::PerIteration)
    });
    g.finish();
}

fn org(c: &mut Criterion) {
    let data = OrgData::new(&Scale::from_env(1.0));
    let rg = rg_w6_build(data.clone());
    let base = base_w6_build(data.clone());
    let mut g = config(c, "W6 self-referential tree");
    g.bench_function("relgraph", |b| {
        b.iter(|| rg_w6(black_box(&rg), &data.samples))
    });
    g.bench_function("baseline", |b| {
        b.iter(|| base_w6(black_box(&base), &data.samples))
    });
    g.finish();

    // the acyclic hierarchy's build: tuned, one call at a time, in bulk
    let mut g = config(c, "W6 build");
    for (name, how) in [
        ("relgraph, reserve + link each", W6Build::Tuned),
        ("relgraph, link each, no reserve", W6Build::OneByOne),
        ("relgraph, insert_all + link_all", W6Build::Bulk),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || data.clone(),
                |d| rg_w6_build_with(d, how),
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("baseline", |b| {
        b.iter_batched(|| data.clone(), base_w6_build, BatchSize::PerIteration)
    });
    g.finish();

    // the whole of W6 as a user writes it: the hierarchy built in bulk, then walked
    let mut g = config(c, "W6 whole");
    g.bench_function("relgraph, insert_all + link_all, walks", |b| {
        b.iter_batched(
            || data.clone(),
            |d| {
                let s = rg_w6_build_with(d, W6Build::Bulk);
                let sum = rg_w6(&s, &data.samples);
                (s, sum)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("baseline", |b| {
        b.iter_batched(
            || data.clone(),
            |d| {
                let s = base_w6_build(d);
                let sum = base_w6(&s, &data.samples);
                (s, sum)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn notifications(c: &mut Criterion) {
    let data = NotifData::new(&Scale::from_env(1.0));
    let mut g = config(c, "W8 polymorphic build");
    g.bench_function("relgraph", |b| {
        b.iter_batched(|| data.clone(), rg_w8_build, BatchSize::PerIteration)
    });
    g.bench_function("relgraph, insert_kind each, no reserve", |b| {
        b.iter_batched(
            || data.clone(),
            |d| rg_w8_build_with(d, W8Build::OneByOne),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("relgraph, insert_kind_all, no reserve", |b| {
        b.iter_batched(
            || data.clone(),
            |d| rg_w8_build_with(d, W8Build::Bulk),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("baseline", |b| {
        b.iter_batched(|| data.clone(), base_w8_build, BatchSize::PerIteration)
    });
    g.finish();

    let rg = rg_w8_build(data.clone());
    let base = base_w8_build(data.clone());
    let mut g = config(c, "W8 polymorphic query");
    g.bench_function("relgraph", |b| {
        b.iter(|| rg_w8_query(black_box(&rg), &data.samples))
    });
    g.bench_function("relgraph, per kind", |b| {
        b.iter(|| rg_w8_query_per_kind(black_box(&rg), &data.samples))
    });
    g.bench_function("baseline", |b| {
        b.iter(|| base_w8_query(black_box(&base), &data.samples))
    });
    g.finish();

    // the email part alone: a user's notifications of one kind
    let mut g = config(c, "W8 emails of a user");
    g.bench_function("relgraph, downcast per child", |b| {
        b.iter(|| rg_w8_emails_downcast(black_box(&rg), &data.samples))
    });
    g.bench_function("relgraph, children_of_kind", |b| {
        b.iter(|| rg_w8_emails_per_kind(black_box(&rg), &data.samples))
    });
    g.bench_function("baseline", |b| {
        b.iter(|| base_w8_emails(black_box(&base), &data.samples))
    });
    g.finish();

    // the same SMS sum, by kind (touches only SMS rows) and by a scan of the base
    let mut g = config(c, "W8 by kind vs by base");
    g.bench_function("by kind", |b| {
        b.iter(|| {
            black_box(&rg)
                .store
                .iter::<Sms>()
                .map(|(_, s)| s.phone.len())
                .sum::<usize>()
        })
    });
    g.bench_function("by base scan", |b| {
        b.iter(|| rg_w8_scan_base(black_box(&rg)))
    });
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    let scale = Scale::from_env(1.0);
    let (blog, school) = (BlogData::new(&scale), SchoolData::new(&scale));
    let rg = rg_w9_state(blog.clone(), school.clone());
    let base = base_w9_state(blog, school);
    let (rg_bytes, base_bytes) = (rg_w9_save(&rg), base_w9_save(&base));
    let sum = rg_w9_checksum(&rg);
    assert_eq!(sum, base_w9_checksum(&base), "W9 checksums differ");
    assert_eq!(rg_w9_checksum(&rg_w9_load(&rg_bytes)), sum, "W9 load");
    eprintln!(
        "W9 bytes: relgraph {} baseline {} ratio {:.3}",
        rg_bytes.len(),
        base_bytes.len(),
        rg_bytes.len() as f64 / base_bytes.len() as f64
    );

    let mut g = config(c, "W9 save");
    g.bench_function("relgraph", |b| b.iter(|| rg_w9_save(black_box(&rg)).len()));
    g.bench_function("baseline", |b| {
        b.iter(|| base_w9_save(black_box(&base)).len())
    });
    g.finish();

    let mut g = config(c, "W9 load");
    g.bench_function("relgraph", |b| {
        b.iter_with_large_drop(|| rg_w9_load(black_box(&rg_bytes)))
    });
    g.bench_function("baseline", |b| {
        b.iter_with_large_drop(|| base_w9_load(black_box(&base_bytes)))
    });
    g.finish();
}

criterion_group!(benches, blog, school, org, notifications, snapshot);
criterion_main!(benches);
