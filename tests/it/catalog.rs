//! Catalog size: the catalog file gives its free pages back after `gc`
//! (exclusive lock) and after a snapshot that grew it, but a snapshot never
//! compacts (nor waits) while another process holds the repository lock.
//! Every snapshot still restores exactly and `check --read-data` is clean.

use std::fs::{self, File};
use std::path::Path;

use crate::support::*;

/// `n` small files of distinct text in directories of 100.
fn many_files(root: &Path, seed: u64, n: u64) {
    for i in 0..n {
        let dir = root.join(format!("d{:03}", i / 100));
        fs::create_dir_all(&dir).unwrap();
        let text = pseudo_text(seed * 1_000_000 + i, 200 + (i as usize * 37) % 600);
        fs::write(dir.join(format!("f{i:05}.txt")), text).unwrap();
    }
}

fn catalog_len(repo: &Path) -> u64 {
    fs::metadata(repo.join("catalog.redb")).unwrap().len()
}

/// Holds the repository lock shared, as another cairn process would.
fn hold_shared(repo: &Path) -> File {
    let f = File::options()
        .read(true)
        .write(true)
        .open(repo.join("locks/repo"))
        .unwrap();
    f.try_lock_shared().unwrap();
    f
}

fn assert_healthy(repo: &Path, scratch: &Scratch) {
    run(cairn_at(repo).args(["check", "--read-data"])).ok();
    assert!(restore_every_snapshot(repo, &scratch.join("restores")) > 0);
}

#[test]
fn snapshot_compacts_the_catalog_unless_the_repository_is_shared() {
    let s = Scratch::new();
    let src = s.join("src");
    many_files(&src, 1, 6000);

    // With another process holding the lock: no compaction, no waiting.
    let shared = s.join("shared");
    run(cairn_at(&shared).arg("init")).ok();
    let other = hold_shared(&shared);
    run(cairn_at(&shared).args(["snapshot", "-q"]).arg(&src)).ok();
    let uncompacted = catalog_len(&shared);
    drop(other);

    // Alone: the snapshot compacts.
    let alone = s.join("alone");
    run(cairn_at(&alone).arg("init")).ok();
    run(cairn_at(&alone).args(["snapshot", "-q"]).arg(&src)).ok();
    let compacted = catalog_len(&alone);
    assert!(
        compacted < uncompacted / 4 * 3,
        "catalog after a lone snapshot: {compacted} bytes, beside a shared lock: {uncompacted}"
    );
    assert_healthy(&shared, &s);
    assert_healthy(&alone, &s);

    // The lock is free again: gc compacts the uncompacted catalog.
    run(cairn_at(&shared).args(["gc", "-q"])).ok();
    assert!(
        catalog_len(&shared) < uncompacted / 4 * 3,
        "gc left the catalog at {} bytes (was {uncompacted})",
        catalog_len(&shared)
    );
    assert_healthy(&shared, &s);
}

#[test]
fn gc_compacts_the_catalog_with_and_without_garbage() {
    let s = Scratch::new();
    let repo = s.join("repo");
    run(cairn_at(&repo).arg("init")).ok();
    let (a, b) = (s.join("a"), s.join("b"));
    many_files(&a, 2, 3000);
    many_files(&b, 3, 3000);
    // Beside a shared lock, so the snapshots leave their free pages.
    let other = hold_shared(&repo);
    run(cairn_at(&repo).args(["snapshot", "-q"]).arg(&a)).ok();
    run(cairn_at(&repo).args(["snapshot", "-q"]).arg(&b)).ok();
    drop(other);

    // Nothing to collect: only the compaction can shrink the file.
    let before = catalog_len(&repo);
    run(cairn_at(&repo).args(["gc", "-q"])).ok();
    let after = catalog_len(&repo);
    // Closing the database trims a few pages by itself; compaction halves it.
    assert!(
        after < before / 4 * 3,
        "catalog {before} bytes before gc, {after} after"
    );
    assert_healthy(&repo, &s);

    // With garbage: still no bigger, and what is kept restores.
    {
        let r = cairn::Repository::open(&repo, cairn::LockMode::Shared, &|| {}).unwrap();
        let first = r.snapshots().unwrap()[0].0;
        assert_eq!(r.catalog().remove_snapshots(&[first]).unwrap(), 1);
    }
    run(cairn_at(&repo).args(["gc", "-q"])).ok();
    let collected = catalog_len(&repo);
    assert!(
        collected <= after,
        "gc after forget grew the catalog: {after} -> {collected}"
    );
    assert_healthy(&repo, &s);
}
