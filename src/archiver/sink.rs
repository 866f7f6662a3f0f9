//! Where new blobs go during a snapshot: dedup against the catalog and this
//! session, then append to the current pack, closing packs as they fill.
//!
//! Packs are closed (fsynced, renamed into place) as they reach the target
//! size; the catalog learns of them only in the final commit, so a crash
//! leaves at worst unreferenced packs.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::catalog::CatalogReader;
use crate::codec;
use crate::error::Result;
use crate::id::ObjectId;
use crate::store::{BlobKind, FinishedPack, PackStore, PackWriter};

pub(crate) struct Sink<'a> {
    store: &'a PackStore,
    reader: &'a CatalogReader,
    level: i32,
    target: u64,
    claimed: Mutex<HashSet<ObjectId>>,
    current: Mutex<Option<PackWriter>>,
    finished: Mutex<Vec<FinishedPack>>,
    written: Mutex<(u64, u64)>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(
        store: &'a PackStore,
        reader: &'a CatalogReader,
        level: i32,
        target: u64,
    ) -> Self {
        Self {
            store,
            reader,
            level,
            target,
            claimed: Mutex::new(HashSet::new()),
            current: Mutex::new(None),
            finished: Mutex::new(Vec::new()),
            written: Mutex::new((0, 0)),
        }
    }

    /// True when `id` must be written by the caller: not in the catalog and
    /// not already claimed by another thread of this snapshot.
    pub(crate) fn claim(&self, id: &ObjectId) -> Result<bool> {
        if self.reader.has_blob(id)? {
            return Ok(false);
        }
        Ok(lock(&self.claimed).insert(*id))
    }

    /// Compresses `raw` (the caller has claimed `id`) into a frame.
    pub(crate) fn encode(&self, raw: &[u8]) -> Result<Vec<u8>> {
        codec::encode(raw, self.level)
    }

    /// Appends an encoded blob, closing the pack when it is full.
    pub(crate) fn put(
        &self,
        id: ObjectId,
        kind: BlobKind,
        raw_len: usize,
        frame: &[u8],
    ) -> Result<()> {
        let raw_len = u32::try_from(raw_len).expect("blobs are below 4 GiB");
        let full = {
            let mut cur = lock(&self.current);
            if cur.is_none() {
                *cur = Some(self.store.new_writer()?);
            }
            let w = cur.as_mut().expect("writer was just set");
            w.add(id, kind, raw_len, frame)?;
            let mut written = lock(&self.written);
            written.0 += frame.len() as u64;
            written.1 += 1;
            if w.len() >= self.target {
                cur.take()
            } else {
                None
            }
        };
        if let Some(w) = full {
            let done = w.finish(self.store)?;
            lock(&self.finished).push(done);
        }
        Ok(())
    }

    /// Claims, encodes and stores `raw` if new. Returns whether it was new.
    pub(crate) fn put_raw(&self, kind: BlobKind, raw: &[u8]) -> Result<bool> {
        let id = ObjectId::of(raw);
        if !self.claim(&id)? {
            return Ok(false);
        }
        let frame = self.encode(raw)?;
        self.put(id, kind, raw.len(), &frame)?;
        Ok(true)
    }

    /// Encoded bytes of the blobs stored so far.
    pub(crate) fn bytes_written(&self) -> u64 {
        lock(&self.written).0
    }

    /// Number of blobs stored so far.
    pub(crate) fn blobs_written(&self) -> u64 {
        lock(&self.written).1
    }

    /// Closes the last pack; every pack returned is durable.
    pub(crate) fn finish(self) -> Result<Vec<FinishedPack>> {
        let mut finished = self
            .finished
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = self
            .current
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = last.filter(|w| !w.is_empty()) {
            finished.push(w.finish(self.store)?);
        }
        Ok(finished)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
