//! The benchmark workloads W1-W8 and W10 (WORKLOADS.md) on SQLite in memory, petgraph
//! (`StableGraph`) and bevy_ecs (relationships) against the hand-written baseline of
//! relgraph-bench (`bench/src/lib.rs`): the same fixed-seed data, in the same process,
//! the systems timed in turn over a few rounds (the order rotating from round to round).
//! Every round checks that each system computes the baseline's checksum. Prints a markdown
//! table of each system's best round and its ratio to the baseline's best (system time /
//! baseline time), then W10: the peak resident memory of building and holding the W1
//! state, each system in a process of its own.
//!
//! ```text
//! cargo run --release -p relgraph-compare                 # full size, best of 3
//! cargo run --release -p relgraph-compare -- --rounds 5 --engines petgraph,bevy W1 W3
//! RELGRAPH_SCALE=0.1 cargo run --release -p relgraph-compare
//! ```
//!
//! Building data and the untimed starting states, and dropping the final ones, happen
//! outside the timed regions, as in the criterion benchmarks.

mod ecs;
mod graph;
mod sqlite;

use std::process::Command;
use std::time::{Duration, Instant};

use relgraph_bench::*;

/// One round of one system: its time and its checksum.
type Round = (Duration, u64);

/// One system's timed run of one workload.
type Run<'a> = Box<dyn FnMut() -> Round + 'a>;

/// A system compared with the baseline.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Baseline,
    Sqlite,
    Petgraph,
    Bevy,
}

impl Engine {
    /// The systems compared with the baseline, in the table's order.
    const OTHERS: [Engine; 3] = [Engine::Sqlite, Engine::Petgraph, Engine::Bevy];

    /// As the table heads it.
    fn title(self) -> &'static str {
        match self {
            Engine::Baseline => "baseline",
            Engine::Sqlite => "SQLite",
            Engine::Petgraph => "petgraph",
            Engine::Bevy => "bevy_ecs",
        }
    }

    /// As `--engines` and `--memory` name it.
    fn arg(self) -> &'static str {
        match self {
            Engine::Baseline => "baseline",
            Engine::Sqlite => "sqlite",
            Engine::Petgraph => "petgraph",
            Engine::Bevy => "bevy",
        }
    }

    fn from_arg(s: &str) -> Option<Engine> {
        [Engine::Baseline]
            .into_iter()
            .chain(Engine::OTHERS)
            .find(|e| e.arg() == s)
    }
}

/// Times `f` alone; `f` returns its final state (dropped after the clock stops) and its
/// checksum.
fn timed<S>(f: impl FnOnce() -> (S, u64)) -> Round {
    let start = Instant::now();
    let (state, sum) = f();
    let elapsed = start.elapsed();
    drop(state);
    (elapsed, sum)
}

/// Times `f` on a clone of `data` made before the clock starts.
fn build<D: Clone, S>(data: &D, f: impl FnOnce(D) -> (S, u64)) -> Round {
    let data = data.clone();
    timed(|| f(data))
}

/// The baseline's entry of a workload.
fn baseline<'a>(run: impl FnMut() -> Round + 'a) -> (Engine, Option<Run<'a>>) {
    (Engine::Baseline, Some(Box::new(run)))
}

/// One table row: each system's best round, the baseline's first.
struct Row {
    name: String,
    best: Vec<(Engine, Duration)>,
}

/// What to run: the rounds, the systems besides the baseline, the workloads.
struct Bench {
    rounds: usize,
    engines: Vec<Engine>,
    only: Vec<String>,
}

impl Bench {
    fn on(&self, e: Engine) -> bool {
        self.engines.contains(&e)
    }

    /// Whether workload `w` ("W1" ... "W10") is to run.
    fn want(&self, w: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == w)
    }

    /// `run` as system `e`'s entry when `e` is to run.
    fn when<'a>(&self, e: Engine, run: impl FnMut() -> Round + 'a) -> (Engine, Option<Run<'a>>) {
        (e, self.on(e).then(|| Box::new(run) as Run<'a>))
    }

    /// Runs `self.rounds` rounds of every system in `runs` (the baseline first in the
    /// list, the order rotating each round) and asserts every checksum equals the first
    /// baseline's; keeps each system's best round.
    fn measure(&self, name: String, runs: Vec<(Engine, Option<Run<'_>>)>) -> Row {
        let mut runs: Vec<(Engine, Run<'_>)> = runs
            .into_iter()
            .filter_map(|(e, r)| Some((e, r?)))
            .collect();
        assert_eq!(runs[0].0, Engine::Baseline);
        let mut best: Vec<Option<Duration>> = vec![None; runs.len()];
        let mut expected = None;
        for round in 0..self.rounds {
            let mut line = format!("{name}, round {}:", round + 1);
            for k in 0..runs.len() {
                let at = (k + round) % runs.len();
                let (engine, run) = &mut runs[at];
                let (time, sum) = run();
                let expected = *expected.get_or_insert(sum);
                assert_eq!(sum, expected, "{name}: {} checksum differs", engine.title());
                line += &format!(" {} {}", engine.title(), show(time));
                best[at] = Some(best[at].map_or(time, |b| b.min(time)));
            }
            eprintln!("{line} (checksum {})", expected.unwrap_or_default());
        }
        Row {
            name,
            best: runs
                .iter()
                .zip(best)
                .map(|((e, _), b)| (*e, b.expect("at least one round")))
                .collect(),
        }
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

fn ratio(x: f64) -> String {
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
fn blog(b: &Bench, s: &Scale) -> Vec<Row> {
    use Engine::*;
    let data = BlogData::new(s);
    let mut rows = Vec::new();
    if b.want("W1") {
        let name = format!(
            "W1 build: {} users, {} posts linked",
            count(s.users),
            count(s.posts)
        );
        rows.push(b.measure(
            name,
            vec![
                baseline(|| build(&data, base_w1)),
                b.when(Sqlite, || timed(|| sqlite(sqlite::w1(&data)))),
                b.when(Petgraph, || build(&data, graph::w1)),
                b.when(Bevy, || build(&data, ecs::w1)),
            ],
        ));
    }

    if b.want("W2") || b.want("W3") {
        let base = base_w1(data.clone()).0;
        let db = b.on(Sqlite).then(|| sqlite(sqlite::w1(&data)).0);
        let pg = b.on(Petgraph).then(|| graph::w1(data.clone()).0);
        let mut ev = b.on(Bevy).then(|| ecs::w1(data.clone()).0);
        let users = data.users.len();
        if b.want("W2") {
            rows.push(b.measure(
                "W2 every user's posts, sum scores".into(),
                vec![
                    baseline(|| timed(|| ((), base_w2(&base)))),
                    b.when(Sqlite, || {
                        let db = db.as_ref().expect("built");
                        timed(|| ((), sqlite(sqlite::w2(db, users))))
                    }),
                    b.when(Petgraph, || {
                        timed(|| ((), graph::w2(pg.as_ref().expect("built"))))
                    }),
                    b.when(Bevy, || {
                        timed(|| ((), ecs::w2(ev.as_mut().expect("built"))))
                    }),
                ],
            ));
        }
        if b.want("W3") {
            let sh = &data.shuffled;
            rows.push(b.measure(
                "W3 every post's author, shuffled".into(),
                vec![
                    baseline(|| timed(|| ((), base_w3(&base, sh)))),
                    b.when(Sqlite, || {
                        let db = db.as_ref().expect("built");
                        timed(|| ((), sqlite(sqlite::w3(db, sh))))
                    }),
                    b.when(Petgraph, || {
                        timed(|| ((), graph::w3(pg.as_ref().expect("built"), sh)))
                    }),
                    b.when(Bevy, || {
                        timed(|| ((), ecs::w3(ev.as_mut().expect("built"), sh)))
                    }),
                ],
            ));
        }
    }

    if b.want("W4") {
        let (moves, posts) = (&data.moves, data.posts.len());
        rows.push(b.measure(
            format!("W4 move {} posts to other users", count(s.moves)),
            vec![
                baseline(|| {
                    let (mut st, _) = base_w1(data.clone());
                    timed(|| {
                        let sum = base_w4(&mut st, moves);
                        (st, sum)
                    })
                }),
                b.when(Sqlite, || {
                    let (mut db, _) = sqlite(sqlite::w1(&data));
                    timed(|| {
                        let sum = sqlite(sqlite::w4(&mut db, moves, posts));
                        (db, sum)
                    })
                }),
                b.when(Petgraph, || {
                    let (mut st, _) = graph::w1(data.clone());
                    timed(|| {
                        let sum = graph::w4(&mut st, moves);
                        (st, sum)
                    })
                }),
                b.when(Bevy, || {
                    let (mut st, _) = ecs::w1(data.clone());
                    timed(|| {
                        let sum = ecs::w4(&mut st, moves);
                        (st, sum)
                    })
                }),
            ],
        ));
    }
    if b.want("W7") {
        let deletes = &data.deletes;
        rows.push(b.measure(
            format!(
                "W7 delete {} users, cascading to their posts",
                count(deletes.len())
            ),
            vec![
                baseline(|| {
                    let (mut st, _) = base_w1(data.clone());
                    timed(|| {
                        let sum = base_w7(&mut st, deletes);
                        (st, sum)
                    })
                }),
                b.when(Sqlite, || {
                    let (mut db, _) = sqlite(sqlite::w1(&data));
                    timed(|| {
                        let sum = sqlite(sqlite::w7(&mut db, deletes));
                        (db, sum)
                    })
                }),
                b.when(Petgraph, || {
                    let (mut st, _) = graph::w1(data.clone());
                    timed(|| {
                        let sum = graph::w7(&mut st, deletes);
                        (st, sum)
                    })
                }),
                b.when(Bevy, || {
                    let (mut st, _) = ecs::w1(data.clone());
                    timed(|| {
                        let sum = ecs::w7(&mut st, deletes);
                        (st, sum)
                    })
                }),
            ],
        ));
    }
    rows
}

fn school(b: &Bench, s: &Scale) -> Row {
    use Engine::*;
    let data = SchoolData::new(s);
    let links: usize = data.enrollments.iter().map(Vec::len).sum();
    b.measure(
        format!(
            "W5 many-to-many: {} graded links, queries, {} unlinks",
            count(links),
            count(data.unlinks.len())
        ),
        vec![
            baseline(|| build(&data, base_w5)),
            b.when(Sqlite, || timed(|| sqlite(sqlite::w5(&data)))),
            b.when(Petgraph, || build(&data, graph::w5)),
            b.when(Bevy, || build(&data, ecs::w5)),
        ],
    )
}

fn org(b: &Bench, s: &Scale) -> Vec<Row> {
    use Engine::*;
    let data = OrgData::new(s);
    let samples = &data.samples;
    // the build's checksum is the walks' over the tree it built (untimed)
    let build_row = b.measure(
        format!("W6 build a tree of {}", count(s.employees)),
        vec![
            baseline(|| build_then(&data, base_w6_build, |o| base_w6(o, samples))),
            b.when(Sqlite, || {
                build_then(
                    &data,
                    |d| sqlite(sqlite::w6_build(&d)),
                    |db| sqlite(sqlite::w6(db, samples)),
                )
            }),
            b.when(Petgraph, || {
                build_then(&data, graph::w6_build, |o| graph::w6(o, samples))
            }),
            b.when(Bevy, || {
                build_then(&data, ecs::w6_build, |o| ecs::w6(o, samples))
            }),
        ],
    );
    let base = base_w6_build(data.clone());
    let db = b.on(Sqlite).then(|| sqlite(sqlite::w6_build(&data)));
    let pg = b.on(Petgraph).then(|| graph::w6_build(data.clone()));
    let mut ev = b.on(Bevy).then(|| ecs::w6_build(data.clone()));
    let walks = b.measure(
        format!(
            "W6 tree of {}: all descendants, {} depths",
            count(s.employees),
            count(s.depth_samples)
        ),
        vec![
            baseline(|| timed(|| ((), base_w6(&base, samples)))),
            b.when(Sqlite, || {
                let db = db.as_ref().expect("built");
                timed(|| ((), sqlite(sqlite::w6(db, samples))))
            }),
            b.when(Petgraph, || {
                timed(|| ((), graph::w6(pg.as_ref().expect("built"), samples)))
            }),
            b.when(Bevy, || {
                timed(|| ((), ecs::w6(ev.as_mut().expect("built"), samples)))
            }),
        ],
    );
    vec![build_row, walks]
}

/// Times `f` on a clone of `data`; the checksum is `check`'s over the state `f` built,
/// taken after the clock stops.
fn build_then<D: Clone, S>(
    data: &D,
    f: impl FnOnce(D) -> S,
    check: impl FnOnce(&mut S) -> u64,
) -> Round {
    let data = data.clone();
    let start = Instant::now();
    let mut state = f(data);
    let elapsed = start.elapsed();
    (elapsed, check(&mut state))
}

fn notifications(b: &Bench, s: &Scale) -> Vec<Row> {
    use Engine::*;
    let data = NotifData::new(s);
    let samples = &data.samples;
    // the build's checksum is the query's over the state it built (untimed)
    let build_row = b.measure(
        format!(
            "W8 build {} notifications of 3 kinds",
            count(s.notifications)
        ),
        vec![
            baseline(|| build_then(&data, base_w8_build, |n| base_w8_query(n, samples))),
            b.when(Sqlite, || {
                build_then(
                    &data,
                    |d| sqlite(sqlite::w8_build(&d)),
                    |db| sqlite(sqlite::w8_query(db, samples)),
                )
            }),
            b.when(Petgraph, || {
                build_then(&data, graph::w8_build, |n| graph::w8_query(n, samples))
            }),
            b.when(Bevy, || {
                build_then(&data, ecs::w8_build, |n| ecs::w8_query(n, samples))
            }),
        ],
    );
    let base = base_w8_build(data.clone());
    let db = b.on(Sqlite).then(|| sqlite(sqlite::w8_build(&data)));
    let pg = b.on(Petgraph).then(|| graph::w8_build(data.clone()));
    let mut ev = b.on(Bevy).then(|| ecs::w8_build(data.clone()));
    let query = b.measure(
        format!(
            "W8 query: SMS rows, {} users' emails",
            count(s.inbox_samples)
        ),
        vec![
            baseline(|| timed(|| ((), base_w8_query(&base, samples)))),
            b.when(Sqlite, || {
                let db = db.as_ref().expect("built");
                timed(|| ((), sqlite(sqlite::w8_query(db, samples))))
            }),
            b.when(Petgraph, || {
                timed(|| ((), graph::w8_query(pg.as_ref().expect("built"), samples)))
            }),
            b.when(Bevy, || {
                timed(|| ((), ecs::w8_query(ev.as_mut().expect("built"), samples)))
            }),
        ],
    );
    vec![build_row, query]
}

/// A field of `/proc/self/status` in KiB (Linux only).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `--memory ENGINE`: builds the W1 state on one system in this process and prints
/// `peak KIB growth KIB checksum N` (the peak resident set, VmHWM, and its growth over
/// the resident set that holds the input data), as bench/examples/memory.rs does.
fn memory_child(engine: Engine, scale: &Scale) -> Result<(), String> {
    let data = BlogData::new(scale);
    let before = status_kib("VmRSS:").ok_or("no /proc/self/status")?;
    let sum = match engine {
        Engine::Baseline => {
            let (state, sum) = base_w1(data);
            std::hint::black_box(&state);
            sum
        }
        Engine::Sqlite => {
            let (state, sum) = sqlite(sqlite::w1(&data));
            std::hint::black_box(&state);
            sum
        }
        Engine::Petgraph => {
            let (state, sum) = graph::w1(data);
            std::hint::black_box(&state);
            sum
        }
        Engine::Bevy => {
            let (state, sum) = ecs::w1(data);
            std::hint::black_box(&state);
            sum
        }
    };
    let peak = status_kib("VmHWM:").ok_or("no VmHWM")?;
    println!(
        "peak {peak} growth {} checksum {sum}",
        peak.saturating_sub(before)
    );
    Ok(())
}

/// W10 for one system: (peak KiB, growth KiB, checksum) from a child process.
fn memory_of(engine: Engine) -> Result<(u64, u64, u64), String> {
    let exe = std::env::current_exe().map_err(|e| format!("no executable path: {e}"))?;
    let out = Command::new(exe)
        .args(["--memory", engine.arg()])
        .output()
        .map_err(|e| format!("cannot run the memory probe: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match fields[..] {
        [peak, growth, sum] if out.status.success() => Ok((peak, growth, sum)),
        _ => Err(format!(
            "memory probe of {} failed: {text}{}",
            engine.title(),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// W10 table lines: every system's peak in its own process, and the ratio to the
/// baseline's; the checksums must agree.
fn memory(b: &Bench) -> Result<Vec<String>, String> {
    let (base_peak, base_growth, base_sum) = memory_of(Engine::Baseline)?;
    let mut peaks = format!(
        "| W10 peak memory holding the W1 state | {}",
        mib(base_peak)
    );
    let mut growth = format!(
        "| W10 the same, growth over the input data | {}",
        mib(base_growth)
    );
    for &e in &b.engines {
        let (peak, grown, sum) = memory_of(e)?;
        if sum != base_sum {
            return Err(format!("W10: {} checksum differs", e.title()));
        }
        eprintln!("W10 {}: peak {peak} KiB, growth {grown} KiB", e.title());
        peaks += &format!(
            " | {} | {}",
            mib(peak),
            ratio(peak as f64 / base_peak as f64)
        );
        growth += &format!(
            " | {} | {}",
            mib(grown),
            ratio(grown as f64 / base_growth as f64)
        );
    }
    Ok(vec![peaks + " |", growth + " |"])
}

const USAGE: &str = "usage: relgraph-compare [--rounds N] [--engines sqlite,petgraph,bevy] \
                     [W1 ... W8 W10]  (RELGRAPH_SCALE=F scales the data)";

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut bench = Bench {
        rounds: 3,
        engines: Engine::OTHERS.to_vec(),
        only: Vec::new(),
    };
    // as Scale::from_env(1.0), keeping the factor to print it
    let factor: f64 = std::env::var("RELGRAPH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let scale = Scale::new(factor);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                bench.rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or(USAGE)?;
            }
            "--engines" => {
                let list = args.next().ok_or(USAGE)?;
                bench.engines = list
                    .split(',')
                    .map(|e| Engine::from_arg(e).filter(|&e| e != Engine::Baseline))
                    .collect::<Option<_>>()
                    .ok_or(USAGE)?;
                // the table's order, whatever the list's
                bench.engines = Engine::OTHERS
                    .into_iter()
                    .filter(|e| bench.engines.contains(e))
                    .collect();
            }
            "--memory" => {
                let engine = args.next().and_then(|e| Engine::from_arg(&e));
                return memory_child(engine.ok_or(USAGE)?, &scale);
            }
            w if w.starts_with('W') => bench.only.push(w.to_string()),
            _ => return Err(USAGE.into()),
        }
    }
    let started = Instant::now();

    let mut rows = blog(&bench, &scale);
    // the table in workload order: W1-W4, then W5, W6, W7
    let at = rows.len() - usize::from(bench.want("W7"));
    let mut middle = Vec::new();
    if bench.want("W5") {
        middle.push(school(&bench, &scale));
    }
    if bench.want("W6") {
        middle.extend(org(&bench, &scale));
    }
    rows.splice(at..at, middle);
    if bench.want("W8") {
        rows.extend(notifications(&bench, &scale));
    }
    let memory = if bench.want("W10") {
        memory(&bench)?
    } else {
        Vec::new()
    };

    let names: Vec<&str> = bench.engines.iter().map(|e| e.title()).collect();
    println!(
        "{} against the hand-written baseline (SQLite {} in memory, rusqlite bundled; \
         petgraph StableGraph; bevy_ecs relationships); scale {factor}, best of {} \
         interleaved rounds; ratio = system / baseline; every round's checksums equal",
        names.join(", "),
        rusqlite::version(),
        bench.rounds
    );
    println!();
    let mut head = "| workload | baseline".to_string();
    let mut rule = "|---|---".to_string();
    for name in &names {
        head += &format!(" | {name} | ratio");
        rule += "|---|---";
    }
    println!("{head} |");
    println!("{rule}|");
    for r in &rows {
        let base = r.best[0].1;
        let mut line = format!("| {} | {}", r.name, show(base));
        for (_, t) in &r.best[1..] {
            line += &format!(
                " | {} | {}",
                show(*t),
                ratio(t.as_secs_f64() / base.as_secs_f64())
            );
        }
        println!("{line} |");
    }
    for line in &memory {
        println!("{line}");
    }
    println!();
    println!(
        "W9 (snapshot) is not run here: bevy_ecs saves a world only through bevy_scene and \
         reflection, SQLite through its backup API, petgraph through serde (its serde-1 \
         feature)."
    );
    println!("whole run: {}", show(started.elapsed()));
    Ok(())
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
    fn petgraph_computes_the_baseline_checksum_of_every_workload() {
        let blog = BlogData::new(&scale());
        let (mut base, base1) = base_w1(blog.clone());
        let (mut g, g1) = graph::w1(blog.clone());
        assert!(base1 > 0);
        assert_eq!(g1, base1, "W1");
        assert_eq!(graph::w2(&g), base_w2(&base), "W2");
        let shuffled = &blog.shuffled;
        assert_eq!(graph::w3(&g, shuffled), base_w3(&base, shuffled), "W3");
        let moved = base_w4(&mut base, &blog.moves);
        assert_ne!(moved, base1, "some post moved");
        assert_eq!(graph::w4(&mut g, &blog.moves), moved, "W4");
        let (mut base, _) = base_w1(blog.clone());
        let (mut g, _) = graph::w1(blog.clone());
        let left = base_w7(&mut base, &blog.deletes);
        assert!(left < blog.posts.len() as u64);
        assert_eq!(graph::w7(&mut g, &blog.deletes), left, "W7");

        let school = SchoolData::new(&scale());
        assert_eq!(graph::w5(school.clone()).1, base_w5(school).1, "W5");
        let org = OrgData::new(&scale());
        let tree = base_w6(&base_w6_build(org.clone()), &org.samples);
        let g = graph::w6_build(org.clone());
        assert_eq!(graph::w6(&g, &org.samples), tree, "W6");
        let notif = NotifData::new(&scale());
        let inbox = base_w8_query(&base_w8_build(notif.clone()), &notif.samples);
        let g = graph::w8_build(notif.clone());
        assert_eq!(graph::w8_query(&g, &notif.samples), inbox, "W8");
    }

    #[test]
    fn bevy_ecs_computes_the_baseline_checksum_of_every_workload() {
        let blog = BlogData::new(&scale());
        let (mut base, base1) = base_w1(blog.clone());
        let (mut w, w1) = ecs::w1(blog.clone());
        assert!(base1 > 0);
        assert_eq!(w1, base1, "W1");
        assert_eq!(ecs::w2(&mut w), base_w2(&base), "W2");
        let shuffled = &blog.shuffled;
        assert_eq!(ecs::w3(&mut w, shuffled), base_w3(&base, shuffled), "W3");
        let moved = base_w4(&mut base, &blog.moves);
        assert_ne!(moved, base1, "some post moved");
        assert_eq!(ecs::w4(&mut w, &blog.moves), moved, "W4");
        let (mut base, _) = base_w1(blog.clone());
        let (mut w, _) = ecs::w1(blog.clone());
        let left = base_w7(&mut base, &blog.deletes);
        assert!(left < blog.posts.len() as u64);
        assert_eq!(ecs::w7(&mut w, &blog.deletes), left, "W7");

        let school = SchoolData::new(&scale());
        assert_eq!(ecs::w5(school.clone()).1, base_w5(school).1, "W5");
        let org = OrgData::new(&scale());
        let tree = base_w6(&base_w6_build(org.clone()), &org.samples);
        let mut w = ecs::w6_build(org.clone());
        assert_eq!(ecs::w6(&mut w, &org.samples), tree, "W6");
        let notif = NotifData::new(&scale());
        let inbox = base_w8_query(&base_w8_build(notif.clone()), &notif.samples);
        let mut w = ecs::w8_build(notif.clone());
        assert_eq!(ecs::w8_query(&mut w, &notif.samples), inbox, "W8");
    }

    fn bench() -> Bench {
        Bench {
            rounds: 3,
            engines: vec![Engine::Petgraph],
            only: Vec::new(),
        }
    }

    #[test]
    fn a_row_keeps_each_systems_best_round() {
        let ms = Duration::from_millis;
        let mut base = [ms(5), ms(3), ms(4)].into_iter();
        let mut other = [ms(9), ms(8), ms(7)].into_iter();
        let b = bench();
        let row = b.measure(
            "W0".into(),
            vec![
                baseline(|| (base.next().expect("a round"), 1)),
                b.when(Engine::Petgraph, || (other.next().expect("a round"), 1)),
                b.when(Engine::Bevy, || unreachable!("not selected")),
            ],
        );
        assert_eq!(
            row.best,
            vec![(Engine::Baseline, ms(3)), (Engine::Petgraph, ms(7))]
        );
    }

    #[test]
    #[should_panic(expected = "W0: petgraph checksum differs")]
    fn a_system_whose_checksum_differs_stops_the_run() {
        let b = bench();
        let zero = Duration::ZERO;
        b.measure(
            "W0".into(),
            vec![
                baseline(|| (zero, 1)),
                b.when(Engine::Petgraph, || (zero, 2)),
            ],
        );
    }
}
