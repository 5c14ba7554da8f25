//! Writes the committed seeds of the snapshot fuzz targets: valid snapshots of varied
//! worlds of the fixed schema (`common/snapshot_schema.rs`) into `seeds/snapshot_bytes/`,
//! and their payloads (the bytes after the 72-byte header) into `seeds/snapshot_payload/`.
//! Every world is checked as the targets check it (load, integrity, byte-identical
//! re-save) and must stay under 4 KiB. Deterministic: a rerun gives the same files.
//!
//! Run from `fuzz/`: `cargo run --example snapshot_seeds` (after any change to the schema,
//! which changes its fingerprint and so every seed).

#[path = "../common/snapshot_check.rs"]
mod snapshot_check;
#[path = "../common/snapshot_schema.rs"]
mod snapshot_schema;

use std::fs;
use std::path::Path;

use relgraph::snapshot::{checksum, Header, Invariant, SnapshotError, HEADER_LEN};
use relgraph::{Entity, Key, Store};

use snapshot_schema::*;

const MAX_SEED: usize = 4096;

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn text(&mut self) -> String {
        const TEXTS: [&str; 8] = [
            "",
            "a",
            "Ann",
            "Zoë",
            "東京",
            "🦀 crab",
            "a longer text, with punctuation; and spaces",
            "tab\tnewline\nquote\"",
        ];
        TEXTS[self.below(TEXTS.len())].to_string()
    }

    fn maybe_text(&mut self) -> Option<String> {
        self.chance(50).then(|| self.text())
    }

    fn account(&mut self) -> Account {
        let role = match self.below(4) {
            0 => Role::Owner,
            1 => Role::Editor {
                since: self.next() as u32 >> self.below(32),
            },
            2 => Role::Guest(self.text()),
            _ => Role::Banned(self.maybe_text()),
        };
        Account {
            name: self.text(),
            role,
            aliases: (0..self.below(3)).map(|_| self.text()).collect(),
            karma: self
                .chance(60)
                .then(|| (self.next() as i64) >> self.below(64)),
            active: self.chance(50),
        }
    }

    fn profile(&mut self) -> Profile {
        Profile {
            bio: self.text(),
            links: (0..self.below(3))
                .map(|_| (self.text(), self.next() as u16))
                .collect(),
            initial: ['A', 'ß', '東', '🦀'][self.below(4)],
        }
    }

    fn doc(&mut self) -> Doc {
        let status = match self.below(3) {
            0 => Status::Draft,
            1 => Status::Published(self.next() >> self.below(64)),
            _ => Status::Archived {
                reason: self.text(),
            },
        };
        Doc {
            title: self.text(),
            body: self.maybe_text(),
            revisions: (0..self.below(4))
                .map(|_| self.next() as u32 >> self.below(32))
                .collect(),
            status,
        }
    }

    fn label(&mut self) -> Label {
        Label {
            text: self.text(),
            color: self
                .chance(50)
                .then(|| [self.next() as u8, self.next() as u8, 255]),
        }
    }

    fn folder(&mut self) -> Folder {
        Folder {
            name: self.text(),
            weight: [0.0, -0.0, 1.5, f64::MAX, f64::INFINITY, f64::NAN][self.below(6)],
        }
    }

    fn comment(&mut self) -> Comment {
        Comment {
            text: self.text(),
            score: self.next() as i16,
        }
    }

    fn asset(&mut self) -> Asset {
        Asset {
            uri: self.text(),
            bytes: self.next() >> self.below(64),
        }
    }

    fn image(&mut self) -> Image {
        Image {
            w: self.next() as u16,
            h: self.below(300) as u16,
            alt: self.maybe_text(),
        }
    }

    fn clip(&mut self) -> Clip {
        let codec = match self.below(3) {
            0 => Codec::H264,
            1 => Codec::Av1,
            _ => Codec::Other(self.text()),
        };
        Clip {
            frames: (0..self.below(5)).map(|_| self.next() as u16).collect(),
            codec,
            fps: [24.0, 29.97, -1.0, f32::NAN][self.below(4)],
        }
    }

    fn blob(&mut self) -> Blob {
        Blob((0..self.below(6)).map(|_| self.next() as u8).collect())
    }

    fn placement(&mut self) -> Placement {
        Placement {
            weight: self.next() as i32 >> self.below(32),
            note: self.maybe_text(),
        }
    }

    fn spot(&mut self) -> Spot {
        self.chance(50)
            .then(|| (self.next() as u16, self.next() as u16))
    }

    fn pick<T: Entity>(&mut self, s: &Store) -> Option<Key<T>> {
        let keys: Vec<Key<T>> = s.keys::<T>().collect();
        (!keys.is_empty()).then(|| keys[self.below(keys.len())])
    }
}

/// One random change; errors (stale keys, cycles, restrict rules) are part of the game.
fn random_op(s: &mut Store, h: &Handles, r: &mut Rng) {
    match r.below(24) {
        0 | 1 => {
            s.insert(r.account());
        }
        2 => {
            s.insert(r.profile());
        }
        3 | 4 => {
            s.insert(r.doc());
        }
        5 => {
            s.insert(r.label());
        }
        6 => {
            s.insert(r.folder());
        }
        7 => {
            s.insert(r.comment());
        }
        8 => {
            let asset = r.asset();
            match r.below(3) {
                0 => s.insert_kind(h.image, asset, r.image()).raw(),
                1 => s.insert_kind(h.clip, asset, r.clip()).raw(),
                _ => s.insert_kind(h.blob, asset, r.blob()).raw(),
            };
        }
        9 => {
            let _ = match r.below(5) {
                0 => r.pick::<Account>(s).map(|k| s.remove(k)),
                1 => r.pick::<Doc>(s).map(|k| s.remove(k)),
                2 => r.pick::<Folder>(s).map(|k| s.remove(k)),
                3 => r.pick::<Asset>(s).map(|k| s.remove(k)),
                _ => r.pick::<Comment>(s).map(|k| s.remove(k)),
            };
        }
        10 => {
            if let (Some(a), Some(d)) = (r.pick(s), r.pick(s)) {
                let _ = s.link(h.authorship, a, d);
            }
        }
        11 => {
            if let (Some(a), Some(p)) = (r.pick(s), r.pick(s)) {
                let _ = s.link(h.profile, a, p);
            }
        }
        12 => {
            if let (Some(d), Some(l)) = (r.pick(s), r.pick(s)) {
                let w = r.placement();
                let _ = s.link_with(h.labelling, d, l, w);
            }
        }
        13 => {
            if let (Some(a), Some(b)) = (r.pick(s), r.pick(s)) {
                let _ = s.link(h.tree, a, b);
            }
        }
        14 => {
            if let (Some(a), Some(b)) = (r.pick(s), r.pick(s)) {
                let _ = s.link(h.see_also, a, b);
            }
        }
        15 => {
            if let (Some(f), Some(d)) = (r.pick(s), r.pick(s)) {
                let _ = s.link(h.filing, f, d);
            }
        }
        16 => {
            if let (Some(a), Some(b)) = (r.pick(s), r.pick(s)) {
                let _ = s.link(h.follows, a, b);
            }
        }
        17 => {
            if let (Some(a), Some(b)) = (r.pick(s), r.pick(s)) {
                let _ = s.link(h.sequel, a, b);
            }
        }
        18 => {
            if let (Some(a), Some(m)) = (r.pick(s), r.pick(s)) {
                let _ = s.link(h.owns, a, m);
            }
        }
        19 => {
            if let (Some(c), Some(i)) = (r.pick(s), r.pick(s)) {
                let _ = s.link(h.poster, c, i);
            }
        }
        20 => {
            if let Some(c) = r.pick(s) {
                let _ = match r.below(2) {
                    0 => r.pick(s).map(|d| s.link(h.on_docs, d, c)),
                    _ => r.pick(s).map(|i| s.link(h.on_images, i, c)),
                };
            }
        }
        21 => {
            if let (Some(i), Some(a)) = (r.pick(s), r.pick(s)) {
                let w = r.spot();
                let _ = s.link_with(h.tagged, i, a, w);
            }
        }
        22 => {
            if let Some(m) = r.pick::<Asset>(s) {
                let _ = match r.below(3) {
                    0 => s.change_kind(m, h.image, r.image()).map(|k| k.raw()),
                    1 => s.change_kind(m, h.clip, r.clip()).map(|k| k.raw()),
                    _ => s.change_kind(m, h.blob, r.blob()).map(|k| k.raw()),
                };
            }
        }
        _ => {
            // a transaction that fails: rolled-back removes leave slots live at a
            // version below the highest issued
            let _ = s.transaction(|s| {
                for _ in 0..r.below(4) + 1 {
                    random_op(s, h, r);
                }
                Err::<(), ()>(())
            });
        }
    }
}

fn random_world(seed: u64, ops: usize) -> Store {
    let (schema, h) = schema();
    let mut s = Store::new(schema);
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for _ in 0..ops {
        random_op(&mut s, &h, &mut r);
    }
    s
}

/// One row in every table and kind, one link in every relation.
fn one_of_each() -> Store {
    let (schema, h) = schema();
    let mut s = Store::new(schema);
    let mut r = Rng(7);
    let a = s.insert(r.account());
    let b = s.insert(r.account());
    let p = s.insert(r.profile());
    let d = s.insert(r.doc());
    let d2 = s.insert(r.doc());
    let l = s.insert(r.label());
    let f = s.insert(r.folder());
    let f2 = s.insert(r.folder());
    let c = s.insert(r.comment());
    let c2 = s.insert(r.comment());
    let i = s.insert_kind(h.image, r.asset(), r.image());
    let v = s.insert_kind(h.clip, r.asset(), r.clip());
    s.insert_kind(h.blob, r.asset(), r.blob());
    s.link(h.authorship, a, d).unwrap();
    s.link(h.profile, a, p).unwrap();
    s.link_with(h.labelling, d, l, r.placement()).unwrap();
    s.link(h.tree, f, f2).unwrap();
    s.link(h.see_also, f2, f).unwrap();
    s.link(h.filing, f, d).unwrap();
    s.link(h.follows, a, b).unwrap();
    s.link(h.sequel, d, d2).unwrap();
    s.link(h.owns, a, h.image.upcast(i)).unwrap();
    s.link(h.poster, v, i).unwrap();
    s.link(h.on_docs, d, c).unwrap();
    s.link(h.on_images, i, c2).unwrap();
    s.link_with(h.tagged, i, b, Some((3, 4))).unwrap();
    s
}

/// Vacant slots: removed rows, reused slots (version 2 and up), slots live at a version
/// below their highest (a rolled-back removal after the slot was reused), and trailing
/// vacant slots.
fn vacant_slots() -> Store {
    let (schema, h) = schema();
    let mut s = Store::new(schema);
    let mut r = Rng(11);
    let accounts: Vec<_> = (0..8).map(|_| s.insert(r.account())).collect();
    for &k in [&accounts[1], &accounts[4], &accounts[7]] {
        s.remove(k).unwrap();
    }
    s.insert(r.account()); // reuses slot 7 at version 2
    let docs: Vec<_> = (0..4).map(|_| s.insert(r.doc())).collect();
    s.remove(docs[3]).unwrap(); // trailing vacant slot
    s.remove(docs[0]).unwrap();
    // slot 0 reused at version 2, then removed in a failed transaction that also reuses
    // it: after the rollback it is live at version 2 with 3 issued
    let d = s.insert(r.doc());
    let _ = s.transaction(|s| {
        s.remove(d).unwrap();
        s.insert(Doc {
            title: "rolled back".into(),
            body: None,
            revisions: vec![],
            status: Status::Draft,
        });
        Err::<(), ()>(())
    });
    let assets: Vec<_> = (0..5)
        .map(|n| match n % 3 {
            0 => h.image.upcast(s.insert_kind(h.image, r.asset(), r.image())),
            1 => h.clip.upcast(s.insert_kind(h.clip, r.asset(), r.clip())),
            _ => h.blob.upcast(s.insert_kind(h.blob, r.asset(), r.blob())),
        })
        .collect();
    s.remove(assets[0]).unwrap();
    s.remove(assets[2]).unwrap();
    s.insert_kind(h.blob, r.asset(), r.blob()); // reuses a base slot
    s.link(h.authorship, accounts[0], docs[1]).unwrap();
    s.link(h.follows, accounts[2], accounts[0]).unwrap();
    s
}

/// Kinds: rows of every kind in a mixed order, kinds changed, rows removed.
fn kinds() -> Store {
    let (schema, h) = schema();
    let mut s = Store::new(schema);
    let mut r = Rng(13);
    let mut all = Vec::new();
    for n in 0..9 {
        all.push(match n * 7 % 3 {
            0 => h.image.upcast(s.insert_kind(h.image, r.asset(), r.image())),
            1 => h.clip.upcast(s.insert_kind(h.clip, r.asset(), r.clip())),
            _ => h.blob.upcast(s.insert_kind(h.blob, r.asset(), r.blob())),
        });
    }
    s.change_kind(all[0], h.clip, r.clip()).unwrap();
    s.change_kind(all[4], h.image, r.image()).unwrap();
    s.change_kind(all[5], h.blob, r.blob()).unwrap();
    s.remove(all[3]).unwrap();
    let owner = s.insert(r.account());
    for &m in &all[4..] {
        s.link(h.owns, owner, m).unwrap();
    }
    let images: Vec<_> = s.keys::<Image>().collect();
    let clips: Vec<_> = s.keys::<Clip>().collect();
    for (&c, &i) in clips.iter().zip(images.iter().rev()) {
        s.link(h.poster, c, i).unwrap();
    }
    let c = s.insert(r.comment());
    s.link(h.on_images, images[0], c).unwrap();
    s
}

/// Many-to-many links with payloads, the second end's lists in another order than the
/// first end's.
fn many_to_many() -> Store {
    let (schema, h) = schema();
    let mut s = Store::new(schema);
    let mut r = Rng(17);
    let docs: Vec<_> = (0..5).map(|_| s.insert(r.doc())).collect();
    let labels: Vec<_> = (0..4).map(|_| s.insert(r.label())).collect();
    for (n, &d) in docs.iter().enumerate().rev() {
        for &l in labels.iter().skip(n % 2) {
            s.link_with(h.labelling, d, l, r.placement()).unwrap();
        }
    }
    s.set_targets(h.labelling, docs[2], &[labels[3], labels[0]])
        .unwrap();
    let accounts: Vec<_> = (0..4).map(|_| s.insert(r.account())).collect();
    for &a in accounts.iter().rev() {
        for &b in &accounts {
            let _ = s.link(h.follows, a, b);
        }
    }
    let images: Vec<_> = (0..3)
        .map(|_| s.insert_kind(h.image, r.asset(), r.image()))
        .collect();
    for &i in images.iter().rev() {
        for &a in &accounts[1..] {
            s.link_with(h.tagged, i, a, r.spot()).unwrap();
        }
    }
    s
}

/// The acyclic relations: a deep chain, a wide level, a diamond of see-also links, a chain
/// of sequels.
fn acyclic() -> Store {
    let (schema, h) = schema();
    let mut s = Store::new(schema);
    let mut r = Rng(19);
    let folders: Vec<_> = (0..12).map(|_| s.insert(r.folder())).collect();
    for w in folders[..6].windows(2) {
        s.link(h.tree, w[0], w[1]).unwrap();
    }
    s.set_children(h.tree, folders[6], &folders[7..]).unwrap();
    for (a, b) in [(0, 1), (0, 2), (1, 3), (2, 3), (3, 11), (7, 0)] {
        s.link(h.see_also, folders[a], folders[b]).unwrap();
    }
    let docs: Vec<_> = (0..5).map(|_| s.insert(r.doc())).collect();
    for w in docs.windows(2).rev() {
        s.link(h.sequel, w[1], w[0]).unwrap();
    }
    s.link(h.filing, folders[5], docs[0]).unwrap();
    s
}

/// Comments on docs and on images, some moved from one to the other.
fn poly_parent() -> Store {
    let (schema, h) = schema();
    let mut s = Store::new(schema);
    let mut r = Rng(23);
    let d = s.insert(r.doc());
    let i = s.insert_kind(h.image, r.asset(), r.image());
    let comments: Vec<_> = (0..6).map(|_| s.insert(r.comment())).collect();
    for (n, &c) in comments.iter().enumerate() {
        if n % 2 == 0 {
            s.link(h.on_docs, d, c).unwrap();
        } else {
            s.link(h.on_images, i, c).unwrap();
        }
    }
    s.link(h.on_images, i, comments[0]).unwrap(); // moves it from the doc
    s.remove(comments[3]).unwrap();
    s
}

/// A snapshot whose only row holds a non-minimal varint (`score` 5 written with a u16
/// marker, which bincode accepts): it must be refused as not canonical, or a re-save would
/// differ from the file. The regression input of the first crash of `snapshot_payload`.
fn non_minimal_varint() -> Vec<u8> {
    let (schema, _) = schema();
    let mut s = Store::new(schema);
    s.insert(Comment {
        text: "NONMINIMAL".into(),
        score: 5,
    });
    let bytes = s.to_snapshot().expect("a snapshot");
    let mut payload = bytes[HEADER_LEN..].to_vec();
    let marker = payload
        .windows(10)
        .position(|w| w == b"NONMINIMAL")
        .expect("the row");
    // the row: string length, text, zigzag varint 10; the blob's u64 length before it
    let (len_at, score_at) = (marker - 1 - 8, marker + 10);
    assert_eq!(payload[score_at], 10);
    payload.splice(score_at..=score_at, [251, 10, 0]);
    let blob_len = u64::from_le_bytes(payload[len_at..len_at + 8].try_into().unwrap());
    payload[len_at..len_at + 8].copy_from_slice(&(blob_len + 2).to_le_bytes());
    let mut header = Header::parse(&bytes).expect("a header");
    header.payload_len = payload.len() as u64;
    header.payload_checksum = checksum(&payload);
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&payload);
    match snapshot_check::check_file(&out) {
        Err(SnapshotError::Invalid(e)) if e.invariant == Invariant::Canonical => out,
        r => panic!("a non-minimal varint in a row gave {r:?}"),
    }
}

fn write_bytes(name: &str, bytes: &[u8]) {
    assert!(
        bytes.len() < MAX_SEED,
        "seed {name}: {} bytes, over the seed limit",
        bytes.len()
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    fs::write(dir.join("snapshot_bytes").join(name), bytes).expect("write a seed");
    fs::write(
        dir.join("snapshot_payload").join(name),
        &bytes[HEADER_LEN..],
    )
    .expect("write a seed");
}

fn write(name: &str, store: &Store, count: &mut usize) {
    let bytes = store.to_snapshot().expect("a snapshot");
    if let Err(e) = snapshot_check::check_file(&bytes) {
        panic!("world {name} does not load: {e}");
    }
    write_bytes(name, &bytes);
    let info = relgraph::snapshot::inspect(&bytes).expect("inspect");
    println!(
        "{name}: {} bytes, {} entities, {} links",
        bytes.len(),
        info.header.entities,
        info.header.links
    );
    *count += 1;
}

fn main() {
    // old seeds go, but for the inputs that once crashed a target (`regression-*`)
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for target in ["snapshot_bytes", "snapshot_payload"] {
        let d = dir.join(target);
        fs::create_dir_all(&d).expect("a seed folder");
        for entry in fs::read_dir(&d).expect("a seed folder") {
            let path = entry.expect("a seed").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if !name.starts_with("regression-") {
                fs::remove_file(&path).expect("remove an old seed");
            }
        }
    }
    let mut count = 0;
    let (schema, _) = schema();
    write("empty", &Store::new(schema), &mut count);
    write("one-of-each", &one_of_each(), &mut count);
    write("vacant-slots", &vacant_slots(), &mut count);
    write("kinds", &kinds(), &mut count);
    write("many-to-many", &many_to_many(), &mut count);
    write("acyclic", &acyclic(), &mut count);
    write("poly-parent", &poly_parent(), &mut count);
    // random worlds, from a few operations to as many as fit in a seed
    for seed in 1..=24u64 {
        let mut ops = [8, 24, 60, 120, 200, 300][seed as usize % 6];
        let world = loop {
            let world = random_world(seed, ops);
            if world.to_snapshot().expect("a snapshot").len() < MAX_SEED || ops < 8 {
                break world;
            }
            ops = ops * 3 / 4;
        };
        write(&format!("random-{seed:02}-{ops}ops"), &world, &mut count);
    }
    write_bytes("non-minimal-varint", &non_minimal_varint());
    count += 1;
    println!("wrote {count} seeds to each of seeds/snapshot_bytes and seeds/snapshot_payload");
}
