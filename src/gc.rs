//! Garbage collection: drop what no remaining snapshot reaches.
//!
//! ```text
//! mark    every snapshot → its root tree → every tree once → chunk ids
//!         (+ the snapshot record blobs themselves): the live set
//! sweep   blob index grouped by pack: live/dead bytes per pack;
//!         packs on disk the catalog does not know, and files in tmp/
//! act     delete tmp/ files and unknown packs (nothing references them)
//!         copy the live frames of mostly-dead packs into new packs (durable)
//!         ONE catalog commit: drop dead blobs, dead trees, old pack records,
//!                             point copied blobs at the new packs
//!         only then delete the old pack files
//! ```
//!
//! **Invariants:** the caller holds the repository lock exclusively
//! ([`crate::LockMode::Exclusive`]), so no snapshot is running and every pack
//! or temporary file the catalog does not reference is garbage. A pack file
//! is deleted only after the commit that removes every reference to it
//! (docs/FORMAT.md, ordering rule 7), so a crash at any point leaves a
//! catalog whose every blob is in a pack that exists: at worst some garbage
//! stays for the next run. After a collection, every blob in the index is
//! live and no pack holds the record of a removed snapshot (so `repair`
//! cannot bring one back). Memory: the live set holds one 32-byte id per
//! live blob and trees are visited one at a time (shared subtrees once).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::catalog::{CatalogReader, GcBatch, PackRecord};
use crate::codec;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{ObjectId, PackId, TreeId};
use crate::model::EntryKind;
use crate::progress::{NoProgress, Phase, Progress};
use crate::repo::Repository;
use crate::store::pack::{
    GROUP_TARGET_BYTES, PACK_HEADER, PACK_TRAILER_BYTES, PACK_TRAILER_MAGIC, parse_footer,
};
use crate::store::{
    BlobKind, BlobLocation, FinishedPack, FrameBlob, PackStore, PackWriter, STAGED_PACKS_MAX,
    StagedPack,
};

/// Default [`GcOptions::repack_threshold`]: a pack is rewritten once more
/// than this fraction of its bytes is dead.
///
/// 0.1 keeps a collected repository within about 10% of the size of a fresh
/// one holding the same snapshots, at the price of copying up to 9 live
/// bytes per dead byte freed in the worst case; 0.5 copies at most one live
/// byte per byte freed but may leave a repository up to twice its live size.
pub const DEFAULT_REPACK_THRESHOLD: f64 = 0.1;

/// Estimated footer bytes per blob of a new pack, for dry-run figures.
const FOOTER_BYTES_PER_BLOB: u64 = 44;

/// How to collect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcOptions {
    /// Compute and report, change nothing.
    pub dry_run: bool,
    /// Rewrite a pack when more than this fraction (0.0 to 1.0) of its bytes
    /// is dead; 1.0 never rewrites. A pack holding the record of a removed
    /// snapshot is always rewritten, whatever the threshold.
    pub repack_threshold: f64,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            repack_threshold: DEFAULT_REPACK_THRESHOLD,
        }
    }
}

/// What a collection did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcSummary {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Snapshots in the repository (all of them are kept).
    pub snapshots: u64,
    /// Blobs (chunks, trees, snapshot records) reachable from a snapshot.
    pub blobs_live: u64,
    /// Indexed blobs no snapshot reaches; their index entries are dropped.
    pub blobs_dead: u64,
    /// Reachable blobs missing from the index (damage: run `cairn check`).
    pub blobs_missing: u64,
    /// Tree nodes removed from the catalog.
    pub trees_removed: u64,
    /// Pack files present before.
    pub packs_before: u64,
    /// Pack files deleted whole: nothing live, or unknown to the catalog.
    pub packs_deleted: u64,
    /// Packs whose live blobs were copied to new packs, then deleted.
    pub packs_repacked: u64,
    /// New packs written by repacking.
    pub packs_written: u64,
    /// Pack files present after.
    pub packs_after: u64,
    /// Packs with live blobs that are missing or damaged: left alone.
    pub packs_damaged: u64,
    /// Leftover files removed from `tmp/`.
    pub tmp_files_deleted: u64,
    /// Bytes of pack files and `tmp/` files before.
    pub bytes_before: u64,
    /// Bytes freed (`bytes_before - bytes_used`; estimated in a dry run).
    pub bytes_freed: u64,
    /// Bytes of pack files after (estimated in a dry run).
    pub bytes_used: u64,
    /// Encoded bytes of the live blobs.
    pub bytes_live: u64,
    /// Dead bytes left in packs below the repack threshold.
    pub bytes_dead_kept: u64,
}

/// Collects garbage in `repo`.
///
/// The repository MUST have been opened with [`crate::LockMode::Exclusive`]
/// (`Repository::open(path, LockMode::Exclusive, ..)`); unless `dry_run`,
/// this is checked and a repository opened shared is refused with
/// [`ErrorKind::InvalidInput`]. A snapshot holds the lock shared for its
/// whole run, so the two exclude each other.
///
/// # Errors
/// Catalog, I/O and corruption errors (a reachable tree that is missing or
/// damaged stops the collection before anything is deleted).
pub fn collect(repo: &Repository, opts: &GcOptions) -> Result<GcSummary> {
    collect_with(repo, opts, &NoProgress)
}

/// [`collect`], reporting to `progress`: phase `mark` counts the file
/// entries walked (no totals), phase `repack` the packs rewritten, with
/// their count and the live bytes to copy as totals.
///
/// # Errors
/// As [`collect`].
pub fn collect_with(
    repo: &Repository,
    opts: &GcOptions,
    progress: &dyn Progress,
) -> Result<GcSummary> {
    if !(0.0..=1.0).contains(&opts.repack_threshold) {
        return Err(Error::invalid(format!(
            "repack threshold {} is not between 0 and 1",
            opts.repack_threshold
        )));
    }
    if !opts.dry_run {
        ensure_exclusive(repo)?;
    }
    let store = repo.store();
    let reader = repo.catalog().begin_read()?;
    progress.phase(&Phase::new("mark", "files"));
    let marked = mark(&reader, |_| progress.items(1))?;
    let analysis = sweep(&reader, store, &marked)?;

    let mut summary = GcSummary {
        dry_run: opts.dry_run,
        snapshots: marked.snapshots,
        blobs_live: analysis.blobs_live,
        blobs_dead: analysis.dead_blobs.len() as u64,
        blobs_missing: analysis.blobs_missing,
        trees_removed: analysis.dead_trees.len() as u64,
        packs_before: analysis.disk_packs,
        packs_damaged: 0,
        tmp_files_deleted: analysis.tmp_files.len() as u64,
        bytes_before: analysis.disk_bytes + analysis.tmp_bytes(),
        bytes_live: analysis.bytes_live,
        ..GcSummary::default()
    };

    // Decide, pack by pack.
    let mut delete: Vec<PackId> = analysis.leftover_packs.iter().map(|(id, _)| *id).collect();
    let mut freed_whole = analysis.leftover_packs.iter().map(|(_, s)| s).sum::<u64>();
    let mut repack: HashMap<PackId, &PackUsage> = HashMap::new();
    for p in &analysis.packs {
        if p.live_blobs == 0 {
            if p.disk_size.is_some() {
                delete.push(p.id);
                freed_whole += p.disk_size.unwrap_or(0);
            }
        } else if p.damaged() {
            summary.packs_damaged += 1;
        } else if p.dead_snapshot || p.dead_fraction() > opts.repack_threshold {
            repack.insert(p.id, p);
        } else {
            summary.bytes_dead_kept += p.dead_bytes;
        }
    }
    let deleted_whole = delete.len() as u64;

    // The live blobs of the packs to rewrite, in pack and offset order.
    let mut moving: Vec<(ObjectId, BlobLocation)> = Vec::new();
    if !repack.is_empty() {
        reader.for_each_blob(|id, loc| {
            if repack.contains_key(&loc.pack) && marked.live.contains(&id) {
                moving.push((id, loc));
            }
            Ok(())
        })?;
        moving.sort_by_key(|(_, l)| (l.pack, l.offset, l.inner));
    }
    drop(marked);
    drop(reader);

    if opts.dry_run {
        let repacked_bytes: u64 = repack.values().filter_map(|p| p.disk_size).sum();
        let live: u64 = moving.iter().map(|(_, l)| share(l)).sum();
        let target = repo.config().pack_target_bytes;
        let new_packs = if moving.is_empty() {
            0
        } else {
            live.div_ceil(target).max(1)
        };
        let new_bytes = live
            + new_packs * (PACK_HEADER.len() + PACK_TRAILER_BYTES + 1) as u64
            + moving.len() as u64 * FOOTER_BYTES_PER_BLOB;
        summary.packs_deleted = deleted_whole;
        summary.packs_repacked = repack.len() as u64;
        summary.packs_written = new_packs;
        summary.packs_after =
            analysis.disk_packs - deleted_whole - summary.packs_repacked + new_packs;
        summary.bytes_used = analysis.disk_bytes - freed_whole - repacked_bytes + new_bytes;
        summary.bytes_freed = summary.bytes_before.saturating_sub(summary.bytes_used);
        return Ok(summary);
    }

    // 1. Nothing references tmp/ files or packs unknown to the catalog.
    let tmp: Vec<PathBuf> = analysis.tmp_files.iter().map(|(p, _)| p.clone()).collect();
    store.remove_tmp_files(&tmp)?;
    let leftovers: Vec<PackId> = analysis.leftover_packs.iter().map(|(id, _)| *id).collect();
    for id in &leftovers {
        store.remove_pack_unsynced(id)?;
    }
    store.sync_pack_dirs(&leftovers)?;

    // 2. Copy live frames into new, durable packs.
    if !repack.is_empty() {
        let live: u64 = moving.iter().map(|(_, l)| share(l)).sum();
        progress.phase(&Phase::new("repack", "packs").totals(repack.len() as u64, live));
    }
    let copied = copy_live(repo, &moving, &repack, progress)?;
    drop(moving);
    let repacked: Vec<PackId> = repack
        .keys()
        .filter(|id| !copied.skipped.contains(id))
        .copied()
        .collect();
    summary.packs_damaged += copied.skipped.len() as u64;
    for id in &copied.skipped {
        summary.bytes_dead_kept += repack[id].dead_bytes;
    }

    // 3. One commit: after it, nothing references the old packs.
    let new_ids: HashSet<PackId> = copied.packs.iter().map(|p| p.id).collect();
    let mut batch = GcBatch {
        remove_blobs: analysis.dead_blobs,
        remove_trees: analysis.dead_trees,
        ..GcBatch::default()
    };
    batch.remove_packs = analysis
        .packs
        .iter()
        .filter(|p| p.live_blobs == 0)
        .map(|p| p.id)
        .chain(repacked.iter().copied())
        .filter(|id| !new_ids.contains(id))
        .collect();
    for p in &copied.packs {
        batch.packs.push((
            p.id,
            PackRecord {
                size: p.size,
                blobs: u32::try_from(p.entries.len()).unwrap_or(u32::MAX),
            },
        ));
        for e in p.entries.iter().filter(|e| !copied.orphans.contains(&e.id)) {
            batch.blobs.push((e.id, BlobLocation::new(p.id, e)));
        }
    }
    let changes = !batch.remove_blobs.is_empty()
        || !batch.remove_trees.is_empty()
        || !batch.remove_packs.is_empty()
        || !batch.packs.is_empty();
    if changes {
        repo.catalog().apply_gc(&batch)?;
    }

    // 4. Only now may the old pack files go.
    let leftover_set: HashSet<PackId> = leftovers.iter().copied().collect();
    let old: Vec<PackId> = delete
        .iter()
        .filter(|id| !leftover_set.contains(id))
        .chain(repacked.iter())
        .filter(|id| !new_ids.contains(id))
        .copied()
        .collect();
    for id in &old {
        store.remove_pack_unsynced(id)?;
    }
    store.sync_pack_dirs(&old)?;

    let (packs_after, bytes_after) = store
        .list_packs()?
        .iter()
        .fold((0u64, 0u64), |(n, b), (_, s)| (n + 1, b + s));
    summary.packs_deleted = deleted_whole;
    summary.packs_repacked = repacked.len() as u64;
    summary.packs_written = copied.packs.len() as u64;
    summary.packs_after = packs_after;
    summary.bytes_used = bytes_after;
    summary.bytes_freed = summary.bytes_before.saturating_sub(bytes_after);
    Ok(summary)
}

/// Refuses to collect unless this handle holds the repository lock
/// exclusively: only then can no snapshot be running.
fn ensure_exclusive(repo: &Repository) -> Result<()> {
    if repo.lock_mode() == crate::LockMode::Exclusive {
        Ok(())
    } else {
        Err(Error::invalid(
            "garbage collection needs the repository opened with LockMode::Exclusive",
        ))
    }
}

/// The live set: every blob reachable from a snapshot.
pub(crate) struct Marked {
    /// Ids of live chunks, trees and snapshot records.
    pub live: HashSet<ObjectId>,
    /// Reachable tree nodes.
    pub trees: HashSet<TreeId>,
    /// Number of snapshots.
    pub snapshots: u64,
}

/// Walks every snapshot's trees, each distinct tree once, calling
/// `on_file` for every file entry of every distinct tree.
pub(crate) fn mark(reader: &CatalogReader, mut on_file: impl FnMut(&EntryKind)) -> Result<Marked> {
    let mut live = HashSet::new();
    let mut trees = HashSet::new();
    let mut stack: Vec<TreeId> = Vec::new();
    let snapshots = reader.snapshots()?;
    for (id, snap) in &snapshots {
        live.insert(id.0);
        stack.push(snap.tree);
    }
    while let Some(t) = stack.pop() {
        if !trees.insert(t) {
            continue;
        }
        live.insert(t.0);
        let tree = reader.tree(&t)?;
        for e in &tree.entries {
            match &e.kind {
                EntryKind::Dir { tree } if !trees.contains(tree) => stack.push(*tree),
                EntryKind::File { chunks, .. } => {
                    on_file(&e.kind);
                    live.extend(chunks.iter().map(|c| c.0));
                }
                _ => {}
            }
        }
    }
    Ok(Marked {
        live,
        trees,
        snapshots: snapshots.len() as u64,
    })
}

/// What the catalog and the disk say about one referenced pack.
#[derive(Debug, Clone)]
pub(crate) struct PackUsage {
    pub id: PackId,
    /// Size on disk; `None` when the file is missing.
    pub disk_size: Option<u64>,
    /// Bytes between header and footer (frames); `None` when the file is
    /// missing, its size differs from the catalog's record, or its trailer
    /// is damaged.
    pub blob_area: Option<u64>,
    pub live_blobs: u64,
    pub live_bytes: u64,
    /// Frame bytes no live blob uses (the whole file when nothing is live).
    pub dead_bytes: u64,
    /// It holds the record of a removed snapshot.
    pub dead_snapshot: bool,
}

impl PackUsage {
    fn damaged(&self) -> bool {
        self.blob_area.is_none() || self.blob_area.is_some_and(|a| a < self.live_bytes)
    }

    fn dead_fraction(&self) -> f64 {
        match self.disk_size {
            Some(s) if s > 0 => self.dead_bytes as f64 / s as f64,
            _ => 0.0,
        }
    }
}

/// The sweep's findings.
pub(crate) struct Analysis {
    /// Packs the catalog references (pack records and blob locations).
    pub packs: Vec<PackUsage>,
    /// Pack files the catalog does not reference, with their sizes.
    pub leftover_packs: Vec<(PackId, u64)>,
    /// Files in `tmp/`, with their sizes.
    pub tmp_files: Vec<(PathBuf, u64)>,
    /// Indexed blobs no snapshot reaches.
    pub dead_blobs: Vec<ObjectId>,
    /// Tree nodes no snapshot reaches.
    pub dead_trees: Vec<TreeId>,
    pub blobs_live: u64,
    pub blobs_missing: u64,
    pub bytes_live: u64,
    /// Pack files on disk and their total size.
    pub disk_packs: u64,
    pub disk_bytes: u64,
}

impl Analysis {
    pub fn tmp_bytes(&self) -> u64 {
        self.tmp_files.iter().map(|(_, s)| s).sum()
    }

    /// Bytes a collection that rewrote every pack with dead bytes would free.
    pub fn dead_bytes(&self) -> u64 {
        self.tmp_bytes()
            + self.leftover_packs.iter().map(|(_, s)| s).sum::<u64>()
            + self
                .packs
                .iter()
                .filter(|p| p.disk_size.is_some())
                .map(|p| p.dead_bytes)
                .sum::<u64>()
    }
}

/// Groups the blob index by pack, sorting live from dead, and lists the
/// files nothing references.
pub(crate) fn sweep(
    reader: &CatalogReader,
    store: &PackStore,
    marked: &Marked,
) -> Result<Analysis> {
    #[derive(Default)]
    struct Acc {
        live_blobs: u64,
        live_bytes: u64,
        dead_snapshot: bool,
    }
    let mut per_pack: HashMap<PackId, Acc> = HashMap::new();
    let mut dead_blobs = Vec::new();
    let mut blobs_live = 0u64;
    // Live raw bytes of each group frame with a live blob: (pack, offset)
    // → (frame length, frame raw length, live raw length).
    let mut groups: HashMap<(PackId, u64), (u32, u32, u64)> = HashMap::new();
    reader.for_each_blob(|id, loc| {
        let acc = per_pack.entry(loc.pack).or_default();
        if marked.live.contains(&id) {
            acc.live_blobs += 1;
            blobs_live += 1;
            if loc.is_grouped() {
                let g =
                    groups
                        .entry((loc.pack, loc.offset))
                        .or_insert((loc.length, loc.frame_raw, 0));
                g.2 += u64::from(loc.raw_len);
            } else {
                acc.live_bytes += u64::from(loc.length);
            }
        } else {
            acc.dead_snapshot |= loc.kind == BlobKind::Snapshot;
            dead_blobs.push(id);
        }
        Ok(())
    })?;
    for ((pack, _), (length, frame_raw, live_raw)) in groups {
        let live = frame_share(length, frame_raw, live_raw);
        per_pack.entry(pack).or_default().live_bytes += live;
    }
    let bytes_live = per_pack.values().map(|a| a.live_bytes).sum();
    let mut dead_trees = Vec::new();
    reader.for_each_raw_tree(|id, _| {
        // A tree row whose id is live as another blob (a file holding
        // exactly those bytes) stays: the archiver skips storing a tree
        // whose blob is indexed, and would then find no row for it.
        if !marked.trees.contains(&id) && !marked.live.contains(&id.0) {
            dead_trees.push(id);
        }
        Ok(())
    })?;
    let records: HashMap<PackId, PackRecord> = reader.packs()?.into_iter().collect();
    for id in records.keys() {
        per_pack.entry(*id).or_default();
    }
    let on_disk: HashMap<PackId, u64> = store.list_packs()?.into_iter().collect();
    let mut packs = Vec::with_capacity(per_pack.len());
    for (id, acc) in per_pack {
        let disk_size = on_disk.get(&id).copied();
        let record_size = records.get(&id).map(|r| r.size);
        let blob_area = match disk_size {
            Some(size) if record_size.is_none_or(|r| r == size) => {
                blob_area(&store.pack_path(&id), size)
            }
            _ => None,
        };
        let dead_bytes = if acc.live_blobs == 0 {
            disk_size.unwrap_or(0)
        } else {
            blob_area.map_or(0, |a| a.saturating_sub(acc.live_bytes))
        };
        packs.push(PackUsage {
            id,
            disk_size,
            blob_area,
            live_blobs: acc.live_blobs,
            live_bytes: acc.live_bytes,
            dead_bytes,
            dead_snapshot: acc.dead_snapshot,
        });
    }
    packs.sort_by_key(|p| p.id);
    let referenced: HashSet<PackId> = packs.iter().map(|p| p.id).collect();
    let leftover_packs = on_disk
        .iter()
        .filter(|(id, _)| !referenced.contains(id))
        .map(|(id, s)| (*id, *s))
        .collect::<Vec<_>>();
    Ok(Analysis {
        packs,
        leftover_packs,
        tmp_files: store.tmp_files()?,
        dead_blobs,
        dead_trees,
        blobs_live,
        blobs_missing: (marked.live.len() as u64).saturating_sub(blobs_live),
        bytes_live,
        disk_packs: on_disk.len() as u64,
        disk_bytes: on_disk.values().sum(),
    })
}

/// The frame area of the pack at `path` (`size` bytes), from its trailer;
/// `None` when the trailer is damaged or unreadable.
fn blob_area(path: &std::path::Path, size: u64) -> Option<u64> {
    let overhead = (PACK_HEADER.len() + PACK_TRAILER_BYTES) as u64;
    if size < overhead {
        return None;
    }
    let f = File::open(path).ok()?;
    let mut trailer = [0u8; PACK_TRAILER_BYTES];
    f.read_exact_at(&mut trailer, size - PACK_TRAILER_BYTES as u64)
        .ok()?;
    if &trailer[4..] != PACK_TRAILER_MAGIC {
        return None;
    }
    let footer = u64::from(u32::from_le_bytes([
        trailer[0], trailer[1], trailer[2], trailer[3],
    ]));
    size.checked_sub(overhead + footer)
}

/// The part of a frame of `length` bytes, decoding to `frame_raw` bytes,
/// that `raw` of those bytes account for: dead-byte accounting charges each
/// blob its share of the frame in proportion to its raw length.
fn frame_share(length: u32, frame_raw: u32, raw: u64) -> u64 {
    if raw >= u64::from(frame_raw) {
        return u64::from(length);
    }
    // Below 2^32 × 2^32: no overflow.
    u64::from(length) * raw / u64::from(frame_raw)
}

/// A blob's share of its frame's bytes.
fn share(loc: &BlobLocation) -> u64 {
    frame_share(loc.length, loc.frame_raw, u64::from(loc.raw_len))
}

/// New packs holding the copied blobs, and the packs that could not be
/// copied (the pack file did not verify) and are kept as they are.
struct Copied {
    packs: Vec<FinishedPack>,
    skipped: HashSet<PackId>,
    /// Blobs copied from a pack that was then skipped: their copies in the
    /// new packs are not indexed.
    orphans: HashSet<ObjectId>,
}

/// Frames of one pack planned (partly dead ones decoded) at a time, in
/// parallel: bounds repacking's memory to a few decoded frames.
const FRAMES_IN_FLIGHT: usize = 8;

/// What to do with one frame of a pack being rewritten.
enum Move {
    /// Every blob of the frame is live: copy the frame's bytes (this range
    /// of the pack file) as they are.
    Frame {
        range: std::ops::Range<usize>,
        frame_raw: u32,
        blobs: Vec<FrameBlob>,
    },
    /// Some blobs are dead: the live ones, decoded and verified, to regroup.
    Blobs(Vec<(ObjectId, BlobKind, Vec<u8>)>),
}

/// Writes frames into new packs, closing each at the pack target. Closed
/// packs are staged (written, not synced) and made durable in batches
/// ([`PackStore::install_all`]): every one of them is durable in
/// `objects/` before [`Repacker::finish`] returns, and so before the
/// catalog commit that references them.
struct Repacker<'a> {
    store: &'a PackStore,
    target: u64,
    level: i32,
    writer: Option<PackWriter>,
    group: (Vec<FrameBlob>, Vec<u8>),
    /// Full groups waiting to be compressed, several at once in parallel.
    pending: Vec<(Vec<FrameBlob>, Vec<u8>)>,
    staged: Vec<StagedPack>,
    packs: Vec<FinishedPack>,
}

/// Groups compressed together in parallel by the repacker.
const GROUPS_IN_FLIGHT: usize = 4;

impl Repacker<'_> {
    fn add_frame(&mut self, frame: &[u8], frame_raw: u32, blobs: &[FrameBlob]) -> Result<()> {
        let w = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(self.store.new_writer()?),
        };
        w.add_frame(frame, frame_raw, blobs)?;
        if w.len() >= self.target
            && let Some(w) = self.writer.take()
        {
            self.stage(w)?;
        }
        Ok(())
    }

    fn stage(&mut self, w: PackWriter) -> Result<()> {
        self.staged.push(w.finish_staged()?);
        if self.staged.len() >= STAGED_PACKS_MAX {
            let batch = std::mem::take(&mut self.staged);
            self.packs.extend(self.store.install_all(batch)?);
        }
        Ok(())
    }

    /// Adds a live blob of a partly dead frame to the group being formed.
    fn add_blob(&mut self, id: ObjectId, kind: BlobKind, raw: &[u8]) -> Result<()> {
        if !self.group.1.is_empty() && self.group.1.len() + raw.len() > GROUP_TARGET_BYTES {
            self.flush_group()?;
        }
        let too_big = || Error::invalid("group larger than 4 GiB");
        self.group.0.push(FrameBlob {
            id,
            kind,
            inner: u32::try_from(self.group.1.len()).map_err(|_| too_big())?,
            raw_len: u32::try_from(raw.len()).map_err(|_| too_big())?,
        });
        self.group.1.extend_from_slice(raw);
        if self.group.1.len() >= GROUP_TARGET_BYTES {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<()> {
        let group = std::mem::take(&mut self.group);
        if group.0.is_empty() {
            return Ok(());
        }
        self.pending.push(group);
        if self.pending.len() >= GROUPS_IN_FLIGHT {
            self.compress_pending()?;
        }
        Ok(())
    }

    /// Compresses the pending groups in parallel and adds their frames.
    fn compress_pending(&mut self) -> Result<()> {
        use rayon::prelude::*;
        let pending = std::mem::take(&mut self.pending);
        let level = self.level;
        let frames = pending
            .par_iter()
            .map(|(_, data)| codec::encode(data, level))
            .collect::<Vec<_>>();
        for ((blobs, data), frame) in pending.iter().zip(frames) {
            let frame_raw =
                u32::try_from(data.len()).map_err(|_| Error::invalid("group too large"))?;
            self.add_frame(&frame?, frame_raw, blobs)?;
        }
        Ok(())
    }

    /// Closes the last pack and makes every pack durable in `objects/`.
    fn finish(mut self) -> Result<Vec<FinishedPack>> {
        self.flush_group()?;
        self.compress_pending()?;
        if let Some(w) = self.writer.take().filter(|w| !w.is_empty()) {
            self.staged.push(w.finish_staged()?);
        }
        let batch = std::mem::take(&mut self.staged);
        self.packs.extend(self.store.install_all(batch)?);
        Ok(self.packs)
    }
}

/// Copies the live blobs in `moving` (sorted by pack and offset) into new
/// packs. Each pack is read once and verified whole against its id (packs
/// are named by the BLAKE3 of their file), so its frames are exactly what
/// was written: a frame whose blobs are all live is copied as it is,
/// without decoding; the live blobs of a frame that also holds dead ones
/// are decoded, checked against their ids and regrouped into new frames.
/// A pack that does not verify is skipped whole.
fn copy_live(
    repo: &Repository,
    moving: &[(ObjectId, BlobLocation)],
    repack: &HashMap<PackId, &PackUsage>,
    progress: &dyn Progress,
) -> Result<Copied> {
    let store = repo.store();
    let mut out = Repacker {
        store,
        target: repo.config().pack_target_bytes,
        level: repo.config().zstd_level,
        writer: None,
        group: (Vec::new(), Vec::new()),
        pending: Vec::new(),
        staged: Vec::new(),
        packs: Vec::new(),
    };
    let mut skipped = HashSet::new();
    let mut orphans = HashSet::new();
    for group in moving.chunk_by(|a, b| a.1.pack == b.1.pack) {
        let pack = group[0].1.pack;
        debug_assert!(repack.contains_key(&pack));
        progress.items(1);
        progress.bytes(group.iter().map(|(_, l)| share(l)).sum());
        let Some((bytes, plan)) = read_verified(store, pack, group)? else {
            skipped.insert(pack);
            continue;
        };
        // A window of frames at a time: the partly dead ones decoded in
        // parallel, then all handed to the repacker in order.
        let mut copied_ids = Vec::new();
        let mut failed = false;
        for window in plan.chunks(FRAMES_IN_FLIGHT) {
            let moves = {
                use rayon::prelude::*;
                window
                    .par_iter()
                    .map(|(range, in_frame)| plan_frame(&bytes, range.clone(), in_frame))
                    .collect::<Result<Vec<Option<Move>>>>()?
            };
            for m in moves {
                match m {
                    Some(Move::Frame {
                        range,
                        frame_raw,
                        blobs,
                    }) => {
                        copied_ids.extend(blobs.iter().map(|b| b.id));
                        out.add_frame(&bytes[range], frame_raw, &blobs)?;
                    }
                    Some(Move::Blobs(blobs)) => {
                        for (id, kind, raw) in blobs {
                            copied_ids.push(id);
                            out.add_blob(id, kind, &raw)?;
                        }
                    }
                    None => failed = true,
                }
            }
            if failed {
                break;
            }
        }
        if failed {
            // The copies already made stay unreferenced in the new packs
            // (garbage for a later gc); the catalog keeps pointing at the
            // old pack, which is kept whole.
            skipped.insert(pack);
            orphans.extend(copied_ids);
        }
    }
    Ok(Copied {
        packs: out.finish()?,
        skipped,
        orphans,
    })
}

/// Each frame to copy: its byte range in the pack and its live blobs.
type FramePlan<'g> = Vec<(std::ops::Range<usize>, &'g [(ObjectId, BlobLocation)])>;

/// Reads pack `pack` (in one read) and plans the copy of `group`, its live
/// blobs sorted by offset: the pack's bytes and, per frame, its range and
/// live blobs ([`plan_frame`] makes the [`Move`]). `None` when the pack is
/// missing, does not hash to its id, or its footer does not list a blob
/// where the catalog says it is.
fn read_verified<'g>(
    store: &PackStore,
    pack: PackId,
    group: &'g [(ObjectId, BlobLocation)],
) -> Result<Option<(Vec<u8>, FramePlan<'g>)>> {
    let path = store.pack_path(&pack);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading pack", &path, e)),
    };
    if PackId::of(&bytes) != pack {
        return Ok(None);
    }
    // The file is exactly as written, so its footer says truly what each
    // frame holds; the catalog must agree with it.
    let Ok(footer) = parse_footer(&bytes) else {
        return Ok(None);
    };
    // Check every frame against the footer first (cheap); the caller then
    // decodes the partly dead ones.
    let mut plan: FramePlan<'g> = Vec::new();
    for in_frame in group.chunk_by(|a, b| a.1.offset == b.1.offset) {
        let loc = in_frame[0].1;
        let first = footer.partition_point(|e| e.offset < loc.offset);
        let entries = &footer[first..];
        let entries = &entries[..entries.partition_point(|e| e.offset == loc.offset)];
        let listed = |id: &ObjectId, l: &BlobLocation| {
            entries.iter().any(|e| {
                e.id == *id
                    && e.length == l.length
                    && e.frame_raw == l.frame_raw
                    && e.inner == l.inner
                    && e.raw_len == l.raw_len
            })
        };
        if !in_frame.iter().all(|(id, l)| listed(id, l)) {
            return Ok(None);
        }
        let start = usize::try_from(loc.offset).unwrap_or(usize::MAX);
        plan.push((start..start + loc.length as usize, in_frame));
    }
    Ok(Some((bytes, plan)))
}

/// The [`Move`] for one frame (at `range` of the verified pack `bytes`) and
/// its live blobs `in_frame`: copy it when every byte is live, else decode
/// it and check each live blob against its id (`None` when one fails).
fn plan_frame(
    bytes: &[u8],
    range: std::ops::Range<usize>,
    in_frame: &[(ObjectId, BlobLocation)],
) -> Result<Option<Move>> {
    let loc = in_frame[0].1;
    let live_raw: u64 = in_frame.iter().map(|(_, l)| u64::from(l.raw_len)).sum();
    if live_raw == u64::from(loc.frame_raw) {
        let blobs = in_frame
            .iter()
            .map(|(id, l)| FrameBlob {
                id: *id,
                kind: l.kind,
                inner: l.inner,
                raw_len: l.raw_len,
            })
            .collect();
        return Ok(Some(Move::Frame {
            range,
            frame_raw: loc.frame_raw,
            blobs,
        }));
    }
    let decoded = match codec::decode(&bytes[range]) {
        Ok(d) => d,
        Err(e) if e.kind() == ErrorKind::Corrupt => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut blobs = Vec::with_capacity(in_frame.len());
    for (id, l) in in_frame {
        match l.slice(&decoded) {
            Ok(raw) if ObjectId::of(raw) == *id => blobs.push((*id, l.kind, raw.to_vec())),
            _ => return Ok(None),
        }
    }
    Ok(Some(Move::Blobs(blobs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_area_is_the_frames_between_header_and_footer() {
        let dir = tempfile::tempdir().unwrap();
        let (objects, tmp) = (dir.path().join("objects"), dir.path().join("tmp"));
        std::fs::create_dir_all(&objects).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        let store = PackStore::new(objects, tmp);
        let mut w = store.new_writer().unwrap();
        let mut frames = 0u64;
        for b in [&b"one"[..], &[7u8; 5000][..], b""] {
            let frame = codec::encode(b, 3).unwrap();
            frames += frame.len() as u64;
            w.add(ObjectId::of(b), BlobKind::Chunk, b.len() as u32, &frame)
                .unwrap();
        }
        let done = w.finish(&store).unwrap();
        let path = store.pack_path(&done.id);
        assert_eq!(blob_area(&path, done.size), Some(frames));
        // A size that disagrees with the file, or no file: unknown.
        assert_eq!(blob_area(&path, done.size - 1), None);
        assert_eq!(blob_area(&path.with_extension("gone"), done.size), None);
    }

    #[test]
    fn dead_fraction_counts_against_the_whole_file() {
        let p = PackUsage {
            id: PackId::of(b"p"),
            disk_size: Some(1000),
            blob_area: Some(900),
            live_blobs: 3,
            live_bytes: 600,
            dead_bytes: 300,
            dead_snapshot: false,
        };
        assert!((p.dead_fraction() - 0.3).abs() < 1e-12);
        assert!(!p.damaged());
        let missing = PackUsage {
            disk_size: None,
            blob_area: None,
            ..p
        };
        assert!(missing.damaged());
        assert_eq!(missing.dead_fraction(), 0.0);
    }
}
