//! The tour: runs every pattern of relgraph in turn and prints what each shows.
//!
//! - one-to-many and one-to-one (`blog.rs`)
//! - many-to-many with a payload (`enrollment.rs`)
//! - self-referential hierarchies and graphs (`org_chart.rs`)
//! - polymorphism: kinds of a base (`notifications.rs`), polymorphic associations
//!   (`comments.rs`)
//! - undo/redo and the change feed (`editor.rs`)
//! - lookups by value and joins: secondary and unique indexes (`queries.rs`)
//! - delete rules and transactions (below)
//! - snapshots: an atomic save, a validated load, a damaged file refused (below)
//!
//! Run with `cargo run --release --example tour`.

#[allow(dead_code)]
mod blog;
#[allow(dead_code)]
mod comments;
#[allow(dead_code)]
mod editor;
#[allow(dead_code)]
mod enrollment;
#[allow(dead_code)]
mod notifications;
#[allow(dead_code)]
mod org_chart;
#[allow(dead_code)]
mod queries;

use relgraph::{DeleteRule, RemoveError, Schema, Store};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Folder {
    name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Document {
    name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Lock {
    holder: String,
}

/// Delete rules (restrict, delete-orphan), the preview, and a rolled-back transaction.
fn rules_and_transactions() -> relgraph::Result<()> {
    println!("== delete rules, preview, transactions ==");
    let mut schema = Schema::new();
    let folders = schema.table::<Folder>("folders");
    let docs = schema.table::<Document>("documents");
    let locks = schema.table::<Lock>("locks");
    let contents = schema.relate(
        folders
            .many("documents")
            .on_delete(DeleteRule::DeleteOrphan),
        docs.one("folder"),
    );
    // a locked document can't be deleted while its lock exists
    let locking = schema.relate(
        docs.one("lock").on_delete(DeleteRule::Restrict),
        locks.one("document"),
    );
    let mut store = Store::new(schema);

    let home = store.insert(Folder {
        name: "home".into(),
    });
    let a = store.insert(Document {
        name: "notes.txt".into(),
    });
    let b = store.insert(Document {
        name: "draft.txt".into(),
    });
    store.link(contents, home, a)?;
    store.link(contents, home, b)?;
    let lock = store.insert(Lock {
        holder: "editor".into(),
    });
    store.link(locking, b, lock)?;

    let preview = store.preview_remove(home)?;
    println!(
        "deleting folder 'home' would remove {:?}; blocked by {:?}",
        preview.removed, preview.blocked_by
    );
    match store.remove(home) {
        Err(e @ RemoveError::Restricted { .. }) => println!("delete refused: {e}"),
        other => println!("unexpected: {other:?}"),
    }
    println!("nothing changed: {} documents", store.len::<Document>());

    // delete-orphan: a document taken out of its folder is deleted
    store.unlink(contents, home, a)?;
    println!(
        "after unlinking notes.txt from its folder: notes.txt alive = {}",
        store.contains(a)
    );

    // a transaction that fails leaves no trace
    let result: Result<(), &str> = store.transaction(|s| {
        s.unlink(locking, b, lock).map_err(|_| "unlink")?;
        s.remove(home).map_err(|_| "remove")?;
        println!(
            "  inside the transaction: {} folders, {} documents",
            s.len::<Folder>(),
            s.len::<Document>()
        );
        Err("user pressed cancel")
    });
    println!(
        "transaction: {result:?}; after rollback: {} folder(s), {} document(s), lock held: {}",
        store.len::<Folder>(),
        store.len::<Document>(),
        store.partner(locking, b).is_some()
    );
    store.check_integrity()?;
    Ok(())
}

/// A snapshot saved atomically, loaded back under the same keys, and a damaged copy refused.
fn snapshots() -> Result<(), Box<dyn std::error::Error>> {
    println!("== snapshots ==");
    let mut schema = Schema::new();
    let folders = schema.table::<Folder>("folders");
    let docs = schema.table::<Document>("documents");
    let contents = schema.relate(
        folders.many("documents").on_delete(DeleteRule::Cascade),
        docs.one("folder"),
    );
    let mut store = Store::new(schema);
    let home = store.insert(Folder {
        name: "home".into(),
    });
    for name in ["a.txt", "b.txt", "c.txt"] {
        let d = store.insert(Document { name: name.into() });
        store.link(contents, home, d)?;
    }
    let dir = std::env::temp_dir().join(format!("relgraph-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("docs.rlg");
    store.save(&path)?;
    let bytes = std::fs::read(&path)?;
    println!("saved {} bytes to {}", bytes.len(), path.display());

    let loaded = Store::load(store.schema().clone(), &path)?;
    let names: Vec<&str> = loaded
        .children(contents, home)
        .map(|d| loaded[d].name.as_str())
        .collect();
    println!("loaded: home holds {names:?} under the same keys");
    println!(
        "re-saved bytes identical: {}",
        loaded.to_snapshot()? == bytes
    );

    let mut damaged = bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x10;
    match Store::from_snapshot(store.schema().clone(), &damaged) {
        Err(e) => println!("a file with one bit flipped is refused: {e}"),
        Ok(_) => println!("unexpected: a damaged file loaded"),
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    blog::run()?;
    println!();
    enrollment::run()?;
    println!();
    org_chart::run()?;
    println!();
    notifications::run()?;
    println!();
    comments::run()?;
    println!();
    editor::run()?;
    println!();
    queries::run()?;
    println!();
    rules_and_transactions()?;
    println!();
    snapshots()?;
    Ok(())
}
