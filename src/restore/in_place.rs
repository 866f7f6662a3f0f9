//! Restoring a snapshot over the paths it was taken from ("in place").
//!
//! ```text
//! restored paths (source paths, or --include ∩ them) ─► ancestors checked
//! plan:  diff live ─► snapshot (the diff module), each change classified
//!        (restore / delete / keep)
//! apply: safety snapshot of the restored paths (tag before-restore)
//!        ─► diff safety ─► snapshot (catalog only)
//!        ─► structure in path order (deletions, type changes, new dirs)
//!        ─► files in parallel (temp file, fsync, rename), links, metadata
//!        ─► directory metadata bottom-up, fsync of changed directories
//! ```
//!
//! **Invariants:**
//! - Nothing is changed before the safety snapshot is committed, and nothing
//!   at all when it could not save every path (an unreadable file would be
//!   lost for good).
//! - Only paths at or below the restored paths are changed; the directories
//!   above them must be real directories (a symlink there is refused, never
//!   followed), and the repository's own directory is never touched.
//! - A file is replaced by renaming a complete, fsynced temporary file in the
//!   same directory over it: a crash leaves the old or the new file, never a
//!   mix. Unchanged files are not rewritten; a file whose metadata alone
//!   differs gets its metadata, not a new copy.
//! - Symlinks in the way are replaced (rename replaces the link itself) or
//!   removed, never followed; deletion (`delete`) removes only entries the
//!   diff reports as absent from the snapshot, without following symlinks.
//!
//! File writing and metadata are the normal restore's (`restore_file`,
//! `restore_other`, [`fsmeta`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::{FileWriter, clear, ensure_dir, lock, restore_file, restore_other};
use crate::archiver::{self, Report, SnapshotOptions};
use crate::catalog::CatalogReader;
use crate::diff::{self, Change, ChangeKind, DiffOptions, DiffWarning, Side};
use crate::error::{Error, ErrorKind, IoContext, Result, error_chain};
use crate::fsmeta;
use crate::id::SnapshotId;
use crate::model::{Entry, EntryKind, Meta, Snapshot};
use crate::progress::{Phase, Progress};
use crate::repo::{Located, Repository, locate_in, path_components};
use crate::store::sync_dir;

/// The tag of the snapshot taken before an in-place restore.
pub const SAFETY_TAG: &str = "before-restore";

/// What to restore in place, and how.
#[derive(Debug, Clone, Default)]
pub struct InPlaceOptions {
    /// Absolute paths of the snapshot to restore; all its source paths when
    /// empty. A path above the source paths stands for the source paths below it.
    pub includes: Vec<PathBuf>,
    /// Remove entries present now but absent from the snapshot (only below
    /// the restored paths); without it they are kept.
    pub delete: bool,
    /// Restore owners (uid/gid); only possible as root.
    pub owner: bool,
    /// User name recorded in the safety snapshot.
    pub username: String,
}

/// What happens to one changed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Made as in the snapshot (created, replaced, or its metadata set).
    Restore,
    /// Removed: absent from the snapshot. `by_parent` when it goes with a
    /// removed or replaced directory above it (no separate operation).
    Delete {
        /// Removed together with a directory above it.
        by_parent: bool,
    },
    /// Absent from the snapshot but left alone (no `delete`, or it holds
    /// the repository).
    Keep,
}

/// One change of the plan: a diff change from the current state to the snapshot.
#[derive(Debug, Clone)]
pub struct PlannedChange {
    /// The change (old side: now; new side: the snapshot).
    pub change: Change,
    /// What the restore does about it.
    pub action: Action,
}

/// Counts of an in-place restore, planned or done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Entries created (absent now).
    pub added: u64,
    /// Entries whose content is replaced.
    pub modified: u64,
    /// Entries whose metadata alone is set.
    pub metadata: u64,
    /// Entries replaced by one of another type.
    pub type_changed: u64,
    /// Entries removed (absent from the snapshot, with `delete`, or below a
    /// replaced directory).
    pub deleted: u64,
    /// Entries absent from the snapshot and left alone.
    pub kept: u64,
}

impl Counts {
    /// Changes made (everything but the kept entries).
    pub fn changes(&self) -> u64 {
        self.added + self.modified + self.metadata + self.type_changed + self.deleted
    }

    fn add(&mut self, kind: ChangeKind, action: Action) {
        match (action, kind) {
            (Action::Keep, _) => self.kept += 1,
            (Action::Delete { .. }, _) | (Action::Restore, ChangeKind::Removed) => {
                self.deleted += 1;
            }
            (Action::Restore, ChangeKind::Added) => self.added += 1,
            (Action::Restore, ChangeKind::Modified) => self.modified += 1,
            (Action::Restore, ChangeKind::Metadata) => self.metadata += 1,
            (Action::Restore, ChangeKind::Type) => self.type_changed += 1,
        }
    }
}

/// What an in-place restore would do, from comparing the live paths with
/// the snapshot.
#[derive(Debug, Clone)]
pub struct InPlacePlan {
    /// The restored paths (absolute, sorted, none inside another).
    pub roots: Vec<PathBuf>,
    /// Every change, in path order.
    pub changes: Vec<PlannedChange>,
    /// Their counts.
    pub counts: Counts,
    /// Live paths that could not be compared.
    pub warnings: Vec<DiffWarning>,
}

/// What an in-place restore did.
#[derive(Debug, Clone)]
pub struct InPlaceOutcome {
    /// The restored paths.
    pub roots: Vec<PathBuf>,
    /// The safety snapshot of the restored paths as they were before, tagged
    /// [`SAFETY_TAG`]; `None` when none of them existed (nothing to save).
    pub safety: Option<SnapshotId>,
    /// Restored paths that did not exist before (not in the safety
    /// snapshot: undoing the restore means removing them).
    pub created: Vec<PathBuf>,
    /// What was done (failed paths are not counted).
    pub counts: Counts,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Paths that could not be restored, with the reason.
    pub errors: Vec<(PathBuf, String)>,
}

/// Computes what restoring `snap` in place would change, without changing
/// anything (`cairn restore --in-place --dry-run`).
///
/// # Errors
/// [`ErrorKind::NotFound`] when an include is not in the snapshot;
/// [`ErrorKind::InvalidInput`] when a directory above a restored path is
/// missing, a symlink or not a directory, or a restored path is inside the
/// repository; catalog errors.
pub fn plan(repo: &Repository, snap: &Snapshot, opts: &InPlaceOptions) -> Result<InPlacePlan> {
    let roots = restored_paths(repo, snap, &opts.includes)?;
    let (changes, summary) = diff::diff_all(
        repo,
        &Side::Live(Vec::new()),
        &Side::Snapshot(snap),
        &DiffOptions {
            paths: roots.clone(),
        },
    )?;
    let (changes, counts) = classify(changes, opts.delete, &repo_dir(repo));
    Ok(InPlacePlan {
        roots,
        changes,
        counts,
        warnings: summary.warnings,
    })
}

/// The state saved by [`save_current`]: the restored paths, and the safety
/// snapshot of those that exist.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The restored paths.
    pub roots: Vec<PathBuf>,
    /// The safety snapshot (tag [`SAFETY_TAG`]); `None` when none of the
    /// restored paths existed (nothing to save).
    pub safety: Option<(SnapshotId, Snapshot)>,
    /// Restored paths that did not exist (not in the safety snapshot:
    /// undoing the restore means removing them).
    pub created: Vec<PathBuf>,
}

/// Restores `snap` (whose id is `id`) over the paths it was taken from:
/// [`save_current`], then [`apply`].
///
/// # Errors
/// As [`save_current`] and [`apply`].
pub fn restore_in_place(
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    opts: &InPlaceOptions,
    report: &dyn Report,
) -> Result<InPlaceOutcome> {
    let saved = save_current(repo, id, snap, opts, report)?;
    apply(repo, snap, opts, &saved, report.progress())
}

/// The first step of an in-place restore of `snap` (whose id is `id`): a
/// safety snapshot of the restored paths that exist, tagged [`SAFETY_TAG`]
/// with the message "before restoring ID", its warnings reported to
/// `report`. Call [`plan`] first to show the change and skip this when
/// there is nothing to do.
///
/// # Errors
/// As [`plan`]; [`ErrorKind::Io`] when the safety snapshot could not read
/// some path (then [`apply`] must not run: that path would be lost);
/// repository errors.
pub fn save_current(
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    opts: &InPlaceOptions,
    report: &dyn Report,
) -> Result<Saved> {
    let roots = restored_paths(repo, snap, &opts.includes)?;
    let (existing, created): (Vec<PathBuf>, Vec<PathBuf>) = roots
        .iter()
        .cloned()
        .partition(|r| fs::symlink_metadata(r).is_ok());
    if existing.is_empty() {
        return Ok(Saved {
            roots,
            safety: None,
            created,
        });
    }
    let mut so = SnapshotOptions::new(existing);
    so.tags = vec![SAFETY_TAG.to_string()];
    so.message = format!("before restoring {}", id.short());
    so.username.clone_from(&opts.username);
    let result = archiver::snapshot(repo, &so, report)?;
    if result.snapshot.summary.errors > 0 {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "the safety snapshot {} could not save {} path(s) (named above), so nothing \
                 was restored: make them readable and try again, or restore elsewhere with --target",
                result.id.short(),
                result.snapshot.summary.errors
            ),
        ));
    }
    Ok(Saved {
        roots,
        safety: Some((result.id, result.snapshot)),
        created,
    })
}

/// The second step: makes the restored paths as in `snap`, changing what
/// differs from the state `saved` holds. Restoring the safety snapshot in
/// place with `delete`, and removing [`Saved::created`], undoes it.
///
/// # Errors
/// Catalog and repository errors. Failures on single paths are listed in
/// [`InPlaceOutcome::errors`].
pub fn apply(
    repo: &Repository,
    snap: &Snapshot,
    opts: &InPlaceOptions,
    saved: &Saved,
    progress: &dyn Progress,
) -> Result<InPlaceOutcome> {
    let roots = saved.roots.clone();
    let old = match &saved.safety {
        Some((_, s)) => Side::Snapshot(s),
        None => Side::Live(Vec::new()),
    };
    let (changes, _) = diff::diff_all(
        repo,
        &old,
        &Side::Snapshot(snap),
        &DiffOptions {
            paths: roots.clone(),
        },
    )?;
    let (changes, _) = classify(changes, opts.delete, &repo_dir(repo));
    let reader = repo.catalog().begin_read()?;
    let mut applier = Applier {
        repo,
        reader: &reader,
        snap,
        roots: &roots,
        repo_dir: repo_dir(repo),
        owner: opts.owner,
        counts: Mutex::new(Counts::default()),
        bytes: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
        dirs: BTreeMap::new(),
        opened: HashMap::new(),
        progress,
    };
    applier.apply(changes);
    let counts = applier
        .counts
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let bytes = applier.bytes.into_inner();
    let mut errors = applier
        .errors
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    errors.sort();
    Ok(InPlaceOutcome {
        roots,
        safety: saved.safety.as_ref().map(|(id, _)| *id),
        created: saved.created.clone(),
        counts,
        bytes,
        errors,
    })
}

/// The repository directory, canonical (or as given when that fails).
fn repo_dir(repo: &Repository) -> PathBuf {
    fs::canonicalize(repo.root()).unwrap_or_else(|_| repo.root().to_path_buf())
}

/// The restored paths: the snapshot's source paths, or the includes (an
/// include above source paths stands for those below it), sorted, nested
/// ones dropped; each checked to be restorable in place.
fn restored_paths(
    repo: &Repository,
    snap: &Snapshot,
    includes: &[PathBuf],
) -> Result<Vec<PathBuf>> {
    let sources: Vec<PathBuf> = snap
        .paths
        .iter()
        .map(|p| PathBuf::from(OsStr::from_bytes(p)))
        .collect();
    let mut roots = Vec::new();
    if includes.is_empty() {
        roots.clone_from(&sources);
    } else {
        let reader = repo.catalog().begin_read()?;
        for inc in includes {
            let names = path_components(inc)?;
            if sources.iter().any(|s| inc.starts_with(s)) {
                if let Err(e) = locate_in(&reader, snap.tree, inc) {
                    if e.kind() == ErrorKind::NotFound {
                        return Err(Error::not_found(format!(
                            "the snapshot does not contain {}",
                            inc.display()
                        )));
                    }
                    return Err(e);
                }
                roots.push(inc.clone());
                continue;
            }
            let below: Vec<&PathBuf> = sources
                .iter()
                .filter(|s| {
                    path_components(s).is_ok_and(|c| c.starts_with(&names) && c.len() > names.len())
                })
                .collect();
            if below.is_empty() {
                return Err(Error::invalid(format!(
                    "{} is outside the paths the snapshot was taken of ({})",
                    inc.display(),
                    sources
                        .iter()
                        .map(|s| s.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            roots.extend(below.into_iter().cloned());
        }
    }
    roots.sort();
    roots.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for r in roots {
        if !out.iter().any(|kept| r.starts_with(kept)) {
            out.push(r);
        }
    }
    let repo_dir = repo_dir(repo);
    for r in &out {
        check_restorable(r, &repo_dir)?;
    }
    Ok(out)
}

/// Refuses a restored path whose parent directories are missing, symlinks
/// or not directories (writing there would follow a link, or leave
/// directories the undo cannot remove), or that lies inside the repository.
fn check_restorable(root: &Path, repo_dir: &Path) -> Result<()> {
    if root.starts_with(repo_dir) {
        return Err(Error::invalid(format!(
            "{} is inside the repository {}; it cannot be restored in place",
            root.display(),
            repo_dir.display()
        )));
    }
    for dir in root.ancestors().skip(1) {
        match fs::symlink_metadata(dir) {
            Ok(md) if md.is_dir() => {}
            Ok(md) if md.file_type().is_symlink() => {
                return Err(Error::invalid(format!(
                    "{} is a symlink: restoring {} in place would write through it; \
                     restore elsewhere with --target instead",
                    dir.display(),
                    root.display()
                )));
            }
            Ok(_) => {
                return Err(Error::invalid(format!(
                    "{} is not a directory, so {} cannot be restored in place; \
                     restore elsewhere with --target instead",
                    dir.display(),
                    root.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::invalid(format!(
                    "directory {} does not exist, so {} cannot be restored in place; \
                     create it first, or restore elsewhere with --target",
                    dir.display(),
                    root.display()
                )));
            }
            Err(e) => return Err(Error::io("reading", dir, e)),
        }
    }
    Ok(())
}

fn is_below(path: &[u8], prefix: &[u8]) -> bool {
    path.len() > prefix.len() && path.starts_with(prefix) && path[prefix.len()] == b'/'
}

fn is_dir(entry: Option<&Entry>) -> bool {
    matches!(entry.map(|e| &e.kind), Some(EntryKind::Dir { .. }))
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// Decides what happens to each change (in path order) and counts them.
/// Changes at or below the repository directory are dropped.
fn classify(changes: Vec<Change>, delete: bool, repo_dir: &Path) -> (Vec<PlannedChange>, Counts) {
    let repo_bytes = repo_dir.as_os_str().as_bytes();
    let mut out = Vec::with_capacity(changes.len());
    let mut counts = Counts::default();
    // A directory whose old contents go (deleted, or replaced by another type).
    let mut gone: Option<Vec<u8>> = None;
    for change in changes {
        if change.path == repo_bytes || is_below(&change.path, repo_bytes) {
            continue;
        }
        if gone.as_ref().is_some_and(|g| !is_below(&change.path, g)) {
            gone = None;
        }
        let action = match change.kind {
            ChangeKind::Removed if gone.is_some() => Action::Delete { by_parent: true },
            ChangeKind::Removed if !delete => Action::Keep,
            ChangeKind::Removed => {
                if is_dir(change.old.as_ref()) {
                    if is_below(repo_bytes, &change.path) {
                        // Its other contents are deleted one by one.
                        Action::Keep
                    } else {
                        gone = Some(change.path.clone());
                        Action::Delete { by_parent: false }
                    }
                } else {
                    Action::Delete { by_parent: false }
                }
            }
            ChangeKind::Type => {
                if is_dir(change.old.as_ref()) {
                    gone = Some(change.path.clone());
                }
                Action::Restore
            }
            _ => Action::Restore,
        };
        counts.add(change.kind, action);
        out.push(PlannedChange { change, action });
    }
    (out, counts)
}

/// Temporary names are unique per process (pid) and per call (counter).
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn tmp_path(path: &Path) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".cairn-restore-{}-{n}.tmp", std::process::id()))
}

/// A file, link or special file to write, and the change it belongs to.
struct Install {
    path: PathBuf,
    entry: Entry,
    kind: ChangeKind,
}

struct Applier<'a> {
    repo: &'a Repository,
    reader: &'a CatalogReader,
    snap: &'a Snapshot,
    roots: &'a [PathBuf],
    repo_dir: PathBuf,
    owner: bool,
    counts: Mutex<Counts>,
    bytes: AtomicU64,
    errors: Mutex<Vec<(PathBuf, String)>>,
    /// Directories whose metadata is set at the end: the snapshot's, when
    /// known (created or changed directories), else looked up.
    dirs: BTreeMap<PathBuf, Option<Meta>>,
    /// Directories made writable for the owner, with their mode before.
    opened: HashMap<PathBuf, u32>,
    progress: &'a dyn Progress,
}

impl Applier<'_> {
    fn fail(&self, path: &Path, e: &Error) {
        lock(&self.errors).push((path.to_path_buf(), error_chain(e)));
    }

    fn count(&self, kind: ChangeKind, action: Action) {
        lock(&self.counts).add(kind, action);
    }

    /// Notes that an entry of `path`'s directory changes: that directory
    /// gets its recorded metadata back at the end (unless it is above a
    /// restored path), and is made writable meanwhile.
    fn touch_parent(&mut self, path: &Path) -> Result<()> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        if !self.roots.iter().any(|r| parent.starts_with(r)) {
            return Ok(());
        }
        self.dirs.entry(parent.to_path_buf()).or_insert(None);
        if self.opened.contains_key(parent) {
            return Ok(());
        }
        let md = fs::symlink_metadata(parent).at("reading", parent)?;
        if md.mode() & 0o300 != 0o300 {
            fs::set_permissions(parent, fs::Permissions::from_mode(md.mode() | 0o700))
                .at("making writable", parent)?;
            self.opened.insert(parent.to_path_buf(), md.mode() & 0o7777);
        }
        Ok(())
    }

    fn apply(&mut self, changes: Vec<PlannedChange>) {
        let mut files = Vec::new();
        let mut others = Vec::new();
        let mut metas = Vec::new();
        // A directory that could not be made as in the snapshot: nothing below
        // it is touched (it may still be a symlink).
        let mut failed: Option<Vec<u8>> = None;
        for PlannedChange { change, action } in changes {
            if failed.as_ref().is_some_and(|f| is_below(&change.path, f)) {
                continue;
            }
            let path = as_path(&change.path).to_path_buf();
            match self.structure(&path, &change, action) {
                Ok(Some(op)) => match op {
                    Op::File(i) => files.push(i),
                    Op::Other(i) => others.push(i),
                    Op::Meta(i) => metas.push(i),
                },
                Ok(None) => {}
                Err(e) => {
                    self.fail(&path, &e);
                    failed = Some(change.path.clone());
                }
            }
        }
        let bytes: u64 = files.iter().map(|i| i.entry.size()).sum();
        self.progress
            .phase(&Phase::new("restore", "files").totals(files.len() as u64, bytes));
        let writer = FileWriter {
            repo: self.repo,
            reader: self.reader,
            owner: self.owner,
            sync: true,
            progress: self.progress,
            // Live directories may be setgid or carry default ACLs.
            creation: None,
        };
        files.par_iter().for_each(|i| {
            let tmp = tmp_path(&i.path);
            let EntryKind::File { chunks, size } = &i.entry.kind else {
                return;
            };
            let written = restore_file(&writer, &tmp, chunks, *size, &i.entry.meta)
                .and_then(|n| replace(&tmp, &i.path).map(|()| n));
            match written {
                Ok(n) => {
                    self.bytes.fetch_add(n, Ordering::Relaxed);
                    self.count(i.kind, Action::Restore);
                }
                Err(e) => self.fail(&i.path, &e),
            }
            self.progress.items(1);
        });
        for i in &others {
            let tmp = tmp_path(&i.path);
            let done = restore_other(&tmp, &i.entry, self.owner).and_then(|made| {
                if made {
                    replace(&tmp, &i.path)
                } else {
                    // A socket cannot be made: what was there goes.
                    clear(&i.path)
                }
            });
            match done {
                Ok(()) => self.count(i.kind, Action::Restore),
                Err(e) => self.fail(&i.path, &e),
            }
        }
        for i in &metas {
            let is_link = matches!(i.entry.kind, EntryKind::Symlink { .. });
            match fsmeta::apply_to_path(&i.path, &i.entry.meta, is_link, self.owner) {
                Ok(()) => self.count(i.kind, Action::Restore),
                Err(e) => self.fail(&i.path, &e),
            }
        }
        self.finish_dirs();
    }

    /// The sequential part of one change, in path order: deletions, type
    /// changes, directories; returns what to write afterwards.
    fn structure(&mut self, path: &Path, change: &Change, action: Action) -> Result<Option<Op>> {
        match action {
            Action::Keep | Action::Delete { by_parent: true } => {
                self.count(change.kind, action);
                return Ok(None);
            }
            Action::Delete { by_parent: false } => {
                self.touch_parent(path)?;
                remove(path)?;
                self.count(change.kind, action);
                return Ok(None);
            }
            Action::Restore => {}
        }
        let Some(new) = change.new.clone() else {
            return Ok(None);
        };
        if change.kind == ChangeKind::Metadata {
            if let EntryKind::Dir { .. } = new.kind {
                self.dirs.insert(path.to_path_buf(), Some(new.meta));
                self.count(change.kind, action);
                return Ok(None);
            }
            return Ok(Some(Op::Meta(Install {
                path: path.to_path_buf(),
                entry: new,
                kind: change.kind,
            })));
        }
        self.touch_parent(path)?;
        if change.kind == ChangeKind::Type && is_dir(change.old.as_ref()) {
            if self.repo_dir.starts_with(path) {
                return Err(Error::invalid(format!(
                    "not replaced: it holds the repository {}",
                    self.repo_dir.display()
                )));
            }
            // rename cannot replace a directory: it goes first (the safety
            // snapshot holds it).
            remove(path)?;
        }
        if let EntryKind::Dir { .. } = new.kind {
            // Whatever non-directory is there goes (a symlink as a link); a
            // directory that appeared since the safety snapshot is kept.
            ensure_dir(path)?;
            self.dirs.insert(path.to_path_buf(), Some(new.meta));
            self.count(change.kind, action);
            return Ok(None);
        }
        let install = Install {
            path: path.to_path_buf(),
            kind: change.kind,
            entry: new,
        };
        Ok(Some(match install.entry.kind {
            EntryKind::File { .. } => Op::File(install),
            _ => Op::Other(install),
        }))
    }

    /// Sets directory metadata bottom-up (the snapshot's; the mode from
    /// before for a directory made writable that the snapshot lacks), then
    /// fsyncs the directories whose entries changed.
    fn finish_dirs(&mut self) {
        let dirs = std::mem::take(&mut self.dirs);
        for (dir, meta) in dirs.iter().rev() {
            let meta = match meta {
                Some(m) => Some(*m),
                None => match locate_in(self.reader, self.snap.tree, dir) {
                    Ok(Located::Entry(e)) if is_dir(Some(&e)) => Some(e.meta),
                    _ => None,
                },
            };
            let result = match (meta, self.opened.get(dir)) {
                (Some(m), _) => fsmeta::apply_to_path(dir, &m, false, self.owner),
                (None, Some(mode)) => fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
                    .at("setting mode of", dir),
                (None, None) => Ok(()),
            };
            if let Err(e) = result {
                self.fail(dir, &e);
            }
        }
        for dir in dirs.keys() {
            if let Err(e) = sync_dir(dir) {
                self.fail(dir, &e);
            }
        }
        // The parents of the restored paths hold new or replaced entries too
        // (best effort: they are outside what is restored).
        let parents: BTreeSet<&Path> = self.roots.iter().filter_map(|r| r.parent()).collect();
        for p in parents.into_iter().filter(|p| !dirs.contains_key(*p)) {
            let _ = sync_dir(p);
        }
    }
}

/// Removes what is at `path` without following a symlink; a directory tree
/// with read-only directories in it (which stop the removal when not root)
/// is made writable for the owner and removed again.
fn remove(path: &Path) -> Result<()> {
    let first = match clear(path) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if is_dir && open_tree(path).is_ok() {
        clear(path)
    } else {
        Err(first)
    }
}

/// Gives the owner full access to `dir` and every directory below it (not
/// following symlinks).
fn open_tree(dir: &Path) -> Result<()> {
    let md = fs::symlink_metadata(dir).at("reading", dir)?;
    if md.mode() & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(md.mode() | 0o700))
            .at("making writable", dir)?;
    }
    for item in fs::read_dir(dir).at("reading", dir)? {
        let item = item.at("reading", dir)?;
        if item.file_type().at("reading", &item.path())?.is_dir() {
            open_tree(&item.path())?;
        }
    }
    Ok(())
}

enum Op {
    File(Install),
    Other(Install),
    Meta(Install),
}

/// Renames the complete temporary `tmp` over `path` (which may be a file, a
/// symlink, which is replaced and not followed, or absent); removes `tmp`
/// when that fails.
fn replace(tmp: &Path, path: &Path) -> Result<()> {
    fs::rename(tmp, path).map_err(|e| {
        let _ = fs::remove_file(tmp);
        Error::io("replacing", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::LIVE_TREE;

    fn entry(name: &str, dir: bool) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            kind: if dir {
                EntryKind::Dir { tree: LIVE_TREE }
            } else {
                EntryKind::File {
                    size: 0,
                    chunks: Vec::new(),
                }
            },
            meta: Meta::default(),
        }
    }

    fn change(
        path: &str,
        kind: ChangeKind,
        old_dir: Option<bool>,
        new_dir: Option<bool>,
    ) -> Change {
        let name = path.rsplit('/').next().unwrap();
        Change {
            path: path.as_bytes().to_vec(),
            kind,
            old: old_dir.map(|d| entry(name, d)),
            new: new_dir.map(|d| entry(name, d)),
            chunks_differ: 0,
            bytes_differ: 0,
            chunks_dropped: 0,
            bytes_dropped: 0,
        }
    }

    fn actions(changes: Vec<Change>, delete: bool) -> Vec<(String, Action)> {
        classify(changes, delete, Path::new("/s/keep/repo"))
            .0
            .into_iter()
            .map(|p| (String::from_utf8(p.change.path).unwrap(), p.action))
            .collect()
    }

    fn sample() -> Vec<Change> {
        use ChangeKind::{Added, Removed, Type};
        vec![
            change("/s/a", Type, Some(true), Some(false)),
            change("/s/a/x", Removed, Some(false), None),
            change("/s/b", Removed, Some(true), None),
            change("/s/b/y", Removed, Some(false), None),
            change("/s/c", Added, None, Some(false)),
            change("/s/keep", Removed, Some(true), None),
            change("/s/keep/other", Removed, Some(false), None),
            change("/s/keep/repo", Added, None, Some(true)),
            change("/s/keep/repo/config", Added, None, Some(false)),
        ]
    }

    #[test]
    fn without_delete_only_a_type_change_removes_old_contents() {
        let by_parent = Action::Delete { by_parent: true };
        assert_eq!(
            actions(sample(), false),
            vec![
                ("/s/a".into(), Action::Restore),
                ("/s/a/x".into(), by_parent),
                ("/s/b".into(), Action::Keep),
                ("/s/b/y".into(), Action::Keep),
                ("/s/c".into(), Action::Restore),
                ("/s/keep".into(), Action::Keep),
                ("/s/keep/other".into(), Action::Keep),
            ]
        );
    }

    #[test]
    fn delete_removes_whole_trees_but_never_the_repository_or_its_parents() {
        let by_parent = Action::Delete { by_parent: true };
        let own = Action::Delete { by_parent: false };
        let (planned, counts) = classify(sample(), true, Path::new("/s/keep/repo"));
        assert_eq!(
            planned
                .iter()
                .map(|p| (String::from_utf8(p.change.path.clone()).unwrap(), p.action))
                .collect::<Vec<_>>(),
            vec![
                ("/s/a".into(), Action::Restore),
                ("/s/a/x".into(), by_parent),
                ("/s/b".into(), own),
                ("/s/b/y".into(), by_parent),
                ("/s/c".into(), Action::Restore),
                ("/s/keep".into(), Action::Keep),
                ("/s/keep/other".into(), own),
            ]
        );
        assert_eq!(
            counts,
            Counts {
                added: 1,
                type_changed: 1,
                deleted: 4,
                kept: 1,
                ..Counts::default()
            }
        );
    }
}
