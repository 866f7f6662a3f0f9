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
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
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

/// A file is cut into ranges of about this many bytes ...
const RANGE_BYTES: u64 = 8 << 20;
/// ... or this many chunks, whichever comes first; ranges are written in
/// parallel, so one large file keeps every core busy.
const RANGE_CHUNKS: usize = 256;

/// A run of a file's chunks and where its first byte goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Range {
    /// Index of the first chunk.
    start: usize,
    /// One past the last chunk.
    end: usize,
    /// File offset of the first chunk.
    offset: u64,
    /// Bytes the range holds (sum of its chunks' raw lengths).
    len: u64,
}

/// Cuts chunks of these raw lengths into consecutive ranges of at least
/// [`RANGE_BYTES`] bytes or [`RANGE_CHUNKS`] chunks (the last one may be
/// smaller); offsets are the prefix sums of the lengths.
fn split_ranges(raw_lens: &[u64]) -> Vec<Range> {
    let mut ranges = Vec::new();
    let mut cur = Range {
        start: 0,
        end: 0,
        offset: 0,
        len: 0,
    };
    for (i, &n) in raw_lens.iter().enumerate() {
        cur.end = i + 1;
        cur.len += n;
        if cur.len >= RANGE_BYTES || cur.end - cur.start >= RANGE_CHUNKS {
            let next = Range {
                start: cur.end,
                end: cur.end,
                offset: cur.offset + cur.len,
                len: 0,
            };
            ranges.push(std::mem::replace(&mut cur, next));
        }
    }
    if cur.end > cur.start || ranges.is_empty() {
        ranges.push(cur);
    }
    ranges
}

/// The ranges `chunks` (of a file of `size` bytes) are written in: one for
/// a file too small to be worth splitting (no catalog lookups), else cut
/// by [`split_ranges`] from the raw lengths the catalog records.
fn plan_ranges(reader: &CatalogReader, chunks: &[ChunkId], size: u64) -> Result<Vec<Range>> {
    if size < 2 * RANGE_BYTES && chunks.len() < 2 * RANGE_CHUNKS {
        return Ok(vec![Range {
            start: 0,
            end: chunks.len(),
            offset: 0,
            len: size,
        }]);
    }
    let lens = chunks
        .iter()
        .map(|id| {
            reader
                .blob(&id.0)?
                .map(|loc| u64::from(loc.raw_len))
                .ok_or_else(|| Error::corrupt(format!("chunk {id} is not in the catalog")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(split_ranges(&lens))
}

/// Writes at most this many bytes of small chunks in one `pwrite`.
const WRITE_BATCH: usize = 1 << 20;

/// Reads the chunks of `range` and writes them at its offset, batching
/// small chunks into writes of up to [`WRITE_BATCH`] bytes.
fn write_range(
    w: &FileWriter<'_>,
    file: &fs::File,
    path: &Path,
    chunks: &[ChunkId],
    range: &Range,
    split: bool,
) -> Result<u64> {
    let mut offset = range.offset;
    let mut pending: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<u8>, offset: &mut u64| -> Result<()> {
        file.write_all_at(pending, *offset).at("writing", path)?;
        *offset += pending.len() as u64;
        pending.clear();
        Ok(())
    };
    for id in &chunks[range.start..range.end] {
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
    let written = offset - range.offset;
    // Later ranges were placed by the catalog's raw lengths; chunks that
    // disagree would leave a gap or an overlap.
    if split && written != range.len {
        return Err(Error::corrupt(format!(
            "chunks {}..{} hold {written} bytes, the catalog says {}",
            range.start, range.end, range.len
        )));
    }
    Ok(written)
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
/// A file of many chunks is written as ranges in parallel (`pwrite` at
/// each range's offset); metadata is applied once, after all of them. On
/// any failure the partial file is removed and one error returned.
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
        let ranges = plan_ranges(w.reader, chunks, size)?;
        let written = if let [range] = ranges.as_slice() {
            write_range(w, &file, path, chunks, range, false)?
        } else {
            ranges
                .par_iter()
                .map(|r| write_range(w, &file, path, chunks, r, true))
                .try_reduce(|| 0, |a, b| Ok(a + b))?
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
    fn ranges_cover_every_chunk_at_prefix_sum_offsets() {
        let mib = 1 << 20;
        // 20 chunks of 1 MiB: ranges of 8, 8 and the last 4.
        let r = split_ranges(&[mib; 20]);
        assert_eq!(
            r.iter()
                .map(|r| (r.start, r.end, r.offset, r.len))
                .collect::<Vec<_>>(),
            vec![
                (0, 8, 0, 8 * mib),
                (8, 16, 8 * mib, 8 * mib),
                (16, 20, 16 * mib, 4 * mib)
            ]
        );
        // Many small chunks: cut by count; offsets are the prefix sums.
        let lens: Vec<u64> = (0..600).map(|i| 1000 + i).collect();
        let r = split_ranges(&lens);
        assert_eq!(r.len(), 3);
        for w in r.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert_eq!(w[0].offset + w[0].len, w[1].offset);
        }
        assert_eq!(r[1].offset, lens[..256].iter().sum::<u64>());
        assert_eq!(r[2].end, 600);
        assert_eq!(
            r.iter().map(|r| r.len).sum::<u64>(),
            lens.iter().sum::<u64>()
        );
        // An exact multiple leaves no empty range; no chunks, one empty range.
        assert_eq!(split_ranges(&[8 * mib, 8 * mib]).len(), 2);
        assert_eq!(split_ranges(&[]).len(), 1);
    }
}
