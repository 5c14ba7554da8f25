//! Export into PostgreSQL and import back: every relation kind, delete rule, kind,
//! polymorphic parent and payload shape survive with the same keys and orders.

mod common;

use common::{fresh_db, model, populated, server};
use relgraph::Store;
use relgraph_postgres::{Error, Mapping};

#[test]
fn a_store_exported_and_imported_resaves_to_the_same_snapshot_bytes() {
    let srv = server();
    for seed in [1u64, 7, 99] {
        let (store, _) = populated(seed);
        let mapping = Mapping::new(store.schema()).unwrap();
        let mut db = fresh_db(&srv, &format!("roundtrip_{seed}"));
        let report = mapping.export(&mut db, &store).unwrap();
        assert!(report.rows > 50, "{report:?}");
        assert!(report.links > 10, "{report:?}");
        let back = mapping.import(&mut db).unwrap();
        back.check_integrity().unwrap();
        assert_eq!(back.to_snapshot().unwrap(), store.to_snapshot().unwrap());
        mapping.compare(&mut db, &store).unwrap();
    }
}

#[test]
fn an_empty_store_round_trips() {
    let srv = server();
    let (schema, _) = model();
    let store = Store::new(schema);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "empty_store");
    mapping.export(&mut db, &store).unwrap();
    let back = mapping.import(&mut db).unwrap();
    assert_eq!(back.to_snapshot().unwrap(), store.to_snapshot().unwrap());
}

#[test]
fn an_export_into_a_database_holding_a_table_of_the_schema_is_refused_and_writes_nothing() {
    let srv = server();
    let (store, _) = populated(3);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "not_empty");
    db.batch_execute("CREATE TABLE posts (x int)").unwrap();
    let err = mapping.export(&mut db, &store).unwrap_err();
    assert!(matches!(err, Error::NotEmpty(_)), "{err}");
    assert!(err.to_string().contains("table posts exists"), "{err}");
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[test]
fn an_import_from_a_database_that_does_not_match_the_schema_is_refused() {
    let srv = server();
    let (store, _) = populated(4);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "mismatch");
    mapping.export(&mut db, &store).unwrap();
    db.batch_execute("ALTER TABLE users RENAME COLUMN nick TO nickname")
        .unwrap();
    let err = mapping.import(&mut db).unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch(_)), "{err}");
    assert!(
        err.to_string()
            .contains("table users: column nick is missing"),
        "{err}"
    );
    db.batch_execute("ALTER TABLE users RENAME COLUMN nickname TO nick")
        .unwrap();
    db.batch_execute("ALTER TABLE courses ALTER COLUMN name TYPE varchar(40)")
        .unwrap();
    let err = mapping.import(&mut db).unwrap_err();
    assert!(
        err.to_string()
            .contains("table courses: column name is character varying"),
        "{err}"
    );
    db.batch_execute("ALTER TABLE courses ALTER COLUMN name TYPE text")
        .unwrap();
    db.batch_execute("UPDATE relgraph_state SET fingerprint = 'abc'")
        .unwrap();
    let err = mapping.import(&mut db).unwrap_err();
    assert!(err.to_string().contains("schema fingerprint abc"), "{err}");
}

#[test]
fn the_ddl_has_typed_columns_foreign_keys_with_delete_rules_and_indexes() {
    let (schema, _) = model();
    let ddl = Mapping::new(&schema).unwrap().postgres_ddl();
    for want in [
        "\"age\" smallint NOT NULL CHECK (\"age\" BETWEEN 0 AND 255)",
        "\"score\" double precision NOT NULL",
        "\"ratio\" real NOT NULL",
        "\"nick\" text,",
        "\"big\" numeric(20,0) NOT NULL",
        "\"role\" text NOT NULL CHECK (\"role\" IN ('Admin', 'Member', 'Guest'))",
        "\"level\" integer NOT NULL",
        "\"tags\" jsonb",
        "\"meta\" jsonb",
        "\"active\" boolean NOT NULL",
        "ALTER TABLE \"posts\" ADD FOREIGN KEY (\"author_id\") REFERENCES \"users\" (\"id\") ON DELETE CASCADE",
        "ALTER TABLE \"notes\" ADD FOREIGN KEY (\"owner_id\") REFERENCES \"users\" (\"id\") ON DELETE SET NULL",
        "ALTER TABLE \"badges\" ADD FOREIGN KEY (\"holder_id\") REFERENCES \"users\" (\"id\") ON DELETE RESTRICT",
        "\"user_id\" bigint UNIQUE",
        "CREATE TABLE \"users_courses\"",
        "\"grade\" double precision NOT NULL",
        "\"target_table\" text CHECK (\"target_table\" IN ('posts', 'photos'))",
        "ALTER TABLE \"email\" ADD FOREIGN KEY (\"id\") REFERENCES \"notifications\" (\"id\") ON DELETE CASCADE",
        "CREATE INDEX \"posts_author_id_idx\" ON \"posts\" (\"author_id\")",
        "CREATE INDEX \"users_courses_courses_id_idx\"",
        "CREATE INDEX \"comments_target_id_idx\" ON \"comments\" (\"target_table\", \"target_id\")",
    ] {
        assert!(ddl.contains(want), "missing {want} in\n{ddl}");
    }
}

#[test]
fn a_schema_that_cannot_be_laid_out_is_refused_naming_the_table() {
    // a row type whose Deserialize asks for deserialize_any: no fields to map
    let mut schema = relgraph::Schema::new();
    schema.table::<serde_json::Value>("documents");
    let err = Mapping::new(&schema).unwrap_err();
    assert!(matches!(err, Error::Mapping(_)), "{err}");
    assert!(err.to_string().contains("table documents"), "{err}");

    // a field named like a relation's column
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Owner {
        name: String,
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Pet {
        owner_id: u32,
    }
    let mut schema = relgraph::Schema::new();
    let owners = schema.table::<Owner>("owners");
    let pets = schema.table::<Pet>("pets");
    schema.relate(owners.many("pets"), pets.one("owner"));
    let err = Mapping::new(&schema).unwrap_err();
    assert!(
        err.to_string()
            .contains("table pets: column owner_id is taken twice"),
        "{err}"
    );
}
