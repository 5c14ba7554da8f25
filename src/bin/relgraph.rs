//! `relgraph`: looks into relgraph snapshot files without the program that wrote them.
//!
//! - `inspect FILE` prints the header (format version, schema fingerprint, sizes, entity
//!   and link counts) and a table of the snapshot's tables and relations; of a damaged
//!   file, what it could read (the header, the sections before the damage), then the error.
//! - `verify FILE` checks the header, the checksum, the structure and every graph
//!   invariant, and prints `ok: N entities, M links` and what it checked; rows and link
//!   payloads are not decoded (that needs the program's types: `Store::verify_file`).
//! - `dot FILE` prints the graph as Graphviz DOT: all of it, the entities of one table and
//!   their links (`--table NAME`), or what one entity reaches through links in either
//!   direction (`--root TABLE:INDEX`, at most N links away with `--depth N`).
//!
//! ```sh
//! cargo run --release --bin relgraph -- verify FILE
//! cargo run --release --bin relgraph -- inspect FILE
//! cargo run --release --bin relgraph -- dot FILE --root users:0 --depth 2 | dot -Tsvg
//! ```
//!
//! Exit status: 0 success; 1 a bad or unreadable file (`relgraph: FILE: REASON` on
//! standard error); 2 a usage error (with the usage on standard error), including a
//! `--table` or `--root` that the snapshot does not hold.
//!
//! Rows are never decoded (that needs the program's types), and nothing in a file, however
//! damaged, makes the tool panic: every failure is a reason and an exit status.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use relgraph::snapshot::{self, DotScope, PartialInfo, SnapshotError, DEFAULT_MAX_BYTES};
use relgraph::{DeleteRule, RelationKind, Rules};

const USAGE: &str = "\
usage: relgraph inspect FILE
       relgraph verify FILE
       relgraph dot FILE [--table NAME | --root TABLE:INDEX [--depth N]]
       relgraph help
";

const HELP: &str = "\
relgraph: inspect, verify and draw relgraph snapshot files.

commands:
  inspect  the header (format version, schema fingerprint, sizes, entity and link
           counts) and every table and relation with its rows, links and bytes; of a
           damaged file, what could be read before the damage, then the error
  verify   check the header, the checksum, the structure and every graph invariant;
           rows and link payloads are not decoded (that needs the program's types:
           Store::verify_file in the program checks them)
  dot      the graph as Graphviz DOT on standard output:
             (no option)          every entity and link
             --table NAME         the entities of one table (or kind), their links, and
                                  the entities at the other end of those links
             --root TABLE:INDEX   the entity at slot INDEX of TABLE and what its links
                                  reach, in either direction
             --depth N            with --root: at most N links away

exit status: 0 success, 1 a bad or unreadable file, 2 a usage error (including a
--table or --root that the snapshot does not hold)
";

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    Help,
    Inspect(PathBuf),
    Verify(PathBuf),
    Dot(PathBuf, DotScope),
}

/// Why a run failed, and so its exit status.
enum Failure {
    /// The command line is wrong: exit 2 with the usage.
    Usage(String),
    /// The file is unreadable or not a sound snapshot: exit 1.
    File(PathBuf, SnapshotError),
    /// What could be read of a damaged file, printed before the failure (a `File`).
    Damaged(String, Box<Failure>),
    /// The file is sound but holds no such table or entity as the options name: exit 2.
    Scope(PathBuf, String),
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = parse(&args).map_err(Failure::Usage).and_then(run);
    match result {
        Ok(text) => match emit(&text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(1),
            Err(e) => {
                complain(&format!("relgraph: cannot write the output: {e}\n"));
                ExitCode::from(1)
            }
        },
        Err(failure) => fail(failure),
    }
}

/// Reports a failure; its exit status.
fn fail(failure: Failure) -> ExitCode {
    match failure {
        Failure::Usage(message) => {
            complain(&format!("relgraph: {message}\n{USAGE}"));
            ExitCode::from(2)
        }
        Failure::Damaged(text, failure) => {
            // what could be read first, on standard output (a closed pipe ends only that)
            let _ = emit(&text);
            fail(*failure)
        }
        Failure::File(path, e) => {
            complain(&format!(
                "relgraph: {}: {}\n",
                shown(&path),
                printable(&e.to_string())
            ));
            ExitCode::from(1)
        }
        Failure::Scope(path, detail) => {
            complain(&format!(
                "relgraph: {}: {}\n{USAGE}",
                shown(&path),
                printable(&detail)
            ));
            ExitCode::from(2)
        }
    }
}

/// Writes `text` to standard output.
fn emit(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes `text` to standard error; if even that fails, there is no one left to tell.
fn complain(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// Reads the command line (without the program name).
fn parse(args: &[OsString]) -> Result<Command, String> {
    let Some((command, rest)) = args.split_first() else {
        return Err("no command given".into());
    };
    let command = match command.to_str() {
        Some("help" | "-h" | "--help") => return Ok(Command::Help),
        Some(c @ ("inspect" | "verify" | "dot")) => c,
        _ => {
            let shown = printable(&command.to_string_lossy());
            return Err(format!("unknown command `{shown}`"));
        }
    };
    let mut file: Option<PathBuf> = None;
    let (mut table, mut root, mut depth) = (None, None, None);
    let mut only_files = false;
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            Some("-h" | "--help") if !only_files => return Ok(Command::Help),
            Some("--") if !only_files => only_files = true,
            Some(opt) if !only_files && opt.starts_with('-') && opt != "-" => {
                let (name, inline) = match opt.split_once('=') {
                    Some((name, value)) => (name, Some(value.to_string())),
                    None => (opt, None),
                };
                let slot = match (command, name) {
                    ("dot", "--table") => &mut table,
                    ("dot", "--root") => &mut root,
                    ("dot", "--depth") => &mut depth,
                    _ => {
                        let opt = printable(opt);
                        return Err(format!("`{command}` has no option `{opt}`"));
                    }
                };
                let value = match inline {
                    Some(value) => value,
                    None => match rest.next().map(|v| v.to_str()) {
                        Some(Some(value)) => value.to_string(),
                        Some(None) => return Err(format!("the value of {name} is not UTF-8")),
                        None => return Err(format!("{name} needs a value")),
                    },
                };
                if slot.replace(value).is_some() {
                    return Err(format!("{name} is given twice"));
                }
            }
            _ => {
                if file.replace(PathBuf::from(arg)).is_some() {
                    let extra = printable(&arg.to_string_lossy());
                    return Err(format!("`{command}` takes one FILE; unexpected `{extra}`"));
                }
            }
        }
    }
    let Some(file) = file else {
        return Err(format!("`{command}` needs a FILE"));
    };
    Ok(match command {
        "inspect" => Command::Inspect(file),
        "verify" => Command::Verify(file),
        _ => Command::Dot(file, scope(table, root, depth)?),
    })
}

/// The scope of `dot` from its options.
fn scope(
    table: Option<String>,
    root: Option<String>,
    depth: Option<String>,
) -> Result<DotScope, String> {
    match (table, root, depth) {
        (None, None, None) => Ok(DotScope::All),
        (Some(table), None, None) => Ok(DotScope::Table(table)),
        (Some(_), Some(_), _) => Err("--table and --root exclude each other".into()),
        (_, None, Some(_)) => Err("--depth goes with --root".into()),
        (None, Some(root), depth) => {
            let bad_root = || {
                let root = printable(&root);
                format!("--root wants TABLE:INDEX (a table, a colon, a slot index), not `{root}`")
            };
            let (table, index) = root.rsplit_once(':').ok_or_else(bad_root)?;
            let index = digits(index)
                .filter(|_| !table.is_empty())
                .ok_or_else(bad_root)?;
            let depth = match depth {
                None => None,
                Some(d) => Some(digits(&d).ok_or_else(|| {
                    let d = printable(&d);
                    format!("--depth wants a number of links, not `{d}`")
                })?),
            };
            Ok(DotScope::Around {
                table: table.to_string(),
                index,
                depth,
            })
        }
    }
}

/// A number written in decimal digits only (no sign, no spaces) that fits 32 bits.
fn digits(text: &str) -> Option<u32> {
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    text.parse().ok().filter(|_| plain)
}

/// Runs a command; its standard output on success.
fn run(command: Command) -> Result<String, Failure> {
    let read = |path: &Path| {
        snapshot::read_file(path, DEFAULT_MAX_BYTES).map_err(|e| Failure::File(path.into(), e))
    };
    match command {
        Command::Help => Ok(format!("{HELP}\n{USAGE}")),
        Command::Inspect(path) => {
            let bytes = read(&path)?;
            let mut info = snapshot::inspect_partial(&bytes);
            match info.error.take() {
                None => Ok(inspect_text(&info)),
                // nothing to show without a header: not a snapshot, or cut inside it
                Some(e) if info.header.is_none() => Err(Failure::File(path, e)),
                Some(e) => {
                    let failure = Box::new(Failure::File(path, e));
                    Err(Failure::Damaged(inspect_text(&info), failure))
                }
            }
        }
        Command::Verify(path) => {
            let bytes = read(&path)?;
            let info = snapshot::verify(&bytes).map_err(|e| Failure::File(path.clone(), e))?;
            Ok(format!(
                "ok: {} entities, {} links\n\
                 checked: header, checksum, structure, and every graph invariant under the \
                 snapshot's own schema\n\
                 not checked: that the {} rows and the link payloads decode (that needs the \
                 program's types: Store::verify_file in the program checks them), and that \
                 the program's schema accepts the snapshot's\n",
                info.header.entities,
                info.header.links,
                info.tables.iter().map(|t| t.rows).sum::<u64>()
            ))
        }
        Command::Dot(path, scope) => {
            let bytes = read(&path)?;
            snapshot::dot(&bytes, &scope).map_err(|e| match e {
                // the file is sound, the scope names something it does not hold
                SnapshotError::Malformed {
                    ref section,
                    ref detail,
                    ..
                } if section == "dot scope" => Failure::Scope(path.clone(), detail.clone()),
                e => Failure::File(path.clone(), e),
            })
        }
    }
}

/// The report of `inspect`: of a damaged file, what could be read.
fn inspect_text(info: &PartialInfo) -> String {
    let Some(h) = &info.header else {
        return format!("file size: {} bytes\n", info.file_bytes);
    };
    let schema_size = info
        .schema_bytes
        .map_or_else(|| "not read".to_string(), |n| format!("{n} bytes"));
    let fields = [
        ("format version", h.version.to_string()),
        ("schema fingerprint", format!("{:016x}", h.fingerprint)),
        ("file size", format!("{} bytes", info.file_bytes)),
        ("payload size", format!("{} bytes", h.payload_len)),
        ("schema size", schema_size),
        ("entities", h.entities.to_string()),
        ("links", h.links.to_string()),
    ];
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut s = String::new();
    for (key, value) in fields {
        let key = format!("{key}:");
        let _ = writeln!(s, "{key:width$} {value}");
    }
    if info.schema_bytes.is_none() {
        s.push_str("\ntables and relations: not read (the schema description is damaged)\n");
        return s;
    }
    let none = || "-".to_string();
    let _ = writeln!(
        s,
        "\ntables ({}):",
        section_count(&info.tables, &info.unread_tables)
    );
    let rows = info.tables.iter().map(|t| {
        vec![
            printable(&t.name),
            t.version.to_string(),
            t.kind_of.as_deref().map_or_else(none, printable),
            t.rows.to_string(),
            t.slots.to_string(),
            t.bytes.to_string(),
            t.shape.map_or_else(none, |h| format!("{h:016x}")),
        ]
    });
    grid(
        &mut s,
        &[
            "name",
            "version",
            "kind of",
            "rows",
            "slots",
            "bytes",
            "type shape",
        ],
        &[false, true, false, true, true, true, false],
        rows.collect(),
    );
    not_read(&mut s, &info.unread_tables);
    let count = section_count(&info.relations, &info.unread_relations);
    let _ = writeln!(s, "\nrelations ({count}):");
    let rows = info.relations.iter().map(|r| {
        vec![
            printable(&r.name),
            kind_name(r.kind).to_string(),
            rules_text(r.rules),
            r.poly_parent.as_deref().map_or_else(none, printable),
            r.links.to_string(),
            r.bytes.to_string(),
            if r.kind == RelationKind::ManyToMany {
                let shape = r.payload_shape.map_or_else(none, |h| format!("{h:016x}"));
                format!("v{}:{shape}", r.payload_version)
            } else {
                none()
            },
        ]
    });
    grid(
        &mut s,
        &[
            "name",
            "kind",
            "rules",
            "poly parent",
            "links",
            "bytes",
            "payload",
        ],
        &[false, false, false, false, true, true, false],
        rows.collect(),
    );
    not_read(&mut s, &info.unread_relations);
    s
}

/// How many sections of a kind the schema describes, and how many of them were not read.
fn section_count<T>(read: &[T], unread: &[String]) -> String {
    match unread.len() {
        0 => read.len().to_string(),
        n => format!("{}, {n} not read", read.len() + n),
    }
}

/// Appends the names of the sections not read, if any.
fn not_read(out: &mut String, names: &[String]) {
    if !names.is_empty() {
        let names: Vec<String> = names.iter().map(|n| printable(n)).collect();
        let _ = writeln!(out, "  not read: {}", names.join(", "));
    }
}

/// Appends `rows` under `header` in aligned columns (right-aligned where `right`).
fn grid(out: &mut String, header: &[&str], right: &[bool], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths = vec![0; header.len()];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for ((cell, &w), &r) in row.iter().zip(&widths).zip(right) {
            let _ = if r {
                write!(line, "  {cell:>w$}")
            } else {
                write!(line, "  {cell:<w$}")
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn kind_name(kind: RelationKind) -> &'static str {
    match kind {
        RelationKind::OneToMany => "one_to_many",
        RelationKind::OneToOne => "one_to_one",
        RelationKind::ManyToMany => "many_to_many",
    }
}

fn rule_name(rule: DeleteRule) -> &'static str {
    match rule {
        DeleteRule::Nullify => "nullify",
        DeleteRule::Cascade => "cascade",
        DeleteRule::Restrict => "restrict",
        DeleteRule::DeleteOrphan => "delete_orphan",
    }
}

/// `FIRST/SECOND` (the delete rule at each end), then `,no_self_links` or `,acyclic`.
fn rules_text(rules: Rules) -> String {
    let policy = if rules.is_acyclic() {
        ",acyclic"
    } else if rules.forbids_self_links() {
        ",no_self_links"
    } else {
        ""
    };
    format!(
        "{}/{}{policy}",
        rule_name(rules.delete_rule_a()),
        rule_name(rules.delete_rule_b())
    )
}

/// `text` with control characters escaped, so that a name in a file can't drive the
/// terminal or break a line.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_default());
            escaped
                .into_iter()
                .flatten()
                .chain((!c.is_control()).then_some(c))
        })
        .collect()
}

/// A path for a message.
fn shown(path: &Path) -> String {
    printable(&path.display().to_string())
}
