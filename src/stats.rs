//! Repository statistics: what the snapshots hold, what the packs cost,
//! and how much garbage collection could free.
//!
//! **Invariant:** read-only; runs the same mark and sweep as [`crate::gc`]
//! (so it costs one pass over every distinct tree and the blob index).
//! Opened with a shared lock it may run beside a snapshot: the packs that
//! snapshot has written but not yet committed then count as dead.

use std::collections::HashSet;

use crate::error::Result;
use crate::gc::{mark, sweep};
use crate::model::EntryKind;
use crate::repo::Repository;

/// Figures for one repository.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoStats {
    /// Number of snapshots.
    pub snapshots: u64,
    /// File entries summed over all snapshots (a file kept by ten snapshots
    /// counts ten times).
    pub files: u64,
    /// Distinct file contents across all snapshots (same size and chunks).
    pub files_unique: u64,
    /// Sum of the snapshots' file sizes (`bytes_total`): what restoring
    /// every snapshot would write.
    pub bytes_logical: u64,
    /// Bytes of the pack files on disk: after dedup and compression.
    pub bytes_stored: u64,
    /// `bytes_logical / bytes_stored` (0 when nothing is stored).
    pub dedup_ratio: f64,
    /// Pack files on disk.
    pub packs: u64,
    /// Distinct reachable chunks.
    pub chunks: u64,
    /// Distinct reachable tree nodes.
    pub trees: u64,
    /// Encoded bytes of the reachable blobs.
    pub bytes_live: u64,
    /// Bytes garbage collection could free: dead blobs, packs nothing
    /// references, leftover temporary files.
    pub bytes_dead: u64,
    /// Reachable blobs the index does not know (damage: run `cairn check`).
    pub blobs_missing: u64,
}

/// Computes the statistics of `repo` (any lock mode).
///
/// # Errors
/// Catalog, I/O and corruption errors.
pub fn stats(repo: &Repository) -> Result<RepoStats> {
    let reader = repo.catalog().begin_read()?;
    let mut contents: HashSet<[u8; 32]> = HashSet::new();
    let marked = mark(&reader, |kind| {
        if let EntryKind::File { size, chunks } = kind {
            let mut h = blake3::Hasher::new();
            h.update(&size.to_le_bytes());
            for c in chunks {
                h.update(c.as_bytes());
            }
            contents.insert(*h.finalize().as_bytes());
        }
    })?;
    let analysis = sweep(&reader, repo.store(), &marked)?;
    let mut st = RepoStats {
        snapshots: marked.snapshots,
        files_unique: contents.len() as u64,
        bytes_stored: analysis.disk_bytes,
        packs: analysis.disk_packs,
        trees: marked.trees.len() as u64,
        bytes_live: analysis.bytes_live,
        bytes_dead: analysis.dead_bytes(),
        blobs_missing: analysis.blobs_missing,
        ..RepoStats::default()
    };
    // Snapshot records and trees are in the live set too.
    st.chunks = (marked.live.len() as u64).saturating_sub(st.trees + st.snapshots);
    for (_, s) in reader.snapshots()? {
        let m = &s.summary;
        st.files += m.files_new + m.files_changed + m.files_unchanged;
        st.bytes_logical += m.bytes_total;
    }
    if st.bytes_stored > 0 {
        st.dedup_ratio = st.bytes_logical as f64 / st.bytes_stored as f64;
    }
    Ok(st)
}
