//! The live side of a diff: listing directories with `lstat`, and reading
//! files to chunk them.
//!
//! **Invariants:** files are opened read-only, without following a final
//! symlink and without blocking (a FIFO swapped in never hangs the diff);
//! nothing here writes anywhere.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{DiffWarning, LIVE_TREE, Node};
use crate::chunker::{Chunker, ChunkerParams};
use crate::error::{Error, Result};
use crate::fsmeta::{meta_of, open_source_file, special_kind};
use crate::id::ChunkId;
use crate::model::{Entry, EntryKind};

/// A live file, chunked.
pub(super) struct LiveChunks {
    pub size: u64,
    pub chunks: Vec<ChunkId>,
    /// Raw length of each chunk, in order.
    pub lens: Vec<u64>,
}

/// Makes a live path absolute the way the archiver makes a source path
/// absolute: the parent canonicalized, the last component kept (a symlink is
/// compared as a symlink, not followed).
pub(super) fn absolute(path: &Path) -> Result<PathBuf> {
    let not_found = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::not_found(format!("{} does not exist", path.display()))
        } else {
            Error::io("resolving", path, e)
        }
    };
    let name = path
        .file_name()
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..");
    let abs = match (name, path.parent()) {
        (Some(name), Some(parent)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            fs::canonicalize(parent).map_err(not_found)?.join(name)
        }
        _ => fs::canonicalize(path).map_err(not_found)?,
    };
    fs::symlink_metadata(&abs).map_err(not_found)?;
    Ok(abs)
}

/// The entries of directory `dir` (only those named in `only`, if given),
/// sorted by name. `None`, with a warning, when it cannot be listed.
pub(super) fn list(
    dir: &Path,
    only: Option<&[&[u8]]>,
    repo_dev_ino: Option<(u64, u64)>,
    warnings: &mut Vec<DiffWarning>,
) -> Option<Vec<Node>> {
    let mut found: Vec<(Vec<u8>, PathBuf, fs::Metadata)> = Vec::new();
    if let Some(names) = only {
        for name in names {
            let path = dir.join(OsStr::from_bytes(name));
            match fs::symlink_metadata(&path) {
                Ok(md) => found.push((name.to_vec(), path, md)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn(warnings, &path, &format!("cannot stat: {e}")),
            }
        }
    } else {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                warn(
                    warnings,
                    dir,
                    &format!("cannot list, its contents were not compared: {e}"),
                );
                return None;
            }
        };
        for item in rd {
            let item = match item {
                Ok(i) => i,
                Err(e) => {
                    warn(
                        warnings,
                        dir,
                        &format!("cannot list, its contents were not compared: {e}"),
                    );
                    return None;
                }
            };
            let path = item.path();
            // `DirEntry::metadata` does not follow symlinks.
            match item.metadata() {
                Ok(md) => found.push((item.file_name().into_vec(), path, md)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn(warnings, &path, &format!("cannot stat: {e}")),
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut nodes = Vec::with_capacity(found.len());
    for (name, path, md) in found {
        if md.is_dir() && repo_dev_ino == Some((md.dev(), md.ino())) {
            continue;
        }
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir { tree: LIVE_TREE }
        } else if ft.is_file() {
            EntryKind::File {
                size: md.len(),
                chunks: Vec::new(),
            }
        } else if ft.is_symlink() {
            match fs::read_link(&path) {
                Ok(t) => EntryKind::Symlink {
                    target: t.into_os_string().into_vec(),
                },
                Err(e) => {
                    warn(warnings, &path, &format!("cannot read link: {e}"));
                    continue;
                }
            }
        } else {
            special_kind(&md)
        };
        nodes.push(Node {
            entry: Entry {
                name,
                kind,
                meta: meta_of(&md),
            },
            live: Some(path),
        });
    }
    Some(nodes)
}

fn warn(warnings: &mut Vec<DiffWarning>, path: &Path, message: &str) {
    warnings.push(DiffWarning {
        path: path.to_path_buf(),
        message: message.to_string(),
    });
}

fn open(path: &Path) -> std::io::Result<File> {
    let file = open_source_file(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no longer a regular file",
        ));
    }
    Ok(file)
}

/// Reads and chunks a live file, hashing each batch of chunks in parallel.
pub(super) fn chunk_file(path: &Path, params: ChunkerParams) -> std::io::Result<LiveChunks> {
    let file = open(path)?;
    let hint = usize::try_from(file.metadata()?.len())
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut chunker = Chunker::with_buffer_size(&file, params, hint);
    let mut out = LiveChunks {
        size: 0,
        chunks: Vec::new(),
        lens: Vec::new(),
    };
    loop {
        let batch = chunker.next_batch()?;
        if batch.is_empty() {
            break;
        }
        out.size += batch.data.len() as u64;
        let data = batch.data;
        let ids: Vec<ChunkId> = batch
            .ranges
            .par_iter()
            .map(|r| ChunkId::of(&data[r.clone()]))
            .collect();
        out.chunks.extend(ids);
        out.lens.extend(batch.ranges.iter().map(|r| r.len() as u64));
    }
    Ok(out)
}

/// A live file's content, or `None` when it is longer than `limit` bytes.
pub(super) fn read_limited(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let file = open(path)?;
    let mut out = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    Ok((out.len() as u64 <= limit).then_some(out))
}
