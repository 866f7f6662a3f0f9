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

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::catalog::CatalogReader;
use crate::error::{Error, IoContext, Result, error_chain};
use crate::fsmeta;
use crate::id::{ChunkId, PackId, TreeId};
use crate::model::{Entry, EntryKind, Meta};
use crate::progress::{NoProgress, Phase, Progress};
use crate::repo::{Repository, locate_in, path_components};
use crate::store::{BlobLocation, verified_blob};

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
    let fresh = prepare_target(&opts.target, opts.overwrite)?;
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
        creation: if fresh { Creation::probe(target) } else { None },
    };
    plan.files.par_iter().for_each(|f| {
        let EntryKind::File { chunks, size } = &f.entry.kind else {
            return;
        };
        match restore_file(&writer, &target.join(&f.rel), chunks, *size, &f.entry.meta) {
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Checks or creates the target; true when it is new or was empty.
fn prepare_target(target: &Path, overwrite: bool) -> Result<bool> {
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
            Ok(!non_empty)
        }
        Ok(_) => Err(Error::invalid(format!(
            "target {} exists and is not a directory",
            target.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(target).at("creating target", target)?;
            Ok(true)
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
    /// What a newly created file gets without being told, when that is
    /// known for sure (see [`Creation`]); `None` sets owner and mode always.
    pub creation: Option<Creation>,
}

/// What `open(O_CREAT, mode)` produces in a target cairn made or found
/// empty, with no default ACL and no setgid bit: the owner is the effective
/// uid/gid and the mode is `mode & !umask`. Knowing this lets a restore skip
/// `fchown` and `fchmod` when they would change nothing (two of a small
/// file's syscalls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Creation {
    uid: u32,
    gid: u32,
    umask: u32,
}

impl Creation {
    /// What files created below `target` (a directory this restore made or
    /// found empty) get, when it can be told for sure.
    fn probe(target: &Path) -> Option<Self> {
        let md = fs::metadata(target).ok()?;
        if md.mode() & 0o2000 != 0 || has_default_acl(target) {
            return None;
        }
        Some(Self {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            umask: read_umask()?,
        })
    }
}

/// Whether `dir` has a default ACL (which, not the umask, decides the mode
/// of files created in it); true when that cannot be told.
fn has_default_acl(dir: &Path) -> bool {
    let mut buf = [0u8; 0];
    match rustix::fs::getxattr(dir, "system.posix_acl_default", &mut buf[..]) {
        Err(e) => e != rustix::io::Errno::NODATA && e != rustix::io::Errno::NOTSUP,
        Ok(_) => true,
    }
}

/// This process's umask, read without changing it (`Umask:` in
/// `/proc/self/status`, Linux 4.7+); `None` when it cannot be read.
fn read_umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// A file of at least this many bytes, or chunks, is written frame by
/// frame ([`write_by_frame`]); smaller ones chunk by chunk in file order.
const FRAME_ORDER_BYTES: u64 = 16 << 20;
const FRAME_ORDER_CHUNKS: usize = 512;

/// Where each chunk of a file goes, grouped by the frame that holds it
/// (pack, frame offset), frames in pack order: `(chunk index, file offset)`
/// in file order. Offsets are the prefix sums of the chunks' raw lengths.
fn frame_plan(locs: &[BlobLocation]) -> Vec<Vec<(usize, u64)>> {
    let mut plan: BTreeMap<(PackId, u64), Vec<(usize, u64)>> = BTreeMap::new();
    let mut offset = 0u64;
    for (i, loc) in locs.iter().enumerate() {
        plan.entry((loc.pack, loc.offset))
            .or_default()
            .push((i, offset));
        offset += u64::from(loc.raw_len);
    }
    plan.into_values().collect()
}

/// Writes a large file frame by frame, frames in parallel: every frame that
/// holds some of its chunks is read and decoded once, and each of those
/// chunks is checked and written at its offset (runs of adjacent chunks in
/// one `pwrite`).
///
/// why: a file's chunks are grouped with whatever was new when they were
/// stored. A database's pages of one version sit in the frames of every
/// version that changed them, so reading in file order jumps between a
/// dozen frames of 1 MiB at every step, more than a bounded cache holds:
/// each frame would be decoded many times. In frame order each is decoded
/// once and memory stays at a frame per thread.
fn write_by_frame(
    w: &FileWriter<'_>,
    file: &fs::File,
    path: &Path,
    chunks: &[ChunkId],
    size: u64,
) -> Result<u64> {
    let locs = chunks
        .iter()
        .map(|id| {
            w.reader
                .blob(&id.0)?
                .ok_or_else(|| Error::corrupt(format!("chunk {id} is not in the catalog")))
        })
        .collect::<Result<Vec<_>>>()?;
    let total: u64 = locs.iter().map(|l| u64::from(l.raw_len)).sum();
    if total != size {
        return Err(Error::corrupt(format!(
            "the chunks of {} hold {total} bytes, its entry says {size}",
            path.display()
        )));
    }
    frame_plan(&locs)
        .par_iter()
        .map(|members| {
            let (first, _) = members[0];
            let decoded = w.repo.store().read_frame(&locs[first], &chunks[first].0)?;
            let mut run: Vec<u8> = Vec::new();
            let mut run_at = 0u64;
            for &(i, offset) in members {
                let raw = verified_blob(&chunks[i].0, &locs[i], &decoded)?;
                if !run.is_empty() && run_at + run.len() as u64 != offset {
                    file.write_all_at(&run, run_at).at("writing", path)?;
                    run.clear();
                }
                if run.is_empty() {
                    run_at = offset;
                }
                run.extend_from_slice(raw);
                w.progress.bytes(raw.len() as u64);
            }
            if !run.is_empty() {
                file.write_all_at(&run, run_at).at("writing", path)?;
            }
            Ok(())
        })
        .collect::<Result<()>>()?;
    Ok(total)
}

/// Writes at most this many bytes of small chunks in one `pwrite`.
const WRITE_BATCH: usize = 1 << 20;

/// Reads `chunks` in order and writes them from offset 0, batching small
/// chunks into writes of up to [`WRITE_BATCH`] bytes.
fn write_in_order(
    w: &FileWriter<'_>,
    file: &fs::File,
    path: &Path,
    chunks: &[ChunkId],
) -> Result<u64> {
    let mut offset = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<u8>, offset: &mut u64| -> Result<()> {
        file.write_all_at(pending, *offset).at("writing", path)?;
        *offset += pending.len() as u64;
        pending.clear();
        Ok(())
    };
    for id in chunks {
        let data = w.repo.read_chunk(w.reader, id)?;
        w.progress.bytes(data.len() as u64);
        if pending.is_empty() && data.len() >= WRITE_BATCH / 4 {
            file.write_all_at(&data, offset).at("writing", path)?;
            offset += data.len() as u64;
        } else {
            if pending.is_empty() {
                pending.reserve(WRITE_BATCH.min(data.len() * 8));
            }
            pending.extend_from_slice(&data);
            if pending.len() >= WRITE_BATCH {
                flush(&mut pending, &mut offset)?;
            }
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut offset)?;
    }
    Ok(offset)
}

/// Creates `path` (never following a symlink) with permission bits `mode`;
/// whatever is in the way is removed first (only probed for after
/// `EEXIST`, so restoring into a new target costs no extra `stat`).
fn create_file(path: &Path, mode: u32) -> Result<fs::File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            clear(path)?;
            open().at("creating", path)
        }
        r => r.at("creating", path),
    }
}

/// Creates the file `path` of `size` bytes with these chunks and metadata.
///
/// A large file is written frame by frame in parallel ([`write_by_frame`]);
/// metadata is applied once, after all of it. On any failure the partial
/// file is removed and one error returned.
fn restore_file(
    w: &FileWriter<'_>,
    path: &Path,
    chunks: &[ChunkId],
    size: u64,
    meta: &Meta,
) -> Result<u64> {
    // Created with the permission bits already (the umask may take some,
    // set again below); set-id and sticky bits only after the owner.
    let file = create_file(path, meta.mode & 0o777)?;
    let write_all = || -> Result<u64> {
        let written = if size < FRAME_ORDER_BYTES && chunks.len() < FRAME_ORDER_CHUNKS {
            write_in_order(w, &file, path, chunks)?
        } else {
            write_by_frame(w, &file, path, chunks, size)?
        };
        let (set_owner, set_mode) = match w.creation {
            Some(c) => (
                w.owner && (c.uid, c.gid) != (meta.uid, meta.gid),
                meta.mode & 0o7777 != meta.mode & 0o777 & !c.umask,
            ),
            None => (w.owner, true),
        };
        fsmeta::apply_to_new_file(&file, path, meta, set_owner, set_mode)?;
        if w.sync {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_plan_groups_chunks_by_frame_at_prefix_sum_offsets() {
        let loc = |pack: u8, offset: u64, raw_len: u32| BlobLocation {
            pack: PackId(crate::ObjectId([pack; 32])),
            kind: crate::store::BlobKind::Chunk,
            offset,
            length: 100,
            raw_len,
            inner: 0,
            frame_raw: 100,
        };
        // Chunks 0 and 2 share a frame, as do 1 and 3 (in another pack);
        // chunk 4 has its own frame. The same chunk may appear twice.
        let locs = [
            loc(2, 10, 5),
            loc(1, 50, 7),
            loc(2, 10, 3),
            loc(1, 50, 4),
            loc(2, 900, 6),
        ];
        assert_eq!(
            frame_plan(&locs),
            vec![vec![(1, 5), (3, 15)], vec![(0, 0), (2, 12)], vec![(4, 19)],]
        );
    }
}
