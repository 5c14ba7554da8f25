//! Format compatibility (T11): golden snapshot files of every released format version load
//! in every later build, and a golden fingerprint pins the schema.
//!
//! The world, its types and its schema are defined here and frozen: they are part of the
//! golden files. `tests/golden/v1/game.rlg` was written by format version 1 and
//! `tests/golden/v2/game.rlg` by format version 2 (whose world also frees item slots out of
//! index order, so that its free list is not the one version 1 derives), each with
//! `cargo test --test snapshot_golden -- --ignored write_the_golden_files`; never rewrite
//! a released version's files.

use std::fmt::Write as _;
use std::path::PathBuf;

use relgraph::snapshot::{self, FORMAT_VERSION};
use relgraph::{
    DeleteRule, Key, Kind, ManyToMany, OneToMany, OneToOne, RawKey, Rules, Schema, Store,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Player {
    name: String,
    level: u32,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    name: String,
    weight: f32,
    rarity: Rarity,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
enum Rarity {
    Common,
    Rare { glow: u8 },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Mount {
    species: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Guild {
    name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
struct Membership {
    rank: u8,
    since: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Quest {
    title: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Event {
    at: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Battle {
    won: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Chat {
    text: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Note {
    text: String,
}

#[derive(Clone, Copy)]
struct H {
    battle: Kind<Event, Battle>,
    chat: Kind<Event, Chat>,
    inventory: OneToMany<Player, Item>,
    mount: OneToOne<Player, Mount>,
    members: ManyToMany<Guild, Player, Membership>,
    prerequisites: OneToMany<Quest, Quest>,
    events: OneToMany<Player, Event>,
    guild_notes: OneToMany<Guild, Note>,
    quest_notes: OneToMany<Quest, Note>,
}

fn schema() -> (Schema, H) {
    let mut s = Schema::new();
    let players = s.table::<Player>("players");
    let items = s.table::<Item>("items");
    let mounts = s.table::<Mount>("mounts");
    let guilds = s.table::<Guild>("guilds");
    let quests = s.table::<Quest>("quests");
    let events = s.table::<Event>("events");
    let notes = s.table::<Note>("notes");
    let battle = s.kind::<Event, Battle>(events, "battle");
    let chat = s.kind::<Event, Chat>(events, "chat");
    let about = s.poly_parent(notes, "about");
    let h = H {
        battle,
        chat,
        inventory: s.one_to_many(players, "items", items, "owner", DeleteRule::Cascade),
        mount: s.one_to_one(players, "mount", mounts, "rider", Rules::new()),
        members: s.many_to_many_with(guilds, "members", players, "guilds", Rules::new()),
        prerequisites: s.one_to_many(
            quests,
            "unlocks",
            quests,
            "requires",
            Rules::new().acyclic(),
        ),
        events: s.one_to_many(players, "events", events, "player", Rules::new()),
        guild_notes: s.one_to_many_poly(guilds, "notes", about, DeleteRule::Cascade),
        quest_notes: s.one_to_many_poly(quests, "notes", about, DeleteRule::Cascade),
    };
    (s, h)
}

/// The golden world: every relation kind, kinds, a polymorphic parent end, payloads,
/// vacant and reused slots, and a slot whose live version is below its highest.
fn build() -> (Store, H) {
    let (s, h) = schema();
    let mut st = Store::new(s);
    let names = ["ann", "bo", "cy", "dee"];
    let players: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            st.insert(Player {
                name: n.to_string(),
                level: i as u32 * 10,
                tags: vec![format!("t{i}"); i],
            })
        })
        .collect();
    for i in 0..9 {
        let item = st.insert(Item {
            name: format!("item{i}"),
            weight: i as f32 * 0.5,
            rarity: if i % 3 == 0 {
                Rarity::Rare { glow: i as u8 }
            } else {
                Rarity::Common
            },
        });
        st.link(h.inventory, players[i % 3], item).unwrap();
    }
    let horse = st.insert(Mount {
        species: "horse".into(),
    });
    st.link(h.mount, players[0], horse).unwrap();
    let guilds: Vec<_> = ["red", "blue"]
        .iter()
        .map(|n| {
            st.insert(Guild {
                name: n.to_string(),
            })
        })
        .collect();
    for (i, &p) in players.iter().enumerate().rev() {
        let m = Membership {
            rank: i as u8,
            since: (i % 2 == 0).then_some(1000 + i as u64),
        };
        st.link_with(h.members, guilds[i % 2], p, m.clone())
            .unwrap();
        if i < 2 {
            st.link_with(h.members, guilds[1 - i % 2], p, m).unwrap();
        }
    }
    let quests: Vec<_> = (0..5)
        .map(|i| {
            st.insert(Quest {
                title: format!("q{i}"),
            })
        })
        .collect();
    for i in 1..5 {
        st.link(h.prerequisites, quests[(i - 1) / 2], quests[i])
            .unwrap();
    }
    for i in 0..6u64 {
        let e = if i % 2 == 0 {
            h.battle
                .upcast(st.insert_kind(h.battle, Event { at: i }, Battle { won: i % 4 == 0 }))
        } else {
            let text = format!("gg{i}");
            h.chat
                .upcast(st.insert_kind(h.chat, Event { at: i }, Chat { text }))
        };
        st.link(h.events, players[i as usize % 4], e).unwrap();
    }
    let n1 = st.insert(Note {
        text: "guild note".into(),
    });
    st.link(h.guild_notes, guilds[0], n1).unwrap();
    let n2 = st.insert(Note {
        text: "quest note".into(),
    });
    st.link(h.quest_notes, quests[2], n2).unwrap();
    // vacant and reused slots
    st.remove(players[3]).unwrap();
    let eve = st.insert(Player {
        name: "eve".into(),
        level: 99,
        tags: vec![],
    });
    st.link_with(h.members, guilds[0], eve, Membership::default())
        .unwrap();
    // a slot whose live version is below the highest it issued: a rolled-back reuse
    let r: Result<(), ()> = st.transaction(|st| {
        st.remove(horse).unwrap();
        st.insert(Mount {
            species: "pony".into(),
        });
        Err(())
    });
    assert!(r.is_err());
    // vacant item slots freed out of index order: version 2 keeps the order they are
    // reused in (the last freed first), version 1 reuses the lowest first
    for i in [2, 7, 4] {
        st.remove(Key::<Item>::from_raw(
            RawKey::from_bits(1 << 32 | i).unwrap(),
        ))
        .unwrap();
    }
    st.check_integrity().unwrap();
    (st, h)
}

/// The keys the next three items get: what a store that loads a save must reproduce.
fn next_item_keys(st: &mut Store) -> Vec<Key<Item>> {
    (0..3)
        .map(|i| {
            st.insert(Item {
                name: format!("new{i}"),
                weight: 0.0,
                rarity: Rarity::Common,
            })
        })
        .collect()
}

/// Every observable fact, a line each.
fn dump(st: &Store, h: &H) -> String {
    let mut out = String::new();
    macro_rules! table {
        ($t:ty) => {
            for (k, v) in st.iter::<$t>() {
                writeln!(out, "{} {k:?} {v:?}", stringify!($t)).unwrap();
            }
        };
    }
    table!(Player);
    table!(Item);
    table!(Mount);
    table!(Guild);
    table!(Quest);
    table!(Event);
    table!(Battle);
    table!(Chat);
    table!(Note);
    for p in st.keys::<Player>() {
        let items: Vec<_> = st.children(h.inventory, p).collect();
        let mount = st.partner(h.mount, p);
        let guilds: Vec<_> = st.sources_with(h.members, p).collect();
        let events: Vec<_> = st.children(h.events, p).collect();
        writeln!(out, "{p:?} items {items:?} mount {mount:?}").unwrap();
        writeln!(out, "{p:?} guilds {guilds:?} events {events:?}").unwrap();
    }
    for g in st.keys::<Guild>() {
        let members: Vec<_> = st.targets_with(h.members, g).collect();
        let notes: Vec<_> = st.children(h.guild_notes, g).collect();
        writeln!(out, "{g:?} members {members:?} notes {notes:?}").unwrap();
    }
    for q in st.keys::<Quest>() {
        let unlocks: Vec<_> = st.children(h.prerequisites, q).collect();
        let notes: Vec<_> = st.children(h.quest_notes, q).collect();
        let kind_of_first = st.keys::<Event>().next().and_then(|e| st.kind_name(e));
        writeln!(
            out,
            "{q:?} unlocks {unlocks:?} notes {notes:?} {kind_of_first:?}"
        )
        .unwrap();
    }
    out
}

fn golden(version: u32, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("v{version}"))
        .join(name)
}

#[test]
#[ignore = "writes the golden files of the current format version; run once per release"]
fn write_the_golden_files() {
    let (st, h) = build();
    std::fs::create_dir_all(golden(FORMAT_VERSION, "")).unwrap();
    st.save(golden(FORMAT_VERSION, "game.rlg")).unwrap();
    std::fs::write(golden(FORMAT_VERSION, "game.txt"), dump(&st, &h)).unwrap();
}

#[test]
fn every_golden_file_loads_with_its_recorded_content() {
    let mut loaded = 0;
    for version in 1..=FORMAT_VERSION {
        let (s, h) = schema();
        let st = Store::load(s, golden(version, "game.rlg"))
            .unwrap_or_else(|e| panic!("golden file of format v{version}: {e}"));
        st.check_integrity().unwrap();
        let expected = std::fs::read_to_string(golden(version, "game.txt")).unwrap();
        assert_eq!(dump(&st, &h), expected, "golden file of format v{version}");
        loaded += 1;
    }
    println!("T11: golden files loaded: {loaded} of {FORMAT_VERSION}");
}

#[test]
fn the_golden_world_saves_to_the_golden_bytes_while_the_format_is_version_2() {
    // When the encoding changes, this fails: bump FORMAT_VERSION, keep reading v1 and v2,
    // and write the new version's golden files next to the old ones.
    let bytes = std::fs::read(golden(2, "game.rlg")).unwrap();
    if FORMAT_VERSION == 2 {
        assert_eq!(build().0.to_snapshot().unwrap(), bytes);
    }
    let info = snapshot::verify(&bytes).unwrap();
    assert_eq!(info.header.version, 2);
    let v1 = snapshot::verify(&std::fs::read(golden(1, "game.rlg")).unwrap()).unwrap();
    assert_eq!(v1.header.version, 1);
}

#[test]
fn a_loaded_v2_golden_file_issues_the_keys_the_saved_store_would_have() {
    let (mut original, _) = build();
    let expected = next_item_keys(&mut original);
    let (s, _) = schema();
    let mut loaded = Store::load(s, golden(2, "game.rlg")).unwrap();
    assert_eq!(next_item_keys(&mut loaded), expected);
    // the last freed slot first: not the lowest-first order of version 1
    let indices: Vec<u32> = expected.iter().map(|k| k.raw().index()).collect();
    assert_eq!(indices, [4, 7, 2]);
    loaded.check_integrity().unwrap();
}

#[test]
fn a_v1_golden_file_reuses_its_vacant_slots_lowest_first() {
    // version 1 kept no free list; the loader derives one: lowest vacant slot first
    let (s, _) = schema();
    let mut st = Store::load(s, golden(1, "game.rlg")).unwrap();
    let before = st.keys::<Player>().count();
    let p = st.insert(Player {
        name: "new".into(),
        level: 0,
        tags: vec![],
    });
    assert_eq!(
        p.raw().index() as usize,
        before,
        "no vacant player slot: a new one"
    );
    st.check_integrity().unwrap();
}

#[test]
fn the_golden_schema_fingerprint_is_pinned() {
    // A change to the schema's canonical text (a table, version, relation, rule or the
    // shape of a row or payload type) changes the fingerprint; saved files still load if
    // the change is compatible, but these golden values make every such change
    // deliberate. A version-1 file's fingerprint is of version 1's canonical text.
    let (s, _) = schema();
    assert_eq!(format!("{:016x}", s.fingerprint()), GOLDEN_FINGERPRINT_V2);
    let header = snapshot::Header::parse(&std::fs::read(golden(2, "game.rlg")).unwrap()).unwrap();
    assert_eq!(
        format!("{:016x}", header.fingerprint),
        GOLDEN_FINGERPRINT_V2
    );
    let header = snapshot::Header::parse(&std::fs::read(golden(1, "game.rlg")).unwrap()).unwrap();
    assert_eq!(
        format!("{:016x}", header.fingerprint),
        GOLDEN_FINGERPRINT_V1
    );
}

#[test]
fn every_golden_table_and_payload_has_a_pinned_shape() {
    // the shape fingerprints of the golden types, as the v2 file records them
    let info = snapshot::inspect(&std::fs::read(golden(2, "game.rlg")).unwrap()).unwrap();
    let shapes: Vec<String> = info
        .tables
        .iter()
        .map(|t| format!("{} {:016x}", t.name, t.shape.expect("traceable")))
        .chain(info.relations.iter().filter_map(|r| {
            r.payload_shape
                .map(|s| format!("{} v{} {s:016x}", r.name, r.payload_version))
        }))
        .collect();
    assert_eq!(shapes.join("\n"), GOLDEN_SHAPES.trim());
    let v1 = snapshot::inspect(&std::fs::read(golden(1, "game.rlg")).unwrap()).unwrap();
    assert!(v1.tables.iter().all(|t| t.shape.is_none()));
}

const GOLDEN_FINGERPRINT_V1: &str = "0b56904622d66fd2";
const GOLDEN_FINGERPRINT_V2: &str = "e89a817263b6cfd5";
const GOLDEN_SHAPES: &str = "
players 65660bdce50436e1
items f71b8c02a3068179
mounts 78b3543307abce43
guilds 78b3543307abce43
quests 78b3543307abce43
events 209c47faded1c824
notes 78b3543307abce43
battle 31a09f12f6815cbd
chat 78b3543307abce43
guilds.members <-> players.guilds v1 5bc58ac69bf05a27
";
