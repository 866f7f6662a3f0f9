//! `check`: proves that the catalog and the packs agree, and names what any
//! damage costs: the snapshots and file paths it affects.
//!
//! Without reading data, check verifies that every pack the catalog lists
//! exists with its recorded size and a readable footer (header, trailer,
//! footer record), that every blob location matches an entry of its pack's
//! footer, and that every snapshot's trees are present, hash to their ids and
//! decode, and every chunk a file references is indexed in an intact pack.
//! With [`ReadData`] it also hashes whole pack files against their ids and
//! decodes and re-hashes every blob in them.
//!
//! **Invariants:** check writes nothing of cairn's own (packs and catalog
//! rows are only read). It opens the catalog with redb's integrity check,
//! which verifies the checksum of every page and rebuilds redb's allocator
//! state (a redb-internal commit), so a file altered outside redb is
//! reported, never trusted; as a last line of defence it catches a panic of
//! the database on open and reports the catalog as damaged. Its report
//! names damage by pack, object, snapshot and path; it never stops at the
//! first problem.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;

use rayon::prelude::*;

use crate::catalog::{Catalog, CatalogReader, PackRecord};
use crate::codec;
use crate::error::{Error, ErrorKind, Result, error_chain};
use crate::id::{ObjectId, PackId, SnapshotId, TreeId};
use crate::model::{EntryKind, Snapshot, decode_versioned};
use crate::progress::{NoProgress, Phase, Progress};
use crate::repo::RawRepository;
use crate::store::pack::{
    FOOTER_VERSION, PACK_HEADER, PACK_TRAILER_BYTES, PACK_TRAILER_MAGIC, check_entries, frames,
    slice_blob,
};
use crate::store::{BlobLocation, PackEntry};

/// Which packs `check` reads in full.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ReadData {
    /// None: metadata only.
    #[default]
    None,
    /// Every pack.
    All,
    /// Subset `n` of `m` (1-based): packs whose id, read as a big-endian
    /// u32 from its first 4 bytes, is `n - 1` modulo `m`. The `m` subsets
    /// partition the packs, so `1/m` … `m/m` together read everything.
    Subset {
        /// Which subset, 1 to `m`.
        n: u32,
        /// How many subsets.
        m: u32,
    },
    /// About this percentage of the packs: those whose id, read as a
    /// big-endian u64 from its first 8 bytes, lies in the first `p` percent
    /// of the id space. Pack ids are hashes, so the choice is spread evenly
    /// but deterministic (the same packs every time).
    Percent(f64),
}

impl ReadData {
    /// Parses `N%` (0 < N <= 100, decimals allowed) or `N/M` (1 <= N <= M).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for anything else.
    pub fn parse_subset(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "`{s}` is not a subset: give a percentage such as `10%` or `n/m` such as `1/5`"
            ))
        };
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(bad());
            }
            return Ok(Self::Percent(p));
        }
        let (n, m) = s.split_once('/').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let m: u32 = m.trim().parse().map_err(|_| bad())?;
        if n == 0 || m == 0 || n > m {
            return Err(bad());
        }
        Ok(Self::Subset { n, m })
    }

    /// Whether pack `id` is read in full.
    pub fn selects(&self, id: &PackId) -> bool {
        let b = id.as_bytes();
        match *self {
            Self::None => false,
            Self::All => true,
            Self::Subset { n, m } => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) % m == n - 1,
            Self::Percent(p) => {
                if p >= 100.0 {
                    return true;
                }
                let x = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                // Precision of f64 is ample for a sampling threshold.
                #[allow(clippy::cast_precision_loss)]
                let frac = x as f64 / 18_446_744_073_709_551_616.0;
                frac * 100.0 < p
            }
        }
    }
}

/// What `check` should do.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Which packs to read in full.
    pub read_data: ReadData,
}

/// The kind of a problem, as JSON names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// `catalog.redb` is missing or does not open.
    CatalogDamaged,
    /// A catalog record (snapshot, pack record, blob location) does not decode.
    CatalogRecord,
    /// A pack the catalog lists is not on disk.
    MissingPack,
    /// A pack's size differs from the catalog's record.
    PackSize,
    /// A pack's header, trailer or footer is damaged (e.g. truncated).
    PackFooter,
    /// A pack's content does not hash to its id.
    PackHash,
    /// A blob in a pack does not decode or does not match its id.
    BlobDamaged,
    /// A catalog blob location does not match the pack's footer.
    BlobLocation,
    /// A tree or snapshot record has no intact copy in the packs, so a
    /// catalog rebuilt from the packs would lack it.
    MissingCopy,
}

impl ProblemKind {
    /// The snake-case name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::CatalogDamaged => "catalog_damaged",
            Self::CatalogRecord => "catalog_record",
            Self::MissingPack => "missing_pack",
            Self::PackSize => "pack_size",
            Self::PackFooter => "pack_footer",
            Self::PackHash => "pack_hash",
            Self::BlobDamaged => "blob_damaged",
            Self::BlobLocation => "blob_location",
            Self::MissingCopy => "missing_copy",
        }
    }
}

/// One thing found wrong.
#[derive(Debug, Clone)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The pack at fault, if one is.
    pub pack: Option<PackId>,
    /// The blob, tree or snapshot at fault, if one is.
    pub object: Option<ObjectId>,
    /// A sentence naming it all.
    pub message: String,
}

impl Problem {
    fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            pack: None,
            object: None,
            message: message.into(),
        }
    }

    fn pack(mut self, id: PackId) -> Self {
        self.pack = Some(id);
        self
    }

    fn object(mut self, id: ObjectId) -> Self {
        self.object = Some(id);
        self
    }
}

/// Whether a damaged path is a file or a whole directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// A file whose content cannot be read back (some chunk is lost).
    File,
    /// A directory whose tree is missing or damaged: nothing below it can be listed.
    Tree,
}

/// One path of a snapshot that cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedPath {
    /// Absolute path as stored (raw bytes).
    pub path: Vec<u8>,
    /// File or directory.
    pub kind: DamageKind,
    /// Why (the first missing or damaged object).
    pub reason: String,
}

/// A snapshot with paths that cannot be restored.
#[derive(Debug, Clone)]
pub struct DamagedSnapshot {
    /// Its id.
    pub id: SnapshotId,
    /// Its record.
    pub snapshot: Snapshot,
    /// What is lost, in tree order.
    pub paths: Vec<DamagedPath>,
}

/// What `check` found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Whether the catalog opened and read cleanly.
    pub catalog_ok: bool,
    /// Packs on disk.
    pub packs_on_disk: usize,
    /// Packs the catalog lists.
    pub packs_listed: usize,
    /// Packs on disk that the catalog does not list (harmless residue).
    pub packs_unreferenced: usize,
    /// Packs read in full.
    pub packs_read: usize,
    /// Blobs decoded and re-hashed.
    pub blobs_verified: u64,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Everything found wrong.
    pub problems: Vec<Problem>,
    /// Snapshots with paths that cannot be restored, oldest first.
    pub damaged: Vec<DamagedSnapshot>,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.catalog_ok && self.problems.is_empty() && self.damaged.is_empty()
    }
}

/// Opens `catalog.redb` for check or repair: with redb's integrity check,
/// and turning a panic of the database into a corruption error.
///
/// # Errors
/// [`ErrorKind::Corrupt`] when the file is missing, damaged or panics redb;
/// other catalog errors as they come.
pub fn open_catalog(path: &Path) -> Result<Catalog> {
    if !path.exists() {
        return Err(Error::corrupt(format!(
            "{} is missing; run `cairn repair` to rebuild it from the packs",
            path.display()
        )));
    }
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Catalog::open_checked(path)));
    std::panic::set_hook(prev);
    match result {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) if e.kind() == ErrorKind::UnsupportedVersion => Err(e),
        Ok(Err(e)) => Err(Error::corrupt(format!(
            "{} is damaged ({}); run `cairn repair`",
            path.display(),
            error_chain(&e)
        ))),
        Err(_) => Err(Error::corrupt(format!(
            "{} is damaged (the database failed on open); run `cairn repair`",
            path.display()
        ))),
    }
}

/// What the cheap footer read learns of a pack.
struct PackIndex {
    /// Footer entries sorted by id.
    entries: Vec<PackEntry>,
}

impl PackIndex {
    fn has(&self, id: &ObjectId, loc: &BlobLocation) -> bool {
        let start = self.entries.partition_point(|e| e.id < *id);
        // Duplicates of one id in a pack are legal; accept any match.
        self.entries[start..]
            .iter()
            .take_while(|e| e.id == *id)
            .any(|e| {
                e.offset == loc.offset
                    && e.length == loc.length
                    && e.frame_raw == loc.frame_raw
                    && e.inner == loc.inner
                    && e.raw_len == loc.raw_len
            })
    }
}

/// Reads a pack's footer without reading its blobs: header, trailer and
/// footer are checked exactly as [`crate::store::pack::parse_footer`] does.
fn read_footer_only(path: &Path, size: u64) -> Result<Vec<PackEntry>> {
    let io = |e| Error::io("reading pack", path, e);
    let file = File::open(path).map_err(io)?;
    let min = (PACK_HEADER.len() + PACK_TRAILER_BYTES) as u64;
    if size < min {
        return Err(Error::corrupt("not a cairn pack (too short)"));
    }
    let mut header = [0u8; 8];
    file.read_exact_at(&mut header, 0).map_err(io)?;
    if &header != PACK_HEADER {
        return Err(Error::corrupt("not a cairn pack (bad header)"));
    }
    let mut trailer = [0u8; PACK_TRAILER_BYTES];
    file.read_exact_at(&mut trailer, size - PACK_TRAILER_BYTES as u64)
        .map_err(io)?;
    if &trailer[4..] != PACK_TRAILER_MAGIC {
        return Err(Error::corrupt("pack trailer is missing (truncated pack?)"));
    }
    let footer_len = u64::from(u32::from_le_bytes([
        trailer[0], trailer[1], trailer[2], trailer[3],
    ]));
    let len_at = size - PACK_TRAILER_BYTES as u64;
    let blobs_end = len_at
        .checked_sub(footer_len)
        .filter(|&s| s >= PACK_HEADER.len() as u64)
        .ok_or_else(|| Error::corrupt("pack footer length is out of range"))?;
    let mut footer = vec![0u8; usize::try_from(footer_len).unwrap_or(usize::MAX)];
    file.read_exact_at(&mut footer, blobs_end).map_err(io)?;
    let entries: Vec<PackEntry> = decode_versioned(FOOTER_VERSION, "pack footer", &footer)?;
    check_entries(&entries, blobs_end)?;
    Ok(entries)
}

/// The outcome of reading one pack in full.
struct PackRead {
    id: PackId,
    problems: Vec<Problem>,
    /// The whole pack is unusable (footer unreadable).
    whole: Option<String>,
    /// Blobs that failed: id and why.
    bad: Vec<(ObjectId, String)>,
    verified: u64,
}

/// Bytes read at a time between frames (header, footer) while streaming a
/// pack through [`read_pack_fully`].
const STREAM_BUFFER_BYTES: usize = 256 << 10;

/// A pack file read from start to end exactly once, hashing every byte as
/// it passes.
struct HashingStream {
    file: File,
    hasher: blake3::Hasher,
    pos: u64,
    scratch: Vec<u8>,
}

impl HashingStream {
    /// Fills `buf` with the next bytes of the file.
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        use std::io::Read;
        self.file.read_exact(buf)?;
        self.hasher.update(buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Reads (and hashes) up to `offset`, or to the end of the file when
    /// `offset` is `None`.
    fn skip_to(&mut self, offset: Option<u64>) -> std::io::Result<()> {
        use std::io::Read;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize(STREAM_BUFFER_BYTES, 0);
        let result = loop {
            let want = offset.map_or(scratch.len(), |o| {
                usize::try_from(o.saturating_sub(self.pos))
                    .unwrap_or(usize::MAX)
                    .min(scratch.len())
            });
            if want == 0 {
                break Ok(());
            }
            match self.file.read(&mut scratch[..want]) {
                Ok(0) if offset.is_none() => break Ok(()),
                Ok(0) => break Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.hasher.update(&scratch[..n]);
                    self.pos += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.scratch = scratch;
        result
    }
}

/// Reads pack `id` once, start to end, through a bounded buffer: the footer
/// first (a few small reads at the end), then every byte in order, hashing
/// the file as it streams and decoding each frame as it passes (every blob
/// in it re-hashed). Memory: one frame and its decoded content, not the
/// pack.
fn read_pack_fully(repo: &RawRepository, id: PackId) -> PackRead {
    let mut out = PackRead {
        id,
        problems: Vec::new(),
        whole: None,
        bad: Vec::new(),
        verified: 0,
    };
    let path = repo.store().pack_path(&id);
    let unreadable = |out: &mut PackRead, e: &dyn std::fmt::Display| {
        let msg = format!("pack {id} could not be read: {e}");
        out.problems
            .push(Problem::new(ProblemKind::PackFooter, &msg).pack(id));
        out.whole = Some(msg);
    };
    let opened = File::open(&path).and_then(|f| f.metadata().map(|m| (f, m.len())));
    let (file, size) = match opened {
        Ok(x) => x,
        Err(e) => {
            unreadable(&mut out, &e);
            return out;
        }
    };
    let footer = read_footer_only(&path, size);
    let mut stream = HashingStream {
        file,
        hasher: blake3::Hasher::new(),
        pos: 0,
        scratch: Vec::new(),
    };
    let entries = footer.as_deref().unwrap_or_default();
    let mut frame = Vec::new();
    for frame_entries in frames(entries) {
        let first = frame_entries[0];
        frame.resize(first.length as usize, 0);
        let read = stream
            .skip_to(Some(first.offset))
            .and_then(|()| stream.read_exact(&mut frame));
        if let Err(e) = read {
            out.problems.clear();
            out.bad.clear();
            out.verified = 0;
            unreadable(&mut out, &e);
            return out;
        }
        let decoded = codec::decode(&frame).ok();
        for e in frame_entries {
            let ok = decoded.as_deref().is_some_and(|d| {
                slice_blob(d, e.frame_raw, e.inner, e.raw_len)
                    .is_ok_and(|raw| ObjectId::of(raw) == e.id)
            });
            if ok {
                out.verified += 1;
            } else {
                out.problems.push(
                    Problem::new(
                        ProblemKind::BlobDamaged,
                        format!("blob {} in pack {id} is damaged", e.id),
                    )
                    .pack(id)
                    .object(e.id),
                );
                out.bad.push((e.id, format!("damaged in pack {id}")));
            }
        }
    }
    if let Err(e) = stream.skip_to(None) {
        out.problems.clear();
        out.bad.clear();
        out.verified = 0;
        unreadable(&mut out, &e);
        return out;
    }
    if PackId::from(*stream.hasher.finalize().as_bytes()) != id {
        out.problems.insert(
            0,
            Problem::new(
                ProblemKind::PackHash,
                format!("pack {id} does not match its id: its content is damaged"),
            )
            .pack(id),
        );
    }
    if let Err(e) = footer {
        let msg = format!("pack {id} is damaged: {e}");
        out.problems
            .push(Problem::new(ProblemKind::PackFooter, &msg).pack(id));
        out.whole = Some(msg);
    }
    out
}

/// Checks the repository.
///
/// # Errors
/// Only when the object directory cannot be listed; everything found wrong
/// with the data is in the report.
pub fn check(repo: &RawRepository, opts: &CheckOptions) -> Result<CheckReport> {
    check_with(repo, opts, &NoProgress)
}

/// [`check`], reporting to `progress` while reading packs in full: phase
/// `read-data` counts packs, with the selected packs and their bytes as totals.
///
/// # Errors
/// As [`check`].
pub fn check_with(
    repo: &RawRepository,
    opts: &CheckOptions,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let on_disk: HashMap<PackId, u64> = repo.store().list_packs()?.into_iter().collect();
    report.packs_on_disk = on_disk.len();

    let catalog = match open_catalog(&repo.catalog_path()) {
        Ok(c) => Some(c),
        Err(e) => {
            report
                .problems
                .push(Problem::new(ProblemKind::CatalogDamaged, e.to_string()));
            None
        }
    };
    let reader = match catalog.as_ref().map(Catalog::begin_read).transpose() {
        Ok(r) => r,
        Err(e) => {
            report.problems.push(Problem::new(
                ProblemKind::CatalogDamaged,
                format!("catalog.redb is damaged ({e}); run `cairn repair`"),
            ));
            None
        }
    };
    let listed: Vec<(PackId, PackRecord)> = match reader.as_ref().map(CatalogReader::packs) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            report.problems.push(Problem::new(
                ProblemKind::CatalogDamaged,
                format!("catalog.redb is damaged ({e}); run `cairn repair`"),
            ));
            Vec::new()
        }
        None => Vec::new(),
    };
    report.catalog_ok = report.problems.is_empty();
    let Some(reader) = reader.filter(|_| report.catalog_ok) else {
        // No usable catalog: still check every pack on disk.
        let mut ids: Vec<PackId> = on_disk.keys().copied().collect();
        ids.sort();
        for id in ids {
            if let Err(e) = read_footer_only(&repo.store().pack_path(&id), on_disk[&id]) {
                report.problems.push(
                    Problem::new(
                        ProblemKind::PackFooter,
                        format!("pack {id} is damaged: {e}"),
                    )
                    .pack(id),
                );
            }
        }
        let all = on_disk.keys().copied().collect();
        read_selected(repo, opts, all, &on_disk, progress, &mut report);
        return Ok(report);
    };
    report.packs_listed = listed.len();
    let listed_set: HashSet<PackId> = listed.iter().map(|(id, _)| *id).collect();
    report.packs_unreferenced = on_disk.keys().filter(|id| !listed_set.contains(id)).count();

    // Packs: presence, size, footer.
    let mut bad_packs: HashMap<PackId, String> = HashMap::new();
    let mut index: HashMap<PackId, PackIndex> = HashMap::new();
    for (id, rec) in &listed {
        let path = repo.store().pack_path(id);
        let Some(&size) = on_disk.get(id) else {
            let msg = format!("pack {id} is missing ({})", path.display());
            report
                .problems
                .push(Problem::new(ProblemKind::MissingPack, &msg).pack(*id));
            bad_packs.insert(*id, msg);
            continue;
        };
        if size != rec.size {
            let msg = format!(
                "pack {id} is {size} bytes but the catalog recorded {} (truncated or altered)",
                rec.size
            );
            report
                .problems
                .push(Problem::new(ProblemKind::PackSize, &msg).pack(*id));
            bad_packs.insert(*id, msg);
        }
        match read_footer_only(&path, size) {
            Ok(entries) => {
                let mut entries = entries;
                entries.sort_by_key(|e| e.id);
                index.insert(*id, PackIndex { entries });
            }
            Err(e) => {
                let msg = format!("pack {id} is damaged: {e}");
                report
                    .problems
                    .push(Problem::new(ProblemKind::PackFooter, &msg).pack(*id));
                bad_packs.entry(*id).or_insert(msg);
            }
        }
    }

    // Read data of the selected listed packs that are present.
    let to_read: Vec<PackId> = listed
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| on_disk.contains_key(id) && !bad_packs.contains_key(id))
        .collect();
    let bad_entries = read_selected(repo, opts, to_read, &on_disk, progress, &mut report);
    for (id, why) in bad_entries.whole {
        bad_packs.entry(id).or_insert(why);
    }

    // Blob locations.
    let mut bad: HashMap<ObjectId, String> = HashMap::new();
    let blob_result = reader.for_each_blob(|id, loc| {
        if let Some(why) = bad_packs.get(&loc.pack) {
            bad.insert(id, why.clone());
        } else if let Some(why) = bad_entries.blobs.get(&(id, loc.pack)) {
            bad.insert(id, why.clone());
        } else if !listed_set.contains(&loc.pack) {
            let msg = format!(
                "blob {id} points to pack {}, which the catalog does not list",
                loc.pack
            );
            report.problems.push(
                Problem::new(ProblemKind::BlobLocation, &msg)
                    .pack(loc.pack)
                    .object(id),
            );
            if !on_disk.contains_key(&loc.pack) {
                bad.insert(id, msg);
            }
        } else if index.get(&loc.pack).is_some_and(|p| !p.has(&id, &loc)) {
            let msg = format!(
                "blob {id} is not where the catalog says in pack {} (offset {}, length {}, inner {}, raw length {})",
                loc.pack, loc.offset, loc.length, loc.inner, loc.raw_len
            );
            report.problems.push(
                Problem::new(ProblemKind::BlobLocation, &msg)
                    .pack(loc.pack)
                    .object(id),
            );
            bad.insert(id, msg);
        }
        Ok(())
    });
    if let Err(e) = blob_result {
        report.catalog_ok = false;
        report.problems.push(Problem::new(
            ProblemKind::CatalogRecord,
            format!("the catalog's blob index is damaged ({e}); run `cairn repair`"),
        ));
    }

    let walk = walk_snapshots(&reader, &bad)?;
    report.snapshots = walk.snapshots;
    report.problems.extend(walk.problems);
    report.damaged = walk.damaged;
    Ok(report)
}

/// Blobs found bad by reading packs in full.
#[derive(Default)]
struct BadEntries {
    whole: Vec<(PackId, String)>,
    blobs: HashMap<(ObjectId, PackId), String>,
}

fn read_selected(
    repo: &RawRepository,
    opts: &CheckOptions,
    candidates: Vec<PackId>,
    sizes: &HashMap<PackId, u64>,
    progress: &dyn Progress,
    report: &mut CheckReport,
) -> BadEntries {
    let mut selected: Vec<PackId> = candidates
        .into_iter()
        .filter(|id| opts.read_data.selects(id))
        .collect();
    selected.sort();
    if !selected.is_empty() {
        let bytes = selected.iter().filter_map(|id| sizes.get(id)).sum();
        progress.phase(&Phase::new("read-data", "packs").totals(selected.len() as u64, bytes));
    }
    let reads: Vec<PackRead> = selected
        .par_iter()
        .map(|id| {
            let read = read_pack_fully(repo, *id);
            progress.items(1);
            progress.bytes(sizes.get(id).copied().unwrap_or(0));
            read
        })
        .collect();
    let mut out = BadEntries::default();
    for r in reads {
        report.packs_read += 1;
        report.blobs_verified += r.verified;
        report.problems.extend(r.problems);
        if let Some(why) = r.whole {
            out.whole.push((r.id, why));
        }
        for (blob, why) in r.bad {
            out.blobs.insert((blob, r.id), why);
        }
    }
    out
}

/// What walking the snapshots found.
pub struct Walk {
    /// Snapshots walked.
    pub snapshots: usize,
    /// Snapshots with lost paths, oldest first.
    pub damaged: Vec<DamagedSnapshot>,
    /// Other findings (damaged records, trees without a copy in the packs).
    pub problems: Vec<Problem>,
}

/// Damage below one tree: (path relative to it, kind, reason).
type TreeDamage = Rc<Vec<(Vec<u8>, DamageKind, String)>>;

struct Walker<'a> {
    reader: &'a CatalogReader,
    bad: &'a HashMap<ObjectId, String>,
    memo: HashMap<TreeId, TreeDamage>,
    problems: Vec<Problem>,
}

impl Walker<'_> {
    /// Why object `id` cannot be read back, if it cannot.
    fn lost(&self, id: &ObjectId, what: &str) -> Result<Option<String>> {
        if let Some(why) = self.bad.get(id) {
            return Ok(Some(format!("{what} {id}: {why}")));
        }
        if !self.reader.has_blob(id)? {
            return Ok(Some(format!("{what} {id} is not in any pack")));
        }
        Ok(None)
    }

    fn tree(&mut self, id: TreeId) -> Result<TreeDamage> {
        if let Some(d) = self.memo.get(&id) {
            return Ok(Rc::clone(d));
        }
        let mut out = Vec::new();
        match self.reader.tree(&id) {
            Err(e) => {
                // Missing, mismatched, undecodable or unreadable: all lost.
                out.push((Vec::new(), DamageKind::Tree, error_chain(&e)));
            }
            Ok(tree) => {
                if let Some(why) = self.lost(&id.0, "tree")? {
                    self.problems.push(
                        Problem::new(
                            ProblemKind::MissingCopy,
                            format!("{why} (the catalog's copy is intact)"),
                        )
                        .object(id.0),
                    );
                }
                for entry in &tree.entries {
                    match &entry.kind {
                        EntryKind::File { chunks, .. } => {
                            for c in chunks {
                                if let Some(why) = self.lost(&c.0, "chunk")? {
                                    out.push((entry.name.clone(), DamageKind::File, why));
                                    break;
                                }
                            }
                        }
                        EntryKind::Dir { tree } => {
                            let sub = self.tree(*tree)?;
                            for (rel, kind, why) in sub.iter() {
                                let mut p = entry.name.clone();
                                if !rel.is_empty() {
                                    p.push(b'/');
                                    p.extend_from_slice(rel);
                                }
                                out.push((p, *kind, why.clone()));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let out = Rc::new(out);
        self.memo.insert(id, Rc::clone(&out));
        Ok(out)
    }
}

/// Walks every snapshot's trees, naming the paths that cannot be restored
/// given the blobs in `bad` (id → why) and those the catalog lacks.
///
/// # Errors
/// Catalog errors other than damaged records (those are reported).
pub fn walk_snapshots(reader: &CatalogReader, bad: &HashMap<ObjectId, String>) -> Result<Walk> {
    let mut walker = Walker {
        reader,
        bad,
        memo: HashMap::new(),
        problems: Vec::new(),
    };
    let mut snaps = Vec::new();
    for id in reader.snapshot_ids()? {
        match reader.snapshot(&id) {
            Ok(Some(s)) => snaps.push((id, s)),
            Ok(None) => {}
            Err(e) => walker.problems.push(
                Problem::new(
                    ProblemKind::CatalogRecord,
                    format!("snapshot record {id} is damaged: {e}"),
                )
                .object(id.0),
            ),
        }
    }
    snaps.sort_by_key(|(id, s)| (s.time_ns, *id));
    let mut damaged = Vec::new();
    for (id, snap) in &snaps {
        if let Some(why) = walker.lost(&id.0, "snapshot record")? {
            walker.problems.push(
                Problem::new(
                    ProblemKind::MissingCopy,
                    format!("{why} (the catalog's copy is intact)"),
                )
                .object(id.0),
            );
        }
        let d = walker.tree(snap.tree)?;
        if !d.is_empty() {
            damaged.push(DamagedSnapshot {
                id: *id,
                snapshot: snap.clone(),
                paths: d
                    .iter()
                    .map(|(rel, kind, why)| {
                        let mut p = vec![b'/'];
                        p.extend_from_slice(rel);
                        DamagedPath {
                            path: p,
                            kind: *kind,
                            reason: why.clone(),
                        }
                    })
                    .collect(),
            });
        }
    }
    Ok(Walk {
        snapshots: snaps.len(),
        damaged,
        problems: walker.problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8, second: u8) -> PackId {
        let mut b = [0u8; 32];
        b[0] = first;
        b[3] = second;
        PackId::from(b)
    }

    #[test]
    fn subsets_parse_and_refuse_nonsense() {
        assert_eq!(
            ReadData::parse_subset("1/5").unwrap(),
            ReadData::Subset { n: 1, m: 5 }
        );
        assert_eq!(
            ReadData::parse_subset("2.5%").unwrap(),
            ReadData::Percent(2.5)
        );
        for bad in [
            "0/5", "6/5", "1/0", "0%", "101%", "x%", "5", "", "-1/2", "1/2/3",
        ] {
            assert!(ReadData::parse_subset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn n_of_m_subsets_partition_the_packs() {
        let ids: Vec<PackId> = (0..=255u8).map(|i| id(i, i.wrapping_mul(7))).collect();
        for m in [1u32, 2, 3, 5] {
            for pack in &ids {
                let hits = (1..=m)
                    .filter(|&n| ReadData::Subset { n, m }.selects(pack))
                    .count();
                assert_eq!(hits, 1, "pack {pack} in {hits} of {m} subsets");
            }
        }
    }

    #[test]
    fn percentages_select_about_that_share_and_grow_monotonically() {
        let ids: Vec<PackId> = (0..=255u8).map(|i| id(i, 0)).collect();
        let count = |p: f64| {
            ids.iter()
                .filter(|i| ReadData::Percent(p).selects(i))
                .count()
        };
        assert_eq!(count(100.0), 256);
        assert_eq!(count(50.0), 128);
        assert_eq!(count(25.0), 64);
        for pack in &ids {
            if ReadData::Percent(10.0).selects(pack) {
                assert!(ReadData::Percent(20.0).selects(pack));
            }
        }
        assert!(!ReadData::None.selects(&ids[0]));
        assert!(ReadData::All.selects(&ids[0]));
    }
}
