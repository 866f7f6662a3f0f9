//! Shared helpers for the integration tests.
//!
//! - [`Spec`]: a declarative file tree (files with given bytes, directories,
//!   symlinks, hard links, FIFOs, modes, mtimes, any name bytes) that
//!   [`Spec::create`] writes below a directory.
//! - [`describe`] / [`tree_diff`] / [`assert_same_tree`]: walk two trees with
//!   `lstat` and compare names, types, bytes, symlink targets, permission
//!   modes (`mode & 0o7777`) and mtimes (ns), with a readable diff.
//! - [`Scratch`]: a temporary directory with a canonical path that can be
//!   removed even when a test made parts of it read-only.
//! - Library shortcuts ([`init_repo`], [`take_snapshot`], [`restore_all`],
//!   [`restored_path`]) and CLI ones ([`cairn`], [`run`], [`CliOut`]).
//! - [`pseudo_random`] / [`write_pseudo_random`]: fast, seeded,
//!   incompressible bytes.

#![allow(dead_code)] // Not every test module uses every helper.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn::archiver::{self, NoReport, SnapshotOptions, SnapshotResult};
use cairn::restore::{self, RestoreOptions, RestoreSummary};
use cairn::{InitOptions, Repository, TreeId};

// ---------------------------------------------------------------------------
// Declarative trees
// ---------------------------------------------------------------------------

/// What one [`Spec`] item creates.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A regular file with these bytes.
    File(Vec<u8>),
    /// A directory (parents are created implicitly).
    Dir,
    /// A symbolic link with this raw target.
    Symlink(Vec<u8>),
    /// A hard link to the earlier item at this relative path.
    HardLink(Vec<u8>),
    /// A named pipe.
    Fifo,
}

/// One path of a [`Spec`].
#[derive(Debug, Clone)]
pub struct Item {
    /// Path relative to the root, `/`-separated raw bytes.
    pub path: Vec<u8>,
    /// What to create.
    pub kind: Kind,
    /// Permission bits to set (after everything exists).
    pub mode: Option<u32>,
    /// mtime to set in ns since the epoch (after everything exists).
    pub mtime_ns: Option<i64>,
}

/// A declarative file tree.
///
/// ```ignore
/// Spec::new()
///     .file("a.txt", b"hello").mode(0o444)
///     .dir("empty")
///     .symlink("link", "a.txt")
///     .file(b"odd\xff name", b"")
///     .create(&root);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Items in creation order.
    pub items: Vec<Item>,
}

impl Spec {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(mut self, path: impl AsRef<[u8]>, kind: Kind) -> Self {
        self.items.push(Item {
            path: path.as_ref().to_vec(),
            kind,
            mode: None,
            mtime_ns: None,
        });
        self
    }

    /// A regular file.
    pub fn file(self, path: impl AsRef<[u8]>, bytes: impl AsRef<[u8]>) -> Self {
        self.push(path, Kind::File(bytes.as_ref().to_vec()))
    }

    /// A directory.
    pub fn dir(self, path: impl AsRef<[u8]>) -> Self {
        self.push(path, Kind::Dir)
    }

    /// A symlink to `target` (not required to exist).
    pub fn symlink(self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        self.push(path, Kind::Symlink(target.as_ref().to_vec()))
    }

    /// A hard link to the earlier item `existing`.
    pub fn hardlink(self, path: impl AsRef<[u8]>, existing: impl AsRef<[u8]>) -> Self {
        self.push(path, Kind::HardLink(existing.as_ref().to_vec()))
    }

    /// A named pipe.
    pub fn fifo(self, path: impl AsRef<[u8]>) -> Self {
        self.push(path, Kind::Fifo)
    }

    /// Sets the permission bits of the last item.
    pub fn mode(mut self, mode: u32) -> Self {
        self.items
            .last_mut()
            .expect("an item to set the mode of")
            .mode = Some(mode);
        self
    }

    /// Sets the mtime (ns since the epoch) of the last item.
    pub fn mtime(mut self, ns: i64) -> Self {
        self.items
            .last_mut()
            .expect("an item to set the mtime of")
            .mtime_ns = Some(ns);
        self
    }

    /// Creates the tree below `root` (created if missing). Modes and mtimes
    /// are applied last: files and links first, then directories deepest
    /// first, so a read-only directory is filled before it is locked and
    /// setting a child's times does not disturb its parent's.
    pub fn create(&self, root: &Path) {
        fs::create_dir_all(root).unwrap();
        for item in &self.items {
            let path = join(root, &item.path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            match &item.kind {
                Kind::File(bytes) => fs::write(&path, bytes).unwrap(),
                Kind::Dir => fs::create_dir_all(&path).unwrap(),
                Kind::Symlink(target) => {
                    std::os::unix::fs::symlink(OsStr::from_bytes(target), &path).unwrap();
                }
                Kind::HardLink(existing) => fs::hard_link(join(root, existing), &path).unwrap(),
                Kind::Fifo => mkfifo(&path),
            }
        }
        let mut order: Vec<&Item> = self.items.iter().collect();
        // Non-directories first, then directories by decreasing depth.
        order.sort_by_key(|i| match i.kind {
            Kind::Dir => (1, usize::MAX - depth(&i.path)),
            _ => (0, 0),
        });
        for item in order {
            let path = join(root, &item.path);
            let is_link = matches!(item.kind, Kind::Symlink(_));
            if let (Some(mode), false) = (item.mode, is_link) {
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
            if let Some(ns) = item.mtime_ns {
                set_mtime(&path, ns);
            }
        }
    }
}

fn depth(path: &[u8]) -> usize {
    path.split(|&b| b == b'/').count()
}

/// `root` joined with a relative, `/`-separated raw path.
pub fn join(root: &Path, rel: &[u8]) -> PathBuf {
    let mut p = root.to_path_buf();
    for name in rel.split(|&b| b == b'/').filter(|n| !n.is_empty()) {
        p.push(OsStr::from_bytes(name));
    }
    p
}

/// Creates a named pipe at `path`.
pub fn mkfifo(path: &Path) {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
}

/// Sets mtime (and atime) of `path` without following a symlink.
pub fn set_mtime(path: &Path, ns: i64) {
    let t = filetime::FileTime::from_unix_time(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    );
    filetime::set_symlink_file_times(path, t, t).unwrap();
}

/// The mtime of `path` in ns, from `lstat`.
pub fn mtime_ns(md: &fs::Metadata) -> i64 {
    md.mtime() * 1_000_000_000 + md.mtime_nsec()
}

// ---------------------------------------------------------------------------
// Tree comparison
// ---------------------------------------------------------------------------

/// The type and content of one path, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A regular file: its length and BLAKE3 hash.
    File { len: u64, hash: [u8; 32] },
    /// A directory.
    Dir,
    /// A symlink and its raw target.
    Symlink(Vec<u8>),
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
    /// A device or anything else.
    Other,
}

/// One path of a described tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    /// Type and content.
    pub what: What,
    /// `mode & 0o7777` (not compared for symlinks).
    pub mode: u32,
    /// mtime in ns.
    pub mtime_ns: i64,
}

/// Every path below (and including, as `""`) `root`, by raw relative path,
/// read with `lstat` (symlinks are never followed).
pub fn describe(root: &Path) -> BTreeMap<Vec<u8>, Desc> {
    let mut out = BTreeMap::new();
    describe_into(root, Vec::new(), &mut out);
    out
}

fn describe_into(path: &Path, rel: Vec<u8>, out: &mut BTreeMap<Vec<u8>, Desc>) {
    use std::os::unix::fs::FileTypeExt;
    let md = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let ft = md.file_type();
    let what = if ft.is_file() {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        What::File {
            len: bytes.len() as u64,
            hash: *blake3::hash(&bytes).as_bytes(),
        }
    } else if ft.is_dir() {
        What::Dir
    } else if ft.is_symlink() {
        What::Symlink(fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec())
    } else if ft.is_fifo() {
        What::Fifo
    } else if ft.is_socket() {
        What::Socket
    } else {
        What::Other
    };
    let is_dir = what == What::Dir;
    let mode = if matches!(what, What::Symlink(_)) {
        0
    } else {
        md.mode() & 0o7777
    };
    out.insert(
        rel.clone(),
        Desc {
            what,
            mode,
            mtime_ns: mtime_ns(&md),
        },
    );
    if is_dir {
        for item in fs::read_dir(path).unwrap() {
            let item = item.unwrap();
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(item.file_name().as_bytes());
            describe_into(&item.path(), child, out);
        }
    }
}

/// A raw path for messages: printable ASCII as is, everything else escaped.
pub fn show(raw: &[u8]) -> String {
    if raw.is_empty() {
        return "<root>".to_string();
    }
    raw.escape_ascii().to_string()
}

fn show_what(w: &What) -> String {
    match w {
        What::File { len, hash } => format!(
            "file of {len} bytes (blake3 {:02x}{:02x}…)",
            hash[0], hash[1]
        ),
        What::Dir => "directory".into(),
        What::Symlink(t) => format!("symlink -> {}", show(t)),
        What::Fifo => "fifo".into(),
        What::Socket => "socket".into(),
        What::Other => "special file".into(),
    }
}

/// Differences between the trees at `a` and `b`, one line each; empty when
/// they are equal in names, types, bytes, link targets, modes and mtimes.
pub fn tree_diff(a: &Path, b: &Path) -> Vec<String> {
    diff_descs(&describe(a), &describe(b))
}

/// Differences between two described trees (`left`, `right`).
pub fn diff_descs(a: &BTreeMap<Vec<u8>, Desc>, b: &BTreeMap<Vec<u8>, Desc>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, da) in a {
        let Some(db) = b.get(path) else {
            out.push(format!(
                "{}: only in left ({})",
                show(path),
                show_what(&da.what)
            ));
            continue;
        };
        if da.what != db.what {
            out.push(format!(
                "{}: {} vs {}",
                show(path),
                show_what(&da.what),
                show_what(&db.what)
            ));
        }
        if da.mode != db.mode {
            out.push(format!(
                "{}: mode {:04o} vs {:04o}",
                show(path),
                da.mode,
                db.mode
            ));
        }
        if da.mtime_ns != db.mtime_ns {
            out.push(format!(
                "{}: mtime {} ns vs {} ns",
                show(path),
                da.mtime_ns,
                db.mtime_ns
            ));
        }
    }
    for (path, db) in b {
        if !a.contains_key(path) {
            out.push(format!(
                "{}: only in right ({})",
                show(path),
                show_what(&db.what)
            ));
        }
    }
    out
}

/// Panics with a readable diff unless the trees at `a` and `b` are equal.
#[track_caller]
pub fn assert_same_tree(a: &Path, b: &Path) {
    let diff = tree_diff(a, b);
    assert!(
        diff.is_empty(),
        "trees differ\n  left:  {}\n  right: {}\n{}",
        a.display(),
        b.display(),
        diff.join("\n")
    );
}

/// Relative raw paths present below `root` (excluding the root itself).
pub fn paths_below(root: &Path) -> Vec<Vec<u8>> {
    describe(root)
        .into_keys()
        .filter(|k| !k.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------
// Scratch directories
// ---------------------------------------------------------------------------

/// A temporary directory with a canonical path (so it matches the absolute
/// paths a snapshot records). On drop it makes everything below writable
/// first, so read-only directories made by a test do not block removal.
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Scratch {
    /// A new, empty scratch directory.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cairn-it-")
            .tempdir()
            .unwrap();
        let path = fs::canonicalize(dir.path()).unwrap();
        Self {
            dir: Some(dir),
            path,
        }
    }

    /// Its canonical path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path()/rel`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        make_writable(&self.path);
        drop(self.dir.take());
    }
}

/// Adds owner rwx to every directory below `path` (best effort).
pub fn make_writable(path: &Path) {
    let Ok(md) = fs::symlink_metadata(path) else {
        return;
    };
    if md.is_dir() {
        let _ = fs::set_permissions(
            path,
            fs::Permissions::from_mode((md.mode() & 0o7777) | 0o700),
        );
        if let Ok(rd) = fs::read_dir(path) {
            for item in rd.flatten() {
                make_writable(&item.path());
            }
        }
    }
}

/// Total size in bytes of the regular files below `path`.
pub fn du(path: &Path) -> u64 {
    let md = fs::symlink_metadata(path).unwrap();
    if md.is_dir() {
        fs::read_dir(path)
            .unwrap()
            .map(|i| du(&i.unwrap().path()))
            .sum()
    } else if md.is_file() {
        md.len()
    } else {
        0
    }
}

// ---------------------------------------------------------------------------
// Library shortcuts
// ---------------------------------------------------------------------------

/// Small chunks (4 KiB average) so modest files span many chunks.
pub const SMALL_CHUNKS: InitOptions = InitOptions {
    avg_chunk_size: 4096,
    zstd_level: 3,
};

/// Creates a repository at `path` with `opts`.
pub fn init_repo(path: &Path, opts: &InitOptions) -> Repository {
    Repository::init(path, opts).unwrap_or_else(|e| panic!("init {}: {e}", path.display()))
}

/// Snapshots `paths` with default options.
pub fn take_snapshot(repo: &Repository, paths: &[&Path]) -> SnapshotResult {
    take_snapshot_with(
        repo,
        SnapshotOptions::new(paths.iter().map(|p| p.to_path_buf()).collect()),
    )
}

/// Snapshots with the given options.
pub fn take_snapshot_with(repo: &Repository, opts: SnapshotOptions) -> SnapshotResult {
    archiver::snapshot(repo, &opts, &NoReport).unwrap_or_else(|e| panic!("snapshot: {}", chain(&e)))
}

/// Restores all of the tree `root` into `target`, asserting no per-file error.
pub fn restore_all(repo: &Repository, root: TreeId, target: &Path) -> RestoreSummary {
    let summary = restore::restore(
        repo,
        root,
        &RestoreOptions {
            target: target.to_path_buf(),
            includes: Vec::new(),
            overwrite: false,
            owner: false,
        },
    )
    .unwrap_or_else(|e| panic!("restore: {}", chain(&e)));
    assert!(
        summary.errors.is_empty(),
        "restore errors: {:?}",
        summary.errors
    );
    summary
}

/// Restores every snapshot of the repository at `repo_path` (below
/// `scratch`) and compares each source path with what was restored; returns
/// how many snapshots there were.
pub fn restore_every_snapshot(repo_path: &Path, scratch: &Path) -> usize {
    let repo = Repository::open(repo_path, cairn::LockMode::Shared, &|| {}).unwrap();
    let snaps = repo.snapshots().unwrap();
    for (id, snap) in &snaps {
        let target = scratch.join(format!("restore-{}", id.short()));
        restore_all(&repo, snap.tree, &target);
        for p in &snap.paths {
            let src = Path::new(OsStr::from_bytes(p));
            assert_same_tree(src, &restored_path(&target, src));
        }
        fs::remove_dir_all(&target).unwrap();
    }
    snaps.len()
}

/// Where an absolute source path lands when restored into `target`.
pub fn restored_path(target: &Path, abs: &Path) -> PathBuf {
    target.join(abs.strip_prefix("/").expect("an absolute path"))
}

/// An error and its sources, `: `-separated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

// ---------------------------------------------------------------------------
// CLI shortcuts
// ---------------------------------------------------------------------------

/// The built `cairn` binary, with `CAIRN_REPO` cleared and a UTC clock.
pub fn cairn() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
    c.env_remove("CAIRN_REPO").env("TZ", "UTC");
    c
}

/// `cairn --repo REPO ARGS...`.
pub fn cairn_at(repo: &Path) -> Command {
    let mut c = cairn();
    c.arg("--repo").arg(repo);
    c
}

/// What a finished command produced.
#[derive(Debug)]
pub struct CliOut {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output, raw.
    pub stdout: Vec<u8>,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl CliOut {
    /// Standard output, lossily decoded.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard output parsed as one JSON value (nothing else may follow).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{}", self.out()))
    }

    /// Asserts the exit code, showing both streams on failure.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.out(),
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        self
    }

    /// Asserts success.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }
}

/// Runs `cmd` to completion with no standard input.
pub fn run(cmd: &mut Command) -> CliOut {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running cairn");
    CliOut {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/// `len` pseudo-random (incompressible) bytes from `seed` (BLAKE3 XOF).
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// `len` bytes of compressible text from `seed`: words of a small
/// vocabulary picked pseudo-randomly, so distinct seeds give distinct texts.
pub fn pseudo_text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "pack", "frame", "chunk", "tree", "snapshot", "catalog", "restore", "group", "blob",
        "index", "repair", "check", "stone", "cairn", "trail", "summit",
    ];
    let picks = pseudo_random(seed, len);
    let mut out = Vec::with_capacity(len + 10);
    for b in picks {
        if out.len() >= len {
            break;
        }
        out.extend_from_slice(WORDS[usize::from(b % 16)].as_bytes());
        out.push(if b >= 240 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// Writes `len` pseudo-random bytes from `seed` to `path` in 1 MiB blocks;
/// returns the BLAKE3 hash of what was written.
pub fn write_pseudo_random(path: &Path, seed: u64, len: u64) -> blake3::Hash {
    let mut xof = blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof();
    let mut hasher = blake3::Hasher::new();
    let mut file = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(block.len() as u64)).unwrap();
        xof.fill(&mut block[..n]);
        hasher.update(&block[..n]);
        file.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    file.flush().unwrap();
    hasher.finalize()
}

/// BLAKE3 of a file's content, streamed.
pub fn hash_file(path: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    let mut f = fs::File::open(path).unwrap();
    std::io::copy(&mut f, &mut hasher).unwrap();
    hasher.finalize()
}
