//! Crashes and concurrency: a `cairn snapshot` killed with SIGKILL at any
//! moment, or two snapshots running at once, never leave a snapshot that
//! points at missing data; every listed snapshot restores exactly.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

#[test]
fn a_killed_snapshot_leaves_only_complete_snapshots() {
    let s = Scratch::new();
    let repo = s.join("repo");
    let first = s.join("first");
    Spec::new()
        .file("a.txt", b"committed before the crash")
        .create(&first);
    run(cairn_at(&repo)
        .args(["snapshot", "--init", "-q"])
        .arg(&first))
    .ok();

    // Large enough (48 MiB, incompressible) that the kills land mid-snapshot.
    let big = s.join("big");
    fs::create_dir_all(&big).unwrap();
    for i in 0..48 {
        write_pseudo_random(&big.join(format!("f{i:02}")), i, 1 << 20);
    }
    let scratch = s.join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    for delay_ms in [10, 60, 150, 400] {
        let mut child = cairn_at(&repo)
            .args(["snapshot", "-q"])
            .arg(&big)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no destructor, no cleanup runs.
        child.wait().unwrap();
        let n = restore_every_snapshot(&repo, &scratch);
        assert!(n >= 1, "the snapshot committed before the crashes is gone");
    }
    // The repository still takes snapshots, and they restore.
    run(cairn_at(&repo).args(["snapshot", "-q"]).arg(&big)).ok();
    let snaps = restore_every_snapshot(&repo, &scratch);
    let listed = run(cairn_at(&repo).args(["list", "--json"])).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), snaps);
}

#[test]
fn two_snapshots_of_one_repository_can_run_at_once() {
    let s = Scratch::new();
    let repo = s.join("repo");
    init_repo(&repo, &SMALL_CHUNKS);
    let (a, b) = (s.join("a"), s.join("b"));
    for (dir, seed) in [(&a, 1u64), (&b, 2u64)] {
        fs::create_dir_all(dir).unwrap();
        for i in 0..40 {
            // Shared content across both trees, so the two writers race on
            // the same chunks, plus content of their own.
            let mut bytes = pseudo_random(i, 50_000);
            bytes.extend(pseudo_random(seed * 1000 + i, 20_000));
            fs::write(dir.join(format!("f{i}")), bytes).unwrap();
        }
    }
    let spawn = |dir: &Path| {
        cairn_at(&repo)
            .args(["snapshot", "-q"])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let (out_a, out_b) = std::thread::scope(|sc| {
        let ha = sc.spawn(|| spawn(&a));
        let hb = sc.spawn(|| spawn(&b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    for out in [&out_a, &out_b] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let scratch = s.join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    assert_eq!(restore_every_snapshot(&repo, &scratch), 2);
}

#[test]
fn a_corrupt_chunk_fails_its_file_only_and_leaves_no_partial_file() {
    use cairn::model::EntryKind;
    use cairn::repo::Located;
    use std::os::unix::fs::FileExt;

    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("good.txt", b"intact content")
        .file("bad.bin", pseudo_random(7, 200_000))
        .create(&src);
    let repo = init_repo(&s.join("repo"), &SMALL_CHUNKS);
    let snap = take_snapshot(&repo, &[&src]).snapshot;

    // Flip one byte inside the stored frame of bad.bin's second chunk.
    let Located::Entry(entry) = repo.locate(&snap, &src.join("bad.bin")).unwrap() else {
        panic!("bad.bin is a file");
    };
    let EntryKind::File { chunks, .. } = &entry.kind else {
        panic!("bad.bin is a file");
    };
    let loc = repo
        .catalog()
        .begin_read()
        .unwrap()
        .blob(&chunks[1].0)
        .unwrap()
        .unwrap();
    let pack = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(repo.store().pack_path(&loc.pack))
        .unwrap();
    let at = loc.offset + u64::from(loc.length) / 2;
    let mut byte = [0u8];
    pack.read_exact_at(&mut byte, at).unwrap();
    pack.write_all_at(&[byte[0] ^ 0x55], at).unwrap();
    drop(pack);

    let target = s.join("out");
    let summary = cairn::restore::restore(
        &repo,
        snap.tree,
        &cairn::restore::RestoreOptions {
            target: target.clone(),
            includes: Vec::new(),
            overwrite: false,
            owner: false,
        },
    )
    .unwrap();
    let bad_rel = restored_path(Path::new(""), &src.join("bad.bin"));
    assert_eq!(summary.errors.len(), 1, "{:?}", summary.errors);
    assert_eq!(summary.errors[0].0, bad_rel);
    assert!(!restored_path(&target, &src.join("bad.bin")).exists());
    assert_eq!(
        fs::read(restored_path(&target, &src.join("good.txt"))).unwrap(),
        b"intact content"
    );
}
