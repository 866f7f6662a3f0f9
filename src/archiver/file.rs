//! Reading content: stream any reader through the chunker and hand each
//! batch of chunks to the sink, which hashes, dedups, groups, compresses and
//! stores them ([`store_stream`]). Files ([`read_file`]) and standard-input
//! streams (`archiver::stream`) both go through it.
//!
//! A file is opened without following symlinks and without blocking (a FIFO
//! swapped in after the scan must not hang the snapshot), and re-checked
//! after reading: if it changed meanwhile, the stored copy is kept with the
//! metadata seen before reading, so the next snapshot reads it again.
//!
//! A file that starts with the SQLite header is, unless turned off, read
//! consistently (`sqlite.rs`): a rollback-journal database directly under a
//! read transaction, a WAL database through SQLite's online backup API, whose
//! copy is stored instead of the live bytes.

use std::io::Read;
use std::path::Path;

use super::sink::Sink;
use super::sqlite;
use crate::chunker::{Chunker, ChunkerParams};
use crate::error::Error;
use crate::fsmeta::{meta_of, open_source_file};
use crate::id::ChunkId;
use crate::model::Meta;
use crate::store::BlobKind;

/// What reading one file produced.
pub(crate) struct FileRead {
    pub size: u64,
    pub chunks: Vec<ChunkId>,
    pub meta: Meta,
    /// The file changed while it was read.
    pub changed: bool,
    /// Stored from a consistent SQLite backup, not from the live bytes.
    pub sqlite: bool,
    /// Why a SQLite database was stored as raw bytes instead.
    pub sqlite_fallback: Option<String>,
}

/// How reading failed.
pub(crate) enum ReadFailure {
    /// It no longer exists (or is no longer a regular file).
    Vanished,
    /// The OS refused (permissions, I/O error): reported, exit code 3.
    Unreadable(std::io::Error),
    /// The repository side failed (disk full…): the snapshot must abort.
    Fatal(Error),
}

/// What [`store_stream`] stored.
pub(crate) struct Stored {
    pub size: u64,
    pub chunks: Vec<ChunkId>,
}

/// Chunks `reader` to its end, storing the chunks the repository lacks.
///
/// `buffer_hint` sizes the chunker's first buffer (a file's length + 1);
/// it grows to at most [`crate::chunker::BATCH_BYTES`], so memory stays
/// bounded however long the input is.
///
/// # Errors
/// `Unreadable` when the reader fails, `Fatal` when the repository does.
pub(crate) fn store_stream(
    sink: &Sink<'_>,
    params: ChunkerParams,
    reader: impl Read,
    buffer_hint: usize,
) -> std::result::Result<Stored, ReadFailure> {
    let mut chunker = Chunker::with_buffer_size(reader, params, buffer_hint);
    let mut chunks = Vec::new();
    let mut size = 0u64;
    loop {
        let batch = chunker.next_batch().map_err(ReadFailure::Unreadable)?;
        if batch.is_empty() {
            break;
        }
        size += batch.data.len() as u64;
        let ids = sink
            .store_batch(BlobKind::Chunk, batch.data, &batch.ranges)
            .map_err(ReadFailure::Fatal)?;
        chunks.extend(ids.into_iter().map(ChunkId));
    }
    Ok(Stored { size, chunks })
}

/// How to read a file.
#[derive(Clone, Copy)]
pub(crate) struct ReadOptions<'p> {
    pub chunker: ChunkerParams,
    /// `REPO/tmp` when SQLite databases are to be captured by backup.
    pub sqlite_tmp: Option<&'p Path>,
}

pub(crate) fn read_file(
    sink: &Sink<'_>,
    opts: ReadOptions<'_>,
    path: &Path,
) -> std::result::Result<FileRead, ReadFailure> {
    let file = match open_source_file(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadFailure::Vanished),
        // ELOOP: replaced by a symlink since the scan.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(ReadFailure::Vanished);
        }
        Err(e) => return Err(ReadFailure::Unreadable(e)),
    };
    let before = file.metadata().map_err(ReadFailure::Unreadable)?;
    if !before.is_file() {
        return Err(ReadFailure::Vanished);
    }
    let mut sqlite_fallback = None;
    let chunker = sqlite::page_size(&file).map_or(opts.chunker, sqlite::page_chunker);
    let is_db = opts.sqlite_tmp.is_some() && sqlite::has_header(&file);
    // why: SQLite, even read-only, creates `-wal` and `-shm` files beside a
    // WAL-mode database that has none, and they would stay behind. No `-wal`
    // means no connection is open and every commit is in the main file,
    // which changes only at a checkpoint; so it is read as raw bytes, and
    // the re-stat below catches a checkpoint during the read.
    let quiescent_wal = is_db && sqlite::is_wal_mode(&file) && !sqlite::wal_exists(path);
    if let Some(tmp) = opts.sqlite_tmp
        && is_db
        && !quiescent_wal
    {
        if !sqlite::is_wal_mode(&file)
            && let Ok(lock) = sqlite::read_lock(path, &file)
        {
            let stored = store_stream(sink, chunker, &file, buffer_hint(before.len()))?;
            drop(lock);
            return Ok(captured(stored, &before));
        }
        match sqlite::backup_to_temp(path, tmp) {
            Ok(copy) => {
                let stored = store_stream(sink, chunker, copy.file(), buffer_hint(copy.len()))?;
                return Ok(captured(stored, &before));
            }
            Err(e) => sqlite_fallback = Some(e),
        }
    }
    let stored = store_stream(sink, chunker, &file, buffer_hint(before.len()))?;
    let after = file.metadata().map_err(ReadFailure::Unreadable)?;
    let (m0, m1) = (meta_of(&before), meta_of(&after));
    let changed = before.len() != after.len()
        || m0.mtime_ns != m1.mtime_ns
        || m0.ctime_ns != m1.ctime_ns
        || stored.size != after.len();
    Ok(FileRead {
        size: stored.size,
        chunks: stored.chunks,
        meta: m0,
        changed,
        // A quiescent WAL database read whole and unchanged is as good as a
        // backup copy: its siblings are left out too.
        sqlite: quiescent_wal && !changed,
        sqlite_fallback,
    })
}

/// The chunker's first buffer for an input of `len` bytes: +1 so an input
/// that has not grown is seen to end without a second read.
fn buffer_hint(len: u64) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX).saturating_add(1)
}

/// What a database read consistently (under a read lock or through a backup
/// copy) is recorded as.
///
/// why: the entry keeps the *source's* metadata from before the read (mode,
/// owner, mtime, ctime, inode) but the *stored* size. If the database
/// changes after `before`, its mtime or ctime moves and the next snapshot
/// reads it again; one with a `-wal` beside it is never reused at all (see
/// walk.rs), since commits to the -wal leave the main file's metadata
/// untouched. A stored size that differs from the live one only causes a
/// re-read next time: the safe direction.
fn captured(stored: Stored, before: &std::fs::Metadata) -> FileRead {
    FileRead {
        size: stored.size,
        chunks: stored.chunks,
        meta: meta_of(before),
        changed: false,
        sqlite: true,
        sqlite_fallback: None,
    }
}
