//! Benchmarks of the core pipeline: chunking, hashing, compression, and an
//! end-to-end snapshot and restore of a generated tree.
//!
//! `cargo bench --bench pipeline` takes a few minutes on 2 cores; filter with
//! e.g. `cargo bench --bench pipeline -- snapshot`. All data is seeded (see
//! `common/mod.rs`), so runs on different machines see the same bytes.
//!
//! The end-to-end groups run with a warm page cache (the tree was just
//! written) on whatever file system holds the temp dir; pack and catalog
//! writes are synced as in real use.

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn::archiver::{self, NoReport, SnapshotOptions};
use cairn::chunker::{ChunkerParams, chunk_slice};
use cairn::restore::{self, RestoreOptions};
use cairn::{ChunkId, InitOptions, Repository, codec};
use common::TreeSpec;
use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use tempfile::TempDir;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// Chunk size of the per-chunk benches (the repository default average is 16 KiB).
const CHUNK: usize = 64 * KIB;
const ZSTD_LEVELS: [i32; 5] = [1, 3, 6, 9, 19];
/// The end-to-end tree: 2,000 files of mixed sizes, 40 MiB in all.
const TREE: TreeSpec = TreeSpec {
    files: 2_000,
    total_bytes: 40 * MIB as u64,
    seed: 42,
};

fn chunker(c: &mut Criterion) {
    let data = common::random_bytes(32 * MIB, 1);
    let mut g = c.benchmark_group("chunker");
    g.throughput(Throughput::Bytes(data.len() as u64));
    for avg_kib in [16u32, 64, 256] {
        let params = ChunkerParams::from_average(avg_kib << 10).expect("valid average");
        let chunks = chunk_slice(&data, &params).len();
        eprintln!(
            "chunker avg {avg_kib} KiB: {chunks} chunks, mean {} bytes",
            data.len() / chunks
        );
        g.bench_with_input(BenchmarkId::new("avg_kib", avg_kib), &params, |b, p| {
            b.iter(|| chunk_slice(black_box(&data), p).len());
        });
    }
    g.finish();
}

fn blake3(c: &mut Criterion) {
    let chunk = common::random_bytes(CHUNK, 2);
    let mut g = c.benchmark_group("blake3");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    g.bench_function("chunk_64kib", |b| b.iter(|| ChunkId::of(black_box(&chunk))));
    g.finish();
}

fn codec(c: &mut Criterion) {
    let inputs = [
        ("text", common::text_like(CHUNK, 3)),
        ("random", common::random_bytes(CHUNK, 4)),
    ];
    let mut g = c.benchmark_group("codec_encode");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    for (kind, data) in &inputs {
        for level in ZSTD_LEVELS {
            let frame = codec::encode(data, level).expect("encodes");
            eprintln!(
                "codec {kind} level {level}: 64 KiB -> {} bytes ({:.2}x)",
                frame.len(),
                CHUNK as f64 / frame.len() as f64
            );
            g.bench_with_input(BenchmarkId::new(*kind, level), &level, |b, &level| {
                b.iter(|| codec::encode(black_box(data), level).expect("encodes"));
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("codec_decode");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    for (kind, data) in &inputs {
        let levels: &[i32] = if *kind == "text" { &[1, 3, 19] } else { &[3] };
        for &level in levels {
            let frame = codec::encode(data, level).expect("encodes");
            assert_eq!(&codec::decode(&frame).expect("decodes"), data);
            g.bench_with_input(BenchmarkId::new(*kind, level), &frame, |b, frame| {
                b.iter(|| codec::decode(black_box(frame)).expect("decodes"));
            });
        }
    }
    g.finish();
}

fn fresh_repo() -> (TempDir, Repository) {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = Repository::init(&dir.path().join("repo"), &InitOptions::default())
        .expect("init repository");
    (dir, repo)
}

fn snap(repo: &Repository, opts: &SnapshotOptions) -> archiver::SnapshotResult {
    let r = archiver::snapshot(repo, opts, &NoReport).expect("snapshot");
    assert!(r.warnings.is_empty(), "warnings: {:?}", r.warnings);
    r
}

fn slow_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    bytes: u64,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(bytes));
    g
}

fn end_to_end(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let src: PathBuf = dir.path().join("src");
    let tree = common::write_tree(&src, &TREE).expect("generate tree");
    let mut opts = SnapshotOptions::new(vec![src.clone()]);
    opts.host = "bench".to_string();
    eprintln!(
        "tree: {} files, {:.1} MiB",
        tree.files.len(),
        tree.bytes as f64 / MIB as f64
    );

    let mut g = slow_group(c, "snapshot", tree.bytes);
    g.bench_function("first", |b| {
        b.iter_batched(
            fresh_repo,
            |(dir, repo)| {
                let r = snap(&repo, &opts);
                (dir, repo, r)
            },
            BatchSize::PerIteration,
        );
    });

    // One repository for the rest: the first snapshot, then re-snapshots.
    // `bytes_added` counts what went into packs (the catalog is not included).
    let (_repo_dir, repo) = fresh_repo();
    let first = snap(&repo, &opts);
    let packed = first.snapshot.summary.bytes_added;
    eprintln!(
        "first snapshot: {:.1} MiB packed ({:.1}% of the tree), {} blobs",
        packed as f64 / MIB as f64,
        100.0 * packed as f64 / tree.bytes as f64,
        first.snapshot.summary.blobs_added
    );
    let again = snap(&repo, &opts);
    assert_eq!(
        again.snapshot.summary.files_unchanged,
        tree.files.len() as u64
    );
    eprintln!(
        "no-change snapshot: +{} bytes packed",
        again.snapshot.summary.bytes_added
    );
    g.bench_function("no_change", |b| b.iter(|| snap(&repo, &opts)));

    let mut round = 0;
    let mut edit = || {
        round += 1;
        common::edit_files(&tree, 100, round).expect("edit files")
    };
    let edited = edit();
    let r = snap(&repo, &opts).snapshot.summary;
    assert_eq!(r.files_changed, edited as u64);
    eprintln!(
        "1% edited ({edited} files): +{} bytes packed ({:.2}% of the first), {} blobs",
        r.bytes_added,
        100.0 * r.bytes_added as f64 / packed as f64,
        r.blobs_added
    );
    g.bench_function("edit_1pct", |b| {
        b.iter_batched(&mut edit, |_| snap(&repo, &opts), BatchSize::PerIteration);
    });
    g.finish();

    let mut g = slow_group(c, "restore", tree.bytes);
    let restore_opts = |target: &Path| RestoreOptions {
        target: target.join("out"),
        includes: Vec::new(),
        overwrite: false,
        owner: false,
    };
    let check = tempfile::tempdir().expect("temp dir");
    let summary =
        restore::restore(&repo, first.snapshot.tree, &restore_opts(check.path())).expect("restore");
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(summary.files, tree.files.len() as u64);
    drop(check);
    g.bench_function("full", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("temp dir"),
            |target| {
                let s = restore::restore(&repo, first.snapshot.tree, &restore_opts(target.path()))
                    .expect("restore");
                (target, s)
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = chunker, blake3, codec, end_to_end
}
criterion_main!(benches);
