//! The `relgraph` command-line tool, run as a separate process on snapshots written by the
//! library: what `inspect`, `verify` and `dot` print, their exit statuses, usage errors,
//! and that no damaged file makes it crash.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::poly;
use common::*;
use relgraph::snapshot::{checksum, Header, HEADER_LEN};
use relgraph::{DeleteRule, DotLabels, Rules, Schema, Store};

/// What one run of the tool gave.
#[derive(Debug)]
struct Run {
    /// The exit status; `None` if a signal ended it.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn relgraph<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_relgraph"))
        .args(args)
        .output()
        .expect("the relgraph binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `relgraph COMMAND FILE OPTIONS...`.
fn on_file(command: &str, file: &Path, options: &[&str]) -> Run {
    let mut args = vec![OsStr::new(command), file.as_os_str()];
    args.extend(options.iter().map(OsStr::new));
    relgraph(&args)
}

/// Saves `store` as `name` in `dir`.
fn save(store: &Store, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    store.save(&path).expect("the snapshot is saved");
    path
}

/// Writes `bytes` as `name` in `dir`.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("the file is written");
    path
}

/// Asserts a failure with exit status 1 and `relgraph: FILE: REASON` on stderr, REASON
/// containing `reason`.
#[track_caller]
fn assert_file_error(run: &Run, file: &Path, reason: &str) {
    assert_eq!(run.code, Some(1), "{run:?}");
    let prefix = format!("relgraph: {}: ", file.display());
    assert!(run.stderr.starts_with(&prefix), "{run:?}");
    assert!(run.stderr.contains(reason), "expected `{reason}`: {run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

/// Asserts a failure with exit status 1 and `relgraph: FILE: REASON` on stderr, REASON
/// containing `reason`, after the header and what else could be read on stdout.
#[track_caller]
fn assert_damaged(run: &Run, file: &Path, reason: &str) {
    assert_eq!(run.code, Some(1), "{run:?}");
    let prefix = format!("relgraph: {}: ", file.display());
    assert!(run.stderr.starts_with(&prefix), "{run:?}");
    assert!(run.stderr.contains(reason), "expected `{reason}`: {run:?}");
    assert!(run.stdout.starts_with("format version:"), "{run:?}");
}

/// Asserts a usage error: exit status 2, a message and the usage on stderr.
#[track_caller]
fn assert_usage_error(run: &Run, message: &str) {
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.starts_with("relgraph: "), "{run:?}");
    assert!(
        run.stderr.contains(message),
        "expected `{message}`: {run:?}"
    );
    assert!(run.stderr.contains("usage: relgraph"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

/// A world where every table holds a different number of rows and every relation a
/// different number of links, with holes (removed entities) in two tables.
fn counted_world() -> (Store, Rels) {
    let cfg = Config {
        posts: DeleteRule::Cascade.into(),
        reports: Rules::new().acyclic(),
        mentors: Rules::new().forbid_self_links(),
        ..Config::default()
    };
    let (mut s, r) = world(cfg);
    let users: Vec<_> = (0..4).map(|i| user(&mut s, &format!("u{i}"))).collect();
    let ps = posts(&mut s, "p", 9);
    for (i, &p) in ps.iter().enumerate() {
        s.link(r.posts, users[i % 3], p).unwrap();
    }
    for (i, &p) in ps[..5].iter().enumerate() {
        let c = comment(&mut s, &format!("c{i}"));
        s.link(r.comments, p, c).unwrap();
    }
    let pr = profile(&mut s, "bio");
    s.link(r.profile, users[0], pr).unwrap();
    let ts: Vec<_> = (0..2).map(|i| tag(&mut s, &format!("t{i}"))).collect();
    for &p in &ps[..3] {
        for &t in &ts {
            s.link(r.tags, p, t).unwrap();
        }
    }
    let st = student(&mut s, "s");
    let cs: Vec<_> = (0..3).map(|i| course(&mut s, &format!("c{i}"))).collect();
    for &c in &cs {
        s.link_with(r.enrollments, st, c, Enrollment { grade: 90 })
            .unwrap();
    }
    let es: Vec<_> = (0..5).map(|i| employee(&mut s, &format!("e{i}"))).collect();
    for &e in &es[1..] {
        s.link(r.reports, es[0], e).unwrap();
    }
    s.link(r.mentors, es[1], es[2]).unwrap();
    s.link(r.mentors, es[3], es[4]).unwrap();
    for &a in &users {
        for &b in &users {
            s.link(r.follows, a, b).unwrap();
        }
    }
    // holes: the last user (who wrote nothing) and the last post (no comment, no tag)
    s.remove(users[3]).unwrap();
    s.remove(ps[8]).unwrap();
    check(&s);
    (s, r)
}

/// The whitespace-separated cells of the line of `report` whose first cells are `name`'s.
fn row_of<'a>(report: &'a str, name: &str) -> Vec<&'a str> {
    let want: Vec<&str> = name.split_whitespace().collect();
    let rows: Vec<Vec<&str>> = report
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.starts_with(&want))
        .collect();
    assert_eq!(rows.len(), 1, "one line for `{name}` in:\n{report}");
    rows.into_iter().next().unwrap_or_default()
}

#[test]
fn inspect_shows_every_table_with_its_row_count_and_every_relation_with_its_link_count() {
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = counted_world();
    let file = save(&s, dir.path(), "world.rlg");
    let run = on_file("inspect", &file, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
    let out = &run.stdout;

    // name, version, kind of, rows, slots, bytes, type shape
    let tables = [
        ("users", s.len::<User>(), 4),
        ("posts", s.len::<Post>(), 9),
        ("comments", s.len::<Comment>(), 5),
        ("profiles", s.len::<Profile>(), 1),
        ("tags", s.len::<Tag>(), 2),
        ("students", s.len::<Student>(), 1),
        ("courses", s.len::<Course>(), 3),
        ("employees", s.len::<Employee>(), 5),
    ];
    for (name, rows, slots) in tables {
        let cells = row_of(out, name);
        assert_eq!(cells.len(), 7, "{cells:?}");
        assert_eq!(cells[1], "1", "version of {name}");
        assert_eq!(cells[6].len(), 16, "type shape of {name}: {cells:?}");
        assert_eq!(cells[2], "-", "kind of {name}");
        assert_eq!(cells[3], rows.to_string(), "rows of {name}");
        assert_eq!(cells[4], slots.to_string(), "slots of {name}");
    }
    assert_eq!(row_of(out, "users")[3], "3");
    assert_eq!(row_of(out, "posts")[3], "8");

    // name (three cells), kind, rules, poly parent, links, bytes, payload
    let relations = [
        (
            "users.posts <-> posts.author",
            "one_to_many",
            s.link_count(r.posts),
        ),
        (
            "posts.comments <-> comments.post",
            "one_to_many",
            s.link_count(r.comments),
        ),
        (
            "users.profile <-> profiles.user",
            "one_to_one",
            s.link_count(r.profile),
        ),
        (
            "posts.tags <-> tags.posts",
            "many_to_many",
            s.link_count(r.tags),
        ),
        (
            "students.courses <-> courses.students",
            "many_to_many",
            s.link_count(r.enrollments),
        ),
        (
            "employees.subordinates <-> employees.manager",
            "one_to_many",
            s.link_count(r.reports),
        ),
        (
            "employees.mentee <-> employees.mentor",
            "one_to_one",
            s.link_count(r.mentors),
        ),
        (
            "users.follows <-> users.followers",
            "many_to_many",
            s.link_count(r.follows),
        ),
    ];
    for (name, kind, links) in relations {
        let cells = row_of(out, name);
        assert_eq!(cells.len(), 9, "{cells:?}");
        assert_eq!(cells[3], kind, "kind of {name}");
        assert_eq!(cells[5], "-", "poly parent of {name}");
        assert_eq!(cells[6], links.to_string(), "links of {name}");
        if kind == "many_to_many" {
            assert!(cells[8].starts_with("v1:"), "payload of {name}: {cells:?}");
        } else {
            assert_eq!(cells[8], "-", "payload of {name}");
        }
    }
    // counts unlike each other, so a column mix-up shows
    let links: Vec<_> = relations.iter().map(|&(_, _, n)| n).collect();
    assert_eq!(links, [8, 5, 1, 6, 3, 4, 2, 9]);
    assert_eq!(
        row_of(out, "users.posts <-> posts.author")[4],
        "cascade/nullify"
    );
    assert_eq!(
        row_of(out, "employees.subordinates <-> employees.manager")[4],
        "nullify/nullify,acyclic"
    );
    assert_eq!(
        row_of(out, "employees.mentee <-> employees.mentor")[4],
        "nullify/nullify,no_self_links"
    );
}

#[test]
fn inspect_shows_the_header_sizes_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = counted_world();
    let file = save(&s, dir.path(), "world.rlg");
    let bytes = std::fs::read(&file).unwrap();
    let header = Header::parse(&bytes).unwrap();
    let run = on_file("inspect", &file, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let field =
        |name: &str| row_of(&run.stdout, &format!("{name}:"))[name.split(' ').count()..].join(" ");
    assert_eq!(
        field("format version"),
        relgraph::snapshot::FORMAT_VERSION.to_string()
    );
    assert_eq!(
        field("schema fingerprint"),
        format!("{:016x}", header.fingerprint)
    );
    assert_eq!(field("file size"), format!("{} bytes", bytes.len()));
    assert_eq!(
        field("payload size"),
        format!("{} bytes", bytes.len() - HEADER_LEN)
    );
    assert!(field("schema size").ends_with(" bytes"));
    assert_eq!(field("entities"), "28"); // 3 + 8 + 5 + 1 + 2 + 1 + 3 + 5
    assert_eq!(field("links"), "38"); // 8 + 5 + 1 + 6 + 3 + 4 + 2 + 9
    assert_eq!((header.entities, header.links), (28, 38));
}

#[test]
fn inspect_shows_each_kind_with_its_base_and_its_own_row_count() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _, _) = poly::populated(poly::Config::default());
    let file = save(&s, dir.path(), "poly.rlg");
    let run = on_file("inspect", &file, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    for (name, kind_of, rows) in [
        ("notifications", "-", 4),
        ("email", "notifications", 2),
        ("sms", "notifications", 1),
        ("push", "notifications", 1),
        ("users", "-", 2),
    ] {
        let cells = row_of(&run.stdout, name);
        assert_eq!(cells[2], kind_of, "kind of {name}");
        assert_eq!(cells[3], rows.to_string(), "rows of {name}");
    }
    assert_eq!(row_of(&run.stdout, "email.cc <-> users.cc_on")[6], "1");
    assert_eq!(
        row_of(&run.stdout, "users.notifications <-> notifications.user")[6],
        "4"
    );
}

#[test]
fn inspect_names_the_polymorphic_parent_end_a_relation_belongs_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let comments = schema.table::<Comment>("comments");
    let target = schema.poly_parent(comments, "target");
    let on_posts = schema.one_to_many_poly(posts, "comments", target, DeleteRule::Cascade);
    let on_users = schema.one_to_many_poly(users, "comments", target, DeleteRule::Nullify);
    let authored = schema.one_to_many(users, "authored", comments, "author", Rules::new());
    let mut s = Store::new(schema);
    let alice = user(&mut s, "alice");
    let p0 = post(&mut s, "p0");
    let cs: Vec<_> = (0..3).map(|i| comment(&mut s, &format!("c{i}"))).collect();
    s.link(on_posts, p0, cs[0]).unwrap();
    s.link(on_posts, p0, cs[1]).unwrap();
    s.link(on_users, alice, cs[2]).unwrap();
    s.link(authored, alice, cs[0]).unwrap();
    let file = save(&s, dir.path(), "poly_parent.rlg");
    let run = on_file("inspect", &file, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let cells = row_of(&run.stdout, "posts.comments <-> comments.target");
    assert_eq!(
        cells[3..7],
        ["one_to_many", "cascade/nullify", "comments.target", "2"]
    );
    let cells = row_of(&run.stdout, "users.comments <-> comments.target");
    assert_eq!(
        cells[3..7],
        ["one_to_many", "nullify/nullify", "comments.target", "1"]
    );
    let cells = row_of(&run.stdout, "users.authored <-> comments.author");
    assert_eq!(cells[5..7], ["-", "1"]);
}

#[test]
fn verify_accepts_a_good_snapshot_and_prints_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = counted_world();
    let file = save(&s, dir.path(), "world.rlg");
    let run = on_file("verify", &file, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "ok: 28 entities, 38 links");
    assert!(run.stderr.is_empty(), "{run:?}");
}

#[test]
fn verify_says_what_it_checked_and_that_rows_are_not_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = counted_world();
    let file = save(&s, dir.path(), "world.rlg");
    let run = on_file("verify", &file, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:?}");
    assert!(
        lines[1].starts_with("checked: header, checksum, structure"),
        "{run:?}"
    );
    assert!(lines[1].contains("graph invariant"), "{run:?}");
    assert!(lines[2].starts_with("not checked: "), "{run:?}");
    assert!(
        lines[2].contains("rows") && lines[2].contains("decode"),
        "{run:?}"
    );
    assert!(lines[2].contains("Store::verify_file"), "{run:?}");
    let help = relgraph(&["help"]);
    assert!(help.stdout.contains("not decoded"), "{help:?}");
}

#[test]
fn verify_rejects_a_snapshot_with_one_payload_byte_flipped_as_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = counted_world();
    let mut bytes = s.to_snapshot().unwrap();
    let middle = HEADER_LEN + (bytes.len() - HEADER_LEN) / 2;
    bytes[middle] ^= 0x01;
    let file = write(dir.path(), "flipped.rlg", &bytes);
    assert_file_error(&on_file("verify", &file, &[]), &file, "checksum mismatch");
}

#[test]
fn verify_rejects_a_truncated_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = counted_world();
    let bytes = s.to_snapshot().unwrap();
    let file = write(dir.path(), "short.rlg", &bytes[..bytes.len() - 10]);
    assert_file_error(&on_file("verify", &file, &[]), &file, "truncated snapshot");
}

#[test]
fn verify_rejects_a_file_that_is_not_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "notes.txt",
        b"just some notes, not a snapshot\n",
    );
    assert_file_error(
        &on_file("verify", &file, &[]),
        &file,
        "not a relgraph snapshot",
    );
    let empty = write(dir.path(), "empty.rlg", b"");
    assert_file_error(&on_file("verify", &empty, &[]), &empty, "truncated");
}

#[test]
fn verify_rejects_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("missing.rlg");
    assert_file_error(&on_file("verify", &file, &[]), &file, "could not open");
}

#[test]
fn inspect_and_dot_reject_a_damaged_file_like_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = counted_world();
    let mut bytes = s.to_snapshot().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    let file = write(dir.path(), "flipped.rlg", &bytes);
    // inspect also prints what it could read: see the tests below
    assert_damaged(&on_file("inspect", &file, &[]), &file, "checksum mismatch");
    assert_file_error(&on_file("dot", &file, &[]), &file, "checksum mismatch");
    let missing = dir.path().join("missing.rlg");
    assert_file_error(
        &on_file("inspect", &missing, &[]),
        &missing,
        "could not open",
    );
    assert_file_error(&on_file("dot", &missing, &[]), &missing, "could not open");
}

#[test]
fn inspect_of_a_file_cut_short_prints_the_header_and_the_sections_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = counted_world();
    let good = s.to_snapshot().unwrap();
    let info = relgraph::snapshot::inspect(&good).unwrap();
    let (t, r) = (&info.tables, &info.relations);
    // a few bytes into the third table's section
    let cut = HEADER_LEN as u64 + info.schema_bytes + t[0].bytes + t[1].bytes + 2;
    let file = write(dir.path(), "cut.rlg", &good[..cut as usize]);
    let run = on_file("inspect", &file, &[]);
    assert_damaged(&run, &file, "truncated");
    let out = &run.stdout;
    assert_eq!(row_of(out, "links:")[1], info.header.links.to_string());
    for read in &t[..2] {
        assert_eq!(row_of(out, &read.name)[3], read.rows.to_string(), "{out}");
    }
    let unread = t.len() - 2;
    assert!(
        out.contains(&format!("tables ({}, {unread} not read):", t.len())),
        "{out}"
    );
    let names: Vec<&str> = t[2..].iter().map(|t| t.name.as_str()).collect();
    assert!(
        out.contains(&format!("not read: {}\n", names.join(", "))),
        "{out}"
    );
    let count = format!("relations ({}, {} not read):", r.len(), r.len());
    assert!(out.contains(&count), "{out}");
}

#[test]
fn inspect_of_a_file_with_a_damaged_payload_byte_prints_every_section_it_could_read() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = counted_world();
    let mut bytes = s.to_snapshot().unwrap();
    let info = relgraph::snapshot::inspect(&bytes).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    let file = write(dir.path(), "flipped.rlg", &bytes);
    let run = on_file("inspect", &file, &[]);
    assert_damaged(&run, &file, "checksum mismatch");
    let out = &run.stdout;
    assert!(
        out.contains(&format!("tables ({}):", info.tables.len())),
        "{out}"
    );
    for table in &info.tables {
        assert_eq!(row_of(out, &table.name)[3], table.rows.to_string(), "{out}");
    }
    // the flipped bit is in the last relation's section, which no longer parses
    let (last, before) = info.relations.split_last().unwrap();
    for relation in before {
        assert_eq!(
            row_of(out, &relation.name)[6],
            relation.links.to_string(),
            "{out}"
        );
    }
    let n = info.relations.len();
    assert!(
        out.contains(&format!("relations ({n}, 1 not read):")),
        "{out}"
    );
    assert!(
        out.ends_with(&format!("not read: {}\n", last.name)),
        "{out}"
    );
    // a file that is no snapshot at all shows nothing
    let file = write(dir.path(), "text.rlg", b"hello, world");
    assert_file_error(
        &on_file("inspect", &file, &[]),
        &file,
        "not a relgraph snapshot",
    );
}

#[test]
fn inspect_partial_reads_every_damaged_variant_and_agrees_with_inspect() {
    let (s, _) = small_world();
    let good = s.to_snapshot().unwrap();
    let declared = relgraph::snapshot::inspect(&good).unwrap().tables.len();
    let mut partly = 0;
    for (what, bytes, _) in damaged(&good) {
        let partial = relgraph::snapshot::inspect_partial(&bytes);
        match relgraph::snapshot::inspect(&bytes) {
            Ok(info) => {
                assert!(partial.error.is_none(), "{what}: {partial:?}");
                assert_eq!(partial.tables, info.tables, "{what}");
                assert_eq!(partial.relations, info.relations, "{what}");
            }
            Err(e) => {
                let error = partial.error.as_ref().map(ToString::to_string);
                assert_eq!(error, Some(e.to_string()), "{what}");
                let read = partial.tables.len() + partial.relations.len();
                partly += usize::from(partial.header.is_some() && read > 0);
            }
        }
        if partial.schema_bytes.is_some() {
            let tables = partial.tables.len() + partial.unread_tables.len();
            assert_eq!(tables, declared, "{what}: {partial:?}");
        }
    }
    assert!(
        partly > 100,
        "{partly} damaged variants showed some sections"
    );
}

#[test]
fn no_arguments_is_a_usage_error() {
    assert_usage_error(&relgraph::<&str>(&[]), "no command");
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    assert_usage_error(
        &relgraph(&["check", "world.rlg"]),
        "unknown command `check`",
    );
}

#[test]
fn a_missing_or_extra_file_is_a_usage_error() {
    assert_usage_error(&relgraph(&["verify"]), "needs a FILE");
    assert_usage_error(&relgraph(&["inspect"]), "needs a FILE");
    assert_usage_error(&relgraph(&["dot", "--table", "users"]), "needs a FILE");
    assert_usage_error(
        &relgraph(&["verify", "a.rlg", "b.rlg"]),
        "unexpected `b.rlg`",
    );
}

#[test]
fn a_depth_that_is_not_a_number_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let file = save(&s, dir.path(), "small.rlg");
    let run = on_file("dot", &file, &["--root", "users:0", "--depth", "x"]);
    assert_usage_error(&run, "--depth wants a number");
    let run = on_file("dot", &file, &["--depth", "x"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let run = on_file("dot", &file, &["--root", "users:0", "--depth", "-1"]);
    assert_usage_error(&run, "--depth wants a number");
    let run = on_file("dot", &file, &["--root", "users:0", "--depth"]);
    assert_usage_error(&run, "--depth needs a value");
}

#[test]
fn a_root_without_a_colon_or_index_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let file = save(&s, dir.path(), "small.rlg");
    for root in ["nocolon", "users:", ":0", "users:x", "users:99999999999"] {
        let run = on_file("dot", &file, &["--root", root]);
        assert_usage_error(&run, "--root wants TABLE:INDEX");
    }
}

#[test]
fn conflicting_repeated_or_unknown_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let file = save(&s, dir.path(), "small.rlg");
    let run = on_file("dot", &file, &["--table", "users", "--root", "users:0"]);
    assert_usage_error(&run, "exclude each other");
    let run = on_file("dot", &file, &["--table", "users", "--depth", "1"]);
    assert_usage_error(&run, "--depth goes with --root");
    let run = on_file("dot", &file, &["--table", "users", "--table", "posts"]);
    assert_usage_error(&run, "given twice");
    assert_usage_error(
        &on_file("dot", &file, &["--colour"]),
        "no option `--colour`",
    );
    assert_usage_error(
        &on_file("verify", &file, &["--table", "users"]),
        "no option",
    );
}

#[test]
fn a_dot_scope_naming_a_table_or_slot_the_snapshot_lacks_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let file = save(&s, dir.path(), "small.rlg");
    let run = on_file("dot", &file, &["--table", "planets"]);
    assert_usage_error(&run, "no table `planets`");
    let run = on_file("dot", &file, &["--root", "users:7"]);
    assert_usage_error(&run, "no entity at slot 7");
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    for flag in ["--help", "-h", "help"] {
        let run = relgraph(&[flag]);
        assert_eq!(run.code, Some(0), "{run:?}");
        for text in [
            "usage: relgraph",
            "inspect FILE",
            "verify FILE",
            "dot FILE",
            "--root",
        ] {
            assert!(
                run.stdout.contains(text),
                "`{flag}` shows `{text}`: {run:?}"
            );
        }
        assert!(run.stderr.is_empty(), "{run:?}");
    }
    assert_eq!(relgraph(&["verify", "--help"]).code, Some(0));
}

/// alice (users:0) wrote p0 (posts:0) and p1 (posts:1), bob (users:1) wrote p2
/// (posts:2); c0 (comments:0) is on p0; p1 is tagged t0 (tags:0).
fn small_world() -> (Store, Rels) {
    let (mut s, r) = world(Config::default());
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let ps = posts(&mut s, "p", 3);
    s.link(r.posts, alice, ps[0]).unwrap();
    s.link(r.posts, alice, ps[1]).unwrap();
    s.link(r.posts, bob, ps[2]).unwrap();
    let c0 = comment(&mut s, "c0");
    s.link(r.comments, ps[0], c0).unwrap();
    let t0 = tag(&mut s, "t0");
    s.link(r.tags, ps[1], t0).unwrap();
    check(&s);
    (s, r)
}

const ALICE_P0: &str = r#""users:0" -> "posts:0" [label="posts"];"#;
const ALICE_P1: &str = r#""users:0" -> "posts:1" [label="posts"];"#;
const BOB_P2: &str = r#""users:1" -> "posts:2" [label="posts"];"#;
const P0_C0: &str = r#""posts:0" -> "comments:0" [label="comments"];"#;
const P1_T0: &str = r#""posts:1" -> "tags:0" [label="tags"];"#;

/// Runs `dot` and returns its edge lines and its node ids.
fn dot_of(file: &Path, options: &[&str]) -> (BTreeSet<String>, BTreeSet<String>) {
    let run = on_file("dot", file, options);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.starts_with("digraph relgraph {\n"), "{run:?}");
    assert!(run.stdout.ends_with("}\n"), "{run:?}");
    let mut edges = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    for line in run.stdout.lines().map(str::trim) {
        if line.contains(" -> ") {
            edges.insert(line.to_string());
        } else if let Some((id, _)) = line.split_once(" [label=") {
            nodes.insert(id.trim_matches('"').to_string());
        }
    }
    (edges, nodes)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn dot_draws_every_entity_and_every_link_from_first_end_to_second() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let file = save(&s, dir.path(), "small.rlg");
    let (edges, nodes) = dot_of(&file, &[]);
    assert_eq!(edges, set(&[ALICE_P0, ALICE_P1, BOB_P2, P0_C0, P1_T0]));
    let all = ["users:0", "users:1", "posts:0", "posts:1", "posts:2"];
    assert_eq!(nodes, set(&[&all[..], &["comments:0", "tags:0"]].concat()));
    let run = on_file("dot", &file, &[]);
    assert!(
        run.stdout.contains(r#""users:0" [label="users 0v1"];"#),
        "{run:?}"
    );
}

#[test]
fn dot_with_a_table_keeps_only_the_links_of_that_tables_entities() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let file = save(&s, dir.path(), "small.rlg");
    let (edges, nodes) = dot_of(&file, &["--table", "comments"]);
    assert_eq!(edges, set(&[P0_C0]));
    assert_eq!(nodes, set(&["comments:0", "posts:0"]));
    let (edges, nodes) = dot_of(&file, &["--table=users"]);
    assert_eq!(edges, set(&[ALICE_P0, ALICE_P1, BOB_P2]));
    assert!(!nodes.contains("comments:0") && !nodes.contains("tags:0"));
}

#[test]
fn dot_with_a_root_and_a_depth_keeps_only_what_the_root_reaches_within_the_depth() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let file = save(&s, dir.path(), "small.rlg");
    let (edges, nodes) = dot_of(&file, &["--root", "users:0", "--depth", "1"]);
    assert_eq!(edges, set(&[ALICE_P0, ALICE_P1]));
    assert_eq!(nodes, set(&["users:0", "posts:0", "posts:1"]));
    let (edges, nodes) = dot_of(&file, &["--root", "users:0", "--depth", "0"]);
    assert!(edges.is_empty(), "{edges:?}");
    assert_eq!(nodes, set(&["users:0"]));
    let (edges, _) = dot_of(&file, &["--root", "posts:1", "--depth", "1"]);
    assert_eq!(edges, set(&[ALICE_P1, P1_T0]));
}

#[test]
fn dot_with_a_root_and_no_depth_follows_links_to_any_depth_and_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let file = save(&s, dir.path(), "small.rlg");
    let (edges, nodes) = dot_of(&file, &["--root", "users:0"]);
    assert_eq!(edges, set(&[ALICE_P0, ALICE_P1, P0_C0, P1_T0]));
    assert!(!nodes.contains("users:1") && !nodes.contains("posts:2"));
}

#[test]
fn dot_with_a_root_follows_links_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let file = save(&s, dir.path(), "small.rlg");
    // a comment reaches its post, one link back; the edge still points from first end
    let (edges, nodes) = dot_of(&file, &["--root", "comments:0", "--depth", "1"]);
    assert_eq!(edges, set(&[P0_C0]));
    assert_eq!(nodes, set(&["comments:0", "posts:0"]));
    let (edges, nodes) = dot_of(&file, &["--root", "comments:0", "--depth", "2"]);
    assert_eq!(edges, set(&[P0_C0, ALICE_P0]));
    assert_eq!(nodes, set(&["comments:0", "posts:0", "users:0"]));
    // the whole of what is connected to the tag, and nothing else
    let (edges, nodes) = dot_of(&file, &["--root", "tags:0"]);
    assert_eq!(edges, set(&[P1_T0, ALICE_P1, ALICE_P0, P0_C0]));
    assert!(!nodes.contains("users:1") && !nodes.contains("posts:2"));
    let (edges, _) = dot_of(&file, &["--root", "posts:2"]);
    assert_eq!(edges, set(&[BOB_P2]));
}

/// Every way of damaging `good` this test tries, with whether the tool must refuse it:
/// every truncation, one bit flipped in every byte, and payload bytes changed with both
/// checksums fixed up (which reaches the decoder and the graph checks, and may leave a
/// sound snapshot when only row bytes change).
fn damaged(good: &[u8]) -> Vec<(String, Vec<u8>, bool)> {
    let mut out = Vec::new();
    for len in 0..good.len() {
        out.push((format!("cut to {len}"), good[..len].to_vec(), true));
    }
    for i in 0..good.len() {
        let mut bytes = good.to_vec();
        bytes[i] ^= 1 << (i % 8);
        out.push((format!("bit {} of byte {i} flipped", i % 8), bytes, true));
    }
    let header = Header::parse(good).expect("a good header");
    for i in HEADER_LEN..good.len() {
        for (what, change) in [("+1", 1u8), ("^0x80", 0)] {
            let mut bytes = good.to_vec();
            bytes[i] = if change == 1 {
                bytes[i].wrapping_add(1)
            } else {
                bytes[i] ^ 0x80
            };
            let fixed = Header {
                payload_checksum: checksum(&bytes[HEADER_LEN..]),
                ..header
            };
            bytes[..HEADER_LEN].copy_from_slice(&fixed.to_bytes());
            out.push((format!("byte {i} {what}, checksums fixed"), bytes, false));
        }
    }
    out
}

#[test]
fn verify_and_dot_never_crash_on_hundreds_of_truncated_or_bit_flipped_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = small_world();
    let good = s.to_snapshot().unwrap();
    let file = dir.path().join("damaged.rlg");
    let variants = damaged(&good);
    assert!(variants.len() >= 300, "{} variants", variants.len());
    let (mut refused, mut accepted) = (0, 0);
    for (what, bytes, must_refuse) in &variants {
        std::fs::write(&file, bytes).unwrap();
        let verify = on_file("verify", &file, &[]);
        let context = format!("verify on {what}: {verify:?}");
        assert!(!verify.stderr.contains("panicked"), "{context}");
        match verify.code {
            Some(0) if !must_refuse => {
                assert!(verify.stdout.starts_with("ok: "), "{context}");
                accepted += 1;
            }
            Some(1) => {
                assert_file_error(&verify, &file, "");
                refused += usize::from(!must_refuse);
            }
            _ => panic!("{context}"),
        }
        if !must_refuse {
            // dot checks what verify checks, then draws
            let dot = on_file("dot", &file, &[]);
            assert!(!dot.stderr.contains("panicked"), "dot on {what}: {dot:?}");
            assert_eq!(dot.code, verify.code, "dot on {what}: {dot:?}");
        }
    }
    // the changes with fixed checksums reached past the checksum: some were refused by
    // the decoder or the graph checks, some (in row bytes) left a sound snapshot
    assert!(
        refused > 0 && accepted > 0,
        "{refused} refused, {accepted} accepted"
    );
    eprintln!(
        "{} damaged snapshots of a {}-byte snapshot; of the checksum-fixed ones, {refused} \
         refused and {accepted} accepted",
        variants.len(),
        good.len()
    );
}

/// `store.write_dot` with `labels`, as text.
fn write_dot(store: &Store, labels: &DotLabels<'_>) -> String {
    let mut out = Vec::new();
    store.write_dot(&mut out, labels).expect("writes to a Vec");
    String::from_utf8(out).expect("DOT is UTF-8")
}

#[test]
fn write_dot_without_labels_draws_what_relgraph_dot_draws_of_the_stores_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let worlds = [
        ("world", counted_world().0),
        ("poly", poly::populated(poly::Config::default()).0),
    ];
    for (name, s) in worlds {
        let file = save(&s, dir.path(), &format!("{name}.rlg"));
        let run = on_file("dot", &file, &[]);
        assert_eq!(run.code, Some(0), "{run:?}");
        assert_eq!(write_dot(&s, &DotLabels::new()), run.stdout, "{name}");
    }
}

#[test]
fn write_dot_labels_the_rows_of_each_labelled_table_and_a_kinds_rows_after_their_base() {
    let (s, _, fx) = poly::populated(poly::Config::default());
    let labels = DotLabels::new()
        .table(|n: &poly::Notification| format!("at {}", n.at))
        .table(|e: &poly::Email| e.address.clone())
        .table(|u: &User| format!("{} said \"hi\"\nand left", u.name));
    let dot = write_dot(&s, &labels);
    let (e0, s0) = (fx.e0.raw(), fx.s0.raw());
    let email = format!(
        r#""notifications:{}" [label="notifications {e0} (email)\nat 1\nalice@a"];"#,
        e0.index()
    );
    assert!(dot.contains(&email), "{dot}");
    // a kind without a label: its base's label only
    let sms = format!(
        r#""notifications:{}" [label="notifications {s0} (sms)\nat 2"];"#,
        s0.index()
    );
    assert!(dot.contains(&sms), "{dot}");
    let alice = fx.alice.raw();
    let user = format!(
        r#""users:{}" [label="users {alice}\nalice said \"hi\"\nand left"];"#,
        alice.index()
    );
    assert!(dot.contains(&user), "{dot}");
    // a table without a label: its key only
    let phone = fx.phone.raw();
    let device = format!(r#"[label="devices {phone}"];"#);
    assert!(dot.contains(&device), "{dot}");
    // the links are those of the unlabelled drawing
    let plain = write_dot(&s, &DotLabels::new());
    let edges = |d: &str| {
        d.lines()
            .filter(|l| l.contains(" -> "))
            .map(String::from)
            .collect()
    };
    let (labelled, unlabelled): (Vec<String>, Vec<String>) = (edges(&dot), edges(&plain));
    assert_eq!(labelled, unlabelled);
    assert!(!labelled.is_empty());
}

#[test]
#[should_panic(expected = "is labelled but is not a table of this store")]
fn write_dot_with_a_label_for_a_type_that_is_not_a_table_panics() {
    let (s, _) = small_world();
    let labels = DotLabels::new().table(|_: &Unregistered| String::new());
    write_dot(&s, &labels);
}
