//! Taking a snapshot.
//!
//! ```text
//! sources ─► walk::scan_root (parallel lstat, excludes, parent comparison)
//!         ─► file::read_file for changed files (parallel: chunk, hash, compress)
//!         ─► sink (dedup, grouping, compression; full packs staged, synced in batches)
//!         ─► build_tree bottom-up (Merkle: unchanged dirs keep their id)
//!         ─► one catalog commit: blobs, packs, trees, snapshot record
//! ```
//!
//! Files that start with the SQLite header are captured with SQLite's
//! backup API (`sqlite.rs`); `stream.rs` snapshots standard input or a
//! command's output as one file `/NAME`, through the same chunking loop
//! (`file::store_stream`).
//!
//! **Invariants:** the catalog commit happens after every pack it references
//! is durable; nothing is committed if a repository write fails. Source files
//! are only ever opened read-only. Unreadable files are left out and counted
//! in `summary.errors`; vanished files are left out with a warning.

mod file;
mod sink;
mod sqlite;
mod stream;
mod walk;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::catalog::{CatalogReader, CommitBatch, PackRecord};
use crate::error::{Error, Result};
use crate::id::{SnapshotId, TreeId};
use crate::model::{Entry, EntryKind, Snapshot, SnapshotSummary, Tree};
use crate::progress::{NoProgress, Phase, Progress};
use crate::repo::{Repository, path_components};
use crate::store::{BlobKind, BlobLocation};
use file::{ReadFailure, ReadOptions, read_file};
use sink::Sink;
pub use stream::{StreamSource, snapshot_stream, validate_stream_name};
use walk::{FileContent, Filters, ScanNode};

/// What to snapshot and how to label it.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Files or directories to snapshot (made absolute; symlinks not followed).
    pub paths: Vec<PathBuf>,
    /// Tags to attach.
    pub tags: Vec<String>,
    /// A message to attach.
    pub message: String,
    /// Recorded time in ns since the epoch; now when `None`.
    pub time_ns: Option<i64>,
    /// gitignore-style patterns matched against absolute paths.
    pub excludes: Vec<String>,
    /// Names of per-directory ignore files to honour (e.g. `.gitignore`).
    pub ignore_files: Vec<String>,
    /// Host name recorded (and used to pick the parent).
    pub host: String,
    /// User name recorded.
    pub username: String,
    /// Read every file even when the parent says it is unchanged.
    pub force_read: bool,
    /// Capture files that start with the SQLite header through SQLite's
    /// backup API (a consistent copy) and leave out their `-wal`, `-shm`
    /// and `-journal` files. On by default; off stores raw bytes.
    pub sqlite_backup: bool,
}

impl SnapshotOptions {
    /// Options for `paths` with this machine's host name and nothing else set.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        Self {
            paths,
            tags: Vec::new(),
            message: String::new(),
            time_ns: None,
            excludes: Vec::new(),
            ignore_files: Vec::new(),
            host: crate::fsmeta::hostname(),
            username: String::new(),
            force_read: false,
            sqlite_backup: true,
        }
    }
}

/// Why a path produced a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// Could not be read: left out, counted as an error (exit code 3).
    Unreadable,
    /// Disappeared between the walk and the read: left out.
    Vanished,
    /// Changed while being read: stored as read, re-read next time.
    Changed,
    /// Deliberately not included (the repository itself, a bad ignore file).
    Skipped,
    /// A SQLite database whose backup failed: its raw bytes were stored.
    SqliteFallback,
}

/// A non-fatal problem with one path.
#[derive(Debug, Clone)]
pub struct Warning {
    /// The path at fault.
    pub path: PathBuf,
    /// What happened.
    pub kind: WarningKind,
    /// Human-readable detail.
    pub message: String,
}

impl Warning {
    fn new(path: &Path, kind: WarningKind, message: &str) -> Self {
        Self {
            path: path.to_path_buf(),
            kind,
            message: message.to_string(),
        }
    }
}

/// Receives warnings as they happen (the CLI prints them).
pub trait Report: Sync {
    /// One warning.
    fn warning(&self, w: &Warning);

    /// Where progress goes: phase `scan` (files seen, with their sizes;
    /// no totals), then `read` (files to read, with totals).
    fn progress(&self) -> &dyn Progress {
        &NoProgress
    }
}

/// A [`Report`] that ignores everything.
pub struct NoReport;

impl Report for NoReport {
    fn warning(&self, _: &Warning) {}
}

/// The outcome of a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotResult {
    /// The new snapshot's id.
    pub id: SnapshotId,
    /// The record as committed.
    pub snapshot: Snapshot,
    /// Every warning, in the order seen.
    pub warnings: Vec<Warning>,
}

pub(crate) struct Ctx<'a> {
    reader: &'a CatalogReader,
    report: &'a dyn Report,
    warnings: Mutex<Vec<Warning>>,
    repo_dev_ino: Option<(u64, u64)>,
    force_read: bool,
    sqlite_backup: bool,
    /// Bytes of the files the scan found to read.
    pending_bytes: AtomicU64,
}

impl Ctx<'_> {
    fn warn(&self, w: Warning) {
        self.report.warning(&w);
        self.warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(w);
    }

    fn unreadable(&self, path: &Path, e: &std::io::Error) {
        self.warn(Warning::new(path, WarningKind::Unreadable, &e.to_string()));
    }

    /// The scan met a regular file of `size` bytes (to be read if `pending`).
    fn scanned_file(&self, size: u64, pending: bool) {
        let progress = self.report.progress();
        progress.items(1);
        progress.bytes(size);
        if pending {
            self.pending_bytes.fetch_add(size, Ordering::Relaxed);
        }
    }

    fn is_repository(&self, md: &std::fs::Metadata) -> bool {
        self.repo_dev_ino == Some((md.dev(), md.ino()))
    }

    /// The parent's subtree for a directory entry, if it has one that loads.
    fn subtree(&self, parent: Option<&Entry>) -> Option<Tree> {
        match parent.map(|e| &e.kind) {
            Some(EntryKind::Dir { tree }) => self.reader.tree(tree).ok(),
            _ => None,
        }
    }
}

/// Makes a source path absolute without following its last component.
fn absolute_source(path: &Path) -> Result<PathBuf> {
    let meaningful_name = path
        .file_name()
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..");
    let abs = match (meaningful_name, path.parent()) {
        (Some(name), Some(parent)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            std::fs::canonicalize(parent)
                .map_err(|e| missing_source(path, e))?
                .join(name)
        }
        _ => std::fs::canonicalize(path).map_err(|e| missing_source(path, e))?,
    };
    std::fs::symlink_metadata(&abs).map_err(|e| missing_source(path, e))?;
    Ok(abs)
}

fn missing_source(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::not_found(format!("source path {} does not exist", path.display()))
    } else {
        Error::io("resolving source path", path, e)
    }
}

/// Absolute, sorted source paths with nested duplicates removed.
fn normalize_sources(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(Error::invalid("no path to snapshot was given"));
    }
    let mut abs = paths
        .iter()
        .map(|p| absolute_source(p))
        .collect::<Result<Vec<_>>>()?;
    abs.sort();
    abs.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in abs {
        if !out.iter().any(|kept| p.starts_with(kept)) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The latest snapshot of the same host and paths: its files are the cache.
fn find_parent(
    reader: &CatalogReader,
    host: &str,
    paths: &[Vec<u8>],
) -> Result<Option<(SnapshotId, Snapshot)>> {
    Ok(reader
        .snapshots()?
        .into_iter()
        .rev()
        .find(|(_, s)| s.host == host && s.paths == paths))
}

/// Takes a snapshot of `opts.paths` into `repo`.
///
/// # Errors
/// Fatal errors only: a source path that does not exist, a bad option, or a
/// repository write failure. Per-file problems are warnings.
pub fn snapshot(
    repo: &Repository,
    opts: &SnapshotOptions,
    report: &dyn Report,
) -> Result<SnapshotResult> {
    let started = Instant::now();
    // Like restic, a snapshot is dated when it starts.
    let time_ns = opts.time_ns.unwrap_or_else(now_ns);
    let sources = normalize_sources(&opts.paths)?;
    let filters = Filters::new(&opts.excludes, &opts.ignore_files)?;
    let source_bytes: Vec<Vec<u8>> = sources
        .iter()
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .collect();
    let components = sources
        .iter()
        .map(|p| path_components(p))
        .collect::<Result<Vec<_>>>()?;
    let reader = repo.catalog().begin_read()?;
    let parent = find_parent(&reader, &opts.host, &source_bytes)?;
    let parent_root = match &parent {
        Some((_, s)) => Some(reader.tree(&s.tree)?),
        None => None,
    };
    let repo_dev_ino = std::fs::metadata(repo.root())
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let ctx = Ctx {
        reader: &reader,
        report,
        warnings: Mutex::new(Vec::new()),
        repo_dev_ino,
        force_read: opts.force_read,
        sqlite_backup: opts.sqlite_backup,
        pending_bytes: AtomicU64::new(0),
    };

    let progress = report.progress();
    progress.phase(&Phase::new("scan", "files"));
    let mut root = walk::scan_root(&ctx, &components, parent_root.as_ref(), &filters)?;

    let config = repo.config();
    let sink = Sink::new(repo, &reader);
    let tmp_dir = repo.root().join("tmp");
    let read_opts = ReadOptions {
        chunker: config.chunker,
        sqlite_tmp: opts.sqlite_backup.then_some(tmp_dir.as_path()),
    };
    let counts = Mutex::new((0u64, 0u64, 0u64)); // new, changed, bytes read
    // why two passes: a database's `-wal`/`-shm`/`-journal` are read only
    // once we know the database was *not* captured by backup (not a real
    // database, or the backup failed); beside a captured one they are left
    // out unread.
    let mut pending = Vec::new();
    let deferred = walk::pending_files(&mut root, &mut pending, opts.sqlite_backup);
    let pending_bytes = ctx.pending_bytes.load(Ordering::Relaxed);
    progress.phase(&Phase::new("read", "files").totals(pending.len() as u64, pending_bytes));
    read_pending(&ctx, &sink, read_opts, pending, &counts)?;
    if opts.sqlite_backup {
        walk::drop_captured_siblings(&mut root);
        if deferred > 0 {
            let mut pending = Vec::new();
            walk::pending_files(&mut root, &mut pending, false);
            read_pending(&ctx, &sink, read_opts, pending, &counts)?;
        }
    }
    let mut summary = SnapshotSummary::default();
    let (files_new, files_changed, bytes_read) = counts.into_inner().unwrap_or_default();
    summary.files_new = files_new;
    summary.files_changed = files_changed;
    summary.bytes_read = bytes_read;

    let mut batch = CommitBatch::default();
    let root_tree = build_tree(root, &sink, &mut batch, &mut summary)?;

    let warnings = ctx
        .warnings
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    summary.errors = warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Unreadable)
        .count() as u64;
    let snap = new_record(opts, time_ns, root_tree, source_bytes, parent, summary);
    let (id, snapshot) = seal(sink, &mut batch, snap, started)?;
    drop(reader);
    repo.catalog().commit(&batch)?;
    Ok(SnapshotResult {
        id,
        snapshot,
        warnings,
    })
}

/// Reads the files in `pending` in parallel, replacing each with its outcome.
fn read_pending(
    ctx: &Ctx<'_>,
    sink: &Sink<'_>,
    opts: ReadOptions<'_>,
    mut pending: Vec<&mut FileContent>,
    counts: &Mutex<(u64, u64, u64)>,
) -> Result<()> {
    let progress = ctx.report.progress();
    pending
        .par_iter_mut()
        .try_for_each(|content| -> Result<()> {
            let FileContent::Pending { path, new, .. } = &**content else {
                return Ok(());
            };
            let (path, new) = (path.clone(), *new);
            **content = match read_file(sink, opts, &path) {
                Ok(r) => {
                    if r.changed {
                        ctx.warn(Warning::new(
                        &path,
                        WarningKind::Changed,
                        "changed while being read; stored as read, will be read again next time",
                    ));
                    }
                    if let Some(why) = &r.sqlite_fallback {
                        ctx.warn(Warning::new(
                            &path,
                            WarningKind::SqliteFallback,
                            &format!(
                                "SQLite backup failed ({why}); stored the raw bytes, \
                                 which may be inconsistent if it was being written"
                            ),
                        ));
                    }
                    let mut c = counts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if new {
                        c.0 += 1
                    } else {
                        c.1 += 1
                    }
                    c.2 += r.size;
                    FileContent::Read {
                        size: r.size,
                        chunks: r.chunks,
                        meta: r.meta,
                        sqlite: r.sqlite,
                    }
                }
                Err(ReadFailure::Vanished) => {
                    ctx.warn(Warning::new(
                        &path,
                        WarningKind::Vanished,
                        "vanished before it could be read",
                    ));
                    FileContent::Dropped
                }
                Err(ReadFailure::Unreadable(e)) => {
                    ctx.unreadable(&path, &e);
                    FileContent::Dropped
                }
                Err(ReadFailure::Fatal(e)) => return Err(e),
            };
            progress.items(1);
            if let FileContent::Read { size, .. } = &**content {
                progress.bytes(*size);
            }
            Ok(())
        })
}

/// The snapshot record, before its summary's write counters are filled in.
fn new_record(
    opts: &SnapshotOptions,
    time_ns: i64,
    tree: TreeId,
    paths: Vec<Vec<u8>>,
    parent: Option<(SnapshotId, Snapshot)>,
    summary: SnapshotSummary,
) -> Snapshot {
    let mut tags = opts.tags.clone();
    tags.sort();
    tags.dedup();
    Snapshot {
        time_ns,
        tree,
        paths,
        host: opts.host.clone(),
        username: opts.username.clone(),
        tags,
        message: opts.message.clone(),
        parent: parent.map(|(id, _)| id),
        summary,
        program_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Stores the snapshot record and closes the last pack; the caller then
/// commits `batch` (after dropping its catalog reader).
fn seal(
    sink: Sink<'_>,
    batch: &mut CommitBatch,
    mut snap: Snapshot,
    started: Instant,
) -> Result<(SnapshotId, Snapshot)> {
    // Blobs still waiting in the shared group are counted only once written.
    sink.flush()?;
    snap.summary.bytes_added = sink.bytes_written();
    snap.summary.blobs_added = sink.blobs_written();
    snap.summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    // The same bytes go to a pack (for repair) and to the catalog.
    let bytes = snap.encode()?;
    let id = SnapshotId::of(&bytes);
    sink.put_raw(BlobKind::Snapshot, &bytes)?;
    let packs = sink.finish()?;
    for p in &packs {
        batch.packs.push((
            p.id,
            PackRecord {
                size: p.size,
                blobs: u32::try_from(p.entries.len()).unwrap_or(u32::MAX),
            },
        ));
        for e in &p.entries {
            batch.blobs.push((e.id, BlobLocation::new(p.id, e)));
        }
    }
    batch.snapshots.push((id, bytes));
    Ok((id, snap))
}

fn now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Turns a scanned directory into stored tree nodes, bottom-up; returns its id.
fn build_tree(
    node: ScanNode,
    sink: &Sink<'_>,
    batch: &mut CommitBatch,
    summary: &mut SnapshotSummary,
) -> Result<TreeId> {
    let ScanNode::Dir { children, .. } = node else {
        unreachable!("build_tree is called on directories")
    };
    let mut entries = Vec::with_capacity(children.len());
    for child in children {
        let entry = match child {
            ScanNode::Dir { ref name, meta, .. } => {
                let name = name.clone();
                let tree = build_tree(child, sink, batch, summary)?;
                Entry {
                    name,
                    kind: EntryKind::Dir { tree },
                    meta,
                }
            }
            ScanNode::File {
                name,
                meta,
                content,
            } => {
                let (size, chunks, meta) = match content {
                    FileContent::Reused { size, chunks } => {
                        summary.files_unchanged += 1;
                        (size, chunks, meta)
                    }
                    FileContent::Read {
                        size, chunks, meta, ..
                    } => (size, chunks, meta),
                    FileContent::Dropped => continue,
                    FileContent::Pending { .. } => unreachable!("every pending file was read"),
                };
                summary.bytes_total += size;
                Entry {
                    name,
                    kind: EntryKind::File { size, chunks },
                    meta,
                }
            }
            ScanNode::Other { name, meta, kind } => {
                summary.others += 1;
                Entry { name, kind, meta }
            }
        };
        entries.push(entry);
    }
    summary.dirs += 1;
    let (id, bytes) = Tree { entries }.encode_with_id()?;
    if sink.put_raw(BlobKind::Tree, &bytes)? {
        batch.trees.push((id, bytes));
    }
    Ok(id)
}
