//! The scan: walks the sources into an in-memory [`ScanNode`] tree, stats
//! every entry, applies excludes, and decides per file whether the parent
//! snapshot's chunk list can be reused (same size, mtime, ctime and inode).
//!
//! Directories are walked in parallel (rayon); entries are sorted by raw
//! name bytes so the trees built from the scan are deterministic.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rayon::prelude::*;

use super::{Ctx, Warning, WarningKind, sqlite};
use crate::error::{Error, Result};
use crate::fsmeta::{meta_of, special_kind};
use crate::id::ChunkId;
use crate::model::{EntryKind, Meta, Tree};

/// A path as its list of names below `/`.
type Names = Vec<Vec<u8>>;

/// One scanned entry.
pub(crate) enum ScanNode {
    Dir {
        name: Vec<u8>,
        meta: Meta,
        children: Vec<ScanNode>,
    },
    File {
        name: Vec<u8>,
        meta: Meta,
        content: FileContent,
    },
    Other {
        name: Vec<u8>,
        meta: Meta,
        kind: EntryKind,
    },
}

/// What is known of a file's content.
pub(crate) enum FileContent {
    /// Unchanged since the parent snapshot: its chunks are reused.
    Reused { size: u64, chunks: Vec<ChunkId> },
    /// Must be read; `new` when the parent did not have it.
    Pending { path: PathBuf, new: bool },
    /// Read during this snapshot (`sqlite`: from a consistent backup).
    Read {
        size: u64,
        chunks: Vec<ChunkId>,
        meta: Meta,
        sqlite: bool,
    },
    /// Could not be read, or vanished: left out of the snapshot.
    Dropped,
}

/// Excludes: `--exclude` globs plus per-directory ignore files.
#[derive(Clone)]
pub(crate) struct Filters {
    excludes: Arc<Gitignore>,
    ignore_file_names: Arc<Vec<String>>,
    stack: Vec<Arc<Gitignore>>,
}

impl Filters {
    pub(crate) fn new(excludes: &[String], ignore_file_names: &[String]) -> Result<Self> {
        let mut b = GitignoreBuilder::new("/");
        for pattern in excludes {
            b.add_line(None, pattern)
                .map_err(|e| Error::invalid(format!("bad --exclude pattern `{pattern}`: {e}")))?;
        }
        let excludes = b
            .build()
            .map_err(|e| Error::invalid(format!("bad --exclude pattern: {e}")))?;
        Ok(Self {
            excludes: Arc::new(excludes),
            ignore_file_names: Arc::new(ignore_file_names.to_vec()),
            stack: Vec::new(),
        })
    }

    fn is_excluded(&self, path: &Path, is_dir: bool) -> bool {
        for m in self.stack.iter().rev() {
            let r = m.matched(path, is_dir);
            if r.is_ignore() {
                return true;
            }
            if r.is_whitelist() {
                return false;
            }
        }
        self.excludes.matched(path, is_dir).is_ignore()
    }

    /// The filters for the children of `dir`, adding its ignore files.
    fn enter(&self, ctx: &Ctx, dir: &Path) -> Self {
        let mut next = self.clone();
        for name in self.ignore_file_names.iter() {
            let file = dir.join(name);
            if !file.is_file() {
                continue;
            }
            let mut b = GitignoreBuilder::new(dir);
            if let Some(e) = b.add(&file) {
                ctx.warn(Warning::new(
                    &file,
                    WarningKind::Skipped,
                    &format!("ignore file: {e}"),
                ));
            }
            match b.build() {
                Ok(g) => next.stack.push(Arc::new(g)),
                Err(e) => {
                    ctx.warn(Warning::new(
                        &file,
                        WarningKind::Skipped,
                        &format!("ignore file: {e}"),
                    ));
                }
            }
        }
        next
    }
}

/// Scans the virtual root `/` down to each source path.
pub(crate) fn scan_root(
    ctx: &Ctx,
    sources: &[Names],
    parent: Option<&Tree>,
    filters: &Filters,
) -> Result<ScanNode> {
    let root = Path::new("/");
    let md = fs::symlink_metadata(root).map_err(|e| Error::io("reading", root, e))?;
    if sources.iter().any(Vec::is_empty) {
        // `/` itself is a source: take everything.
        let filters = filters.enter(ctx, root);
        return Ok(scan_dir(
            ctx,
            root,
            Vec::new(),
            meta_of(&md),
            parent,
            &filters,
        ));
    }
    scan_prefix(
        ctx,
        root,
        Vec::new(),
        meta_of(&md),
        sources,
        parent,
        filters,
    )
}

/// A directory on the way to the sources: only the named children are kept.
fn scan_prefix(
    ctx: &Ctx,
    path: &Path,
    name: Vec<u8>,
    meta: Meta,
    sources: &[Names],
    parent: Option<&Tree>,
    filters: &Filters,
) -> Result<ScanNode> {
    let mut groups: Vec<(Vec<u8>, Vec<Names>)> = Vec::new();
    for s in sources {
        let (first, rest) = s
            .split_first()
            .expect("sources below a prefix are non-empty");
        match groups.iter_mut().find(|(n, _)| n == first) {
            Some((_, v)) => v.push(rest.to_vec()),
            None => groups.push((first.clone(), vec![rest.to_vec()])),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut children = Vec::with_capacity(groups.len());
    for (child, rests) in groups {
        let child_path = path.join(OsStr::from_bytes(&child));
        let md = fs::symlink_metadata(&child_path)
            .map_err(|e| Error::io("reading source path", &child_path, e))?;
        let parent_entry = parent.and_then(|t| t.get(&child));
        if rests.iter().any(Vec::is_empty) {
            // This child is itself a source: take all of it.
            let has_wal = ctx.sqlite_backup && {
                let mut wal = child_path.clone().into_os_string();
                wal.push("-wal");
                fs::symlink_metadata(wal).is_ok()
            };
            if let Some(node) =
                scan_entry(ctx, &child_path, child, &md, parent_entry, filters, has_wal)
            {
                children.push(node);
            }
        } else {
            if !md.is_dir() {
                return Err(Error::invalid(format!(
                    "{} is not a directory",
                    child_path.display()
                )));
            }
            let sub = ctx.subtree(parent_entry);
            children.push(scan_prefix(
                ctx,
                &child_path,
                child,
                meta_of(&md),
                &rests,
                sub.as_ref(),
                filters,
            )?);
        }
    }
    Ok(ScanNode::Dir {
        name,
        meta,
        children,
    })
}

/// One entry of any type; `None` when it is excluded or skipped.
/// `has_wal`: a `NAME-wal` file sits beside it (SQLite capture is on).
fn scan_entry(
    ctx: &Ctx,
    path: &Path,
    name: Vec<u8>,
    md: &fs::Metadata,
    parent: Option<&crate::model::Entry>,
    filters: &Filters,
    has_wal: bool,
) -> Option<ScanNode> {
    let meta = meta_of(md);
    let ft = md.file_type();
    if ft.is_dir() {
        if ctx.is_repository(md) {
            ctx.warn(Warning::new(
                path,
                WarningKind::Skipped,
                "is the repository itself; not included",
            ));
            return None;
        }
        let sub = ctx.subtree(parent);
        return Some(scan_dir(
            ctx,
            path,
            name,
            meta,
            sub.as_ref(),
            &filters.enter(ctx, path),
        ));
    }
    if ft.is_file() {
        let size = md.len();
        let content = match parent.map(|e| (&e.kind, &e.meta)) {
            Some((
                EntryKind::File {
                    size: psize,
                    chunks,
                },
                pmeta,
                // why `!has_wal`: a WAL-mode SQLite database commits into its
                // `-wal` file and leaves the main file's size, mtime and ctime
                // alone until a checkpoint, so its metadata cannot tell that it
                // changed. Such a file is always read (and captured by backup);
                // without a `-wal` everything committed is in the main file, whose
                // metadata then does change on every commit.
            )) if !ctx.force_read
                && !has_wal
                && *psize == size
                && pmeta.mtime_ns == meta.mtime_ns
                && pmeta.ctime_ns == meta.ctime_ns
                && pmeta.inode == meta.inode =>
            {
                FileContent::Reused {
                    size,
                    chunks: chunks.clone(),
                }
            }
            p => FileContent::Pending {
                path: path.to_path_buf(),
                new: !matches!(p, Some((EntryKind::File { .. }, _))),
            },
        };
        ctx.scanned_file(size, matches!(content, FileContent::Pending { .. }));
        return Some(ScanNode::File {
            name,
            meta,
            content,
        });
    }
    let kind = if ft.is_symlink() {
        match fs::read_link(path) {
            Ok(t) => EntryKind::Symlink {
                target: t.into_os_string().into_vec(),
            },
            Err(e) => {
                ctx.unreadable(path, &e);
                return None;
            }
        }
    } else {
        special_kind(md)
    };
    Some(ScanNode::Other { name, meta, kind })
}

fn scan_dir(
    ctx: &Ctx,
    path: &Path,
    name: Vec<u8>,
    meta: Meta,
    parent: Option<&Tree>,
    filters: &Filters,
) -> ScanNode {
    let mut listed: Vec<(Vec<u8>, PathBuf, fs::Metadata)> = Vec::new();
    match fs::read_dir(path) {
        Ok(rd) => {
            for item in rd {
                let item = match item {
                    Ok(i) => i,
                    Err(e) => {
                        ctx.unreadable(path, &e);
                        break;
                    }
                };
                let child = item.path();
                match item.metadata() {
                    Ok(md) => {
                        if filters.is_excluded(&child, md.is_dir()) {
                            continue;
                        }
                        listed.push((item.file_name().into_vec(), child, md));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        ctx.warn(Warning::new(
                            &child,
                            WarningKind::Vanished,
                            "vanished during the walk",
                        ));
                    }
                    Err(e) => ctx.unreadable(&child, &e),
                }
            }
        }
        Err(e) => ctx.unreadable(path, &e),
    }
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let with_wal: Vec<Vec<u8>> = if ctx.sqlite_backup {
        listed
            .iter()
            .filter_map(|(n, _, _)| n.strip_suffix(b"-wal").map(<[u8]>::to_vec))
            .collect()
    } else {
        Vec::new()
    };
    let children: Vec<ScanNode> = listed
        .into_par_iter()
        .filter_map(|(n, child, md)| {
            let p = parent.and_then(|t| t.get(&n));
            let has_wal = with_wal.contains(&n);
            scan_entry(ctx, &child, n, &md, p, filters, has_wal)
        })
        .collect();
    ScanNode::Dir {
        name,
        meta,
        children,
    }
}

/// Every file whose content still has to be read. With `defer_siblings`,
/// files that may be a SQLite database's `-wal`, `-shm` or `-journal` (the
/// database's name is a regular file beside them) are left for later;
/// returns how many were.
pub(crate) fn pending_files<'a>(
    node: &'a mut ScanNode,
    out: &mut Vec<&'a mut FileContent>,
    defer_siblings: bool,
) -> usize {
    let ScanNode::Dir { children, .. } = node else {
        return 0;
    };
    // Only names with a sibling suffix are looked up among the files, so a
    // directory without databases costs no allocation per file.
    let deferred: Vec<bool> = children
        .iter()
        .map(|c| match c {
            ScanNode::File { name, .. } if defer_siblings => {
                sqlite::sibling_of(name).is_some_and(|db| {
                    children
                        .iter()
                        .any(|f| matches!(f, ScanNode::File { name, .. } if name.as_slice() == db))
                })
            }
            _ => false,
        })
        .collect();
    let mut count = 0;
    for (c, deferred) in children.iter_mut().zip(deferred) {
        match c {
            ScanNode::Dir { .. } => count += pending_files(c, out, defer_siblings),
            ScanNode::File { content, .. } if matches!(content, FileContent::Pending { .. }) => {
                if deferred {
                    count += 1;
                } else {
                    out.push(content);
                }
            }
            _ => {}
        }
    }
    count
}

/// Leaves out the `-wal`, `-shm` and `-journal` files of every database
/// captured by backup.
pub(crate) fn drop_captured_siblings(node: &mut ScanNode) {
    let ScanNode::Dir { children, .. } = node else {
        return;
    };
    let captured: Vec<Vec<u8>> = children
        .iter()
        .filter_map(|c| match c {
            ScanNode::File {
                name,
                content: FileContent::Read { sqlite: true, .. },
                ..
            } => Some(name.clone()),
            _ => None,
        })
        .collect();
    if !captured.is_empty() {
        children.retain(|c| match c {
            ScanNode::File { name, .. } => {
                !sqlite::sibling_of(name).is_some_and(|db| captured.iter().any(|f| f == db))
            }
            _ => true,
        });
    }
    for c in children.iter_mut() {
        drop_captured_siblings(c);
    }
}
