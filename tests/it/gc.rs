//! Garbage collection and `stats`: after snapshots are removed, `gc` gives
//! the space back (to within 10% of a fresh repository holding only the
//! kept snapshots), every kept snapshot still restores exactly, a dry run
//! changes nothing, a running snapshot and gc exclude each other, and a gc
//! killed at any moment leaves a repository that restores and snapshots.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use cairn::gc::{self, GcOptions, GcSummary};
use cairn::{ErrorKind, LockMode, Repository, SnapshotId};

use crate::support::*;

/// Smallest pack size a config accepts: many packs from little data.
const SMALL_PACKS: u64 = 65536;

/// A repository with 4 KiB chunks and 64 KiB packs.
fn init_small_packs(path: &Path) {
    init_with_packs(path, SMALL_PACKS);
}

/// A repository with 4 KiB chunks and packs of `pack_bytes`.
fn init_with_packs(path: &Path, pack_bytes: u64) {
    drop(init_repo(path, &SMALL_CHUNKS));
    let config = path.join("config");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    v["pack_target_bytes"] = pack_bytes.into();
    fs::write(&config, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn open(path: &Path, mode: LockMode) -> Repository {
    Repository::open(path, mode, &|| {}).unwrap()
}

/// `n` directories `v0..`, successive states of one project: file `j`
/// changes every `j % 3 + 1` versions, and a log grows by 60 KB each time.
fn versions(root: &Path, n: u64) -> Vec<PathBuf> {
    (0..n)
        .map(|k| {
            let dir = root.join(format!("v{k}"));
            let mut spec = Spec::new();
            for j in 0..10u64 {
                let seed = j * 1000 + k / (j % 3 + 1);
                spec = spec.file(format!("src/f{j}"), pseudo_random(seed, 120_000));
            }
            spec = spec.file("log", pseudo_random(999, 60_000 * (k as usize + 1)));
            spec.create(&dir);
            dir
        })
        .collect()
}

/// Total size of the pack files.
fn pack_bytes(repo: &Path) -> u64 {
    du(&repo.join("objects"))
}

/// The catalog invariant gc must keep: every indexed blob and every pack
/// record names a pack file that exists, with the recorded size.
fn assert_catalog_points_at_existing_packs(repo_path: &Path) {
    let repo = open(repo_path, LockMode::Shared);
    let reader = repo.catalog().begin_read().unwrap();
    let on_disk: BTreeMap<_, _> = repo.store().list_packs().unwrap().into_iter().collect();
    for (id, rec) in reader.packs().unwrap() {
        assert_eq!(on_disk.get(&id), Some(&rec.size), "pack record {id}");
    }
    reader
        .for_each_blob(|id, loc| {
            assert!(
                on_disk.contains_key(&loc.pack),
                "blob {id} is in missing pack {}",
                loc.pack
            );
            assert!(reader.pack(&loc.pack).unwrap().is_some(), "no record");
            Ok(())
        })
        .unwrap();
}

/// After a completed gc, the snapshot records in the packs are exactly the
/// catalog's snapshots: `repair` (which rebuilds from the packs) cannot bring
/// a removed snapshot back.
fn assert_packs_hold_only_current_snapshots(repo_path: &Path) {
    let repo = open(repo_path, LockMode::Shared);
    let mut current: Vec<_> = repo
        .snapshots()
        .unwrap()
        .iter()
        .map(|(id, _)| id.0)
        .collect();
    let mut in_packs = Vec::new();
    for (pack, _) in repo.store().list_packs().unwrap() {
        for e in repo.store().read_footer(&pack).unwrap() {
            if e.kind == cairn::store::BlobKind::Snapshot {
                in_packs.push(e.id);
            }
        }
    }
    current.sort();
    in_packs.sort();
    assert_eq!(in_packs, current);
}

fn collect(repo_path: &Path, opts: &GcOptions) -> GcSummary {
    let repo = open(repo_path, LockMode::Exclusive);
    gc::collect(&repo, opts).unwrap_or_else(|e| panic!("gc: {}", chain(&e)))
}

fn forget(repo_path: &Path, ids: &[SnapshotId]) {
    let repo = open(repo_path, LockMode::Shared);
    assert_eq!(repo.catalog().remove_snapshots(ids).unwrap(), ids.len());
}

fn snapshot_all(repo_path: &Path, dirs: &[PathBuf]) -> Vec<SnapshotId> {
    let repo = open(repo_path, LockMode::Shared);
    dirs.iter().map(|d| take_snapshot(&repo, &[d]).id).collect()
}

#[test]
fn forget_and_gc_come_within_ten_percent_of_a_fresh_repository() {
    forget_and_gc_within_ten_percent(SMALL_PACKS);
}

#[test]
fn forget_and_gc_come_within_ten_percent_with_default_packs() {
    // One pack per snapshot here: the forgotten snapshots' packs still hold
    // chunks the kept ones use, so the space comes back only by repacking.
    forget_and_gc_within_ten_percent(cairn::config::DEFAULT_PACK_BYTES);
}

fn forget_and_gc_within_ten_percent(pack_target: u64) {
    let s = Scratch::new();
    let dirs = versions(s.path(), 6);
    let repo = s.join("repo");
    init_with_packs(&repo, pack_target);
    let ids = snapshot_all(&repo, &dirs);
    let before = pack_bytes(&repo);

    forget(&repo, &ids[..4]);
    let summary = collect(&repo, &GcOptions::default());
    let after = pack_bytes(&repo);

    let fresh = s.join("fresh");
    init_with_packs(&fresh, pack_target);
    snapshot_all(&fresh, &dirs[4..]);
    let fresh_bytes = pack_bytes(&fresh);
    eprintln!(
        "before {before}, after forget+gc {after}, fresh {fresh_bytes} ({:.1}%); {summary:?}",
        after as f64 * 100.0 / fresh_bytes as f64
    );
    assert!(
        after as f64 <= fresh_bytes as f64 * 1.10,
        "after gc {after} bytes, a fresh repository {fresh_bytes}"
    );
    assert!(
        after < before * 3 / 4,
        "freed too little: {before} -> {after}"
    );
    assert_eq!(summary.bytes_used, after);
    assert_eq!(summary.bytes_freed, before - after);
    assert_eq!(summary.snapshots, 2);
    assert!(summary.packs_deleted + summary.packs_repacked > 0 && summary.blobs_dead > 0);
    assert!(summary.trees_removed > 0);

    let scratch = s.join("scratch");
    assert_eq!(restore_every_snapshot(&repo, &scratch), 2);
    assert_catalog_points_at_existing_packs(&repo);
    assert_packs_hold_only_current_snapshots(&repo);

    // With a threshold of 0 nothing dead is left, and then gc has nothing to do.
    let exact = collect(
        &repo,
        &GcOptions {
            repack_threshold: 0.0,
            ..GcOptions::default()
        },
    );
    assert_eq!(exact.bytes_dead_kept, 0);
    let st = cairn::stats::stats(&open(&repo, LockMode::Shared)).unwrap();
    assert_eq!(st.bytes_dead, 0, "{st:?}");
    let again = collect(&repo, &GcOptions::default());
    assert_eq!(
        (again.packs_deleted, again.packs_repacked, again.blobs_dead),
        (0, 0, 0)
    );
    assert_eq!(again.bytes_freed, 0);
    assert_eq!(restore_every_snapshot(&repo, &scratch), 2);
}

/// Everything a collection could change: pack and tmp files, catalog rows.
fn repo_state(repo_path: &Path) -> (Vec<(String, u64)>, Vec<String>, usize, usize) {
    let mut files = Vec::new();
    for sub in ["objects", "tmp"] {
        let mut stack = vec![repo_path.join(sub)];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(repo_path).unwrap().to_owned();
                    files.push((rel.display().to_string(), e.metadata().unwrap().len()));
                }
            }
        }
    }
    files.sort();
    let repo = open(repo_path, LockMode::Shared);
    let reader = repo.catalog().begin_read().unwrap();
    let mut blobs = Vec::new();
    reader
        .for_each_blob(|id, loc| {
            blobs.push(format!("{id} {loc:?}"));
            Ok(())
        })
        .unwrap();
    let mut trees = 0;
    reader
        .for_each_raw_tree(|_, _| {
            trees += 1;
            Ok(())
        })
        .unwrap();
    (files, blobs, trees, reader.packs().unwrap().len())
}

#[test]
fn dry_run_changes_nothing_and_predicts_the_real_run() {
    let s = Scratch::new();
    let dirs = versions(s.path(), 4);
    let repo = s.join("repo");
    init_small_packs(&repo);
    let ids = snapshot_all(&repo, &dirs);
    forget(&repo, &ids[..2]);
    fs::write(repo.join("tmp/pack-1-2-3.tmp"), b"left by a crash").unwrap();

    let state = repo_state(&repo);
    let dry = collect(
        &repo,
        &GcOptions {
            dry_run: true,
            ..GcOptions::default()
        },
    );
    assert!(dry.dry_run);
    assert_eq!(repo_state(&repo), state, "a dry run changed the repository");
    assert!(dry.bytes_freed > 0 && dry.blobs_dead > 0 && dry.packs_deleted > 0);
    assert_eq!(dry.tmp_files_deleted, 1);

    let real = collect(&repo, &GcOptions::default());
    assert!(!real.dry_run);
    assert!(!repo.join("tmp/pack-1-2-3.tmp").exists());
    for (what, d, r) in [
        ("blobs_dead", dry.blobs_dead, real.blobs_dead),
        ("blobs_live", dry.blobs_live, real.blobs_live),
        ("trees_removed", dry.trees_removed, real.trees_removed),
        ("packs_deleted", dry.packs_deleted, real.packs_deleted),
        ("packs_repacked", dry.packs_repacked, real.packs_repacked),
        (
            "tmp_files_deleted",
            dry.tmp_files_deleted,
            real.tmp_files_deleted,
        ),
        ("bytes_before", dry.bytes_before, real.bytes_before),
    ] {
        assert_eq!(d, r, "{what}: dry run {d}, real run {r}");
    }
    // New pack sizes are estimated; the estimate is close.
    let diff = dry.bytes_freed.abs_diff(real.bytes_freed);
    assert!(
        diff <= real.bytes_before / 100,
        "dry run said {} freed, real run {}",
        dry.bytes_freed,
        real.bytes_freed
    );
    assert_eq!(restore_every_snapshot(&repo, &s.join("scratch")), 2);
}

#[test]
fn gc_refuses_a_repository_opened_shared() {
    let s = Scratch::new();
    let repo = s.join("repo");
    init_small_packs(&repo);
    let shared = open(&repo, LockMode::Shared);
    let err = gc::collect(&shared, &GcOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("Exclusive"), "{err}");
    // A dry run changes nothing, so it may run beside others.
    let dry = GcOptions {
        dry_run: true,
        ..GcOptions::default()
    };
    assert!(gc::collect(&shared, &dry).is_ok());
    let bad = GcOptions {
        repack_threshold: 1.5,
        ..GcOptions::default()
    };
    drop(shared);
    let excl = open(&repo, LockMode::Exclusive);
    assert_eq!(
        gc::collect(&excl, &bad).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn leftovers_of_a_crashed_snapshot_are_deleted_and_live_data_kept() {
    let s = Scratch::new();
    let dirs = versions(s.path(), 2);
    let repo_path = s.join("repo");
    init_small_packs(&repo_path);
    snapshot_all(&repo_path, &dirs);
    // A pack made durable by a snapshot that died before its commit, and
    // one it was still writing.
    let orphan = {
        let repo = open(&repo_path, LockMode::Shared);
        let mut w = repo.store().new_writer().unwrap();
        let raw = b"a chunk nobody references";
        let frame = cairn::codec::encode(raw, 3).unwrap();
        w.add(
            cairn::ObjectId::of(raw),
            cairn::store::BlobKind::Chunk,
            raw.len() as u32,
            &frame,
        )
        .unwrap();
        w.finish(repo.store()).unwrap()
    };
    fs::write(repo_path.join("tmp/pack-9-9-9.tmp"), vec![7u8; 5000]).unwrap();
    let before = pack_bytes(&repo_path);

    let summary = collect(&repo_path, &GcOptions::default());
    assert_eq!(summary.packs_deleted, 1, "{summary:?}");
    assert_eq!(summary.tmp_files_deleted, 1);
    assert_eq!(summary.blobs_dead, 0);
    assert_eq!(summary.packs_repacked, 0);
    assert_eq!(summary.bytes_freed, orphan.size + 5000);
    assert_eq!(pack_bytes(&repo_path), before - orphan.size);
    let repo = open(&repo_path, LockMode::Shared);
    assert!(!repo.store().pack_path(&orphan.id).exists());
    drop(repo);
    assert_eq!(restore_every_snapshot(&repo_path, &s.join("scratch")), 2);
    assert_catalog_points_at_existing_packs(&repo_path);
}

#[test]
fn gc_and_stats_from_the_command_line() {
    let s = Scratch::new();
    let dirs = versions(s.path(), 3);
    let repo = s.join("repo");
    init_small_packs(&repo);
    let ids = snapshot_all(&repo, &dirs);

    let st = run(cairn_at(&repo).args(["stats", "--json"])).ok().json();
    assert_eq!(st["snapshots"], 3);
    // 11 files per version; file 0 changes every version, 1 every second…
    assert_eq!(st["files"], 33);
    assert!(st["files_unique"].as_u64().unwrap() < 33);
    assert_eq!(st["bytes_dead"], 0);
    let logical = st["bytes_logical"].as_u64().unwrap();
    let stored = st["bytes_stored"].as_u64().unwrap();
    assert_eq!(stored, pack_bytes(&repo));
    let ratio = st["dedup_ratio"].as_f64().unwrap();
    assert!((ratio - logical as f64 / stored as f64).abs() < 1e-9);
    assert!(ratio > 1.3, "three similar versions dedup: {ratio}");

    forget(&repo, &ids[..1]);
    let st = run(cairn_at(&repo).args(["stats", "--json"])).ok().json();
    let dead = st["bytes_dead"].as_u64().unwrap();
    assert!(dead > 0);

    let dry = run(cairn_at(&repo).args(["gc", "--dry-run"])).ok().out();
    assert!(dry.contains("would free"), "{dry}");
    assert_eq!(pack_bytes(&repo), stored, "dry run deleted something");

    let out = run(cairn_at(&repo).args(["gc", "--repack-threshold", "0%", "--json"]))
        .ok()
        .json();
    assert_eq!(out["dry_run"], false);
    assert_eq!(out["snapshots"], 2);
    // Threshold 0 frees what stats called dead, plus the footer entries
    // and pack headers of the rewritten packs.
    let freed = out["bytes_freed"].as_u64().unwrap();
    eprintln!("stats said {dead} dead, gc freed {freed}");
    assert!(
        freed >= dead && freed - dead < stored / 50,
        "{dead} vs {freed}"
    );
    assert_eq!(out["bytes_used"].as_u64().unwrap(), pack_bytes(&repo));
    let text = run(cairn_at(&repo).arg("gc")).ok().out();
    assert!(text.contains("freed 0 B"), "{text}");
    run(cairn_at(&repo).args(["gc", "--repack-threshold", "200%"])).expect_code(2);
    let st = run(cairn_at(&repo).args(["stats"])).ok().out();
    assert!(st.contains("dedup ratio"), "{st}");
    assert_eq!(restore_every_snapshot(&repo, &s.join("scratch")), 2);
}

#[test]
fn gc_and_a_concurrent_snapshot_both_succeed_and_everything_restores() {
    let s = Scratch::new();
    let dirs = versions(s.path(), 4);
    let repo = s.join("repo");
    init_small_packs(&repo);
    let scratch = s.join("scratch");
    for round in 0..3 {
        // Remove the snapshot of the directory about to be snapshotted
        // again: its chunks are dead to gc and wanted by the new snapshot.
        let dir = &dirs[round % dirs.len()];
        let old: Vec<SnapshotId> = snapshot_all(&repo, std::slice::from_ref(dir));
        forget(&repo, &old);
        let spawn = |args: &[&OsStr]| {
            cairn_at(&repo)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };
        let (snap, gc) = std::thread::scope(|sc| {
            let a =
                sc.spawn(|| spawn(&[OsStr::new("snapshot"), OsStr::new("-q"), dir.as_os_str()]));
            let b = sc.spawn(|| spawn(&[OsStr::new("gc"), OsStr::new("-q")]));
            (a.join().unwrap(), b.join().unwrap())
        });
        for out in [&snap, &gc] {
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_catalog_points_at_existing_packs(&repo);
        assert_eq!(restore_every_snapshot(&repo, &scratch), round + 1);
    }
}

/// Copies the directory tree at `from` to `to` (regular files and dirs).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[test]
fn a_killed_gc_leaves_a_repository_that_restores_and_snapshots() {
    let s = Scratch::new();
    let dirs = versions(s.path(), 9);
    let repo = s.join("repo");
    init_small_packs(&repo);
    let mut ids = snapshot_all(&repo, &dirs);
    let scratch = s.join("scratch");
    let gc_cmd = |path: &Path| {
        let mut c = cairn_at(path);
        c.args(["gc", "-q", "--repack-threshold", "0%"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    // Kill points spread over a whole run: each round times a complete gc
    // of a copy, then kills the real one at a fraction of that time (the
    // fractions only aim the kills; correctness is asserted regardless).
    for fraction in [0.1, 0.3, 0.5, 0.65, 0.8, 0.9, 0.97] {
        forget(&repo, &[ids.remove(0)]); // so that every round has work
        let probe = s.join("probe");
        copy_dir(&repo, &probe);
        let started = std::time::Instant::now();
        assert!(gc_cmd(&probe).status().unwrap().success());
        let full = started.elapsed();
        fs::remove_dir_all(&probe).unwrap();

        let mut child = gc_cmd(&repo).spawn().unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL: nothing cleans up.
        child.wait().unwrap();
        let dry = collect(
            &repo,
            &GcOptions {
                dry_run: true,
                ..GcOptions::default()
            },
        );
        eprintln!(
            "gc of {full:?} killed at {fraction}; finished: {finished}; left: {} tmp, {} packs to delete",
            dry.tmp_files_deleted, dry.packs_deleted
        );
        assert_catalog_points_at_existing_packs(&repo);
        assert_eq!(restore_every_snapshot(&repo, &scratch), ids.len());
    }
    // A gc that finishes cleans up whatever the killed ones left.
    run(cairn_at(&repo).args(["gc", "-q"])).ok();
    assert_packs_hold_only_current_snapshots(&repo);
    let st = run(cairn_at(&repo).args(["stats", "--json"])).ok().json();
    assert_eq!(st["snapshots"], ids.len());
    assert!(fs::read_dir(repo.join("tmp")).unwrap().next().is_none());
    // The repository still takes snapshots, and they restore.
    run(cairn_at(&repo).args(["snapshot", "-q"]).arg(&dirs[0])).ok();
    assert_catalog_points_at_existing_packs(&repo);
    assert_eq!(restore_every_snapshot(&repo, &scratch), ids.len() + 1);
}

#[test]
fn gc_of_a_group_with_one_dead_blob_keeps_the_others_and_frees_its_bytes() {
    let s = Scratch::new();
    let src = s.join("src");
    let mut spec = Spec::new();
    for i in 0..40u64 {
        spec = spec.file(format!("src/f{i}.txt"), pseudo_text(i, 2000));
    }
    spec.create(s.path());
    let repo_path = s.join("repo");
    init_small_packs(&repo_path);
    let first = snapshot_all(&repo_path, std::slice::from_ref(&src));
    let doomed = cairn::ObjectId::of(&fs::read(src.join("f7.txt")).unwrap());
    fs::remove_file(src.join("f7.txt")).unwrap();
    snapshot_all(&repo_path, std::slice::from_ref(&src));

    // The doomed file's chunk shares its frame with chunks that stay live.
    let repo = open(&repo_path, LockMode::Shared);
    let loc = repo
        .catalog()
        .begin_read()
        .unwrap()
        .blob(&doomed)
        .unwrap()
        .unwrap();
    let neighbours: Vec<_> = repo
        .store()
        .read_footer(&loc.pack)
        .unwrap()
        .into_iter()
        .filter(|e| e.offset == loc.offset && e.id != doomed)
        .collect();
    assert!(
        neighbours
            .iter()
            .any(|e| e.kind == cairn::store::BlobKind::Chunk),
        "f7.txt should share its frame with other files"
    );
    drop(repo);
    let before = pack_bytes(&repo_path);

    forget(&repo_path, &first);
    let summary = collect(
        &repo_path,
        &GcOptions {
            repack_threshold: 0.0,
            ..GcOptions::default()
        },
    );
    assert!(summary.packs_repacked >= 1, "{summary:?}");
    assert!(pack_bytes(&repo_path) < before, "{summary:?}");

    // Gone from every pack; nothing dead left; the rest restores exactly.
    let repo = open(&repo_path, LockMode::Shared);
    for (pack, _) in repo.store().list_packs().unwrap() {
        let footer = repo.store().read_footer(&pack).unwrap();
        assert!(footer.iter().all(|e| e.id != doomed), "dead blob kept");
    }
    for e in &neighbours {
        let reader = repo.catalog().begin_read().unwrap();
        if let Some(l) = reader.blob(&e.id).unwrap() {
            assert_eq!(
                repo.store().read_blob(&e.id, &l).unwrap().len(),
                e.raw_len as usize
            );
        }
    }
    assert_eq!(cairn::stats::stats(&repo).unwrap().bytes_dead, 0);
    drop(repo);
    assert_catalog_points_at_existing_packs(&repo_path);
    assert_eq!(restore_every_snapshot(&repo_path, s.path()), 1);
}

#[test]
fn a_pack_that_does_not_match_its_id_is_not_repacked_and_is_reported() {
    // Snapshot A holds keep.bin (1 MiB groups of its own chunks) and
    // gone.bin; B only keep.bin. Forgetting A leaves A's pack partly dead
    // and holding A's record, so gc must rewrite it.
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("src/keep.bin", pseudo_random(11, 3 << 20))
        .file("src/gone.bin", pseudo_random(12, 200_000))
        .create(s.path());
    let repo_path = s.join("repo");
    drop(init_repo(&repo_path, &SMALL_CHUNKS));
    let first = snapshot_all(&repo_path, std::slice::from_ref(&src));
    fs::remove_file(src.join("gone.bin")).unwrap();
    snapshot_all(&repo_path, std::slice::from_ref(&src));
    forget(&repo_path, &first);

    // Flip one byte in the middle of the largest frame of A's pack: a
    // frame of keep.bin whose blobs all stay live, so only hashing the
    // whole pack can notice (it is copied without decoding).
    let repo = open(&repo_path, LockMode::Shared);
    let packs = repo.store().list_packs().unwrap();
    let (pack, entries) = packs
        .iter()
        .map(|(id, _)| (*id, repo.store().read_footer(id).unwrap()))
        .find(|(_, f)| f.iter().any(|e| e.id == first[0].0))
        .expect("a pack holds the forgotten snapshot's record");
    let frame = entries.iter().max_by_key(|e| e.length).unwrap();
    let path = repo.store().pack_path(&pack);
    drop(repo);
    let mut bytes = fs::read(&path).unwrap();
    bytes[(frame.offset + u64::from(frame.length) / 2) as usize] ^= 0x10;
    fs::write(&path, &bytes).unwrap();

    let out = run(cairn_at(&repo_path).args(["gc", "--json"]));
    out.ok();
    let summary = out.json();
    assert_eq!(summary["packs_damaged"], 1, "{}", out.out());
    assert_eq!(summary["packs_repacked"], 0, "{}", out.out());
    assert!(out.stderr.contains("damaged"), "{}", out.stderr);
    // Left exactly as it was, still referenced; nothing dangles.
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_catalog_points_at_existing_packs(&repo_path);
}
