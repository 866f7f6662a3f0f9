//! The catalog: a redb database indexing the packs.
//!
//! It maps blob ids to pack locations, holds every tree node and snapshot
//! record (so listing, browsing and diffing never touch the packs), and
//! lists the packs it knows.
//!
//! **Invariants:** this is the only module that imports `redb`. It is an
//! index: everything in it can be rebuilt from the packs. Each snapshot is
//! committed in one write transaction, after the packs it references are
//! durable. The database is opened in redb's `MultiWriter` mode so several
//! cairn processes can use one repository; write transactions are short.
//! [`Catalog::compact`] runs only under the exclusive repository lock (see
//! docs/ARCHITECTURE.md, "Catalog compaction").

pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{ConcurrencyMode, Database, ReadOnlyTable, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{ObjectId, PackId, SnapshotId, TreeId};
use crate::model::{Snapshot, Tree, decode_versioned, encode_versioned};
use crate::store::BlobLocation;
use schema::{BLOBS, META, PACKS, SCHEMA_VERSION, SNAPSHOTS, TREES};

/// Version byte of an encoded [`PackRecord`]. 1: first format.
pub const PACK_RECORD_VERSION: u8 = 1;

/// What the catalog records of a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRecord {
    /// File size in bytes.
    pub size: u64,
    /// Number of blobs it holds.
    pub blobs: u32,
}

/// The open catalog database.
pub struct Catalog {
    db: Database,
    path: PathBuf,
    /// File length when this handle opened it.
    opened_len: u64,
    /// Bytes of keys and values this handle has committed.
    written: AtomicU64,
}

/// A catalog file smaller than this is never compacted after a snapshot:
/// what it could give back is not worth an extra lock and commit.
const COMPACT_MIN_LEN: u64 = 1 << 20;
/// ... nor unless this handle committed at least 1/this of the file's
/// length: compaction walks every table, so its cost stays within a
/// constant factor of the command's own catalog work (a no-change snapshot
/// of 100,000 files writes a few KB to a 21 MB file and must stay fast).
const COMPACT_WORK_DIVISOR: u64 = 64;

/// What [`Catalog::compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// File length before, in bytes.
    pub before: u64,
    /// File length after, in bytes.
    pub after: u64,
}

/// redb's page cache. Its default (1 GiB) lets a pass over the whole index
/// (gc, check, stats) keep every page it read: peak memory would grow with
/// the repository. The OS page cache still holds the file, so a smaller cache
/// costs little time.
const CACHE_BYTES: usize = 16 << 20;

fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_concurrency_mode(ConcurrencyMode::MultiWriter);
    b.set_cache_size(CACHE_BYTES);
    b
}

impl Catalog {
    /// Creates a new, empty catalog at `path`.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> Result<Self> {
        let db = builder()
            .create(path)
            .map_err(|e| Error::catalog(&format!("creating {}", path.display()), e))?;
        let txn = db
            .begin_write()
            .map_err(|e| Error::catalog("starting transaction", e))?;
        {
            let mut meta = txn
                .open_table(META)
                .map_err(|e| Error::catalog("opening meta", e))?;
            meta.insert("schema", [SCHEMA_VERSION].as_slice())
                .map_err(|e| Error::catalog("writing schema version", e))?;
            for t in [BLOBS, TREES, SNAPSHOTS, PACKS] {
                txn.open_table(t)
                    .map_err(|e| Error::catalog("creating table", e))?;
            }
        }
        txn.commit()
            .map_err(|e| Error::catalog("committing new catalog", e))?;
        Self::wrap(db, path)
    }

    /// The handle over an open database at `path`, noting its length now
    /// (compaction is considered only when the file grew meanwhile).
    fn wrap(db: Database, path: &Path) -> Result<Self> {
        let mut cat = Self {
            db,
            path: path.to_path_buf(),
            opened_len: 0,
            written: AtomicU64::new(0),
        };
        cat.opened_len = cat.file_len()?;
        Ok(cat)
    }

    /// Opens an existing catalog and checks its schema version.
    ///
    /// # Errors
    /// [`crate::ErrorKind::UnsupportedVersion`] for a newer schema, catalog
    /// errors otherwise.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(builder(), path)
    }

    /// Opens with `b` and checks the schema version.
    fn open_with(b: redb::Builder, path: &Path) -> Result<Self> {
        let db = b
            .open(path)
            .map_err(|e| Error::catalog(&format!("opening {}", path.display()), e))?;
        let cat = Self::wrap(db, path)?;
        let txn = cat.read_txn()?;
        let meta = txn
            .open_table(META)
            .map_err(|e| Error::catalog("opening meta", e))?;
        let version = meta
            .get("schema")
            .map_err(|e| Error::catalog("reading schema version", e))?
            .and_then(|v| v.value().first().copied());
        drop(meta);
        drop(txn);
        match version {
            Some(SCHEMA_VERSION) => Ok(cat),
            Some(v) => Err(Error::new(
                crate::ErrorKind::UnsupportedVersion,
                format!(
                    "catalog schema {v} is not supported by this cairn (it reads {SCHEMA_VERSION}); upgrade cairn"
                ),
            )),
            None => Err(Error::corrupt("catalog has no schema version")),
        }
    }

    /// The catalog file's length in bytes.
    ///
    /// # Errors
    /// When the file cannot be examined.
    pub fn file_len(&self) -> Result<u64> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|e| Error::io("examining", &self.path, e))
    }

    /// Whether compacting is worth it after this handle's writes: the file
    /// grew while this handle had it open, to at least `COMPACT_MIN_LEN`,
    /// and this handle committed at least 1/`COMPACT_WORK_DIVISOR` of its
    /// length. A file that grew most likely holds much free space, because
    /// redb grows a file (below its region size of gigabytes) by doubling
    /// it. One `stat`; no table is read.
    ///
    /// # Errors
    /// When the file cannot be examined.
    pub fn wants_compaction(&self) -> Result<bool> {
        let len = self.file_len()?;
        let written = self.written.load(Ordering::Relaxed);
        Ok(len > self.opened_len
            && len >= COMPACT_MIN_LEN
            && written.saturating_mul(COMPACT_WORK_DIVISOR) >= len)
    }

    /// Gives the file's free pages back to the file system.
    ///
    /// **Only under the exclusive repository lock:** redb rewrites pages in
    /// place, which no other process may have open (every other cairn
    /// process holds the shared lock while it has the catalog open).
    ///
    /// # Errors
    /// Catalog and I/O errors; the catalog stays consistent (redb commits
    /// each compaction step durably).
    pub fn compact(&mut self) -> Result<Compaction> {
        let before = self.file_len()?;
        self.db
            .compact()
            .map_err(|e| Error::catalog("compacting", e))?;
        let after = self.file_len()?;
        // Writing anything now would grow the tight file again (by doubling).
        self.opened_len = after;
        Ok(Compaction { before, after })
    }

    fn read_txn(&self) -> Result<redb::ReadTransaction> {
        self.db
            .begin_read()
            .map_err(|e| Error::catalog("starting read transaction", e))
    }

    /// A consistent read view of the catalog, usable from many threads.
    ///
    /// # Errors
    /// Catalog errors.
    pub fn begin_read(&self) -> Result<CatalogReader> {
        let txn = self.read_txn()?;
        let open = |def| {
            txn.open_table(def)
                .map_err(|e| Error::catalog("opening table", e))
        };
        Ok(CatalogReader {
            blobs: open(BLOBS)?,
            trees: open(TREES)?,
            snapshots: open(SNAPSHOTS)?,
            packs: open(PACKS)?,
        })
    }

    /// Applies a batch in one durable write transaction.
    ///
    /// # Errors
    /// Catalog errors; nothing is applied then.
    pub fn commit(&self, batch: &CommitBatch) -> Result<()> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| Error::catalog("starting write transaction", e))?;
        {
            let put = |def, key: &[u8; 32], value: &[u8]| -> Result<()> {
                let mut t = txn
                    .open_table(def)
                    .map_err(|e| Error::catalog("opening table", e))?;
                t.insert(key, value)
                    .map_err(|e| Error::catalog("inserting", e))?;
                Ok(())
            };
            let mut blobs = txn
                .open_table(BLOBS)
                .map_err(|e| Error::catalog("opening blobs", e))?;
            for (id, loc) in &batch.blobs {
                blobs
                    .insert(&id.0, loc.encode()?.as_slice())
                    .map_err(|e| Error::catalog("inserting blob", e))?;
            }
            drop(blobs);
            for (id, rec) in &batch.packs {
                put(
                    PACKS,
                    id.as_bytes(),
                    &encode_versioned(PACK_RECORD_VERSION, rec)?,
                )?;
            }
            for (id, bytes) in &batch.trees {
                put(TREES, id.as_bytes(), bytes)?;
            }
            for (id, bytes) in &batch.snapshots {
                put(SNAPSHOTS, id.as_bytes(), bytes)?;
            }
        }
        txn.commit().map_err(|e| Error::catalog("committing", e))?;
        self.written.fetch_add(batch.bytes(), Ordering::Relaxed);
        Ok(())
    }
}

impl CommitBatch {
    /// Bytes of keys and values (approximately) this batch writes.
    fn bytes(&self) -> u64 {
        let records = |n: usize, per: usize| (n * (32 + per)) as u64;
        let sum = |lens: &mut dyn Iterator<Item = usize>| lens.map(|n| 32 + n as u64).sum::<u64>();
        records(self.blobs.len(), 48)
            + records(self.packs.len(), 12)
            + sum(&mut self.trees.iter().map(|(_, b)| b.len()))
            + sum(&mut self.snapshots.iter().map(|(_, b)| b.len()))
    }
}

/// Everything one operation adds to the catalog, applied atomically.
#[derive(Default)]
pub struct CommitBatch {
    /// New blob locations.
    pub blobs: Vec<(ObjectId, BlobLocation)>,
    /// New packs.
    pub packs: Vec<(PackId, PackRecord)>,
    /// New tree nodes (id, encoded bytes).
    pub trees: Vec<(TreeId, Vec<u8>)>,
    /// New snapshot records (id, encoded bytes).
    pub snapshots: Vec<(SnapshotId, Vec<u8>)>,
}

/// A table keyed by ids with our own encoded values, as every catalog table is.
type IdTable = ReadOnlyTable<&'static [u8; 32], &'static [u8]>;

/// Calls `f` with every row's key and value bytes, in key order.
fn each_row(
    table: &IdTable,
    doing: &str,
    mut f: impl FnMut([u8; 32], &[u8]) -> Result<()>,
) -> Result<()> {
    for item in table.iter().map_err(|e| Error::catalog(doing, e))? {
        let (k, v) = item.map_err(|e| Error::catalog(doing, e))?;
        f(*k.value(), v.value())?;
    }
    Ok(())
}

/// A read-only, point-in-time view of the catalog.
pub struct CatalogReader {
    blobs: IdTable,
    trees: IdTable,
    snapshots: IdTable,
    packs: IdTable,
}

impl CatalogReader {
    /// Where blob `id` is stored, if the catalog knows it.
    ///
    /// # Errors
    /// Catalog errors, or a damaged record.
    pub fn blob(&self, id: &ObjectId) -> Result<Option<BlobLocation>> {
        self.blobs
            .get(&id.0)
            .map_err(|e| Error::catalog("reading blob index", e))?
            .map(|v| BlobLocation::decode(v.value()))
            .transpose()
    }

    /// Whether blob `id` is indexed.
    ///
    /// # Errors
    /// Catalog errors.
    pub fn has_blob(&self, id: &ObjectId) -> Result<bool> {
        Ok(self
            .blobs
            .get(&id.0)
            .map_err(|e| Error::catalog("reading blob index", e))?
            .is_some())
    }

    /// Whether tree `id` is present.
    ///
    /// # Errors
    /// Catalog errors.
    pub fn has_tree(&self, id: &TreeId) -> Result<bool> {
        Ok(self
            .trees
            .get(id.as_bytes())
            .map_err(|e| Error::catalog("reading trees", e))?
            .is_some())
    }

    /// Loads, verifies and decodes tree `id`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Corrupt`] when it is missing, does not hash to
    /// its id, or does not decode.
    pub fn tree(&self, id: &TreeId) -> Result<Tree> {
        let v = self
            .trees
            .get(id.as_bytes())
            .map_err(|e| Error::catalog("reading trees", e))?
            .ok_or_else(|| Error::corrupt(format!("tree {id} is missing from the catalog")))?;
        let bytes = v.value();
        if TreeId::of(bytes) != *id {
            return Err(Error::corrupt(format!("tree {id} does not match its hash")));
        }
        Tree::decode(bytes).map_err(|e| Error::corrupt(format!("tree {id}: {e}")))
    }

    /// Every snapshot, oldest first (ties broken by id).
    ///
    /// # Errors
    /// Catalog errors or a damaged record.
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let mut out = Vec::new();
        each_row(&self.snapshots, "listing snapshots", |k, v| {
            let id = SnapshotId::from(k);
            let snap =
                Snapshot::decode(v).map_err(|e| Error::corrupt(format!("snapshot {id}: {e}")))?;
            out.push((id, snap));
            Ok(())
        })?;
        out.sort_by_key(|(id, s)| (s.time_ns, *id));
        Ok(out)
    }

    /// Every snapshot id, in key order, without decoding the records.
    ///
    /// # Errors
    /// Catalog errors.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        let mut out = Vec::new();
        each_row(&self.snapshots, "listing snapshots", |k, _| {
            out.push(SnapshotId::from(k));
            Ok(())
        })?;
        Ok(out)
    }

    /// One snapshot record, if present.
    ///
    /// # Errors
    /// Catalog errors or a damaged record.
    pub fn snapshot(&self, id: &SnapshotId) -> Result<Option<Snapshot>> {
        self.snapshots
            .get(id.as_bytes())
            .map_err(|e| Error::catalog("reading snapshots", e))?
            .map(|v| {
                Snapshot::decode(v.value())
                    .map_err(|e| Error::corrupt(format!("snapshot {id}: {e}")))
            })
            .transpose()
    }

    /// The pack record of `id`, if known.
    ///
    /// # Errors
    /// Catalog errors or a damaged record.
    pub fn pack(&self, id: &PackId) -> Result<Option<PackRecord>> {
        self.packs
            .get(id.as_bytes())
            .map_err(|e| Error::catalog("reading packs", e))?
            .map(|v| decode_versioned(PACK_RECORD_VERSION, "pack record", v.value()))
            .transpose()
    }
}

// ---------------------------------------------------------------------------
// check and repair
// ---------------------------------------------------------------------------

impl Catalog {
    /// Opens an existing catalog with redb's integrity check on open, so a
    /// file altered outside redb fails as [`crate::ErrorKind::Corrupt`]
    /// instead of being trusted; then checks the schema version.
    ///
    /// # Errors
    /// As [`Catalog::open`]; corruption is reported, never trusted.
    pub fn open_checked(path: &Path) -> Result<Self> {
        let mut b = builder();
        b.set_check_integrity_on_open(true);
        Self::open_with(b, path)
    }
}

impl CatalogReader {
    /// Every pack record, in id order.
    ///
    /// # Errors
    /// Catalog errors or a damaged record.
    pub fn packs(&self) -> Result<Vec<(PackId, PackRecord)>> {
        let mut out = Vec::new();
        each_row(&self.packs, "listing packs", |k, v| {
            let id = PackId::from(k);
            let rec = decode_versioned(PACK_RECORD_VERSION, "pack record", v)
                .map_err(|e| Error::corrupt(format!("pack record {id}: {e}")))?;
            out.push((id, rec));
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` with every blob location, in id order, without collecting them.
    ///
    /// # Errors
    /// Catalog errors, a damaged record, or the first error of `f`.
    pub fn for_each_blob(
        &self,
        mut f: impl FnMut(ObjectId, BlobLocation) -> Result<()>,
    ) -> Result<()> {
        each_row(&self.blobs, "listing blobs", |k, v| {
            let id = ObjectId(k);
            let loc = BlobLocation::decode(v)
                .map_err(|e| Error::corrupt(format!("blob location of {id}: {e}")))?;
            f(id, loc)
        })
    }

    /// Calls `f` with every tree record's id and raw bytes (unverified).
    ///
    /// # Errors
    /// Catalog errors or the first error of `f`.
    pub fn for_each_raw_tree(&self, mut f: impl FnMut(TreeId, &[u8]) -> Result<()>) -> Result<()> {
        each_row(&self.trees, "listing trees", |k, v| f(TreeId::from(k), v))
    }

    /// Every snapshot record's id and raw bytes (unverified), in key order.
    ///
    /// # Errors
    /// Catalog errors.
    pub fn raw_snapshots(&self) -> Result<Vec<(SnapshotId, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self
            .snapshots
            .iter()
            .map_err(|e| Error::catalog("listing snapshots", e))?
        {
            let (k, v) = item.map_err(|e| Error::catalog("listing snapshots", e))?;
            out.push((SnapshotId::from(*k.value()), v.value().to_vec()));
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Garbage collection (src/gc.rs): full scans and the one gc transaction.
// ---------------------------------------------------------------------------

/// Everything one garbage collection changes in the catalog, applied in one
/// write transaction by [`Catalog::apply_gc`]: removals first, then inserts.
#[derive(Default)]
pub struct GcBatch {
    /// Blob index entries to drop (dead blobs, and every blob of a dropped pack).
    pub remove_blobs: Vec<ObjectId>,
    /// Tree nodes no snapshot reaches any more.
    pub remove_trees: Vec<TreeId>,
    /// Pack records to drop (packs deleted or rewritten).
    pub remove_packs: Vec<PackId>,
    /// New locations of the blobs copied into new packs.
    pub blobs: Vec<(ObjectId, BlobLocation)>,
    /// The new packs.
    pub packs: Vec<(PackId, PackRecord)>,
}

impl Catalog {
    /// Applies a garbage-collection batch in one durable write transaction.
    /// Every pack `batch.packs` names must already be durable.
    ///
    /// # Errors
    /// Catalog errors; nothing is applied then.
    pub fn apply_gc(&self, batch: &GcBatch) -> Result<()> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| Error::catalog("starting write transaction", e))?;
        {
            let open = |def| {
                txn.open_table(def)
                    .map_err(|e| Error::catalog("opening table", e))
            };
            let mut blobs = open(BLOBS)?;
            for id in &batch.remove_blobs {
                blobs
                    .remove(&id.0)
                    .map_err(|e| Error::catalog("removing blob", e))?;
            }
            for (id, loc) in &batch.blobs {
                blobs
                    .insert(&id.0, loc.encode()?.as_slice())
                    .map_err(|e| Error::catalog("inserting blob", e))?;
            }
            drop(blobs);
            let mut trees = open(TREES)?;
            for id in &batch.remove_trees {
                trees
                    .remove(id.as_bytes())
                    .map_err(|e| Error::catalog("removing tree", e))?;
            }
            drop(trees);
            let mut packs = open(PACKS)?;
            for id in &batch.remove_packs {
                packs
                    .remove(id.as_bytes())
                    .map_err(|e| Error::catalog("removing pack", e))?;
            }
            for (id, rec) in &batch.packs {
                packs
                    .insert(
                        id.as_bytes(),
                        encode_versioned(PACK_RECORD_VERSION, rec)?.as_slice(),
                    )
                    .map_err(|e| Error::catalog("inserting pack", e))?;
            }
        }
        txn.commit()
            .map_err(|e| Error::catalog("committing garbage collection", e))
    }
}

// ---------------------------------------------------------------------------
// retention (forget, policy)
// ---------------------------------------------------------------------------

impl Catalog {
    /// Removes these snapshot records in one write transaction (ids not
    /// present are skipped) and returns how many were removed. Their data
    /// stays until garbage collection.
    ///
    /// # Errors
    /// Catalog errors; nothing is removed then.
    pub fn remove_snapshots(&self, ids: &[SnapshotId]) -> Result<usize> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| Error::catalog("starting write transaction", e))?;
        let mut removed = 0;
        {
            let mut table = txn
                .open_table(SNAPSHOTS)
                .map_err(|e| Error::catalog("opening snapshots", e))?;
            for id in ids {
                if table
                    .remove(id.as_bytes())
                    .map_err(|e| Error::catalog("removing snapshot", e))?
                    .is_some()
                {
                    removed += 1;
                }
            }
        }
        txn.commit()
            .map_err(|e| Error::catalog("committing snapshot removal", e))?;
        Ok(removed)
    }

    /// Stores the repository's retention policy, replacing any earlier one.
    ///
    /// # Errors
    /// Catalog or encoding errors.
    pub fn set_policy(&self, policy: &crate::retention::Policy) -> Result<()> {
        let bytes = policy.encode()?;
        let txn = self
            .db
            .begin_write()
            .map_err(|e| Error::catalog("starting write transaction", e))?;
        {
            let mut table = txn
                .open_table(schema::POLICY)
                .map_err(|e| Error::catalog("opening policy", e))?;
            table
                .insert("policy", bytes.as_slice())
                .map_err(|e| Error::catalog("writing policy", e))?;
        }
        txn.commit()
            .map_err(|e| Error::catalog("committing policy", e))
    }

    /// The stored retention policy, if any (a catalog that never stored
    /// one has no policy table: that reads as `None`).
    ///
    /// # Errors
    /// Catalog errors or a damaged record.
    pub fn policy(&self) -> Result<Option<crate::retention::Policy>> {
        let txn = self.read_txn()?;
        let table = match txn.open_table(schema::POLICY) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(Error::catalog("opening policy", e)),
        };
        table
            .get("policy")
            .map_err(|e| Error::catalog("reading policy", e))?
            .map(|v| crate::retention::Policy::decode(v.value()))
            .transpose()
    }
}
