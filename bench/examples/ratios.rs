//! A quick, interleaved comparison of relgraph and the baseline on the benchmark
//! workloads: each round runs relgraph then the baseline (alternating which goes first),
//! and the median of the rounds is reported as a ratio, with the ratio of the best times
//! of each. Coarser than the criterion
//! benchmarks, but far quicker, and robust to a noisy neighbour because both systems share
//! each round.
//!
//! `cargo run --release -p relgraph-bench --example ratios -- [ROUNDS] [WORKLOAD...]`;
//! `RELGRAPH_SCALE` scales the sizes (default 1.0).

use std::hint::black_box;
use std::time::{Duration, Instant};

use relgraph_bench::*;

fn time<R>(f: impl FnOnce() -> R) -> (Duration, R) {
    let t = Instant::now();
    let r = black_box(f());
    (t.elapsed(), r)
}

/// Times `f` on a clone of `data` (made before the clock starts); the state `f` returns
/// is dropped after the clock stops.
fn build<D: Clone, S>(data: &D, f: impl FnOnce(D) -> (S, u64)) -> (Duration, u64) {
    let data = data.clone();
    let (t, (state, sum)) = time(|| f(data));
    drop(state);
    (t, sum)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `rounds` rounds of (relgraph, baseline); each closure returns (time, checksum).
fn compare(
    name: &str,
    rounds: usize,
    mut rg: impl FnMut() -> (Duration, u64),
    mut base: impl FnMut() -> (Duration, u64),
) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (ra, rb) = if round % 2 == 0 {
            let x = rg();
            (x, base())
        } else {
            let y = base();
            (rg(), y)
        };
        assert_eq!(ra.1, rb.1, "{name}: checksums differ");
        a.push(ra.0);
        b.push(rb.0);
    }
    let best = |v: &[Duration]| v.iter().min().copied().expect("one round at least");
    let (ba, bb) = (best(&a), best(&b));
    let (ma, mb) = (median(a), median(b));
    println!(
        "{name:<18} relgraph {:>10.3?}  baseline {:>10.3?}  ratio {:.2}  (best of {rounds}: {:.2})",
        ma,
        mb,
        ma.as_secs_f64() / mb.as_secs_f64(),
        ba.as_secs_f64() / bb.as_secs_f64()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(7);
    let only: Vec<String> = args.collect();
    let want = |w: &str| only.is_empty() || only.iter().any(|o| o == w);
    let scale = Scale::from_env(1.0);

    if [
        "W1", "W1each", "W1user", "W1child", "W2", "W3", "W3user", "W3view", "W4", "W7",
    ]
    .iter()
    .any(|w| want(w))
    {
        let d = BlogData::new(&scale);
        if want("W1") {
            compare("W1", rounds, || build(&d, rg_w1), || build(&d, base_w1));
        }
        if want("W1each") {
            compare(
                "W1 one by one",
                rounds,
                || build(&d, rg_w1_each),
                || build(&d, base_w1),
            );
        }
        if want("W1user") {
            compare(
                "W1 user, no reserve",
                rounds,
                || build(&d, rg_w1_user),
                || build(&d, base_w1),
            );
            // against the baseline written the same way (nothing sized up front)
            compare(
                "W1 user, both",
                rounds,
                || build(&d, rg_w1_user),
                || build(&d, base_w1_user),
            );
        }
        if want("W1child") {
            compare(
                "W1 insert_child",
                rounds,
                || build(&d, rg_w1_child),
                || build(&d, base_w1_user),
            );
        }
        let rg = rg_w1(d.clone()).0;
        let base = base_w1(d.clone()).0;
        if want("W2") {
            compare(
                "W2",
                rounds * 3,
                || time(|| rg_w2(&rg)),
                || time(|| base_w2(&base)),
            );
        }
        if want("W3") {
            compare(
                "W3",
                rounds * 3,
                || time(|| rg_w3(&rg, &d.shuffled)),
                || time(|| base_w3(&base, &d.shuffled)),
            );
        }
        if want("W3view") {
            compare(
                "W3 parents view",
                rounds * 3,
                || time(|| rg_w3_view(&rg, &d.shuffled)),
                || time(|| base_w3(&base, &d.shuffled)),
            );
        }
        if want("W3user") {
            compare(
                "W3 parent_row",
                rounds * 3,
                || time(|| rg_w3_user(&rg, &d.shuffled)),
                || time(|| base_w3(&base, &d.shuffled)),
            );
        }
        drop((rg, base));
        if want("W4") {
            compare(
                "W4",
                rounds,
                || {
                    let mut s = rg_w1(d.clone()).0;
                    time(|| rg_w4(&mut s, &d.moves))
                },
                || {
                    let mut s = base_w1(d.clone()).0;
                    time(|| base_w4(&mut s, &d.moves))
                },
            );
        }
        if want("W7") {
            compare(
                "W7",
                rounds,
                || {
                    let mut s = rg_w1(d.clone()).0;
                    time(|| rg_w7(&mut s, &d.deletes))
                },
                || {
                    let mut s = base_w1(d.clone()).0;
                    time(|| base_w7(&mut s, &d.deletes))
                },
            );
        }
    }
    if want("W5") {
        let d = SchoolData::new(&scale);
        compare("W5", rounds, || build(&d, rg_w5), || build(&d, base_w5));
        compare(
            "W5 one by one",
            rounds,
            || build(&d, rg_w5_each),
            || build(&d, base_w5),
        );
        compare(
            "W5 bulk",
            rounds,
            || build(&d, rg_w5_bulk),
            || build(&d, base_w5),
        );
    }
    if want("W6") {
        let d = OrgData::new(&scale);
        let rg = rg_w6_build(d.clone());
        let base = base_w6_build(d.clone());
        compare(
            "W6",
            rounds * 3,
            || time(|| rg_w6(&rg, &d.samples)),
            || time(|| base_w6(&base, &d.samples)),
        );
        drop((rg, base));
        // the whole of W6 as a user writes it: built in bulk, then walked
        let samples = &d.samples;
        compare(
            "W6 whole, bulk",
            rounds,
            || {
                build(&d, |d| {
                    let s = rg_w6_build_with(d, W6Build::Bulk);
                    let sum = rg_w6(&s, samples);
                    (s, sum)
                })
            },
            || {
                build(&d, |d| {
                    let s = base_w6_build(d);
                    let sum = base_w6(&s, samples);
                    (s, sum)
                })
            },
        );
        // the builds; checksum: the number of links
        for (name, how) in [
            ("W6 build tuned", W6Build::Tuned),
            ("W6 build each", W6Build::OneByOne),
            ("W6 build bulk", W6Build::Bulk),
        ] {
            compare(
                name,
                rounds,
                || {
                    build(&d, |d| {
                        let s = rg_w6_build_with(d, how);
                        let n = s.store.link_count(s.reports) as u64;
                        (s, n)
                    })
                },
                || {
                    build(&d, |d| {
                        let s = base_w6_build(d);
                        let n = s.parent.len() as u64;
                        (s, n)
                    })
                },
            );
        }
    }
    if want("W8") {
        let d = NotifData::new(&scale);
        for (name, how) in [
            ("W8 build", W8Build::Tuned),
            ("W8 build each", W8Build::OneByOne),
            ("W8 build bulk", W8Build::Bulk),
        ] {
            compare(
                name,
                rounds,
                || {
                    build(&d, |d| {
                        let s = rg_w8_build_with(d, how);
                        let n = s.users.len() as u64;
                        (s, n)
                    })
                },
                || {
                    build(&d, |d| {
                        let s = base_w8_build(d);
                        let n = s.ukeys.len() as u64;
                        (s, n)
                    })
                },
            );
        }
        let rg = rg_w8_build(d.clone());
        let base = base_w8_build(d.clone());
        compare(
            "W8 query",
            rounds * 3,
            || time(|| rg_w8_query(&rg, &d.samples)),
            || time(|| base_w8_query(&base, &d.samples)),
        );
        compare(
            "W8 query per kind",
            rounds * 3,
            || time(|| rg_w8_query_per_kind(&rg, &d.samples)),
            || time(|| base_w8_query(&base, &d.samples)),
        );
        compare(
            "W8 emails downcast",
            rounds * 3,
            || time(|| rg_w8_emails_downcast(&rg, &d.samples)),
            || time(|| base_w8_emails(&base, &d.samples)),
        );
        compare(
            "W8 emails per kind",
            rounds * 3,
            || time(|| rg_w8_emails_per_kind(&rg, &d.samples)),
            || time(|| base_w8_emails(&base, &d.samples)),
        );
        drop((rg, base));
        let bulk = rg_w8_build_with(d.clone(), W8Build::Bulk);
        let base = base_w8_build(d.clone());
        compare(
            "W8 bulk, per kind",
            rounds * 3,
            || time(|| rg_w8_query_per_kind(&bulk, &d.samples)),
            || time(|| base_w8_query(&base, &d.samples)),
        );
    }
    if want("W9") {
        let (blog, school) = (BlogData::new(&scale), SchoolData::new(&scale));
        let rg = rg_w9_state(blog.clone(), school.clone());
        let base = base_w9_state(blog, school);
        let (rb, bb) = (rg_w9_save(&rg), base_w9_save(&base));
        println!(
            "W9 bytes       relgraph {} baseline {} ratio {:.2}",
            rb.len(),
            bb.len(),
            rb.len() as f64 / bb.len() as f64
        );
        compare(
            "W9 save",
            rounds,
            || (time(|| rg_w9_save(&rg)).0, 0),
            || (time(|| base_w9_save(&base)).0, 0),
        );
        compare(
            "W9 load",
            rounds,
            || {
                let (t, s) = time(|| rg_w9_load(&rb));
                let sum = rg_w9_checksum(&s);
                drop(s);
                (t, sum)
            },
            || {
                let (t, s) = time(|| base_w9_load(&bb));
                let sum = base_w9_checksum(&s);
                drop(s);
                (t, sum)
            },
        );
    }
}
