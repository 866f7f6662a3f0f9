//! Peak memory of `gc`, `stats` and `list` on a repository of a million
//! chunks (issue 4: "GC memory stays bounded: a repository of a million
//! chunks must not need more than a few hundred MB").
//!
//! ```sh
//! cargo build --release && cargo bench --bench gc_memory
//! ```
//!
//! Builds the repository through the library (1,000 directories of 1,000
//! one-chunk files, in two overlapping snapshots), then runs the release
//! `cairn` binary (`CAIRN_BIN`, default `target/release/cairn`) under
//! `/usr/bin/time -v` and prints each command's peak RSS. Exits non-zero if
//! any exceeds 400 MiB. Takes about a minute and 300 MB of disk.

mod common;

use std::path::Path;
use std::process::Command;

use cairn::catalog::{CommitBatch, PackRecord};
use cairn::model::{Entry, EntryKind, Meta, Snapshot, SnapshotSummary, Tree};
use cairn::store::{BlobKind, BlobLocation, PackWriter};
use cairn::{ChunkId, InitOptions, LockMode, ObjectId, Repository, SnapshotId};

const LIMIT_KIB: u64 = 400 * 1024;

fn main() {
    // `cargo bench` passes `--bench`; filters are not meaningful here.
    let bin = std::env::var("CAIRN_BIN").unwrap_or_else(|_| "target/release/cairn".into());
    assert!(
        Path::new(&bin).exists(),
        "{bin} not found: run `cargo build --release` first or set CAIRN_BIN"
    );
    assert!(
        Path::new("/usr/bin/time").exists(),
        "GNU time is needed to measure peak memory: apt-get install time"
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let ids = synthetic_repo(&repo, 1000, 1000);
    let catalog = std::fs::metadata(repo.join("catalog.redb")).unwrap().len();
    println!("1,000,000 chunks; catalog.redb {} MiB", catalog >> 20);
    let mut worst = 0;
    let mut row = |what: &str, args: &[&str]| {
        let kib = peak_rss_kib(&bin, &repo, args);
        worst = worst.max(kib);
        println!("{what:<40} peak RSS {:>6} MiB", kib / 1024);
    };
    row("list", &["list", "-q"]);
    row("stats", &["stats", "--json"]);
    {
        let r = Repository::open(&repo, LockMode::Shared, &|| {}).unwrap();
        r.catalog().remove_snapshots(&ids[..1]).unwrap();
    }
    row(
        "gc --dry-run (400k dead chunks)",
        &["gc", "--dry-run", "-q"],
    );
    row(
        "gc --repack-threshold 0%",
        &["gc", "-q", "--repack-threshold", "0%"],
    );
    assert!(
        worst < LIMIT_KIB,
        "peak RSS {worst} KiB exceeds {LIMIT_KIB} KiB"
    );
}

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    common::random_bytes(len, seed)
}

/// Builds, through the library, a repository of `dirs * files` one-chunk
/// files (256-byte chunks, incompressible) in two snapshots: the first
/// holds directories `0..6/10` of them, the second `4/10..`. Returns the
/// snapshot ids.
fn synthetic_repo(path: &Path, dirs: u64, files: u64) -> Vec<SnapshotId> {
    let repo = Repository::init(path, &InitOptions::default()).unwrap();
    let store = repo.store();
    let target = repo.config().pack_target_bytes;
    let mut batch = CommitBatch::default();
    let mut writer: Option<PackWriter> = None;
    let mut put = |batch: &mut CommitBatch, kind: BlobKind, raw: &[u8], last: bool| {
        let w = writer.get_or_insert_with(|| store.new_writer().unwrap());
        let frame = cairn::codec::encode(raw, 1).unwrap();
        w.add(ObjectId::of(raw), kind, raw.len() as u32, &frame)
            .unwrap();
        if w.len() >= target || last {
            let done = writer.take().unwrap().finish(store).unwrap();
            batch.packs.push((
                done.id,
                PackRecord {
                    size: done.size,
                    blobs: done.entries.len() as u32,
                },
            ));
            for e in &done.entries {
                batch.blobs.push((e.id, BlobLocation::new(done.id, e)));
            }
        }
    };
    let meta = Meta {
        mode: 0o644,
        ..Meta::default()
    };
    let mut dir_entries = Vec::new();
    for d in 0..dirs {
        let mut entries = Vec::new();
        for f in 0..files {
            let raw = pseudo_random(d * files + f, 256);
            put(&mut batch, BlobKind::Chunk, &raw, false);
            entries.push(Entry {
                name: format!("f{f:07}").into_bytes(),
                kind: EntryKind::File {
                    size: 256,
                    chunks: vec![ChunkId::of(&raw)],
                },
                meta,
            });
        }
        let (id, bytes) = Tree { entries }.encode_with_id().unwrap();
        put(&mut batch, BlobKind::Tree, &bytes, false);
        batch.trees.push((id, bytes));
        dir_entries.push(Entry {
            name: format!("d{d:07}").into_bytes(),
            kind: EntryKind::Dir { tree: id },
            meta,
        });
    }
    let halves = [
        &dir_entries[..(dirs * 6 / 10) as usize],
        &dir_entries[(dirs * 4 / 10) as usize..],
    ];
    let mut ids = Vec::new();
    for (i, entries) in halves.into_iter().enumerate() {
        let (tree, bytes) = Tree {
            entries: entries.to_vec(),
        }
        .encode_with_id()
        .unwrap();
        put(&mut batch, BlobKind::Tree, &bytes, false);
        batch.trees.push((tree, bytes));
        let snap = Snapshot {
            time_ns: 1_700_000_000_000_000_000 + i as i64,
            tree,
            paths: vec![b"/".to_vec()],
            host: "synthetic".into(),
            username: String::new(),
            tags: Vec::new(),
            message: String::new(),
            parent: None,
            summary: SnapshotSummary {
                files_new: entries.len() as u64 * files,
                bytes_total: entries.len() as u64 * files * 256,
                ..SnapshotSummary::default()
            },
            program_version: "synthetic".into(),
        };
        let bytes = snap.encode().unwrap();
        put(&mut batch, BlobKind::Snapshot, &bytes, i == 1);
        ids.push(SnapshotId::of(&bytes));
        batch.snapshots.push((SnapshotId::of(&bytes), bytes));
    }
    repo.catalog().commit(&batch).unwrap();
    ids
}

/// Peak resident memory (KiB) of `cairn ARGS` on `repo`, from `time -v`.
fn peak_rss_kib(bin: &str, repo: &Path, args: &[&str]) -> u64 {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(bin)
        .arg("--repo")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    err.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in: {err}"))
}
