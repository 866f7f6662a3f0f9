//! Restoring a snapshot (or chosen paths of it) into a target directory.
//!
//! The plan is computed from the catalog first ([`plan`]), then applied:
//! directories top-down, files in parallel (every chunk verified against its
//! hash), links and special files, and finally directory metadata bottom-up
//! (so a read-only directory is made read-only after its contents exist).
//!
//! **Invariants:** nothing is written outside the target. Names were
//! validated when the tree was decoded (no `/`, `.`, `..`, NUL); existing
//! symlinks in the target are replaced, never followed; files are created
//! with `O_CREAT|O_EXCL|O_NOFOLLOW`. An existing non-empty target is refused
//! unless `overwrite` is set.
//!
//! [`in_place`] restores over the paths a snapshot was taken from, after a
//! safety snapshot, reusing the file writing and metadata code here.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::catalog::CatalogReader;
use crate::error::{Error, IoContext, Result};
use crate::fsmeta;
use crate::id::{ChunkId, TreeId};
use crate::model::{Entry, EntryKind, Meta};
use crate::progress::{NoProgress, Phase, Progress};
use crate::repo::{Repository, locate_in, path_components};

pub mod in_place;

/// What to restore and where.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Absolute paths inside the snapshot to restore; everything when empty.
    pub includes: Vec<PathBuf>,
    /// Restore into a non-empty target, replacing what is in the way.
    pub overwrite: bool,
    /// Restore owners (uid/gid); only possible as root.
    pub owner: bool,
}

/// One thing to create, relative to the target.
#[derive(Debug, Clone)]
pub struct PlanItem {
    /// Path relative to the target.
    pub rel: PathBuf,
    /// The snapshot entry.
    pub entry: Entry,
}

/// Everything a restore will create, in creation order.
#[derive(Debug, Default)]
pub struct RestorePlan {
    /// Directories, parents before children.
    pub dirs: Vec<PlanItem>,
    /// Regular files.
    pub files: Vec<PlanItem>,
    /// Symlinks and special files.
    pub others: Vec<PlanItem>,
}

impl RestorePlan {
    /// Total size of the regular files to restore.
    pub fn file_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| match f.entry.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }
}

/// What a restore did.
#[derive(Debug, Default, Clone)]
pub struct RestoreSummary {
    /// Directories restored.
    pub dirs: u64,
    /// Files restored.
    pub files: u64,
    /// Symlinks and special files restored.
    pub others: u64,
    /// File bytes written.
    pub bytes: u64,
    /// Paths (relative to the target) that failed, with the reason.
    pub errors: Vec<(PathBuf, String)>,
}

/// Computes what restoring `root` (limited to `includes`) creates.
///
/// # Errors
/// [`crate::ErrorKind::NotFound`] when an include is not in the snapshot;
/// corruption when a tree is missing.
pub fn plan(reader: &CatalogReader, root: TreeId, includes: &[PathBuf]) -> Result<RestorePlan> {
    let mut selectors = Vec::new();
    for inc in includes {
        // Fails with a clear "not in the snapshot" before anything is written.
        locate_in(reader, root, inc)?;
        selectors.push(path_components(inc)?);
    }
    let mut plan = RestorePlan::default();
    let all = selectors.is_empty() || selectors.iter().any(Vec::is_empty);
    walk(reader, root, Path::new(""), &selectors, all, &mut plan)?;
    Ok(plan)
}

fn walk(
    reader: &CatalogReader,
    tree: TreeId,
    rel: &Path,
    selectors: &[Vec<Vec<u8>>],
    all: bool,
    plan: &mut RestorePlan,
) -> Result<()> {
    let tree = reader.tree(&tree)?;
    for entry in tree.entries {
        let Some((take_all, rests)) = select(selectors, all, &entry.name) else {
            continue;
        };
        let child_rel = rel.join(OsStr::from_bytes(&entry.name));
        match &entry.kind {
            EntryKind::Dir { tree } => {
                let sub = *tree;
                plan.dirs.push(PlanItem {
                    rel: child_rel.clone(),
                    entry,
                });
                walk(reader, sub, &child_rel, &rests, take_all, plan)?;
            }
            // A selector naming something below a non-directory matches nothing.
            _ if !take_all => {}
            EntryKind::File { .. } => plan.files.push(PlanItem {
                rel: child_rel,
                entry,
            }),
            _ => plan.others.push(PlanItem {
                rel: child_rel,
                entry,
            }),
        }
    }
    Ok(())
}

/// Restores the snapshot whose root tree is `root` according to `opts`.
///
/// # Errors
/// Fatal problems only (target refused or not creatable, missing trees);
/// per-file failures are listed in [`RestoreSummary::errors`].
pub fn restore(repo: &Repository, root: TreeId, opts: &RestoreOptions) -> Result<RestoreSummary> {
    restore_with(repo, root, opts, &NoProgress)
}

/// [`restore`], reporting to `progress`: one phase `restore` whose totals
/// are the plan's files and their bytes; bytes are counted per chunk written.
///
/// # Errors
/// As [`restore`].
pub fn restore_with(
    repo: &Repository,
    root: TreeId,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreSummary> {
    let reader = repo.catalog().begin_read()?;
    let plan = plan(&reader, root, &opts.includes)?;
    progress
        .phase(&Phase::new("restore", "files").totals(plan.files.len() as u64, plan.file_bytes()));
    prepare_target(&opts.target, opts.overwrite)?;
    let target = &opts.target;
    let summary = Mutex::new(RestoreSummary::default());
    let fail = |rel: &Path, e: &Error| {
        lock(&summary)
            .errors
            .push((rel.to_path_buf(), error_chain(e)));
    };

    for d in &plan.dirs {
        match ensure_dir(&target.join(&d.rel)) {
            Ok(()) => lock(&summary).dirs += 1,
            Err(e) => fail(&d.rel, &e),
        }
    }
    let writer = FileWriter {
        repo,
        reader: &reader,
        owner: opts.owner,
        sync: false,
        progress,
    };
    plan.files.par_iter().for_each(|f| {
        let EntryKind::File { chunks, .. } = &f.entry.kind else {
            return;
        };
        match restore_file(&writer, &target.join(&f.rel), chunks, &f.entry.meta) {
            Ok(n) => {
                let mut s = lock(&summary);
                s.files += 1;
                s.bytes += n;
            }
            Err(e) => fail(&f.rel, &e),
        }
        progress.items(1);
    });
    for o in &plan.others {
        match restore_other(&target.join(&o.rel), &o.entry, opts.owner) {
            Ok(true) => lock(&summary).others += 1,
            Ok(false) => {}
            Err(e) => fail(&o.rel, &e),
        }
    }
    for d in plan.dirs.iter().rev() {
        if let Err(e) =
            fsmeta::apply_to_path(&target.join(&d.rel), &d.entry.meta, false, opts.owner)
        {
            fail(&d.rel, &e);
        }
    }
    let mut summary = summary
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    summary.errors.sort();
    Ok(summary)
}

fn error_chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn prepare_target(target: &Path, overwrite: bool) -> Result<()> {
    match fs::symlink_metadata(target) {
        Ok(md) if md.is_dir() || (md.file_type().is_symlink() && target.is_dir()) => {
            let non_empty = fs::read_dir(target)
                .at("reading target", target)?
                .next()
                .is_some();
            if non_empty && !overwrite {
                return Err(Error::invalid(format!(
                    "target {} is not empty; restore into a new directory, or pass --overwrite to replace what is there",
                    target.display()
                )));
            }
            Ok(())
        }
        Ok(_) => Err(Error::invalid(format!(
            "target {} exists and is not a directory",
            target.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(target).at("creating target", target)
        }
        Err(e) => Err(Error::io("reading target", target, e)),
    }
}

/// Removes whatever non-directory is at `path` (never following a symlink).
fn clear(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path).at("replacing", path),
        Ok(_) => fs::remove_file(path).at("replacing", path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

fn ensure_dir(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        // An existing directory (restoring with --overwrite) may be read-only
        // from an earlier restore; its final mode is applied at the end.
        Ok(md) if md.is_dir() => {
            if md.mode() & 0o700 != 0o700 {
                fs::set_permissions(path, fs::Permissions::from_mode(md.mode() | 0o700))
                    .at("making writable", path)?;
            }
            return Ok(());
        }
        Ok(_) => fs::remove_file(path).at("replacing", path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("reading", path, e)),
    }
    DirBuilder::new()
        .mode(0o700)
        .create(path)
        .at("creating directory", path)
}

/// Include paths (as name components) below an entry named `name`: `None`
/// when no path passes through it, else whether everything below it is
/// wanted (`all` already, or a path ends at it) and the paths' rests.
pub(crate) fn select(
    selectors: &[Vec<Vec<u8>>],
    all: bool,
    name: &[u8],
) -> Option<(bool, Vec<Vec<Vec<u8>>>)> {
    if all {
        return Some((true, Vec::new()));
    }
    let rests: Vec<_> = selectors
        .iter()
        .filter(|s| s.first().is_some_and(|first| first == name))
        .map(|s| s[1..].to_vec())
        .collect();
    if rests.is_empty() {
        return None;
    }
    Some((rests.iter().any(Vec::is_empty), rests))
}

/// How restored files are written: where chunks come from and what is
/// applied besides the bytes.
pub(crate) struct FileWriter<'a> {
    pub repo: &'a Repository,
    pub reader: &'a CatalogReader,
    /// Restore uid/gid (root only).
    pub owner: bool,
    /// Data reach the disk before `write` returns (in-place restore renames
    /// the file over a live one next).
    pub sync: bool,
    pub progress: &'a dyn Progress,
}

/// Creates the file `path` with these chunks and metadata.
fn restore_file(w: &FileWriter<'_>, path: &Path, chunks: &[ChunkId], meta: &Meta) -> Result<u64> {
    let FileWriter {
        repo,
        reader,
        owner,
        sync,
        progress,
    } = *w;
    clear(path)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .at("creating", path)?;
    let mut write_all = || -> Result<u64> {
        let mut written = 0u64;
        for id in chunks {
            let data = repo.read_chunk(reader, id)?;
            file.write_all(&data).at("writing", path)?;
            written += data.len() as u64;
            progress.bytes(data.len() as u64);
        }
        fsmeta::apply_to_file(&file, path, meta, owner)?;
        if sync {
            file.sync_all().at("syncing", path)?;
        }
        Ok(written)
    };
    let result = write_all();
    if result.is_err() {
        // A partial file would look restored; the error list names it instead.
        let _ = fs::remove_file(path);
    }
    result
}

/// Creates a symlink or special file; false when the type cannot be restored.
fn restore_other(path: &Path, entry: &Entry, owner: bool) -> Result<bool> {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    clear(path)?;
    let mode = Mode::from_raw_mode(entry.meta.mode);
    match &entry.kind {
        EntryKind::Symlink { target } => {
            std::os::unix::fs::symlink(OsStr::from_bytes(target), path)
                .at("creating symlink", path)?;
            fsmeta::apply_to_path(path, &entry.meta, true, owner)?;
            return Ok(true);
        }
        EntryKind::Fifo => mknodat(CWD, path, FileType::Fifo, mode, 0),
        EntryKind::Device { block, rdev } => {
            let ft = if *block {
                FileType::BlockDevice
            } else {
                FileType::CharacterDevice
            };
            mknodat(CWD, path, ft, mode, *rdev)
        }
        EntryKind::Socket => return Ok(false),
        EntryKind::File { .. } | EntryKind::Dir { .. } => unreachable!("handled elsewhere"),
    }
    .map_err(std::io::Error::from)
    .at("creating special file", path)?;
    fsmeta::apply_to_path(path, &entry.meta, false, owner)?;
    Ok(true)
}
