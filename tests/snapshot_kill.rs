//! A process killed while saving (T4). The tests run this test binary again as a child
//! process that saves two states in turn to one file, and kill it: (a) at each step of a
//! save, by a file system that aborts the process at its k-th operation (or halfway
//! through a write); (b) at random moments, with `Child::kill`. After each kill the file
//! loads as one of the states the child saved, and the next save removes a stale temp
//! file. (c) A real disk-full error, on a tiny tmpfs mounted for the test (skipped, with
//! the reason printed, where mounting is not allowed).

#![cfg(unix)]

mod common;

use std::cell::RefCell;
use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use common::*;
use relgraph::snapshot::{temp_files, FileSystem, SnapshotError, StdFileSystem};
use relgraph::Store;

/// The name of the child half, which the parent tests run with `--exact`.
const CHILD: &str = "the_child_process_saves_two_states_in_turn_until_it_dies";
/// Tells the child what to do: `abort:K:HALF` or `loop`.
const MODE_VAR: &str = "RELGRAPH_T4_CHILD";
/// The file the child saves to.
const PATH_VAR: &str = "RELGRAPH_T4_PATH";

const SIGABRT: i32 = 6;
const SIGKILL: i32 = 9;

use common::snapshot::state;

/// The two states of the step-by-step kills: small, one write each.
fn small_states() -> [Store; 2] {
    [state(1, 20, 10), state(2, 25, 10)]
}

/// The two states of the random kills: large enough that a save takes a while.
fn large_states() -> [Store; 2] {
    [state(3, 150, 2_000), state(4, 160, 2_000)]
}

/// The real file system, which aborts the process at its `abort_at`-th operation, before
/// doing it (a write first writes half of its bytes if `half`), and records the operations.
#[derive(Clone, Default)]
struct Aborting {
    trace: Rc<RefCell<Vec<&'static str>>>,
    abort_at: usize,
    half: bool,
}

impl Aborting {
    fn step(&self, op: &'static str) {
        self.trace.borrow_mut().push(op);
        if self.trace.borrow().len() == self.abort_at {
            std::process::abort();
        }
    }

    /// The 1-based number of the first operation `op`.
    fn first(&self, op: &str) -> usize {
        self.trace.borrow().iter().position(|&o| o == op).unwrap() + 1
    }
}

struct AbortingFile {
    inner: fs::File,
    fs: Aborting,
}

impl Write for AbortingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let at = self.fs.trace.borrow().len() + 1;
        if at == self.fs.abort_at && self.fs.half {
            self.inner.write_all(&buf[..buf.len() / 2])?;
        }
        self.fs.step("write");
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl FileSystem for Aborting {
    type File = AbortingFile;

    fn read_link(&mut self, path: &Path) -> io::Result<Option<PathBuf>> {
        self.step("read_link");
        StdFileSystem.read_link(path)
    }

    fn list_dir(&mut self, dir: &Path) -> io::Result<Vec<OsString>> {
        self.step("list_dir");
        StdFileSystem.list_dir(dir)
    }

    fn remove_stale(&mut self, path: &Path) -> io::Result<bool> {
        self.step("remove_stale");
        StdFileSystem.remove_stale(path)
    }

    fn create_new(&mut self, path: &Path) -> io::Result<AbortingFile> {
        self.step("create");
        Ok(AbortingFile {
            inner: StdFileSystem.create_new(path)?,
            fs: self.clone(),
        })
    }

    fn sync_file(&mut self, file: &mut AbortingFile) -> io::Result<()> {
        self.step("sync_file");
        StdFileSystem.sync_file(&mut file.inner)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.step("rename");
        StdFileSystem.rename(from, to)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.step("sync_dir");
        StdFileSystem.sync_dir(dir)
    }

    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        self.step("remove");
        StdFileSystem.remove_file(path)
    }
}

/// The child half: run by the tests below as a separate process, never on its own (it
/// does nothing without its environment variable). Saves the second state, then the first,
/// and so on, until it is killed or aborts itself.
#[test]
#[ignore = "the child process of the kill tests; they run it"]
fn the_child_process_saves_two_states_in_turn_until_it_dies() {
    let Ok(mode) = env::var(MODE_VAR) else {
        return;
    };
    let path = PathBuf::from(env::var(PATH_VAR).unwrap());
    if mode == "loop" {
        let states = large_states();
        for i in 0..100_000 {
            states[(i + 1) % 2].save(&path).unwrap();
            if i == 0 {
                println!("ready");
            }
        }
        return;
    }
    if let Some(which) = mode.strip_prefix("race:") {
        // one of several processes saving to one path at once: every save must succeed
        let store = &small_states()[which.parse::<usize>().unwrap() % 2];
        for _ in 0..40 {
            store.save(&path).unwrap();
        }
        return;
    }
    let parts: Vec<&str> = mode.split(':').collect();
    let [_, k, half] = parts[..] else {
        panic!("bad mode {mode}");
    };
    let mut fs = Aborting {
        abort_at: k.parse().unwrap(),
        half: half == "1",
        ..Aborting::default()
    };
    let states = small_states();
    for i in 0..4 {
        states[(i + 1) % 2].save_with(&mut fs, &path).unwrap();
    }
    // not aborted: the parent sees a clean exit and fails
}

/// The child, running this binary again.
fn child(mode: &str, path: &Path) -> Command {
    let mut cmd = Command::new(env::current_exe().unwrap());
    cmd.args(["--exact", CHILD, "--nocapture", "--ignored"])
        .env(MODE_VAR, mode)
        .env(PATH_VAR, path);
    cmd
}

/// Kills the child if the test fails while it runs.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Which of `states` the file at `path` holds, loaded through `Store::load`.
fn which(path: &Path, states: &[Vec<u8>; 2]) -> Option<usize> {
    let schema = world(Config::default()).0.schema().clone();
    let loaded = Store::load(schema, path).ok()?;
    let bytes = loaded.to_snapshot().unwrap();
    states.iter().position(|s| *s == bytes)
}

/// Saves `store` from the parent, and checks it removed the stale temp file, if any.
/// Whether there was one.
fn save_and_clean(store: &Store, path: &Path) -> bool {
    let stale = !temp_files(path).unwrap().is_empty();
    store.save(path).unwrap();
    assert!(
        temp_files(path).unwrap().is_empty(),
        "the save left a temp file"
    );
    stale
}

/// The number of operations of one save of the small states, of its write and its rename.
fn ops_of_one_save(path: &Path) -> (usize, usize, usize) {
    let [a, b] = small_states();
    a.save(path).unwrap();
    let mut fs = Aborting::default();
    b.save_with(&mut fs, path).unwrap();
    let ops = fs.trace.borrow().len();
    (ops, fs.first("write"), fs.first("rename"))
}

#[test]
fn a_save_killed_at_any_step_leaves_a_file_that_loads_as_the_old_or_the_new_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.rlg");
    let (per_save, write, rename) = ops_of_one_save(&path);
    let states = small_states();
    let bytes = states.each_ref().map(|s| s.to_snapshot().unwrap());
    let (mut kills, mut corrupt, mut stale, mut cleaned) = (0, 0, 0, 0);
    // abort before each operation of the child's first two saves, and halfway through
    // each of their writes
    let mut plans: Vec<(usize, bool)> = (1..=2 * per_save).map(|k| (k, false)).collect();
    plans.extend([(write, true), (write + per_save, true)]);
    for (k, half) in plans {
        if save_and_clean(&states[0], &path) {
            cleaned += 1;
        }
        let out = child(&format!("abort:{k}:{}", u8::from(half)), &path)
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(SIGABRT),
            "op {k}: the child was not aborted: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        kills += 1;
        // the child saved state 1, then state 0: renames done before op k decide which
        let renames = usize::from(k > rename) + usize::from(k > per_save + rename);
        let expected = renames % 2;
        match which(&path, &bytes) {
            Some(i) => assert_eq!(i, expected, "op {k}: the file holds the other state"),
            None => corrupt += 1,
        }
        if !temp_files(&path).unwrap().is_empty() {
            stale += 1;
        }
    }
    if save_and_clean(&states[0], &path) {
        cleaned += 1;
    }
    println!(
        "T4 kills at each step: kills {kills}, corrupt loads {corrupt}, stale temps {stale}, \
         stale temps cleaned {cleaned}"
    );
    assert_eq!(corrupt, 0, "a killed save left a file that does not load");
    assert!(
        stale > 0,
        "no kill left a temp file: the steps were not reached"
    );
    assert_eq!(
        cleaned, stale,
        "every stale temp file was removed by the next save"
    );
}

#[test]
fn a_save_killed_at_random_moments_leaves_a_file_that_loads_as_a_saved_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.rlg");
    let states = large_states();
    let bytes = states.each_ref().map(|s| s.to_snapshot().unwrap());
    let mut rng = Rng::new(4);
    let (mut kills, mut corrupt, mut stale, mut cleaned) = (0, 0, 0, 0);
    let mut seen = [0; 2];
    for _ in 0..30 {
        if save_and_clean(&states[0], &path) {
            cleaned += 1;
        }
        let mut cmd = child("loop", &path);
        let spawned = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn();
        let mut guard = KillOnDrop(spawned.unwrap());
        // wait until the child has saved once, then let it run a little
        let stdout = guard.0.stdout.take().unwrap();
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l == "ready");
        assert!(ready, "the child did not start saving");
        thread::sleep(Duration::from_micros(rng.below(20_000) as u64));
        guard.0.kill().unwrap();
        let status = guard.0.wait().unwrap();
        assert_eq!(status.signal(), Some(SIGKILL), "{status:?}");
        kills += 1;
        match which(&path, &bytes) {
            Some(i) => seen[i] += 1,
            None => corrupt += 1,
        }
        if !temp_files(&path).unwrap().is_empty() {
            stale += 1;
        }
    }
    if save_and_clean(&states[0], &path) {
        cleaned += 1;
    }
    println!(
        "T4 random kills: kills {kills}, corrupt loads {corrupt}, files found with state 0 / 1: \
         {} / {}, stale temps {stale}, stale temps cleaned {cleaned}",
        seen[0], seen[1]
    );
    assert_eq!(corrupt, 0, "a killed save left a file that does not load");
    assert_eq!(
        cleaned, stale,
        "every stale temp file was removed by the next save"
    );
}

#[test]
fn processes_saving_to_one_path_at_once_all_succeed_and_leave_one_saved_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.rlg");
    let states = small_states();
    let bytes = states.each_ref().map(|s| s.to_snapshot().unwrap());
    let children: Vec<KillOnDrop> = (0..4)
        .map(|i| {
            let mut cmd = child(&format!("race:{i}"), &path);
            KillOnDrop(
                cmd.stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for mut c in children {
        let status = c.0.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = c.0.stderr.take() {
            io::Read::read_to_string(&mut e, &mut stderr).unwrap();
        }
        assert!(
            status.success(),
            "a saving process failed: {status:?}\n{stderr}"
        );
    }
    assert!(
        which(&path, &bytes).is_some(),
        "the file is not a saved state"
    );
    assert!(temp_files(&path).unwrap().is_empty(), "a temp file is left");
}

/// Unmounts the tmpfs when the test ends, even on failure.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mounts a 128 KiB tmpfs at `dir`, or says why not.
fn mount_tiny_tmpfs(dir: &Path) -> Result<Unmount, String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=128k", "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(format!("mount failed ({}): {why}", out.status));
    }
    Ok(Unmount(dir.to_path_buf()))
}

#[test]
fn a_save_that_fills_the_disk_fails_with_enospc_and_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let mount = match mount_tiny_tmpfs(dir.path()) {
        Ok(m) => m,
        Err(reason) => {
            println!("T4 ENOSPC: skipped: {reason}");
            return;
        }
    };
    let path = dir.path().join("world.rlg");
    let small = state(5, 10, 10);
    let big = state(6, 100, 3_000);
    let (small_bytes, big_bytes) = (small.to_snapshot().unwrap(), big.to_snapshot().unwrap());
    assert!(small_bytes.len() < 32 << 10 && big_bytes.len() > 256 << 10);
    small.save(&path).unwrap();
    let err = big.save(&path).expect_err("a 300 KB save fits in 128 KiB");
    let SnapshotError::Io { source: e, .. } = &err else {
        panic!("not an i/o error: {err:?}");
    };
    assert_eq!(e.raw_os_error(), Some(28), "not ENOSPC: {e}");
    let schema = small.schema().clone();
    let loaded = Store::load(schema, &path).unwrap();
    assert_eq!(loaded.to_snapshot().unwrap(), small_bytes);
    assert!(
        temp_files(&path).unwrap().is_empty(),
        "the failed save left its temp file"
    );
    // the space is given back: the small state saves again
    small.save(&path).unwrap();
    println!(
        "T4 ENOSPC: a {} byte save on a 128 KiB tmpfs: {e}; the old {} byte file loads, \
         no temp file left",
        big_bytes.len(),
        small_bytes.len()
    );
    drop(mount);
}
