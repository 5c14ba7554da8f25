//! I/O fault injection (T2): a file system whose k-th operation fails, for every k of one
//! save, once (only that operation) and persistently (that one and every later one), with
//! EIO, ENOSPC, a short write and a write that returns `Ok(0)`. After every attempt the save
//! has returned without panicking, the target loads as exactly the old state or exactly the
//! new one, an `Ok` means the new one, an error names the step that failed and its file,
//! and no temp file is left unless a remove (or the listing that finds stale ones) failed.

mod common;

use std::cell::RefCell;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::snapshot::state;
use relgraph::snapshot::{temp_files, temp_path, FileSystem, SnapshotError, StdFileSystem};
use relgraph::{Schema, Store};

/// One file-system call of a save.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    ReadLink,
    ListDir,
    RemoveStale,
    Remove,
    Create,
    Write,
    SyncFile,
    Rename,
    SyncDir,
}

/// What the faulty operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Fails with this OS error (EIO 5, ENOSPC 28).
    Errno(i32),
    /// A write that writes half of what it was asked (at least one byte).
    Short,
    /// A write that returns `Ok(0)`.
    Zero,
}

impl Fault {
    /// Short and zero writes only apply to writes.
    fn applies_to(self, op: Op) -> bool {
        match self {
            Fault::Errno(_) => true,
            Fault::Short | Fault::Zero => op == Op::Write,
        }
    }
}

/// Once: only operation k fails. Persistent: k and every later operation fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Span {
    Once,
    Persistent,
}

/// The fault plan and what happened, shared by the file system and its open file.
#[derive(Debug, Default)]
struct Plan {
    /// The operation to fail first (1-based); `None` records without failing.
    fail_at: Option<(usize, Span, Fault)>,
    /// Every operation so far.
    trace: Vec<Op>,
    /// How many operations were made to fail.
    injected: usize,
    /// Whether a `remove_file` was made to fail, or a step up to the removal of stale temp
    /// files (`read_link`, `list_dir`, `remove_stale`): then a temp file may stay.
    remove_failed: bool,
}

impl Plan {
    /// Counts `op` and says which fault, if any, it suffers.
    fn next(&mut self, op: Op) -> Option<Fault> {
        self.trace.push(op);
        let n = self.trace.len();
        let (k, span, fault) = self.fail_at?;
        let hit = match span {
            Span::Once => n == k,
            Span::Persistent => n >= k,
        };
        if !hit || !fault.applies_to(op) {
            return None;
        }
        self.injected += 1;
        if matches!(
            op,
            Op::Remove | Op::RemoveStale | Op::ListDir | Op::ReadLink
        ) {
            self.remove_failed = true;
        }
        Some(fault)
    }
}

/// Fails an operation that is not a write.
fn fail(fault: Option<Fault>) -> io::Result<()> {
    match fault {
        Some(Fault::Errno(code)) => Err(io::Error::from_raw_os_error(code)),
        _ => Ok(()),
    }
}

/// The real file system, with faults injected according to a shared plan.
struct Faulty {
    plan: Rc<RefCell<Plan>>,
}

struct FaultyFile {
    inner: File,
    plan: Rc<RefCell<Plan>>,
}

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fault = self.plan.borrow_mut().next(Op::Write);
        match fault {
            None => self.inner.write(buf),
            Some(Fault::Errno(code)) => Err(io::Error::from_raw_os_error(code)),
            Some(Fault::Short) => self.inner.write(&buf[..(buf.len() / 2).max(1)]),
            Some(Fault::Zero) => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl FileSystem for Faulty {
    type File = FaultyFile;

    fn read_link(&mut self, path: &Path) -> io::Result<Option<PathBuf>> {
        fail(self.plan.borrow_mut().next(Op::ReadLink))?;
        StdFileSystem.read_link(path)
    }

    fn list_dir(&mut self, dir: &Path) -> io::Result<Vec<OsString>> {
        fail(self.plan.borrow_mut().next(Op::ListDir))?;
        StdFileSystem.list_dir(dir)
    }

    fn remove_stale(&mut self, path: &Path) -> io::Result<bool> {
        fail(self.plan.borrow_mut().next(Op::RemoveStale))?;
        StdFileSystem.remove_stale(path)
    }

    fn create_new(&mut self, path: &Path) -> io::Result<FaultyFile> {
        fail(self.plan.borrow_mut().next(Op::Create))?;
        Ok(FaultyFile {
            inner: StdFileSystem.create_new(path)?,
            plan: Rc::clone(&self.plan),
        })
    }

    fn sync_file(&mut self, file: &mut FaultyFile) -> io::Result<()> {
        fail(self.plan.borrow_mut().next(Op::SyncFile))?;
        StdFileSystem.sync_file(&mut file.inner)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fail(self.plan.borrow_mut().next(Op::Rename))?;
        StdFileSystem.rename(from, to)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        fail(self.plan.borrow_mut().next(Op::SyncDir))?;
        StdFileSystem.sync_dir(dir)
    }

    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        fail(self.plan.borrow_mut().next(Op::Remove))?;
        StdFileSystem.remove_file(path)
    }
}

/// One situation to save in: what the target holds before, what the save writes.
struct Scenario {
    name: &'static str,
    schema: Schema,
    /// The snapshot at the target before the save; `None`: no file yet.
    old: Option<Vec<u8>>,
    new: Store,
    /// A stale temp file from an interrupted save is present before the save.
    stale_temp: bool,
}

/// The figures of a run.
#[derive(Debug, Default)]
struct Figures {
    attempts: usize,
    injected: usize,
    old: usize,
    new: usize,
    other: usize,
    leftovers: usize,
    panics: usize,
    /// What went wrong, for the failure message.
    problems: Vec<String>,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.attempts += o.attempts;
        self.injected += o.injected;
        self.old += o.old;
        self.new += o.new;
        self.other += o.other;
        self.leftovers += o.leftovers;
        self.panics += o.panics;
        self.problems.extend(o.problems.iter().cloned());
    }

    fn print(&self, what: &str) {
        println!(
            "T2 {what}: attempts {}, faults injected {}, outcomes old {} / new {}, other {}, \
             leftovers {} (a remove failed), panics {}",
            self.attempts,
            self.injected,
            self.old,
            self.new,
            self.other,
            self.leftovers,
            self.panics
        );
    }
}

/// The tag of the stale temp file of the scenarios that have one.
const STALE_TAG: u64 = 0x5ca1_ab1e;

/// Puts the target and the temp file in the scenario's starting state.
fn prepare(sc: &Scenario, path: &Path) {
    let temp = temp_path(path, STALE_TAG);
    for p in temp_files(path)
        .unwrap()
        .iter()
        .map(PathBuf::as_path)
        .chain([path])
    {
        if p.exists() {
            fs::remove_file(p).unwrap();
        }
    }
    if let Some(old) = &sc.old {
        fs::write(path, old).unwrap();
    }
    if sc.stale_temp {
        fs::write(&temp, b"half of an interrupted save").unwrap();
    }
}

/// The operations of a save without faults, from the scenario's starting state.
fn reference_trace(sc: &Scenario, path: &Path) -> Vec<Op> {
    prepare(sc, path);
    let plan = Rc::new(RefCell::new(Plan::default()));
    let mut fs = Faulty {
        plan: Rc::clone(&plan),
    };
    sc.new.save_with(&mut fs, path).unwrap();
    let trace = plan.borrow().trace.clone();
    trace
}

/// Saves with operation `k` faulty and checks what is left; the figures of that attempt.
fn attempt(sc: &Scenario, path: &Path, k: usize, span: Span, fault: Fault) -> Figures {
    let mut f = Figures {
        attempts: 1,
        ..Figures::default()
    };
    let what = format!("{}: op {k} {span:?} {fault:?}", sc.name);
    prepare(sc, path);
    let plan = Rc::new(RefCell::new(Plan {
        fail_at: Some((k, span, fault)),
        ..Plan::default()
    }));
    let mut faulty = Faulty {
        plan: Rc::clone(&plan),
    };
    let result = catch_unwind(AssertUnwindSafe(|| sc.new.save_with(&mut faulty, path)));
    let plan = plan.borrow();
    f.injected = plan.injected;
    if plan.injected == 0 {
        f.problems.push(format!("{what}: no fault was injected"));
    }
    let result = match result {
        Ok(r) => r,
        Err(_) => {
            f.panics = 1;
            f.problems.push(format!("{what}: the save panicked"));
            return f;
        }
    };
    // the error reported is the one injected, never one of a clean-up that followed, and
    // it names the step and the file
    match (&result, fault) {
        (Err(e @ SnapshotError::Io { source, .. }), Fault::Errno(_) | Fault::Zero)
            if matches!(fault, Fault::Errno(c) if source.raw_os_error() == Some(c))
                || (fault == Fault::Zero && source.kind() == io::ErrorKind::WriteZero) =>
        {
            let message = e.to_string();
            if !names_step_and_file(plan.trace[k - 1], &message, path) {
                f.problems.push(format!(
                    "{what}: the error does not name the step {:?} and its file: {message}",
                    plan.trace[k - 1]
                ));
            }
        }
        (Ok(()), Fault::Short) => {}
        (r, _) => f.problems.push(format!("{what}: the save returned {r:?}")),
    }
    // the target: exactly the old state or exactly the new one
    let new_bytes = sc.new.to_snapshot().unwrap();
    let outcome = if path.exists() {
        let on_disk = fs::read(path).unwrap();
        match Store::load(sc.schema.clone(), path) {
            Ok(loaded) => {
                let again = loaded.to_snapshot().unwrap();
                assert_eq!(again, on_disk, "{what}: a loaded file re-saves differently");
                if again == new_bytes {
                    Some("new")
                } else if Some(&again) == sc.old.as_ref() {
                    Some("old")
                } else {
                    None
                }
            }
            Err(e) => {
                f.problems
                    .push(format!("{what}: the target does not load: {e}"));
                None
            }
        }
    } else if sc.old.is_none() {
        // no file before the first save, none after: the old state
        Some("old")
    } else {
        f.problems.push(format!("{what}: the target is gone"));
        None
    };
    match outcome {
        Some("new") => f.new = 1,
        Some(_) => f.old = 1,
        None => {
            f.other = 1;
            f.problems
                .push(format!("{what}: the target is neither old nor new"));
        }
    }
    if result.is_ok() && outcome != Some("new") {
        f.problems
            .push(format!("{what}: Ok, but the target is not new"));
    }
    // the temp file: gone, unless removing it failed
    if !temp_files(path).unwrap().is_empty() {
        f.leftovers = 1;
        if !plan.remove_failed {
            f.problems.push(format!("{what}: a temp file is left"));
        }
    }
    f
}

/// Whether `message`, the error of a save of `path` whose operation `op` failed, says
/// which step failed and names the file (or folder) it acted on.
fn names_step_and_file(op: Op, message: &str, path: &Path) -> bool {
    let (folder, target) = (path.parent().unwrap(), path.display().to_string());
    let temp = |rest: &str| {
        let prefix = format!("{}/.world.rlg.", folder.display());
        message
            .strip_prefix(rest)
            .and_then(|m| m.strip_prefix(&prefix))
            .is_some_and(|m| m.contains(".relgraph-tmp"))
    };
    match op {
        Op::ReadLink => {
            message.starts_with(&format!("could not resolve the symbolic link {target}:"))
        }
        Op::ListDir => {
            message.starts_with(&format!("could not list the folder {}:", folder.display()))
        }
        Op::RemoveStale => temp("could not remove the stale temp file "),
        Op::Create => temp("could not create "),
        Op::Write => temp("could not write "),
        Op::SyncFile => temp("could not sync "),
        Op::Rename => temp("could not rename ") && message.contains(&format!(" to {target}:")),
        Op::SyncDir => {
            message.starts_with(&format!("could not sync the folder {}:", folder.display()))
        }
        Op::Remove => false, // a clean-up's error is never the one reported
    }
}

/// Every fault at every operation of one save of the scenario, then a clean save.
fn run(sc: &Scenario, dir: &Path) -> Figures {
    let path = dir.join("world.rlg");
    let trace = reference_trace(sc, &path);
    assert!(trace.contains(&Op::Rename), "{}: {trace:?}", sc.name);
    let mut figures = Figures::default();
    let faults = [Fault::Errno(5), Fault::Errno(28), Fault::Short, Fault::Zero];
    for fault in faults {
        for span in [Span::Once, Span::Persistent] {
            for (i, &op) in trace.iter().enumerate() {
                if fault.applies_to(op) {
                    figures.add(&attempt(sc, &path, i + 1, span, fault));
                }
            }
        }
    }
    // after all that, a save without faults succeeds and cleans up
    sc.new.save(&path).unwrap();
    assert_eq!(temp_files(&path).unwrap(), Vec::<PathBuf>::new());
    let loaded = Store::load(sc.schema.clone(), &path).unwrap();
    assert_eq!(loaded.to_snapshot().unwrap(), sc.new.to_snapshot().unwrap());
    figures.print(&format!("{} ({} ops a save)", sc.name, trace.len()));
    figures
}

fn scenarios() -> Vec<Scenario> {
    let small_old = state(1, 40, 10);
    let small_new = state(2, 45, 10);
    // more than two write calls of the save's 1 MiB chunks
    let big_old = state(3, 200, 12_000);
    let big_new = state(4, 210, 12_000);
    assert!(big_new.to_snapshot().unwrap().len() > 2 << 20);
    let schema = small_new.schema().clone();
    let small = |name, old: Option<&Store>, stale_temp| Scenario {
        name,
        schema: schema.clone(),
        old: old.map(|s| s.to_snapshot().unwrap()),
        new: Store::from_snapshot(schema.clone(), &small_new.to_snapshot().unwrap()).unwrap(),
        stale_temp,
    };
    vec![
        small("small over small", Some(&small_old), false),
        small("small over small, stale temp", Some(&small_old), true),
        small("first save", None, false),
        small("first save, stale temp", None, true),
        Scenario {
            name: "big over big",
            schema: schema.clone(),
            old: Some(big_old.to_snapshot().unwrap()),
            new: big_new,
            stale_temp: false,
        },
    ]
}

#[test]
fn every_fault_at_every_step_of_a_save_leaves_the_old_file_or_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = Figures::default();
    for (i, sc) in scenarios().iter().enumerate() {
        let sub: PathBuf = dir.path().join(format!("s{i}"));
        fs::create_dir(&sub).unwrap();
        total.add(&run(sc, &sub));
    }
    total.print("total");
    assert!(
        total.problems.is_empty(),
        "{} problems, the first ones:\n{}",
        total.problems.len(),
        total.problems[..total.problems.len().min(20)].join("\n")
    );
    assert_eq!(total.other, 0);
    assert_eq!(total.panics, 0);
    assert!(
        total.old > 0 && total.new > 0,
        "both outcomes are exercised"
    );
    assert!(total.leftovers > 0, "a failed remove is exercised");
}

#[test]
fn an_injected_fault_names_the_step_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.rlg");
    let store = state(1, 10, 5);
    let plan = Rc::new(RefCell::new(Plan::default()));
    store
        .save_with(
            &mut Faulty {
                plan: Rc::clone(&plan),
            },
            &path,
        )
        .unwrap();
    let trace = plan.borrow().trace.clone();
    let rename = trace.iter().position(|&op| op == Op::Rename).unwrap() + 1;
    let plan = Rc::new(RefCell::new(Plan {
        fail_at: Some((rename, Span::Once, Fault::Errno(5))),
        ..Plan::default()
    }));
    let err = store
        .save_with(&mut Faulty { plan }, &path)
        .expect_err("the rename fails");
    let message = err.to_string();
    let temp = format!("{}/.world.rlg.", dir.path().display());
    assert!(
        message.starts_with(&format!("could not rename {temp}")),
        "{message}"
    );
    assert!(
        message.contains(&format!(".relgraph-tmp to {}: ", path.display())),
        "{message}"
    );
    let source = std::error::Error::source(&err).expect("the i/o error is the source");
    assert!(message.ends_with(&source.to_string()), "{message}");
}

/// A store that saves quickly, and its schema.
fn small(seed: u64) -> Store {
    state(seed, 10, 5)
}

#[test]
fn a_save_to_a_250_byte_file_name_writes_a_file_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let store = small(1);
    for len in [224, 225, 250, 255] {
        let path = dir.path().join("w".repeat(len - 4) + ".rlg");
        store.save(&path).unwrap();
        let loaded = Store::load(store.schema().clone(), &path).unwrap();
        assert_eq!(loaded.to_snapshot().unwrap(), store.to_snapshot().unwrap());
        assert_eq!(temp_files(&path).unwrap(), Vec::<PathBuf>::new(), "{len}");
        // a shortened temp name is still the target's, and fits
        let temp = temp_path(&path, u64::MAX);
        assert!(temp.file_name().unwrap().len() <= 255, "{len}");
        let name = path.file_name().unwrap();
        assert!(relgraph::snapshot::is_temp_of(
            name,
            temp.file_name().unwrap()
        ));
    }
    // two long names that share their first 250 bytes have different temp names
    let a = dir.path().join("x".repeat(250) + "a");
    let b = dir.path().join("x".repeat(250) + "b");
    assert_ne!(temp_path(&a, 1).file_name(), temp_path(&b, 1).file_name());
}

#[cfg(unix)]
#[test]
fn a_save_through_a_symbolic_link_writes_its_target_and_keeps_the_link() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("saves");
    fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("world.rlg");
    let (first, second) = (small(1), small(2));
    first.save(&real).unwrap();
    // a relative link to a relative link to the file
    let hop = real_dir.join("current.rlg");
    symlink("world.rlg", &hop).unwrap();
    let link = dir.path().join("link.rlg");
    symlink("saves/current.rlg", &link).unwrap();
    second.save(&link).unwrap();
    for l in [&link, &hop] {
        assert!(fs::symlink_metadata(l).unwrap().file_type().is_symlink());
    }
    let loaded = Store::load(second.schema().clone(), &real).unwrap();
    assert_eq!(loaded.to_snapshot().unwrap(), second.to_snapshot().unwrap());
    assert_eq!(temp_files(&real).unwrap(), Vec::<PathBuf>::new());
    assert_eq!(temp_files(&link).unwrap(), Vec::<PathBuf>::new());
    // a dangling link: the save creates the file it points to
    let dangling = dir.path().join("new.rlg");
    symlink("saves/new-target.rlg", &dangling).unwrap();
    first.save(&dangling).unwrap();
    assert!(fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(Store::load(first.schema().clone(), real_dir.join("new-target.rlg")).is_ok());
    // a loop: a clear error naming the link, and nothing written
    let (a, b) = (dir.path().join("a.rlg"), dir.path().join("b.rlg"));
    symlink("b.rlg", &a).unwrap();
    symlink("a.rlg", &b).unwrap();
    let err = first.save(&a).expect_err("a loop of links");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "could not resolve the symbolic link {}",
            a.display()
        )),
        "{message}"
    );
    assert!(message.contains("symbolic links"), "{message}");
}

#[test]
fn concurrent_saves_to_one_path_all_succeed_and_leave_one_complete_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.rlg");
    let stores: Vec<Store> = (0..4).map(|i| state(i, 60, 200)).collect();
    let snapshots: Vec<Vec<u8>> = stores.iter().map(|s| s.to_snapshot().unwrap()).collect();
    // a stale temp file of an interrupted save, which one of them removes
    fs::write(temp_path(&path, 7), b"half a save").unwrap();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                scope.spawn(|| {
                    (0..25)
                        .filter_map(|_| store.save(&path).err().map(|e| e.to_string()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(failures, Vec::<String>::new(), "saves failed");
    let on_disk = fs::read(&path).unwrap();
    assert!(
        snapshots.contains(&on_disk),
        "the file is not one of the snapshots"
    );
    assert!(Store::load(stores[0].schema().clone(), &path).is_ok());
    assert_eq!(temp_files(&path).unwrap(), Vec::<PathBuf>::new());
}
