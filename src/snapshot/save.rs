//! Encoding a store, and writing the bytes to a file atomically.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{IoStep, SnapshotError};
use super::format::{checksum, put_varint, Header, FORMAT_VERSION, HEADER_LEN};
use super::image::{put_free_list, put_slot, Lists, SchemaDesc};
use crate::codec::{CodecError, Unloadable};
use crate::relation::many_to_many::ManyToManyStore;
use crate::relation::RelationStore;
use crate::schema::End;
use crate::Store;

fn encode_error(section: String, e: CodecError) -> SnapshotError {
    SnapshotError::Encode {
        section,
        detail: match e {
            CodecError::Limit => "limit exceeded".into(),
            CodecError::Other(s) => s,
            CodecError::NotCanonical => "not canonical".into(),
        },
    }
}

/// Reserves an 8-byte length prefix and returns where it is.
fn open_blob(out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(&[0; 8]);
    out.len()
}

fn close_blob(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u64;
    out[start - 8..start].copy_from_slice(&len.to_le_bytes());
}

/// The keys of the `index`-th link of a many-to-many in its first end's order, as
/// `(a, b)` (for an error message).
fn link_pair(store: &Store, a_table: u32, r: &ManyToManyStore, index: usize) -> String {
    let pair = r
        .owned_lists(End::A)
        .flat_map(|(owner, list)| list.iter().map(move |(b, _)| (owner, b)))
        .nth(index);
    let Some((owner, b)) = pair else {
        return format!("link {index}");
    };
    let a = store.tables[a_table as usize]
        .keys()
        .into_iter()
        .find(|k| k.index() == owner);
    match a {
        Some(a) => format!("({a}, {b})"),
        None => format!("(slot {owner}, {b})"),
    }
}

/// The snapshot of `store`: header and payload. Deterministic: the same store state gives
/// the same bytes, if the row types serialize deterministically.
pub(crate) fn encode(store: &Store) -> Result<Vec<u8>, SnapshotError> {
    if store.depth > 0 {
        return Err(SnapshotError::InTransaction);
    }
    let desc = SchemaDesc::of(&store.schema);
    let mut out = Vec::with_capacity(HEADER_LEN + 4096);
    out.resize(HEADER_LEN, 0);
    desc.write(&mut out);
    let mut entities = 0u64;
    for (def, arena) in store.schema.tables.iter().zip(&store.tables) {
        put_varint(&mut out, arena.slot_count() as u64);
        if def.base.is_none() {
            entities += arena.len() as u64;
            arena.layout(&mut |high, version| put_slot(&mut out, high, version));
            put_free_list(&mut out, arena.as_ref());
        } else {
            arena.layout(&mut |index, _| put_varint(&mut out, u64::from(index)));
        }
        let start = open_blob(&mut out);
        arena.encode_rows(&mut out).map_err(|e| match e {
            Unloadable::Encode(e) => encode_error(format!("a row of table {}", def.name), e),
            Unloadable::Value { index, cause } => SnapshotError::Unencodable {
                section: format!("table {}", def.name),
                key: arena
                    .keys()
                    .get(index)
                    .map_or_else(|| format!("row {index}"), ToString::to_string),
                cause,
            },
        })?;
        close_blob(&mut out, start);
    }
    let mut links = 0u64;
    for (def, rel) in store.schema.relations.iter().zip(&store.relations) {
        links += rel.link_count() as u64;
        match rel {
            RelationStore::OneToMany(r) => {
                let count = r.lists().count();
                Lists::write(
                    &mut out,
                    count,
                    r.lists()
                        .map(|(owner, l)| (owner, l.len(), l.map(|c| c.index()))),
                );
            }
            RelationStore::OneToOne(r) => {
                put_varint(&mut out, r.link_count() as u64);
                for (a, b) in r.pairs() {
                    put_varint(&mut out, u64::from(a.index()));
                    put_varint(&mut out, u64::from(b.index()));
                }
            }
            RelationStore::ManyToMany(r) => {
                for end in [End::A, End::B] {
                    let count = r.owned_lists(end).count();
                    Lists::write(
                        &mut out,
                        count,
                        r.owned_lists(end)
                            .map(|(owner, l)| (owner, l.len(), l.iter().map(|(p, _)| p.index()))),
                    );
                    if end == End::A {
                        let start = open_blob(&mut out);
                        let mut order = r
                            .owned_lists(End::A)
                            .flat_map(|(_, list)| list.iter().map(|(_, link)| link as usize));
                        r.payloads
                            .encode_in(r.link_count(), &mut order, &mut out)
                            .map_err(|e| match e {
                                Unloadable::Encode(e) => {
                                    encode_error(format!("a payload of {}", def.name), e)
                                }
                                Unloadable::Value { index, cause } => SnapshotError::Unencodable {
                                    section: format!("relation {}", def.name),
                                    key: link_pair(store, def.a_table, r, index),
                                    cause,
                                },
                            })?;
                        close_blob(&mut out, start);
                    }
                }
            }
        }
    }
    let payload = &out[HEADER_LEN..];
    let header = Header {
        version: FORMAT_VERSION,
        flags: 0,
        fingerprint: desc.fingerprint(),
        payload_len: payload.len() as u64,
        entities,
        links,
        payload_checksum: checksum(payload),
    };
    out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    Ok(out)
}

/// The file operations of an atomic save, so that tests can inject faults and simulate
/// crashes. [`StdFileSystem`] is the real one. A save calls, in order: `read_link` (for
/// each link on the way to the final target), `list_dir` and `remove_stale` (for each
/// temp file of the target found there), `create_new`, writes, `sync_file`, `rename`,
/// `sync_dir`; and `remove_file` of its temp file after a failure.
pub trait FileSystem {
    /// An open file being written.
    type File: Write;
    /// What the symbolic link at `path` points to (as stored, possibly relative to the
    /// link's folder); `None` if `path` is not a symbolic link or does not exist.
    fn read_link(&mut self, path: &Path) -> io::Result<Option<PathBuf>>;
    /// The names of the entries of the folder `dir`.
    fn list_dir(&mut self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// Removes `path`, a temp file of a save, unless a save still holds it (see
    /// [`create_new`](Self::create_new)); whether it removed it. A file that is already
    /// gone is not an error.
    fn remove_stale(&mut self, path: &Path) -> io::Result<bool>;
    /// Creates a new file for writing (failing if `path` exists) and holds it for this
    /// save until the file is dropped, so that `remove_stale` of a concurrent save leaves
    /// it alone. Fails with [`io::ErrorKind::WouldBlock`] if a concurrent save removed it
    /// as stale before it was held: the save then tries another name.
    fn create_new(&mut self, path: &Path) -> io::Result<Self::File>;
    /// Makes the file's content durable (`fsync`).
    fn sync_file(&mut self, file: &mut Self::File) -> io::Result<()>;
    /// Replaces `to` with `from` atomically.
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the folder's entries durable (`fsync` of the folder).
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&mut self, path: &Path) -> io::Result<()>;
}

/// The operating system's file system. A save holds an exclusive lock
/// ([`File::try_lock`]) on its temp file from its creation until after the rename; a temp
/// file nobody holds locked was left by an interrupted save. On a file system without
/// locks, saves still work, but temp files left by interrupted saves stay.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFileSystem;

fn would_block() -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        "removed by a concurrent save as stale",
    )
}

impl FileSystem for StdFileSystem {
    type File = File;
    fn read_link(&mut self, path: &Path) -> io::Result<Option<PathBuf>> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => fs::read_link(path).map(Some),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn list_dir(&mut self, dir: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }
    fn remove_stale(&mut self, path: &Path) -> io::Result<bool> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {}
            // held by a save in progress, or no locks here: it may be in use
            Err(TryLockError::WouldBlock) => return Ok(false),
            Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                return Ok(false)
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // removed while locked: a save that creates it after this sees it gone
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    fn create_new(&mut self, path: &Path) -> io::Result<File> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            // a concurrent save is removing it as stale
            Err(TryLockError::WouldBlock) => return Err(would_block()),
            Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                return Ok(file)
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // held now; the name is unique to this save, so if it is still there it is ours,
        // and no other save removes it while we hold it
        match fs::symlink_metadata(path) {
            Ok(_) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(would_block()),
            Err(e) => Err(e),
        }
    }
    fn sync_file(&mut self, file: &mut File) -> io::Result<()> {
        file.sync_all()
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}

/// The suffix of every temp file name.
const TEMP_SUFFIX: &str = ".relgraph-tmp";

/// The longest file name most file systems allow, in bytes.
const NAME_MAX: usize = 255;

/// What the temp file names of a target named `name` start with: `.NAME.`, or, when
/// that would make them longer than [`NAME_MAX`], `.PREFIX~HASH.` (the first bytes of the
/// name and the XXH64 of all of it).
fn temp_stem(name: &OsStr) -> OsString {
    let bytes = name.as_encoded_bytes();
    let mut stem = OsString::from(".");
    if 2 + bytes.len() + 16 + TEMP_SUFFIX.len() <= NAME_MAX {
        stem.push(name);
    } else {
        let lossy = name.to_string_lossy();
        let mut end = 200.min(lossy.len());
        while !lossy.is_char_boundary(end) {
            end -= 1;
        }
        stem.push(format!("{}~{:016x}", &lossy[..end], checksum(bytes)));
    }
    stem.push(".");
    stem
}

/// The temp file a save of `path` with the tag `tag` writes before renaming it over
/// `path`: a hidden file in the same folder, `.NAME.TAG.relgraph-tmp` (TAG the tag in 16
/// hexadecimal digits; a name too long for that is shortened and hashed). Each save picks
/// a fresh tag, so concurrent saves of one path never share a temp file. `path` is the
/// final target (a save through a symbolic link writes next to what it points to).
pub fn temp_path(path: &Path, tag: u64) -> PathBuf {
    let mut name = temp_stem(path.file_name().unwrap_or_default());
    name.push(format!("{tag:016x}{TEMP_SUFFIX}"));
    path.with_file_name(name)
}

/// Whether `candidate` (a file name) is the name of a temp file of a save of a target
/// named `name`: one [`temp_path`] gives, or `.NAME.relgraph-tmp`, the temp file of
/// saves by earlier versions.
pub fn is_temp_of(name: &OsStr, candidate: &OsStr) -> bool {
    let c = candidate.as_encoded_bytes();
    let mut legacy = OsString::from(".");
    legacy.push(name);
    legacy.push(TEMP_SUFFIX);
    if c == legacy.as_encoded_bytes() {
        return true;
    }
    let stem = temp_stem(name);
    let stem = stem.as_encoded_bytes();
    c.len() == stem.len() + 16 + TEMP_SUFFIX.len()
        && c.starts_with(stem)
        && c.ends_with(TEMP_SUFFIX.as_bytes())
        && c[stem.len()..stem.len() + 16]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// The temp files of saves of `path` in its folder now (those of saves in progress, and
/// those left by interrupted ones, which the next save removes).
///
/// # Errors
///
/// Listing the folder failed.
pub fn temp_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let name = path.file_name().unwrap_or_default();
    let mut found: Vec<PathBuf> = StdFileSystem
        .list_dir(folder(path))?
        .into_iter()
        .filter(|c| is_temp_of(name, c))
        .map(|c| path.with_file_name(c))
        .collect();
    found.sort();
    Ok(found)
}

/// The folder of `path` (`.` for a bare file name).
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A tag no other save (of this process or another) is using: the process id, a counter
/// and the time, hashed.
fn fresh_tag() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut seed = Vec::with_capacity(32);
    seed.extend_from_slice(&std::process::id().to_le_bytes());
    seed.extend_from_slice(&n.to_le_bytes());
    seed.extend_from_slice(&nanos.to_le_bytes());
    checksum(&seed)
}

/// The most symbolic links a save follows to its final target.
pub(crate) const MAX_LINKS: usize = 40;

/// The final target of `path`: symbolic links followed (a relative one from its folder).
fn resolve<F: FileSystem>(fs: &mut F, path: &Path) -> Result<PathBuf, SnapshotError> {
    let mut at = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match fs.read_link(&at) {
            Ok(None) => return Ok(at),
            Ok(Some(to)) => at = at.parent().unwrap_or(Path::new("")).join(to),
            Err(e) => return Err(SnapshotError::io(IoStep::ResolveLink, at, e)),
        }
    }
    let loop_error = io::Error::other(format!(
        "more than {MAX_LINKS} symbolic links (a loop?), the last one pointing to {}",
        at.display()
    ));
    Err(SnapshotError::io(IoStep::ResolveLink, path, loop_error))
}

/// Bytes written per `write` call.
const CHUNK: usize = 1 << 20;

/// Attempts at a fresh temp name before giving up (each fails only if a concurrent save
/// took the name or removed the file at once).
const CREATE_ATTEMPTS: usize = 64;

/// Writes `bytes` to `path` atomically: symbolic links are followed to the final target;
/// temp files of the target left by interrupted saves (nobody holds them) are removed; a
/// temp file of a fresh name is created in the target's folder, written, synced and
/// renamed over the target while this save holds it; the folder is synced. On error the
/// temp file is removed and the target holds what it held before, or, if only the final
/// folder sync failed, possibly the new content. Concurrent saves of one path each write
/// their own temp file; the last rename wins.
pub(crate) fn write_atomic<F: FileSystem>(
    fs: &mut F,
    path: &Path,
    bytes: &[u8],
) -> Result<(), SnapshotError> {
    let target = resolve(fs, path)?;
    let Some(name) = target.file_name() else {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "does not name a file");
        return Err(SnapshotError::io(IoStep::Create, target, e));
    };
    let dir = folder(&target);
    let entries = fs
        .list_dir(dir)
        .map_err(|e| SnapshotError::io(IoStep::ListFolder, dir, e))?;
    for entry in entries.iter().filter(|c| is_temp_of(name, c)) {
        let stale = target.with_file_name(entry);
        if let Err(e) = fs.remove_stale(&stale) {
            return Err(SnapshotError::io(IoStep::RemoveStaleTemp, stale, e));
        }
    }
    let mut attempt = 0;
    let (temp, mut file) = loop {
        let temp = temp_path(&target, fresh_tag());
        match fs.create_new(&temp) {
            Ok(file) => break (temp, file),
            Err(e)
                if attempt + 1 < CREATE_ATTEMPTS
                    && matches!(
                        e.kind(),
                        io::ErrorKind::AlreadyExists | io::ErrorKind::WouldBlock
                    ) =>
            {
                attempt += 1;
            }
            Err(e) => return Err(SnapshotError::io(IoStep::Create, temp, e)),
        }
    };
    let done = write_all(&mut file, bytes)
        .map_err(|e| (IoStep::Write, e))
        .and_then(|()| fs.sync_file(&mut file).map_err(|e| (IoStep::Sync, e)))
        .and_then(|()| {
            let to = target.clone();
            fs.rename(&temp, &target)
                .map_err(|e| (IoStep::Rename { to }, e))
        });
    // held until after the rename, so that no other save takes it for a stale one
    drop(file);
    if let Err((step, e)) = done {
        // the target is untouched; the temp file goes (never retry a failed fsync)
        let _ = fs.remove_file(&temp);
        return Err(SnapshotError::io(step, temp, e));
    }
    fs.sync_dir(dir)
        .map_err(|e| SnapshotError::io(IoStep::SyncFolder, dir, e))
}

fn write_all(file: &mut impl Write, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = bytes.len().min(CHUNK);
        match file.write(&bytes[..n]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(k) => bytes = &bytes[k..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    file.flush()
}
