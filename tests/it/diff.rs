//! `cairn diff`: exact change lists on a generated tree with every kind of
//! change, snapshot against snapshot and against the live folder, the
//! mirror property, PATH limits, what is (not) read, and the CLI's output.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn::archiver::{self, NoReport, SnapshotOptions};
use cairn::diff::{self, Change, ChangeKind, DiffOptions, DiffSummary, Side};
use cairn::model::Snapshot;
use cairn::{ErrorKind, InitOptions, Repository};
use filetime::FileTime;

/// Every entry of the generated trees has this mtime unless a test says otherwise.
const T0: i64 = 1_600_000_000;
const T1: i64 = 1_700_000_000;

const BIG_LEN: usize = 64 << 10;

struct Fixture {
    _tmp: tempfile::TempDir,
    repo_path: PathBuf,
    repo: Repository,
    /// The source folder (canonical, as the snapshots record it).
    src: PathBuf,
    s1: Snapshot,
    s1_id: String,
    s2: Snapshot,
    s2_id: String,
    /// The changes from v1 to v2, in the order `diff` must report them.
    expected: Vec<(ChangeKind, Vec<u8>)>,
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn p(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn write(root: &Path, rel: &[u8], content: &[u8]) {
    let path = root.join(p(rel));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

/// Sets the mtime of everything below and including `root` to `T0`.
fn reset_times(root: &Path) {
    let t = FileTime::from_unix_time(T0, 0);
    filetime::set_symlink_file_times(root, t, t).unwrap();
    if fs::symlink_metadata(root).unwrap().is_dir() {
        for e in fs::read_dir(root).unwrap() {
            reset_times(&e.unwrap().path());
        }
    }
}

fn set_mtime(path: &Path, secs: i64) {
    let t = FileTime::from_unix_time(secs, 0);
    filetime::set_symlink_file_times(path, t, t).unwrap();
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn v1(src: &Path) {
    write(src, b"keep.txt", b"keep");
    write(src, b"mod.txt", b"version one\n");
    write(src, b"mode.txt", b"mode");
    write(src, b"mtime.txt", b"mtime");
    write(src, b"owner.txt", b"owner");
    write(src, b"gone.txt", b"gone!");
    write(src, b"rename_from.txt", b"rename me");
    write(src, b"f2d", b"was a file");
    write(src, b"d2l/a.txt", b"a");
    write(src, b"d2l/sub/b.txt", b"bb");
    write(src, b"pipe", b"a file, then a FIFO");
    write(src, b"deep/a/b/c/d/e.txt", b"deep v1\n");
    write(src, b"deep/a/other/x.txt", b"untouched");
    write(src, b"name\xff.bin", b"non-UTF-8 v1");
    write(src, b"big.bin", &pseudo_random(BIG_LEN, 1));
    fs::create_dir(src.join("empty_gone")).unwrap();
    std::os::unix::fs::symlink("keep.txt", src.join("link")).unwrap();
    mkfifo(&src.join("fifo"));
    reset_times(src);
}

/// Applies every kind of change; returns the expected list, unsorted.
fn v2(src: &Path) -> Vec<(ChangeKind, &'static [u8])> {
    use ChangeKind::*;
    let mut expected: Vec<(ChangeKind, &'static [u8])> = Vec::new();
    write(src, b"mod.txt", b"version two, longer\n");
    expected.push((Modified, b"mod.txt"));
    fs::set_permissions(src.join("mode.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    expected.push((Metadata, b"mode.txt"));
    expected.push((Metadata, b"mtime.txt")); // set after reset_times below
    if is_root() {
        std::os::unix::fs::lchown(src.join("owner.txt"), Some(4321), Some(4321)).unwrap();
        expected.push((Metadata, b"owner.txt"));
    }
    fs::remove_file(src.join("gone.txt")).unwrap();
    expected.push((Removed, b"gone.txt"));
    fs::rename(src.join("rename_from.txt"), src.join("rename_to.txt")).unwrap();
    expected.extend([
        (Removed, &b"rename_from.txt"[..]),
        (Added, b"rename_to.txt"),
    ]);
    fs::remove_file(src.join("f2d")).unwrap();
    write(src, b"f2d/inner.txt", b"inner");
    expected.extend([(Type, &b"f2d"[..]), (Added, b"f2d/inner.txt")]);
    fs::remove_dir_all(src.join("d2l")).unwrap();
    std::os::unix::fs::symlink("deep", src.join("d2l")).unwrap();
    expected.extend([
        (Type, &b"d2l"[..]),
        (Removed, b"d2l/a.txt"),
        (Removed, b"d2l/sub"),
        (Removed, b"d2l/sub/b.txt"),
    ]);
    fs::remove_file(src.join("pipe")).unwrap();
    mkfifo(&src.join("pipe"));
    expected.push((Type, b"pipe"));
    fs::remove_file(src.join("link")).unwrap();
    std::os::unix::fs::symlink("mod.txt", src.join("link")).unwrap();
    expected.push((Modified, b"link"));
    write(src, b"deep/a/b/c/d/e.txt", b"deep v2, changed\n");
    expected.push((Modified, b"deep/a/b/c/d/e.txt"));
    fs::remove_dir(src.join("empty_gone")).unwrap();
    expected.push((Removed, b"empty_gone"));
    fs::create_dir(src.join("empty_new")).unwrap();
    expected.push((Added, b"empty_new"));
    write(src, b"name\xff.bin", b"non-UTF-8 v2!");
    expected.push((Modified, b"name\xff.bin"));
    write(src, b"new\xfe/f.txt", b"new file");
    expected.extend([(Added, &b"new\xfe"[..]), (Added, b"new\xfe/f.txt")]);
    let mut big = pseudo_random(BIG_LEN, 1);
    for b in &mut big[BIG_LEN / 2..BIG_LEN / 2 + 16] {
        *b ^= 0x5a;
    }
    write(src, b"big.bin", &big);
    expected.push((Modified, b"big.bin"));
    reset_times(src);
    set_mtime(&src.join("mtime.txt"), T1);
    expected
}

/// Sorts absolute paths component by component, as `diff` reports them.
fn sorted(mut v: Vec<(ChangeKind, Vec<u8>)>) -> Vec<(ChangeKind, Vec<u8>)> {
    v.sort_by(|a, b| p(&a.1).cmp(p(&b.1)));
    v
}

fn abs(src: &Path, rel: &[u8]) -> Vec<u8> {
    let mut out = src.as_os_str().as_bytes().to_vec();
    out.push(b'/');
    out.extend_from_slice(rel);
    out
}

fn snapshot(repo: &Repository, src: &Path) -> (String, Snapshot) {
    let mut opts = SnapshotOptions::new(vec![src.to_path_buf()]);
    // Timestamps here are coarse: never trust them to tell v1 from v2.
    opts.force_read = true;
    let r = archiver::snapshot(repo, &opts, &NoReport).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    (r.id.to_hex(), r.snapshot)
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(tmp.path()).unwrap();
    let src = base.join("src");
    fs::create_dir(&src).unwrap();
    let repo_path = base.join("repo");
    let opts = InitOptions {
        avg_chunk_size: 1024,
        ..InitOptions::default()
    };
    let repo = Repository::init(&repo_path, &opts).unwrap();
    v1(&src);
    let (s1_id, s1) = snapshot(&repo, &src);
    let expected = v2(&src);
    let (s2_id, s2) = snapshot(&repo, &src);
    let expected = sorted(
        expected
            .into_iter()
            .map(|(k, rel)| (k, abs(&src, rel)))
            .collect(),
    );
    Fixture {
        _tmp: tmp,
        repo_path,
        repo,
        src,
        s1,
        s1_id,
        s2,
        s2_id,
        expected,
    }
}

fn run(
    f: &Fixture,
    old: &Side<'_>,
    new: &Side<'_>,
    paths: &[PathBuf],
) -> (Vec<Change>, DiffSummary) {
    let opts = DiffOptions {
        paths: paths.to_vec(),
    };
    diff::diff_all(&f.repo, old, new, &opts).unwrap()
}

fn kinds(changes: &[Change]) -> Vec<(ChangeKind, Vec<u8>)> {
    changes.iter().map(|c| (c.kind, c.path.clone())).collect()
}

fn live(f: &Fixture) -> Side<'static> {
    Side::Live(vec![f.src.clone()])
}

fn show(v: &[(ChangeKind, Vec<u8>)]) -> String {
    v.iter()
        .map(|(k, p)| format!("{} {}\n", k.letter(), String::from_utf8_lossy(p)))
        .collect()
}

#[track_caller]
fn assert_changes(actual: &[Change], expected: &[(ChangeKind, Vec<u8>)]) {
    let actual = kinds(actual);
    assert!(
        actual == expected,
        "change list differs\n--- actual\n{}--- expected\n{}",
        show(&actual),
        show(expected)
    );
}

fn find<'a>(changes: &'a [Change], f: &Fixture, rel: &[u8]) -> &'a Change {
    let path = abs(&f.src, rel);
    changes.iter().find(|c| c.path == path).unwrap()
}

#[test]
fn snapshot_to_snapshot_reports_every_kind_of_change_exactly() {
    let f = fixture();
    let (changes, summary) = run(&f, &Side::Snapshot(&f.s1), &Side::Snapshot(&f.s2), &[]);
    assert_changes(&changes, &f.expected);

    let m = find(&changes, &f, b"mod.txt");
    assert_eq!((m.chunks_differ, m.bytes_differ), (1, 20));
    assert_eq!((m.chunks_dropped, m.bytes_dropped), (1, 12));
    let big = find(&changes, &f, b"big.bin");
    assert!(
        (1..=3).contains(&big.chunks_differ) && big.bytes_differ < BIG_LEN as u64 / 4,
        "a 16-byte edit changed {} chunks, {} bytes",
        big.chunks_differ,
        big.bytes_differ
    );
    assert_eq!(big.chunks_differ, big.chunks_dropped);
    let t = find(&changes, &f, b"d2l");
    assert_eq!(t.old.as_ref().unwrap().type_char(), 'd');
    assert_eq!(t.new.as_ref().unwrap().type_char(), 'l');

    let count = |k: ChangeKind| f.expected.iter().filter(|(x, _)| *x == k).count() as u64;
    assert_eq!(summary.added, count(ChangeKind::Added));
    assert_eq!(summary.removed, count(ChangeKind::Removed));
    assert_eq!(summary.modified, count(ChangeKind::Modified));
    assert_eq!(summary.metadata, count(ChangeKind::Metadata));
    assert_eq!(summary.type_changed, count(ChangeKind::Type));
    // rename_to.txt + f2d/inner.txt + new\xfe/f.txt
    assert_eq!(summary.bytes_added, 9 + 5 + 8);
    // gone.txt + rename_from.txt + f2d (the file) + d2l/a.txt + d2l/sub/b.txt + pipe
    assert_eq!(summary.bytes_removed, 5 + 9 + 10 + 1 + 2 + 19);
    let changed: u64 = changes.iter().map(|c| c.bytes_differ).sum();
    assert_eq!(summary.bytes_changed, changed);
    assert_eq!(summary.files_read, 0, "snapshot diffs read no file");
    assert_eq!(summary.roots, vec![f.src.as_os_str().as_bytes().to_vec()]);
}

#[test]
fn snapshot_to_live_reports_the_same_changes() {
    let f = fixture();
    let (snap, _) = run(&f, &Side::Snapshot(&f.s1), &Side::Snapshot(&f.s2), &[]);
    let (changes, summary) = run(&f, &Side::Snapshot(&f.s1), &live(&f), &[]);
    assert_changes(&changes, &f.expected);
    // Same chunker, same chunks: the content figures agree too.
    for (a, b) in snap.iter().zip(&changes) {
        assert_eq!(
            (
                a.chunks_differ,
                a.bytes_differ,
                a.chunks_dropped,
                a.bytes_dropped
            ),
            (
                b.chunks_differ,
                b.bytes_differ,
                b.chunks_dropped,
                b.bytes_dropped
            ),
            "{}",
            String::from_utf8_lossy(&a.path)
        );
    }
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    // With no live paths given, the snapshot's own source paths are compared.
    let (default, _) = run(&f, &Side::Snapshot(&f.s1), &Side::Live(Vec::new()), &[]);
    assert_eq!(default, changes);
}

#[test]
fn diff_b_a_is_the_mirror_of_diff_a_b() {
    let f = fixture();
    let (s1, s2) = (Side::Snapshot(&f.s1), Side::Snapshot(&f.s2));
    let (forward, fs) = run(&f, &s1, &s2, &[]);
    let (backward, bs) = run(&f, &s2, &s1, &[]);
    let mirrored: Vec<Change> = forward.iter().map(Change::mirror).collect();
    assert_eq!(backward, mirrored);
    assert_eq!((fs.added, fs.removed), (bs.removed, bs.added));
    assert_eq!(
        (fs.bytes_added, fs.bytes_removed),
        (bs.bytes_removed, bs.bytes_added)
    );

    let (forward, _) = run(&f, &s1, &live(&f), &[]);
    let (backward, _) = run(&f, &live(&f), &s1, &[]);
    let mirrored: Vec<Change> = forward.iter().map(Change::mirror).collect();
    assert_eq!(backward, mirrored);
    assert_eq!(
        kinds(&backward),
        f.expected
            .iter()
            .map(|(k, p)| (k.mirror(), p.clone()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn unchanged_live_folder_is_only_stat_ed_and_subtrees_are_skipped() {
    let f = fixture();
    let (changes, summary) = run(&f, &Side::Snapshot(&f.s2), &live(&f), &[]);
    assert_changes(&changes, &[]);
    assert_eq!(summary.files_read, 0, "stat matched: nothing to read");

    // Touch one file with the same content: `m`, read once, never `M`.
    set_mtime(&f.src.join("keep.txt"), T1);
    let (changes, summary) = run(&f, &Side::Snapshot(&f.s2), &live(&f), &[]);
    let expected = vec![(ChangeKind::Metadata, abs(&f.src, b"keep.txt"))];
    assert_changes(&changes, &expected);
    assert_eq!((summary.files_read, summary.bytes_read), (1, 4));

    // Snapshot it: between the two snapshots only the trees on the path
    // from `/` to the changed file are loaded (deep/, f2d/… are skipped).
    let (_, s3) = snapshot(&f.repo, &f.src);
    let (changes, summary) = run(&f, &Side::Snapshot(&f.s2), &Side::Snapshot(&s3), &[]);
    assert_changes(&changes, &expected);
    let depth = f.src.components().count() as u64; // `/` counts as one
    assert_eq!(summary.trees_loaded, 2 * depth);
}

#[test]
fn path_limits_narrow_the_comparison() {
    let f = fixture();
    let (s1, s2) = (Side::Snapshot(&f.s1), Side::Snapshot(&f.s2));
    let only = |rels: &[&[u8]]| -> Vec<(ChangeKind, Vec<u8>)> {
        f.expected
            .iter()
            .filter(|(_, path)| rels.iter().any(|r| p(path).starts_with(p(&abs(&f.src, r)))))
            .cloned()
            .collect()
    };
    let limits = [f.src.join("d2l"), f.src.join("deep/a")];
    let expected = only(&[b"d2l", b"deep/a"]);
    assert_eq!(expected.len(), 5);
    let (changes, summary) = run(&f, &s1, &s2, &limits);
    assert_changes(&changes, &expected);
    assert_eq!(summary.roots.len(), 2);
    let (changes, _) = run(&f, &s1, &live(&f), &limits);
    assert_changes(&changes, &expected);

    // A limit below a removed directory, one above the sources, one outside.
    let (changes, _) = run(&f, &s1, &s2, &[f.src.join("d2l/sub")]);
    assert_changes(&changes, &only(&[b"d2l/sub"]));
    let (changes, _) = run(&f, &s1, &s2, &[f.src.parent().unwrap().to_path_buf()]);
    assert_changes(&changes, &f.expected);
    let opts = |p: PathBuf| DiffOptions { paths: vec![p] };
    let err = diff::diff_all(&f.repo, &s1, &s2, &opts(PathBuf::from("/elsewhere"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = diff::diff_all(&f.repo, &s1, &s2, &opts(f.src.join("nothing"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn a_live_path_maps_to_the_same_path_in_the_snapshot() {
    let f = fixture();
    let s1 = Side::Snapshot(&f.s1);
    let sub = Side::Live(vec![f.src.join("deep")]);
    let (changes, summary) = run(&f, &s1, &sub, &[]);
    let expected = vec![(ChangeKind::Modified, abs(&f.src, b"deep/a/b/c/d/e.txt"))];
    assert_changes(&changes, &expected);
    assert_eq!(summary.roots, vec![abs(&f.src, b"deep")]);
    // Symlinked or `..` spellings resolve to the same place.
    let alias = f.src.parent().unwrap().join("alias");
    std::os::unix::fs::symlink(&f.src, &alias).unwrap();
    let (changes, _) = run(
        &f,
        &s1,
        &Side::Live(vec![alias.join("deep/a/../../deep")]),
        &[],
    );
    assert_changes(&changes, &expected);

    let outside = f.src.parent().unwrap().join("repo");
    let err = diff::diff_all(
        &f.repo,
        &s1,
        &Side::Live(vec![outside]),
        &DiffOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let missing = Side::Live(vec![f.src.join("no such thing")]);
    let err = diff::diff_all(&f.repo, &s1, &missing, &DiffOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = diff::diff_all(&f.repo, &live(&f), &live(&f), &DiffOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// Path → (size, mtime, ctime, mode) of everything below `root`.
fn state(root: &Path) -> Vec<(PathBuf, u64, i64, i64, i64, i64, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let md = fs::symlink_metadata(&path).unwrap();
        if md.is_dir() {
            for e in fs::read_dir(&path).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.push((
            path,
            md.len(),
            md.mtime(),
            md.mtime_nsec(),
            md.ctime(),
            md.ctime_nsec(),
            md.mode(),
        ));
    }
    out.sort();
    out
}

#[test]
fn live_diff_writes_nothing_to_the_repository_or_the_folder() {
    let f = fixture();
    let (repo_before, src_before) = (state(&f.repo_path), state(&f.src));
    let (changes, summary) = run(&f, &Side::Snapshot(&f.s1), &live(&f), &[]);
    assert!(!changes.is_empty());
    assert!(
        summary.files_read > 0,
        "files were read for this to mean something"
    );
    assert_eq!(state(&f.repo_path), repo_before);
    assert_eq!(state(&f.src), src_before);
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

fn cairn(f: &Fixture, args: &[&OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--repo")
        .arg(&f.repo_path)
        .args(args)
        .env_remove("CAIRN_REPO")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A path as the CLI shows it: invalid UTF-8 bytes as `\xNN`.
fn escaped(path: &[u8]) -> String {
    let mut out = String::new();
    for chunk in path.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The summary line the CLI must print for the fixture's v1 → v2 changes.
fn expected_summary(f: &Fixture) -> String {
    let count = |k: ChangeKind| f.expected.iter().filter(|(x, _)| *x == k).count();
    let (changes, _) = run(f, &Side::Snapshot(&f.s1), &Side::Snapshot(&f.s2), &[]);
    let changed: u64 = changes.iter().map(|c| c.bytes_differ).sum();
    let changed = if changed < 1024 {
        format!("{changed} B")
    } else {
        format!("{:.1} KiB", changed as f64 / 1024.0)
    };
    format!(
        "{} added, {} removed, {} modified, {} metadata, {} type; 22 B added, 46 B removed, {changed} changed",
        count(ChangeKind::Added),
        count(ChangeKind::Removed),
        count(ChangeKind::Modified),
        count(ChangeKind::Metadata),
        count(ChangeKind::Type),
    )
}

#[test]
fn cli_prints_one_line_per_change_then_a_summary() {
    let f = fixture();
    let (code, out, err) = cairn(&f, &[os("diff"), os(&f.s1_id[..8]), os(&f.s2_id)]);
    assert_eq!(code, 0, "{err}");
    let mut expected: String = f
        .expected
        .iter()
        .map(|(k, p)| format!("{} {}\n", k.letter(), escaped(p)))
        .collect();
    expected.push_str(&expected_summary(&f));
    expected.push('\n');
    assert_eq!(out, expected);

    // One argument: the snapshot against the live folder it was taken from.
    let (code, live_out, err) = cairn(&f, &[os("diff"), os(&f.s1_id)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(live_out, out);
    // A path argument (with a `/`) is the live side.
    let (code, live_out, _) = cairn(&f, &[os("diff"), os(&f.s1_id), f.src.as_os_str()]);
    assert_eq!((code, live_out), (0, out));
    // Identical sides: exit 0 too, and nothing but the summary.
    let (code, same, _) = cairn(&f, &[os("diff"), os("latest"), os(&f.s2_id)]);
    assert_eq!(code, 0);
    assert_eq!(
        same,
        "0 added, 0 removed, 0 modified, 0 metadata, 0 type; 0 B added, 0 B removed, 0 B changed\n"
    );
}

#[test]
fn cli_json_has_one_element_per_change() {
    let f = fixture();
    let (code, out, err) = cairn(&f, &[os("diff"), os("--json"), os(&f.s1_id), os(&f.s2_id)]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), f.expected.len());
    for (e, (kind, _)) in arr.iter().zip(&f.expected) {
        assert_eq!(e["change"], kind.name());
        for key in ["path", "old_size", "new_size"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
    }
    let m = arr
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("/mod.txt"))
        .unwrap();
    assert_eq!(m["change"], "modified");
    assert_eq!(
        (m["old_size"].as_u64(), m["new_size"].as_u64()),
        (Some(12), Some(20))
    );
    assert_eq!(
        (m["chunks_differ"].as_u64(), m["bytes_differ"].as_u64()),
        (Some(1), Some(20))
    );
    let added = arr
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("/rename_to.txt"))
        .unwrap();
    assert_eq!(added["change"], "added");
    assert!(added["old_size"].is_null());
    assert_eq!(added["new_size"].as_u64(), Some(9));
    let escaped = arr
        .iter()
        .any(|e| e["path"].as_str().unwrap().ends_with("/name\\xff.bin"));
    assert!(escaped, "non-UTF-8 names are escaped as in `ls`");
}

#[test]
fn cli_stat_counts_per_top_level_directory() {
    let f = fixture();
    let (code, out, err) = cairn(&f, &[os("diff"), os("--stat"), os(&f.s1_id), os(&f.s2_id)]);
    assert_eq!(code, 0, "{err}");
    let src = f.src.display().to_string();
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(&format!("{src}/{name}")))
            .unwrap_or_else(|| panic!("no line for {name} in\n{out}"))
            .split_once("  ")
            .unwrap()
            .1
            .trim()
            .to_string()
    };
    assert_eq!(line("d2l"), "3 removed, 1 type");
    assert_eq!(line("deep"), "1 modified");
    assert_eq!(line("new\\xfe"), "2 added");
    assert_eq!(out.lines().last().unwrap(), expected_summary(&f));
    assert!(
        !out.contains("/e.txt"),
        "--stat lists no single file below a top-level directory"
    );
}

#[test]
fn cli_content_shows_line_diffs_and_binary_ranges() {
    let f = fixture();
    let (code, out, err) = cairn(
        &f,
        &[os("diff"), os("--content"), os(&f.s1_id), f.src.as_os_str()],
    );
    assert_eq!(code, 0, "{err}");
    let src = f.src.display();
    let expected_mod = format!(
        "M {src}/mod.txt\n--- {}:{src}/mod.txt\n+++ live:{src}/mod.txt\n@@ -1 +1 @@\n-version one\n+version two, longer\n",
        &f.s1_id[..8]
    );
    assert!(out.contains(&expected_mod), "{out}");
    assert!(
        out.contains(&format!(
            "M {src}/link\n  link target: keep.txt -> mod.txt\n"
        )),
        "{out}"
    );
    let big = out.split(&format!("M {src}/big.bin\n")).nth(1).unwrap();
    assert!(
        big.starts_with("  binary files differ\n  new file: "),
        "{big}"
    );
    let mid = (BIG_LEN / 2) as u64;
    let range_line = big.lines().nth(1).unwrap();
    let covers_edit = range_line
        .split(": ")
        .last()
        .unwrap()
        .split(", ")
        .filter_map(|r| r.split_once(".."))
        .any(|(a, b)| a.parse::<u64>().unwrap() <= mid && mid < b.parse::<u64>().unwrap());
    assert!(
        covers_edit,
        "the changed range covers byte {mid}: {range_line}"
    );
}

#[test]
fn cli_rejects_bad_references_and_paths_with_exit_2() {
    let f = fixture();
    let (code, _, err) = cairn(&f, &[os("diff"), os("zzzz"), os("latest")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("zzzz"), "{err}");
    let outside = f.repo_path.as_os_str();
    let (code, _, err) = cairn(&f, &[os("diff"), os("latest"), outside]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not contain"), "{err}");
    let src = f.src.as_os_str();
    let (code, _, err) = cairn(&f, &[os("diff"), src, src]);
    assert_eq!(code, 2, "{err}");
}
