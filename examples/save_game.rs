//! A save game that survives a crash in the middle of saving. The example builds a small
//! game world with every kind of relation (a player's inventory, one-to-many with cascade;
//! a player's mount, one-to-one; guild memberships, many-to-many with a rank on each link;
//! a quest prerequisite chain, self-referential and declared acyclic; an event log whose
//! rows are battles, trades or chats, kinds of one base; trophies held by a player or a
//! guild, a polymorphic parent) and saves it. It then changes the world and starts a child
//! process that saves the changed world but crashes (`abort`) halfway through writing the
//! file. The parent shows the crash, then that the file still loads, is exactly the last
//! good save and passes `relgraph::snapshot::verify`; finally it saves the changed world
//! properly and loads it back.
//!
//! Run with `cargo run --release --example save_game -- [PATH]` (default:
//! `save_game.rlg` in the system's temp folder).

use std::env;
use std::error::Error;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use relgraph::snapshot::{self, temp_files, FileSystem, StdFileSystem};
use relgraph::{DeleteRule, Kind, ManyToMany, OneToMany, OneToOne, Schema, Store, Which};
use serde::{Deserialize, Serialize};
use DeleteRule::Cascade;

/// Set in the child process: it saves through a file system that crashes.
const CHILD_VAR: &str = "SAVE_GAME_CRASHING_CHILD";

/// A player.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Player {
    name: String,
    level: u32,
}

/// An item in a player's inventory.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Item {
    name: String,
}

/// A player's mount.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Mount {
    name: String,
}

/// A guild of players.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Guild {
    name: String,
}

/// The payload of a guild membership.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Membership {
    rank: String,
}

/// A quest; some need another one done first.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Quest {
    title: String,
}

/// The base of the event log: what every event has.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Event {
    turn: u32,
}

/// An event kind: a battle.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Battle {
    enemy: String,
    won: bool,
}

/// An event kind: a trade.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Trade {
    gold: i64,
}

/// An event kind: a chat message.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Chat {
    text: String,
}

/// A trophy, held by a player or by a guild.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Trophy {
    name: String,
}

/// The handles of the game's schema.
#[derive(Clone, Copy)]
struct Game {
    inventory: OneToMany<Player, Item>,
    mount: OneToOne<Player, Mount>,
    members: ManyToMany<Guild, Player, Membership>,
    prerequisite: OneToMany<Quest, Quest>,
    log: OneToMany<Player, Event>,
    battle: Kind<Event, Battle>,
    trade: Kind<Event, Trade>,
    chat: Kind<Event, Chat>,
    player_trophies: OneToMany<Player, Trophy>,
    guild_trophies: OneToMany<Guild, Trophy>,
}

fn schema() -> (Schema, Game) {
    let mut s = Schema::new();
    let players = s.table::<Player>("players");
    let items = s.table::<Item>("items");
    let mounts = s.table::<Mount>("mounts");
    let guilds = s.table::<Guild>("guilds");
    let quests = s.table::<Quest>("quests");
    let events = s.table::<Event>("events");
    let trophies = s.table::<Trophy>("trophies");
    let holder = s.poly_parent(trophies, "holder");
    let game = Game {
        inventory: s.relate(players.many("items").on_delete(Cascade), items.one("owner")),
        mount: s.relate(players.one("mount").on_delete(Cascade), mounts.one("rider")),
        members: s.relate_with(guilds.many("members"), players.many("guilds")),
        prerequisite: s.relate(quests.many("unlocks"), quests.one("needs").acyclic()),
        log: s.relate(
            players.many("events").on_delete(Cascade),
            events.one("player"),
        ),
        battle: s.kind(events, "battle"),
        trade: s.kind(events, "trade"),
        chat: s.kind(events, "chat"),
        player_trophies: s.relate(players.many("trophies").on_delete(Cascade), holder),
        guild_trophies: s.relate(guilds.many("trophies"), holder),
    };
    (s, game)
}

/// The world of the first save. Deterministic: the child process builds the same one.
fn build(schema: Schema, g: &Game) -> Result<Store, Box<dyn Error>> {
    let mut s = Store::new(schema);
    let player = |s: &mut Store, name: &str, level| {
        let name = name.into();
        s.insert(Player { name, level })
    };
    let aria = player(&mut s, "Aria", 12);
    let brom = player(&mut s, "Brom", 9);
    let cade = player(&mut s, "Cade", 4);
    for (owner, name) in [(aria, "longsword"), (aria, "healing potion"), (brom, "axe")] {
        let item = s.insert(Item { name: name.into() });
        s.link(g.inventory, owner, item)?;
    }
    let mare = s.insert(Mount {
        name: "grey mare".into(),
    });
    s.link(g.mount, aria, mare)?;
    let wardens = s.insert(Guild {
        name: "Wardens".into(),
    });
    for (p, rank) in [(aria, "captain"), (brom, "veteran"), (cade, "recruit")] {
        let rank = rank.into();
        s.link_with(g.members, wardens, p, Membership { rank })?;
    }
    let mut previous = None;
    for title in ["The Lost Cellar", "Rats in the Mill", "The Old Bridge"] {
        let q = s.insert(Quest {
            title: title.into(),
        });
        if let Some(p) = previous {
            s.link(g.prerequisite, p, q)?;
        }
        previous = Some(q);
    }
    let battle = Battle {
        enemy: "wolf".into(),
        won: true,
    };
    let e = s.insert_kind(g.battle, Event { turn: 1 }, battle);
    s.link(g.log, aria, g.battle.upcast(e))?;
    let e = s.insert_kind(g.trade, Event { turn: 2 }, Trade { gold: -30 });
    s.link(g.log, brom, g.trade.upcast(e))?;
    let chat = Chat {
        text: "meet at the bridge".into(),
    };
    let e = s.insert_kind(g.chat, Event { turn: 3 }, chat);
    s.link(g.log, cade, g.chat.upcast(e))?;
    let cup = s.insert(Trophy {
        name: "wolf pelt".into(),
    });
    s.link(g.player_trophies, aria, cup)?;
    let banner = s.insert(Trophy {
        name: "bridge banner".into(),
    });
    s.link(g.guild_trophies, wardens, banner)?;
    s.check_integrity()?;
    Ok(s)
}

/// The first player of that name.
fn find(s: &Store, name: &str) -> Result<relgraph::Key<Player>, Box<dyn Error>> {
    let found = s.find::<Player>(|p| p.name == name);
    Ok(found.ok_or_else(|| format!("no player {name}"))?)
}

/// What happens in the game after the first save: Brom leaves (his items and events go
/// with him), Cade is promoted, Aria finds a shield, a quest is added to the chain.
fn play(s: &mut Store, g: &Game) -> Result<(), Box<dyn Error>> {
    let (aria, brom, cade) = (find(s, "Aria")?, find(s, "Brom")?, find(s, "Cade")?);
    s.remove(brom)?;
    let wardens = s.keys::<Guild>().next().ok_or("no guild")?;
    s.update_payload(g.members, wardens, cade, |m| m.rank = "veteran".into())?;
    let shield = s.insert(Item {
        name: "oak shield".into(),
    });
    s.link(g.inventory, aria, shield)?;
    s.update(aria, |p| p.level += 1)?;
    let last = s.keys::<Quest>().last().ok_or("no quest")?;
    let next = s.insert(Quest {
        title: "Beyond the Bridge".into(),
    });
    s.link(g.prerequisite, last, next)?;
    let battle = Battle {
        enemy: "troll".into(),
        won: false,
    };
    let e = s.insert_kind(g.battle, Event { turn: 4 }, battle);
    s.link(g.log, cade, g.battle.upcast(e))?;
    s.check_integrity()?;
    Ok(())
}

/// Prints a few facts of a world.
fn facts(s: &Store, g: &Game) -> Result<(), Box<dyn Error>> {
    println!(
        "    players {}, items {}, mounts {}, quests {}, events {} (battles {}, trades {}, \
         chats {}), trophies {}",
        s.len::<Player>(),
        s.len::<Item>(),
        s.len::<Mount>(),
        s.len::<Quest>(),
        s.len::<Event>(),
        s.len::<Battle>(),
        s.len::<Trade>(),
        s.len::<Chat>(),
        s.len::<Trophy>()
    );
    let aria = find(s, "Aria")?;
    let items: Vec<&str> = s
        .children(g.inventory, aria)
        .map(|i| s[i].name.as_str())
        .collect();
    let mount = s.partner(g.mount, aria).map(|m| s[m].name.as_str());
    println!(
        "    Aria (level {}) carries {items:?}, rides {mount:?}",
        s[aria].level
    );
    for (guild, gv) in s.iter::<Guild>() {
        let members: Vec<String> = s
            .targets_with(g.members, guild)
            .map(|(p, m)| format!("{} ({})", s[p].name, m.rank))
            .collect();
        println!("    guild {}: {}", gv.name, members.join(", "));
    }
    let last = s.keys::<Quest>().last().ok_or("no quest")?;
    let mut chain: Vec<&str> = s
        .ancestors(g.prerequisite, last)
        .map(|q| s[q].title.as_str())
        .collect();
    chain.reverse();
    chain.push(s[last].title.as_str());
    println!("    quest chain: {}", chain.join(" -> "));
    for (player, pv) in s.iter::<Player>() {
        for e in s.children(g.log, player) {
            let what = match s.kind_of(e, (g.battle, g.trade, g.chat)) {
                Which::First(b) => format!("fought a {} (won: {})", b.enemy, b.won),
                Which::Second(t) => format!("traded for {} gold", t.gold),
                Which::Third(c) => format!("said {:?}", c.text),
                Which::Other => return Err("an event of no kind".into()),
            };
            println!("    turn {}: {} {what}", s[e].turn, pv.name);
        }
    }
    for (player, pv) in s.iter::<Player>() {
        for t in s.children(g.player_trophies, player) {
            println!("    trophy {:?} held by player {}", s[t].name, pv.name);
        }
    }
    for (guild, gv) in s.iter::<Guild>() {
        for t in s.children(g.guild_trophies, guild) {
            println!("    trophy {:?} held by guild {}", s[t].name, gv.name);
        }
    }
    Ok(())
}

/// The real file system, except that the process crashes halfway through writing the
/// snapshot: half of the bytes reach the temp file, then `abort`.
struct CrashHalfway;

/// The temp file being written when the crash comes.
struct CrashingFile(fs::File);

impl Write for CrashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let half = buf.len() / 2;
        self.0.write_all(&buf[..half])?;
        println!(
            "  child: {half} of {} bytes written; crashing now",
            buf.len()
        );
        io::stdout().flush()?;
        std::process::abort();
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FileSystem for CrashHalfway {
    type File = CrashingFile;
    fn read_link(&mut self, path: &Path) -> io::Result<Option<PathBuf>> {
        StdFileSystem.read_link(path)
    }
    fn list_dir(&mut self, dir: &Path) -> io::Result<Vec<OsString>> {
        StdFileSystem.list_dir(dir)
    }
    fn remove_stale(&mut self, path: &Path) -> io::Result<bool> {
        StdFileSystem.remove_stale(path)
    }
    fn create_new(&mut self, path: &Path) -> io::Result<CrashingFile> {
        Ok(CrashingFile(StdFileSystem.create_new(path)?))
    }
    fn sync_file(&mut self, file: &mut CrashingFile) -> io::Result<()> {
        StdFileSystem.sync_file(&mut file.0)
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        StdFileSystem.sync_dir(dir)
    }
    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_file(path)
    }
}

/// The child process: plays the same game and saves it through the crashing file system.
fn child(path: &Path) -> Result<(), Box<dyn Error>> {
    let (schema, g) = schema();
    let mut store = build(schema, &g)?;
    play(&mut store, &g)?;
    println!("  child: saving the changed world to {}", path.display());
    store.save_with(&mut CrashHalfway, path)?;
    Err("the child was meant to crash".into())
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = match env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => env::temp_dir().join("save_game.rlg"),
    };
    if env::var_os(CHILD_VAR).is_some() {
        return child(&path);
    }

    println!("== a save game that survives a crash while saving ==");
    let (schema, g) = schema();
    let mut store = build(schema.clone(), &g)?;
    store.save(&path)?;
    let good = store.to_snapshot()?;
    println!(
        "saved the world to {} ({} bytes):",
        path.display(),
        good.len()
    );
    facts(&store, &g)?;

    play(&mut store, &g)?;
    println!(
        "\nplayed on: Brom left (his axe and his trade went with him), Cade promoted, \
         a shield found, a quest added:"
    );
    facts(&store, &g)?;

    println!("\nstarting a child process that saves the changed world and crashes halfway");
    let status = Command::new(env::current_exe()?)
        .arg(&path)
        .env(CHILD_VAR, "1")
        .status()?;
    println!(
        "the child exited with {status} (success: {})",
        status.success()
    );
    if status.success() {
        return Err("the child did not crash".into());
    }
    for temp in temp_files(&path)? {
        println!(
            "it left a half-written temp file: {} ({} bytes)",
            temp.display(),
            fs::metadata(&temp)?.len()
        );
    }

    let loaded = Store::load(schema.clone(), &path)?;
    println!("\nthe save file still loads:");
    facts(&loaded, &g)?;
    let same = loaded.to_snapshot()? == good;
    println!("it is exactly the last good save: {same}");
    if !same {
        return Err("the file is not the last good save".into());
    }
    let info = snapshot::verify(&fs::read(&path)?)?;
    println!(
        "snapshot::verify accepts it: format {}, {} tables, {} relations, {} entities, {} links",
        info.header.version,
        info.tables.len(),
        info.relations.len(),
        info.header.entities,
        info.header.links
    );

    store.save(&path)?;
    println!(
        "\nsaved the changed world properly; temp file left: {}",
        !temp_files(&path)?.is_empty()
    );
    let reloaded = Store::load(schema, &path)?;
    println!("loaded back:");
    facts(&reloaded, &g)?;
    let same = reloaded.to_snapshot()? == store.to_snapshot()?;
    println!("it is exactly the changed world: {same}");
    if !same {
        return Err("the new save does not hold the changed world".into());
    }
    Ok(())
}
