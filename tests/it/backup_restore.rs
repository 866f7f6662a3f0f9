//! Snapshot → restore round trips, partial restores, restore targets, and
//! the decoding guard that keeps hostile catalog content from escaping the
//! target.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cairn::catalog::CommitBatch;
use cairn::model::{Entry, EntryKind, Meta, TREE_VERSION, Tree};
use cairn::repo::Located;
use cairn::restore::{self, RestoreOptions};
use cairn::{ErrorKind, InitOptions, Repository, TreeId};
use proptest::prelude::*;

use crate::support::*;

const T0: i64 = 1_600_000_000_123_456_789;

/// A tree with every kind of thing a backup has to get right.
fn rich_spec() -> Spec {
    Spec::new()
        .file("plain.txt", b"hello, cairn\n")
        .mode(0o644)
        .mtime(T0)
        .file("empty", b"")
        .mode(0o600)
        .mtime(T0 + 1)
        .dir("empty-dir")
        .mode(0o755)
        .mtime(T0 + 2)
        .file("dir with spaces/file with spaces.txt", b"spaces")
        .mtime(T0 + 3)
        .file(b"new\nline", b"a newline in the name")
        .file("tab\tname", b"a tab in the name")
        .file(b"latin1-\xe9t\xe9", b"not UTF-8")
        .file(b"dir-\xff\xfe/inner-\x80", b"non-UTF-8 dir and file")
        .file("unicode-\u{fc}n\u{ef}.txt", b"unicode")
        .file("-leading-dash", b"dash")
        .file(".hidden", b"hidden files are kept")
        .file("exec.sh", b"#!/bin/sh\necho hi\n")
        .mode(0o755)
        .file("ro-file", b"read only")
        .mode(0o444)
        .file("private", b"owner only")
        .mode(0o400)
        .dir("ro-dir")
        .mode(0o555)
        .mtime(T0 + 4)
        .file("ro-dir/inside.txt", b"inside a read-only dir")
        .mode(0o444)
        .dir("ro-dir/sub")
        .mode(0o555)
        .dir("sticky")
        .mode(0o1777)
        .file("before-1970", b"old")
        .mtime(-1_000_000_000_500)
        .file("far-future", b"new")
        .mtime(4_000_000_000_000_000_001)
        .symlink("link-rel", "plain.txt")
        .symlink("link-abs", "/etc/passwd")
        .symlink("dangling", "does/not/exist")
        .symlink("link-to-dir", "empty-dir")
        .symlink(b"link-\xff", b"target-\xfe\nwith newline")
        .symlink("link-up", "../../outside")
        .file("hard-a", b"hard linked content")
        .mode(0o640)
        .hardlink("hard-b", "hard-a")
        .fifo("pipe")
        .file("deep/a/b/c/d/e/leaf", b"deep")
        .file("big.bin", pseudo_random(1, 300_000))
}

#[test]
fn round_trip_restores_names_bytes_links_modes_and_mtimes() {
    let s = Scratch::new();
    let src = s.join("src");
    rich_spec().create(&src);
    let repo = init_repo(&s.join("repo"), &SMALL_CHUNKS);
    let result = take_snapshot(&repo, &[&src]);
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);
    assert_eq!(result.snapshot.summary.errors, 0);
    assert_eq!(
        result.snapshot.paths,
        vec![src.as_os_str().as_bytes().to_vec()]
    );

    // The multi-chunk file really spans many chunks.
    let Located::Entry(big) = repo.locate(&result.snapshot, &src.join("big.bin")).unwrap() else {
        panic!("big.bin is not an entry");
    };
    let EntryKind::File { size, chunks } = &big.kind else {
        panic!("big.bin is not a file");
    };
    assert_eq!(*size, 300_000);
    assert!(chunks.len() > 20, "only {} chunks", chunks.len());

    let out = s.join("out");
    let summary = restore_all(&repo, result.snapshot.tree, &out);
    assert!(summary.files >= 20, "{summary:?}");

    // Restored below the target under the full absolute path, nothing else.
    let first = src.components().nth(1).unwrap().as_os_str().to_owned();
    let top: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, vec![first]);
    let restored = restored_path(&out, &src);
    assert_same_tree(&src, &restored);

    // Hard links come back at least as files with the same bytes.
    assert_eq!(
        fs::read(restored.join("hard-b")).unwrap(),
        b"hard linked content"
    );
    assert!(
        fs::symlink_metadata(restored.join("hard-b"))
            .unwrap()
            .is_file()
    );
    // Symlinks are links, not the files they point to.
    assert!(
        fs::symlink_metadata(restored.join("link-abs"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

// As root this passes; run without root it fails on the read-only
// directories (regression: see cli::restore_overwrite_onto_an_earlier_restore_with_
// read_only_dirs_works_unprivileged, which shows it even when run as root).
#[test]
fn restoring_twice_with_overwrite_gives_the_same_tree() {
    let s = Scratch::new();
    let src = s.join("src");
    rich_spec().create(&src);
    let repo = init_repo(&s.join("repo"), &SMALL_CHUNKS);
    let tree = take_snapshot(&repo, &[&src]).snapshot.tree;
    let out = s.join("out");
    restore_all(&repo, tree, &out);
    let opts = RestoreOptions {
        target: out.clone(),
        includes: Vec::new(),
        overwrite: true,
        owner: cairn::fsmeta::is_root(),
    };
    let summary = restore::restore(&repo, tree, &opts).unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_same_tree(&src, &restored_path(&out, &src));
}

#[test]
fn round_trip_with_default_chunks_restores_a_multi_chunk_file() {
    let s = Scratch::new();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let hash = write_pseudo_random(&src.join("data.bin"), 7, 3 << 20);
    fs::write(src.join("small"), b"x").unwrap();
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let result = take_snapshot(&repo, &[&src]);
    let Located::Entry(e) = repo
        .locate(&result.snapshot, &src.join("data.bin"))
        .unwrap()
    else {
        panic!("no entry");
    };
    let EntryKind::File { chunks, .. } = &e.kind else {
        panic!("not a file");
    };
    assert!(chunks.len() >= 8, "{} chunks", chunks.len());
    let out = s.join("out");
    restore_all(&repo, result.snapshot.tree, &out);
    let restored = restored_path(&out, &src);
    assert_eq!(hash_file(&restored.join("data.bin")), hash);
    assert_same_tree(&src, &restored);
}

#[test]
fn a_single_file_source_round_trips() {
    let s = Scratch::new();
    let file = s.join("only.txt");
    fs::write(&file, b"just me").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    set_mtime(&file, T0);
    fs::write(s.join("sibling.txt"), b"not asked for").unwrap();
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let result = take_snapshot(&repo, &[&file]);
    assert_eq!(
        result.snapshot.paths,
        vec![file.as_os_str().as_bytes().to_vec()]
    );
    assert_eq!(result.snapshot.summary.files_new, 1);

    let out = s.join("out");
    restore_all(&repo, result.snapshot.tree, &out);
    let restored = restored_path(&out, &file);
    assert_same_tree(&file, &restored);
    assert!(!restored.with_file_name("sibling.txt").exists());
    assert!(!restored.with_file_name("repo").exists());
}

#[test]
fn several_sources_round_trip_and_nested_duplicates_collapse() {
    let s = Scratch::new();
    let a = s.join("a");
    let bc = s.join("b/c");
    let x = s.join("x.txt");
    Spec::new()
        .file("a/one", b"1")
        .file("a/sub/two", b"2")
        .file("b/c/three", b"3")
        .file("b/not-asked", b"no")
        .file("x.txt", b"x")
        .file("skipped/four", b"4")
        .create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    // `a/sub` is inside `a`: it is not recorded twice.
    let result = take_snapshot(&repo, &[&x, &a.join("sub"), &bc, &a]);
    let paths: Vec<PathBuf> = result
        .snapshot
        .paths
        .iter()
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .collect();
    assert_eq!(paths, vec![a.clone(), bc.clone(), x.clone()]);
    assert_eq!(result.snapshot.summary.files_new, 4);

    let out = s.join("out");
    restore_all(&repo, result.snapshot.tree, &out);
    for p in [&a, &bc, &x] {
        assert_same_tree(p, &restored_path(&out, p));
    }
    let base = restored_path(&out, s.path());
    let mut top: Vec<_> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["a", "b", "x.txt"]);
    assert!(!base.join("b/not-asked").exists());
}

// ---------------------------------------------------------------------------
// Property: random trees round-trip exactly
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Gen {
    File {
        content: Content,
        mode: u32,
        mtime: i64,
    },
    Dir {
        children: BTreeMap<Vec<u8>, Gen>,
        mode: u32,
        mtime: i64,
    },
    Symlink(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Content {
    Bytes(Vec<u8>),
    /// Pseudo-random bytes: large enough to span many 4 KiB chunks.
    Random {
        seed: u64,
        len: usize,
    },
}

/// Any name bytes except `/` and NUL (mapped away), never `.` or `..`.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 1..12),
    ]
    .prop_map(|v| {
        v.into_iter()
            .map(|b| match b {
                0 => b'0',
                b'/' => b'_',
                b => b,
            })
            .collect::<Vec<u8>>()
    })
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn mtime() -> impl Strategy<Value = i64> {
    (-2_000_000_000i64..4_000_000_000, 0i64..1_000_000_000)
        .prop_map(|(s, ns)| s * 1_000_000_000 + ns)
}

fn leaf() -> impl Strategy<Value = Gen> {
    let content = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Content::Bytes),
        1 => Just(Content::Bytes(Vec::new())),
        1 => (any::<u64>(), 0usize..60_000).prop_map(|(seed, len)| Content::Random { seed, len }),
    ];
    let file_mode = prop::sample::select(vec![0o644u32, 0o600, 0o755, 0o444, 0o400, 0o640, 0o700]);
    prop_oneof![
        4 => (content, file_mode, mtime()).prop_map(|(content, mode, mtime)| Gen::File { content, mode, mtime }),
        1 => prop::collection::vec(any::<u8>(), 1..20)
            .prop_map(|t| Gen::Symlink(t.into_iter().map(|b| if b == 0 { b'x' } else { b }).collect())),
    ]
}

fn dir_of(inner: impl Strategy<Value = Gen>) -> impl Strategy<Value = Gen> {
    let dir_mode = prop::sample::select(vec![0o755u32, 0o700, 0o555, 0o750]);
    (
        prop::collection::btree_map(name(), inner, 0..6),
        dir_mode,
        mtime(),
    )
        .prop_map(|(children, mode, mtime)| Gen::Dir {
            children,
            mode,
            mtime,
        })
}

fn random_tree() -> impl Strategy<Value = Gen> {
    dir_of(leaf().prop_recursive(3, 30, 6, dir_of))
}

fn to_spec(node: &Gen, path: &[u8], spec: Spec) -> Spec {
    match node {
        Gen::File {
            content,
            mode,
            mtime,
        } => {
            let bytes = match content {
                Content::Bytes(b) => b.clone(),
                Content::Random { seed, len } => pseudo_random(*seed, *len),
            };
            spec.file(path, bytes).mode(*mode).mtime(*mtime)
        }
        Gen::Symlink(target) => spec.symlink(path, target),
        Gen::Dir {
            children,
            mode,
            mtime,
        } => {
            let mut spec = spec.dir(path).mode(*mode).mtime(*mtime);
            for (name, child) in children {
                let mut p = path.to_vec();
                p.push(b'/');
                p.extend_from_slice(name);
                spec = to_spec(child, &p, spec);
            }
            spec
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_trees_round_trip_exactly(tree in random_tree()) {
        let s = Scratch::new();
        let src = s.join("src");
        to_spec(&tree, b"src", Spec::new()).create(s.path());
        let repo = init_repo(&s.join("repo"), &SMALL_CHUNKS);
        let first = take_snapshot(&repo, &[&src]);
        prop_assert!(first.warnings.is_empty(), "{:?}", first.warnings);
        let out = s.join("out");
        restore_all(&repo, first.snapshot.tree, &out);
        let diff = tree_diff(&src, &restored_path(&out, &src));
        prop_assert!(diff.is_empty(), "trees differ:\n{}", diff.join("\n"));

        // Merkle: an unchanged source keeps its tree id.
        let second = take_snapshot(&repo, &[&src]);
        let id_of = |snap| match repo.locate(snap, &src).unwrap() {
            Located::Entry(Entry { kind: EntryKind::Dir { tree }, .. }) => tree,
            other => panic!("{other:?}"),
        };
        prop_assert_eq!(id_of(&first.snapshot), id_of(&second.snapshot));
        prop_assert_eq!(second.snapshot.summary.bytes_read, 0);
    }
}

// ---------------------------------------------------------------------------
// Partial restores and targets
// ---------------------------------------------------------------------------

fn include_fixture() -> (Scratch, PathBuf, Repository, TreeId) {
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("src/keep/a.txt", b"a")
        .file("src/keep/sub/b.txt", b"b")
        .dir("src/keep/empty")
        .file("src/keep2.txt", b"keep2")
        .file("src/other/c.txt", b"c")
        .file("src/top.txt", b"top")
        .dir("src")
        .mode(0o750)
        .mtime(T0)
        .create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let tree = take_snapshot(&repo, &[&src]).snapshot.tree;
    (s, src, repo, tree)
}

fn restore_opts(target: &Path, includes: &[PathBuf], overwrite: bool) -> RestoreOptions {
    RestoreOptions {
        target: target.to_path_buf(),
        includes: includes.to_vec(),
        overwrite,
        owner: false,
    }
}

#[test]
fn include_restores_only_the_chosen_subtrees_and_their_parents() {
    let (s, src, repo, tree) = include_fixture();
    let out = s.join("out");
    let summary =
        restore::restore(&repo, tree, &restore_opts(&out, &[src.join("keep")], false)).unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    let restored = restored_path(&out, &src);
    assert_same_tree(&src.join("keep"), &restored.join("keep"));
    let mut names: Vec<_> = fs::read_dir(&restored)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["keep"]);
    // The parent directory carries the snapshot's metadata.
    let (a, b) = (
        fs::metadata(&src).unwrap(),
        fs::metadata(&restored).unwrap(),
    );
    assert_eq!(b.mode() & 0o7777, 0o750);
    assert_eq!(mtime_ns(&b), mtime_ns(&a));
    // Nothing beside the chain of parents.
    let base = restored_path(&out, s.path());
    let names: Vec<_> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["src"]);
}

#[test]
fn include_of_single_files_restores_just_those() {
    let (s, src, repo, tree) = include_fixture();
    let out = s.join("out");
    let includes = [src.join("keep/sub/b.txt"), src.join("top.txt")];
    let summary = restore::restore(&repo, tree, &restore_opts(&out, &includes, false)).unwrap();
    assert_eq!(summary.files, 2);
    let restored = restored_path(&out, &src);
    let mut got = paths_below(&restored);
    got.sort();
    let want: Vec<Vec<u8>> = vec![
        b"keep".to_vec(),
        b"keep/sub".to_vec(),
        b"keep/sub/b.txt".to_vec(),
        b"top.txt".to_vec(),
    ];
    assert_eq!(
        got,
        want,
        "{:?}",
        got.iter().map(|p| show(p)).collect::<Vec<_>>()
    );
    assert_eq!(fs::read(restored.join("keep/sub/b.txt")).unwrap(), b"b");
}

#[test]
fn an_include_not_in_the_snapshot_is_an_error_and_nothing_is_written() {
    let (s, src, repo, tree) = include_fixture();
    for includes in [
        vec![src.join("nope")],
        vec![src.join("keep"), src.join("keep/missing.txt")],
        vec![src.join("top.txt/below-a-file")],
        vec![s.join("elsewhere")],
    ] {
        let out = s.join("out");
        let err = restore::restore(&repo, tree, &restore_opts(&out, &includes, false)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{includes:?}: {err}");
        assert!(!out.exists(), "{includes:?}: the target was created");
    }
}

#[test]
fn a_non_empty_target_is_refused_without_overwrite_and_replaced_with_it() {
    let (s, src, repo, tree) = include_fixture();
    let out = s.join("out");
    let restored = restored_path(&out, &src);
    fs::create_dir_all(restored.join("keep")).unwrap();
    fs::write(restored.join("keep/a.txt"), b"stale content").unwrap();
    fs::write(out.join("unrelated"), b"mine").unwrap();

    let err = restore::restore(&repo, tree, &restore_opts(&out, &[], false)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("overwrite"), "{err}");
    assert_eq!(
        fs::read(restored.join("keep/a.txt")).unwrap(),
        b"stale content"
    );
    assert!(!restored.join("top.txt").exists());

    let summary = restore::restore(&repo, tree, &restore_opts(&out, &[], true)).unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_same_tree(&src, &restored);
    assert_eq!(fs::read(out.join("unrelated")).unwrap(), b"mine");
}

#[test]
fn overwrite_replaces_symlinks_in_the_target_and_never_writes_outside() {
    let (s, src, repo, tree) = include_fixture();
    let outside = s.join("outside");
    fs::create_dir(&outside).unwrap();
    let victim = s.join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("top.txt"), b"victim").unwrap();

    // 1. The first directory of the restored path is a symlink out of the target.
    let out = s.join("out1");
    fs::create_dir(&out).unwrap();
    let first = src.components().nth(1).unwrap().as_os_str().to_owned();
    std::os::unix::fs::symlink(&outside, out.join(&first)).unwrap();
    let summary = restore::restore(&repo, tree, &restore_opts(&out, &[], true)).unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert!(fs::symlink_metadata(out.join(&first)).unwrap().is_dir());
    assert_same_tree(&src, &restored_path(&out, &src));
    assert_eq!(
        paths_below(&outside),
        Vec::<Vec<u8>>::new(),
        "wrote outside the target"
    );

    // 2. Deep inside: a directory and a file of the snapshot are symlinks out.
    let out = s.join("out2");
    let restored = restored_path(&out, &src);
    fs::create_dir_all(&restored).unwrap();
    std::os::unix::fs::symlink(&outside, restored.join("keep")).unwrap();
    std::os::unix::fs::symlink(victim.join("top.txt"), restored.join("top.txt")).unwrap();
    std::os::unix::fs::symlink(&victim, restored.join("other")).unwrap();
    let summary = restore::restore(&repo, tree, &restore_opts(&out, &[], true)).unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_same_tree(&src, &restored);
    assert_eq!(
        paths_below(&outside),
        Vec::<Vec<u8>>::new(),
        "wrote outside the target"
    );
    assert_eq!(paths_below(&victim), vec![b"top.txt".to_vec()]);
    assert_eq!(fs::read(victim.join("top.txt")).unwrap(), b"victim");
}

// ---------------------------------------------------------------------------
// Hostile catalog content
// ---------------------------------------------------------------------------

fn entry(name: &[u8], kind: EntryKind) -> Entry {
    Entry {
        name: name.to_vec(),
        kind,
        meta: Meta {
            mode: 0o644,
            ..Meta::default()
        },
    }
}

/// `[version] ++ postcard(tree)`, without the encoder's validation.
fn raw_tree(entries: Vec<Entry>) -> Vec<u8> {
    let mut bytes = vec![TREE_VERSION];
    bytes.extend(postcard::to_stdvec(&Tree { entries }).unwrap());
    bytes
}

fn empty_file() -> EntryKind {
    EntryKind::File {
        size: 0,
        chunks: Vec::new(),
    }
}

#[test]
fn tree_records_with_unsafe_names_do_not_decode() {
    // A well-formed record decodes, so the failures below are about the names.
    assert!(Tree::decode(&raw_tree(vec![entry(b"fine", empty_file())])).is_ok());
    for bad in [&b".."[..], b".", b"a/b", b"/abs", b"", b"nul\0"] {
        let bytes = raw_tree(vec![entry(b"a-ok", empty_file()), entry(bad, empty_file())]);
        let err = Tree::decode(&bytes).expect_err(&show(bad));
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{}", show(bad));
        let dir = raw_tree(vec![entry(
            bad,
            EntryKind::Dir {
                tree: TreeId::of(b"x"),
            },
        )]);
        assert!(Tree::decode(&dir).is_err(), "dir named {}", show(bad));
    }
    // Duplicates and unsorted entries could make two restores of one tree differ.
    let dup = raw_tree(vec![entry(b"a", empty_file()), entry(b"a", empty_file())]);
    assert!(Tree::decode(&dup).is_err());
    let unsorted = raw_tree(vec![entry(b"b", empty_file()), entry(b"a", empty_file())]);
    assert!(Tree::decode(&unsorted).is_err());
}

#[test]
fn restoring_a_hostile_tree_from_the_catalog_fails_before_writing() {
    let s = Scratch::new();
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let payload = raw_tree(vec![entry(b"owned.txt", empty_file())]);
    let payload_id = TreeId::of(&payload);
    for bad in [&b".."[..], b".", b"a/b"] {
        // root → "dir" → <bad> (a directory holding owned.txt)
        let hostile = raw_tree(vec![entry(bad, EntryKind::Dir { tree: payload_id })]);
        let hostile_id = TreeId::of(&hostile);
        let (root_id, root) = Tree {
            entries: vec![entry(b"dir", EntryKind::Dir { tree: hostile_id })],
        }
        .encode_with_id()
        .unwrap();
        let batch = CommitBatch {
            trees: vec![
                (payload_id, payload.clone()),
                (hostile_id, hostile),
                (root_id, root),
            ],
            ..CommitBatch::default()
        };
        repo.catalog().commit(&batch).unwrap();

        assert_eq!(
            repo.tree(&hostile_id).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        let out = s.join("out");
        let err = restore::restore(&repo, root_id, &restore_opts(&out, &[], false)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{}: {err}", show(bad));
        assert!(!out.exists(), "{}: target created", show(bad));
        let mut names: Vec<_> = fs::read_dir(s.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["repo"], "{}: wrote beside the target", show(bad));
    }
}

#[test]
fn the_tree_comparison_reports_every_kind_of_difference() {
    // The round trips above are only as good as this comparison.
    let s = Scratch::new();
    let (a, b) = (s.join("a"), s.join("b"));
    let spec = |content: &[u8], mode, mtime, target: &str| {
        Spec::new()
            .file("f", content)
            .mode(mode)
            .mtime(mtime)
            .symlink("l", target)
            .dir("d")
            .mtime(T0)
    };
    spec(b"same", 0o644, T0, "x").create(&a);
    spec(b"same", 0o644, T0, "x").create(&b);
    set_mtime(&a, T0);
    set_mtime(&b, T0);
    set_mtime(&a.join("l"), T0);
    set_mtime(&b.join("l"), T0);
    assert_same_tree(&a, &b);

    let c = s.join("c");
    spec(b"diff", 0o600, T0 + 1, "y").create(&c);
    fs::write(c.join("extra"), b"").unwrap();
    set_mtime(&c, T0);
    set_mtime(&c.join("l"), T0);
    let diff = tree_diff(&a, &c).join("\n");
    for want in [
        "f: file of 4 bytes",
        "f: mode 0644 vs 0600",
        "f: mtime",
        "l: symlink -> x vs symlink -> y",
        "extra: only in right",
    ] {
        assert!(diff.contains(want), "{want:?} missing from:\n{diff}");
    }
    assert_eq!(diff.lines().count(), 5, "{diff}");
}

/// `len` bytes of compressible text: words picked by `pseudo_random`.
fn words(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "cairn ", "chunk ", "pack ", "tree ", "blob ", "restore ", "range ", "\n",
    ];
    let mut out = Vec::with_capacity(len + 8);
    for b in pseudo_random(seed, len) {
        if out.len() >= len {
            break;
        }
        out.extend_from_slice(WORDS[usize::from(b % 8)].as_bytes());
    }
    out.truncate(len);
    out
}

/// Files of many small chunks (written as several ranges in parallel), a
/// compressible one, small files, and modes the umask would cut or that
/// only `chmod` sets (group write, setgid, read-only).
fn split_spec() -> Spec {
    Spec::new()
        .file("big/random.bin", pseudo_random(71, 3 << 20))
        .mode(0o664)
        .mtime(T0)
        .file("big/text.txt", words(72, (5 << 20) / 2))
        .mode(0o2755)
        .mtime(T0 + 7)
        .file("small/a.txt", b"one chunk\n")
        .mode(0o444)
        .mtime(T0 + 1)
        .file("small/b.txt", words(73, 3000))
        .mode(0o600)
        .mtime(T0 - 5)
        .file("small/empty", b"")
}

#[test]
fn a_file_split_into_parallel_ranges_is_restored_byte_exact() {
    let s = Scratch::new();
    let src = s.join("src");
    split_spec().create(&src);
    let repo = init_repo(&s.join("repo"), &SMALL_CHUNKS);
    take_snapshot(&repo, &[&src]);
    let snap = repo.resolve("latest").unwrap().1;
    let Located::Entry(entry) = repo.locate(&snap, &src.join("big/random.bin")).unwrap() else {
        panic!("big/random.bin is not in the snapshot");
    };
    let EntryKind::File { chunks, .. } = &entry.kind else {
        panic!("big/random.bin is not a file");
    };
    // Enough chunks for several ranges of 256 chunks each.
    assert!(chunks.len() > 600, "{} chunks", chunks.len());

    let target = s.join("target");
    let summary = restore_all(&repo, snap.tree, &target);
    assert_eq!(summary.files, 5);
    assert_same_tree(&src, &restored_path(&target, &src));
    // Into an existing non-empty target too (the create-or-replace path).
    fs::write(
        restored_path(&target, &src).join("big/random.bin"),
        b"stale",
    )
    .unwrap();
    restore::restore(
        &repo,
        snap.tree,
        &RestoreOptions {
            target: target.clone(),
            includes: Vec::new(),
            overwrite: true,
            owner: false,
        },
    )
    .unwrap();
    assert_same_tree(&src, &restored_path(&target, &src));
}

#[test]
fn a_corrupt_chunk_in_the_middle_of_a_split_file_leaves_no_partial_file() {
    let s = Scratch::new();
    let src = s.join("src");
    split_spec().create(&src);
    let repo_path = s.join("repo");
    let repo = init_repo(&repo_path, &SMALL_CHUNKS);
    take_snapshot(&repo, &[&src]);
    let snap = repo.resolve("latest").unwrap().1;
    let big = src.join("big/random.bin");
    let Located::Entry(entry) = repo.locate(&snap, &big).unwrap() else {
        panic!("big/random.bin is not in the snapshot");
    };
    let EntryKind::File { chunks, .. } = &entry.kind else {
        panic!("big/random.bin is not a file");
    };
    // Flip one byte inside a chunk in the middle of the file (a later range
    // than the first).
    let id = chunks[chunks.len() / 2];
    let loc = repo
        .catalog()
        .begin_read()
        .unwrap()
        .blob(&id.0)
        .unwrap()
        .unwrap();
    let hex = loc.pack.to_string();
    let pack = repo_path.join("objects").join(&hex[..2]).join(&hex);
    let mut bytes = fs::read(&pack).unwrap();
    bytes[(loc.offset + u64::from(loc.length) / 2) as usize] ^= 0x01;
    fs::write(&pack, &bytes).unwrap();
    drop(repo);

    let repo = Repository::open(&repo_path, cairn::LockMode::Shared, &|| {}).unwrap();
    let target = s.join("target");
    let summary = restore::restore(
        &repo,
        snap.tree,
        &RestoreOptions {
            target: target.clone(),
            includes: Vec::new(),
            overwrite: false,
            owner: false,
        },
    )
    .unwrap();
    let rel = restored_path(Path::new(""), &big);
    let failed: Vec<&PathBuf> = summary.errors.iter().map(|(p, _)| p).collect();
    assert_eq!(failed, vec![&rel], "{:?}", summary.errors);
    assert!(
        !target.join(&rel).exists(),
        "a partial file was left behind"
    );
    // Everything else is restored.
    assert_eq!(summary.files, 4);
    let restored = restored_path(&target, &src);
    assert_eq!(
        fs::read(restored.join("big/text.txt")).unwrap(),
        fs::read(src.join("big/text.txt")).unwrap()
    );
}
