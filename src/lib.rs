//! cairn: a content-addressed, deduplicating snapshot store.
//!
//! Files are cut into content-defined chunks named by their BLAKE3 hash,
//! zstd-compressed one by one and stored once in pack files; directory trees
//! and snapshot records live in a redb catalog (and in the packs, so the
//! catalog can be rebuilt).
//!
//! # Layout
//!
//! - [`id`]: object ids (BLAKE3) and typed wrappers.
//! - [`chunker`]: content-defined chunking, streaming in batches.
//! - [`codec`]: blob framing and zstd.
//! - [`store`]: pack files, written durably, read with verification.
//! - [`model`]: tree nodes and snapshot records, versioned encodings.
//! - [`catalog`]: the redb index; the only module that imports redb.
//! - [`config`] and [`repo`]: the repository on disk and its facade.
//! - [`archiver`]: walks sources and takes a snapshot.
//! - [`restore`]: writes a snapshot (or part) back to disk.
//! - [`diff`]: compares two snapshots, or a snapshot with the live file system.
//! - [`export`]: writes a snapshot as a tar or zip archive.
//! - [`gc`]: garbage collection; [`stats`]: repository statistics.
//! - [`retention`]: retention policies (which snapshots `forget` keeps), a pure function.
//! - [`check`] and [`repair`]: verify the catalog against the packs; rebuild it from them.
//! - [`progress`]: hooks through which long operations report progress.
//!
//! # Example
//!
//! ```
//! use cairn::{InitOptions, Repository, archiver::{self, SnapshotOptions}};
//! # fn main() -> cairn::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let src = dir.path().join("src");
//! std::fs::create_dir(&src).unwrap();
//! std::fs::write(src.join("hello.txt"), b"hello").unwrap();
//! let repo = Repository::init(&dir.path().join("repo"), &InitOptions::default())?;
//! let result = archiver::snapshot(&repo, &SnapshotOptions::new(vec![src.clone()]), &archiver::NoReport)?;
//! let (_, snap) = repo.resolve("latest")?;
//! assert_eq!(snap.tree, result.snapshot.tree);
//! # Ok(()) }
//! ```

pub mod archiver;
pub mod catalog;
pub mod check;
pub mod chunker;
pub mod codec;
pub mod config;
pub mod diff;
pub mod error;
pub mod export;
pub mod fsmeta;
pub mod gc;
pub mod id;
pub mod model;
pub mod progress;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod retention;
pub mod stats;
pub mod store;

pub use config::{InitOptions, RepoConfig};
pub use error::{Error, ErrorKind, Result};
pub use id::{ChunkId, ObjectId, PackId, SnapshotId, TreeId};
pub use repo::SnapshotFilter;
pub use repo::{LockMode, Repository};
