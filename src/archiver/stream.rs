//! Snapshots of a stream: standard input, or the standard output of a
//! command (`pg_dump`, `mongodump --archive`…), stored as one regular file.
//!
//! The file sits at the root of the snapshot's tree as `/NAME`, and the
//! snapshot's paths are `["/NAME"]`, so `ls`, `cat`, `diff`, `restore` and
//! retention grouping treat it like any one-file snapshot, and successive
//! dumps under one name on one host form a parent chain. The bytes go
//! through the same chunk-hash-compress loop as files
//! ([`super::file::store_stream`]): memory stays at one batch buffer however
//! long the stream, and content-defined chunks make successive dumps
//! deduplicate.
//!
//! **Invariant:** a command that exits non-zero or is killed commits
//! nothing: no snapshot record, no catalog change. Chunks of a failed stream
//! already in closed packs stay unreferenced until `cairn gc`.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Instant;

use super::file::{ReadFailure, Stored, store_stream};
use super::sink::Sink;
use super::{Report, SnapshotOptions, SnapshotResult, find_parent, new_record, now_ns, seal};
use crate::catalog::CommitBatch;
use crate::chunker::BATCH_BYTES;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Entry, EntryKind, Meta, SnapshotSummary, Tree};
use crate::progress::{Phase, Progress};
use crate::repo::Repository;
use crate::store::BlobKind;

/// Permission bits of a stored stream. Dumps often hold secrets (password
/// hashes, personal data), so a restored dump is readable by its owner only.
pub const STREAM_MODE: u32 = 0o600;

/// Where a stream snapshot's bytes come from.
pub enum StreamSource<'a> {
    /// Any reader; the CLI passes standard input.
    Reader(&'a mut dyn Read),
    /// A program run directly (no shell), with these arguments. Its standard
    /// output is stored; its standard input and standard error are ours. It
    /// must exit with status 0 or nothing is committed.
    Command {
        /// The program (looked up in `PATH` when it has no `/`).
        program: OsString,
        /// Its arguments.
        args: Vec<OsString>,
    },
}

impl StreamSource<'_> {
    /// The name used when none is given: `stdin` for a reader, the
    /// program's file name for a command (`/usr/bin/pg_dump` → `pg_dump`).
    pub fn default_name(&self) -> Vec<u8> {
        match self {
            Self::Reader(_) => b"stdin".to_vec(),
            Self::Command { program, .. } => Path::new(program)
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .filter(|n| validate_stream_name(n).is_ok())
                .unwrap_or_else(|| b"stdin".to_vec()),
        }
    }
}

/// Checks that `name` is one path component: not empty, not `.` or `..`,
/// without `/` or NUL.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] saying what is wrong.
pub fn validate_stream_name(name: &[u8]) -> Result<()> {
    let shown = String::from_utf8_lossy(name);
    let why = if name.is_empty() {
        "is empty"
    } else if name == b"." || name == b".." {
        "is `.` or `..`"
    } else if name.contains(&b'/') {
        "contains `/`"
    } else if name.contains(&0) {
        "contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!(
        "stream name `{shown}` {why}; give one file name such as `db.sql`"
    )))
}

/// Takes a snapshot holding one file, `/name`, with the bytes of `source`.
///
/// `opts.paths` must be empty (the snapshot's path is `/name`); excludes,
/// ignore files and the SQLite switch do not apply. The file gets mode
/// `STREAM_MODE`, the caller's uid and gid, and the snapshot's time as
/// its mtime.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a bad name or non-empty paths; an
/// [`ErrorKind::Io`] error when the source cannot be read, the command
/// cannot be started, exits non-zero or is killed by a signal (nothing is
/// then committed); repository errors as for [`super::snapshot`].
pub fn snapshot_stream(
    repo: &Repository,
    opts: &SnapshotOptions,
    name: &[u8],
    source: StreamSource<'_>,
    report: &dyn Report,
) -> Result<SnapshotResult> {
    let started = Instant::now();
    validate_stream_name(name)?;
    if !opts.paths.is_empty() {
        return Err(Error::invalid(
            "a stream snapshot takes no paths: snapshot the stream and the paths separately",
        ));
    }
    let time_ns = opts.time_ns.unwrap_or_else(now_ns);
    let mut path = b"/".to_vec();
    path.extend_from_slice(name);
    let paths = vec![path];
    let reader = repo.catalog().begin_read()?;
    let parent = find_parent(&reader, &opts.host, &paths)?;
    let had_file = match &parent {
        Some((_, s)) => reader
            .tree(&s.tree)?
            .get(name)
            .is_some_and(|e| matches!(e.kind, EntryKind::File { .. })),
        None => false,
    };
    let config = repo.config();
    let sink = Sink::new(repo, &reader);
    let progress = report.progress();
    progress.phase(&Phase::new("read", "files"));
    let stored = match source {
        StreamSource::Reader(r) => {
            let r = Counted { inner: r, progress };
            store_stream(&sink, config.chunker, r, BATCH_BYTES).map_err(|f| match f {
                ReadFailure::Unreadable(e) => Error::new(
                    ErrorKind::Io,
                    format!(
                        "reading the stream for {}: {e}",
                        String::from_utf8_lossy(name)
                    ),
                ),
                ReadFailure::Fatal(e) => e,
                ReadFailure::Vanished => Error::new(ErrorKind::Io, "the stream vanished"),
            })?
        }
        StreamSource::Command { program, args } => {
            run_command(&sink, config.chunker, &program, &args, progress)?
        }
    };
    progress.items(1);

    let meta = Meta {
        mode: STREAM_MODE,
        uid: rustix::process::geteuid().as_raw(),
        gid: rustix::process::getegid().as_raw(),
        mtime_ns: time_ns,
        ctime_ns: time_ns,
        inode: 0,
    };
    let mut summary = SnapshotSummary::default();
    if had_file {
        summary.files_changed = 1;
    } else {
        summary.files_new = 1;
    }
    summary.bytes_read = stored.size;
    summary.bytes_total = stored.size;
    summary.dirs = 1;
    let root = Tree {
        entries: vec![Entry {
            name: name.to_vec(),
            kind: EntryKind::File {
                size: stored.size,
                chunks: stored.chunks,
            },
            meta,
        }],
    };
    let mut batch = CommitBatch::default();
    let (tree, bytes) = root.encode_with_id()?;
    if sink.put_raw(BlobKind::Tree, &bytes)? {
        batch.trees.push((tree, bytes));
    }
    let snap = new_record(opts, time_ns, tree, paths, parent, summary);
    let (id, snapshot) = seal(sink, &mut batch, snap, started)?;
    drop(reader);
    repo.catalog().commit(&batch)?;
    Ok(SnapshotResult {
        id,
        snapshot,
        warnings: Vec::new(),
    })
}

/// Runs the command and stores its standard output; fails unless it exits 0.
fn run_command(
    sink: &Sink<'_>,
    params: crate::chunker::ChunkerParams,
    program: &std::ffi::OsStr,
    args: &[OsString],
    progress: &dyn Progress,
) -> Result<Stored> {
    let shown = Path::new(program).display().to_string();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot run command `{shown}`: {e}; nothing was committed"),
            )
        })?;
    let stdout = Counted {
        inner: child.stdout.take().expect("stdout was piped"),
        progress,
    };
    let result = store_stream(sink, params, stdout, BATCH_BYTES);
    let stored = match result {
        Ok(s) => s,
        Err(f) => {
            // why: we stop reading, so a command still writing would block
            // on a full pipe forever; kill it before waiting for it.
            let status = stop(&mut child);
            let detail = status.map(describe).unwrap_or_default();
            return Err(match f {
                ReadFailure::Fatal(e) => e,
                ReadFailure::Unreadable(e) => Error::new(
                    ErrorKind::Io,
                    format!(
                        "reading the output of command `{shown}`: {e}{detail}; \
                         nothing was committed"
                    ),
                ),
                ReadFailure::Vanished => Error::new(
                    ErrorKind::Io,
                    format!("the output of command `{shown}` vanished; nothing was committed"),
                ),
            });
        }
    };
    let status = child.wait().map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("waiting for command `{shown}`: {e}; nothing was committed"),
        )
    })?;
    if !status.success() {
        // why: a dump that failed half-way is a truncated dump; committing
        // it would make the latest snapshot look good when it is not.
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "command `{shown}` {}; nothing was committed",
                describe(status)
                    .trim_start_matches(" (")
                    .trim_end_matches(')')
            ),
        ));
    }
    Ok(stored)
}

/// Kills and reaps `child`, returning its status if it could be reaped.
fn stop(child: &mut Child) -> Option<ExitStatus> {
    let _ = child.kill();
    child.wait().ok()
}

/// " (exited with status N)" or " (was killed by signal N)".
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!(" (exited with status {c})"),
        (None, Some(s)) => format!(" (was killed by signal {s})"),
        _ => format!(" ({status})"),
    }
}

/// A reader that reports the bytes it passes on as progress.
struct Counted<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes(n as u64);
        Ok(n)
    }
}
