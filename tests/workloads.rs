//! Every benchmark workload computes the same checksum on relgraph and on the
//! hand-written baseline, at a small scale: a benchmark can never time wrong work.

// Included rather than a dev-dependency on relgraph-bench: a dev-dependency is built for
// every example too, the tour included.
#[path = "../bench/src/lib.rs"]
mod workloads;

use workloads::*;

fn scale() -> Scale {
    Scale::from_env(0.01)
}

#[test]
fn blog_workloads_agree_with_the_baseline() {
    let data = BlogData::new(&scale());
    let (mut rg, rg1) = rg_w1(data.clone());
    let (mut base, base1) = base_w1(data.clone());
    assert_eq!(rg1, base1, "W1");
    assert!(rg1 > 0);
    assert_eq!(rg_w2(&rg), base_w2(&base), "W2");
    assert_eq!(
        rg_w3(&rg, &data.shuffled),
        base_w3(&base, &data.shuffled),
        "W3"
    );
    assert_eq!(
        rg_w3_view(&rg, &data.shuffled),
        base_w3(&base, &data.shuffled),
        "W3 by the parents view"
    );
    assert_eq!(
        rg_w3_user(&rg, &data.shuffled),
        base_w3(&base, &data.shuffled),
        "W3 by parent_row"
    );
    assert_eq!(
        rg_w4(&mut rg, &data.moves),
        base_w4(&mut base, &data.moves),
        "W4"
    );
    rg.store.check_integrity().unwrap();
    // the one-by-one build reaches the same state as the bulk build
    let (bulk, _) = rg_w1(data.clone());
    type Build = fn(BlogData) -> (RgBlog, u64);
    let one_by_one: [(&str, Build); 3] = [
        ("one by one", rg_w1_each),
        ("one by one without reserve", rg_w1_user),
        ("by insert_child", rg_w1_child),
    ];
    for (how, build) in one_by_one {
        let (each, each1) = build(data.clone());
        assert_eq!(each1, base1, "W1 {how}");
        for (&u, &v) in bulk.users.iter().zip(&each.users) {
            let a: Vec<_> = bulk.store.children(bulk.authorship, u).collect();
            let b: Vec<_> = each.store.children(each.authorship, v).collect();
            assert_eq!(a, b, "W1 {how}: children of {u:?}");
        }
        each.store.check_integrity().unwrap();
    }
    let (mut rg, _) = rg_w1(data.clone());
    let (mut base, _) = base_w1(data.clone());
    let left = rg_w7(&mut rg, &data.deletes);
    assert_eq!(left, base_w7(&mut base, &data.deletes), "W7");
    assert!(left < data.posts.len() as u64);
    rg.store.check_integrity().unwrap();
}

#[test]
fn many_to_many_workload_agrees_with_the_baseline() {
    let data = SchoolData::new(&scale());
    assert!(!data.unlinks.is_empty());
    let base = base_w5(data.clone()).1;
    assert_eq!(rg_w5(data.clone()).1, base, "W5");
    assert_eq!(
        rg_w5_each(data.clone()).1,
        base,
        "W5 one link_with at a time"
    );
    assert_eq!(rg_w5_bulk(data).1, base, "W5 with link_all_with");
}

#[test]
fn tree_workload_agrees_with_the_baseline() {
    let data = OrgData::new(&scale());
    let rg = rg_w6_build(data.clone());
    rg.store.check_integrity().unwrap();
    let base = base_w6_build(data.clone());
    let sum = rg_w6(&rg, &data.samples);
    assert_eq!(sum, base_w6(&base, &data.samples), "W6");
    assert_eq!(sum / 1_000_003, data.employees.len() as u64 - 1);
    for how in [W6Build::OneByOne, W6Build::Bulk] {
        let other = rg_w6_build_with(data.clone(), how);
        other.store.check_integrity().unwrap();
        assert_eq!(rg_w6(&other, &data.samples), sum, "W6 built another way");
        for (&a, &b) in rg.keys.iter().zip(&other.keys) {
            let x: Vec<_> = rg.store.children(rg.reports, a).collect();
            let y: Vec<_> = other.store.children(other.reports, b).collect();
            assert_eq!(x, y, "subordinates of {a:?}");
        }
    }
}

#[test]
fn polymorphic_workload_agrees_with_the_baseline() {
    let data = NotifData::new(&scale());
    let rg = rg_w8_build(data.clone());
    rg.store.check_integrity().unwrap();
    let base = base_w8_build(data.clone());
    let sum = rg_w8_query(&rg, &data.samples);
    assert_eq!(sum, base_w8_query(&base, &data.samples), "W8");
    let by_kind: u64 = rg
        .store
        .iter::<Sms>()
        .map(|(_, s)| s.phone.len() as u64)
        .sum();
    assert!(by_kind > 0);
    assert_eq!(rg_w8_scan_base(&rg), by_kind, "by kind and by base agree");
    assert_eq!(rg_w8_query_per_kind(&rg, &data.samples), sum, "W8 per kind");
    let emails = base_w8_emails(&base, &data.samples);
    assert!(emails > 0);
    assert_eq!(rg_w8_emails_per_kind(&rg, &data.samples), emails);
    assert_eq!(rg_w8_emails_downcast(&rg, &data.samples), emails);
    for how in [W8Build::OneByOne, W8Build::Bulk] {
        let other = rg_w8_build_with(data.clone(), how);
        other.store.check_integrity().unwrap();
        assert_eq!(
            rg_w8_query(&other, &data.samples),
            sum,
            "W8 built another way"
        );
        assert_eq!(rg_w8_query_per_kind(&other, &data.samples), sum);
    }
}

#[test]
fn snapshot_workload_round_trips_and_agrees_with_the_baseline() {
    let (blog, school) = (BlogData::new(&scale()), SchoolData::new(&scale()));
    let rg = rg_w9_state(blog.clone(), school.clone());
    let base = base_w9_state(blog, school);
    let sum = rg_w9_checksum(&rg);
    assert!(sum > 0);
    assert_eq!(sum, base_w9_checksum(&base), "W9 state");
    let bytes = rg_w9_save(&rg);
    let loaded = rg_w9_load(&bytes);
    loaded.store.check_integrity().unwrap();
    assert_eq!(rg_w9_checksum(&loaded), sum, "W9 after load");
    assert_eq!(rg_w9_save(&loaded), bytes, "W9 re-save");
    let base_loaded = base_w9_load(&base_w9_save(&base));
    assert_eq!(
        base_w9_checksum(&base_loaded),
        sum,
        "W9 baseline after load"
    );
}
