//! The validator (T7): for every invariant a loaded snapshot must hold, snapshots that
//! decode (header and checksums right) but break it are refused with
//! `SnapshotError::Invalid` naming that invariant, where and at which key — by
//! `Store::from_snapshot` and by `snapshot::verify` alike. The snapshots are written by
//! hand, section by section, from a valid one that is byte for byte what the store saves.

mod snapshot_support;

use relgraph::snapshot::{self, InvalidGraph, Invariant, SnapshotError};
use relgraph::{DeleteRule, Kind, ManyToMany, OneToMany, OneToOne, RawKey, Rules, Schema, Store};
use serde::{Deserialize, Serialize};
use snapshot_support::*;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Node {
    name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Tag {
    label: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Shape {
    sides: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Circle {
    radius: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Square {
    side: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Note {
    text: String,
}

/// The payload of a node-to-tag link.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Weight {
    w: u32,
}

struct W {
    circle: Kind<Shape, Circle>,
    square: Kind<Shape, Square>,
    tree: OneToMany<Node, Node>,
    twin: OneToOne<Node, Node>,
    links: ManyToMany<Node, Node>,
    tagged: ManyToMany<Node, Tag, Weight>,
    rings: OneToMany<Circle, Node>,
    node_notes: OneToMany<Node, Note>,
    shape_notes: OneToMany<Shape, Note>,
}

// Tables, in declaration order.
const NODES: usize = 0;
const TAGS: usize = 1;
const SHAPES: usize = 2;
const CIRCLE: usize = 3;
const SQUARE: usize = 4;
const NOTES: usize = 5;

// Relations, in declaration order.
const TREE: usize = 0;
const TWIN: usize = 1;
const LINKS: usize = 2;
const TAGGED: usize = 3;
const RINGS: usize = 4;
const NODE_NOTES: usize = 5;
const SHAPE_NOTES: usize = 6;

/// A schema with every feature a validator checks: self-referential relations of each
/// kind (acyclic), a many-to-many with payloads, a polymorphic base with two kinds, a
/// relation on a kind, a polymorphic parent end.
fn schema() -> (Schema, W) {
    schema_with(Rules::new())
}

/// [`schema`] with the given rules on `tagged`.
fn schema_with(tagged: Rules) -> (Schema, W) {
    let mut s = Schema::new();
    let nodes = s.table::<Node>("nodes");
    let tags = s.table::<Tag>("tags");
    let shapes = s.table::<Shape>("shapes");
    let circle = s.kind::<Shape, Circle>(shapes, "circle");
    let square = s.kind::<Shape, Square>(shapes, "square");
    let notes = s.table::<Note>("notes");
    let subject = s.poly_parent(notes, "subject");
    let acyclic = Rules::new().acyclic();
    let w = W {
        circle,
        square,
        tree: s.one_to_many(nodes, "children", nodes, "parent", acyclic),
        twin: s.one_to_one(nodes, "twin", nodes, "twin_of", acyclic),
        links: s.many_to_many(nodes, "links", nodes, "linked_from", acyclic),
        tagged: s.many_to_many_with(nodes, "tags", tags, "nodes", tagged),
        rings: s.one_to_many(circle, "rings", nodes, "ring", Rules::new()),
        node_notes: s.one_to_many_poly(nodes, "notes", subject, Rules::new()),
        shape_notes: s.one_to_many_poly(shapes, "notes", subject, Rules::new()),
    };
    (s, w)
}

/// The valid store: nodes 0, 1 and 3 (slot 2 vacant), tags 0 and 1, shapes 0 and 2
/// circles and 1 a square, notes 0 and 1, and links in every relation.
fn store() -> Store {
    let (s, w) = schema();
    let mut s = Store::new(s);
    let n: Vec<_> = (0..4)
        .map(|i| {
            s.insert(Node {
                name: format!("n{i}"),
            })
        })
        .collect();
    s.remove(n[2]).unwrap();
    let t: Vec<_> = (0..2)
        .map(|i| {
            s.insert(Tag {
                label: format!("t{i}"),
            })
        })
        .collect();
    let c0 = s.insert_kind(w.circle, Shape { sides: 0 }, Circle { radius: 1 });
    let s1 = s.insert_kind(w.square, Shape { sides: 4 }, Square { side: 2 });
    s.insert_kind(w.circle, Shape { sides: 0 }, Circle { radius: 3 });
    let m: Vec<_> = (0..2)
        .map(|i| {
            s.insert(Note {
                text: format!("m{i}"),
            })
        })
        .collect();
    s.link(w.tree, n[0], n[1]).unwrap();
    s.link(w.tree, n[0], n[3]).unwrap();
    s.link(w.twin, n[0], n[1]).unwrap();
    s.link(w.links, n[0], n[1]).unwrap();
    s.link(w.links, n[0], n[3]).unwrap();
    s.link(w.links, n[1], n[3]).unwrap();
    s.link_with(w.tagged, n[0], t[0], Weight { w: 7 }).unwrap();
    s.link_with(w.tagged, n[1], t[0], Weight { w: 8 }).unwrap();
    s.link_with(w.tagged, n[1], t[1], Weight { w: 9 }).unwrap();
    s.link(w.rings, c0, n[0]).unwrap();
    s.link(w.node_notes, n[0], m[0]).unwrap();
    s.link(w.shape_notes, w.square.upcast(s1), m[1]).unwrap();
    s
}

fn rows<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        bincode_str(&mut out, v);
    }
    out
}

fn desc() -> Desc {
    let r = RelationSpec::new;
    Desc::default()
        .table("nodes")
        .table("tags")
        .table("shapes")
        .kind("circle", SHAPES as u32)
        .kind("square", SHAPES as u32)
        .table("notes")
        .relation(r(ONE_TO_MANY, (0, "children"), (0, "parent")).flags(ACYCLIC))
        .relation(r(ONE_TO_ONE, (0, "twin"), (0, "twin_of")).flags(ACYCLIC))
        .relation(r(MANY_TO_MANY, (0, "links"), (0, "linked_from")).flags(ACYCLIC))
        .relation(r(MANY_TO_MANY, (0, "tags"), (1, "nodes")))
        .relation(r(ONE_TO_MANY, (3, "rings"), (0, "ring")))
        .relation(r(ONE_TO_MANY, (0, "notes"), (5, "subject")).group(0))
        .relation(r(ONE_TO_MANY, (2, "notes"), (5, "subject")).group(0))
        .poly_parent(5, "subject")
}

/// The snapshot of [`store`], written by hand.
fn valid() -> Snap {
    use Slot::{Live, Vacant};
    Snap {
        fingerprint: schema().0.fingerprint(),
        desc: desc().shapes_of(&Store::new(schema().0).to_snapshot().unwrap()),
        tables: vec![
            TableSection::Slots {
                slots: vec![Live(1), Live(1), Vacant(1), Live(1)],
                free: vec![2],
                rows: rows(["n0", "n1", "n3"]),
            },
            TableSection::Slots {
                slots: vec![Live(1), Live(1)],
                free: vec![],
                rows: rows(["t0", "t1"]),
            },
            TableSection::Slots {
                slots: vec![Live(1); 3],
                free: vec![],
                rows: vec![0, 4, 0],
            },
            TableSection::Kind {
                keys: vec![0, 2],
                rows: vec![1, 3],
            },
            TableSection::Kind {
                keys: vec![1],
                rows: vec![2],
            },
            TableSection::Slots {
                slots: vec![Live(1), Live(1)],
                free: vec![],
                rows: rows(["m0", "m1"]),
            },
        ],
        relations: vec![
            RelationSection::OneToMany(vec![(0, vec![1, 3])]),
            RelationSection::OneToOne(vec![(0, 1)]),
            RelationSection::ManyToMany {
                a: vec![(0, vec![1, 3]), (1, vec![3])],
                payloads: vec![],
                b: vec![(1, vec![0]), (3, vec![0, 1])],
            },
            RelationSection::ManyToMany {
                a: vec![(0, vec![0]), (1, vec![0, 1])],
                payloads: vec![7, 8, 9],
                b: vec![(0, vec![0, 1]), (1, vec![1])],
            },
            RelationSection::OneToMany(vec![(0, vec![0])]),
            RelationSection::OneToMany(vec![(0, vec![0])]),
            RelationSection::OneToMany(vec![(1, vec![1])]),
        ],
        entities: None,
        links: None,
    }
}

/// The key of slot `index` at `version`.
fn key(index: u32, version: u32) -> Option<RawKey> {
    RawKey::from_bits(u64::from(version) << 32 | u64::from(index))
}

/// Loads `bytes` with `from_snapshot` and checks them with `verify`: both must refuse them
/// for `invariant`, with the same location, key and detail.
#[track_caller]
fn refused(bytes: &[u8], invariant: Invariant) -> InvalidGraph {
    let loaded = match Store::from_snapshot(schema().0, bytes) {
        Err(SnapshotError::Invalid(g)) => g,
        other => panic!(
            "from_snapshot: expected Invalid({invariant:?}), got {:?}",
            other.map(|_| ())
        ),
    };
    assert_eq!(loaded.invariant, invariant, "from_snapshot: {loaded}");
    match snapshot::verify(bytes) {
        Err(SnapshotError::Invalid(g)) => assert_eq!(g, loaded, "verify and from_snapshot"),
        other => panic!(
            "verify: expected Invalid({invariant:?}), got {:?}",
            other.map(|_| ())
        ),
    }
    loaded
}

/// [`refused`] for a snapshot written from `snap`, also checking where and at which key.
#[track_caller]
fn refused_at(
    snap: &Snap,
    invariant: Invariant,
    location: &str,
    key: Option<RawKey>,
) -> InvalidGraph {
    let e = refused(&snap.bytes(), invariant);
    assert_eq!(e.location, location, "{e}");
    assert_eq!(e.key, key, "{e}");
    e
}

/// `valid()` changed by `change`.
fn broken(change: impl FnOnce(&mut Snap)) -> Snap {
    let mut s = valid();
    change(&mut s);
    s
}

const TREE_NAME: &str = "nodes.children <-> nodes.parent";
const TWIN_NAME: &str = "nodes.twin <-> nodes.twin_of";
const LINKS_NAME: &str = "nodes.links <-> nodes.linked_from";
const TAGGED_NAME: &str = "nodes.tags <-> tags.nodes";
const RINGS_NAME: &str = "circle.rings <-> nodes.ring";
const NODE_NOTES_NAME: &str = "nodes.notes <-> notes.subject";

#[test]
fn the_hand_written_valid_snapshot_is_the_one_the_store_saves_and_it_loads() {
    let bytes = valid().bytes();
    assert_eq!(bytes, store().to_snapshot().unwrap());
    let loaded = Store::from_snapshot(schema().0, &bytes).unwrap();
    assert_eq!(loaded.to_snapshot().unwrap(), bytes);
    snapshot::verify(&bytes).unwrap();
}

#[test]
fn a_fingerprint_that_is_not_the_described_schemas_is_refused() {
    let bytes = valid().bytes();
    let e = refused(
        &with_header(&bytes, |h| h.fingerprint ^= 1),
        Invariant::Fingerprint,
    );
    assert_eq!((e.location.as_str(), e.key), ("header", None));
    // the fingerprint of a schema that differs in one delete rule
    let cascade = schema_with(DeleteRule::Cascade.into()).0.fingerprint();
    let other = broken(|s| s.fingerprint = cascade);
    refused(&other.bytes(), Invariant::Fingerprint);
    // that schema's description under the valid fingerprint
    let described = broken(|s| s.desc.relations[TAGGED].on_delete = (1, 0));
    refused(&described.bytes(), Invariant::Fingerprint);
    // both changed together: a consistent snapshot of that schema, which loads
    let both = broken(|s| {
        s.desc.relations[TAGGED].on_delete = (1, 0);
        s.fingerprint = cascade;
    });
    Store::from_snapshot(schema_with(DeleteRule::Cascade.into()).0, &both.bytes()).unwrap();
    snapshot::verify(&both.bytes()).unwrap();
}

#[test]
fn a_malformed_schema_description_is_refused() {
    let group_out_of_range = GroupSpec {
        child_table: 9,
        end: "x".into(),
    };
    let cases: Vec<(&str, Snap)> = vec![
        (
            "unknown relation kind 3",
            broken(|s| s.desc.relations[TREE].kind = 3),
        ),
        (
            "unknown delete rule 0 or 4",
            broken(|s| s.desc.relations[TAGGED].on_delete = (0, 4)),
        ),
        (
            "unknown relation flags 2",
            broken(|s| s.desc.relations[TREE].flags = 2),
        ),
        (
            "unknown relation flags 4",
            broken(|s| s.desc.relations[TREE].flags = 4),
        ),
        (
            "table `tags` has version 0",
            broken(|s| s.desc.tables[TAGS].version = 0),
        ),
        (
            "table name `nodes` appears twice",
            broken(|s| s.desc.tables[TAGS].name = "nodes".into()),
        ),
        (
            "kind `circle` names an invalid base 5",
            broken(|s| s.desc.tables[CIRCLE].base = Some(NOTES as u32)),
        ),
        (
            "kind `circle` names an invalid base 3",
            broken(|s| s.desc.tables[CIRCLE].base = Some(CIRCLE as u32)),
        ),
        (
            "kind `square` names an invalid base 3",
            broken(|s| s.desc.tables[SQUARE].base = Some(CIRCLE as u32)),
        ),
        (
            "relation 3 names a table out of range",
            broken(|s| s.desc.relations[TAGGED].b_table = 6),
        ),
        (
            "relation 0 names a table out of range",
            broken(|s| s.desc.relations[TREE].a_table = 99),
        ),
        (
            "relation 3 forbids self-links between two tables",
            broken(|s| s.desc.relations[TAGGED].flags = NO_SELF_LINKS),
        ),
        (
            "relation 3 forbids self-links between two tables",
            broken(|s| s.desc.relations[TAGGED].flags = ACYCLIC),
        ),
        (
            "relation 5 names an invalid polymorphic parent end",
            broken(|s| s.desc.relations[NODE_NOTES].group = Some(1)),
        ),
        (
            "relation 0 names an invalid polymorphic parent end",
            broken(|s| s.desc.relations[TREE].group = Some(0)),
        ),
        (
            "relation 3 names an invalid polymorphic parent end",
            broken(|s| {
                let r = &mut s.desc.relations[TAGGED];
                (r.b_table, r.b_end, r.group) = (NOTES as u32, "subject".into(), Some(0));
            }),
        ),
        (
            "polymorphic parent end 1 names a table out of range",
            broken(|s| s.desc.groups.push(group_out_of_range)),
        ),
    ];
    for (detail, snap) in cases {
        let e = refused(&snap.bytes(), Invariant::SchemaDescription);
        assert_eq!(e.detail, detail);
        assert_eq!((e.location.as_str(), e.key), ("schema description", None));
    }
}

#[test]
fn a_slot_whose_version_is_zero_or_not_below_its_highest_is_refused() {
    let older = |high, version| Slot::Older { high, version };
    let cases = [
        (Slot::Live(0), "slot 0 has version 0 of 0"),
        (older(3, 0), "slot 0 has version 0 of 3"),
        (older(2, 2), "slot 0 has version 2 of 2"),
        (older(2, 5), "slot 0 has version 5 of 2"),
    ];
    for (slot, detail) in cases {
        let e = refused(
            &broken(|s| s.slots(NODES)[0] = slot).bytes(),
            Invariant::SlotVersion,
        );
        assert_eq!(e.detail, detail);
        assert_eq!((e.location.as_str(), e.key), ("table nodes", None));
    }
    // an entity below its slot's highest version is valid, and keeps its key
    let bytes = broken(|s| s.slots(NODES)[0] = older(3, 1)).bytes();
    let loaded = Store::from_snapshot(schema().0, &bytes).unwrap();
    assert_eq!(loaded.to_snapshot().unwrap(), bytes);
}

#[test]
fn a_free_list_naming_a_slot_out_of_range_twice_or_retired_or_missing_a_vacant_slot_is_refused() {
    let cases: Vec<(Snap, Option<RawKey>, &str)> = vec![
        (
            broken(|s| s.free(NODES).push(9)),
            None,
            "the free list names slot 9 of 4",
        ),
        (
            broken(|s| *s.free(NODES) = vec![2, 0, 1, 3, 0]),
            None,
            "5 free slots listed, the table has 4",
        ),
        (
            broken(|s| s.free(NODES).push(2)),
            key(2, 1),
            "slot 2 is listed twice",
        ),
        (
            broken(|s| s.slots(NODES)[2] = Slot::Vacant(u32::MAX)),
            key(2, 1),
            "slot 2 is at its last version and must not be reused",
        ),
        (
            broken(|s| s.free(NODES).clear()),
            key(2, 1),
            "vacant slot 2 is not on the free list",
        ),
    ];
    for (snap, at, detail) in cases {
        let e = refused_at(&snap, Invariant::FreeList, "table nodes", at);
        assert_eq!(e.detail, detail);
    }
    // an occupied slot may be listed (a rollback put its entity back): it loads, saves the
    // same bytes, and is skipped by the next insert
    let bytes = broken(|s| s.free(NODES).push(0)).bytes();
    let mut loaded = Store::from_snapshot(schema().0, &bytes).unwrap();
    assert_eq!(loaded.to_snapshot().unwrap(), bytes);
    let keys: Vec<_> = (0..2)
        .map(|_| loaded.insert(Node { name: "x".into() }).raw())
        .collect();
    assert_eq!(keys, [key(2, 2).unwrap(), key(4, 1).unwrap()]);
    // a vacant slot at its last version is retired: never listed, never reused
    let bytes = broken(|s| {
        s.slots(NODES)[2] = Slot::Vacant(u32::MAX);
        s.free(NODES).clear();
    })
    .bytes();
    let mut loaded = Store::from_snapshot(schema().0, &bytes).unwrap();
    let k = loaded.insert(Node { name: "x".into() }).raw();
    assert_eq!(k, key(4, 1).unwrap());
    loaded.check_integrity().unwrap();
}

#[test]
fn lists_and_pairs_out_of_their_one_canonical_order_are_refused() {
    let unordered_lists = "lists are not in ascending owner order";
    let cases: Vec<(&str, Snap)> = vec![
        (
            unordered_lists,
            broken(|s| *s.one_to_many(TREE) = vec![(1, vec![3]), (0, vec![1])]),
        ),
        (
            unordered_lists,
            broken(|s| *s.one_to_many(TREE) = vec![(0, vec![1]), (0, vec![3])]),
        ),
        (
            "an empty list is stored",
            broken(|s| s.one_to_many(TREE).push((1, vec![]))),
        ),
        (
            "pairs are not in ascending order",
            broken(|s| *s.one_to_one(TWIN) = vec![(3, 0), (0, 1)]),
        ),
        (
            "pairs are not in ascending order",
            broken(|s| *s.one_to_one(TWIN) = vec![(0, 1), (0, 3)]),
        ),
        (
            unordered_lists,
            broken(|s| s.many_to_many(LINKS).0.reverse()),
        ),
        (
            unordered_lists,
            broken(|s| s.many_to_many(LINKS).2.reverse()),
        ),
        (
            "an empty list is stored",
            broken(|s| s.many_to_many(LINKS).2.insert(0, (0, vec![]))),
        ),
    ];
    for (detail, snap) in cases {
        let e = refused(&snap.bytes(), Invariant::Canonical);
        assert_eq!(e.detail, detail);
        assert!(e.location.starts_with("relation nodes."), "{}", e.location);
        assert_eq!(e.key, None);
    }
}

const FIRST_DEAD: &str = "the first end names no live entity of its table";
const SECOND_DEAD: &str = "the second end names no live entity of its table";

#[test]
fn a_link_to_a_vacant_slot_a_slot_out_of_range_or_a_row_of_another_kind_is_refused() {
    let cases: Vec<(Snap, &str, u32, &str)> = vec![
        // a parent in the vacant slot 2
        (
            broken(|s| *s.one_to_many(TREE) = vec![(0, vec![1]), (2, vec![3])]),
            TREE_NAME,
            2,
            FIRST_DEAD,
        ),
        // a child out of range
        (
            broken(|s| s.one_to_many(TREE)[0].1.push(99)),
            TREE_NAME,
            99,
            SECOND_DEAD,
        ),
        // circle.rings owned by shape 1, which is a square
        (
            broken(|s| *s.one_to_many(RINGS) = vec![(1, vec![0])]),
            RINGS_NAME,
            1,
            FIRST_DEAD,
        ),
        // a child that is not a node row of any kind: a note's slot beyond the notes
        (
            broken(|s| s.one_to_many(NODE_NOTES)[0].1.push(4)),
            NODE_NOTES_NAME,
            4,
            SECOND_DEAD,
        ),
        (
            broken(|s| *s.one_to_one(TWIN) = vec![(0, 2)]),
            TWIN_NAME,
            2,
            SECOND_DEAD,
        ),
        (
            broken(|s| s.one_to_one(TWIN).push((7, 3))),
            TWIN_NAME,
            7,
            FIRST_DEAD,
        ),
        // the first end's list names the vacant slot
        (
            broken(|s| s.many_to_many(LINKS).0[0].1.push(2)),
            LINKS_NAME,
            2,
            SECOND_DEAD,
        ),
        // the second end's list is owned by the vacant slot
        (
            broken(|s| s.many_to_many(LINKS).2.insert(1, (2, vec![0]))),
            LINKS_NAME,
            2,
            SECOND_DEAD,
        ),
        // the second end's list names the vacant slot
        (
            broken(|s| s.many_to_many(LINKS).2[0] = (1, vec![2])),
            LINKS_NAME,
            2,
            FIRST_DEAD,
        ),
        // a tag out of range, with its payload
        (
            broken(|s| {
                let (a, payloads, _) = s.many_to_many(TAGGED);
                a[0].1.push(5);
                payloads.insert(1, 6);
            }),
            TAGGED_NAME,
            5,
            SECOND_DEAD,
        ),
    ];
    for (snap, location, index, detail) in cases {
        let e = refused(&snap.bytes(), Invariant::LiveEndpoint);
        assert_eq!(e.detail, detail, "{e}");
        assert_eq!(e.location, location);
        // the slot named, at version 1: the snapshot has no live version to give it
        assert_eq!(e.key, key(index, 1));
    }
}

#[test]
fn a_child_with_two_parents_or_an_entity_with_two_partners_is_refused() {
    let cases: Vec<(Snap, &str, u32, &str)> = vec![
        // node 3 in the lists of nodes 0 and 1
        (
            broken(|s| s.one_to_many(TREE).push((1, vec![3]))),
            TREE_NAME,
            3,
            "two parents",
        ),
        // node 1 twice in one list
        (
            broken(|s| s.one_to_many(TREE)[0].1.push(1)),
            TREE_NAME,
            1,
            "two parents",
        ),
        // note 1 in the lists of shapes 1 and 2
        (
            broken(|s| s.one_to_many(SHAPE_NOTES).push((2, vec![1]))),
            "shapes.notes <-> notes.subject",
            1,
            "two parents",
        ),
        // node 1 the twin of nodes 0 and 3
        (
            broken(|s| s.one_to_one(TWIN).push((3, 1))),
            TWIN_NAME,
            1,
            "two partners",
        ),
    ];
    for (snap, location, index, detail) in cases {
        let e = refused_at(&snap, Invariant::Cardinality, location, key(index, 1));
        assert_eq!(e.detail, detail);
    }
}

#[test]
fn a_many_to_many_pair_linked_twice_or_ends_that_disagree_are_refused() {
    let other_number = "the second end lists another number of links than the first";
    let cases: Vec<(Snap, &str, Option<RawKey>, &str)> = vec![
        // node 0 lists node 1 twice
        (
            broken(|s| s.many_to_many(LINKS).0[0].1.push(1)),
            LINKS_NAME,
            key(0, 1),
            "pair twice",
        ),
        // with payloads: node 0 tags tag 0 twice
        (
            broken(|s| {
                let (a, payloads, b) = s.many_to_many(TAGGED);
                a[0].1.push(0);
                payloads.insert(1, 7);
                b[0].1.push(0);
            }),
            TAGGED_NAME,
            key(0, 1),
            "pair twice",
        ),
        // the second end lists 3 <- 3, which the first end does not
        (
            broken(|s| s.many_to_many(LINKS).2[1] = (3, vec![0, 3])),
            LINKS_NAME,
            key(3, 1),
            "the second end lists a link the first does not",
        ),
        // the second end misses 3 <- 1
        (
            broken(|s| s.many_to_many(LINKS).2[1] = (3, vec![0])),
            LINKS_NAME,
            key(3, 1),
            other_number,
        ),
        // the second end lists 3 <- 0 twice more than the first
        (
            broken(|s| s.many_to_many(LINKS).2[1] = (3, vec![0, 1, 0])),
            LINKS_NAME,
            key(3, 1),
            other_number,
        ),
        // the second end lists 3 <- 0 twice and 3 <- 1 not at all
        (
            broken(|s| s.many_to_many(LINKS).2[1] = (3, vec![0, 0])),
            LINKS_NAME,
            key(3, 1),
            "listed twice",
        ),
        // the second end has no list for node 1
        (
            broken(|s| {
                s.many_to_many(LINKS).2.remove(0);
            }),
            LINKS_NAME,
            None,
            "the second end's lists miss links of the first",
        ),
    ];
    for (snap, location, key, detail) in cases {
        let e = refused_at(&snap, Invariant::DuplicateLink, location, key);
        assert_eq!(e.detail, detail);
    }
}

#[test]
fn an_entity_linked_to_itself_where_the_relation_forbids_it_is_refused() {
    let cases: Vec<(Snap, &str, &str)> = vec![
        (
            broken(|s| *s.one_to_many(TREE) = vec![(0, vec![1]), (3, vec![3])]),
            TREE_NAME,
            "its own parent",
        ),
        (
            broken(|s| s.one_to_one(TWIN).push((3, 3))),
            TWIN_NAME,
            "its own partner",
        ),
        (
            broken(|s| {
                let (a, _, b) = s.many_to_many(LINKS);
                a.push((3, vec![3]));
                b[1].1.push(3);
            }),
            LINKS_NAME,
            "linked to itself",
        ),
    ];
    for (snap, location, detail) in cases {
        let e = refused_at(&snap, Invariant::NoSelfLink, location, key(3, 1));
        assert_eq!(e.detail, detail);
    }
}

#[test]
fn a_cycle_in_a_relation_declared_acyclic_is_refused() {
    let cases: Vec<(Snap, &str, &[u32])> = vec![
        (
            broken(|s| *s.one_to_many(TREE) = vec![(0, vec![1]), (1, vec![0])]),
            TREE_NAME,
            &[0, 1],
        ),
        (
            broken(|s| *s.one_to_many(TREE) = vec![(0, vec![1]), (1, vec![3]), (3, vec![0])]),
            TREE_NAME,
            &[0, 1, 3],
        ),
        (
            broken(|s| *s.one_to_one(TWIN) = vec![(0, 1), (1, 0)]),
            TWIN_NAME,
            &[0, 1],
        ),
        (
            broken(|s| {
                let (a, _, b) = s.many_to_many(LINKS);
                a.push((3, vec![0]));
                b.insert(0, (0, vec![3]));
            }),
            LINKS_NAME,
            &[0, 1, 3],
        ),
    ];
    for (snap, location, cycle) in cases {
        let e = refused(&snap.bytes(), Invariant::Acyclic);
        assert_eq!(
            (e.location.as_str(), e.detail.as_str()),
            (location, "on a cycle")
        );
        let k = e.key.expect("a key on the cycle");
        assert!(cycle.contains(&k.index()) && k.version() == 1, "{e}");
    }
    // a chain is no cycle
    let chain = broken(|s| *s.one_to_many(TREE) = vec![(0, vec![1]), (1, vec![3])]);
    Store::from_snapshot(schema().0, &chain.bytes()).unwrap();
    snapshot::verify(&chain.bytes()).unwrap();
}

#[test]
fn a_base_row_without_exactly_one_kind_or_a_kind_row_without_its_base_row_is_refused() {
    let cases: Vec<(Snap, &str, u32, &str)> = vec![
        (
            broken(|s| s.kind_keys(CIRCLE).push(5)),
            "circle",
            5,
            "kind row without a base row",
        ),
        (
            broken(|s| {
                s.slots(SHAPES)[1] = Slot::Vacant(1);
                s.free(SHAPES).push(1);
            }),
            "square",
            1,
            "kind row without a base row",
        ),
        (
            broken(|s| s.kind_keys(CIRCLE).push(0)),
            "circle",
            0,
            "kind row stored twice",
        ),
        (
            broken(|s| s.kind_keys(SQUARE).clear()),
            "shapes",
            1,
            "row without a kind",
        ),
        (
            broken(|s| s.kind_keys(CIRCLE).insert(1, 1)),
            "shapes",
            1,
            "row of two kinds",
        ),
    ];
    for (snap, location, index, detail) in cases {
        let e = refused_at(&snap, Invariant::OneKind, location, key(index, 1));
        assert_eq!(e.detail, detail);
    }
}

#[test]
fn a_child_with_parents_in_two_relations_of_one_polymorphic_parent_end_is_refused() {
    let detail = "a parent in two relations of one polymorphic parent end";
    // note 1: shape 1's, and node 0's too
    let snap = broken(|s| s.one_to_many(NODE_NOTES)[0].1.push(1));
    let e = refused_at(&snap, Invariant::OnePolyParent, "notes.subject", key(1, 1));
    assert_eq!(e.detail, detail);
    // note 0: node 0's, and shape 2's too
    let snap = broken(|s| s.one_to_many(SHAPE_NOTES).push((2, vec![0])));
    let e = refused_at(&snap, Invariant::OnePolyParent, "notes.subject", key(0, 1));
    assert_eq!(e.detail, detail);
}

#[test]
fn header_counts_that_do_not_match_the_sections_are_refused_and_checked_last() {
    let (entities, links) = (valid().entity_count(), valid().link_count());
    assert_eq!((entities, links), (10, 12));
    let cases = [
        (
            Some(11),
            None,
            "the header counts 11 entities, the tables hold 10",
        ),
        (
            Some(9),
            None,
            "the header counts 9 entities, the tables hold 10",
        ),
        (
            Some(0),
            Some(0),
            "the header counts 0 entities, the tables hold 10",
        ),
        (
            None,
            Some(13),
            "the header counts 13 links, the relations hold 12",
        ),
        (
            None,
            Some(11),
            "the header counts 11 links, the relations hold 12",
        ),
    ];
    for (entities, links, detail) in cases {
        let snap = broken(|s| (s.entities, s.links) = (entities, links));
        let e = refused_at(&snap, Invariant::Counts, "header", None);
        assert_eq!(e.detail, detail);
    }
    // another broken invariant is reported first, counts or not
    let snap = broken(|s| {
        s.one_to_many(TREE)[0].1.push(99);
        s.links = Some(links);
    });
    refused(&snap.bytes(), Invariant::LiveEndpoint);
}

/// Every invariant, and the test above that breaks it.
const NEGATIVE_TESTS: [(Invariant, fn()); 13] = [
    (
        Invariant::Fingerprint,
        a_fingerprint_that_is_not_the_described_schemas_is_refused,
    ),
    (
        Invariant::SchemaDescription,
        a_malformed_schema_description_is_refused,
    ),
    (
        Invariant::SlotVersion,
        a_slot_whose_version_is_zero_or_not_below_its_highest_is_refused,
    ),
    (
        Invariant::Canonical,
        lists_and_pairs_out_of_their_one_canonical_order_are_refused,
    ),
    (
        Invariant::LiveEndpoint,
        a_link_to_a_vacant_slot_a_slot_out_of_range_or_a_row_of_another_kind_is_refused,
    ),
    (
        Invariant::Cardinality,
        a_child_with_two_parents_or_an_entity_with_two_partners_is_refused,
    ),
    (
        Invariant::DuplicateLink,
        a_many_to_many_pair_linked_twice_or_ends_that_disagree_are_refused,
    ),
    (
        Invariant::NoSelfLink,
        an_entity_linked_to_itself_where_the_relation_forbids_it_is_refused,
    ),
    (
        Invariant::Acyclic,
        a_cycle_in_a_relation_declared_acyclic_is_refused,
    ),
    (
        Invariant::OneKind,
        a_base_row_without_exactly_one_kind_or_a_kind_row_without_its_base_row_is_refused,
    ),
    (
        Invariant::OnePolyParent,
        a_child_with_parents_in_two_relations_of_one_polymorphic_parent_end_is_refused,
    ),
    (
        Invariant::Counts,
        header_counts_that_do_not_match_the_sections_are_refused_and_checked_last,
    ),
    (
        Invariant::FreeList,
        a_free_list_naming_a_slot_out_of_range_twice_or_retired_or_missing_a_vacant_slot_is_refused,
    ),
];

/// The variants of `Invariant`, read from its source: a variant added there fails
/// [`every_invariant_has_a_negative_test`] until a test breaks it.
fn declared_invariants() -> Vec<String> {
    let source = include_str!("../src/snapshot/error.rs");
    let start = source.find("pub enum Invariant {").expect("the enum") + 20;
    let body = &source[start..start + source[start..].find('}').expect("its end")];
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
        .map(|l| l.trim_end_matches(',').to_string())
        .collect()
}

#[test]
fn every_invariant_has_a_negative_test() {
    let mut declared = declared_invariants();
    let mut tested: Vec<String> = NEGATIVE_TESTS
        .iter()
        .map(|(i, _)| format!("{i:?}"))
        .collect();
    declared.sort();
    tested.sort();
    assert_eq!(declared.len(), 13, "{declared:?}");
    assert_eq!(tested, declared);
    for (_, test) in NEGATIVE_TESTS {
        test();
    }
    println!(
        "invariants with a negative test: {} of {}",
        tested.len(),
        declared.len()
    );
}
