//! Cost of garbage collection's mark (and sweep) against the number of
//! snapshots sharing most of their trees.
//!
//! `cargo bench --bench gc_mark` takes about a minute on 2 cores. One real
//! repository (archiver, packs, catalog) of a seeded 2,000-file tree
//! (`common::write_tree`, 16 MiB); between snapshots 1% of the files get a
//! line inserted in the middle (`common::edit_files`), so consecutive
//! snapshots share every subtree but the ~20 edited leaves and their
//! parents. `gc::collect` with `dry_run` is measured at 1, 10 and 100
//! snapshots: it marks every snapshot (a subtree shared with an earlier one is
//! read once) and sweeps the blob index, and changes nothing, so each
//! iteration sees the same repository. What should grow is the mark's work
//! per *distinct* tree node, not per snapshot times tree size.

mod common;

use std::hint::black_box;
use std::time::Duration;

use cairn::archiver::{self, NoReport, SnapshotOptions};
use cairn::gc::{self, GcOptions};
use cairn::{InitOptions, Repository};
use common::TreeSpec;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const TREE: TreeSpec = TreeSpec {
    files: 2_000,
    total_bytes: 16 << 20,
    seed: 31,
};

fn gc_mark(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    let tree = common::write_tree(&src, &TREE).expect("generate tree");
    let repo = Repository::init(&dir.path().join("repo"), &InitOptions::default()).expect("init");
    let opts = SnapshotOptions::new(vec![src.clone()]);
    let dry = GcOptions {
        dry_run: true,
        ..GcOptions::default()
    };

    let mut g = c.benchmark_group("gc_dry_run");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut taken = 0;
    for snapshots in [1_usize, 10, 100] {
        while taken < snapshots {
            if taken > 0 {
                common::edit_files(&tree, 100, taken as u64).expect("edit files");
            }
            let r = archiver::snapshot(&repo, &opts, &NoReport).expect("snapshot");
            assert!(r.warnings.is_empty(), "warnings: {:?}", r.warnings);
            taken += 1;
        }
        let summary = gc::collect(&repo, &dry).expect("gc dry run");
        assert_eq!(summary.snapshots, snapshots as u64);
        assert_eq!(summary.blobs_dead, 0, "every blob is reachable");
        eprintln!("{snapshots} snapshot(s): {} live blobs", summary.blobs_live);
        g.bench_function(BenchmarkId::new("snapshots", snapshots), |b| {
            b.iter(|| black_box(gc::collect(&repo, &dry).expect("gc dry run")));
        });
    }
    g.finish();
}

criterion_group!(benches, gc_mark);
criterion_main!(benches);
