//! Runs one benchmark workload in a loop, for a profiler: `perf record` or
//! `valgrind --tool=callgrind` on
//! `cargo run --profile profiling -p relgraph-bench --example profile_workload -- W1`
//! (the `profiling` profile is `release` with symbols and line tables).
//! `RELGRAPH_SCALE` scales the sizes (default 1.0).

use relgraph_bench::*;

fn main() -> Result<(), String> {
    let which = std::env::args().nth(1).unwrap_or_default();
    let system = std::env::args().nth(2).unwrap_or_else(|| "relgraph".into());
    let scale = Scale::from_env(1.0);
    let rg = system == "relgraph";
    let sum = match which.as_str() {
        "W9save" | "W9load" => {
            let (blog, school) = (BlogData::new(&scale), SchoolData::new(&scale));
            let t;
            let mut sum = 0u64;
            if rg {
                let w = rg_w9_state(blog, school);
                let bytes = rg_w9_save(&w);
                t = std::time::Instant::now();
                for _ in 0..10 {
                    if which == "W9save" {
                        sum += rg_w9_save(&w).len() as u64;
                    } else {
                        sum += rg_w9_load(&bytes).store.len::<Post>() as u64;
                    }
                }
            } else {
                let w = base_w9_state(blog, school);
                let bytes = base_w9_save(&w);
                t = std::time::Instant::now();
                for _ in 0..10 {
                    if which == "W9save" {
                        sum += base_w9_save(&w).len() as u64;
                    } else {
                        sum += base_w9_load(&bytes).posts.len() as u64;
                    }
                }
            }
            eprintln!("{which} {system}: {:?} for 10 runs", t.elapsed());
            sum
        }
        "W1" | "W1each" | "W1user" | "W1child" => {
            let d = BlogData::new(&scale);
            let t = std::time::Instant::now();
            let sum = match (rg, which.as_str()) {
                (true, "W1") => rg_w1(d).1,
                (true, "W1user") => rg_w1_user(d).1,
                (true, "W1child") => rg_w1_child(d).1,
                (true, _) => rg_w1_each(d).1,
                (false, "W1user" | "W1child") => base_w1_user(d).1,
                (false, _) => base_w1(d).1,
            };
            eprintln!("W1 {system}: {:?} including drop", t.elapsed());
            sum
        }
        "W2" | "W3" | "W3user" | "W3view" => {
            let d = BlogData::new(&scale);
            let w2 = which == "W2";
            if rg {
                let s = rg_w1(d.clone()).0;
                let t = std::time::Instant::now();
                let sum = (0..20)
                    .map(|_| {
                        if w2 {
                            rg_w2(&s)
                        } else if which == "W3user" {
                            rg_w3_user(&s, &d.shuffled)
                        } else if which == "W3view" {
                            rg_w3_view(&s, &d.shuffled)
                        } else {
                            rg_w3(&s, &d.shuffled)
                        }
                    })
                    .sum();
                eprintln!("{which} {system}: {:?} for 20 runs", t.elapsed());
                sum
            } else {
                let s = base_w1(d.clone()).0;
                let t = std::time::Instant::now();
                let sum = (0..20)
                    .map(|_| {
                        if w2 {
                            base_w2(&s)
                        } else {
                            base_w3(&s, &d.shuffled)
                        }
                    })
                    .sum();
                eprintln!("{which} {system}: {:?} for 20 runs", t.elapsed());
                sum
            }
        }
        "W5" | "W5each" | "W5bulk" => {
            let d = SchoolData::new(&scale);
            match (rg, which.as_str()) {
                (true, "W5") => rg_w5(d).1,
                (true, "W5each") => rg_w5_each(d).1,
                (true, _) => rg_w5_bulk(d).1,
                (false, _) => base_w5(d).1,
            }
        }
        "W6" => {
            let d = OrgData::new(&scale);
            if rg {
                let s = rg_w6_build(d.clone());
                (0..10).map(|_| rg_w6(&s, &d.samples)).sum()
            } else {
                let s = base_w6_build(d.clone());
                (0..10).map(|_| base_w6(&s, &d.samples)).sum()
            }
        }
        "W4" => {
            let d = BlogData::new(&scale);
            if rg {
                rg_w4(&mut rg_w1(d.clone()).0, &d.moves)
            } else {
                base_w4(&mut base_w1(d.clone()).0, &d.moves)
            }
        }
        "W6build" | "W6bulk" => {
            let d = OrgData::new(&scale);
            let how = if which == "W6bulk" {
                W6Build::Bulk
            } else {
                W6Build::OneByOne
            };
            if rg {
                let s = rg_w6_build_with(d, how);
                s.store.link_count(s.reports) as u64
            } else {
                base_w6_build(d).parent.len() as u64
            }
        }
        "W8bulk" | "W8each" => {
            let d = NotifData::new(&scale);
            let how = if which == "W8bulk" {
                W8Build::Bulk
            } else {
                W8Build::OneByOne
            };
            if rg {
                rg_w8_build_with(d, how).users.len() as u64
            } else {
                base_w8_build(d).ukeys.len() as u64
            }
        }
        "W8kind" => {
            let d = NotifData::new(&scale);
            if rg {
                let s = rg_w8_build(d.clone());
                (0..20).map(|_| rg_w8_emails_per_kind(&s, &d.samples)).sum()
            } else {
                let s = base_w8_build(d.clone());
                (0..20).map(|_| base_w8_emails(&s, &d.samples)).sum()
            }
        }
        "W1eachix" => {
            let d = BlogData::new(&scale);
            if rg {
                rg_w1_each_indexed(d).1
            } else {
                base_w1_indexed(d).1
            }
        }
        "W7ix" => {
            let d = BlogData::new(&scale);
            if rg {
                rg_w7(&mut rg_w1_each_indexed(d.clone()).0, &d.deletes)
            } else {
                base_w7_indexed(&mut base_w1_indexed(d.clone()).0, &d.deletes)
            }
        }
        "W7" => {
            let d = BlogData::new(&scale);
            if rg {
                rg_w7(&mut rg_w1(d.clone()).0, &d.deletes)
            } else {
                base_w7(&mut base_w1(d.clone()).0, &d.deletes)
            }
        }
        "W8" => {
            let d = NotifData::new(&scale);
            if rg {
                rg_w8_build(d).users.len() as u64
            } else {
                base_w8_build(d).ukeys.len() as u64
            }
        }
        _ => return Err(
            "usage: profile_workload W1|W1each|W1eachix|W1user|W1child|W2|W3|W3user|W3view|W4|W5|W5each|W5bulk|\
                 W6|W6build|W6bulk|W7|W7ix|W8|W8each|W8bulk|W8kind [relgraph|baseline]"
                .into(),
        ),
    };
    println!("{which} {system}: checksum {sum}");
    Ok(())
}
