//! The pack file format and its writer.
//!
//! ```text
//! "CAIRNPK" 0x01                      8-byte header: magic + pack version
//! frame frame frame ...               codec frames; each decodes to one
//!                                     or more blobs laid end to end
//! 0x01 postcard(Vec<PackEntry>)       footer: version + entry list
//! footer_len u32 LE, "CAIRNEND"       12-byte trailer
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::PackStore;
use crate::codec::MAX_BLOB_BYTES;
use crate::error::{Error, IoContext, Result};
use crate::id::{ObjectId, PackId};
use crate::model::{decode_versioned, encode_versioned};

/// First bytes of every pack: magic and pack format version 1.
pub const PACK_HEADER: &[u8; 8] = b"CAIRNPK\x01";
/// Last bytes of every pack.
pub const PACK_TRAILER_MAGIC: &[u8; 8] = b"CAIRNEND";
/// Trailer length: footer length (u32 LE) + magic.
pub const PACK_TRAILER_BYTES: usize = 12;
/// Version byte of the footer. 1: first format.
pub const FOOTER_VERSION: u8 = 1;
/// Version byte of a catalog blob-location record. 1: first format.
pub const LOCATION_VERSION: u8 = 1;

/// Writers put consecutive small blobs into one frame (a group) until its
/// raw content reaches this size; a blob this large gets a frame of its
/// own. zstd finds far more redundancy across 1 MiB of neighbouring chunks
/// and small files than in each alone (docs/ARCHITECTURE.md, "Grouped
/// frames"), while reading one blob decodes at most this much (~1.5 ms).
pub const GROUP_TARGET_BYTES: usize = 1 << 20;

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobKind {
    /// File content.
    Chunk,
    /// An encoded directory tree.
    Tree,
    /// An encoded snapshot record.
    Snapshot,
}

/// One blob as the footer lists it.
///
/// A frame may hold several blobs compressed together (a *group*): they
/// share `offset`, `length` and `frame_raw`, and `inner` says where the
/// blob's `raw_len` bytes start in the decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    /// Hash of the raw bytes.
    pub id: ObjectId,
    /// What the raw bytes are.
    pub kind: BlobKind,
    /// Byte offset of the frame in the pack.
    pub offset: u64,
    /// Frame length in bytes.
    pub length: u32,
    /// Decoded length of the whole frame in bytes.
    pub frame_raw: u32,
    /// Offset of the blob's bytes in the decoded frame.
    pub inner: u32,
    /// Raw (decoded) length of the blob in bytes.
    pub raw_len: u32,
}

impl PackEntry {
    /// True when the frame holds bytes besides this blob's (a group).
    pub fn is_grouped(&self) -> bool {
        self.raw_len != self.frame_raw
    }
}

/// Where the catalog says a blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// What it is.
    pub kind: BlobKind,
    /// Frame offset.
    pub offset: u64,
    /// Frame length.
    pub length: u32,
    /// Decoded length of the whole frame.
    pub frame_raw: u32,
    /// Offset of the blob's bytes in the decoded frame.
    pub inner: u32,
    /// Raw length of the blob.
    pub raw_len: u32,
}

impl BlobLocation {
    /// The location of `entry` in `pack`.
    pub fn new(pack: PackId, entry: &PackEntry) -> Self {
        Self {
            pack,
            kind: entry.kind,
            offset: entry.offset,
            length: entry.length,
            frame_raw: entry.frame_raw,
            inner: entry.inner,
            raw_len: entry.raw_len,
        }
    }

    /// True when the frame holds bytes besides this blob's (a group).
    pub fn is_grouped(&self) -> bool {
        self.raw_len != self.frame_raw
    }

    /// This blob's bytes within `decoded`, the decoded frame.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Corrupt`] when the frame does not have the
    /// declared length or the blob does not lie inside it.
    pub fn slice<'d>(&self, decoded: &'d [u8]) -> Result<&'d [u8]> {
        slice_blob(decoded, self.frame_raw, self.inner, self.raw_len)
    }

    /// Versioned catalog encoding.
    ///
    /// # Errors
    /// Only on a serializer failure.
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_versioned(LOCATION_VERSION, self)
    }

    /// Decodes a catalog record.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Corrupt`] on bad bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let loc: Self = decode_versioned(LOCATION_VERSION, "blob location", bytes)?;
        check_inner(loc.frame_raw, loc.inner, loc.raw_len)
            .map_err(|why| Error::corrupt(format!("blob location: {why}")))?;
        Ok(loc)
    }
}

/// `Err(why)` unless a blob of `raw_len` bytes at `inner` fits in a frame
/// decoding to `frame_raw` bytes, itself within [`MAX_BLOB_BYTES`].
fn check_inner(frame_raw: u32, inner: u32, raw_len: u32) -> std::result::Result<(), String> {
    if frame_raw as usize > MAX_BLOB_BYTES {
        return Err(format!("frame of {frame_raw} raw bytes is over the limit"));
    }
    if u64::from(inner) + u64::from(raw_len) > u64::from(frame_raw) {
        return Err(format!(
            "blob at {inner}+{raw_len} lies outside its frame of {frame_raw} bytes"
        ));
    }
    Ok(())
}

/// The blob at `inner`, `raw_len` bytes long, in a decoded frame that must
/// be `frame_raw` bytes long.
///
/// # Errors
/// [`crate::ErrorKind::Corrupt`] on any inconsistency; never panics.
pub fn slice_blob(decoded: &[u8], frame_raw: u32, inner: u32, raw_len: u32) -> Result<&[u8]> {
    if decoded.len() != frame_raw as usize {
        return Err(Error::corrupt(format!(
            "frame decodes to {} bytes, its entries say {frame_raw}",
            decoded.len()
        )));
    }
    let start = inner as usize;
    start
        .checked_add(raw_len as usize)
        .and_then(|end| decoded.get(start..end))
        .ok_or_else(|| {
            Error::corrupt(format!(
                "blob at {inner}+{raw_len} lies outside its frame of {frame_raw} bytes"
            ))
        })
}

/// One blob of a frame being added to a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBlob {
    /// Hash of the raw bytes.
    pub id: ObjectId,
    /// What the raw bytes are.
    pub kind: BlobKind,
    /// Offset of its bytes in the decoded frame.
    pub inner: u32,
    /// Its raw length.
    pub raw_len: u32,
}

/// The footer entries of a pack, one slice per frame (entries of a frame
/// are contiguous in a valid footer).
pub fn frames(entries: &[PackEntry]) -> impl Iterator<Item = &[PackEntry]> {
    entries.chunk_by(|a, b| a.offset == b.offset)
}

/// A pack that is durable in `objects/`.
#[derive(Debug, Clone)]
pub struct FinishedPack {
    /// Its id (hash of the file).
    pub id: PackId,
    /// File size in bytes.
    pub size: u64,
    /// The blobs it holds.
    pub entries: Vec<PackEntry>,
}

/// Appends blobs to a temporary pack file.
pub struct PackWriter {
    file: BufWriter<File>,
    tmp_path: Option<PathBuf>,
    hasher: blake3::Hasher,
    entries: Vec<PackEntry>,
    len: u64,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl PackWriter {
    pub(crate) fn create(tmp_dir: &Path) -> Result<Self> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = tmp_dir.join(format!("pack-{}-{n}-{nanos}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .at("creating temporary pack", &path)?;
        let mut w = Self {
            file: BufWriter::with_capacity(1 << 20, file),
            tmp_path: Some(path),
            hasher: blake3::Hasher::new(),
            entries: Vec::new(),
            len: 0,
        };
        w.write(PACK_HEADER)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        let path = self.tmp_path.as_deref().unwrap_or(Path::new("tmp"));
        self.file
            .write_all(bytes)
            .at("writing temporary pack", path)
    }

    /// Appends a frame holding one blob (its whole decoded content).
    ///
    /// # Errors
    /// On a write failure (disk full…); the pack is then abandoned.
    pub fn add(&mut self, id: ObjectId, kind: BlobKind, raw_len: u32, frame: &[u8]) -> Result<()> {
        let blob = FrameBlob {
            id,
            kind,
            inner: 0,
            raw_len,
        };
        self.add_frame(frame, raw_len, &[blob])
    }

    /// Appends one encoded frame decoding to `frame_raw` bytes that holds
    /// `blobs` (at least one).
    ///
    /// # Errors
    /// When a blob lies outside the frame, or on a write failure (disk
    /// full…); the pack is then abandoned.
    pub fn add_frame(&mut self, frame: &[u8], frame_raw: u32, blobs: &[FrameBlob]) -> Result<()> {
        let length = u32::try_from(frame.len())
            .map_err(|_| Error::invalid("blob frame larger than 4 GiB"))?;
        if blobs.is_empty() {
            return Err(Error::invalid("a frame must hold at least one blob"));
        }
        for b in blobs {
            check_inner(frame_raw, b.inner, b.raw_len).map_err(Error::invalid)?;
        }
        let offset = self.len;
        self.write(frame)?;
        self.entries.extend(blobs.iter().map(|b| PackEntry {
            id: b.id,
            kind: b.kind,
            offset,
            length,
            frame_raw,
            inner: b.inner,
            raw_len: b.raw_len,
        }));
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no blob has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the footer, makes the pack durable and moves it into `objects/`.
    ///
    /// # Errors
    /// On any write, sync or rename failure; nothing is then referenced.
    pub fn finish(self, store: &PackStore) -> Result<FinishedPack> {
        let staged = self.finish_staged()?;
        staged.sync()?;
        store.install(staged)
    }

    /// Writes the footer and flushes, without syncing or moving the pack
    /// into place: [`PackStore::install_all`] does both for a batch of
    /// packs at once (one wait for all the fsyncs, one fsync per
    /// directory). Until then nothing may reference the pack; a dropped
    /// [`StagedPack`] removes its temporary file.
    ///
    /// # Errors
    /// On any write failure; the pack is then abandoned.
    pub fn finish_staged(mut self) -> Result<StagedPack> {
        let footer = encode_versioned(FOOTER_VERSION, &self.entries)?;
        let footer_len = u32::try_from(footer.len())
            .map_err(|_| Error::invalid("pack footer larger than 4 GiB"))?;
        self.write(&footer)?;
        self.write(&footer_len.to_le_bytes())?;
        self.write(PACK_TRAILER_MAGIC)?;
        let path = self.tmp_path.clone().expect("unfinished pack has a path");
        self.file.flush().at("writing temporary pack", &path)?;
        let id = PackId::from(*self.hasher.finalize().as_bytes());
        let entries = std::mem::take(&mut self.entries);
        let file = self
            .file
            .get_ref()
            .try_clone()
            .at("writing temporary pack", &path)?;
        // The temporary file now belongs to the staged pack.
        self.tmp_path = None;
        Ok(StagedPack {
            file,
            tmp_path: Some(path),
            pack: FinishedPack {
                id,
                size: self.len,
                entries,
            },
        })
    }
}

/// A complete pack in `tmp/`, written and flushed but neither synced nor in
/// `objects/` yet (see [`PackWriter::finish_staged`]).
pub struct StagedPack {
    file: File,
    tmp_path: Option<PathBuf>,
    pack: FinishedPack,
}

impl StagedPack {
    /// The pack's id.
    pub fn id(&self) -> PackId {
        self.pack.id
    }

    /// fsyncs the temporary file.
    pub(crate) fn sync(&self) -> Result<()> {
        let path = self.tmp_path.as_deref().unwrap_or(Path::new("tmp"));
        self.file.sync_all().at("syncing pack", path)
    }

    pub(crate) fn tmp_path(&self) -> &Path {
        self.tmp_path.as_deref().expect("staged pack has a path")
    }

    /// The pack, once its file has been moved into place.
    pub(crate) fn installed(mut self) -> FinishedPack {
        self.tmp_path = None;
        FinishedPack {
            id: self.pack.id,
            size: self.pack.size,
            entries: std::mem::take(&mut self.pack.entries),
        }
    }
}

impl Drop for StagedPack {
    fn drop(&mut self) {
        if let Some(path) = self.tmp_path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        if let Some(path) = self.tmp_path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Parses the footer out of a whole pack file.
///
/// # Errors
/// [`crate::ErrorKind::Corrupt`] when header, trailer or footer are damaged,
/// or an entry points outside the blob area.
pub fn parse_footer(pack: &[u8]) -> Result<Vec<PackEntry>> {
    let n = pack.len();
    if n < PACK_HEADER.len() + PACK_TRAILER_BYTES || &pack[..PACK_HEADER.len()] != PACK_HEADER {
        return Err(Error::corrupt("not a cairn pack (bad header or too short)"));
    }
    if &pack[n - 8..] != PACK_TRAILER_MAGIC {
        return Err(Error::corrupt("pack trailer is missing (truncated pack?)"));
    }
    let len_at = n - PACK_TRAILER_BYTES;
    let footer_len = u32::from_le_bytes([
        pack[len_at],
        pack[len_at + 1],
        pack[len_at + 2],
        pack[len_at + 3],
    ]) as usize;
    let blobs_end = len_at
        .checked_sub(footer_len)
        .filter(|&s| s >= PACK_HEADER.len())
        .ok_or_else(|| Error::corrupt("pack footer length is out of range"))?;
    let entries: Vec<PackEntry> =
        decode_versioned(FOOTER_VERSION, "pack footer", &pack[blobs_end..len_at])?;
    check_entries(&entries, blobs_end as u64)?;
    Ok(entries)
}

/// The footer rules every reader applies (docs/FORMAT.md, Packs): each
/// frame lies between the header and `blobs_end`; frames come in offset
/// order without overlapping, so the entries of one frame are contiguous
/// and agree on `length` and `frame_raw`; each blob lies inside its
/// decoded frame.
///
/// # Errors
/// [`crate::ErrorKind::Corrupt`] naming the first entry at fault.
pub fn check_entries(entries: &[PackEntry], blobs_end: u64) -> Result<()> {
    let mut prev: Option<&PackEntry> = None;
    for e in entries {
        let bad = |why: String| Error::corrupt(format!("pack footer entry {}: {why}", e.id));
        let end = e.offset.checked_add(u64::from(e.length));
        if e.offset < PACK_HEADER.len() as u64 || end.is_none_or(|end| end > blobs_end) {
            return Err(Error::corrupt(format!(
                "pack footer entry {} points outside the pack",
                e.id
            )));
        }
        check_inner(e.frame_raw, e.inner, e.raw_len).map_err(bad)?;
        if let Some(p) = prev {
            if p.offset == e.offset {
                if p.length != e.length || p.frame_raw != e.frame_raw {
                    return Err(bad("disagrees with the other blobs of its frame".into()));
                }
            } else if e.offset < p.offset + u64::from(p.length) {
                return Err(bad("overlaps or precedes the previous frame".into()));
            }
        }
        prev = Some(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn written_pack_round_trips_through_footer_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (objects, tmp) = (dir.path().join("objects"), dir.path().join("tmp"));
        fs::create_dir_all(&objects).unwrap();
        fs::create_dir_all(&tmp).unwrap();
        let store = PackStore::new(objects, tmp.clone());
        let mut w = store.new_writer().unwrap();
        let blobs: Vec<Vec<u8>> = vec![b"hello".to_vec(), vec![0u8; 10_000], Vec::new()];
        for b in &blobs {
            let frame = codec::encode(b, 3).unwrap();
            w.add(ObjectId::of(b), BlobKind::Chunk, b.len() as u32, &frame)
                .unwrap();
        }
        let done = w.finish(&store).unwrap();
        assert_eq!(
            fs::read_dir(&tmp).unwrap().count(),
            0,
            "temp file left behind"
        );
        let bytes = fs::read(store.pack_path(&done.id)).unwrap();
        assert_eq!(PackId::of(&bytes), done.id);
        assert_eq!(bytes.len() as u64, done.size);
        assert_eq!(parse_footer(&bytes).unwrap(), done.entries);
        for (b, e) in blobs.iter().zip(&done.entries) {
            let loc = BlobLocation::new(done.id, e);
            assert_eq!(&store.read_blob(&e.id, &loc).unwrap(), b);
        }
        assert_eq!(store.list_packs().unwrap(), vec![(done.id, done.size)]);
    }

    #[test]
    fn grouped_frames_round_trip_and_inconsistent_entries_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (objects, tmp) = (dir.path().join("objects"), dir.path().join("tmp"));
        fs::create_dir_all(&objects).unwrap();
        fs::create_dir_all(&tmp).unwrap();
        let store = PackStore::new(objects, tmp);
        let mut w = store.new_writer().unwrap();
        let blobs: [&[u8]; 3] = [b"first blob ", b"second blob ", b"third"];
        let data = blobs.concat();
        let mut inner = 0u32;
        let group: Vec<FrameBlob> = blobs
            .iter()
            .map(|b| {
                let fb = FrameBlob {
                    id: ObjectId::of(b),
                    kind: BlobKind::Chunk,
                    inner,
                    raw_len: b.len() as u32,
                };
                inner += b.len() as u32;
                fb
            })
            .collect();
        w.add_frame(&codec::encode(&data, 3).unwrap(), data.len() as u32, &group)
            .unwrap();
        w.add(
            ObjectId::of(b"alone"),
            BlobKind::Tree,
            5,
            &codec::encode(b"alone", 3).unwrap(),
        )
        .unwrap();
        let bad = FrameBlob {
            inner: 30,
            ..group[0]
        };
        assert!(
            w.add_frame(b"xxxxx", 31, &[bad]).is_err(),
            "blob past its frame"
        );
        let done = w.finish(&store).unwrap();
        let bytes = fs::read(store.pack_path(&done.id)).unwrap();
        let entries = parse_footer(&bytes).unwrap();
        assert_eq!(frames(&entries).count(), 2);
        for (b, e) in blobs.iter().zip(&entries) {
            assert!(e.is_grouped());
            let loc = BlobLocation::new(done.id, e);
            assert_eq!(&store.read_blob(&e.id, &loc).unwrap(), b);
        }
        // A location whose blob lies outside its frame, or whose frame is
        // not as long as it says, is corrupt, not a panic.
        let mut loc = BlobLocation::new(done.id, &entries[0]);
        loc.inner = loc.frame_raw;
        assert!(BlobLocation::decode(&loc.encode().unwrap()).is_err());
        assert!(store.read_blob(&entries[0].id, &loc).is_err());
        let mut loc = BlobLocation::new(done.id, &entries[0]);
        loc.frame_raw += 1;
        assert!(store.read_blob(&entries[0].id, &loc).is_err());

        let blobs_end = entries[3].offset + u64::from(entries[3].length);
        assert!(check_entries(&entries, blobs_end).is_ok());
        let mut split = entries.clone();
        split[1].frame_raw -= 1; // disagrees with its frame
        assert!(check_entries(&split, blobs_end).is_err());
        let mut apart = entries.clone();
        apart.swap(1, 3); // the frame's entries are no longer contiguous
        assert!(check_entries(&apart, blobs_end).is_err());
        let mut outside = entries.clone();
        outside[2].inner = outside[2].frame_raw - 1;
        assert!(check_entries(&outside, blobs_end).is_err());
    }

    #[test]
    fn truncated_pack_footer_is_corrupt() {
        assert!(parse_footer(b"CAIRNPK\x01").is_err());
        let mut fake = PACK_HEADER.to_vec();
        fake.extend_from_slice(&999u32.to_le_bytes());
        fake.extend_from_slice(PACK_TRAILER_MAGIC);
        assert!(parse_footer(&fake).is_err());
    }

    #[test]
    fn abandoned_writer_removes_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = PackWriter::create(dir.path()).unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
