//! Benchmarks of `cairn::diff`: cost against tree size, change size and the
//! number of snapshots in the repository, plus one snapshot/live case.
//!
//! `cargo bench --bench diff` takes about a minute on 2 cores. Snapshot pairs
//! are generated through the library straight into a real catalog (redb):
//! `Tree` nodes encoded and hashed as the archiver does, one chunk per file
//! with its blob location. The chunks themselves are not in packs, which is
//! fine because a snapshot/snapshot diff never reads content: that is what is
//! measured. Layout: 100 files per leaf directory, 10 directories per level
//! (100,000 files = 1,000 leaves under 3 levels); the changed files are
//! spread evenly, so each lies in a different leaf — the worst case for a
//! diff that skips equal subtrees.
//!
//! The live case writes a real 10,000-file folder, snapshots it with the
//! archiver, changes 10 files, and measures the snapshot/live diff (one
//! `lstat` per entry, 10 reads) with a warm cache.

use std::collections::HashSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn::archiver::{self, NoReport, SnapshotOptions};
use cairn::catalog::CommitBatch;
use cairn::diff::{self, DiffOptions, Side};
use cairn::model::{Entry, EntryKind, Meta, Snapshot, SnapshotSummary, Tree};
use cairn::store::{BlobKind, BlobLocation};
use cairn::{ChunkId, InitOptions, PackId, Repository, SnapshotId, TreeId};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tempfile::TempDir;

const FILES_PER_DIR: usize = 100;
const FANOUT: usize = 10;
const FILE_BYTES: u32 = 4096;
const ROOT: &str = "/bench/data";

/// A synthetic repository holding one base snapshot.
struct Synthetic {
    _dir: TempDir,
    repo: Repository,
    files: usize,
    base: Snapshot,
}

fn meta() -> Meta {
    Meta {
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        mtime_ns: 1_700_000_000_000_000_000,
        ctime_ns: 1_700_000_000_000_000_000,
        inode: 1,
    }
}

fn chunk(file: usize, version: u32) -> ChunkId {
    ChunkId::of(format!("{file}:{version}").as_bytes())
}

fn location() -> BlobLocation {
    BlobLocation {
        pack: PackId::from([1; 32]),
        kind: BlobKind::Chunk,
        offset: 0,
        length: FILE_BYTES,
        frame_raw: FILE_BYTES,
        inner: 0,
        raw_len: FILE_BYTES,
    }
}

/// Levels of directories above the leaves for `files` files.
fn depth(files: usize) -> u32 {
    let mut leaves = files.div_ceil(FILES_PER_DIR);
    let mut d = 0;
    while leaves > 1 {
        leaves = leaves.div_ceil(FANOUT);
        d += 1;
    }
    d
}

/// Builds the subtree holding files `first..first+span`, bottom-up;
/// `changed` files get a new chunk.
fn build(
    first: usize,
    span: usize,
    files: usize,
    changed: &HashSet<usize>,
    batch: &mut CommitBatch,
) -> TreeId {
    let mut entries = Vec::new();
    if span <= FILES_PER_DIR {
        for i in first..(first + span).min(files) {
            let version = u32::from(changed.contains(&i));
            entries.push(Entry {
                name: format!("file{i:06}.dat").into_bytes(),
                kind: EntryKind::File {
                    size: u64::from(FILE_BYTES),
                    chunks: vec![chunk(i, version)],
                },
                meta: meta(),
            });
        }
    } else {
        let step = span / FANOUT;
        for k in 0..FANOUT {
            let start = first + k * step;
            if start >= files {
                break;
            }
            let tree = build(start, step, files, changed, batch);
            entries.push(Entry {
                name: format!("d{k}").into_bytes(),
                kind: EntryKind::Dir { tree },
                meta: Meta {
                    mode: 0o755,
                    ..meta()
                },
            });
        }
    }
    let (id, bytes) = Tree { entries }.encode_with_id().expect("valid tree");
    batch.trees.push((id, bytes));
    id
}

/// Wraps `data` in `/bench` and `/`, as a snapshot of `/bench/data` is stored.
fn wrap(data: TreeId, batch: &mut CommitBatch) -> TreeId {
    let mut id = data;
    for name in ["data", "bench"] {
        let (parent, bytes) = Tree {
            entries: vec![Entry {
                name: name.as_bytes().to_vec(),
                kind: EntryKind::Dir { tree: id },
                meta: Meta {
                    mode: 0o755,
                    ..meta()
                },
            }],
        }
        .encode_with_id()
        .expect("valid tree");
        batch.trees.push((parent, bytes));
        id = parent;
    }
    id
}

fn record(tree: TreeId, time_ns: i64) -> Snapshot {
    Snapshot {
        time_ns,
        tree,
        paths: vec![ROOT.as_bytes().to_vec()],
        host: "bench".into(),
        username: "bench".into(),
        tags: Vec::new(),
        message: String::new(),
        parent: None,
        summary: SnapshotSummary::default(),
        program_version: "bench".into(),
    }
}

impl Synthetic {
    fn new(files: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo =
            Repository::init(&dir.path().join("repo"), &InitOptions::default()).expect("init");
        let mut batch = CommitBatch {
            blobs: (0..files).map(|i| (chunk(i, 0).0, location())).collect(),
            ..CommitBatch::default()
        };
        let span = FILES_PER_DIR * FANOUT.pow(depth(files));
        let data = build(0, span, files, &HashSet::new(), &mut batch);
        let base = record(wrap(data, &mut batch), 0);
        let bytes = base.encode().expect("encode");
        batch.snapshots.push((SnapshotId::of(&bytes), bytes));
        repo.catalog().commit(&batch).expect("commit");
        Self {
            _dir: dir,
            repo,
            files,
            base,
        }
    }

    /// A snapshot of the base with `n` files changed (spread evenly), committed.
    fn changed(&self, n: usize, time_ns: i64) -> Snapshot {
        let changed: HashSet<usize> = (0..n).map(|k| k * self.files / n + k % 7).collect();
        let mut batch = CommitBatch {
            blobs: changed
                .iter()
                .map(|&i| (chunk(i, 1).0, location()))
                .collect(),
            ..CommitBatch::default()
        };
        let span = FILES_PER_DIR * FANOUT.pow(depth(self.files));
        let data = build(0, span, self.files, &changed, &mut batch);
        let snap = record(wrap(data, &mut batch), time_ns);
        let bytes = snap.encode().expect("encode");
        batch.snapshots.push((SnapshotId::of(&bytes), bytes));
        self.repo.catalog().commit(&batch).expect("commit");
        snap
    }

    fn diff(&self, new: &Snapshot, expected: usize) {
        let (changes, _) = diff::diff_all(
            &self.repo,
            &Side::Snapshot(&self.base),
            &Side::Snapshot(new),
            &DiffOptions::default(),
        )
        .expect("diff");
        assert_eq!(changes.len(), expected);
        black_box(changes);
    }
}

fn configure(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("diff");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn tree_size(c: &mut Criterion) {
    let mut g = configure(c);
    for files in [1_000, 10_000, 100_000] {
        let repo = Synthetic::new(files);
        let new = repo.changed(10, 1);
        g.bench_function(BenchmarkId::new("snap_snap_10_changes/files", files), |b| {
            b.iter(|| repo.diff(&new, 10));
        });
    }
    g.finish();
}

fn change_size(c: &mut Criterion) {
    let mut g = configure(c);
    let repo = Synthetic::new(100_000);
    for n in [1, 10, 100, 1_000] {
        let new = repo.changed(n, n as i64);
        g.bench_function(BenchmarkId::new("snap_snap_100k_files/changes", n), |b| {
            b.iter(|| repo.diff(&new, n));
        });
    }
    g.finish();
}

/// Rebuilds the path from `tree` (covering files `first..first+span`) down
/// to file `i`, giving it chunk version `version`; loads trees as needed.
fn replace(
    repo: &Repository,
    tree: TreeId,
    (first, span): (usize, usize),
    i: usize,
    version: u32,
    batch: &mut CommitBatch,
) -> TreeId {
    let mut t = repo.tree(&tree).expect("tree");
    if span <= FILES_PER_DIR {
        let name = format!("file{i:06}.dat").into_bytes();
        let e = t.entries.iter_mut().find(|e| e.name == name).expect("file");
        e.kind = EntryKind::File {
            size: u64::from(FILE_BYTES),
            chunks: vec![chunk(i, version)],
        };
        batch.blobs.push((chunk(i, version).0, location()));
    } else {
        let step = span / FANOUT;
        let k = (i - first) / step;
        let name = format!("d{k}").into_bytes();
        let e = t.entries.iter_mut().find(|e| e.name == name).expect("dir");
        let EntryKind::Dir { tree: sub } = e.kind else {
            unreachable!("generated directories")
        };
        let sub = replace(repo, sub, (first + k * step, step), i, version, batch);
        e.kind = EntryKind::Dir { tree: sub };
    }
    let (id, bytes) = t.encode_with_id().expect("valid tree");
    batch.trees.push((id, bytes));
    id
}

/// Resolving both references and diffing, and diffing alone, with 2 and
/// 1,002 snapshots in the repository. Each extra snapshot changes one file
/// of the base (so it adds its own 6 trees and a chunk, as an hourly
/// snapshot of a slowly changing folder would).
fn snapshot_count(c: &mut Criterion) {
    let mut g = configure(c);
    let repo = Synthetic::new(100_000);
    let new = repo.changed(10, 1);
    let new_id = SnapshotId::of(&new.encode().expect("encode")).to_hex();
    let base_id = SnapshotId::of(&repo.base.encode().expect("encode")).to_hex();
    let data = match repo.repo.tree(&repo.base.tree).expect("root").entries[0].kind {
        EntryKind::Dir { tree } => match repo.repo.tree(&tree).expect("bench").entries[0].kind {
            EntryKind::Dir { tree } => tree,
            _ => unreachable!("generated"),
        },
        _ => unreachable!("generated"),
    };
    let span = FILES_PER_DIR * FANOUT.pow(depth(repo.files));
    let mut total = 2;
    for target in [2, 1_002] {
        let mut batch = CommitBatch::default();
        while total < target {
            let i = (total * 7919) % repo.files;
            let changed = replace(&repo.repo, data, (0, span), i, 2 + total as u32, &mut batch);
            let s = record(wrap(changed, &mut batch), 10 + total as i64);
            let bytes = s.encode().expect("encode");
            batch.snapshots.push((SnapshotId::of(&bytes), bytes));
            total += 1;
        }
        repo.repo.catalog().commit(&batch).expect("commit");
        assert_eq!(repo.repo.snapshots().expect("list").len(), target);
        g.bench_function(BenchmarkId::new("diff_100k_10/snapshots", target), |b| {
            b.iter(|| repo.diff(&new, 10));
        });
        g.bench_function(
            BenchmarkId::new("resolve_and_diff_100k_10/snapshots", target),
            |b| {
                b.iter(|| {
                    let (_, old) = repo.repo.resolve(&base_id[..8]).expect("resolve");
                    let (_, new) = repo.repo.resolve(&new_id[..8]).expect("resolve");
                    let (changes, _) = diff::diff_all(
                        &repo.repo,
                        &Side::Snapshot(&old),
                        &Side::Snapshot(&new),
                        &DiffOptions::default(),
                    )
                    .expect("diff");
                    assert_eq!(changes.len(), 10);
                });
            },
        );
    }
    g.finish();
}

fn write_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{}", i / FILES_PER_DIR));
        if i % FILES_PER_DIR == 0 {
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        std::fs::write(dir.join(format!("f{i}")), format!("file {i}\n")).expect("write");
    }
}

fn live(c: &mut Criterion) {
    let mut g = configure(c);
    let dir = tempfile::tempdir().expect("temp dir");
    let src: PathBuf = std::fs::canonicalize(dir.path())
        .expect("canonical")
        .join("src");
    write_tree(&src, 10_000);
    let repo = Repository::init(&dir.path().join("repo"), &InitOptions::default()).expect("init");
    let snap = archiver::snapshot(&repo, &SnapshotOptions::new(vec![src.clone()]), &NoReport)
        .expect("snapshot")
        .snapshot;
    for k in 0..10 {
        let i = k * 1_000 + 3;
        let path = src
            .join(format!("d{}", i / FILES_PER_DIR))
            .join(format!("f{i}"));
        std::fs::write(path, format!("file {i}, changed\n")).expect("write");
    }
    let old = Side::Snapshot(&snap);
    let new = Side::Live(vec![src.clone()]);
    g.bench_function("snap_live_10k_files_10_changes", |b| {
        b.iter(|| {
            let (changes, summary) =
                diff::diff_all(&repo, &old, &new, &DiffOptions::default()).expect("diff");
            // Rewritten in place: the directories are unchanged.
            assert_eq!(changes.len(), 10);
            assert_eq!(summary.files_read, 10);
        });
    });
    g.finish();
}

criterion_group!(benches, tree_size, change_size, snapshot_count, live);
criterion_main!(benches);
