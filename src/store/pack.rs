//! The pack file format and its writer.
//!
//! ```text
//! "CAIRNPK" 0x01                      8-byte header: magic + pack version
//! frame frame frame ...               blobs, each a codec frame
//! 0x01 postcard(Vec<PackEntry>)       footer: version + entry list
//! footer_len u32 LE, "CAIRNEND"       12-byte trailer
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::PackStore;
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
    /// Raw (decoded) length in bytes.
    pub raw_len: u32,
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
    /// Raw length.
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
            raw_len: entry.raw_len,
        }
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
        decode_versioned(LOCATION_VERSION, "blob location", bytes)
    }
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

    /// Appends one encoded blob.
    ///
    /// # Errors
    /// On a write failure (disk full…); the pack is then abandoned.
    pub fn add(&mut self, id: ObjectId, kind: BlobKind, raw_len: u32, frame: &[u8]) -> Result<()> {
        let length = u32::try_from(frame.len())
            .map_err(|_| Error::invalid("blob frame larger than 4 GiB"))?;
        let offset = self.len;
        self.write(frame)?;
        self.entries.push(PackEntry {
            id,
            kind,
            offset,
            length,
            raw_len,
        });
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
    pub fn finish(mut self, store: &PackStore) -> Result<FinishedPack> {
        let footer = encode_versioned(FOOTER_VERSION, &self.entries)?;
        let footer_len = u32::try_from(footer.len())
            .map_err(|_| Error::invalid("pack footer larger than 4 GiB"))?;
        self.write(&footer)?;
        self.write(&footer_len.to_le_bytes())?;
        self.write(PACK_TRAILER_MAGIC)?;
        let path = self.tmp_path.clone().expect("unfinished pack has a path");
        self.file.flush().at("writing temporary pack", &path)?;
        self.file.get_ref().sync_all().at("syncing pack", &path)?;
        let id = PackId::from(*self.hasher.finalize().as_bytes());
        store.install(&path, &id)?;
        self.tmp_path = None;
        Ok(FinishedPack {
            id,
            size: self.len,
            entries: std::mem::take(&mut self.entries),
        })
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
    for e in &entries {
        let end = e.offset.checked_add(u64::from(e.length));
        if e.offset < PACK_HEADER.len() as u64 || end.is_none_or(|end| end > blobs_end as u64) {
            return Err(Error::corrupt(format!(
                "pack footer entry {} points outside the pack",
                e.id
            )));
        }
    }
    Ok(entries)
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
