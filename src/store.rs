//! Pack files in the repository's object directory.
//!
//! A pack holds many blobs (chunks, trees, snapshot records) followed by a
//! footer listing them, so the catalog's index can be rebuilt from the packs
//! alone. Packs are immutable once renamed into place; a pack's id is the
//! BLAKE3 hash of its whole file.
//!
//! **Invariants:** the store deals in bytes and ids only; it never parses a
//! tree or a snapshot. A pack is written to `tmp/`, fsynced, renamed to
//! `objects/xx/<id>` and its directory fsynced before [`PackWriter::finish`]
//! returns: only then may the catalog reference it.

mod frame_cache;
pub mod pack;

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::codec;
use crate::error::{Error, IoContext, Result};
use crate::id::{ObjectId, PackId};
pub use pack::{
    BlobKind, BlobLocation, FinishedPack, FrameBlob, PackEntry, PackWriter, StagedPack,
};

/// Open pack handles kept for reads; beyond this the cache is emptied.
const OPEN_PACKS_CACHED: usize = 64;

/// Decoded group frames kept for reads (shared by all threads): restoring
/// many small files that share groups decodes each group about once.
/// 8 MiB holds 8 full groups: two threads reading files in order need a
/// few; more only raised restore's peak memory (114 → 74 MiB restoring
/// 100k small files, same CPU time).
const FRAME_CACHE_BYTES: usize = 8 << 20;

/// Blob `id` sliced out of `decoded`, its frame at `loc`, checked against
/// its hash.
///
/// # Errors
/// [`crate::ErrorKind::Corrupt`] when the slice is out of bounds or the
/// bytes do not hash to `id`.
pub fn verified_blob<'d>(id: &ObjectId, loc: &BlobLocation, decoded: &'d [u8]) -> Result<&'d [u8]> {
    let raw = loc
        .slice(decoded)
        .map_err(|e| Error::corrupt(format!("blob {id} in pack {}: {e}", loc.pack)))?;
    if ObjectId::of(raw) != *id {
        return Err(Error::corrupt(format!(
            "blob {id} in pack {} does not match its hash",
            loc.pack
        )));
    }
    Ok(raw)
}

/// Staged packs kept before syncing them as one batch
/// ([`PackStore::install_all`]); bounds the open files and the data not yet
/// synced.
pub(crate) const STAGED_PACKS_MAX: usize = 32;

/// The `objects/` directory plus the `tmp/` directory packs are staged in.
pub struct PackStore {
    objects: PathBuf,
    tmp: PathBuf,
    open: Mutex<HashMap<PackId, Arc<File>>>,
    frames: frame_cache::FrameCache,
}

impl PackStore {
    /// A store over `objects` staging new packs in `tmp`.
    pub fn new(objects: PathBuf, tmp: PathBuf) -> Self {
        Self {
            objects,
            tmp,
            open: Mutex::new(HashMap::new()),
            frames: frame_cache::FrameCache::new(FRAME_CACHE_BYTES),
        }
    }

    /// Where pack `id` lives.
    pub fn pack_path(&self, id: &PackId) -> PathBuf {
        let hex = id.to_hex();
        self.objects.join(&hex[..2]).join(hex)
    }

    /// Starts a new pack in `tmp/`.
    ///
    /// # Errors
    /// When the temporary file cannot be created.
    pub fn new_writer(&self) -> Result<PackWriter> {
        PackWriter::create(&self.tmp)
    }

    /// Moves a synced temporary pack into place, durably.
    pub(crate) fn install(&self, staged: StagedPack) -> Result<FinishedPack> {
        let dest = self.pack_path(&staged.id());
        let dir = dest.parent().expect("pack path has a parent");
        if !dir.exists() {
            fs::create_dir_all(dir).at("creating pack directory", dir)?;
            sync_dir(&self.objects)?;
        }
        fs::rename(staged.tmp_path(), &dest).at("moving pack into place at", &dest)?;
        sync_dir(dir)?;
        Ok(staged.installed())
    }

    /// Makes a batch of staged packs durable and moves them into place:
    /// fsyncs every temporary file (concurrently, so the waits overlap),
    /// renames each into `objects/`, then fsyncs each directory touched
    /// once. When this returns `Ok`, every pack is durable in `objects/`
    /// and may be referenced; on an error, those not yet moved are removed
    /// and any already moved are unreferenced garbage.
    ///
    /// # Errors
    /// On any sync, rename or directory sync failure.
    pub fn install_all(&self, staged: Vec<StagedPack>) -> Result<Vec<FinishedPack>> {
        if staged.is_empty() {
            return Ok(Vec::new());
        }
        concurrently(&staged, StagedPack::sync)?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut created = false;
        let mut out = Vec::with_capacity(staged.len());
        for p in staged {
            let dest = self.pack_path(&p.id());
            let dir = dest.parent().expect("pack path has a parent");
            if !dir.exists() {
                fs::create_dir_all(dir).at("creating pack directory", dir)?;
                created = true;
            }
            fs::rename(p.tmp_path(), &dest).at("moving pack into place at", &dest)?;
            dirs.push(dir.to_path_buf());
            out.push(p.installed());
        }
        if created {
            sync_dir(&self.objects)?;
        }
        sync_dirs(dirs)?;
        Ok(out)
    }

    fn handle(&self, id: &PackId) -> Result<Arc<File>> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(f) = open.get(id) {
            return Ok(Arc::clone(f));
        }
        let path = self.pack_path(id);
        let file = File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::corrupt(format!("pack {} is missing ({})", id, path.display()))
            } else {
                Error::io("opening pack", &path, e)
            }
        })?;
        if open.len() >= OPEN_PACKS_CACHED {
            open.clear();
        }
        let file = Arc::new(file);
        open.insert(*id, Arc::clone(&file));
        Ok(file)
    }

    /// Reads, decodes and verifies one blob: reads its frame (or finds it
    /// decoded in the cache when it is a group), slices the blob out and
    /// checks its hash.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Corrupt`] when the pack is missing or short, the
    /// frame does not decode, or the bytes do not hash to `id`.
    pub fn read_blob(&self, id: &ObjectId, loc: &BlobLocation) -> Result<Vec<u8>> {
        let key = (loc.pack, loc.offset);
        let cached = if loc.is_grouped() {
            self.frames.get(&key)
        } else {
            None
        };
        let decoded = match cached {
            Some(d) => d,
            None => {
                let d = Arc::new(self.read_frame(loc, id)?);
                if loc.is_grouped() && d.len() == loc.frame_raw as usize {
                    self.frames.insert(key, Arc::clone(&d));
                }
                d
            }
        };
        Ok(verified_blob(id, loc, &decoded)?.to_vec())
    }

    /// Reads and decodes the frame at `loc` (which holds blob `id`), without
    /// the cache: for callers that use each frame once, such as a restore
    /// that writes a large file frame by frame.
    ///
    /// # Errors
    /// As [`Self::read_blob`].
    pub fn read_frame(&self, loc: &BlobLocation, id: &ObjectId) -> Result<Vec<u8>> {
        let file = self.handle(&loc.pack)?;
        let mut frame = vec![0u8; loc.length as usize];
        file.read_exact_at(&mut frame, loc.offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt(format!("pack {} is truncated (blob {id})", loc.pack))
            } else {
                Error::io("reading pack", &self.pack_path(&loc.pack), e)
            }
        })?;
        codec::decode(&frame)
            .map_err(|e| Error::corrupt(format!("blob {id} in pack {}: {e}", loc.pack)))
    }

    /// Every pack file present, with its size in bytes.
    ///
    /// # Errors
    /// When the object directory cannot be read.
    pub fn list_packs(&self) -> Result<Vec<(PackId, u64)>> {
        let mut out = Vec::new();
        for sub in fs::read_dir(&self.objects).at("listing", &self.objects)? {
            let sub = sub.at("listing", &self.objects)?;
            if !sub.file_type().at("listing", &sub.path())?.is_dir() {
                continue;
            }
            for f in fs::read_dir(sub.path()).at("listing", &sub.path())? {
                let f = f.at("listing", &sub.path())?;
                let Some(id) = f
                    .file_name()
                    .to_str()
                    .and_then(|n| ObjectId::from_hex(n).ok())
                else {
                    continue;
                };
                let len = f.metadata().at("reading size of", &f.path())?.len();
                out.push((PackId(id), len));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads the footer of pack `id`: the list of blobs it holds.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Corrupt`] when the trailer or footer is damaged.
    pub fn read_footer(&self, id: &PackId) -> Result<Vec<PackEntry>> {
        let path = self.pack_path(id);
        let bytes = fs::read(&path).at("reading pack", &path)?;
        pack::parse_footer(&bytes).map_err(|e| Error::corrupt(format!("pack {id}: {e}")))
    }
}

// ---------------------------------------------------------------------------
// Removal, for garbage collection. The caller must hold the repository lock
// exclusively, and remove a pack only after the catalog commit that drops
// every reference to it (docs/FORMAT.md, ordering rule 7).
// ---------------------------------------------------------------------------

impl PackStore {
    /// Deletes pack `id` (a pack already gone is not an error) without
    /// syncing its directory: call [`PackStore::sync_pack_dirs`] after a
    /// batch of removals.
    ///
    /// # Errors
    /// When the file exists but cannot be removed.
    pub fn remove_pack_unsynced(&self, id: &PackId) -> Result<()> {
        self.forget_handle(id);
        let path = self.pack_path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing pack", &path, e)),
        }
    }

    /// Deletes pack `id` and fsyncs its directory so the removal is durable.
    ///
    /// # Errors
    /// When the file cannot be removed or the directory synced.
    pub fn remove_pack(&self, id: &PackId) -> Result<()> {
        self.remove_pack_unsynced(id)?;
        self.sync_pack_dirs(std::slice::from_ref(id))
    }

    /// fsyncs the directories holding `ids` (each once).
    ///
    /// # Errors
    /// When a directory cannot be synced.
    pub fn sync_pack_dirs(&self, ids: &[PackId]) -> Result<()> {
        let dirs: Vec<PathBuf> = ids
            .iter()
            .filter_map(|id| self.pack_path(id).parent().map(Path::to_path_buf))
            .collect();
        sync_dirs(dirs.into_iter().filter(|d| d.exists()).collect())
    }

    /// Every file in `tmp/`, with its size: leftovers of interrupted writers
    /// (nothing references them).
    ///
    /// # Errors
    /// When `tmp/` cannot be listed.
    pub fn tmp_files(&self) -> Result<Vec<(PathBuf, u64)>> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.tmp) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("listing", &self.tmp, e)),
        };
        for f in rd {
            let f = f.at("listing", &self.tmp)?;
            let md = f.metadata().at("reading size of", &f.path())?;
            if md.is_file() {
                out.push((f.path(), md.len()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes the given files of `tmp/` and fsyncs `tmp/`.
    ///
    /// # Errors
    /// When a file cannot be removed (one already gone is fine).
    pub fn remove_tmp_files(&self, files: &[PathBuf]) -> Result<()> {
        for f in files {
            if !f.starts_with(&self.tmp) {
                return Err(Error::invalid(format!(
                    "{} is not in the repository's tmp directory",
                    f.display()
                )));
            }
            match fs::remove_file(f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("removing", f, e)),
            }
        }
        if !files.is_empty() {
            sync_dir(&self.tmp)?;
        }
        Ok(())
    }

    /// Drops a cached read handle, so a removed pack is not read from.
    fn forget_handle(&self, id: &PackId) {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// fsyncs each of `dirs` once, concurrently (the waits overlap).
fn sync_dirs(mut dirs: Vec<PathBuf>) -> Result<()> {
    dirs.sort();
    dirs.dedup();
    concurrently(&dirs, |d| sync_dir(d))
}

/// Runs `f` on every item, up to [`SYNCS_IN_FLIGHT`] at a time on their own
/// threads: for fsyncs, which wait on the device rather than use a CPU, so
/// their waits overlap and the device can merge the flushes.
fn concurrently<T: Sync>(items: &[T], f: impl Fn(&T) -> Result<()> + Sync) -> Result<()> {
    if items.len() <= 1 {
        return items.iter().try_for_each(&f);
    }
    for batch in items.chunks(SYNCS_IN_FLIGHT) {
        std::thread::scope(|s| {
            let waits: Vec<_> = batch.iter().map(|i| s.spawn(|| f(i))).collect();
            waits
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Result<Vec<()>>>()
        })?;
    }
    Ok(())
}

/// Concurrent fsyncs at most (see [`concurrently`]).
const SYNCS_IN_FLIGHT: usize = 8;

/// fsyncs a directory so a rename or create in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("syncing directory", dir)
}
