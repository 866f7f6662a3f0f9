//! Reading one changed file: stream it through the chunker and hand
//! each batch of chunks to the sink, which hashes, dedups and stores them.
//!
//! A file is opened without following symlinks and without blocking (a FIFO
//! swapped in after the scan must not hang the snapshot), and re-checked
//! after reading: if it changed meanwhile, the stored copy is kept with the
//! metadata seen before reading, so the next snapshot reads it again.

use std::path::Path;

use super::sink::Sink;
use crate::chunker::{Chunker, ChunkerParams};
use crate::error::Error;
use crate::fsmeta::{meta_of, open_source_file};
use crate::id::ChunkId;
use crate::model::Meta;
use crate::store::BlobKind;

/// What reading one file produced.
pub(crate) struct FileRead {
    pub size: u64,
    pub chunks: Vec<ChunkId>,
    pub meta: Meta,
    /// The file changed while it was read.
    pub changed: bool,
}

/// How reading failed.
pub(crate) enum ReadFailure {
    /// It no longer exists (or is no longer a regular file).
    Vanished,
    /// The OS refused (permissions, I/O error): reported, exit code 3.
    Unreadable(std::io::Error),
    /// The repository side failed (disk full…): the snapshot must abort.
    Fatal(Error),
}

pub(crate) fn read_file(
    sink: &Sink<'_>,
    params: ChunkerParams,
    path: &Path,
) -> std::result::Result<FileRead, ReadFailure> {
    let file = match open_source_file(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadFailure::Vanished),
        // ELOOP: replaced by a symlink since the scan.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(ReadFailure::Vanished);
        }
        Err(e) => return Err(ReadFailure::Unreadable(e)),
    };
    let before = file.metadata().map_err(ReadFailure::Unreadable)?;
    if !before.is_file() {
        return Err(ReadFailure::Vanished);
    }
    // +1 so a file that has not grown is seen to end without a second read.
    let hint = usize::try_from(before.len())
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut chunker = Chunker::with_buffer_size(&file, params, hint);
    let mut chunks = Vec::new();
    let mut size = 0u64;
    loop {
        let batch = chunker.next_batch().map_err(ReadFailure::Unreadable)?;
        if batch.is_empty() {
            break;
        }
        size += batch.data.len() as u64;
        let ids = sink
            .store_batch(BlobKind::Chunk, batch.data, &batch.ranges)
            .map_err(ReadFailure::Fatal)?;
        chunks.extend(ids.into_iter().map(ChunkId));
    }
    let after = file.metadata().map_err(ReadFailure::Unreadable)?;
    let (m0, m1) = (meta_of(&before), meta_of(&after));
    let changed = before.len() != after.len()
        || m0.mtime_ns != m1.mtime_ns
        || m0.ctime_ns != m1.ctime_ns
        || size != after.len();
    Ok(FileRead {
        size,
        chunks,
        meta: m0,
        changed,
    })
}
