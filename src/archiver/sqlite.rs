//! Live SQLite databases: a consistent copy through SQLite's online backup
//! API instead of the live bytes.
//!
//! Reading a database file while another process commits to it can store a
//! torn copy (half old pages, half new) or, in WAL mode, a main file that
//! lacks the commits still in its `-wal`. The backup API copies every page in
//! one read transaction, so the copy is the database as of one commit.
//!
//! The source is opened with `SQLITE_OPEN_READONLY` (no URI parsing, so a
//! `?` in a file name stays a file name): SQLite never writes to it. Reading
//! a WAL-mode database takes part in its locking protocol through the
//! `-shm` index, as every reader does; that never changes the data.
//! The copy is written to `REPO/tmp/` and removed when [`TempCopy`] drops,
//! on success and on every error path.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// The first 16 bytes of every SQLite 3 database file.
pub(crate) const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How long to wait for a writer's lock before falling back to raw bytes.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Suffixes of the files SQLite keeps beside a database. They are not stored
/// beside a database captured by backup: the copy already holds every
/// committed transaction, and a stale `-wal` restored beside it would be
/// replayed into it (or, with a mismatched salt, confuse a later reader).
pub(crate) const SIBLING_SUFFIXES: [&[u8]; 3] = [b"-wal", b"-shm", b"-journal"];

/// The database a sibling file belongs to, if `name` ends in one of
/// [`SIBLING_SUFFIXES`] (`app.db-wal` → `app.db`).
pub(crate) fn sibling_of(name: &[u8]) -> Option<&[u8]> {
    SIBLING_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(*s))
        .filter(|db| !db.is_empty())
}

/// True when `file` starts with the SQLite header (read with `pread`, so
/// the file position is untouched).
pub(crate) fn has_header(file: &File) -> bool {
    let mut buf = [0u8; 16];
    file.read_exact_at(&mut buf, 0).is_ok() && &buf == HEADER
}

/// The database's page size from its header (bytes 16-17, big-endian; 1
/// means 65536), or `None` when the file is not a SQLite database.
pub(crate) fn page_size(file: &File) -> Option<u32> {
    if !has_header(file) {
        return None;
    }
    let mut buf = [0u8; 2];
    file.read_exact_at(&mut buf, 16).ok()?;
    let size = match u16::from_be_bytes(buf) {
        1 => 65536,
        n => u32::from(n),
    };
    (size.is_power_of_two() && (512..=65536).contains(&size)).then_some(size)
}

/// Chunk size for a database's pages: a whole number of pages, at least
/// this many bytes.
///
/// why: a database changes in place, page by page; cuts on page boundaries
/// make an unchanged page an unchanged chunk, whereas content-defined cuts
/// of 16 KiB average span ~4 pages and are new when any of them changed. One
/// 4 KiB page per chunk stores the least per version (measured in
/// docs/PERFORMANCE.md); smaller pages are grouped up to 4 KiB to keep the
/// per-chunk index cost in proportion.
pub(crate) const MIN_PAGE_CHUNK: u32 = 4096;

/// Chunker parameters for a database with pages of `page_size` bytes.
pub(crate) fn page_chunker(page_size: u32) -> crate::chunker::ChunkerParams {
    crate::chunker::ChunkerParams::fixed(page_size.max(MIN_PAGE_CHUNK))
}

/// True when the header marks the database as WAL mode (file format
/// write and read versions, bytes 18 and 19, both 2).
pub(crate) fn is_wal_mode(file: &File) -> bool {
    let mut buf = [0u8; 2];
    file.read_exact_at(&mut buf, 18).is_ok() && buf == [2, 2]
}

/// True when `db-wal` exists beside `db`.
pub(crate) fn wal_exists(db: &Path) -> bool {
    let mut wal = db.as_os_str().to_os_string();
    wal.push("-wal");
    std::fs::symlink_metadata(wal).is_ok()
}

/// A consistent copy of a database in `REPO/tmp/`, deleted on drop.
pub(crate) struct TempCopy {
    path: PathBuf,
    file: Option<File>,
    len: u64,
}

impl TempCopy {
    /// The copy, opened for reading.
    pub(crate) fn file(&self) -> &File {
        self.file.as_ref().expect("a finished copy is open")
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        drop(self.file.take());
        let _ = std::fs::remove_file(&self.path);
        // The destination connection might leave a journal if it failed
        // half-way; they are ours, in REPO/tmp/, never the user's.
        for s in SIBLING_SUFFIXES {
            let mut p = self.path.clone().into_os_string();
            p.push(std::ffi::OsStr::from_bytes(s));
            let _ = std::fs::remove_file(p);
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The database at `src`, opened read-only, waiting up to [`BUSY_TIMEOUT`]
/// for a writer's lock.
fn open_read_only(src: &Path) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("opening it read-only: {e}"))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
    Ok(conn)
}

/// An open read transaction on a rollback-journal database; dropping it
/// ends the transaction.
pub(crate) struct ReadLock {
    _conn: Connection,
}

/// Takes a read transaction on the rollback-journal database `src` (whose
/// open file is `file`), so its main file can be read directly.
///
/// why: in rollback-journal mode a writer changes the main file only under
/// an exclusive lock, which cannot be had while a reader holds its shared
/// lock: the file's bytes are then the database as of one commit, and
/// reading them directly saves the backup's copy through `REPO/tmp/` (a
/// third of a first snapshot's time). WAL-mode databases keep commits in
/// the `-wal`, outside the main file, so they go through the backup API.
/// `file` must stay open until the lock is dropped: closing any descriptor
/// of the file releases the process's POSIX locks on it, SQLite's included.
pub(crate) fn read_lock(src: &Path, file: &File) -> Result<ReadLock, String> {
    let conn = open_read_only(src)?;
    // A read inside BEGIN takes the shared lock and keeps it until the end
    // of the transaction (a hot journal left by a crashed writer makes this
    // fail on a read-only connection: the caller then tries the backup).
    conn.execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;")
        .map_err(|e| format!("taking a read lock: {e}"))?;
    if is_wal_mode(file) {
        return Err("it switched to WAL mode".to_string());
    }
    Ok(ReadLock { _conn: conn })
}

/// Copies the database at `src` into a new file in `tmp_dir` in one read
/// transaction. The error is a message for the fallback warning.
pub(crate) fn backup_to_temp(src: &Path, tmp_dir: &Path) -> Result<TempCopy, String> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut copy = TempCopy {
        path: tmp_dir.join(format!("sqlite-{}-{n}-{nanos}.tmp", std::process::id())),
        file: None,
        len: 0,
    };
    let source = open_read_only(src)?;
    let mut dest = Connection::open_with_flags(
        &copy.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("creating {}: {e}", copy.path.display()))?;
    // why: the copy is read back at once and deleted; a rollback journal and
    // fsyncs for it would only cost time.
    dest.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
        .map_err(|e| e.to_string())?;
    {
        let backup = Backup::new(&source, &mut dest).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            // why: -1 copies every page in one step, i.e. under one read
            // transaction: the copy is the database as of a single commit.
            // Smaller steps would let a writer commit between them, and the
            // backup would then restart from the first page.
            match backup.step(-1).map_err(|e| e.to_string())? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(format!(
                        "still locked by a writer after {} s",
                        BUSY_TIMEOUT.as_secs()
                    ));
                }
                // `More` cannot follow a step of -1; retry rather than store
                // a partial copy if a future SQLite ever returns it.
                _ => {}
            }
        }
    }
    dest.close().map_err(|(_, e)| e.to_string())?;
    drop(source);
    let file = File::open(&copy.path).map_err(|e| format!("reading the copy: {e}"))?;
    copy.len = file
        .metadata()
        .map_err(|e| format!("reading the copy: {e}"))?
        .len();
    copy.file = Some(file);
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_names() {
        assert_eq!(sibling_of(b"app.db-wal"), Some(&b"app.db"[..]));
        assert_eq!(sibling_of(b"app.db-shm"), Some(&b"app.db"[..]));
        assert_eq!(sibling_of(b"x-journal"), Some(&b"x"[..]));
        assert_eq!(sibling_of(b"-wal"), None);
        assert_eq!(sibling_of(b"app.db"), None);
    }
}
