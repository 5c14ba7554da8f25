//! Self-referential relations: the `employees.subordinates <-> employees.manager` tree and
//! the `users.follows <-> users.followers` graph. Self-link and acyclicity policies, and
//! traversal (ancestors, root, depth, siblings, descendants, roots), which must end even on
//! a relation that holds a cycle.

mod common;

use common::*;
use relgraph::{Key, LinkError, Rules, Store};

/// ```text
/// ceo
/// ├── cto
/// │   ├── dev1
/// │   │   └── intern
/// │   └── dev2
/// └── cfo
///     └── acct
/// loner
/// ```
struct Org {
    ceo: Key<Employee>,
    cto: Key<Employee>,
    cfo: Key<Employee>,
    dev1: Key<Employee>,
    dev2: Key<Employee>,
    intern: Key<Employee>,
    acct: Key<Employee>,
    loner: Key<Employee>,
}

fn org(reports: Rules) -> (Store, Rels, Org) {
    let (mut s, r) = world(Config {
        reports,
        ..Config::default()
    });
    let mut e = |name: &str| employee(&mut s, name);
    let o = Org {
        ceo: e("ceo"),
        cto: e("cto"),
        cfo: e("cfo"),
        dev1: e("dev1"),
        dev2: e("dev2"),
        intern: e("intern"),
        acct: e("acct"),
        loner: e("loner"),
    };
    for (boss, sub) in [
        (o.ceo, o.cto),
        (o.ceo, o.cfo),
        (o.cto, o.dev1),
        (o.cto, o.dev2),
        (o.dev1, o.intern),
        (o.cfo, o.acct),
    ] {
        s.link(r.reports, boss, sub).unwrap();
    }
    check(&s);
    (s, r, o)
}

/// Every traversal test runs on the tree declared acyclic and on the same tree without
/// the declaration (where the walks keep a visited set).
fn both_kinds() -> [Rules; 2] {
    [Rules::new(), Rules::new().acyclic()]
}

fn names(s: &Store, keys: impl IntoIterator<Item = Key<Employee>>) -> Vec<String> {
    keys.into_iter().map(|k| s[k].name.clone()).collect()
}

fn with_depth(s: &Store, items: impl IntoIterator<Item = (Key<Employee>, usize)>) -> Vec<String> {
    items
        .into_iter()
        .map(|(k, d)| format!("{}@{d}", s[k].name))
        .collect()
}

#[test]
fn ancestors_are_listed_nearest_first() {
    for rules in both_kinds() {
        let (s, r, o) = org(rules);
        assert_eq!(
            names(&s, s.ancestors(r.reports, o.intern)),
            ["dev1", "cto", "ceo"]
        );
        assert_eq!(names(&s, s.ancestors(r.reports, o.acct)), ["cfo", "ceo"]);
        assert!(s.ancestors(r.reports, o.ceo).next().is_none());
        assert!(s.ancestors(r.reports, o.loner).next().is_none());
    }
}

#[test]
fn root_and_depth_follow_the_manager_chain() {
    for rules in both_kinds() {
        let (s, r, o) = org(rules);
        assert_eq!(s.root(r.reports, o.intern), o.ceo);
        assert_eq!(s.root(r.reports, o.cfo), o.ceo);
        assert_eq!(s.root(r.reports, o.ceo), o.ceo, "a root is its own root");
        assert_eq!(s.root(r.reports, o.loner), o.loner);
        assert_eq!(s.depth(r.reports, o.intern), 3);
        assert_eq!(s.depth(r.reports, o.dev2), 2);
        assert_eq!(s.depth(r.reports, o.cto), 1);
        assert_eq!(s.depth(r.reports, o.ceo), 0);
        assert_eq!(s.depth(r.reports, o.loner), 0);
    }
}

#[test]
fn is_ancestor_answers_for_proper_ancestors_only() {
    for rules in both_kinds() {
        let (s, r, o) = org(rules);
        assert!(s.is_ancestor(r.reports, o.ceo, o.intern));
        assert!(s.is_ancestor(r.reports, o.dev1, o.intern));
        assert!(
            !s.is_ancestor(r.reports, o.intern, o.ceo),
            "the other way round"
        );
        assert!(!s.is_ancestor(r.reports, o.cfo, o.intern), "another branch");
        assert!(
            !s.is_ancestor(r.reports, o.intern, o.intern),
            "not its own ancestor"
        );
        assert!(!s.is_ancestor(r.reports, o.loner, o.ceo));
    }
}

#[test]
fn siblings_are_the_other_children_of_the_same_manager_in_order() {
    for rules in both_kinds() {
        let (mut s, r, o) = org(rules);
        assert_eq!(names(&s, s.siblings(r.reports, o.cto)), ["cfo"]);
        assert_eq!(names(&s, s.siblings(r.reports, o.dev2)), ["dev1"]);
        assert!(
            s.siblings(r.reports, o.intern).next().is_none(),
            "an only child"
        );
        assert!(s.siblings(r.reports, o.ceo).next().is_none(), "a root");
        let dev3 = employee(&mut s, "dev3");
        s.link(r.reports, o.cto, dev3).unwrap();
        check(&s);
        assert_eq!(names(&s, s.siblings(r.reports, o.dev2)), ["dev1", "dev3"]);
    }
}

#[test]
fn descendants_come_breadth_first_with_their_depth() {
    for rules in both_kinds() {
        let (s, r, o) = org(rules);
        assert_eq!(
            with_depth(&s, s.descendants(r.reports, o.ceo)),
            ["cto@1", "cfo@1", "dev1@2", "dev2@2", "acct@2", "intern@3"]
        );
        assert_eq!(
            with_depth(&s, s.descendants(r.reports, o.cto)),
            ["dev1@1", "dev2@1", "intern@2"]
        );
        assert!(s.descendants(r.reports, o.intern).next().is_none());
        assert!(s.descendants(r.reports, o.loner).next().is_none());
    }
}

#[test]
fn descendants_depth_first_come_in_pre_order_with_their_depth() {
    for rules in both_kinds() {
        let (s, r, o) = org(rules);
        assert_eq!(
            with_depth(&s, s.descendants_depth_first(r.reports, o.ceo)),
            ["cto@1", "dev1@2", "intern@3", "dev2@2", "cfo@1", "acct@2"]
        );
        assert_eq!(
            with_depth(&s, s.descendants_depth_first(r.reports, o.cfo)),
            ["acct@1"]
        );
        assert!(s
            .descendants_depth_first(r.reports, o.acct)
            .next()
            .is_none());
    }
}

#[test]
fn roots_are_the_employees_without_a_manager_in_slot_order() {
    for rules in both_kinds() {
        let (mut s, r, o) = org(rules);
        assert_eq!(s.roots(r.reports).collect::<Vec<_>>(), [o.ceo, o.loner]);
        s.unlink(r.reports, o.ceo, o.cfo).unwrap();
        check(&s);
        assert_eq!(
            s.roots(r.reports).collect::<Vec<_>>(),
            [o.ceo, o.cfo, o.loner]
        );
    }
}

#[test]
fn traversal_follows_a_subtree_that_moved() {
    for rules in both_kinds() {
        let (mut s, r, o) = org(rules);
        s.link(r.reports, o.acct, o.cto).unwrap();
        check(&s);
        assert_eq!(
            names(&s, s.ancestors(r.reports, o.intern)),
            ["dev1", "cto", "acct", "cfo", "ceo"]
        );
        assert_eq!(s.depth(r.reports, o.intern), 5);
        assert_eq!(
            with_depth(&s, s.descendants(r.reports, o.ceo)),
            ["cfo@1", "acct@2", "cto@3", "dev1@4", "dev2@4", "intern@5"]
        );
        assert!(s.siblings(r.reports, o.cfo).next().is_none());
    }
}

#[test]
fn forbidding_self_links_refuses_a_manager_of_themselves_and_changes_nothing() {
    let (mut s, r, o) = org(Rules::new().forbid_self_links());
    let before = dump(&s, &r);
    let e = s.link(r.reports, o.dev1, o.dev1).unwrap_err();
    match &e {
        LinkError::SelfLink { relation, key } => {
            assert_eq!(
                relation.to_string(),
                "employees.subordinates <-> employees.manager"
            );
            assert_eq!(*key, o.dev1.raw());
        }
        e => panic!("expected SelfLink, got {e:?}"),
    }
    assert!(e.to_string().contains("forbids linking"), "{e}");
    check(&s);
    assert_eq!(dump(&s, &r), before);
    let e = s
        .set_children(r.reports, o.dev2, &[o.loner, o.dev2])
        .unwrap_err();
    assert!(matches!(e, LinkError::SelfLink { .. }), "{e:?}");
    check(&s);
    assert_eq!(dump(&s, &r), before, "set_children is all or nothing");
}

#[test]
fn self_links_and_cycles_are_allowed_by_default() {
    let (mut s, r, o) = org(Rules::new());
    s.link(r.reports, o.loner, o.loner).unwrap();
    s.link(r.reports, o.intern, o.ceo).unwrap();
    check(&s);
    assert_eq!(s.parent(r.reports, o.loner), Some(o.loner));
    assert_eq!(s.parent(r.reports, o.ceo), Some(o.intern));
}

#[test]
fn an_acyclic_tree_refuses_a_direct_cycle_and_changes_nothing() {
    let (mut s, r, o) = org(Rules::new().acyclic());
    let before = dump(&s, &r);
    let e = s.link(r.reports, o.dev1, o.cto).unwrap_err();
    match &e {
        LinkError::Cycle { relation, a, b } => {
            assert_eq!(relation.b_end, "manager");
            assert_eq!(*a, o.dev1.raw());
            assert_eq!(*b, o.cto.raw());
        }
        e => panic!("expected Cycle, got {e:?}"),
    }
    assert!(e.to_string().contains("would close a cycle"), "{e}");
    check(&s);
    assert_eq!(dump(&s, &r), before);
    let e = s.link(r.reports, o.intern, o.intern).unwrap_err();
    assert!(
        matches!(e, LinkError::SelfLink { .. }),
        "acyclic implies no self-links"
    );
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn an_acyclic_tree_refuses_a_deep_cycle_and_changes_nothing() {
    let (mut s, r, o) = org(Rules::new().acyclic());
    let before = dump(&s, &r);
    let e = s.link(r.reports, o.intern, o.ceo).unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
    let e = s.link(r.reports, o.acct, o.cfo).unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
    check(&s);
    assert_eq!(dump(&s, &r), before);

    // a chain a thousand deep
    let chain: Vec<Key<Employee>> = (0..1000)
        .map(|i| employee(&mut s, &format!("c{i}")))
        .collect();
    for w in chain.windows(2) {
        s.link(r.reports, w[0], w[1]).unwrap();
    }
    check(&s);
    let before = dump(&s, &r);
    let e = s.link(r.reports, chain[999], chain[0]).unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
    let e = s.link(r.reports, chain[700], chain[3]).unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
    check(&s);
    assert_eq!(dump(&s, &r), before);
    assert_eq!(s.depth(r.reports, chain[999]), 999);
    assert_eq!(s.root(r.reports, chain[999]), chain[0]);
}

/// A node without children linked under another cannot close a cycle: an acyclic tree
/// links it as a plain one does (no walk up the tree). The outcome, the history and the
/// feed are those of the same calls on a tree without the declaration, and a node's
/// link to itself is still refused.
#[test]
fn an_acyclic_tree_links_childless_nodes_as_a_plain_tree_does() {
    let run = |rules: Rules| {
        let (mut s, r, o) = org(rules);
        s.enable_history(256);
        s.enable_feed(256);
        let mut cursor = s.feed_cursor();
        // a chain built top down, each node linked before it has children
        let chain: Vec<Key<Employee>> = (0..50)
            .map(|i| employee(&mut s, &format!("c{i}")))
            .collect();
        s.link(r.reports, o.intern, chain[0]).unwrap();
        for w in chain.windows(2) {
            s.link(r.reports, w[0], w[1]).unwrap();
        }
        // leaves moved (intern's chain bottom under the ceo, acct under the loner), a
        // leaf linked again to its parent (no change)
        s.link(r.reports, o.ceo, chain[49]).unwrap();
        s.link(r.reports, o.loner, o.acct).unwrap();
        s.link(r.reports, o.loner, o.acct).unwrap();
        let state = dump(&s, &r);
        let batches = format!("{:?}", read_batches(&s, &mut cursor));
        check(&s);
        for _ in 0..4 {
            s.undo().unwrap();
        }
        let undone = dump(&s, &r);
        assert_eq!(s.depth(r.reports, chain[47]), 51);
        for _ in 0..4 {
            s.redo().unwrap();
        }
        assert_eq!(dump(&s, &r), state, "redone");
        check(&s);
        (state, batches, undone)
    };
    let (acyclic, plain) = (run(Rules::new().acyclic()), run(Rules::new()));
    assert_eq!(acyclic.0, plain.0, "the same tree");
    assert_eq!(acyclic.1, plain.1, "the same changes");
    assert_eq!(acyclic.2, plain.2, "the same undo");

    for rules in [Rules::new().acyclic(), Rules::new().forbid_self_links()] {
        let (mut s, r, o) = org(rules);
        let before = dump(&s, &r);
        for leaf in [o.loner, o.intern] {
            let e = s.link(r.reports, leaf, leaf).unwrap_err();
            assert!(matches!(e, LinkError::SelfLink { .. }), "{e:?}");
        }
        assert_eq!(dump(&s, &r), before);
    }
}

#[test]
fn an_acyclic_tree_refuses_a_cycle_made_by_set_children() {
    let (mut s, r, o) = org(Rules::new().acyclic());
    let before = dump(&s, &r);
    let e = s
        .set_children(r.reports, o.dev1, &[o.intern, o.loner, o.cto])
        .unwrap_err();
    assert!(
        matches!(e, LinkError::Cycle { b, .. } if b == o.cto.raw()),
        "{e:?}"
    );
    check(&s);
    assert_eq!(dump(&s, &r), before, "set_children is all or nothing");
}

#[test]
fn an_acyclic_tree_still_moves_subtrees_where_no_cycle_forms() {
    let (mut s, r, o) = org(Rules::new().acyclic());
    s.link(r.reports, o.dev2, o.dev1).unwrap();
    s.link(r.reports, o.loner, o.ceo).unwrap();
    s.set_children(r.reports, o.acct, &[o.cto]).unwrap();
    check(&s);
    assert_eq!(
        names(&s, s.ancestors(r.reports, o.intern)),
        ["dev1", "dev2", "cto", "acct", "cfo", "ceo", "loner"]
    );
    assert_eq!(s.roots(r.reports).collect::<Vec<_>>(), [o.loner]);
}

#[test]
fn traversal_on_a_relation_holding_a_cycle_terminates() {
    let (mut s, r) = world(Config::default());
    let a = employee(&mut s, "a");
    let b = employee(&mut s, "b");
    let c = employee(&mut s, "c");
    let d = employee(&mut s, "d");
    s.link(r.reports, a, b).unwrap();
    s.link(r.reports, b, c).unwrap();
    s.link(r.reports, b, d).unwrap();
    s.link(r.reports, c, a).unwrap(); // closes a -> b -> c -> a
    check(&s);
    assert_eq!(names(&s, s.ancestors(r.reports, a)), ["c", "b"]);
    assert_eq!(names(&s, s.ancestors(r.reports, d)), ["b", "a", "c"]);
    assert_eq!(
        s.root(r.reports, a),
        b,
        "the last ancestor before the walk repeats"
    );
    assert_eq!(s.depth(r.reports, a), 2);
    assert!(s.is_ancestor(r.reports, b, a));
    assert!(!s.is_ancestor(r.reports, d, a));
    assert_eq!(
        with_depth(&s, s.descendants(r.reports, a)),
        ["b@1", "c@2", "d@2"]
    );
    assert_eq!(
        with_depth(&s, s.descendants_depth_first(r.reports, a)),
        ["b@1", "c@2", "d@2"]
    );
    assert_eq!(
        with_depth(&s, s.descendants(r.reports, d)),
        Vec::<String>::new()
    );
    assert_eq!(s.roots(r.reports).count(), 0);
    assert_eq!(names(&s, s.siblings(r.reports, c)), ["d"]);
}

#[test]
fn traversal_through_a_self_link_terminates() {
    let (mut s, r) = world(Config::default());
    let a = employee(&mut s, "a");
    let b = employee(&mut s, "b");
    s.link(r.reports, a, a).unwrap();
    s.link(r.reports, a, b).unwrap();
    check(&s);
    assert_eq!(s.ancestors(r.reports, a).count(), 0);
    assert_eq!(names(&s, s.ancestors(r.reports, b)), ["a"]);
    assert_eq!(s.root(r.reports, a), a);
    assert_eq!(s.root(r.reports, b), a);
    assert_eq!(with_depth(&s, s.descendants(r.reports, a)), ["b@1"]);
    assert_eq!(
        with_depth(&s, s.descendants_depth_first(r.reports, a)),
        ["b@1"]
    );
    assert_eq!(names(&s, s.siblings(r.reports, b)), ["a"]);
}

#[test]
fn a_follow_graph_refuses_self_follows_when_forbidden() {
    let (mut s, r) = world(Config {
        follows: Rules::new().forbid_self_links(),
        ..Config::default()
    });
    let a = user(&mut s, "a");
    let b = user(&mut s, "b");
    s.link(r.follows, a, b).unwrap();
    s.link(r.follows, b, a).unwrap(); // mutual follows are no cycle problem here
    check(&s);
    let before = dump(&s, &r);
    let e = s.link(r.follows, a, a).unwrap_err();
    assert!(
        matches!(e, LinkError::SelfLink { relation, key }
            if key == a.raw() && relation.a_end == "follows"),
        "{e:?}"
    );
    let e = s.set_targets(r.follows, b, &[a, b]).unwrap_err();
    assert!(matches!(e, LinkError::SelfLink { .. }), "{e:?}");
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn an_acyclic_follow_graph_refuses_direct_and_deep_cycles() {
    let (mut s, r) = world(Config {
        follows: Rules::new().acyclic(),
        ..Config::default()
    });
    let us: Vec<Key<User>> = (0..8).map(|i| user(&mut s, &format!("u{i}"))).collect();
    // a diamond-rich DAG: each follows the next two
    for i in 0..8 {
        for j in i + 1..(i + 3).min(8) {
            s.link(r.follows, us[i], us[j]).unwrap();
        }
    }
    check(&s);
    let before = dump(&s, &r);
    for (a, b) in [(1, 0), (7, 0), (5, 2), (4, 3), (3, 3)] {
        let e = s.link(r.follows, us[a], us[b]).unwrap_err();
        if a == b {
            assert!(matches!(e, LinkError::SelfLink { .. }), "{e:?}");
        } else {
            assert!(
                matches!(e, LinkError::Cycle { a: x, b: y, .. }
                    if x == us[a].raw() && y == us[b].raw()),
                "{a} -> {b}: {e:?}"
            );
        }
        check(&s);
        assert_eq!(dump(&s, &r), before);
    }
    let e = s
        .set_targets(r.follows, us[6], &[us[7], us[1]])
        .unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
    let e = s.link_with(r.follows, us[6], us[1], ()).unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
    check(&s);
    assert_eq!(dump(&s, &r), before);
    // forward links that close no cycle are fine, and so is a new root
    s.link(r.follows, us[0], us[7]).unwrap();
    let fresh = user(&mut s, "fresh");
    s.link(r.follows, fresh, us[0]).unwrap();
    s.set_targets(r.follows, us[1], &[us[7], us[3]]).unwrap();
    check(&s);
}

#[test]
fn an_acyclic_follow_graph_finds_a_cycle_through_any_branch() {
    let (mut s, r) = world(Config {
        follows: Rules::new().acyclic(),
        ..Config::default()
    });
    let us: Vec<Key<User>> = (0..6).map(|i| user(&mut s, &format!("u{i}"))).collect();
    // u0 follows u1 (a dead end) first, then u2, which leads on to u5 through its last branch
    for (a, b) in [(0, 1), (0, 2), (2, 3), (2, 4), (4, 5)] {
        s.link(r.follows, us[a], us[b]).unwrap();
    }
    check(&s);
    let before = dump(&s, &r);
    let e = s.link(r.follows, us[5], us[0]).unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
    check(&s);
    assert_eq!(dump(&s, &r), before);
    s.link(r.follows, us[5], us[1]).unwrap(); // no cycle: u1 follows nobody
    s.link(r.follows, us[3], us[4]).unwrap();
    check(&s);
}

#[test]
fn an_acyclic_follow_graph_accepts_a_link_once_the_cycle_path_is_gone() {
    let (mut s, r) = world(Config {
        follows: Rules::new().acyclic(),
        ..Config::default()
    });
    let a = user(&mut s, "a");
    let b = user(&mut s, "b");
    let c = user(&mut s, "c");
    s.link(r.follows, a, b).unwrap();
    s.link(r.follows, b, c).unwrap();
    assert!(matches!(
        s.link(r.follows, c, a),
        Err(LinkError::Cycle { .. })
    ));
    s.unlink(r.follows, b, c).unwrap();
    s.link(r.follows, c, a).unwrap();
    check(&s);
    assert_eq!(targets(&s, r.follows, c), [a]);
}

#[test]
#[should_panic(expected = "self-referential relations only")]
fn acyclic_on_a_relation_between_two_tables_panics() {
    let mut schema = relgraph::Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    schema.one_to_many(users, "posts", posts, "author", Rules::new().acyclic());
}

#[test]
#[should_panic(expected = "self-referential relations only")]
fn forbid_self_links_on_a_relation_between_two_tables_panics() {
    let mut schema = relgraph::Schema::new();
    let students = schema.table::<Student>("students");
    let courses = schema.table::<Course>("courses");
    schema.many_to_many(
        students,
        "courses",
        courses,
        "students",
        Rules::new().forbid_self_links(),
    );
}

#[test]
fn traversal_from_a_removed_employee_finds_nothing() {
    let (mut s, r, o) = org(Rules::new());
    s.remove(o.dev1).unwrap();
    let newer = employee(&mut s, "takes dev1's slot");
    s.link(r.reports, o.cto, newer).unwrap();
    check(&s);
    assert_eq!(newer.raw().index(), o.dev1.raw().index());
    assert_eq!(s.ancestors(r.reports, o.dev1).count(), 0);
    assert_eq!(s.descendants(r.reports, o.dev1).count(), 0);
    assert_eq!(s.descendants_depth_first(r.reports, o.dev1).count(), 0);
    assert_eq!(s.siblings(r.reports, o.dev1).count(), 0);
    assert_eq!(s.depth(r.reports, o.dev1), 0);
    assert!(!s.is_ancestor(r.reports, o.cto, o.dev1));
    assert!(!s.is_ancestor(r.reports, o.dev1, o.intern));
    assert_eq!(
        s.parent(r.reports, o.intern),
        None,
        "nullify: intern lost dev1"
    );
    assert_eq!(names(&s, s.siblings(r.reports, newer)), ["dev2"]);
}

/// The descendants of a random tree (with holes left by unlinks), read step by step with
/// `next` and by internal iteration (`fold`, `for_each`, `count`), on an acyclic
/// relation (no visited set) and on one that is not (visited set): the same items, each
/// with its breadth-first depth, in the order of a reference walk.
#[test]
fn descendants_by_next_and_by_fold_agree_with_a_reference_walk() {
    for rules in [Rules::new().acyclic(), Rules::new()] {
        let (mut s, r) = world(Config {
            reports: rules,
            ..Config::default()
        });
        let keys: Vec<Key<Employee>> = (0..300).map(|i| employee(&mut s, &i.to_string())).collect();
        let mut seed = 7u64;
        let mut rand = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for i in 1..keys.len() {
            s.link(r.reports, keys[rand(i)], keys[i]).unwrap();
        }
        // holes: move some children away and back to the end of their lists
        for _ in 0..60 {
            let i = 1 + rand(keys.len() - 1);
            let boss = s.parent(r.reports, keys[i]).unwrap();
            s.unlink(r.reports, boss, keys[i]).unwrap();
            s.link(r.reports, boss, keys[i]).unwrap();
        }
        check(&s);
        for &top in &keys[..20] {
            // reference: a queue of (node, depth)
            let mut expected = Vec::new();
            let mut queue = std::collections::VecDeque::from([(top, 0usize)]);
            while let Some((n, d)) = queue.pop_front() {
                for c in s.children(r.reports, n) {
                    expected.push((c, d + 1));
                    queue.push_back((c, d + 1));
                }
            }
            // a `for` loop steps with `next`
            let mut stepped = Vec::new();
            for item in s.descendants(r.reports, top) {
                stepped.push(item);
            }
            let push = |mut v: Vec<_>, item| {
                v.push(item);
                v
            };
            let folded = s.descendants(r.reports, top).fold(Vec::new(), push);
            let mut each = Vec::new();
            s.descendants(r.reports, top)
                .for_each(|item| each.push(item));
            assert_eq!(each, expected, "for_each from {top:?}");
            assert_eq!(stepped, expected, "next from {top:?}");
            assert_eq!(folded, expected, "fold from {top:?}");
            assert_eq!(s.descendants(r.reports, top).count(), expected.len());
            // a partly consumed iterator folds the rest
            let mut part = s.descendants(r.reports, top);
            let first: Vec<_> = part.by_ref().take(3).collect();
            let rest = part.fold(Vec::new(), push);
            assert_eq!([first, rest].concat(), expected, "split from {top:?}");
        }
    }
}

#[test]
fn leaves_are_the_descendants_without_children_and_a_childless_node_is_its_own_leaf() {
    for rules in both_kinds() {
        let (s, r, o) = org(rules);
        assert_eq!(
            names(&s, s.leaves(r.reports, o.ceo)),
            ["dev2", "acct", "intern"]
        );
        assert_eq!(names(&s, s.leaves(r.reports, o.cto)), ["dev2", "intern"]);
        assert_eq!(names(&s, s.leaves(r.reports, o.loner)), ["loner"]);
    }
}

#[test]
fn subtree_size_counts_the_node_and_every_descendant() {
    for rules in both_kinds() {
        let (s, r, o) = org(rules);
        assert_eq!(s.subtree_size(r.reports, o.ceo), 7);
        assert_eq!(s.subtree_size(r.reports, o.cto), 4);
        assert_eq!(s.subtree_size(r.reports, o.intern), 1);
    }
}

#[test]
fn the_lowest_common_ancestor_is_the_deepest_shared_one_and_none_across_trees() {
    for rules in both_kinds() {
        let (s, r, o) = org(rules);
        let lca = |a, b| s.lowest_common_ancestor(r.reports, a, b);
        assert_eq!(lca(o.intern, o.dev2), Some(o.cto));
        assert_eq!(lca(o.intern, o.acct), Some(o.ceo));
        assert_eq!(
            lca(o.cto, o.intern),
            Some(o.cto),
            "an ancestor of the other"
        );
        assert_eq!(lca(o.dev2, o.dev2), Some(o.dev2));
        assert_eq!(lca(o.intern, o.loner), None);
    }
}

#[test]
fn a_stale_node_has_no_leaves_no_subtree_and_no_common_ancestor() {
    for rules in both_kinds() {
        let (mut s, r, o) = org(rules);
        let loner = o.loner;
        s.remove(loner).unwrap();
        assert_eq!(s.leaves(r.reports, loner).count(), 0);
        assert_eq!(s.subtree_size(r.reports, loner), 0);
        assert_eq!(s.lowest_common_ancestor(r.reports, loner, loner), None);
        assert_eq!(s.lowest_common_ancestor(r.reports, o.ceo, loner), None);
        assert_eq!(
            s.lowest_common_ancestor(r.reports, o.cto, o.intern),
            Some(o.cto)
        );
    }
}
