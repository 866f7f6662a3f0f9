//! What a real file system throws at a snapshot: special files, excludes
//! and ignore files, the repository inside its own source, bad sources.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use cairn::archiver::{SnapshotOptions, WarningKind};
use cairn::model::{EntryKind, Snapshot};
use cairn::repo::Located;
use cairn::{ErrorKind, InitOptions, Repository};

use crate::support::*;

/// Whether `path` is in the snapshot.
fn has(repo: &Repository, snap: &Snapshot, path: &Path) -> bool {
    match repo.locate(snap, path) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn kind_of(repo: &Repository, snap: &Snapshot, path: &Path) -> EntryKind {
    match repo.locate(snap, path).unwrap() {
        Located::Entry(e) => e.kind,
        Located::Root(_) => panic!("root"),
    }
}

#[test]
fn a_fifo_is_stored_as_a_fifo_without_being_read() {
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("src/file.txt", b"data")
        .fifo("src/pipe")
        .mode(0o640)
        .create(s.path());
    let repo_path = s.join("repo");
    init_repo(&repo_path, &InitOptions::default());
    // Reading a FIFO with no writer would block forever: run the snapshot on
    // a thread so a regression fails this test instead of hanging the suite.
    let (tx, rx) = mpsc::channel();
    let (src2, repo2) = (src.clone(), repo_path.clone());
    std::thread::spawn(move || {
        let repo = Repository::open(&repo2, cairn::LockMode::Shared, &|| {}).unwrap();
        let r = take_snapshot(&repo, &[&src2]);
        let _ = tx.send(r);
    });
    let result = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("snapshotting a directory with a FIFO hung");
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);
    assert_eq!(result.snapshot.summary.others, 1);
    let repo = Repository::open(&repo_path, cairn::LockMode::Shared, &|| {}).unwrap();
    assert_eq!(
        kind_of(&repo, &result.snapshot, &src.join("pipe")),
        EntryKind::Fifo
    );

    let out = s.join("out");
    restore_all(&repo, result.snapshot.tree, &out);
    assert_same_tree(&src, &restored_path(&out, &src));
}

#[test]
fn a_socket_is_recorded_and_skipped_on_restore() {
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new().file("src/file.txt", b"data").create(s.path());
    let _listener = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let result = take_snapshot(&repo, &[&src]);
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);
    assert_eq!(result.snapshot.summary.errors, 0);
    assert_eq!(
        kind_of(&repo, &result.snapshot, &src.join("sock")),
        EntryKind::Socket
    );

    let out = s.join("out");
    let summary = restore_all(&repo, result.snapshot.tree, &out);
    let restored = restored_path(&out, &src);
    assert_eq!(fs::read(restored.join("file.txt")).unwrap(), b"data");
    assert!(!restored.join("sock").exists());
    assert_eq!(summary.others, 0);
}

#[test]
fn a_device_node_round_trips_when_root() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !cairn::fsmeta::is_root() {
        eprintln!("skipped: creating device nodes needs root");
        return;
    }
    let s = Scratch::new();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let dev = src.join("null");
    let rdev = rustix::fs::makedev(1, 3);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &dev,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o620),
        rdev,
    )
    .unwrap();
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let result = take_snapshot(&repo, &[&src]);
    assert_eq!(
        kind_of(&repo, &result.snapshot, &dev),
        EntryKind::Device { block: false, rdev }
    );
    let out = s.join("out");
    restore_all(&repo, result.snapshot.tree, &out);
    let md = fs::symlink_metadata(restored_path(&out, &dev)).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), rdev);
    assert_same_tree(&src, &restored_path(&out, &src));
}

fn snapshot_with(
    repo: &Repository,
    src: &Path,
    excludes: &[&str],
    ignore_files: &[&str],
) -> Snapshot {
    let mut opts = SnapshotOptions::new(vec![src.to_path_buf()]);
    opts.excludes = excludes.iter().map(|s| s.to_string()).collect();
    opts.ignore_files = ignore_files.iter().map(|s| s.to_string()).collect();
    let r = take_snapshot_with(repo, opts);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    r.snapshot
}

fn check(repo: &Repository, snap: &Snapshot, src: &Path, present: &[&str], absent: &[&str]) {
    for p in present {
        assert!(
            has(repo, snap, &src.join(p)),
            "{p} should be in the snapshot"
        );
    }
    for p in absent {
        assert!(!has(repo, snap, &src.join(p)), "{p} should be excluded");
    }
}

#[test]
fn exclude_patterns_leave_out_matching_paths() {
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("src/app.log", b"x")
        .file("src/sub/deep.log", b"x")
        .file("src/keep.txt", b"x")
        .file("src/logs.txt", b"x")
        .file("src/keep2.txt", b"x")
        .file("src/sub/keep2.txt", b"x")
        .file("src/target/out.bin", b"x")
        .file("src/sub/target/nested.bin", b"x")
        .file("src/not-a-dir/target", b"a file named target")
        .create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let anchored = format!("{}/keep2.txt", src.display());
    let snap = snapshot_with(&repo, &src, &["*.log", "target/", &anchored], &[]);
    check(
        &repo,
        &snap,
        &src,
        &[
            "keep.txt",
            "logs.txt",
            "sub/keep2.txt",
            "not-a-dir/target",
            "sub",
        ],
        &[
            "app.log",
            "sub/deep.log",
            "target",
            "sub/target",
            "keep2.txt",
        ],
    );
}

#[test]
fn an_ignore_file_is_honoured_when_asked() {
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("src/.gitignore", b"*.tmp\nbuild/\n!important.tmp\n")
        .file("src/a.tmp", b"x")
        .file("src/important.tmp", b"x")
        .file("src/build/artifact", b"x")
        .file("src/local.txt", b"x")
        .file("src/sub/.gitignore", b"local.txt\n")
        .file("src/sub/local.txt", b"x")
        .file("src/sub/b.tmp", b"x")
        .file("src/sub/kept.txt", b"x")
        .file("src/.hidden", b"x")
        .create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let snap = snapshot_with(&repo, &src, &[], &[".gitignore"]);
    check(
        &repo,
        &snap,
        &src,
        &[
            ".gitignore",
            "important.tmp",
            "local.txt",
            "sub/.gitignore",
            "sub/kept.txt",
            ".hidden",
        ],
        &["a.tmp", "build", "sub/local.txt", "sub/b.tmp"],
    );
}

#[test]
fn by_default_hidden_and_gitignored_files_are_included() {
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("src/.gitignore", b"*\n")
        .file("src/.git/HEAD", b"ref: refs/heads/main\n")
        .file("src/.hidden-dir/.hidden-file", b"x")
        .file("src/ignored.tmp", b"x")
        .file("src/.ignore", b"*.txt\n")
        .file("src/plain.txt", b"x")
        .create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let snap = snapshot_with(&repo, &src, &[], &[]);
    check(
        &repo,
        &snap,
        &src,
        &[
            ".gitignore",
            ".git/HEAD",
            ".hidden-dir/.hidden-file",
            "ignored.tmp",
            ".ignore",
            "plain.txt",
        ],
        &[],
    );
    assert_eq!(snap.summary.files_new, 6);
}

#[test]
fn the_repository_inside_a_source_is_skipped_with_a_warning() {
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("src/a.txt", b"a")
        .file("src/sub/b.txt", b"b")
        .create(s.path());
    let repo_path = src.join("sub/repo");
    let repo = init_repo(&repo_path, &InitOptions::default());
    for _ in 0..2 {
        let result = take_snapshot(&repo, &[&src]);
        let skipped: Vec<&PathBuf> = result
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::Skipped)
            .map(|w| &w.path)
            .collect();
        assert_eq!(skipped, [&repo_path], "{:?}", result.warnings);
        assert_eq!(result.snapshot.summary.errors, 0);
        check(
            &repo,
            &result.snapshot,
            &src,
            &["a.txt", "sub/b.txt"],
            &["sub/repo"],
        );
    }
}

#[test]
fn a_missing_source_fails_and_commits_nothing() {
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new().file("src/a.txt", b"a").create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    for paths in [
        vec![s.join("missing")],
        vec![src.clone(), s.join("missing")],
    ] {
        let err = cairn::archiver::snapshot(
            &repo,
            &SnapshotOptions::new(paths),
            &cairn::archiver::NoReport,
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
    assert!(repo.snapshots().unwrap().is_empty());
}

#[test]
fn a_symlink_given_as_source_is_stored_as_a_link() {
    let s = Scratch::new();
    Spec::new()
        .file("real/inside.txt", b"x")
        .symlink("link", "real")
        .create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let link = s.join("link");
    let result = take_snapshot(&repo, &[&link]);
    assert_eq!(
        kind_of(&repo, &result.snapshot, &link),
        EntryKind::Symlink {
            target: b"real".to_vec()
        }
    );
    assert!(!has(&repo, &result.snapshot, &s.join("real")));
    assert_eq!(result.snapshot.summary.files_new, 0);
}

/// Exclude patterns that leave out everything below `top` except `keep`
/// (and the directories leading to it).
fn only_below(top: &Path, keep: &Path) -> Vec<String> {
    let mut excludes = Vec::new();
    let mut parent = top.to_path_buf();
    for c in keep.strip_prefix(top).unwrap().components() {
        let here = parent.join(c);
        excludes.push(format!("{}/*", parent.display()).replacen("//", "/", 1));
        excludes.push(format!("!{}", here.display()));
        parent = here;
    }
    excludes
}

#[test]
fn negated_excludes_narrow_a_walk_to_one_directory() {
    let s = Scratch::new();
    Spec::new().file("src/a.txt", b"a").create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let top = s.path().parent().unwrap().to_path_buf();
    let mut opts = SnapshotOptions::new(vec![top.clone()]);
    opts.excludes = only_below(&top, s.path());
    let result = take_snapshot_with(&repo, opts);
    assert!(has(&repo, &result.snapshot, &s.join("src/a.txt")));
    let Located::Entry(e) = repo.locate(&result.snapshot, &top).unwrap() else {
        panic!("root");
    };
    let EntryKind::Dir { tree } = e.kind else {
        panic!("not a dir");
    };
    let names: Vec<Vec<u8>> = repo
        .tree(&tree)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.name)
        .collect();
    let scratch_name = s.path().file_name().unwrap().as_encoded_bytes().to_vec();
    assert_eq!(names, [scratch_name]);
}

#[test]
fn the_whole_file_system_can_be_a_source() {
    // `/` as the source, narrowed by excludes to this test's scratch dir so
    // the test stays small (the test above checks that narrowing).
    let s = Scratch::new();
    Spec::new().file("src/a.txt", b"a").create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let mut opts = SnapshotOptions::new(vec![PathBuf::from("/")]);
    opts.excludes = only_below(Path::new("/"), s.path());
    // Regression: `/` as a source (an empty list of names) used to panic.
    let result = take_snapshot_with(&repo, opts);
    assert_eq!(result.snapshot.paths, vec![b"/".to_vec()]);
    assert!(has(&repo, &result.snapshot, &s.join("src/a.txt")));
    assert!(!has(&repo, &result.snapshot, &s.join("repo")));
}
