//! `cairn restore --in-place`: the snapshot comes back over its own paths,
//! extra files are kept unless `--delete`, a safety snapshot (tag
//! before-restore) holds the state before, and the printed undo command
//! brings that state back exactly. Dry runs and refused confirmations
//! change nothing; symlinks in the way are replaced, never followed;
//! `--include` limits both the change and the safety snapshot.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cairn::{LockMode, Repository};
use serde_json::Value;

use crate::support::*;

/// A scratch dir with the snapshotted tree `src/` (every kind of entry the
/// tests change, with fixed mtimes), an `outside/` folder next to it, and the
/// repository path `repo`.
fn project() -> (Scratch, PathBuf, PathBuf) {
    let s = Scratch::new();
    let t = 1_600_000_000_000_000_000;
    Spec::new()
        .file("src/edit.txt", b"original content\n")
        .mtime(t)
        .file("src/gone.txt", b"deleted later\n")
        .mtime(t + 1)
        .file("src/chmod.sh", b"#!/bin/sh\n")
        .mode(0o755)
        .mtime(t + 2)
        .file("src/becomes_dir", b"a file in the snapshot\n")
        .mtime(t + 3)
        .file("src/tree/inner.txt", b"inside a directory\n")
        .mtime(t + 4)
        .dir("src/tree")
        .mtime(t + 5)
        .symlink("src/link", "edit.txt")
        .file("src/locked/ro.txt", b"read-only directory\n")
        .mode(0o444)
        .mtime(t + 6)
        .dir("src/locked")
        .mode(0o555)
        .mtime(t + 7)
        .file("src/big.bin", pseudo_random(7, 300_000))
        .mtime(t + 8)
        .file("outside/secret.txt", b"outside the restored paths\n")
        .file("outside/inner.txt", b"not the snapshot's inner.txt\n")
        .dir("src")
        .mtime(t + 9)
        .create(s.path());
    let (src, repo) = (s.join("src"), s.join("repo"));
    (s, src, repo)
}

/// `snapshot --init --json` of `paths`; the new id.
fn snap(repo: &Path, paths: &[&Path]) -> String {
    let out = run(cairn_at(repo)
        .args(["snapshot", "--init", "--json"])
        .args(paths));
    out.ok();
    out.json()["id"].as_str().unwrap().to_string()
}

/// Every kind of change: edit, add, delete, mode, file → dir, dir → symlink
/// (to a folder outside), symlink retargeted, a bigger file rewritten.
fn mutate(src: &Path, outside: &Path) {
    fs::write(src.join("edit.txt"), b"edited\n").unwrap();
    fs::write(src.join("added.txt"), b"not in the snapshot\n").unwrap();
    fs::create_dir(src.join("added_dir")).unwrap();
    fs::write(src.join("added_dir/x"), b"x\n").unwrap();
    fs::remove_file(src.join("gone.txt")).unwrap();
    fs::set_permissions(src.join("chmod.sh"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(src.join("becomes_dir")).unwrap();
    fs::create_dir(src.join("becomes_dir")).unwrap();
    fs::write(src.join("becomes_dir/child"), b"child\n").unwrap();
    fs::remove_dir_all(src.join("tree")).unwrap();
    std::os::unix::fs::symlink(outside, src.join("tree")).unwrap();
    fs::remove_file(src.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", src.join("link")).unwrap();
    let mut big = fs::read(src.join("big.bin")).unwrap();
    big[150_000] ^= 0xff;
    fs::write(src.join("big.bin"), &big).unwrap();
}

fn open(repo: &Path) -> Repository {
    Repository::open(repo, LockMode::Shared, &|| {}).unwrap()
}

fn snapshot_count(repo: &Path) -> usize {
    open(repo).snapshots().unwrap().len()
}

/// `restore SNAP --in-place ARGS... --json`, asserting success; its JSON.
fn restore_in_place(repo: &Path, id: &str, args: &[&str]) -> Value {
    let out = run(cairn_at(repo)
        .args(["restore", id, "--in-place", "--json"])
        .args(args));
    out.ok();
    out.json()
}

/// Runs a printed `cairn ...` undo command with the built binary.
fn run_undo(undo: &str) -> CliOut {
    let words: Vec<&str> = undo.split(' ').collect();
    assert_eq!(words[0], "cairn", "undo command: {undo}");
    run(cairn().args(&words[1..]))
}

#[track_caller]
fn assert_descs_equal(expected: &BTreeMap<Vec<u8>, Desc>, actual: &BTreeMap<Vec<u8>, Desc>) {
    let diff = diff_descs(expected, actual);
    assert!(diff.is_empty(), "trees differ:\n{}", diff.join("\n"));
}

#[test]
fn in_place_restore_brings_the_snapshot_back_keeps_extras_and_undoes_exactly() {
    let (s, src, repo) = project();
    let outside = s.join("outside");
    let id = snap(&repo, &[&src]);
    let snapshot_state = describe(&src);
    let outside_state = describe(&outside);
    mutate(&src, &outside);
    let before = describe(&src);
    let inode = |rel: &str| fs::symlink_metadata(src.join(rel)).unwrap().ino();
    let (unchanged, metadata_only) = (inode("locked/ro.txt"), inode("chmod.sh"));

    let out = restore_in_place(&repo, &id, &["--yes"]);
    // Unchanged files and files whose metadata alone differs are not rewritten.
    assert_eq!(inode("locked/ro.txt"), unchanged);
    assert_eq!(inode("chmod.sh"), metadata_only);
    // The snapshot's tree, plus the extra entries (kept), as they were.
    let mut expected = snapshot_state.clone();
    for extra in [&b"added.txt"[..], b"added_dir", b"added_dir/x"] {
        expected.insert(extra.to_vec(), before[extra].clone());
    }
    assert_descs_equal(&expected, &describe(&src));
    assert_descs_equal(&outside_state, &describe(&outside));
    let counts = &out["counts"];
    assert_eq!(counts["kept"], 3, "{out}");
    assert_eq!(
        counts["deleted"], 1,
        "becomes_dir/child goes with the type change: {out}"
    );
    assert_eq!(counts["added"], 2, "gone.txt, tree/inner.txt: {out}");
    assert_eq!(counts["type_changed"], 2, "{out}");
    assert_eq!(out["errors"], Value::Array(Vec::new()));

    // The safety snapshot: tagged, named after the restored snapshot, and
    // holding exactly the state before.
    let safety = out["safety_snapshot"].as_str().unwrap().to_string();
    let r = open(&repo);
    let (_, saved) = r.resolve(&safety).unwrap();
    assert_eq!(saved.tags, vec!["before-restore".to_string()]);
    assert_eq!(saved.message, format!("before restoring {}", &id[..8]));
    assert_eq!(
        saved.paths,
        vec![src.as_os_str().as_encoded_bytes().to_vec()]
    );
    let copy = s.join("safety-copy");
    restore_all(&r, saved.tree, &copy);
    drop(r);
    assert_descs_equal(&before, &describe(&restored_path(&copy, &src)));

    // The printed undo command brings the state before back, exactly.
    let undo = out["undo"].as_str().unwrap();
    assert_eq!(
        undo,
        format!(
            "cairn --repo {} restore {safety} --in-place --delete --yes",
            repo.display()
        )
    );
    run_undo(undo).ok();
    assert_descs_equal(&before, &describe(&src));
    assert_descs_equal(&outside_state, &describe(&outside));

    // --delete makes the tree equal to the snapshot exactly.
    let out = restore_in_place(&repo, &id, &["--delete", "--yes"]);
    assert_eq!(out["counts"]["kept"], 0, "{out}");
    assert_eq!(
        out["counts"]["deleted"], 4,
        "3 extras + becomes_dir/child: {out}"
    );
    assert_descs_equal(&snapshot_state, &describe(&src));
    assert_descs_equal(&outside_state, &describe(&outside));
    // ... and its undo brings the extras back too.
    run_undo(out["undo"].as_str().unwrap()).ok();
    assert_descs_equal(&before, &describe(&src));
}

#[test]
fn text_output_shows_the_diff_lines_a_summary_and_ends_with_the_undo_command() {
    let (s, src, repo) = project();
    let id = snap(&repo, &[&src]);
    mutate(&src, &s.join("outside"));
    let out = run(cairn_at(&repo).args(["restore", &id, "--in-place", "--yes"]));
    out.ok();
    let text = out.out();
    let p = |rel: &str| format!("{}/{rel}", src.display());
    for line in [
        format!("M {}", p("edit.txt")),
        format!("M {}", p("big.bin")),
        format!("M {}", p("link")),
        format!("m {}", p("chmod.sh")),
        format!("+ {}", p("gone.txt")),
        format!("T {}", p("becomes_dir")),
        format!("- {}", p("becomes_dir/child")),
        format!("T {}", p("tree")),
        format!("+ {}", p("tree/inner.txt")),
        format!("- {} (kept)", p("added.txt")),
        format!("- {} (kept)", p("added_dir/x")),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(text.contains("3 kept (not in the snapshot; --delete removes them)"));
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("undo with: cairn --repo "), "{text}");
    assert!(last.ends_with(" --in-place --delete --yes"), "{text}");
}

#[test]
fn dry_run_changes_nothing_and_takes_no_snapshot() {
    let (s, src, repo) = project();
    let id = snap(&repo, &[&src]);
    mutate(&src, &s.join("outside"));
    let before = describe(&src);
    let out = run(cairn_at(&repo).args(["restore", &id, "--in-place", "--delete", "--dry-run"]));
    out.ok();
    assert!(
        out.out()
            .contains(&format!("- {}/added.txt\n", src.display()))
    );
    assert!(
        out.out().ends_with("dry run: nothing was changed\n"),
        "{}",
        out.out()
    );
    assert_descs_equal(&before, &describe(&src));
    assert_eq!(snapshot_count(&repo), 1);

    let json = restore_in_place(&repo, &id, &["--dry-run"]);
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["safety_snapshot"], Value::Null);
    assert_eq!(json["counts"]["kept"], 3);
    assert_descs_equal(&before, &describe(&src));
    assert_eq!(snapshot_count(&repo), 1);
}

#[test]
fn without_yes_and_without_a_terminal_it_refuses_with_exit_2() {
    let (s, src, repo) = project();
    let id = snap(&repo, &[&src]);
    mutate(&src, &s.join("outside"));
    let before = describe(&src);
    // `run` gives the child no standard input (not a terminal).
    let out = run(cairn_at(&repo).args(["restore", &id, "--in-place"]));
    out.expect_code(2);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert!(out.stderr.contains("--dry-run"), "{}", out.stderr);
    assert_descs_equal(&before, &describe(&src));
    assert_eq!(snapshot_count(&repo), 1);
}

#[test]
fn nothing_to_change_says_so_and_takes_no_safety_snapshot() {
    let (_s, src, repo) = project();
    let id = snap(&repo, &[&src]);
    let out = run(cairn_at(&repo).args(["restore", &id, "--in-place"]));
    out.ok();
    assert!(
        out.out().starts_with("nothing to restore: "),
        "{}",
        out.out()
    );
    assert_eq!(snapshot_count(&repo), 1);
}

#[test]
fn symlinks_in_the_way_are_replaced_never_followed() {
    let (s, src, repo) = project();
    let outside = s.join("outside");
    let id = snap(&repo, &[&src]);
    let snapshot_state = describe(&src);
    let outside_state = describe(&outside);
    // A file and a directory of the snapshot are now links to the outside
    // (the directory link's target has a file of the same name); an extra
    // link points at an outside folder.
    fs::remove_file(src.join("edit.txt")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), src.join("edit.txt")).unwrap();
    fs::remove_dir_all(src.join("tree")).unwrap();
    std::os::unix::fs::symlink(&outside, src.join("tree")).unwrap();
    std::os::unix::fs::symlink(&outside, src.join("extra_link")).unwrap();

    restore_in_place(&repo, &id, &["--delete", "--yes"]);
    assert_descs_equal(&snapshot_state, &describe(&src));
    assert_descs_equal(&outside_state, &describe(&outside));
}

#[test]
fn include_limits_the_change_and_the_safety_snapshot() {
    let (s, src, repo) = project();
    let id = snap(&repo, &[&src]);
    let snapshot_state = describe(&src.join("tree"));
    fs::write(src.join("tree/inner.txt"), b"changed inside tree\n").unwrap();
    fs::write(src.join("tree/extra.txt"), b"extra\n").unwrap();
    fs::write(src.join("edit.txt"), b"changed outside the include\n").unwrap();
    let rest_before = describe(&src.join("locked"));
    let edit_before = fs::read(src.join("edit.txt")).unwrap();

    let out = restore_in_place(
        &repo,
        &id,
        &[
            "--include",
            src.join("tree").to_str().unwrap(),
            "--delete",
            "--yes",
        ],
    );
    assert_descs_equal(&snapshot_state, &describe(&src.join("tree")));
    assert_eq!(fs::read(src.join("edit.txt")).unwrap(), edit_before);
    assert_descs_equal(&rest_before, &describe(&src.join("locked")));
    assert_eq!(
        out["counts"]["changes"], 3,
        "tree (mtime), extra.txt, inner.txt: {out}"
    );

    let safety = out["safety_snapshot"].as_str().unwrap();
    let r = open(&repo);
    let (_, saved) = r.resolve(safety).unwrap();
    let tree = src.join("tree");
    assert_eq!(
        saved.paths,
        vec![tree.as_os_str().as_encoded_bytes().to_vec()]
    );
    assert!(r.locate(&saved, &src.join("edit.txt")).is_err());
    drop(r);
    let _ = s;
}

#[test]
fn a_deleted_source_path_is_recreated_and_the_undo_removes_it() {
    let (s, src, repo) = project();
    let id = snap(&repo, &[&src]);
    let snapshot_state = describe(&src);
    make_writable(&src);
    fs::remove_dir_all(&src).unwrap();

    let out = restore_in_place(&repo, &id, &["--yes"]);
    assert_eq!(out["safety_snapshot"], Value::Null);
    assert_descs_equal(&snapshot_state, &describe(&src));
    let undo = out["undo"].as_str().unwrap();
    assert_eq!(undo, format!("rm -rf -- {}", src.display()));
    make_writable(&src);
    assert!(
        std::process::Command::new("sh")
            .args(["-c", undo])
            .status()
            .unwrap()
            .success()
    );
    assert!(!src.exists());
    let _ = s;
}

#[test]
fn a_symlink_above_the_restored_path_is_refused() {
    let s = Scratch::new();
    Spec::new().file("real/src/a.txt", b"a\n").create(s.path());
    let repo = s.join("repo");
    let src = s.join("real/src");
    let id = snap(&repo, &[&src]);
    fs::rename(s.join("real"), s.join("moved")).unwrap();
    std::os::unix::fs::symlink(s.join("moved"), s.join("real")).unwrap();
    fs::write(s.join("moved/src/a.txt"), b"changed\n").unwrap();
    let out = run(cairn_at(&repo).args(["restore", &id, "--in-place", "--yes"]));
    out.expect_code(2);
    assert!(out.stderr.contains("is a symlink"), "{}", out.stderr);
    assert_eq!(fs::read(s.join("moved/src/a.txt")).unwrap(), b"changed\n");
    assert_eq!(snapshot_count(&repo), 1);
}

#[test]
fn in_place_and_target_are_mutually_exclusive_and_one_is_required() {
    let (s, src, repo) = project();
    let id = snap(&repo, &[&src]);
    let target = s.join("target");
    let t = target.to_str().unwrap();
    for args in [
        vec!["restore", &id],
        vec!["restore", &id, "--in-place", "--target", t],
        vec!["restore", &id, "--target", t, "--delete"],
        vec!["restore", &id, "--target", t, "--yes"],
        vec!["restore", &id, "--target", t, "--dry-run"],
        vec!["restore", &id, "--in-place", "--overwrite", "--yes"],
    ] {
        let out = run(cairn_at(&repo).args(&args));
        out.expect_code(2);
        assert!(out.out().is_empty(), "{args:?}: {}", out.out());
    }
    assert!(!target.exists());
    assert_eq!(snapshot_count(&repo), 1);
}

#[test]
fn delete_never_touches_the_repository_inside_the_restored_path() {
    let (_s, src, _) = project();
    let repo = src.join("backups");
    let id = snap(&repo, &[&src]);
    let snapshot_state = describe(&src);
    fs::write(src.join("added.txt"), b"extra\n").unwrap();

    let out = restore_in_place(&repo, &id, &["--delete", "--yes"]);
    assert_eq!(out["counts"]["deleted"], 1, "{out}");
    assert!(!src.join("added.txt").exists());
    // The repository is intact and still in place; the rest is the snapshot.
    let mut outside_repo = describe(&src);
    outside_repo.retain(|k, _| !k.starts_with(b"backups"));
    let mut expected = snapshot_state.clone();
    expected.retain(|k, _| !k.starts_with(b"backups"));
    assert_descs_equal(&expected, &outside_repo);
    run(cairn_at(&repo).args(["check"])).ok();
    assert_eq!(snapshot_count(&repo), 2);
}

#[test]
fn library_plan_and_restore_agree() {
    use cairn::restore::in_place::{self, InPlaceOptions};
    let (s, src, repo) = project();
    let id = snap(&repo, &[&src]);
    let snapshot_state = describe(&src);
    mutate(&src, &s.join("outside"));
    let r = open(&repo);
    let (sid, snapshot) = r.resolve(&id).unwrap();
    let opts = InPlaceOptions {
        delete: true,
        ..InPlaceOptions::default()
    };
    let plan = in_place::plan(&r, &snapshot, &opts).unwrap();
    assert_eq!(plan.roots, vec![src.clone()]);
    let outcome =
        in_place::restore_in_place(&r, &sid, &snapshot, &opts, &cairn::archiver::NoReport).unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.counts, plan.counts);
    assert!(outcome.created.is_empty());
    let safety = outcome.safety.unwrap();
    let (_, saved) = r.resolve(&safety.to_hex()).unwrap();
    assert_eq!(saved.tags, vec![in_place::SAFETY_TAG.to_string()]);
    assert_descs_equal(&snapshot_state, &describe(&src));
    // Nothing left to do.
    assert_eq!(
        in_place::plan(&r, &snapshot, &opts)
            .unwrap()
            .counts
            .changes(),
        0
    );
}
