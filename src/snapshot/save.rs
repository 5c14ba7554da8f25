//! Encoding a store, and writing the bytes to a file atomically.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::codec::CodecError;
use super::error::SnapshotError;
use super::format::{checksum, put_varint, Header, FORMAT_VERSION, HEADER_LEN};
use super::image::{put_free_list, put_slot, Lists, SchemaDesc};
use crate::relation::RelationStore;
use crate::schema::End;
use crate::Store;

fn encode_error(section: String) -> impl FnOnce(CodecError) -> SnapshotError {
    move |e| SnapshotError::Encode {
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
        arena
            .encode_rows(&mut out)
            .map_err(encode_error(format!("a row of table {}", def.name)))?;
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
                        .map(|(owner, l)| (owner, l.len(), l.iter().map(|c| c.index()))),
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
                            .map_err(encode_error(format!("a payload of {}", def.name)))?;
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
/// crashes. [`StdFileSystem`] is the real one.
pub trait FileSystem {
    /// An open file being written.
    type File: Write;
    /// Creates a new file for writing; fails if `path` exists.
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

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFileSystem;

impl FileSystem for StdFileSystem {
    type File = File;
    fn create_new(&mut self, path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).create_new(true).open(path)
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

/// The temporary file a save of `path` writes before renaming it over `path`: a hidden
/// file in the same folder, `.NAME.relgraph-tmp`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".relgraph-tmp");
    path.with_file_name(name)
}

/// Bytes written per `write` call.
const CHUNK: usize = 1 << 20;

/// Writes `bytes` to `path` atomically: a temp file in the same folder (a stale one from an
/// interrupted save is removed first), written, synced, renamed over `path`, folder synced.
/// On error the temp file is removed and `path` holds what it held before, or, if only the
/// final folder sync failed, possibly the new content.
pub(crate) fn write_atomic<F: FileSystem>(
    fs: &mut F,
    path: &Path,
    bytes: &[u8],
) -> Result<(), SnapshotError> {
    if path.file_name().is_none() {
        return Err(SnapshotError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )));
    }
    let temp = temp_path(path);
    match fs.remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut file = fs.create_new(&temp)?;
    let written = write_all(&mut file, bytes).and_then(|()| fs.sync_file(&mut file));
    drop(file);
    if let Err(e) = written.and_then(|()| fs.rename(&temp, path)) {
        // the target is untouched; the temp file goes (never retry a failed fsync)
        let _ = fs.remove_file(&temp);
        return Err(e.into());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs.sync_dir(dir)?;
    Ok(())
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
