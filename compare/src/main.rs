//! The benchmark workloads W1-W8 (WORKLOADS.md) on SQLite in memory against the
//! hand-written baseline of relgraph-bench (`bench/src/lib.rs`): the same fixed-seed data,
//! in the same process, the two systems timed in turn over a few rounds. Every round checks that
//! SQLite computes the baseline's checksum. Prints a markdown table of the medians and
//! their ratio (SQLite time / baseline time).
//!
//! ```text
//! cargo run --release -p relgraph-compare                  # full size, 3 rounds
//! RELGRAPH_SCALE=0.1 cargo run --release -p relgraph-compare -- --rounds 5
//! ```
//!
//! Building data and the untimed starting states, and dropping the final ones, happen
//! outside the timed regions, as in the criterion benchmarks.

mod sqlite;

use std::time::{Duration, Instant};

use relgraph_bench::*;

/// One round of one system: its time and its checksum.
type Round = (Duration, u64);

/// Times `f` alone; `f` returns its final state (dropped after the clock stops) and its
/// checksum.
fn timed<S>(f: impl FnOnce() -> (S, u64)) -> Round {
    let start = Instant::now();
    let (state, sum) = f();
    let elapsed = start.elapsed();
    drop(state);
    (elapsed, sum)
}

/// One table row: the medians of both systems over the rounds.
struct Row {
    name: String,
    sqlite: Duration,
    baseline: Duration,
}

/// Runs `rounds` rounds, baseline then SQLite in each, and asserts every checksum equals
/// the first baseline's.
fn measure(
    name: String,
    rounds: usize,
    mut baseline: impl FnMut() -> Round,
    mut sqlite: impl FnMut() -> Round,
) -> Row {
    let (mut base_times, mut sqlite_times) = (Vec::new(), Vec::new());
    let mut expected = None;
    for round in 1..=rounds {
        let (base_time, base_sum) = baseline();
        let (sqlite_time, sqlite_sum) = sqlite();
        let expected = *expected.get_or_insert(base_sum);
        assert_eq!(base_sum, expected, "{name}: baseline checksum changed");
        assert_eq!(sqlite_sum, expected, "{name}: SQLite checksum differs");
        eprintln!(
            "{name}, round {round}: SQLite {}, baseline {} (checksum {expected})",
            show(sqlite_time),
            show(base_time)
        );
        base_times.push(base_time);
        sqlite_times.push(sqlite_time);
    }
    Row {
        name,
        sqlite: median(sqlite_times),
        baseline: median(base_times),
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    let mid = times.len() / 2;
    if times.len() % 2 == 1 {
        times[mid]
    } else {
        (times[mid - 1] + times[mid]) / 2
    }
}

fn show(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    match ms {
        ms if ms >= 1e4 => format!("{:.1} s", ms / 1e3),
        ms if ms >= 1e3 => format!("{:.2} s", ms / 1e3),
        ms if ms >= 100.0 => format!("{ms:.0} ms"),
        ms if ms >= 10.0 => format!("{ms:.1} ms"),
        ms => format!("{ms:.2} ms"),
    }
}

fn ratio(r: &Row) -> String {
    let x = r.sqlite.as_secs_f64() / r.baseline.as_secs_f64();
    match x {
        x if x >= 100.0 => format!("{x:.0}"),
        x if x >= 10.0 => format!("{x:.1}"),
        x => format!("{x:.2}"),
    }
}

/// A count as the workload table writes it: 100k, 1M.
fn count(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn sqlite<T>(r: rusqlite::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("SQLite: {e}"))
}

/// W1-W4 and W7 on the blog data.
fn blog(s: &Scale, rounds: usize) -> Vec<Row> {
    let data = BlogData::new(s);
    let mut rows = Vec::new();
    rows.push(measure(
        format!(
            "W1 build: {} users, {} posts linked",
            count(s.users),
            count(s.posts)
        ),
        rounds,
        || {
            let d = data.clone();
            timed(|| base_w1(d))
        },
        || timed(|| sqlite(sqlite::w1(&data))),
    ));

    let (base, _) = base_w1(data.clone());
    let (db, _) = sqlite(sqlite::w1(&data));
    rows.push(measure(
        "W2 every user's posts, sum scores".into(),
        rounds,
        || timed(|| ((), base_w2(&base))),
        || timed(|| ((), sqlite(sqlite::w2(&db, data.users.len())))),
    ));
    rows.push(measure(
        "W3 every post's author, shuffled".into(),
        rounds,
        || timed(|| ((), base_w3(&base, &data.shuffled))),
        || timed(|| ((), sqlite(sqlite::w3(&db, &data.shuffled)))),
    ));
    drop((base, db));

    rows.push(measure(
        format!("W4 move {} posts to other users", count(s.moves)),
        rounds,
        || {
            let (mut b, _) = base_w1(data.clone());
            timed(|| {
                let sum = base_w4(&mut b, &data.moves);
                (b, sum)
            })
        },
        || {
            let (mut db, _) = sqlite(sqlite::w1(&data));
            timed(|| {
                let sum = sqlite(sqlite::w4(&mut db, &data.moves, data.posts.len()));
                (db, sum)
            })
        },
    ));
    rows.push(measure(
        format!(
            "W7 delete {} users, cascading to their posts",
            count(data.deletes.len())
        ),
        rounds,
        || {
            let (mut b, _) = base_w1(data.clone());
            timed(|| {
                let sum = base_w7(&mut b, &data.deletes);
                (b, sum)
            })
        },
        || {
            let (mut db, _) = sqlite(sqlite::w1(&data));
            timed(|| {
                let sum = sqlite(sqlite::w7(&mut db, &data.deletes));
                (db, sum)
            })
        },
    ));
    rows
}

fn school(s: &Scale, rounds: usize) -> Row {
    let data = SchoolData::new(s);
    let links: usize = data.enrollments.iter().map(Vec::len).sum();
    measure(
        format!(
            "W5 many-to-many: {} graded links, queries, {} unlinks",
            count(links),
            count(data.unlinks.len())
        ),
        rounds,
        || {
            let d = data.clone();
            timed(|| base_w5(d))
        },
        || timed(|| sqlite(sqlite::w5(&data))),
    )
}

fn org(s: &Scale, rounds: usize) -> Row {
    let data = OrgData::new(s);
    let base = base_w6_build(data.clone());
    let db = sqlite(sqlite::w6_build(&data));
    measure(
        format!(
            "W6 tree of {}: all descendants, {} depths",
            count(s.employees),
            count(s.depth_samples)
        ),
        rounds,
        || timed(|| ((), base_w6(&base, &data.samples))),
        || timed(|| ((), sqlite(sqlite::w6(&db, &data.samples)))),
    )
}

fn notifications(s: &Scale, rounds: usize) -> Vec<Row> {
    let data = NotifData::new(s);
    // the build's checksum is the query's over the state it built (untimed)
    let build = measure(
        format!(
            "W8 build {} notifications of 3 kinds",
            count(s.notifications)
        ),
        rounds,
        || {
            let d = data.clone();
            let start = Instant::now();
            let n = base_w8_build(d);
            let elapsed = start.elapsed();
            (elapsed, base_w8_query(&n, &data.samples))
        },
        || {
            let start = Instant::now();
            let db = sqlite(sqlite::w8_build(&data));
            let elapsed = start.elapsed();
            (elapsed, sqlite(sqlite::w8_query(&db, &data.samples)))
        },
    );
    let base = base_w8_build(data.clone());
    let db = sqlite(sqlite::w8_build(&data));
    let query = measure(
        format!(
            "W8 query: SMS rows, {} users' emails",
            count(s.inbox_samples)
        ),
        rounds,
        || timed(|| ((), base_w8_query(&base, &data.samples))),
        || timed(|| ((), sqlite(sqlite::w8_query(&db, &data.samples)))),
    );
    vec![build, query]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut rounds = 3;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|n| n.parse().ok())) {
            ("--rounds", Some(n)) if n > 0 => rounds = n,
            _ => {
                eprintln!(
                    "usage: relgraph-compare [--rounds N]  (RELGRAPH_SCALE=F scales the data)"
                );
                std::process::exit(2);
            }
        }
    }
    // as Scale::from_env(1.0), keeping the factor to print it
    let factor: f64 = std::env::var("RELGRAPH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let scale = Scale::new(factor);
    let started = Instant::now();

    let mut rows = blog(&scale, rounds);
    rows.insert(4, school(&scale, rounds));
    rows.insert(5, org(&scale, rounds));
    rows.extend(notifications(&scale, rounds));

    println!(
        "SQLite {} in memory (rusqlite, bundled) against the hand-written baseline; \
         scale {factor}, median of {rounds} interleaved rounds; ratio = SQLite / baseline; \
         every round's checksums equal",
        rusqlite::version()
    );
    println!();
    println!("| workload | SQLite | baseline | ratio |");
    println!("|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} |",
            r.name,
            show(r.sqlite),
            show(r.baseline),
            ratio(r)
        );
    }
    println!();
    println!("whole run: {}", show(started.elapsed()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every workload at a tiny size, whatever RELGRAPH_SCALE says.
    fn scale() -> Scale {
        Scale::new(0.01)
    }

    #[test]
    fn sqlite_computes_the_baseline_checksum_of_every_blog_workload() {
        let data = BlogData::new(&scale());
        let (mut base, base1) = base_w1(data.clone());
        let (mut db, sqlite1) = sqlite::w1(&data).unwrap();
        assert!(base1 > 0);
        assert_eq!(sqlite1, base1, "W1");
        let users = data.users.len();
        assert_eq!(sqlite::w2(&db, users).unwrap(), base_w2(&base), "W2");
        let shuffled = &data.shuffled;
        assert_eq!(
            sqlite::w3(&db, shuffled).unwrap(),
            base_w3(&base, shuffled),
            "W3"
        );
        let posts = data.posts.len();
        assert_eq!(
            sqlite::w4(&mut db, &data.moves, posts).unwrap(),
            base_w4(&mut base, &data.moves),
            "W4"
        );
        let (mut base, _) = base_w1(data.clone());
        let (mut db, _) = sqlite::w1(&data).unwrap();
        let left = base_w7(&mut base, &data.deletes);
        assert!(left < posts as u64);
        assert_eq!(sqlite::w7(&mut db, &data.deletes).unwrap(), left, "W7");
    }

    #[test]
    fn sqlite_computes_the_baseline_checksum_of_the_many_to_many_workload() {
        let data = SchoolData::new(&scale());
        assert!(!data.unlinks.is_empty());
        assert_eq!(sqlite::w5(&data).unwrap().1, base_w5(data).1, "W5");
    }

    #[test]
    fn sqlite_computes_the_baseline_checksum_of_the_tree_workload() {
        let data = OrgData::new(&scale());
        let base = base_w6(&base_w6_build(data.clone()), &data.samples);
        let descendants = data.employees.len() as u64 - 1;
        assert!(base > descendants * 1_000_003, "some sampled depth");
        let db = sqlite::w6_build(&data).unwrap();
        assert_eq!(sqlite::w6(&db, &data.samples).unwrap(), base, "W6");
    }

    #[test]
    fn sqlite_computes_the_baseline_checksum_of_the_polymorphic_workload() {
        let data = NotifData::new(&scale());
        let base = base_w8_query(&base_w8_build(data.clone()), &data.samples);
        assert!(base > 0);
        let db = sqlite::w8_build(&data).unwrap();
        assert_eq!(sqlite::w8_query(&db, &data.samples).unwrap(), base, "W8");
    }

    #[test]
    fn medians_of_odd_and_even_rounds() {
        let ms = Duration::from_millis;
        assert_eq!(median(vec![ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(
            median(vec![ms(4), ms(1), ms(2), ms(3)]),
            Duration::from_micros(2500)
        );
    }
}
