//! The manifest model: directory [`Tree`] nodes and [`Snapshot`] records.
//!
//! Both are stored as `[version byte] ++ postcard(value)`; an object's id is
//! the BLAKE3 hash of exactly those bytes, so trees form a Merkle tree and an
//! unchanged directory has the same [`TreeId`] in every snapshot.
//!
//! **Invariants:** encoding is deterministic (entries sorted by raw name
//! bytes, no maps, no optional-field skipping). Decoding validates what
//! restore relies on: names are non-empty, contain no `/` or NUL, are not
//! `.` or `..`, and are strictly increasing, so joining a name to a target
//! directory can never leave it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{ChunkId, SnapshotId, TreeId};

/// Version byte of an encoded [`Tree`]. 1: first format.
pub const TREE_VERSION: u8 = 1;
/// Version byte of an encoded [`Snapshot`]. 1: first format.
pub const SNAPSHOT_VERSION: u8 = 1;

/// One directory's entries, sorted by raw name bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tree {
    /// Entries, strictly increasing by `name`.
    pub entries: Vec<Entry>,
}

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Raw file-name bytes (not always UTF-8).
    pub name: Vec<u8>,
    /// What it is, with its content reference.
    pub kind: EntryKind,
    /// Ownership, permissions and times, as `lstat` reported them.
    pub meta: Meta,
}

/// The type of an entry and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A regular file: its size and the chunks whose concatenation is its content.
    File {
        /// Length in bytes.
        size: u64,
        /// Content, in order.
        chunks: Vec<ChunkId>,
    },
    /// A directory and its node.
    Dir {
        /// The child node.
        tree: TreeId,
    },
    /// A symbolic link, stored, never followed.
    Symlink {
        /// Raw target bytes.
        target: Vec<u8>,
    },
    /// A named pipe.
    Fifo,
    /// A character or block device.
    Device {
        /// True for a block device.
        block: bool,
        /// The device number.
        rdev: u64,
    },
    /// A Unix socket (recorded, not restorable as a live socket).
    Socket,
}

/// Metadata of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Meta {
    /// Permission bits and set-id/sticky bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time, ns since the Unix epoch.
    pub mtime_ns: i64,
    /// Status-change time, ns since the Unix epoch (change detection only).
    pub ctime_ns: i64,
    /// Inode number (change detection only).
    pub inode: u64,
}

impl Entry {
    /// The file size, or 0 for anything that is not a regular file.
    pub fn size(&self) -> u64 {
        match &self.kind {
            EntryKind::File { size, .. } => *size,
            _ => 0,
        }
    }

    /// The type as a word, as JSON output names it.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            EntryKind::File { .. } => "file",
            EntryKind::Dir { .. } => "dir",
            EntryKind::Symlink { .. } => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::Device { .. } => "device",
            EntryKind::Socket => "socket",
        }
    }

    /// A one-letter type tag as `ls -l` prints it.
    pub fn type_char(&self) -> char {
        match &self.kind {
            EntryKind::File { .. } => '-',
            EntryKind::Dir { .. } => 'd',
            EntryKind::Symlink { .. } => 'l',
            EntryKind::Fifo => 'p',
            EntryKind::Device { block: true, .. } => 'b',
            EntryKind::Device { block: false, .. } => 'c',
            EntryKind::Socket => 's',
        }
    }
}

/// Whether `name` is safe to join to a directory path.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

impl Tree {
    /// The encoded bytes whose hash is this tree's id.
    ///
    /// # Errors
    /// When entries are unsorted or a name is invalid (a bug in the caller).
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        encode_versioned(TREE_VERSION, self)
    }

    /// Encodes and returns the id together with the bytes.
    ///
    /// # Errors
    /// As [`Self::encode`].
    pub fn encode_with_id(&self) -> Result<(TreeId, Vec<u8>)> {
        let bytes = self.encode()?;
        Ok((TreeId::of(&bytes), bytes))
    }

    /// Decodes and validates a tree.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Corrupt`] on a bad version, bad encoding, trailing
    /// bytes, an invalid name, or unsorted entries.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let tree: Tree = decode_versioned(TREE_VERSION, "tree", bytes)?;
        tree.validate()?;
        Ok(tree)
    }

    fn validate(&self) -> Result<()> {
        for (i, e) in self.entries.iter().enumerate() {
            if !is_valid_name(&e.name) {
                return Err(Error::corrupt(format!(
                    "tree entry has an invalid name {:?}",
                    String::from_utf8_lossy(&e.name)
                )));
            }
            if i > 0 && self.entries[i - 1].name >= e.name {
                return Err(Error::corrupt(format!(
                    "tree entries not strictly sorted at {:?}",
                    String::from_utf8_lossy(&e.name)
                )));
            }
        }
        Ok(())
    }

    /// The entry named `name`, by binary search.
    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// A snapshot: when, of what, and the root of its tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was taken (or `--time`), ns since the Unix epoch, UTC.
    pub time_ns: i64,
    /// Root node: mirrors the absolute source paths from `/`.
    pub tree: TreeId,
    /// Absolute source paths as raw bytes, sorted.
    pub paths: Vec<Vec<u8>>,
    /// Host name of the machine that took it.
    pub host: String,
    /// User who took it.
    pub username: String,
    /// Tags, sorted, unique.
    pub tags: Vec<String>,
    /// Free-form message (may be empty).
    pub message: String,
    /// The snapshot whose file list was reused for unchanged files.
    pub parent: Option<SnapshotId>,
    /// What taking it did.
    pub summary: SnapshotSummary,
    /// cairn version that wrote it.
    pub program_version: String,
}

/// Counters recorded with every snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SnapshotSummary {
    /// Files not in the parent snapshot.
    pub files_new: u64,
    /// Files in the parent whose metadata changed, so they were read again.
    pub files_changed: u64,
    /// Files whose chunk list was reused from the parent without reading.
    pub files_unchanged: u64,
    /// Directories walked.
    pub dirs: u64,
    /// Symlinks and special files stored.
    pub others: u64,
    /// Sum of file sizes in the snapshot.
    pub bytes_total: u64,
    /// Bytes read from source files.
    pub bytes_read: u64,
    /// Encoded bytes of the new chunks and trees stored (pack headers and
    /// footers and the snapshot record itself are not counted).
    pub bytes_added: u64,
    /// New blobs (chunks and trees) stored.
    pub blobs_added: u64,
    /// Paths that could not be read: files left out, and directories stored
    /// without (some of) their entries.
    pub errors: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

impl Snapshot {
    /// The encoded bytes whose hash is this snapshot's id.
    ///
    /// # Errors
    /// Only on a serializer failure (a bug).
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_versioned(SNAPSHOT_VERSION, self)
    }

    /// Decodes a snapshot record.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Corrupt`] on a bad version, encoding or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode_versioned(SNAPSHOT_VERSION, "snapshot", bytes)
    }
}

pub(crate) fn encode_versioned<T: Serialize>(version: u8, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![version];
    postcard::to_io(value, &mut out)
        .map_err(|e| Error::invalid(format!("cannot encode record: {e}")))?;
    Ok(out)
}

pub(crate) fn decode_versioned<T: for<'de> Deserialize<'de>>(
    version: u8,
    what: &str,
    bytes: &[u8],
) -> Result<T> {
    match bytes.first() {
        None => Err(Error::corrupt(format!("empty {what} record"))),
        Some(&v) if v != version => Err(Error::corrupt(format!(
            "{what} record has version {v}, this cairn reads {version}"
        ))),
        Some(_) => {
            let (value, rest) = postcard::take_from_bytes(&bytes[1..])
                .map_err(|e| Error::corrupt(format!("{what} record does not decode: {e}")))?;
            if !rest.is_empty() {
                return Err(Error::corrupt(format!(
                    "{what} record has {} trailing bytes",
                    rest.len()
                )));
            }
            Ok(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &[u8]) -> Entry {
        Entry {
            name: name.to_vec(),
            kind: EntryKind::File {
                size: 3,
                chunks: vec![ChunkId::of(b"abc")],
            },
            meta: Meta {
                mode: 0o644,
                mtime_ns: -5,
                ..Meta::default()
            },
        }
    }

    #[test]
    fn tree_round_trips_and_id_is_stable() {
        let t = Tree {
            entries: vec![file(b"a"), file(b"b\xff\n c")],
        };
        let (id, bytes) = t.encode_with_id().unwrap();
        assert_eq!(bytes[0], TREE_VERSION);
        assert_eq!(Tree::decode(&bytes).unwrap(), t);
        assert_eq!(t.encode_with_id().unwrap().0, id);
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            let t = Tree {
                entries: vec![file(bad)],
            };
            assert!(t.encode().is_err(), "{bad:?}");
            let bytes = encode_versioned(TREE_VERSION, &t).unwrap();
            assert!(Tree::decode(&bytes).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsorted_or_duplicate_entries_are_refused() {
        let t = Tree {
            entries: vec![file(b"b"), file(b"a")],
        };
        assert!(Tree::decode(&encode_versioned(TREE_VERSION, &t).unwrap()).is_err());
        let t = Tree {
            entries: vec![file(b"a"), file(b"a")],
        };
        assert!(Tree::decode(&encode_versioned(TREE_VERSION, &t).unwrap()).is_err());
    }

    #[test]
    fn trailing_bytes_and_wrong_version_are_corrupt() {
        let mut bytes = Tree::default().encode().unwrap();
        bytes.push(0);
        assert!(Tree::decode(&bytes).is_err());
        assert!(Tree::decode(&[9]).is_err());
        assert!(Snapshot::decode(&[]).is_err());
    }
}
