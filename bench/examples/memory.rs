//! W10: peak resident memory holding the W1 state (100,000 users, 1,000,000 posts, each
//! post linked to a random user), for relgraph or for the hand-written baseline, each in
//! its own process so that one does not count the other's memory.
//!
//! Run with `cargo run --release -p relgraph-bench --example memory -- relgraph` (built
//! with the bulk calls), `-- relgraph-each` (one `insert` and `link` at a time, after
//! `reserve`), `-- relgraph-user` (the same without `reserve`) and
//! `-- baseline`; `RELGRAPH_SCALE` scales the sizes.
//! Prints the peak resident set (VmHWM, Linux only) after building, and the growth over
//! the resident set before building (which holds the input data).

use relgraph_bench::*;

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), String> {
    let which = std::env::args().nth(1).unwrap_or_default();
    let scale = Scale::from_env(1.0);
    let data = BlogData::new(&scale);
    let before = status_kib("VmRSS:").ok_or("no /proc/self/status")?;
    let checksum = match which.as_str() {
        "relgraph" => {
            let (state, sum) = rg_w1(data);
            std::hint::black_box(&state);
            sum
        }
        "relgraph-each" => {
            let (state, sum) = rg_w1_each(data);
            std::hint::black_box(&state);
            sum
        }
        "relgraph-user" => {
            let (state, sum) = rg_w1_user(data);
            std::hint::black_box(&state);
            sum
        }
        "baseline" => {
            let (state, sum) = base_w1(data);
            std::hint::black_box(&state);
            sum
        }
        _ => return Err("usage: memory relgraph|relgraph-each|relgraph-user|baseline".into()),
    };
    let peak = status_kib("VmHWM:").ok_or("no VmHWM")?;
    println!(
        "{which}: users {} posts {} checksum {checksum}: peak RSS {peak} KiB, \
         growth over input {} KiB",
        scale.users,
        scale.posts,
        peak.saturating_sub(before)
    );
    Ok(())
}
