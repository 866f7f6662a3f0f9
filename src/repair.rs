//! `repair`: rebuilds the catalog from the packs.
//!
//! The blob index and pack records are always rebuilt from the pack
//! footers. When the old catalog opens and reads cleanly, its snapshots and
//! trees are kept (so snapshots removed by `forget` stay removed) and tree
//! blobs found in the packs are added; when it is missing or damaged, the
//! snapshots and trees are rebuilt from the tree and snapshot blobs in the
//! packs alone, and the damaged file is kept as `catalog.redb.damaged-<unix
//! seconds>`.
//!
//! **Invariants:** repair holds the repository lock exclusively. The new
//! catalog is built in `tmp/`, fsynced, and renamed over `catalog.redb` in
//! one step, so an interrupted repair leaves the old catalog in place. Packs
//! are never modified or deleted.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::PathBuf;

use crate::catalog::{Catalog, CommitBatch, PackRecord};
use crate::check::{self, CheckOptions, CheckReport, open_catalog};
use crate::codec;
use crate::error::{Error, IoContext, Result};
use crate::id::{ObjectId, PackId, SnapshotId, TreeId};
use crate::model::{Snapshot, Tree};
use crate::repo::RawRepository;
use crate::store::pack::{frames, parse_footer, slice_blob};
use crate::store::{BlobKind, BlobLocation, PackEntry, sync_dir};

/// Packs per catalog commit while rebuilding.
const PACKS_PER_COMMIT: usize = 32;
/// Tree records per commit when copying from the old catalog.
const TREES_PER_COMMIT: usize = 10_000;

/// What `repair` should do.
#[derive(Debug, Clone, Copy, Default)]
pub struct RepairOptions {
    /// Decode and re-hash every blob, and leave damaged ones out of the
    /// index, so that the next snapshot of an affected file stores its
    /// content again instead of deduplicating against the damaged copy.
    pub read_data: bool,
}

/// What `repair` did and what it could not recover.
#[derive(Debug, Clone)]
pub struct RepairReport {
    /// Why the old catalog was not usable, when it was not (then the
    /// snapshots and trees were rebuilt from the packs).
    pub catalog_error: Option<String>,
    /// Where the damaged catalog was kept.
    pub damaged_catalog: Option<PathBuf>,
    /// Packs indexed.
    pub packs: usize,
    /// Blob locations indexed.
    pub blobs: u64,
    /// Tree records in the new catalog.
    pub trees: u64,
    /// Snapshot records in the new catalog.
    pub snapshots: usize,
    /// Packs whose footer could not be read: id and why. Their blobs are lost.
    pub unreadable_packs: Vec<(PackId, String)>,
    /// Tree and snapshot records the catalog held but no pack did, written
    /// to a new pack so the catalog can again be rebuilt from the packs.
    pub copies_restored: u64,
    /// With `read_data`: blobs that did not verify and were left out of
    /// the index (id and why).
    pub damaged_blobs: Vec<(ObjectId, String)>,
    /// Tree or snapshot blobs that did not decode or verify: id and why.
    pub bad_records: Vec<(ObjectId, String)>,
    /// A check of the new catalog (without reading data): the snapshots and
    /// paths that could not be recovered.
    pub after: CheckReport,
}

impl RepairReport {
    /// True when everything referenced could be recovered.
    pub fn is_complete(&self) -> bool {
        self.unreadable_packs.is_empty()
            && self.damaged_blobs.is_empty()
            && self.bad_records.is_empty()
            && self.after.is_ok()
    }
}

/// What the old catalog still holds, when it is healthy.
struct OldCatalog {
    catalog: Catalog,
}

fn open_old(repo: &RawRepository) -> std::result::Result<OldCatalog, String> {
    let catalog = open_catalog(&repo.catalog_path()).map_err(|e| {
        // The advice to run repair is moot here.
        let msg = e.to_string();
        msg.split("; run `cairn repair`")
            .next()
            .unwrap_or(&msg)
            .to_string()
    })?;
    // Read everything we will copy once, so a damaged page shows now.
    let read = (|| -> Result<()> {
        let r = catalog.begin_read()?;
        for (id, bytes) in r.raw_snapshots()? {
            if SnapshotId::of(&bytes) != id {
                return Err(Error::corrupt(format!(
                    "snapshot record {id} does not match its hash"
                )));
            }
            Snapshot::decode(&bytes)?;
        }
        r.for_each_raw_tree(|_, _| Ok(()))?;
        r.packs()?;
        Ok(())
    })();
    match read {
        Ok(()) => Ok(OldCatalog { catalog }),
        Err(e) => Err(format!(
            "{} is damaged ({})",
            repo.catalog_path().display(),
            crate::error::error_chain(&e)
        )),
    }
}

/// Rebuilds the catalog of `repo` (which must be locked exclusively).
///
/// # Errors
/// I/O and catalog errors while building or installing the new catalog; the
/// old catalog is then untouched.
pub fn repair(repo: &RawRepository, opts: &RepairOptions) -> Result<RepairReport> {
    let old = open_old(repo);
    let catalog_error = old.as_ref().err().cloned();
    let rebuild_all = old.is_err();

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp_path = repo.tmp_dir().join(format!(
        "catalog-repair-{}-{nanos}.redb",
        std::process::id()
    ));
    let result = build(repo, opts, old.ok(), rebuild_all, &tmp_path);
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
    };
    report.catalog_error = catalog_error;

    // Install: keep the damaged file, then one rename puts the new one in place.
    let dest = repo.catalog_path();
    if rebuild_all && dest.exists() {
        let secs = nanos / 1_000_000_000;
        let mut keep = repo.root().join(format!("catalog.redb.damaged-{secs}"));
        let mut n = 1;
        while keep.exists() {
            keep = repo.root().join(format!("catalog.redb.damaged-{secs}-{n}"));
            n += 1;
        }
        fs::hard_link(&dest, &keep).at("keeping the damaged catalog as", &keep)?;
        report.damaged_catalog = Some(keep);
    }
    File::open(&tmp_path)
        .and_then(|f| f.sync_all())
        .at("syncing", &tmp_path)?;
    fs::rename(&tmp_path, &dest).at("installing the rebuilt catalog at", &dest)?;
    sync_dir(repo.root())?;

    report.after = check::check(repo, &CheckOptions::default())?;
    Ok(report)
}

fn build(
    repo: &RawRepository,
    opts: &RepairOptions,
    old: Option<OldCatalog>,
    rebuild_all: bool,
    tmp_path: &std::path::Path,
) -> Result<RepairReport> {
    let _ = fs::remove_file(tmp_path);
    let new = Catalog::create(tmp_path)?;
    let mut report = RepairReport {
        catalog_error: None,
        damaged_catalog: None,
        packs: 0,
        blobs: 0,
        trees: 0,
        snapshots: 0,
        unreadable_packs: Vec::new(),
        copies_restored: 0,
        damaged_blobs: Vec::new(),
        bad_records: Vec::new(),
        after: CheckReport::default(),
    };
    let mut seen_trees: HashSet<TreeId> = HashSet::new();
    let mut seen_snaps: HashSet<SnapshotId> = HashSet::new();
    // Tree and snapshot blobs found in the packs.
    let mut in_packs: HashSet<ObjectId> = HashSet::new();

    // Keep what the healthy old catalog knows of snapshots and trees.
    if let Some(old) = &old {
        let r = old.catalog.begin_read()?;
        let mut batch = CommitBatch::default();
        for (id, bytes) in r.raw_snapshots()? {
            seen_snaps.insert(id);
            batch.snapshots.push((id, bytes));
        }
        r.for_each_raw_tree(|id, bytes| {
            if TreeId::of(bytes) != id || Tree::decode(bytes).is_err() {
                report
                    .bad_records
                    .push((id.0, format!("tree {id} in the old catalog is damaged")));
                return Ok(());
            }
            seen_trees.insert(id);
            batch.trees.push((id, bytes.to_vec()));
            if batch.trees.len() >= TREES_PER_COMMIT {
                new.commit(&batch)?;
                batch = CommitBatch::default();
            }
            Ok(())
        })?;
        new.commit(&batch)?;
    }

    // Index every pack; take trees (and, rebuilding, snapshots) from them.
    let mut batch = CommitBatch::default();
    let mut in_batch = 0;
    for (pack, size) in repo.store().list_packs()? {
        let path = repo.store().pack_path(&pack);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                report
                    .unreadable_packs
                    .push((pack, format!("pack {pack} could not be read: {e}")));
                continue;
            }
        };
        let entries = match parse_footer(&bytes) {
            Ok(e) => e,
            Err(e) => {
                report
                    .unreadable_packs
                    .push((pack, format!("pack {pack} is damaged: {e}")));
                continue;
            }
        };
        report.packs += 1;
        batch.packs.push((
            pack,
            PackRecord {
                size,
                blobs: u32::try_from(entries.len()).unwrap_or(u32::MAX),
            },
        ));
        for frame_entries in frames(&entries) {
            let first = frame_entries[0];
            let needs_decode = opts.read_data
                || frame_entries.iter().any(|e| match e.kind {
                    BlobKind::Chunk => false,
                    BlobKind::Tree => !seen_trees.contains(&TreeId(e.id)),
                    BlobKind::Snapshot => rebuild_all && !seen_snaps.contains(&SnapshotId(e.id)),
                });
            let decoded = if needs_decode {
                let frame = &bytes
                    [first.offset as usize..(first.offset + u64::from(first.length)) as usize];
                codec::decode(frame).ok()
            } else {
                None
            };
            // The blob's bytes when its frame decodes and they match its id.
            let verified = |e: &PackEntry| {
                decoded.as_deref().and_then(|d| {
                    slice_blob(d, e.frame_raw, e.inner, e.raw_len)
                        .ok()
                        .filter(|raw| ObjectId::of(raw) == e.id)
                })
            };
            for e in frame_entries {
                if opts.read_data && verified(e).is_none() {
                    report.damaged_blobs.push((
                        e.id,
                        format!(
                            "{} {} in pack {pack} is damaged; left out of the index",
                            kind_name(e.kind),
                            e.id
                        ),
                    ));
                    continue;
                }
                report.blobs += 1;
                batch.blobs.push((e.id, BlobLocation::new(pack, e)));
                if e.kind != BlobKind::Chunk {
                    in_packs.insert(e.id);
                }
                let wanted = match e.kind {
                    BlobKind::Chunk => false,
                    BlobKind::Tree => !seen_trees.contains(&TreeId(e.id)),
                    BlobKind::Snapshot => rebuild_all && !seen_snaps.contains(&SnapshotId(e.id)),
                };
                if !wanted {
                    continue;
                }
                let Some(raw) = verified(e).map(<[u8]>::to_vec) else {
                    report.bad_records.push((
                        e.id,
                        format!("{} {} in pack {pack} is damaged", kind_name(e.kind), e.id),
                    ));
                    continue;
                };
                match e.kind {
                    BlobKind::Tree => {
                        if Tree::decode(&raw).is_ok() {
                            seen_trees.insert(TreeId(e.id));
                            batch.trees.push((TreeId(e.id), raw));
                        } else {
                            report.bad_records.push((
                                e.id,
                                format!("tree {} in pack {pack} does not decode", e.id),
                            ));
                        }
                    }
                    BlobKind::Snapshot => {
                        if Snapshot::decode(&raw).is_ok() {
                            seen_snaps.insert(SnapshotId(e.id));
                            batch.snapshots.push((SnapshotId(e.id), raw));
                        } else {
                            report.bad_records.push((
                                e.id,
                                format!("snapshot {} in pack {pack} does not decode", e.id),
                            ));
                        }
                    }
                    BlobKind::Chunk => {}
                }
            }
        }
        in_batch += 1;
        if in_batch >= PACKS_PER_COMMIT {
            new.commit(&batch)?;
            batch = CommitBatch::default();
            in_batch = 0;
        }
    }
    new.commit(&batch)?;

    // Records only the old catalog still holds get a copy in a new pack,
    // so that the catalog can be rebuilt from the packs again (rule 4).
    if let Some(old) = &old {
        report.copies_restored = store_missing_copies(repo, old, &new, &in_packs)?;
    }
    report.trees = seen_trees.len() as u64;
    report.snapshots = seen_snaps.len();
    drop(new);
    drop(old);
    Ok(report)
}

/// Writes every tree and snapshot record of `old` that no pack holds into
/// new packs, made durable before `new` references them. Returns how many.
fn store_missing_copies(
    repo: &RawRepository,
    old: &OldCatalog,
    new: &Catalog,
    in_packs: &HashSet<ObjectId>,
) -> Result<u64> {
    let r = old.catalog.begin_read()?;
    let mut missing: Vec<(ObjectId, BlobKind, Vec<u8>)> = Vec::new();
    for (id, bytes) in r.raw_snapshots()? {
        if !in_packs.contains(&id.0) && SnapshotId::of(&bytes) == id {
            missing.push((id.0, BlobKind::Snapshot, bytes));
        }
    }
    r.for_each_raw_tree(|id, bytes| {
        if !in_packs.contains(&id.0) && TreeId::of(bytes) == id && Tree::decode(bytes).is_ok() {
            missing.push((id.0, BlobKind::Tree, bytes.to_vec()));
        }
        Ok(())
    })?;
    if missing.is_empty() {
        return Ok(0);
    }
    let store = repo.store();
    let level = repo.config().zstd_level;
    let target = repo.config().pack_target_bytes;
    let mut writer = store.new_writer()?;
    let mut count = 0;
    for (i, (id, kind, raw)) in missing.iter().enumerate() {
        let frame = codec::encode(raw, level)?;
        let raw_len =
            u32::try_from(raw.len()).map_err(|_| Error::invalid("record larger than 4 GiB"))?;
        writer.add(*id, *kind, raw_len, &frame)?;
        count += 1;
        if writer.len() >= target || i + 1 == missing.len() {
            let done = writer.finish(store)?;
            let mut batch = CommitBatch::default();
            batch.packs.push((
                done.id,
                PackRecord {
                    size: done.size,
                    blobs: u32::try_from(done.entries.len()).unwrap_or(u32::MAX),
                },
            ));
            for e in &done.entries {
                batch.blobs.push((e.id, BlobLocation::new(done.id, e)));
            }
            new.commit(&batch)?;
            if i + 1 == missing.len() {
                break;
            }
            writer = store.new_writer()?;
        }
    }
    Ok(count)
}

fn kind_name(kind: BlobKind) -> &'static str {
    match kind {
        BlobKind::Chunk => "chunk",
        BlobKind::Tree => "tree",
        BlobKind::Snapshot => "snapshot record",
    }
}
