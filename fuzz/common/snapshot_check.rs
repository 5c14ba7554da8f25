//! The checks both snapshot fuzz targets run on a whole snapshot file: every reader
//! (`inspect`, `inspect_partial`, `verify`, `dot`, `Store::from_snapshot`) must return
//! without panicking, and
//! they must agree with each other; a snapshot that loads must give a store that passes
//! `check_integrity`, that re-saves to exactly the same bytes, and that keeps working
//! (inserts into every table and kind, then removes of everything, integrity after each
//! phase).

use relgraph::snapshot::{self, DotScope, SnapshotError, SnapshotInfo};
use relgraph::{Entity, Key, Store};

use crate::snapshot_schema::*;

/// Runs every reader on `bytes` and checks that they agree. Returns the result of the
/// load (the store has been checked and used up).
pub fn check_file(bytes: &[u8]) -> Result<(), SnapshotError> {
    let (schema, h) = schema();
    let info = snapshot::inspect(bytes);
    let partial = snapshot::inspect_partial(bytes);
    let verified = snapshot::verify(bytes);
    let drawn = snapshot::dot(bytes, &DotScope::All);
    let loaded = Store::from_snapshot(schema, bytes);

    // every error displays
    for e in [
        info.as_ref().err(),
        verified.as_ref().err(),
        drawn.as_ref().err(),
        loaded.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        let _ = e.to_string();
    }

    // inspect_partial reads what inspect reads, and fails where it fails
    match (&info, &partial.error) {
        (Ok(i), None) => {
            assert_eq!(partial.tables, i.tables, "inspect_partial's tables");
            assert_eq!(partial.relations, i.relations, "inspect_partial's relations");
        }
        (Err(e), Some(p)) => assert_eq!(e.to_string(), p.to_string(), "inspect_partial"),
        _ => panic!("inspect and inspect_partial disagree on whether the snapshot is sound"),
    }

    // verify is inspect plus the graph checks; dot draws what verify accepts
    if let Ok(v) = &verified {
        match &info {
            Ok(i) => assert_eq!(v, i, "verify and inspect describe the snapshot differently"),
            Err(e) => panic!("verify accepted a snapshot that inspect refused: {e}"),
        }
    }
    match (&verified, &drawn) {
        (Ok(_), Err(e)) => panic!("dot refused a snapshot that verify accepted: {e}"),
        (Err(e), Ok(_)) => panic!("dot drew a snapshot that verify refused: {e}"),
        _ => {}
    }

    let store = loaded?;
    let info = match verified {
        Ok(info) => info,
        Err(e) => panic!("a snapshot loaded but verify refused it: {e}"),
    };
    if let Err(e) = store.check_integrity() {
        panic!("a loaded store breaks integrity: {e}");
    }
    check_counts(&store, h, &info);
    let again = store.to_snapshot().expect("a loaded store saves");
    if again != bytes {
        let at = again
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(again.len().min(bytes.len()));
        panic!(
            "re-saving a loaded store gave other bytes: {} bytes instead of {}, first \
             difference at offset {at}",
            again.len(),
            bytes.len()
        );
    }
    keep_using(store, h);
    Ok(())
}

/// The rows of every table and kind and the links of every relation, against what
/// `inspect` read from the file.
fn check_counts(s: &Store, h: Handles, info: &SnapshotInfo) {
    let rows = [
        ("accounts", s.len::<Account>()),
        ("profiles", s.len::<Profile>()),
        ("docs", s.len::<Doc>()),
        ("labels", s.len::<Label>()),
        ("folders", s.len::<Folder>()),
        ("comments", s.len::<Comment>()),
        ("assets", s.len::<Asset>()),
        ("image", s.len::<Image>()),
        ("clip", s.len::<Clip>()),
        ("blob", s.len::<Blob>()),
    ];
    for (name, n) in rows {
        let t = info.tables.iter().find(|t| t.name == name);
        assert_eq!(t.map(|t| t.rows), Some(n as u64), "rows of {name}");
    }
    let links = [
        s.link_count(h.authorship),
        s.link_count(h.profile),
        s.link_count(h.labelling),
        s.link_count(h.tree),
        s.link_count(h.see_also),
        s.link_count(h.filing),
        s.link_count(h.follows),
        s.link_count(h.sequel),
        s.link_count(h.owns),
        s.link_count(h.poster),
        s.link_count(h.on_docs),
        s.link_count(h.on_images),
        s.link_count(h.tagged),
    ];
    let stored: Vec<u64> = info.relations.iter().map(|r| r.links).collect();
    let links: Vec<u64> = links.iter().map(|&n| n as u64).collect();
    assert_eq!(stored, links, "links per relation");
    assert_eq!(
        info.header.links,
        links.iter().sum::<u64>(),
        "header link count"
    );
}

fn remove_all<T: Entity>(s: &mut Store) {
    let keys: Vec<Key<T>> = s.keys::<T>().collect();
    for k in keys {
        // restrict rules may refuse; a cascade may have taken it already
        let _ = s.remove(k);
    }
}

/// A loaded store keeps working: an insert into every table and kind, then a remove of
/// every entity (delete rules across the loaded graph), integrity after each phase.
fn keep_using(mut s: Store, h: Handles) {
    let account = s.insert(Account {
        name: "new".into(),
        role: Role::Owner,
        aliases: vec![],
        karma: None,
        active: true,
    });
    s.insert(Profile {
        bio: String::new(),
        links: vec![],
        initial: 'n',
    });
    let doc = s.insert(Doc {
        title: "new".into(),
        body: None,
        revisions: vec![],
        status: Status::Draft,
    });
    s.insert(Label {
        text: "new".into(),
        color: None,
    });
    let folder = s.insert(Folder {
        name: "new".into(),
        weight: 0.0,
    });
    s.insert(Comment {
        text: "new".into(),
        score: 0,
    });
    let asset = Asset {
        uri: "new".into(),
        bytes: 0,
    };
    let image = s.insert_kind(
        h.image,
        asset.clone(),
        Image {
            w: 1,
            h: 1,
            alt: None,
        },
    );
    s.insert_kind(
        h.clip,
        asset.clone(),
        Clip {
            frames: vec![],
            codec: Codec::Av1,
            fps: 1.0,
        },
    );
    s.insert_kind(h.blob, asset, Blob(vec![]));
    // links to the new rows from the loaded ones
    for a in s.keys::<Account>().collect::<Vec<_>>() {
        let _ = s.link(h.authorship, a, doc);
        let _ = s.link(h.follows, a, account);
    }
    for f in s.keys::<Folder>().collect::<Vec<_>>() {
        let _ = s.link(h.tree, folder, f);
        let _ = s.link(h.see_also, f, folder);
    }
    for d in s.keys::<Doc>().collect::<Vec<_>>() {
        let _ = s.link(h.sequel, d, doc);
    }
    let _ = s.link_with(h.tagged, image, account, Some((1, 2)));
    if let Err(e) = s.check_integrity() {
        panic!("integrity after inserts into a loaded store: {e}");
    }
    remove_all::<Comment>(&mut s);
    remove_all::<Asset>(&mut s);
    remove_all::<Doc>(&mut s);
    remove_all::<Folder>(&mut s);
    remove_all::<Label>(&mut s);
    remove_all::<Account>(&mut s);
    remove_all::<Profile>(&mut s);
    if let Err(e) = s.check_integrity() {
        panic!("integrity after removes from a loaded store: {e}");
    }
}
