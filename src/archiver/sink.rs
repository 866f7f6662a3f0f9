//! Where new blobs go during a snapshot: dedup against the catalog and this
//! session, gather small blobs into groups, compress each group as one
//! frame, and append the frames to the current pack, closing packs as they
//! fill.
//!
//! A batch's new chunks are cut into groups of up to
//! [`GROUP_TARGET_BYTES`] raw bytes, compressed in parallel and appended in
//! order; the batch's last, unfilled group (every small file's only one)
//! joins a shared accumulator, so many small files and trees share a frame.
//! Whichever thread fills the accumulator compresses and appends it, outside
//! the accumulator's lock; [`Sink::finish`] flushes what is left.
//!
//! Packs are closed as they reach the target size and staged in `tmp/`;
//! they are fsynced and renamed into place in batches (at most
//! `STAGED_PACKS_MAX` waiting) and at [`Sink::finish`], all before the
//! catalog's commit, which alone makes them referenced: a crash leaves at
//! worst unreferenced packs and temporary files, which gc removes.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::catalog::CatalogReader;
use crate::codec;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::repo::Repository;
use crate::store::pack::GROUP_TARGET_BYTES;
use crate::store::{
    BlobKind, FinishedPack, FrameBlob, PackStore, PackWriter, STAGED_PACKS_MAX, StagedPack,
};

/// Blobs gathered for one frame: their raw bytes end to end.
#[derive(Default)]
struct Group {
    blobs: Vec<FrameBlob>,
    data: Vec<u8>,
}

impl Group {
    fn push(&mut self, id: ObjectId, kind: BlobKind, raw: &[u8]) -> Result<()> {
        let too_big = || Error::invalid("group of blobs larger than 4 GiB");
        self.blobs.push(FrameBlob {
            id,
            kind,
            inner: u32::try_from(self.data.len()).map_err(|_| too_big())?,
            raw_len: u32::try_from(raw.len()).map_err(|_| too_big())?,
        });
        self.data.extend_from_slice(raw);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }
}

pub(crate) struct Sink<'a> {
    store: &'a PackStore,
    reader: &'a CatalogReader,
    level: i32,
    target: u64,
    claimed: Mutex<HashSet<ObjectId>>,
    pending: Mutex<Group>,
    current: Mutex<Option<PackWriter>>,
    /// Full packs written but not yet synced: syncing them in batches, off
    /// the path that feeds the compressors, keeps fsync waits from stalling
    /// the snapshot (one 16 MiB pack's fsync took as long as compressing it).
    staged: Mutex<Vec<StagedPack>>,
    finished: Mutex<Vec<FinishedPack>>,
    written: Mutex<(u64, u64)>,
}

impl<'a> Sink<'a> {
    /// A sink writing into `repo`'s packs with its compression level and
    /// pack size, deduplicating against `reader`.
    pub(crate) fn new(repo: &'a Repository, reader: &'a CatalogReader) -> Self {
        Self {
            store: repo.store(),
            reader,
            level: repo.config().zstd_level,
            target: repo.config().pack_target_bytes,
            claimed: Mutex::new(HashSet::new()),
            pending: Mutex::new(Group::default()),
            current: Mutex::new(None),
            staged: Mutex::new(Vec::new()),
            finished: Mutex::new(Vec::new()),
            written: Mutex::new((0, 0)),
        }
    }

    /// True when `id` must be written by the caller: not in the catalog and
    /// not already claimed by another thread of this snapshot.
    fn claim(&self, id: &ObjectId) -> Result<bool> {
        if self.reader.has_blob(id)? {
            return Ok(false);
        }
        Ok(lock(&self.claimed).insert(*id))
    }

    /// Stores the blobs `ranges` of `data` cuts out (a batch of one file's
    /// chunks): hashes them, keeps the new ones, groups, compresses and
    /// appends them. Returns every blob's id, in order.
    pub(crate) fn store_batch(
        &self,
        kind: BlobKind,
        data: &[u8],
        ranges: &[Range<usize>],
    ) -> Result<Vec<ObjectId>> {
        let hashed: Vec<Result<(ObjectId, bool)>> = ranges
            .par_iter()
            .map(|r| {
                let id = ObjectId::of(&data[r.clone()]);
                Ok((id, self.claim(&id)?))
            })
            .collect();
        let mut ids = Vec::with_capacity(ranges.len());
        let mut full: Vec<Group> = Vec::new();
        let mut open = Group::default();
        for (item, r) in hashed.into_iter().zip(ranges) {
            let (id, new) = item?;
            ids.push(id);
            if !new {
                continue;
            }
            let raw = &data[r.clone()];
            if raw.len() >= GROUP_TARGET_BYTES {
                let mut alone = Group::default();
                alone.push(id, kind, raw)?;
                full.push(alone);
                continue;
            }
            if open.data.len() + raw.len() > GROUP_TARGET_BYTES {
                full.push(std::mem::take(&mut open));
            }
            open.push(id, kind, raw)?;
        }
        let frames: Vec<Result<Vec<u8>>> = full
            .par_iter()
            .map(|g| codec::encode(&g.data, self.level))
            .collect();
        for (g, frame) in full.iter().zip(frames) {
            self.append(g, &frame?)?;
        }
        if !open.is_empty() {
            self.stash(open)?;
        }
        Ok(ids)
    }

    /// Claims and stores `raw` (a tree or snapshot record) if new, in the
    /// shared group. Returns whether it was new.
    pub(crate) fn put_raw(&self, kind: BlobKind, raw: &[u8]) -> Result<bool> {
        let id = ObjectId::of(raw);
        if !self.claim(&id)? {
            return Ok(false);
        }
        let mut g = Group::default();
        g.push(id, kind, raw)?;
        if raw.len() >= GROUP_TARGET_BYTES {
            let frame = codec::encode(&g.data, self.level)?;
            self.append(&g, &frame)?;
        } else {
            self.stash(g)?;
        }
        Ok(true)
    }

    /// Adds a group below the target to the shared accumulator; when that
    /// would overflow, the accumulated group is taken out and written by
    /// this thread, outside the lock.
    fn stash(&self, g: Group) -> Result<()> {
        let ready = {
            let mut pending = lock(&self.pending);
            let ready =
                if !pending.is_empty() && pending.data.len() + g.data.len() > GROUP_TARGET_BYTES {
                    std::mem::take(&mut *pending)
                } else {
                    Group::default()
                };
            for b in &g.blobs {
                let start = b.inner as usize;
                let raw = &g.data[start..start + b.raw_len as usize];
                pending.push(b.id, b.kind, raw)?;
            }
            ready
        };
        if !ready.is_empty() {
            let frame = codec::encode(&ready.data, self.level)?;
            self.append(&ready, &frame)?;
        }
        Ok(())
    }

    /// Appends one encoded group, closing the pack when it is full.
    fn append(&self, g: &Group, frame: &[u8]) -> Result<()> {
        let frame_raw =
            u32::try_from(g.data.len()).map_err(|_| Error::invalid("group larger than 4 GiB"))?;
        let full = {
            let mut cur = lock(&self.current);
            if cur.is_none() {
                *cur = Some(self.store.new_writer()?);
            }
            let w = cur.as_mut().expect("writer was just set");
            w.add_frame(frame, frame_raw, &g.blobs)?;
            let mut written = lock(&self.written);
            written.0 += frame.len() as u64;
            written.1 += g.blobs.len() as u64;
            if w.len() >= self.target {
                cur.take()
            } else {
                None
            }
        };
        if let Some(w) = full {
            let staged = w.finish_staged()?;
            let batch = {
                let mut all = lock(&self.staged);
                all.push(staged);
                (all.len() >= STAGED_PACKS_MAX).then(|| std::mem::take(&mut *all))
            };
            if let Some(batch) = batch {
                let done = self.store.install_all(batch)?;
                lock(&self.finished).extend(done);
            }
        }
        Ok(())
    }

    /// Encoded bytes of the frames stored so far.
    pub(crate) fn bytes_written(&self) -> u64 {
        lock(&self.written).0
    }

    /// Number of blobs stored so far.
    pub(crate) fn blobs_written(&self) -> u64 {
        lock(&self.written).1
    }

    /// Writes the shared group now, even below the target (so that
    /// [`Sink::bytes_written`] counts every blob stored so far).
    pub(crate) fn flush(&self) -> Result<()> {
        let last_group = std::mem::take(&mut *lock(&self.pending));
        if !last_group.is_empty() {
            let frame = codec::encode(&last_group.data, self.level)?;
            self.append(&last_group, &frame)?;
        }
        Ok(())
    }

    /// Writes the last group, closes the last pack; every pack returned is
    /// durable.
    pub(crate) fn finish(self) -> Result<Vec<FinishedPack>> {
        self.flush()?;
        let mut finished = self
            .finished
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = self
            .current
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut staged = self
            .staged
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = last.filter(|w| !w.is_empty()) {
            staged.push(w.finish_staged()?);
        }
        finished.extend(self.store.install_all(staged)?);
        Ok(finished)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
