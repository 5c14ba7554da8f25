//! The cost of rebuilding indexes on load: W1's state (100k users, 1M posts) saved once,
//! then loaded into a schema without indexes and into one with two indexes on the posts
//! (title: hash; score: ordered), alternately, five times each; prints the median of each.
//!
//! `cargo run --release -p relgraph-bench --example index_load` (`RELGRAPH_SCALE` scales).

use std::time::Instant;

use relgraph::{DeleteRule, Schema, Store};
use relgraph_bench::*;

fn schema(indexed: bool) -> Schema {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    if indexed {
        schema.index(posts, "posts_by_title", |p: &Post| p.title.clone());
        schema.ordered_index(posts, "posts_by_score", |p: &Post| p.score);
    }
    schema
}

fn main() {
    let scale = Scale::from_env(1.0);
    let (state, _) = rg_w1(BlogData::new(&scale));
    let bytes = state.store.to_snapshot().expect("saves");
    drop(state);
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..5 {
        for (i, indexed) in [false, true].into_iter().enumerate() {
            let t = Instant::now();
            let store = Store::from_snapshot(schema(indexed), &bytes).expect("loads");
            times[i].push(t.elapsed());
            drop(store);
        }
    }
    for t in &mut times {
        t.sort();
    }
    let (plain, indexed) = (times[0][2], times[1][2]);
    println!(
        "load of W1's state: {plain:?} without indexes, {indexed:?} with two rebuilt ({:.2}x)",
        indexed.as_secs_f64() / plain.as_secs_f64()
    );
}
