//! Saves never write a file that cannot be loaded: rows and link payloads whose serde
//! implementations the snapshot encoding cannot carry (`#[serde(tag)]`, `untagged`,
//! `flatten`, `skip_serializing_if`, a panicking `Deserialize`) are refused with an error
//! naming the table (or relation), the key (or pair) and the cause, before any file is
//! touched; the old file stays byte for byte and still loads. Ordinary rows still save.
//! `Store::verify_file` decodes rows, which `snapshot::verify` cannot.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::fs;
use std::path::Path;

use relgraph::snapshot::{self, temp_files, SnapshotError};
use relgraph::{DeleteRule, Entity, Key, Schema, Store};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An internally tagged enum.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "t")]
enum Tagged {
    Point { x: u32 },
    Label { text: String },
}

/// An untagged enum.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
enum Untagged {
    Number(u32),
    Text(String),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Inner {
    a: u32,
    b: String,
}

/// A struct with a flattened field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Flat {
    id: u32,
    #[serde(flatten)]
    inner: Inner,
}

/// A field skipped when serialized, only for some values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Sparse {
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    n: u32,
}

/// A field never serialized but deserialized.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct HalfSkipped {
    n: u32,
    #[serde(skip_serializing, default)]
    cache: u64,
}

/// A `u32` whose `Deserialize` panics on 13.
#[derive(Clone, Debug, PartialEq)]
struct Fragile(u32);

impl Serialize for Fragile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for Fragile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        assert_ne!(v, 13, "thirteen is unlucky");
        Ok(Fragile(v))
    }
}

/// A store of one table `rows` of `T` holding `values`; their keys.
fn store_of<T: Entity>(values: Vec<T>) -> (Store, Vec<Key<T>>) {
    let mut schema = Schema::new();
    schema.table::<T>("rows");
    let mut store = Store::new(schema);
    let keys = values.into_iter().map(|v| store.insert(v)).collect();
    (store, keys)
}

/// The state of the file a refused save must leave alone: ordinary rows.
fn old_store() -> Store {
    store_of(vec![
        Inner {
            a: 1,
            b: "one".into(),
        },
        Inner {
            a: 2,
            b: "two".into(),
        },
    ])
    .0
}

/// Saves the old state to a file, then tries to save `bad` over it: the save is refused
/// with `Unencodable` (its error returned), and the file is byte-identical and still
/// loads. `to_snapshot` and `write_snapshot` refuse `bad` too; the refused store is
/// unchanged.
fn refused<T: Entity + Debug + PartialEq>(bad: Vec<T>) -> (SnapshotError, Vec<Key<T>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.rlg");
    let old = old_store();
    old.save(&path).unwrap();
    let before = fs::read(&path).unwrap();
    let (new, keys) = store_of(bad);
    let err = new
        .save(&path)
        .expect_err("a save of rows that do not load back");
    assert!(
        matches!(err, SnapshotError::Unencodable { .. }),
        "not Unencodable: {err:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), before, "the old file changed");
    assert!(temp_files(&path).unwrap().is_empty(), "a temp file is left");
    let loaded = Store::load(old.schema().clone(), &path).unwrap();
    assert_eq!(loaded.to_snapshot().unwrap(), before);
    assert!(matches!(
        new.to_snapshot(),
        Err(SnapshotError::Unencodable { .. })
    ));
    let mut written = Vec::new();
    assert!(matches!(
        new.write_snapshot(&mut written),
        Err(SnapshotError::Unencodable { .. })
    ));
    assert!(
        written.is_empty(),
        "write_snapshot wrote a refused snapshot"
    );
    assert_eq!(new.len::<T>(), keys.len());
    assert_eq!(new.check_integrity(), Ok(()));
    (err, keys)
}

/// The parts of an `Unencodable` error.
fn parts(err: &SnapshotError) -> (&str, &str, &str) {
    match err {
        SnapshotError::Unencodable {
            section,
            key,
            cause,
        } => (section, key, cause),
        other => panic!("not Unencodable: {other:?}"),
    }
}

/// Asserts the error names table `rows`, the row `key`, and a cause saying `hint`.
#[track_caller]
fn names<T>(err: &SnapshotError, key: Key<T>, hint: &str) {
    let (section, k, cause) = parts(err);
    assert_eq!(section, "table rows");
    assert_eq!(k, key.raw().to_string());
    assert!(cause.contains(hint), "expected `{hint}`: {cause}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("cannot save table rows at {k}: ")),
        "{message}"
    );
}

const SELF_DESCRIBING: &str = "needs a self-describing format";
const DIFFERS: &str = "skip_serializing_if";

#[test]
fn a_save_of_internally_tagged_enum_rows_is_refused_and_the_old_file_stays() {
    let (err, keys) = refused(vec![
        Tagged::Label { text: "a".into() },
        Tagged::Point { x: 3 },
    ]);
    names(&err, keys[0], SELF_DESCRIBING);
    assert!(err.to_string().contains("#[serde(tag"), "{err}");
}

#[test]
fn a_save_of_untagged_enum_rows_is_refused_and_the_old_file_stays() {
    let (err, keys) = refused(vec![Untagged::Number(4), Untagged::Text("x".into())]);
    names(&err, keys[0], SELF_DESCRIBING);
    assert!(err.to_string().contains("untagged"), "{err}");
}

#[test]
fn a_save_of_rows_with_a_flattened_field_is_refused_and_the_old_file_stays() {
    let (err, keys) = refused(vec![Flat {
        id: 1,
        inner: Inner {
            a: 2,
            b: "b".into(),
        },
    }]);
    names(&err, keys[0], "#[serde(flatten)]");
}

#[test]
fn a_save_of_a_row_whose_field_is_skipped_when_serialized_is_refused() {
    let (err, keys) = refused(vec![
        HalfSkipped { n: 1, cache: 7 },
        HalfSkipped { n: 2, cache: 0 },
    ]);
    names(&err, keys[0], DIFFERS);
    assert!(err.to_string().contains("skip_serializing)"), "{err}");
}

#[test]
fn skip_serializing_if_is_refused_for_the_rows_that_skip_and_only_for_them() {
    let some = |n: u32| Sparse {
        note: Some(format!("note {n}")),
        n,
    };
    // every row writes its field: it saves and loads
    let (store, keys) = store_of(vec![some(1), some(2), some(3)]);
    let loaded = Store::from_snapshot(store.schema().clone(), &store.to_snapshot().unwrap());
    let loaded = loaded.unwrap();
    for k in &keys {
        assert_eq!(loaded.get(*k), store.get(*k));
    }
    // one row in the middle skips it: refused, naming that row
    let (err, keys) = refused(vec![some(1), Sparse { note: None, n: 250 }, some(3)]);
    names(&err, keys[1], DIFFERS);
    // the last row skips it: the decoder runs out of bytes, still that row
    let (err, keys) = refused(vec![some(1), Sparse { note: None, n: 0 }]);
    names(&err, keys[1], DIFFERS);
}

#[test]
fn a_row_whose_deserialize_panics_refuses_the_save_without_a_panic() {
    let (err, keys) = refused(vec![Fragile(1), Fragile(13), Fragile(2)]);
    names(&err, keys[1], "panicked");
    assert!(err.to_string().contains("thirteen is unlucky"), "{err}");
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Tag {
    label: String,
}

#[test]
fn a_save_of_many_to_many_payloads_that_do_not_load_back_is_refused_naming_the_pair() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let tags = schema.table::<Tag>("tags");
    let rel = schema.many_to_many_with::<User, Tag, Tagged>(
        users,
        "tags",
        tags,
        "users",
        DeleteRule::Nullify,
    );
    let mut store = Store::new(schema);
    let u = store.insert(User { name: "u".into() });
    let t = store.insert(Tag { label: "t".into() });
    store.link_with(rel, u, t, Tagged::Point { x: 1 }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.rlg");
    old_store().save(&path).unwrap();
    let before = fs::read(&path).unwrap();
    let err = store.save(&path).expect_err("an internally tagged payload");
    let (section, key, cause) = parts(&err);
    assert!(section.starts_with("relation "), "{section}");
    assert!(
        section.contains("users") && section.contains("tags"),
        "{section}"
    );
    assert_eq!(key, format!("({}, {})", u.raw(), t.raw()));
    assert!(cause.contains(SELF_DESCRIBING), "{cause}");
    assert_eq!(fs::read(&path).unwrap(), before);
    // without the link, the store saves
    store.unlink(rel, u, t).unwrap();
    store.save(&path).unwrap();
    assert!(Store::load(store.schema().clone(), &path).is_ok());
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum Shape {
    Dot,
    Circle(f64),
    Rect { w: u32, h: u32 },
    Pair(i64, char),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Ordinary {
    name: String,
    tags: Vec<String>,
    note: Option<String>,
    none: Option<u64>,
    shape: Shape,
    shapes: Vec<Shape>,
    inner: Inner,
    nested: Option<Box<Inner>>,
    sorted: BTreeMap<String, Vec<u32>>,
    counts: HashMap<u32, String>,
    tuple: (bool, u8, i128),
    bytes: Vec<u8>,
    #[serde(skip)]
    cache: u32,
    #[serde(default)]
    defaulted: u16,
}

#[test]
fn ordinary_rows_and_payloads_still_save_and_load() {
    let row = |i: u32| Ordinary {
        name: format!("row {i}"),
        tags: (0..i % 4).map(|t| format!("t{t}")).collect(),
        note: i.is_multiple_of(2).then(|| "even".to_string()),
        none: None,
        shape: match i % 4 {
            0 => Shape::Dot,
            1 => Shape::Circle(f64::from(i) / 3.0),
            2 => Shape::Rect { w: i, h: 2 * i },
            _ => Shape::Pair(-i64::from(i), 'é'),
        },
        shapes: vec![Shape::Dot, Shape::Rect { w: 1, h: 2 }],
        inner: Inner {
            a: i,
            b: "inner".into(),
        },
        nested: i.is_multiple_of(3).then(|| {
            Box::new(Inner {
                a: i + 1,
                b: String::new(),
            })
        }),
        sorted: (0..i % 5).map(|k| (format!("k{k}"), vec![k; 3])).collect(),
        counts: (0..i % 6).map(|k| (k, format!("v{k}"))).collect(),
        tuple: (i % 2 == 1, i as u8, -i128::from(i) << 70),
        bytes: vec![i as u8; (i % 7) as usize],
        cache: 0,
        defaulted: i as u16,
    };
    let mut schema = Schema::new();
    let rows = schema.table::<Ordinary>("rows");
    let users = schema.table::<User>("users");
    let rel = schema.many_to_many_with::<User, Ordinary, Shape>(
        users,
        "rows",
        rows,
        "users",
        DeleteRule::Nullify,
    );
    let mut store = Store::new(schema);
    let keys: Vec<_> = (0..100).map(|i| store.insert(row(i))).collect();
    let u = store.insert(User { name: "u".into() });
    for (i, &k) in keys.iter().enumerate().step_by(3) {
        store.link_with(rel, u, k, row(i as u32).shape).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.rlg");
    store.save(&path).unwrap();
    let loaded = Store::load(store.schema().clone(), &path).unwrap();
    for &k in &keys {
        assert_eq!(loaded.get(k), store.get(k));
    }
    for &k in keys.iter().step_by(3) {
        assert_eq!(loaded.payload(rel, u, k), store.payload(rel, u, k));
    }
    let verified = Store::verify_file(store.schema().clone(), &path).unwrap();
    assert_eq!((verified.rows, verified.payloads), (101, 34));
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Wide {
    text: String,
}

fn file_of_u32_rows(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("world.rlg");
    let (store, _) = store_of(vec![300u32, 70_000, u32::MAX]);
    store.save(&path).unwrap();
    path
}

#[test]
fn verify_file_decodes_rows_with_the_programs_types_where_verify_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_of_u32_rows(dir.path());
    // the typeless check passes: rows are not decoded
    let info = snapshot::verify(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(info.tables[0].rows, 3);
    // with the right types, everything is decoded
    let (u32s, _) = store_of::<u32>(vec![]);
    let verified = Store::verify_file(u32s.schema().clone(), &path).unwrap();
    assert_eq!((verified.rows, verified.payloads), (3, 0));
    assert_eq!(verified.info, info);
    assert!(verified.to_string().contains("3 rows"), "{verified}");
    // a program whose `rows` are another type: the stored type shape differs
    let (wides, _) = store_of::<Wide>(vec![]);
    let err = Store::verify_file(wides.schema().clone(), &path).expect_err("rows of u32");
    assert!(
        matches!(
            err,
            SnapshotError::SchemaMismatch(snapshot::SchemaDifference::RowTypeChanged { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("table `rows`"), "{err}");
    let bytes = fs::read(&path).unwrap();
    assert!(Store::verify_snapshot(wides.schema().clone(), &bytes).is_err());
    assert!(Store::verify_snapshot(u32s.schema().clone(), &bytes).is_ok());
}
