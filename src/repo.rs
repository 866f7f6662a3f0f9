//! The [`Repository`] facade: creates and opens a repository, holds its
//! lock, and owns the catalog and the pack store.
//!
//! ```text
//! REPO/config          JSON: format version, chunker, zstd level (written last by init)
//! REPO/catalog.redb    the index (trees, snapshots, blob locations, packs)
//! REPO/objects/xx/ID   pack files
//! REPO/tmp/            packs being written
//! REPO/locks/repo      OS lock (flock): shared for normal work, exclusive for gc
//! ```
//!
//! **Invariant:** every command holds the repository lock (shared or
//! exclusive) for as long as it has the repository open; OS locks vanish
//! with the process, so a crash never leaves a stale lock.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::catalog::{Catalog, CatalogReader, Compaction};
use crate::config::{InitOptions, RepoConfig};
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::id::{ChunkId, SnapshotId, TreeId};
use crate::model::{Entry, EntryKind, Snapshot, Tree};
use crate::store::{PackStore, sync_dir};

const CONFIG: &str = "config";
const CATALOG: &str = "catalog.redb";
const OBJECTS: &str = "objects";
const TMP: &str = "tmp";
const LOCKS: &str = "locks";
const LOCK_FILE: &str = "repo";

/// How a command shares the repository with others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Any number of shared holders at once (snapshot, list, restore…).
    Shared,
    /// One holder, no shared ones (gc, repair).
    Exclusive,
}

/// An open repository.
pub struct Repository {
    root: PathBuf,
    config: RepoConfig,
    catalog: Catalog,
    store: PackStore,
    lock_mode: LockMode,
    _lock: File,
}

/// What a path inside a snapshot names.
#[derive(Debug, Clone)]
pub enum Located {
    /// The snapshot's root directory (`/`).
    Root(TreeId),
    /// An entry somewhere below the root.
    Entry(Entry),
}

impl Repository {
    /// Whether `path` holds a repository (its `config` exists).
    pub fn exists(path: &Path) -> bool {
        path.join(CONFIG).is_file()
    }

    /// Creates a repository at `path` (the directory may exist but must be empty).
    ///
    /// # Errors
    /// [`ErrorKind::Repository`] when a repository or other files are
    /// already there; I/O and catalog errors.
    pub fn init(path: &Path, opts: &InitOptions) -> Result<Self> {
        let config = RepoConfig::new(opts)?;
        if Self::exists(path) {
            return Err(Error::new(
                ErrorKind::Repository,
                format!("{} is already a cairn repository", path.display()),
            ));
        }
        if path.exists() {
            let non_empty = fs::read_dir(path).at("reading", path)?.next().is_some();
            if non_empty {
                return Err(Error::new(
                    ErrorKind::Repository,
                    format!(
                        "{} exists and is not empty; choose a new or empty directory for the repository",
                        path.display()
                    ),
                ));
            }
        }
        for dir in [OBJECTS, TMP, LOCKS] {
            fs::create_dir_all(path.join(dir)).at("creating", &path.join(dir))?;
        }
        Catalog::create(&path.join(CATALOG))?;
        let tmp = path.join("config.tmp");
        {
            let mut f = File::create(&tmp).at("writing", &tmp)?;
            f.write_all(&config.to_bytes()?).at("writing", &tmp)?;
            f.sync_all().at("syncing", &tmp)?;
        }
        fs::rename(&tmp, path.join(CONFIG)).at("creating", &path.join(CONFIG))?;
        sync_dir(path)?;
        Self::open(path, LockMode::Shared, &|| {})
    }

    /// Opens the repository at `path`, waiting for the lock if needed
    /// (`on_wait` is called once before blocking).
    ///
    /// # Errors
    /// [`ErrorKind::Repository`] when `path` is not a repository,
    /// [`ErrorKind::UnsupportedVersion`] for a newer format, I/O and catalog errors.
    pub fn open(path: &Path, mode: LockMode, on_wait: &dyn Fn()) -> Result<Self> {
        let raw = RawRepository::open(path, mode, on_wait)?;
        let catalog = Catalog::open(&raw.catalog_path())?;
        Ok(Self {
            root: raw.root,
            config: raw.config,
            catalog,
            store: raw.store,
            lock_mode: raw.lock_mode,
            _lock: raw._lock,
        })
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How this handle holds the repository lock.
    pub fn lock_mode(&self) -> LockMode {
        self.lock_mode
    }

    /// Its configuration.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The pack store.
    pub fn store(&self) -> &PackStore {
        &self.store
    }

    /// Every snapshot, oldest first.
    ///
    /// # Errors
    /// Catalog errors.
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        self.catalog.begin_read()?.snapshots()
    }

    /// Resolves `latest`, a full id, or a unique prefix of 4+ hex characters.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] or [`ErrorKind::Ambiguous`], naming the reference.
    pub fn resolve(&self, reference: &str) -> Result<(SnapshotId, Snapshot)> {
        let reader = self.catalog.begin_read()?;
        if reference == "latest" {
            return reader.snapshots()?.into_iter().next_back().ok_or_else(|| {
                Error::not_found("the repository has no snapshots yet (`latest` names none)")
            });
        }
        let lower = reference.to_ascii_lowercase();
        if lower.len() < 4 || lower.len() > 64 || !lower.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "`{reference}` is not a snapshot reference: give `latest`, a full id, or at least 4 hex characters of one"
            )));
        }
        // Match on the keys; decode only the record that is asked for.
        let matches: Vec<SnapshotId> = reader
            .snapshot_ids()?
            .into_iter()
            .filter(|id| id.to_hex().starts_with(&lower))
            .collect();
        match matches.len() {
            0 => Err(Error::not_found(format!(
                "no snapshot matches `{reference}`; `cairn list` shows the ids"
            ))),
            1 => {
                // One read view: a key just listed is still there.
                let snap = reader.snapshot(&matches[0])?.ok_or_else(|| {
                    Error::corrupt(format!("snapshot {} is listed but unreadable", matches[0]))
                })?;
                Ok((matches[0], snap))
            }
            _ => Err(Error::new(
                ErrorKind::Ambiguous,
                format!(
                    "`{reference}` matches {} snapshots ({}); give more characters",
                    matches.len(),
                    matches
                        .iter()
                        .map(SnapshotId::short)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// Resolves `reference` as [`Repository::resolve`] does, among the
    /// snapshots `filter` admits: `latest` names the newest snapshot that
    /// matches; an id or prefix must name a snapshot that matches.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when no snapshot matches (naming the filter),
    /// [`ErrorKind::InvalidInput`] when the snapshot an id names does not
    /// match it, and the errors of [`Repository::resolve`].
    pub fn resolve_filtered(
        &self,
        reference: &str,
        filter: &SnapshotFilter,
    ) -> Result<(SnapshotId, Snapshot)> {
        if filter.is_empty() {
            return self.resolve(reference);
        }
        if reference == "latest" {
            let reader = self.catalog.begin_read()?;
            return reader
                .snapshots()?
                .into_iter()
                .rev()
                .find(|(_, s)| filter.matches(s))
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "no snapshot matches {}, so `latest` names none; `cairn list` shows each snapshot's host, tags and paths",
                        filter.describe()
                    ))
                });
        }
        let (id, snap) = self.resolve(reference)?;
        if !filter.matches(&snap) {
            return Err(Error::invalid(format!(
                "snapshot {} does not match {}: it was taken on host `{}` with tags [{}]; \
                 drop the filter or name another snapshot",
                id.short(),
                filter.describe(),
                snap.host,
                snap.tags.join(",")
            )));
        }
        Ok((id, snap))
    }

    /// Loads a tree node.
    ///
    /// # Errors
    /// [`ErrorKind::Corrupt`] when missing or damaged.
    pub fn tree(&self, id: &TreeId) -> Result<Tree> {
        self.catalog.begin_read()?.tree(id)
    }

    /// Compacts the catalog file (gives its free pages back). Needs the
    /// exclusive lock: `gc` calls it after its commit.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] under a shared lock; catalog errors.
    pub fn compact_catalog(&mut self) -> Result<Compaction> {
        if self.lock_mode != LockMode::Exclusive {
            return Err(Error::invalid(
                "compacting the catalog needs the repository opened with LockMode::Exclusive",
            ));
        }
        self.catalog.compact()
    }

    /// Closes the repository, first compacting the catalog when it holds
    /// a lot of free space ([`Catalog::wants_compaction`]) and the lock
    /// can be made exclusive without waiting. For the end of a command
    /// that wrote to the catalog under the shared lock (`snapshot`).
    ///
    /// The catalog is closed before the lock changes hands: flock(2)
    /// converts a lock by dropping it first, so when another process holds
    /// or is waiting for the lock, the try fails and this process may hold
    /// no lock at all; it then touches the catalog no more and returns
    /// `Ok(None)`. On success the catalog is reopened, compacted and closed
    /// under the exclusive lock, which no other cairn process can hold the
    /// catalog open beside.
    ///
    /// # Errors
    /// Catalog and I/O errors (the catalog stays consistent).
    pub fn close_compacting(self) -> Result<Option<Compaction>> {
        if !self.catalog.wants_compaction()? {
            return Ok(None);
        }
        let Self {
            root,
            catalog,
            lock_mode,
            _lock: lock,
            ..
        } = self;
        drop(catalog);
        if lock_mode == LockMode::Shared {
            match lock.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io("locking", &root.join(LOCKS).join(LOCK_FILE), e));
                }
            }
        }
        let mut catalog = Catalog::open(&root.join(CATALOG))?;
        let done = catalog.compact()?;
        drop(catalog);
        drop(lock);
        Ok(Some(done))
    }

    /// Finds an absolute `path` inside `snapshot`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when no such path was snapshotted.
    pub fn locate(&self, snapshot: &Snapshot, path: &Path) -> Result<Located> {
        let reader = self.catalog.begin_read()?;
        locate_in(&reader, snapshot.tree, path)
    }

    /// Writes a file entry's content to `out`, verifying every chunk.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `entry` is not a file; corruption and
    /// I/O errors.
    pub fn write_file(&self, entry: &Entry, out: &mut dyn Write) -> Result<()> {
        let EntryKind::File { chunks, .. } = &entry.kind else {
            return Err(Error::invalid(format!(
                "{} is not a regular file",
                String::from_utf8_lossy(&entry.name)
            )));
        };
        let reader = self.catalog.begin_read()?;
        for id in chunks {
            let data = self.read_chunk(&reader, id)?;
            out.write_all(&data)
                .map_err(|e| Error::io("writing", Path::new("output"), e))?;
        }
        Ok(())
    }

    /// Reads and verifies one chunk.
    ///
    /// # Errors
    /// [`ErrorKind::Corrupt`] when it is not indexed or its pack is damaged.
    pub fn read_chunk(&self, reader: &CatalogReader, id: &ChunkId) -> Result<Vec<u8>> {
        let loc = reader
            .blob(&id.0)?
            .ok_or_else(|| Error::corrupt(format!("chunk {id} is not in the catalog")))?;
        self.store.read_blob(&id.0, &loc)
    }
}

/// A repository opened without its catalog, for `check` and `repair`,
/// which must work when `catalog.redb` is damaged or missing.
pub struct RawRepository {
    root: PathBuf,
    config: RepoConfig,
    store: PackStore,
    lock_mode: LockMode,
    _lock: File,
}

impl RawRepository {
    /// Reads the config and takes the lock in `mode`; never opens the catalog.
    ///
    /// # Errors
    /// As [`Repository::open`], minus catalog errors.
    pub fn open(path: &Path, mode: LockMode, on_wait: &dyn Fn()) -> Result<Self> {
        let config_path = path.join(CONFIG);
        let bytes = match fs::read(&config_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::Repository,
                    format!(
                        "{} is not a cairn repository (no config file); create one with `cairn init`",
                        path.display()
                    ),
                ));
            }
            Err(e) => return Err(Error::io("reading", &config_path, e)),
        };
        let config = RepoConfig::parse(&bytes)?;
        let lock = lock(&path.join(LOCKS).join(LOCK_FILE), mode, on_wait)?;
        Ok(Self {
            root: path.to_path_buf(),
            config,
            store: PackStore::new(path.join(OBJECTS), path.join(TMP)),
            lock_mode: mode,
            _lock: lock,
        })
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How this handle holds the repository lock.
    pub fn lock_mode(&self) -> LockMode {
        self.lock_mode
    }

    /// Its configuration.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The pack store.
    pub fn store(&self) -> &PackStore {
        &self.store
    }

    /// Where the catalog file is.
    pub fn catalog_path(&self) -> PathBuf {
        self.root.join(CATALOG)
    }

    /// The directory for temporary files.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP)
    }
}

/// Which snapshots a command considers (`--host`, `--tag`, `--path`).
///
/// Empty lists admit everything. A snapshot matches when it was taken on
/// any of `hosts`, carries any of `tags`, and its source paths include
/// every one of `paths` (absolute paths as recorded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    /// Host names; any of them.
    pub hosts: Vec<String>,
    /// Tags; any of them.
    pub tags: Vec<String>,
    /// Absolute source paths (as bytes); all of them.
    pub paths: Vec<Vec<u8>>,
}

impl SnapshotFilter {
    /// True when the filter admits every snapshot.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.tags.is_empty() && self.paths.is_empty()
    }

    /// Whether `snap` passes the filter.
    pub fn matches(&self, snap: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&snap.host))
            && (self.tags.is_empty() || snap.tags.iter().any(|t| self.tags.contains(t)))
            && self.paths.iter().all(|p| snap.paths.contains(p))
    }

    /// The filter in words, for messages: `host a or b, tag t, path /x`
    /// (`every snapshot` when empty).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.hosts.is_empty() {
            parts.push(format!("host {}", self.hosts.join(" or ")));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tag {}", self.tags.join(" or ")));
        }
        if !self.paths.is_empty() {
            let paths: Vec<String> = self
                .paths
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            parts.push(format!("path {}", paths.join(" and ")));
        }
        if parts.is_empty() {
            "every snapshot".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// Splits an absolute path into its names, refusing `..`.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a relative path or one with `..`.
pub fn path_components(path: &Path) -> Result<Vec<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    if !path.is_absolute() {
        return Err(Error::invalid(format!(
            "{} is not an absolute path",
            path.display()
        )));
    }
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n.as_bytes().to_vec()),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::invalid(format!(
                    "{} contains `..`; give a plain absolute path",
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}

/// Finds `path` below root tree `root`.
///
/// # Errors
/// [`ErrorKind::NotFound`] when no such path exists in the tree.
pub fn locate_in(reader: &CatalogReader, root: TreeId, path: &Path) -> Result<Located> {
    let names = path_components(path)?;
    let mut current = Located::Root(root);
    for name in &names {
        let tree_id = match &current {
            Located::Root(id)
            | Located::Entry(Entry {
                kind: EntryKind::Dir { tree: id },
                ..
            }) => *id,
            Located::Entry(_) => {
                return Err(Error::not_found(format!(
                    "{} is not in the snapshot (a parent is not a directory)",
                    path.display()
                )));
            }
        };
        let tree = reader.tree(&tree_id)?;
        let entry = tree.get(name).cloned().ok_or_else(|| {
            Error::not_found(format!(
                "{} is not in the snapshot; `cairn ls SNAP` lists what is",
                path.display()
            ))
        })?;
        current = Located::Entry(entry);
    }
    Ok(current)
}

fn lock(path: &Path, mode: LockMode, on_wait: &dyn Fn()) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at("opening lock file", path)?;
    let attempt = match mode {
        LockMode::Shared => file.try_lock_shared(),
        LockMode::Exclusive => file.try_lock(),
    };
    match attempt {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            on_wait();
            match mode {
                LockMode::Shared => file.lock_shared(),
                LockMode::Exclusive => file.lock(),
            }
            .at("locking", path)?;
            Ok(file)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("locking", path, e)),
    }
}
