//! What the criterion benchmarks share: a group's settings, and the timing of work on a
//! state built afresh for each iteration.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion};

/// A group of 10 samples, half a second of warm-up and `measurement` of timing: the
/// workloads take tens of milliseconds an iteration.
pub fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    measurement: Duration,
) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement);
    g
}

/// Times `work` on a state `build` makes afresh for each iteration (untimed); the state is
/// dropped outside the timing too.
pub fn on_built<S, R>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    build: impl Fn() -> S,
    work: impl Fn(&mut S) -> R,
) {
    g.bench_function(id, |b| {
        b.iter_batched(
            &build,
            |mut s| {
                let r = work(&mut s);
                (s, r)
            },
            BatchSize::PerIteration,
        )
    });
}
