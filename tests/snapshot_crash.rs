//! Crash images (T3): a simulated file system that knows what a power cut keeps. A file's
//! content is durable up to its last `sync_file`; what was written since is lost, kept or
//! torn. Directory changes (create, rename, remove) are durable after `sync_dir` of their
//! folder; before, a crash keeps some first ones of them, in order. After every operation
//! of a save, every crash image must hold the old snapshot or the new one at the target,
//! after the save returns `Ok` the new one, and a save made again from every image must
//! succeed. Negative controls: a save without `sync_file` must be caught, and one without
//! `sync_dir` must fail the durability check.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::*;
use relgraph::snapshot::{is_temp_of, temp_path, FileSystem, HEADER_LEN};
use relgraph::{Schema, Store};

fn state(seed: u64, posts_n: usize) -> Store {
    common::snapshot::state(seed, posts_n, 0)
}

/// A file's content: `durable` survives any crash; `data` is what a reader sees now.
/// Files are only appended to, so `durable` is a prefix of `data`.
#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    data: Vec<u8>,
}

/// A change to the directory not yet made durable.
#[derive(Clone, Debug)]
enum DirOp {
    Create(PathBuf, usize),
    Rename(PathBuf, PathBuf),
    Remove(PathBuf),
}

fn apply(dir: &mut BTreeMap<PathBuf, usize>, op: &DirOp) {
    match op {
        DirOp::Create(p, ino) => {
            dir.insert(p.clone(), *ino);
        }
        DirOp::Rename(from, to) => {
            let ino = dir.remove(from).expect("rename of a missing file");
            dir.insert(to.clone(), ino);
        }
        DirOp::Remove(p) => {
            dir.remove(p);
        }
    }
}

/// The whole simulated disk: one folder.
#[derive(Clone, Debug, Default)]
struct Disk {
    inodes: Vec<Inode>,
    /// The folder's entries as of its last sync.
    durable_dir: BTreeMap<PathBuf, usize>,
    /// Its changes since, in order.
    pending: Vec<DirOp>,
}

impl Disk {
    /// The folder as a reader sees it now.
    fn dir(&self) -> BTreeMap<PathBuf, usize> {
        let mut dir = self.durable_dir.clone();
        for op in &self.pending {
            apply(&mut dir, op);
        }
        dir
    }

    /// A disk holding `bytes` at `path`, durably.
    fn with_file(path: &Path, bytes: &[u8]) -> Disk {
        let mut disk = Disk::default();
        disk.inodes.push(Inode {
            durable: bytes.to_vec(),
            data: bytes.to_vec(),
        });
        disk.durable_dir.insert(path.to_path_buf(), 0);
        disk
    }
}

/// How the simulator misbehaves, for the negative controls.
#[derive(Clone, Copy, Debug, Default)]
struct Quirks {
    /// `sync_file` does nothing (a save without fsync).
    skip_sync_file: bool,
    /// `sync_dir` does nothing.
    skip_sync_dir: bool,
}

/// The simulated file system: the disk, and the disk after every operation so far.
struct Sim {
    disk: Rc<RefCell<Disk>>,
    steps: Rc<RefCell<Vec<Disk>>>,
    /// The folder the files live in, as `sync_dir` must name it.
    folder: PathBuf,
    quirks: Quirks,
}

impl Sim {
    fn new(disk: Disk, folder: &Path, quirks: Quirks) -> Sim {
        Sim {
            steps: Rc::new(RefCell::new(vec![disk.clone()])),
            disk: Rc::new(RefCell::new(disk)),
            folder: folder.to_path_buf(),
            quirks,
        }
    }

    fn record(&self) {
        let disk = self.disk.borrow().clone();
        self.steps.borrow_mut().push(disk);
    }

    fn not_found(path: &Path) -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
    }
}

struct SimFile {
    ino: usize,
    disk: Rc<RefCell<Disk>>,
    steps: Rc<RefCell<Vec<Disk>>>,
}

impl Write for SimFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.disk.borrow_mut().inodes[self.ino]
            .data
            .extend_from_slice(buf);
        let disk = self.disk.borrow().clone();
        self.steps.borrow_mut().push(disk);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The folder of `path` as a save names it (`.` for a bare name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether the folder holds a temp file of `target`.
fn has_temp(dir: &BTreeMap<PathBuf, usize>, target: &Path) -> bool {
    let name = target.file_name().unwrap();
    dir.keys()
        .any(|p| folder_of(p) == folder_of(target) && is_temp_of(name, p.file_name().unwrap()))
}

impl FileSystem for Sim {
    type File = SimFile;

    fn read_link(&mut self, _path: &Path) -> io::Result<Option<PathBuf>> {
        Ok(None) // no links on this disk
    }

    fn list_dir(&mut self, dir: &Path) -> io::Result<Vec<OsString>> {
        let disk = self.disk.borrow();
        Ok(disk
            .dir()
            .keys()
            .filter(|p| folder_of(p) == dir)
            .map(|p| p.file_name().unwrap().to_os_string())
            .collect())
    }

    fn remove_stale(&mut self, path: &Path) -> io::Result<bool> {
        // no save of this disk runs concurrently: every temp file found is stale
        {
            let mut disk = self.disk.borrow_mut();
            if !disk.dir().contains_key(path) {
                return Ok(false);
            }
            disk.pending.push(DirOp::Remove(path.to_path_buf()));
        }
        self.record();
        Ok(true)
    }

    fn create_new(&mut self, path: &Path) -> io::Result<SimFile> {
        let ino = {
            let mut disk = self.disk.borrow_mut();
            if disk.dir().contains_key(path) {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            disk.inodes.push(Inode::default());
            let ino = disk.inodes.len() - 1;
            disk.pending.push(DirOp::Create(path.to_path_buf(), ino));
            ino
        };
        self.record();
        Ok(SimFile {
            ino,
            disk: Rc::clone(&self.disk),
            steps: Rc::clone(&self.steps),
        })
    }

    fn sync_file(&mut self, file: &mut SimFile) -> io::Result<()> {
        if !self.quirks.skip_sync_file {
            let mut disk = self.disk.borrow_mut();
            let inode = &mut disk.inodes[file.ino];
            inode.durable = inode.data.clone();
        }
        self.record();
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        {
            let mut disk = self.disk.borrow_mut();
            if !disk.dir().contains_key(from) {
                return Err(Sim::not_found(from));
            }
            let op = DirOp::Rename(from.to_path_buf(), to.to_path_buf());
            disk.pending.push(op);
        }
        self.record();
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        // only a sync of the right folder makes its entries durable
        if !self.quirks.skip_sync_dir && dir == self.folder {
            let mut disk = self.disk.borrow_mut();
            disk.durable_dir = disk.dir();
            disk.pending.clear();
        }
        self.record();
        Ok(())
    }

    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        {
            let mut disk = self.disk.borrow_mut();
            if !disk.dir().contains_key(path) {
                return Err(Sim::not_found(path));
            }
            disk.pending.push(DirOp::Remove(path.to_path_buf()));
        }
        self.record();
        Ok(())
    }
}

/// What a file's content can be after a crash: durable content plus none, all, or part of
/// what was written since the last sync, and torn variants whose tail is zeros or garbage.
fn content_images(inode: &Inode, rng: &mut Rng) -> Vec<Vec<u8>> {
    let (durable, data) = (&inode.durable, &inode.data);
    assert!(data.starts_with(durable), "files are only appended to");
    if durable.len() == data.len() {
        return vec![data.clone()];
    }
    let mut images = vec![durable.clone(), data.clone()];
    let unsynced = data.len() - durable.len();
    let mut cuts = vec![1, HEADER_LEN - 1, HEADER_LEN, unsynced / 2, unsynced - 1];
    if unsynced > 1 {
        cuts.extend((0..4).map(|_| 1 + rng.below(unsynced - 1)));
    }
    cuts.retain(|&c| c > 0 && c < unsynced);
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        let end = durable.len() + cut;
        // the file's length made it to disk, not all of its data
        let mut zeros = data[..end].to_vec();
        zeros.resize(data.len(), 0);
        let mut garbage = data[..end].to_vec();
        garbage.extend((end..data.len()).map(|_| rng.next() as u8));
        // a block of the unsynced part lost in the middle, the rest kept
        let mut hole = data.clone();
        for b in &mut hole[end..(end + 4096).min(data.len())] {
            *b = rng.next() as u8;
        }
        images.extend([data[..end].to_vec(), zeros, garbage, hole]);
    }
    images
}

/// Every crash image of `disk`, as a disk with nothing pending: each first few of the
/// pending directory changes kept, and for each file with unsynced content in that
/// folder, each of its content images.
fn crash_images(disk: &Disk, rng: &mut Rng) -> Vec<Disk> {
    let mut images = Vec::new();
    for kept in 0..=disk.pending.len() {
        let mut dir = disk.durable_dir.clone();
        for op in &disk.pending[..kept] {
            apply(&mut dir, op);
        }
        // every combination of the content images of the files in this folder
        let mut partial = vec![Disk {
            inodes: disk.inodes.clone(),
            durable_dir: dir.clone(),
            pending: Vec::new(),
        }];
        for &ino in dir.values() {
            let contents = content_images(&disk.inodes[ino], rng);
            partial = partial
                .iter()
                .flat_map(|image| {
                    contents.iter().map(move |content| {
                        let mut image = image.clone();
                        image.inodes[ino] = Inode {
                            durable: content.clone(),
                            data: content.clone(),
                        };
                        image
                    })
                })
                .collect();
        }
        images.extend(partial);
    }
    images
}

/// What a crash image holds at the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Absent,
    Old,
    New,
    Neither,
}

fn classify(schema: &Schema, image: Option<&[u8]>, old: Option<&[u8]>, new: &[u8]) -> Outcome {
    let Some(bytes) = image else {
        return Outcome::Absent;
    };
    match Store::from_snapshot(schema.clone(), bytes) {
        Ok(loaded) => {
            let again = loaded.to_snapshot().unwrap();
            assert_eq!(again, bytes, "a loaded image re-saves differently");
            if again == new {
                Outcome::New
            } else if Some(again.as_slice()) == old {
                Outcome::Old
            } else {
                Outcome::Neither
            }
        }
        Err(_) => Outcome::Neither,
    }
}

/// The figures of the crash images of one save.
#[derive(Debug, Default)]
struct Figures {
    steps: usize,
    images: usize,
    old: usize,
    new: usize,
    absent: usize,
    /// Images that are neither the old state nor the new one (absent counts as neither
    /// when there was an old file).
    neither: usize,
    /// Images after the save returned `Ok` that are not the new state.
    not_durable: usize,
    /// Images from which a save was made again, successfully.
    recovered: usize,
}

impl Figures {
    fn print(&self, what: &str) {
        println!(
            "T3 {what}: steps {}, images checked {} (old {}, new {}, absent {}), \
             neither-old-nor-new {}, not new after Ok {}, saved again from {}",
            self.steps,
            self.images,
            self.old,
            self.new,
            self.absent,
            self.neither,
            self.not_durable,
            self.recovered
        );
    }
}

/// Saves `new` over `old` (if any) at `target` in the simulator, with a durable stale temp
/// file of an interrupted save next to it if `stale_temp`, and checks every crash image of
/// every step.
fn check_save(
    target: &Path,
    old: Option<&Store>,
    new: &Store,
    quirks: Quirks,
    stale_temp: bool,
) -> Figures {
    let schema = new.schema().clone();
    let old_bytes = old.map(|s| s.to_snapshot().unwrap());
    let new_bytes = new.to_snapshot().unwrap();
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut disk = match &old_bytes {
        Some(bytes) => Disk::with_file(target, bytes),
        None => Disk::default(),
    };
    let temp = temp_path(target, 0x5ca1_ab1e);
    if stale_temp {
        let half = new_bytes[..new_bytes.len() / 2].to_vec();
        disk.inodes.push(Inode {
            durable: half.clone(),
            data: half,
        });
        disk.durable_dir.insert(temp.clone(), disk.inodes.len() - 1);
    }
    let mut sim = Sim::new(disk, &folder, quirks);
    new.save_with(&mut sim, target).unwrap();
    let steps = sim.steps.borrow().clone();
    let end = steps.last().unwrap().dir();
    assert!(
        !has_temp(&end, target),
        "a temp file is left after the save"
    );
    assert!(end.contains_key(target), "no file after the save");
    let mut rng = Rng::new(new_bytes.len() as u64);
    let mut f = Figures {
        steps: steps.len(),
        ..Figures::default()
    };
    for (i, disk) in steps.iter().enumerate() {
        let last = i == steps.len() - 1;
        for image in crash_images(disk, &mut rng) {
            f.images += 1;
            let found = image.dir().get(target).map(|&ino| &image.inodes[ino].data);
            let found = found.map(Vec::as_slice);
            let outcome = classify(&schema, found, old_bytes.as_deref(), &new_bytes);
            match outcome {
                Outcome::Old => f.old += 1,
                Outcome::New => f.new += 1,
                Outcome::Absent => f.absent += 1,
                Outcome::Neither => {}
            }
            let allowed = match outcome {
                Outcome::Old | Outcome::New => true,
                Outcome::Absent => old_bytes.is_none(),
                Outcome::Neither => false,
            };
            if !allowed {
                f.neither += 1;
            }
            if last && outcome != Outcome::New {
                f.not_durable += 1;
            }
            // after the reboot, a save works whatever the crash left (a stale temp file)
            let mut again = Sim::new(image, &folder, Quirks::default());
            new.save_with(&mut again, target).unwrap();
            let after = again.disk.borrow();
            let end = after.dir();
            let saved = end.get(target).map(|&ino| &after.inodes[ino].data);
            assert_eq!(saved, Some(&new_bytes), "a save after a crash");
            assert!(
                !has_temp(&end, target),
                "a save after a crash left its temp"
            );
            f.recovered += 1;
        }
    }
    f
}

#[test]
fn every_crash_image_of_every_step_of_a_save_holds_the_old_state_or_the_new_one() {
    let target = Path::new("/game/world.rlg");
    let (a, b) = (state(1, 30), state(2, 50));
    let mut total = Figures::default();
    let q = Quirks::default();
    let runs = [
        ("first save", check_save(target, None, &a, q, false)),
        (
            "over an old file",
            check_save(target, Some(&a), &b, q, false),
        ),
        ("back again", check_save(target, Some(&b), &a, q, false)),
        (
            "with a stale temp file",
            check_save(target, Some(&a), &b, q, true),
        ),
        (
            "first save, stale temp",
            check_save(target, None, &b, q, true),
        ),
        (
            "a bare file name (folder .)",
            check_save(Path::new("world.rlg"), Some(&a), &b, q, false),
        ),
    ];
    for (what, f) in &runs {
        f.print(what);
        total.steps += f.steps;
        total.images += f.images;
        total.old += f.old;
        total.new += f.new;
        total.absent += f.absent;
        total.neither += f.neither;
        total.not_durable += f.not_durable;
        total.recovered += f.recovered;
        assert_eq!(f.neither, 0, "{what}: an image is neither old nor new");
        assert_eq!(f.not_durable, 0, "{what}: after Ok, an image is not new");
        assert!(f.new > 0, "{what}: the new state is reachable");
    }
    total.print("total");
    assert!(
        runs[1].1.old > 0,
        "images before the rename keep the old state"
    );
}

#[test]
fn the_crash_checker_catches_a_save_without_fsync() {
    let target = Path::new("/game/world.rlg");
    let (a, b) = (state(1, 30), state(2, 50));
    let quirks = Quirks {
        skip_sync_file: true,
        ..Quirks::default()
    };
    let f = check_save(target, Some(&a), &b, quirks, false);
    f.print("negative control, no sync_file");
    assert!(
        f.neither > 0,
        "a save without fsync passed the crash checker: it checks nothing"
    );
}

#[test]
fn the_crash_checker_catches_a_save_that_reports_ok_before_the_folder_is_synced() {
    let target = Path::new("/game/world.rlg");
    let (a, b) = (state(1, 30), state(2, 50));
    let quirks = Quirks {
        skip_sync_dir: true,
        ..Quirks::default()
    };
    let f = check_save(target, Some(&a), &b, quirks, false);
    f.print("negative control, no sync_dir");
    assert_eq!(
        f.neither, 0,
        "without the folder sync it is still old or new"
    );
    assert!(
        f.not_durable > 0,
        "Ok without a folder sync passed as durable"
    );
}
