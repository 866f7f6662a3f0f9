//! Comparing two snapshots, or a snapshot with the live file system.
//!
//! ```text
//! scope (source paths ∩ PATH limits) ─► diff_dir: merge-join two sorted listings
//!     equal tree ids ─► skipped without loading
//!     one side only  ─► Added / Removed, then every entry below it
//!     type differs   ─► Type, then the removed and added entries below it
//!     same type      ─► Modified (content) or Metadata (mode, owner, mtime)
//! ```
//!
//! A side is a snapshot (trees from the catalog) or the live file system
//! (`lstat` per entry). Changes come out in path order, comparing paths
//! component by component (as [`std::path::Path`] orders them): a directory
//! comes right before its contents.
//!
//! **Invariants:**
//! - Snapshot against snapshot reads the catalog only, never file contents,
//!   and never loads a pair of trees whose ids are equal: the cost follows the
//!   size of the change, not of the tree.
//! - Against the live side, a file is read only when its size, mtime, ctime or
//!   inode differ from the snapshot's entry; it is then chunked with the
//!   repository's chunker and compared by chunk ids, so a touched but
//!   identical file is a [`ChangeKind::Metadata`] change, never `Modified`.
//!   Live files are opened read-only (`O_NOFOLLOW|O_NONBLOCK`) and nothing is
//!   written to the repository.
//! - The comparison is symmetric: `diff(B, A)` is exactly
//!   [`Change::mirror`] of each change of `diff(A, B)`, in the same order.
//! - Only paths at or below the compared roots are reported: the directories
//!   above a source path (`/`, `/home`…) are a path to it, not its content.
//!
//! Definitions:
//! - *metadata*: mode, uid, gid and mtime. ctime and inode are recorded for
//!   change detection only and never reported.
//! - *modified*: a file whose chunk list differs, a symlink whose target
//!   differs, a device whose number differs.
//! - *type*: the entry kind differs (file, directory, symlink, FIFO, block or
//!   character device, socket). The entry is reported once as
//!   [`ChangeKind::Type`], followed by every entry below the old directory
//!   as removed or below the new one as added, so that mirroring holds.
//! - *chunks that differ*: distinct chunk ids (set semantics) of one side that
//!   the other side's file does not contain, with their raw sizes, which come
//!   from the catalog (or from chunking, for live files).
//!
//! The live walk is sequential and does not apply the excludes the snapshot
//! was taken with (they are not recorded): excluded files show as added. The
//! repository's own directory is skipped, as the archiver skips it.

mod live;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::catalog::CatalogReader;
use crate::chunker::ChunkerParams;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{ChunkId, ObjectId, TreeId};
use crate::model::{Entry, EntryKind, Meta, Snapshot};
use crate::repo::{Repository, locate_in, path_components};

/// The tree id carried by live directories, which have none (all zeros).
pub const LIVE_TREE: TreeId = TreeId(ObjectId([0; 32]));

/// What happened to one path, going from the old side to the new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// Only on the new side.
    Added,
    /// Only on the old side.
    Removed,
    /// Same type, different content (chunks, link target, device number).
    Modified,
    /// Same type and content; mode, owner or mtime differ.
    Metadata,
    /// A different type (file ↔ directory ↔ symlink …).
    Type,
}

impl ChangeKind {
    /// The one-character tag of the text output: `+ - M m T`.
    pub fn letter(self) -> char {
        match self {
            Self::Added => '+',
            Self::Removed => '-',
            Self::Modified => 'M',
            Self::Metadata => 'm',
            Self::Type => 'T',
        }
    }

    /// The name used in JSON: `added`, `removed`, `modified`, `metadata`, `type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Modified => "modified",
            Self::Metadata => "metadata",
            Self::Type => "type",
        }
    }

    /// The same change seen from the other side.
    pub fn mirror(self) -> Self {
        match self {
            Self::Added => Self::Removed,
            Self::Removed => Self::Added,
            k => k,
        }
    }
}

/// One changed path.
///
/// Entries from the live side are built from `lstat`: a live directory
/// carries [`LIVE_TREE`]; a live file carries the chunk list only when it was
/// compared with a snapshot file (the snapshot's list when the stat matched,
/// else the list from reading it), and an empty list otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path, raw bytes.
    pub path: Vec<u8>,
    /// What happened.
    pub kind: ChangeKind,
    /// The entry on the old side, if it has one.
    pub old: Option<Entry>,
    /// The entry on the new side, if it has one.
    pub new: Option<Entry>,
    /// Modified files: distinct chunks of the new file absent from the old one.
    pub chunks_differ: u64,
    /// Modified files: raw bytes of those chunks.
    pub bytes_differ: u64,
    /// Modified files: distinct chunks of the old file absent from the new one.
    pub chunks_dropped: u64,
    /// Modified files: raw bytes of those chunks.
    pub bytes_dropped: u64,
}

impl Change {
    fn new(path: &[u8], kind: ChangeKind, old: Option<Entry>, new: Option<Entry>) -> Self {
        Self {
            path: path.to_vec(),
            kind,
            old,
            new,
            chunks_differ: 0,
            bytes_differ: 0,
            chunks_dropped: 0,
            bytes_dropped: 0,
        }
    }

    /// The same change seen from the other side: old and new swapped.
    pub fn mirror(&self) -> Self {
        Self {
            path: self.path.clone(),
            kind: self.kind.mirror(),
            old: self.new.clone(),
            new: self.old.clone(),
            chunks_differ: self.chunks_dropped,
            bytes_differ: self.bytes_dropped,
            chunks_dropped: self.chunks_differ,
            bytes_dropped: self.bytes_differ,
        }
    }
}

/// One side of a comparison.
#[derive(Debug, Clone)]
pub enum Side<'a> {
    /// A snapshot's tree, read from the catalog.
    Snapshot(&'a Snapshot),
    /// The live file system at these paths (made absolute the way `snapshot`
    /// does: parent canonicalized, last component kept). Each must exist and
    /// be in the snapshot on the other side. Empty: that snapshot's source
    /// paths, which may have disappeared (then everything is removed).
    Live(Vec<PathBuf>),
}

/// Knobs for [`diff`].
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Absolute paths: compare only these subtrees. Empty: all of the roots.
    pub paths: Vec<PathBuf>,
}

/// A live path that could not be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffWarning {
    /// The path at fault.
    pub path: PathBuf,
    /// What happened.
    pub message: String,
}

/// Counts of one comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffSummary {
    /// The absolute paths compared (source paths ∩ limits), sorted.
    pub roots: Vec<Vec<u8>>,
    /// [`ChangeKind::Added`] changes.
    pub added: u64,
    /// [`ChangeKind::Removed`] changes.
    pub removed: u64,
    /// [`ChangeKind::Modified`] changes.
    pub modified: u64,
    /// [`ChangeKind::Metadata`] changes.
    pub metadata: u64,
    /// [`ChangeKind::Type`] changes.
    pub type_changed: u64,
    /// Sizes of the files only on the new side (added, or new side of a type change).
    pub bytes_added: u64,
    /// Sizes of the files only on the old side.
    pub bytes_removed: u64,
    /// Sum of [`Change::bytes_differ`] over modified files.
    pub bytes_changed: u64,
    /// Tree nodes loaded from the catalog.
    pub trees_loaded: u64,
    /// Live files read to compare their chunks.
    pub files_read: u64,
    /// Bytes read from live files.
    pub bytes_read: u64,
    /// Live paths that could not be compared (left out of the changes).
    pub warnings: Vec<DiffWarning>,
}

impl DiffSummary {
    /// Total number of changes.
    pub fn changes(&self) -> u64 {
        self.added + self.removed + self.modified + self.metadata + self.type_changed
    }

    fn count(&mut self, c: &Change) {
        let old = c.old.as_ref().map_or(0, Entry::size);
        let new = c.new.as_ref().map_or(0, Entry::size);
        match c.kind {
            ChangeKind::Added => {
                self.added += 1;
                self.bytes_added += new;
            }
            ChangeKind::Removed => {
                self.removed += 1;
                self.bytes_removed += old;
            }
            ChangeKind::Type => {
                self.type_changed += 1;
                self.bytes_added += new;
                self.bytes_removed += old;
            }
            ChangeKind::Modified => {
                self.modified += 1;
                self.bytes_changed += c.bytes_differ;
            }
            ChangeKind::Metadata => self.metadata += 1,
        }
    }
}

/// Compares `old` with `new`, calling `on_change` for every change in path order.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when both sides are live or a limit lies
/// outside the compared paths; [`ErrorKind::NotFound`] when a live path or a
/// limit is in neither side; catalog and corruption errors; whatever
/// `on_change` returns. Unreadable live files are warnings, not errors.
pub fn diff(
    repo: &Repository,
    old: &Side<'_>,
    new: &Side<'_>,
    opts: &DiffOptions,
    on_change: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<DiffSummary> {
    let reader = repo.catalog().begin_read()?;
    let roots = roots(&reader, old, new)?;
    let scope = limit(&reader, &roots, old, new, &opts.paths)?;
    let mut engine = Engine {
        reader: &reader,
        params: repo.config().chunker,
        repo_dev_ino: std::fs::metadata(repo.root())
            .ok()
            .map(|m| (m.dev(), m.ino())),
        summary: DiffSummary {
            roots: scope.iter().map(|p| join_all(p)).collect(),
            ..DiffSummary::default()
        },
        on_change,
    };
    engine.diff_dir(b"", &top(old), &top(new), Some(&scope))?;
    Ok(engine.summary)
}

/// [`diff`] collecting the changes into a vector.
///
/// # Errors
/// As [`diff`].
pub fn diff_all(
    repo: &Repository,
    old: &Side<'_>,
    new: &Side<'_>,
    opts: &DiffOptions,
) -> Result<(Vec<Change>, DiffSummary)> {
    let mut changes = Vec::new();
    let summary = diff(repo, old, new, opts, &mut |c| {
        changes.push(c);
        Ok(())
    })?;
    Ok((changes, summary))
}

/// Where a file's content is, for [`read_content`] and [`chunk_extents`].
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    /// A file entry of a snapshot.
    Stored(&'a Entry),
    /// A live file, read without following a final symlink.
    Live(&'a Path),
}

/// A file's whole content, or `None` when it is longer than `limit` bytes.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when a stored entry is not a file; I/O and
/// corruption errors.
pub fn read_content(repo: &Repository, src: Content<'_>, limit: u64) -> Result<Option<Vec<u8>>> {
    match src {
        Content::Stored(entry) => {
            if entry.size() > limit {
                return Ok(None);
            }
            let mut out = Vec::new();
            repo.write_file(entry, &mut out)?;
            Ok(Some(out))
        }
        Content::Live(path) => {
            live::read_limited(path, limit).map_err(|e| Error::io("reading", path, e))
        }
    }
}

/// A file's chunks with the byte range each covers, in order.
///
/// Stored files take their chunk sizes from the catalog (no content is
/// read); live files are read and chunked with the repository's chunker.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when a stored entry is not a file;
/// [`ErrorKind::Corrupt`] when a chunk is not in the catalog; I/O errors.
pub fn chunk_extents(repo: &Repository, src: Content<'_>) -> Result<Vec<(ChunkId, Range<u64>)>> {
    let sized: Vec<(ChunkId, u64)> = match src {
        Content::Stored(entry) => {
            let EntryKind::File { chunks, .. } = &entry.kind else {
                return Err(Error::invalid(format!(
                    "{} is not a regular file",
                    String::from_utf8_lossy(&entry.name)
                )));
            };
            let reader = repo.catalog().begin_read()?;
            chunks
                .iter()
                .map(|id| Ok((*id, stored_len(&reader, id)?)))
                .collect::<Result<_>>()?
        }
        Content::Live(path) => {
            let read = live::chunk_file(path, repo.config().chunker)
                .map_err(|e| Error::io("reading", path, e))?;
            read.chunks.into_iter().zip(read.lens).collect()
        }
    };
    let mut pos = 0;
    Ok(sized
        .into_iter()
        .map(|(id, len)| {
            let r = pos..pos + len;
            pos += len;
            (id, r)
        })
        .collect())
}

/// The byte ranges of `this` file covered by chunks `other` does not
/// contain, adjacent ranges merged.
pub fn unique_ranges(
    this: &[(ChunkId, Range<u64>)],
    other: &[(ChunkId, Range<u64>)],
) -> Vec<Range<u64>> {
    let known: HashSet<&ChunkId> = other.iter().map(|(id, _)| id).collect();
    let mut out: Vec<Range<u64>> = Vec::new();
    for (id, r) in this {
        if known.contains(id) {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r.clone()),
        }
    }
    out
}

type Names = Vec<Vec<u8>>;

/// A directory on one side.
#[derive(Debug, Clone)]
enum DirSrc {
    Tree(TreeId),
    Live(PathBuf),
    /// No directory here (absent, or not a directory).
    Empty,
}

/// One listed entry, with its live path when it comes from the file system.
#[derive(Debug)]
struct Node {
    entry: Entry,
    live: Option<PathBuf>,
}

impl Node {
    fn dir(&self) -> DirSrc {
        match (&self.entry.kind, &self.live) {
            (EntryKind::Dir { .. }, Some(p)) => DirSrc::Live(p.clone()),
            (EntryKind::Dir { tree }, None) => DirSrc::Tree(*tree),
            _ => DirSrc::Empty,
        }
    }
}

fn top(side: &Side<'_>) -> DirSrc {
    match side {
        Side::Snapshot(s) => DirSrc::Tree(s.tree),
        Side::Live(_) => DirSrc::Live(PathBuf::from("/")),
    }
}

fn join_all(names: &[Vec<u8>]) -> Vec<u8> {
    if names.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for n in names {
        out.push(b'/');
        out.extend_from_slice(n);
    }
    out
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
    p.extend_from_slice(prefix);
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// Sorted, with paths nested below another removed.
fn normalize(mut paths: Vec<Names>) -> Vec<Names> {
    paths.sort();
    paths.dedup();
    let mut out: Vec<Names> = Vec::new();
    for p in paths {
        if !out.iter().any(|kept| p.starts_with(kept)) {
            out.push(p);
        }
    }
    out
}

fn components(paths: impl IntoIterator<Item = PathBuf>) -> Result<Vec<Names>> {
    paths.into_iter().map(|p| path_components(&p)).collect()
}

/// The compared roots: source paths of both snapshots, or the live paths.
fn roots(reader: &CatalogReader, old: &Side<'_>, new: &Side<'_>) -> Result<Vec<Names>> {
    let bytes_to_path = |p: &Vec<u8>| as_path(p).to_path_buf();
    let roots = match (old, new) {
        (Side::Snapshot(a), Side::Snapshot(b)) => {
            components(a.paths.iter().chain(&b.paths).map(bytes_to_path))?
        }
        (Side::Snapshot(s), Side::Live(paths)) | (Side::Live(paths), Side::Snapshot(s)) => {
            if paths.is_empty() {
                components(s.paths.iter().map(bytes_to_path))?
            } else {
                let mut out = Vec::new();
                for p in paths {
                    let abs = live::absolute(p)?;
                    if let Err(e) = locate_in(reader, s.tree, &abs) {
                        if e.kind() == ErrorKind::NotFound {
                            return Err(Error::not_found(format!(
                                "the snapshot does not contain {} (it holds {})",
                                abs.display(),
                                list_paths(&s.paths)
                            )));
                        }
                        return Err(e);
                    }
                    out.push(path_components(&abs)?);
                }
                out
            }
        }
        (Side::Live(_), Side::Live(_)) => {
            return Err(Error::invalid(
                "cannot compare two live folders: at least one side must be a snapshot",
            ));
        }
    };
    Ok(normalize(roots))
}

fn list_paths(paths: &[Vec<u8>]) -> String {
    paths
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether absolute `path` exists on `side`.
fn exists_on(reader: &CatalogReader, side: &Side<'_>, path: &Path) -> Result<bool> {
    match side {
        Side::Snapshot(s) => match locate_in(reader, s.tree, path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        },
        Side::Live(_) => Ok(std::fs::symlink_metadata(path).is_ok()),
    }
}

/// The roots narrowed to the limits.
fn limit(
    reader: &CatalogReader,
    roots: &[Names],
    old: &Side<'_>,
    new: &Side<'_>,
    limits: &[PathBuf],
) -> Result<Vec<Names>> {
    if limits.is_empty() {
        return Ok(roots.to_vec());
    }
    let mut out = Vec::new();
    for l in limits {
        let names = path_components(l)?;
        if roots.iter().any(|r| names.starts_with(r)) {
            if !exists_on(reader, old, l)? && !exists_on(reader, new, l)? {
                return Err(Error::not_found(format!(
                    "{} is on neither side of the comparison",
                    l.display()
                )));
            }
            out.push(names);
        } else {
            let below: Vec<&Names> = roots.iter().filter(|r| r.starts_with(&names)).collect();
            if below.is_empty() {
                let shown: Vec<Vec<u8>> = roots.iter().map(|r| join_all(r)).collect();
                return Err(Error::invalid(format!(
                    "{} is outside the compared paths ({})",
                    l.display(),
                    list_paths(&shown)
                )));
            }
            out.extend(below.into_iter().cloned());
        }
    }
    Ok(normalize(out))
}

/// Groups scope paths by their first name, sorted; rests may be empty.
fn group(scope: &[Names]) -> Vec<(Vec<u8>, Vec<Names>)> {
    let mut groups: Vec<(Vec<u8>, Vec<Names>)> = Vec::new();
    for s in scope {
        let Some((first, rest)) = s.split_first() else {
            continue;
        };
        match groups.iter_mut().find(|(n, _)| n == first) {
            Some((_, v)) => v.push(rest.to_vec()),
            None => groups.push((first.clone(), vec![rest.to_vec()])),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    groups
}

/// The kind of an entry, ignoring its content.
fn type_key(e: &Entry) -> char {
    e.type_char()
}

fn meta_differs(a: &Meta, b: &Meta) -> bool {
    a.mode != b.mode || a.uid != b.uid || a.gid != b.gid || a.mtime_ns != b.mtime_ns
}

fn stored_len(reader: &CatalogReader, id: &ChunkId) -> Result<u64> {
    reader
        .blob(&id.0)?
        .map(|loc| u64::from(loc.raw_len))
        .ok_or_else(|| Error::corrupt(format!("chunk {id} is not in the catalog")))
}

struct Engine<'a> {
    reader: &'a CatalogReader,
    params: ChunkerParams,
    repo_dev_ino: Option<(u64, u64)>,
    summary: DiffSummary,
    on_change: &'a mut dyn FnMut(Change) -> Result<()>,
}

impl Engine<'_> {
    fn emit(&mut self, change: Change) -> Result<()> {
        self.summary.count(&change);
        (self.on_change)(change)
    }

    /// A directory's entries (only those named in `only`, if given), sorted
    /// by name; `None` when a live directory cannot be listed.
    fn list(&mut self, dir: &DirSrc, only: Option<&[&[u8]]>) -> Result<Option<Vec<Node>>> {
        match dir {
            DirSrc::Empty => Ok(Some(Vec::new())),
            DirSrc::Tree(id) => {
                self.summary.trees_loaded += 1;
                let tree = self.reader.tree(id)?;
                let keep = |e: &Entry| only.is_none_or(|names| names.contains(&e.name.as_slice()));
                Ok(Some(
                    tree.entries
                        .into_iter()
                        .filter(keep)
                        .map(|entry| Node { entry, live: None })
                        .collect(),
                ))
            }
            DirSrc::Live(path) => Ok(live::list(
                path,
                only,
                self.repo_dev_ino,
                &mut self.summary.warnings,
            )),
        }
    }

    fn diff_dir(
        &mut self,
        prefix: &[u8],
        old: &DirSrc,
        new: &DirSrc,
        scope: Option<&[Names]>,
    ) -> Result<()> {
        match (old, new) {
            (DirSrc::Tree(a), DirSrc::Tree(b)) if a == b => return Ok(()),
            (DirSrc::Empty, DirSrc::Empty) => return Ok(()),
            _ => {}
        }
        // A root at this very directory (`/` as a source path) takes all of it.
        let scope = scope.filter(|s| !s.iter().any(Vec::is_empty));
        let Some(scope) = scope else {
            let (Some(a), Some(b)) = (self.list(old, None)?, self.list(new, None)?) else {
                return Ok(());
            };
            return self.merge(prefix, a, b);
        };
        let groups = group(scope);
        let names: Vec<&[u8]> = groups.iter().map(|(n, _)| n.as_slice()).collect();
        let (Some(a), Some(b)) = (self.list(old, Some(&names))?, self.list(new, Some(&names))?)
        else {
            return Ok(());
        };
        let mut a: HashMap<Vec<u8>, Node> =
            a.into_iter().map(|n| (n.entry.name.clone(), n)).collect();
        let mut b: HashMap<Vec<u8>, Node> =
            b.into_iter().map(|n| (n.entry.name.clone(), n)).collect();
        for (name, rests) in &groups {
            let (x, y) = (a.remove(name), b.remove(name));
            let path = join(prefix, name);
            if rests.iter().any(Vec::is_empty) {
                self.entry(&path, x, y)?;
            } else {
                let dir = |n: &Option<Node>| n.as_ref().map_or(DirSrc::Empty, Node::dir);
                self.diff_dir(&path, &dir(&x), &dir(&y), Some(rests))?;
            }
        }
        Ok(())
    }

    /// The merge-join of two sorted listings.
    fn merge(&mut self, prefix: &[u8], a: Vec<Node>, b: Vec<Node>) -> Result<()> {
        let mut a = a.into_iter().peekable();
        let mut b = b.into_iter().peekable();
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => return Ok(()),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => x.entry.name.cmp(&y.entry.name),
            };
            let (x, y) = match order {
                std::cmp::Ordering::Less => (a.next(), None),
                std::cmp::Ordering::Greater => (None, b.next()),
                std::cmp::Ordering::Equal => (a.next(), b.next()),
            };
            let name = x.as_ref().or(y.as_ref()).map(|n| n.entry.name.clone());
            if let Some(name) = name {
                self.entry(&join(prefix, &name), x, y)?;
            }
        }
    }

    fn entry(&mut self, path: &[u8], x: Option<Node>, y: Option<Node>) -> Result<()> {
        match (x, y) {
            (None, None) => Ok(()),
            (Some(x), None) => {
                let dir = x.dir();
                self.emit(Change::new(path, ChangeKind::Removed, Some(x.entry), None))?;
                self.subtree(path, &dir, ChangeKind::Removed)
            }
            (None, Some(y)) => {
                let dir = y.dir();
                self.emit(Change::new(path, ChangeKind::Added, None, Some(y.entry)))?;
                self.subtree(path, &dir, ChangeKind::Added)
            }
            (Some(x), Some(y)) => self.compare(path, x, y),
        }
    }

    /// Every entry below a directory that exists on one side only.
    fn subtree(&mut self, prefix: &[u8], dir: &DirSrc, kind: ChangeKind) -> Result<()> {
        if matches!(dir, DirSrc::Empty) {
            return Ok(());
        }
        let Some(nodes) = self.list(dir, None)? else {
            return Ok(());
        };
        for node in nodes {
            let path = join(prefix, &node.entry.name);
            let sub = node.dir();
            let change = if kind == ChangeKind::Added {
                Change::new(&path, kind, None, Some(node.entry))
            } else {
                Change::new(&path, kind, Some(node.entry), None)
            };
            self.emit(change)?;
            self.subtree(&path, &sub, kind)?;
        }
        Ok(())
    }

    fn compare(&mut self, path: &[u8], x: Node, y: Node) -> Result<()> {
        if type_key(&x.entry) != type_key(&y.entry) {
            let (dx, dy) = (x.dir(), y.dir());
            self.emit(Change::new(
                path,
                ChangeKind::Type,
                Some(x.entry),
                Some(y.entry),
            ))?;
            self.subtree(path, &dx, ChangeKind::Removed)?;
            return self.subtree(path, &dy, ChangeKind::Added);
        }
        let content_differs = match (&x.entry.kind, &y.entry.kind) {
            (EntryKind::Dir { .. }, EntryKind::Dir { .. }) => {
                let (dx, dy) = (x.dir(), y.dir());
                if meta_differs(&x.entry.meta, &y.entry.meta) {
                    self.emit(Change::new(
                        path,
                        ChangeKind::Metadata,
                        Some(x.entry),
                        Some(y.entry),
                    ))?;
                }
                return self.diff_dir(path, &dx, &dy, None);
            }
            (EntryKind::File { .. }, EntryKind::File { .. }) => {
                return self.compare_files(path, x, y);
            }
            (EntryKind::Symlink { target: a }, EntryKind::Symlink { target: b }) => a != b,
            (EntryKind::Device { rdev: a, .. }, EntryKind::Device { rdev: b, .. }) => a != b,
            _ => false,
        };
        let kind = if content_differs {
            ChangeKind::Modified
        } else if meta_differs(&x.entry.meta, &y.entry.meta) {
            ChangeKind::Metadata
        } else {
            return Ok(());
        };
        self.emit(Change::new(path, kind, Some(x.entry), Some(y.entry)))
    }

    fn compare_files(&mut self, path: &[u8], mut x: Node, mut y: Node) -> Result<()> {
        let mut lens = HashMap::new();
        if x.live.is_some() && !self.resolve_live(&mut x, &y.entry, &mut lens) {
            return Ok(());
        }
        if y.live.is_some() && !self.resolve_live(&mut y, &x.entry, &mut lens) {
            return Ok(());
        }
        let (EntryKind::File { chunks: a, .. }, EntryKind::File { chunks: b, .. }) =
            (&x.entry.kind, &y.entry.kind)
        else {
            unreachable!("compare_files is called on two files")
        };
        if a == b {
            if meta_differs(&x.entry.meta, &y.entry.meta) {
                return self.emit(Change::new(
                    path,
                    ChangeKind::Metadata,
                    Some(x.entry),
                    Some(y.entry),
                ));
            }
            return Ok(());
        }
        let (set_a, set_b): (HashSet<ChunkId>, HashSet<ChunkId>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        let mut change = Change::new(path, ChangeKind::Modified, None, None);
        for id in set_b.difference(&set_a) {
            change.chunks_differ += 1;
            change.bytes_differ += self.chunk_len(id, &lens)?;
        }
        for id in set_a.difference(&set_b) {
            change.chunks_dropped += 1;
            change.bytes_dropped += self.chunk_len(id, &lens)?;
        }
        change.old = Some(x.entry);
        change.new = Some(y.entry);
        self.emit(change)
    }

    fn chunk_len(&self, id: &ChunkId, lens: &HashMap<ChunkId, u64>) -> Result<u64> {
        match lens.get(id) {
            Some(len) => Ok(*len),
            None => stored_len(self.reader, id),
        }
    }

    /// Fills a live file's chunk list: the other side's when the stat
    /// matches, else by reading it. False (with a warning) when unreadable.
    fn resolve_live(
        &mut self,
        node: &mut Node,
        other: &Entry,
        lens: &mut HashMap<ChunkId, u64>,
    ) -> bool {
        let Some(path) = node.live.clone() else {
            return true;
        };
        let meta = node.entry.meta;
        let EntryKind::File { size, chunks } = &mut node.entry.kind else {
            return true;
        };
        if let EntryKind::File {
            size: other_size,
            chunks: other_chunks,
        } = &other.kind
            && *other_size == *size
            && other.meta.mtime_ns == meta.mtime_ns
            && other.meta.ctime_ns == meta.ctime_ns
            && other.meta.inode == meta.inode
        {
            chunks.clone_from(other_chunks);
            return true;
        }
        match live::chunk_file(&path, self.params) {
            Ok(read) => {
                self.summary.files_read += 1;
                self.summary.bytes_read += read.size;
                *size = read.size;
                lens.extend(read.chunks.iter().copied().zip(read.lens.iter().copied()));
                *chunks = read.chunks;
                true
            }
            Err(e) => {
                self.summary.warnings.push(DiffWarning {
                    path,
                    message: format!("cannot read to compare: {e}"),
                });
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InitOptions;
    use crate::catalog::CommitBatch;
    use crate::id::PackId;
    use crate::model::{SnapshotSummary, Tree};
    use crate::store::{BlobKind, BlobLocation};

    fn file(name: &str, content: &[u8]) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            kind: EntryKind::File {
                size: content.len() as u64,
                chunks: vec![ChunkId::of(content)],
            },
            meta: Meta {
                mode: 0o644,
                ..Meta::default()
            },
        }
    }

    fn dir(name: &str, tree: TreeId) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            kind: EntryKind::Dir { tree },
            meta: Meta {
                mode: 0o755,
                ..Meta::default()
            },
        }
    }

    fn snapshot(tree: TreeId) -> Snapshot {
        Snapshot {
            time_ns: 0,
            tree,
            paths: vec![b"/src".to_vec()],
            host: String::new(),
            username: String::new(),
            tags: Vec::new(),
            message: String::new(),
            parent: None,
            summary: SnapshotSummary::default(),
            program_version: String::new(),
        }
    }

    /// Commits trees `/ → src → entries` and returns the snapshot.
    fn commit(repo: &Repository, entries: Vec<Entry>, batch: &mut CommitBatch) -> Snapshot {
        let (src, bytes) = Tree { entries }.encode_with_id().unwrap();
        batch.trees.push((src, bytes));
        let (root, bytes) = Tree {
            entries: vec![dir("src", src)],
        }
        .encode_with_id()
        .unwrap();
        batch.trees.push((root, bytes));
        repo.catalog().commit(batch).unwrap();
        snapshot(root)
    }

    fn chunk_location(batch: &mut CommitBatch, content: &[u8]) {
        batch.blobs.push((
            ObjectId::of(content),
            BlobLocation {
                pack: PackId::from([7; 32]),
                kind: BlobKind::Chunk,
                offset: 0,
                length: 1,
                frame_raw: u32::try_from(content.len()).unwrap(),
                inner: 0,
                raw_len: u32::try_from(content.len()).unwrap(),
            },
        ));
    }

    #[test]
    fn equal_subtrees_are_never_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(&tmp.path().join("repo"), &InitOptions::default()).unwrap();
        // `big` points at trees that are not in the catalog at all: loading
        // either would fail with "missing from the catalog".
        let shared = TreeId::of(b"never stored");
        let other = TreeId::of(b"never stored either");
        let mut batch = CommitBatch::default();
        chunk_location(&mut batch, b"one");
        chunk_location(&mut batch, b"two!");
        let a = commit(
            &repo,
            vec![dir("big", shared), file("f", b"one")],
            &mut batch,
        );
        let b = commit(
            &repo,
            vec![dir("big", shared), file("f", b"two!")],
            &mut CommitBatch::default(),
        );
        let (changes, summary) = diff_all(
            &repo,
            &Side::Snapshot(&a),
            &Side::Snapshot(&b),
            &DiffOptions::default(),
        )
        .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, b"/src/f");
        assert_eq!(changes[0].kind, ChangeKind::Modified);
        assert_eq!((changes[0].chunks_differ, changes[0].bytes_differ), (1, 4));
        assert_eq!(
            (changes[0].chunks_dropped, changes[0].bytes_dropped),
            (1, 3)
        );
        // Two roots and two `src` nodes; `big` on neither side.
        assert_eq!(summary.trees_loaded, 4);

        // The control: when the ids differ, the diff does descend (and so
        // would have failed above had it descended into `shared`).
        let c = commit(
            &repo,
            vec![dir("big", other), file("f", b"one")],
            &mut CommitBatch::default(),
        );
        let err = diff_all(
            &repo,
            &Side::Snapshot(&a),
            &Side::Snapshot(&c),
            &DiffOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    }

    #[test]
    fn identical_snapshots_load_only_the_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(&tmp.path().join("repo"), &InitOptions::default()).unwrap();
        let mut batch = CommitBatch::default();
        let a = commit(&repo, vec![file("f", b"x")], &mut batch);
        let (changes, summary) = diff_all(
            &repo,
            &Side::Snapshot(&a),
            &Side::Snapshot(&a),
            &DiffOptions::default(),
        )
        .unwrap();
        assert!(changes.is_empty());
        assert_eq!(summary.trees_loaded, 0);
    }

    #[test]
    fn a_source_path_of_slash_compares_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(&tmp.path().join("repo"), &InitOptions::default()).unwrap();
        let mut a = commit(&repo, vec![file("f", b"x")], &mut CommitBatch::default());
        let mut b = commit(&repo, vec![], &mut CommitBatch::default());
        a.paths = vec![b"/".to_vec()];
        b.paths = vec![b"/".to_vec()];
        let (changes, summary) = diff_all(
            &repo,
            &Side::Snapshot(&a),
            &Side::Snapshot(&b),
            &DiffOptions::default(),
        )
        .unwrap();
        let got: Vec<_> = changes
            .iter()
            .map(|c| (c.kind, c.path.as_slice()))
            .collect();
        assert_eq!(got, vec![(ChangeKind::Removed, &b"/src/f"[..])]);
        assert_eq!(summary.roots, vec![b"/".to_vec()]);
    }

    #[test]
    fn unique_ranges_merge_adjacent_chunks() {
        let id = |n: u8| ChunkId::from([n; 32]);
        let old = vec![(id(1), 0..10), (id(2), 10..20), (id(3), 20..30)];
        let new = vec![
            (id(1), 0..10),
            (id(4), 10..15),
            (id(5), 15..40),
            (id(3), 40..50),
            (id(6), 50..55),
        ];
        assert_eq!(unique_ranges(&new, &old), vec![10..40, 50..55]);
        assert_eq!(unique_ranges(&old, &new), vec![10..20]);
        assert!(unique_ranges(&old, &old).is_empty());
    }

    #[test]
    fn mirror_swaps_sides_and_counts() {
        let mut c = Change::new(b"/x", ChangeKind::Added, None, Some(file("x", b"1")));
        c.chunks_differ = 3;
        c.bytes_dropped = 9;
        let m = c.mirror();
        assert_eq!(m.kind, ChangeKind::Removed);
        assert_eq!((m.old.is_some(), m.new.is_none()), (true, true));
        assert_eq!((m.chunks_dropped, m.bytes_differ), (3, 9));
        assert_eq!(m.mirror(), c);
    }
}
