//! The `cairn` binary's contract: exit codes, messages, JSON output,
//! snapshot references, `cat`, `ls`, `restore`, and partial snapshots.

use std::collections::HashMap;
use std::fs;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cairn::catalog::CommitBatch;
use cairn::model::{Snapshot, SnapshotSummary, Tree};
use cairn::{ErrorKind, InitOptions, SnapshotId};
use serde_json::Value;

use crate::support::*;

/// A scratch dir with `src/` (a few files) and the path `repo` (not created).
fn project() -> (Scratch, PathBuf, PathBuf) {
    let s = Scratch::new();
    Spec::new()
        .file("src/a.txt", b"alpha\n")
        .file("src/sub/b.txt", b"bravo\n")
        .file("src/sub/deeper/c.txt", b"charlie\n")
        .symlink("src/link", "a.txt")
        .dir("elsewhere")
        .create(s.path());
    let (src, repo) = (s.join("src"), s.join("repo"));
    (s, src, repo)
}

/// `snapshot --json` of `src` into `repo` (created on first use); its id.
fn snap(repo: &Path, src: &Path, extra: &[&str]) -> String {
    let out = run(cairn_at(repo)
        .args(["snapshot", "--init", "--json"])
        .args(extra)
        .arg(src));
    out.ok();
    out.json()["id"].as_str().unwrap().to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------
// Repository selection
// ---------------------------------------------------------------------------

#[test]
fn init_refuses_an_existing_repository_and_a_non_empty_directory() {
    let (sc, _src, repo) = project();
    let out = run(cairn_at(&repo).arg("init"));
    out.ok();
    assert!(out.out().contains(s(&repo)), "{}", out.out());
    assert!(repo.join("config").is_file());

    let again = run(cairn_at(&repo).arg("init"));
    again.expect_code(2);
    assert!(again.stderr.contains(s(&repo)), "{}", again.stderr);
    assert!(again.stderr.contains("already"), "{}", again.stderr);

    let busy = sc.join("src");
    let out = run(cairn_at(&busy).arg("init"));
    out.expect_code(2);
    assert!(out.stderr.contains(s(&busy)), "{}", out.stderr);
    assert!(!busy.join("config").exists());

    let out = run(cairn_at(&sc.join("bad")).args(["init", "--avg-chunk-size", "3000"]));
    out.expect_code(2);
}

#[test]
fn a_missing_repository_option_names_both_ways_to_give_it() {
    let (_sc, src, _repo) = project();
    for args in [
        vec!["list"],
        vec!["init"],
        vec!["snapshot", s(&src)],
        vec!["ls", "latest"],
    ] {
        let out = run(cairn().args(&args));
        out.expect_code(2);
        assert!(
            out.stderr.contains("--repo") && out.stderr.contains("CAIRN_REPO"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn cairn_repo_from_the_environment_works() {
    let (_sc, src, repo) = project();
    run(cairn().env("CAIRN_REPO", &repo).arg("init")).ok();
    run(cairn().env("CAIRN_REPO", &repo).arg("snapshot").arg(&src)).ok();
    let out = run(cairn().env("CAIRN_REPO", &repo).args(["list", "--json"]));
    out.ok();
    assert_eq!(out.json().as_array().unwrap().len(), 1);
    // --repo wins over the environment.
    let out = run(cairn_at(&repo)
        .env("CAIRN_REPO", "/nonexistent/cairn")
        .args(["list", "--json"]));
    out.ok();
}

#[test]
fn a_path_that_is_not_a_repository_is_a_usage_error() {
    let (sc, src, _repo) = project();
    for not_repo in [sc.join("elsewhere"), src.clone(), sc.join("missing")] {
        for args in [
            vec!["list"],
            vec!["ls", "latest"],
            vec!["snapshot", s(&src)],
        ] {
            let out = run(cairn_at(&not_repo).args(&args));
            out.expect_code(2);
            assert!(
                out.stderr.contains("not a cairn repository"),
                "{args:?}: {}",
                out.stderr
            );
        }
    }
    assert!(!sc.join("missing").exists());
}

#[test]
fn snapshot_init_creates_the_repository_on_first_use_only() {
    let (_sc, src, repo) = project();
    let out = run(cairn_at(&repo).args(["snapshot", "--init"]).arg(&src));
    out.ok();
    assert!(repo.join("config").is_file());
    let out = run(cairn_at(&repo).args(["snapshot", "--init"]).arg(&src));
    out.ok();
    let out = run(cairn_at(&repo).args(["list", "--json"]));
    assert_eq!(out.json().as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------
// JSON output, list, tags, times
// ---------------------------------------------------------------------------

#[test]
fn snapshot_json_is_one_object_with_the_counters() {
    let (_sc, src, repo) = project();
    let out = run(cairn_at(&repo)
        .args(["snapshot", "--init", "--json"])
        .arg(&src));
    out.ok();
    let v = out.json();
    let id = v["id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(v["files_new"], 3);
    assert_eq!(v["files_changed"], 0);
    assert_eq!(v["files_unchanged"], 0);
    assert_eq!(v["bytes_read"], 6 + 6 + 8);
    assert!(v["bytes_added"].as_u64().unwrap() > 0);
    assert!(v["duration_ms"].is_u64());

    let v = run(cairn_at(&repo).args(["snapshot", "--json"]).arg(&src)).json();
    assert_eq!(v["files_unchanged"], 3);
    assert_eq!(v["bytes_read"], 0);
    assert_eq!(v["parent"].as_str(), Some(id));
}

#[test]
fn list_json_is_oldest_first_with_times_tags_messages_and_hosts() {
    let (_sc, src, repo) = project();
    let later = snap(
        &repo,
        &src,
        &[
            "--time",
            "2021-06-01T12:00:00Z",
            "--tag",
            "b",
            "--tag",
            "a",
            "-m",
            "first",
            "--host",
            "host-a",
        ],
    );
    let earlier = snap(
        &repo,
        &src,
        &["--time", "2020-01-01T00:00:00Z", "--tag", "b"],
    );
    let now = snap(&repo, &src, &["--tag", "c"]);

    let list = run(cairn_at(&repo).args(["list", "--json"])).json();
    let list = list.as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [earlier.as_str(), later.as_str(), now.as_str()]);
    let time = |v: &Value| {
        v["time"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert_eq!(
        time(&list[0]),
        "2020-01-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap()
    );
    assert_eq!(
        time(&list[1]),
        "2021-06-01T12:00:00Z".parse::<jiff::Timestamp>().unwrap()
    );
    assert!(time(&list[2]) > time(&list[1]));
    for v in list {
        assert_eq!(v["paths"], serde_json::json!([s(&src)]));
        assert!(v["host"].as_str().is_some_and(|h| !h.is_empty()));
    }
    assert_eq!(list[1]["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(list[1]["message"], "first");
    assert_eq!(list[1]["host"], "host-a");
    assert_eq!(list[0]["message"], "");
    assert_eq!(list[2]["tags"], serde_json::json!(["c"]));

    let tagged = |tag: &str| -> Vec<String> {
        let v = run(cairn_at(&repo).args(["list", "--json", "--tag", tag])).json();
        v.as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(tagged("a"), [later.as_str()]);
    assert_eq!(tagged("b"), [earlier.as_str(), later.as_str()]);
    assert!(tagged("nope").is_empty());

    // The table shows the recorded time (TZ=UTC in these tests).
    let out = run(cairn_at(&repo).arg("list"));
    out.ok();
    let text = out.out();
    let line = text.lines().find(|l| l.starts_with(&earlier[..8])).unwrap();
    assert!(line.contains("2020-01-01 00:00:00"), "{line}");
    let out = run(cairn_at(&repo).args(["list", "--tag", "a"]));
    assert!(out.out().contains(&later[..8]) && !out.out().contains(&earlier[..8]));
}

#[test]
fn a_bad_time_is_a_usage_error() {
    let (_sc, src, repo) = project();
    let out = run(cairn_at(&repo)
        .args(["snapshot", "--init", "--time", "yesterday"])
        .arg(&src));
    out.expect_code(2);
    assert!(out.stderr.contains("yesterday"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// Snapshot references
// ---------------------------------------------------------------------------

/// The shortest prefix (at least 4 characters) of `id` that no id in
/// `others` shares.
fn unique_prefix<'a>(id: &'a str, others: &[&str]) -> &'a str {
    (4..=64)
        .map(|n| &id[..n])
        .find(|p| others.iter().all(|o| !o.starts_with(p)))
        .unwrap()
}

#[test]
fn snapshots_are_named_by_latest_full_id_or_unique_prefix() {
    let (sc, src, repo) = project();
    fs::write(src.join("v.txt"), b"one").unwrap();
    let first = snap(&repo, &src, &[]);
    fs::write(src.join("v.txt"), b"two!").unwrap();
    let second = snap(&repo, &src, &[]);
    let cat = |snap: &str| {
        run(cairn_at(&repo)
            .current_dir(sc.join("elsewhere"))
            .args(["cat", snap])
            .arg(src.join("v.txt")))
    };
    assert_eq!(cat("latest").ok().stdout, b"two!");
    assert_eq!(cat(&first).ok().stdout, b"one");
    assert_eq!(cat(&second).ok().stdout, b"two!");
    let p1 = unique_prefix(&first, &[&second]);
    assert_eq!(cat(p1).ok().stdout, b"one");
    assert_eq!(cat(&p1.to_uppercase()).ok().stdout, b"one");
    assert_eq!(cat(unique_prefix(&second, &[&first])).ok().stdout, b"two!");

    // A full id of no snapshot.
    let mut unknown = first.clone();
    let last = unknown.pop().unwrap();
    unknown.push(if last == '0' { '1' } else { '0' });
    let out = cat(&unknown);
    out.expect_code(2);
    assert!(out.stderr.contains("no snapshot matches"), "{}", out.stderr);
    assert!(out.stderr.contains(&unknown), "{}", out.stderr);
    // Too short, or not hex.
    for bad in [&first[..3], "xyz!", ""] {
        let out = cat(bad);
        out.expect_code(2);
        assert!(
            out.stderr.contains("at least 4 hex"),
            "{bad:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn latest_in_an_empty_repository_is_a_usage_error() {
    let (_sc, _src, repo) = project();
    run(cairn_at(&repo).arg("init")).ok();
    let out = run(cairn_at(&repo).args(["ls", "latest"]));
    out.expect_code(2);
    assert!(out.stderr.contains("no snapshots"), "{}", out.stderr);
}

/// Two snapshot records whose ids share their first 4 hex characters,
/// found deterministically by varying the message.
fn colliding_records() -> (Vec<(SnapshotId, Vec<u8>)>, String) {
    let mut seen: HashMap<String, (SnapshotId, Vec<u8>)> = HashMap::new();
    for i in 0u32.. {
        let rec = Snapshot {
            time_ns: 1_600_000_000_000_000_000 + i64::from(i),
            tree: Tree::default().encode_with_id().unwrap().0,
            paths: vec![b"/nowhere".to_vec()],
            host: "test".into(),
            username: String::new(),
            tags: Vec::new(),
            message: format!("record {i}"),
            parent: None,
            summary: SnapshotSummary::default(),
            program_version: "test".into(),
        };
        let bytes = rec.encode().unwrap();
        let id = SnapshotId::of(&bytes);
        let prefix = id.to_hex()[..4].to_string();
        if let Some(other) = seen.remove(&prefix) {
            return (vec![other, (id, bytes)], prefix);
        }
        seen.insert(prefix, (id, bytes));
    }
    unreachable!()
}

#[test]
fn an_ambiguous_prefix_is_refused_with_the_candidates() {
    let sc = Scratch::new();
    let repo_path = sc.join("repo");
    let (records, prefix) = colliding_records();
    {
        let repo = init_repo(&repo_path, &InitOptions::default());
        let (tree_id, tree) = Tree::default().encode_with_id().unwrap();
        repo.catalog()
            .commit(&CommitBatch {
                trees: vec![(tree_id, tree)],
                snapshots: records.clone(),
                ..CommitBatch::default()
            })
            .unwrap();
        let err = repo.resolve(&prefix).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
        // One more character than they share resolves.
        let (a, b) = (records[0].0.to_hex(), records[1].0.to_hex());
        let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        assert_eq!(repo.resolve(&a[..common + 1]).unwrap().0, records[0].0);
    }
    for args in [
        vec!["ls", prefix.as_str()],
        vec!["cat", prefix.as_str(), "/x"],
    ] {
        let out = run(cairn_at(&repo_path).args(&args));
        out.expect_code(2);
        assert!(out.stderr.contains("matches 2 snapshots"), "{}", out.stderr);
        assert!(out.stderr.contains(&records[0].0.short()), "{}", out.stderr);
        assert!(out.stderr.contains(&records[1].0.short()), "{}", out.stderr);
    }
    let out = run(cairn_at(&repo_path).args(["ls", &records[1].0.to_hex()]));
    out.ok();
}

// ---------------------------------------------------------------------------
// cat and ls
// ---------------------------------------------------------------------------

#[test]
fn cat_writes_exact_bytes() {
    let (sc, src, repo) = project();
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    fs::write(src.join("binary.dat"), &all_bytes).unwrap();
    let big = pseudo_random(3, 1 << 20);
    fs::write(src.join("big.bin"), &big).unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    snap(&repo, &src, &[]);
    for (name, want) in [
        ("binary.dat", &all_bytes),
        ("big.bin", &big),
        ("empty", &Vec::new()),
    ] {
        let out = run(cairn_at(&repo).args(["cat", "latest"]).arg(src.join(name)));
        out.ok();
        assert!(
            out.stdout == *want,
            "{name}: {} bytes differ",
            out.stdout.len()
        );
    }
    // Relative to the snapshot's source path, from anywhere.
    let out = run(cairn_at(&repo).current_dir(sc.join("elsewhere")).args([
        "cat",
        "latest",
        "sub/deeper/c.txt",
    ]));
    assert_eq!(out.ok().stdout, b"charlie\n");
    // Relative to the current directory.
    let out = run(cairn_at(&repo)
        .current_dir(src.join("sub"))
        .args(["cat", "latest", "b.txt"]));
    assert_eq!(out.ok().stdout, b"bravo\n");
}

#[test]
fn cat_of_anything_but_a_file_is_a_usage_error() {
    let (_sc, src, repo) = project();
    snap(&repo, &src, &[]);
    for (path, says) in [
        (src.join("sub"), "not a regular file"),
        (PathBuf::from("/"), "directory"),
        (src.join("link"), "not a regular file"),
        (src.join("missing.txt"), "not in the snapshot"),
    ] {
        let out = run(cairn_at(&repo).args(["cat", "latest"]).arg(&path));
        out.expect_code(2);
        assert!(out.stdout.is_empty());
        assert!(
            out.stderr.contains(says),
            "{}: {}",
            path.display(),
            out.stderr
        );
    }
}

#[test]
fn odd_names_work_on_the_command_line_and_are_listed_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let (sc, src, repo) = project();
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9 with\nnewline");
    fs::write(src.join(odd), b"odd bytes").unwrap();
    snap(&repo, &src, &[]);
    let out = run(cairn_at(&repo).args(["cat", "latest"]).arg(src.join(odd)));
    assert_eq!(out.ok().stdout, b"odd bytes");
    let out = run(cairn_at(&repo)
        .current_dir(sc.join("elsewhere"))
        .args(["cat", "latest"])
        .arg(odd));
    assert_eq!(out.ok().stdout, b"odd bytes");
    // One entry per line, the name escaped.
    let text = run(cairn_at(&repo).args(["ls", "latest"]).arg(&src)).out();
    let want = format!("{}/caf\\xe9 with\\nnewline", s(&src));
    assert_eq!(
        text.lines().filter(|l| l.ends_with(&want)).count(),
        1,
        "{want} in\n{text}"
    );
    assert!(!text.lines().any(|l| l == "newline"), "{text}");
}

/// The path column of `ls` lines, without a link target: it starts at the
/// first " /" (mode, owner, size and time hold no slash).
fn ls_paths(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let rest = &l[l.find(" /").expect("a path") + 1..];
            rest.split(" -> ").next().unwrap().to_string()
        })
        .collect()
}

#[test]
fn ls_lists_paths_and_limits_to_a_subtree() {
    let (sc, src, repo) = project();
    snap(&repo, &src, &[]);
    let out = run(cairn_at(&repo).args(["ls", "latest"]));
    out.ok();
    let all = ls_paths(&out.out());
    for p in [
        "",
        "/a.txt",
        "/sub",
        "/sub/b.txt",
        "/sub/deeper/c.txt",
        "/link",
    ] {
        let want = format!("{}{p}", s(&src));
        assert!(all.contains(&want), "{want} not in\n{}", out.out());
    }
    assert!(all.contains(&s(sc.path()).to_string()));
    let link = out
        .out()
        .lines()
        .find(|l| l.contains("/link"))
        .unwrap()
        .to_string();
    assert!(
        link.starts_with('l') && link.ends_with(" -> a.txt"),
        "{link}"
    );

    let sub = src.join("sub");
    let out = run(cairn_at(&repo).args(["ls", "latest"]).arg(&sub));
    out.ok();
    let listed = ls_paths(&out.out());
    let want: Vec<String> = ["", "/b.txt", "/deeper", "/deeper/c.txt"]
        .iter()
        .map(|p| format!("{}{p}", s(&sub)))
        .collect();
    assert_eq!(listed, want);

    // Relative to the snapshot's source path.
    let rel = run(cairn_at(&repo)
        .current_dir(sc.join("elsewhere"))
        .args(["ls", "latest", "sub"]));
    assert_eq!(rel.ok().stdout, out.stdout);

    let json = run(cairn_at(&repo).args(["ls", "latest", "--json"]).arg(&sub)).json();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 4);
    assert_eq!(arr[0]["path"], s(&sub));
    assert_eq!(arr[0]["type"], "dir");
    assert_eq!(arr[1]["type"], "file");
    assert_eq!(arr[1]["size"], 6);

    let out = run(cairn_at(&repo).args(["ls", "latest"]).arg(src.join("nope")));
    out.expect_code(2);
}

/// Runs `cairn --repo REPO ARGS`, reads one line of its output, closes the
/// pipe, and returns the exit code and stderr.
fn read_one_line_then_close(repo: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = cairn_at(repo)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).unwrap();
    assert!(!line.is_empty());
    drop(reader);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A repository whose latest snapshot lists far more than a pipe buffers
/// (so the writer is still writing when the reader goes away), plus a
/// multi-megabyte file.
fn big_listing() -> (Scratch, PathBuf, PathBuf) {
    let sc = Scratch::new();
    let src = sc.join("src");
    let mut spec = Spec::new().file("src/big.bin", pseudo_random(9, 4 << 20));
    for i in 0..3000 {
        spec = spec.file(
            format!("src/a-fairly-long-file-name-to-fill-the-pipe-{i:05}"),
            b"",
        );
    }
    spec.create(sc.path());
    let repo_path = sc.join("repo");
    let repo = init_repo(&repo_path, &InitOptions::default());
    take_snapshot(&repo, &[&src]);
    (sc, repo_path, src)
}

#[test]
fn a_closed_pipe_ends_ls_and_cat_quietly() {
    let (_sc, repo, src) = big_listing();
    let big = src.join("big.bin");
    for args in [vec!["ls", "latest"], vec!["cat", "latest", s(&big)]] {
        let (code, stderr) = read_one_line_then_close(&repo, &args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_closed_pipe_ends_json_output_quietly() {
    let (_sc, repo, _src) = big_listing();
    let (code, stderr) = read_one_line_then_close(&repo, &["ls", "latest", "--json"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Regression: serde_json::Error hid the io::Error from the exit-code
    // mapping, so `cairn ls latest --json | head -1` printed
    // "error: Broken pipe (os error 32)" and exited 1.
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

// ---------------------------------------------------------------------------
// restore
// ---------------------------------------------------------------------------

#[test]
fn restore_refuses_a_non_empty_target_without_overwrite() {
    let (sc, src, repo) = project();
    snap(&repo, &src, &[]);
    let target = sc.join("out");
    run(cairn_at(&repo)
        .args(["restore", "latest", "--target"])
        .arg(&target))
    .ok();
    assert_same_tree(&src, &restored_path(&target, &src));

    let out = run(cairn_at(&repo)
        .args(["restore", "latest", "--target"])
        .arg(&target));
    out.expect_code(2);
    assert!(out.stderr.contains("--overwrite"), "{}", out.stderr);

    fs::write(restored_path(&target, &src).join("a.txt"), b"changed").unwrap();
    let out = run(cairn_at(&repo)
        .args(["restore", "latest", "--overwrite", "--json", "--target"])
        .arg(&target));
    out.ok();
    let v = out.json();
    assert_eq!(v["files"], 3);
    assert_eq!(v["errors"], serde_json::json!([]));
    assert_same_tree(&src, &restored_path(&target, &src));

    let file = sc.join("a-file");
    fs::write(&file, b"").unwrap();
    let out = run(cairn_at(&repo)
        .args(["restore", "latest", "--overwrite", "--target"])
        .arg(&file));
    out.expect_code(2);
    assert!(out.stderr.contains("not a directory"), "{}", out.stderr);
}

#[test]
fn restore_include_limits_and_rejects_unknown_paths() {
    let (sc, src, repo) = project();
    snap(&repo, &src, &[]);
    let target = sc.join("out");
    let out = run(cairn_at(&repo)
        .current_dir(sc.join("elsewhere"))
        .args(["restore", "latest", "--include", "sub", "--target"])
        .arg(&target));
    out.ok();
    let restored = restored_path(&target, &src);
    assert_same_tree(&src.join("sub"), &restored.join("sub"));
    assert!(!restored.join("a.txt").exists());

    let bad = sc.join("out2");
    let out = run(cairn_at(&repo)
        .args(["restore", "latest", "--include"])
        .arg(src.join("sub"))
        .arg("--include")
        .arg(src.join("nope"))
        .arg("--target")
        .arg(&bad));
    out.expect_code(2);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    assert!(!bad.exists());
}

// ---------------------------------------------------------------------------
// Partial snapshots and the repository inside its source
// ---------------------------------------------------------------------------

/// An unprivileged user's uid and gid, for tests run as root.
const NOBODY: u32 = 65534;

/// A `cairn` command without root's power to ignore permissions: as uid and
/// gid 65534 when the tests run as root, as the current user otherwise.
/// As root, `sc` is handed to that user (so it can create a repository or a
/// restore target there) and the binary is run from a copy inside it, since
/// the build directory may not be reachable for that user.
fn unprivileged_cairn(sc: &Scratch) -> Command {
    if !cairn::fsmeta::is_root() {
        return cairn();
    }
    fs::set_permissions(sc.path(), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(sc.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let bin = sc.join("cairn-bin");
    if !bin.exists() {
        fs::copy(env!("CARGO_BIN_EXE_cairn"), &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut c = Command::new(&bin);
    c.uid(NOBODY)
        .gid(NOBODY)
        .env_remove("CAIRN_REPO")
        .env("TZ", "UTC")
        .current_dir(sc.path());
    c
}

#[test]
fn restore_overwrite_onto_an_earlier_restore_with_read_only_dirs_works_unprivileged() {
    let sc = Scratch::new();
    let src = sc.join("src");
    Spec::new()
        .file("src/plain.txt", b"plain")
        .mode(0o644)
        .file("src/ro-dir/inside.txt", b"inside")
        .mode(0o444)
        .dir("src/ro-dir")
        .mode(0o555)
        .dir("src")
        .mode(0o755)
        .create(sc.path());
    let (repo, target) = (sc.join("repo"), sc.join("out"));
    let cairn_as_user = |args: &[&str]| {
        run(unprivileged_cairn(&sc)
            .arg("--repo")
            .arg(&repo)
            .args(args)
            .arg(&target))
    };
    run(unprivileged_cairn(&sc)
        .arg("--repo")
        .arg(&repo)
        .args(["snapshot", "--init"])
        .arg(&src))
    .ok();
    cairn_as_user(&["restore", "latest", "--target"]).ok();
    assert_same_tree(&src, &restored_path(&target, &src));
    // Regression (only visible without root): an existing 0o555 directory
    // from an earlier restore was kept read-only until the end, so replacing
    // a file inside it failed with "Permission denied".
    cairn_as_user(&["restore", "latest", "--overwrite", "--target"]).ok();
    assert_same_tree(&src, &restored_path(&target, &src));
}

#[test]
fn an_unreadable_file_gives_exit_code_3_and_a_snapshot_of_the_rest() {
    let sc = Scratch::new();
    let src = sc.join("src");
    Spec::new()
        .file("src/ok.txt", b"fine")
        .mode(0o644)
        .file("src/sub/also.txt", b"also fine")
        .mode(0o644)
        .file("src/secret", b"not for you")
        .mode(0o000)
        .file("src/locked/hidden.txt", b"not for you either")
        .dir("src/locked")
        .mode(0o000)
        .create(sc.path());
    let repo = sc.join("repo");
    // root reads anything: take the snapshot as an unprivileged user.
    let mut cmd = unprivileged_cairn(&sc);
    let out = run(cmd
        .arg("--repo")
        .arg(&repo)
        .args(["snapshot", "--init"])
        .arg(&src));
    out.expect_code(3);
    assert!(
        out.stderr.contains(s(&src.join("secret"))),
        "{}",
        out.stderr
    );

    let list = run(cairn_at(&repo).args(["list", "--json"])).json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["errors"], 2);
    assert_eq!(list[0]["files_new"], 2);

    let target = sc.join("out");
    run(cairn_at(&repo)
        .args(["restore", "latest", "--target"])
        .arg(&target))
    .ok();
    let restored = restored_path(&target, &src);
    assert_eq!(fs::read(restored.join("ok.txt")).unwrap(), b"fine");
    assert_eq!(
        fs::read(restored.join("sub/also.txt")).unwrap(),
        b"also fine"
    );
    assert!(!restored.join("secret").exists());
    assert!(!restored.join("locked/hidden.txt").exists());
}

#[test]
fn the_repository_inside_the_source_is_not_snapshotted_into_itself() {
    let (sc, src, _repo) = project();
    for _ in 0..2 {
        let out =
            run(cairn()
                .current_dir(&src)
                .args(["--repo", "./backups", "snapshot", "--init", "."]));
        out.ok();
        assert!(
            out.stderr.contains("backups") && out.stderr.contains("repository"),
            "{}",
            out.stderr
        );
    }
    let out = run(cairn()
        .current_dir(&src)
        .args(["--repo", "./backups", "ls", "latest"]));
    out.ok();
    let text = out.out();
    assert!(!text.contains("backups"), "{text}");
    assert!(text.contains(&format!("{}/a.txt", s(&src))), "{text}");
    assert!(sc.join("src/backups/config").is_file());
}

#[test]
fn exclude_and_ignore_file_flags_reach_the_snapshot() {
    let (sc, src, repo) = project();
    Spec::new()
        .file("src/debug.log", b"log")
        .file("src/target/out.bin", b"build output")
        .file("src/.gitignore", b"ignored.txt\n")
        .file("src/ignored.txt", b"ignored")
        .create(sc.path());
    snap(
        &repo,
        &src,
        &[
            "--exclude",
            "*.log",
            "--exclude",
            "target/",
            "--ignore-file",
            ".gitignore",
        ],
    );
    let text = run(cairn_at(&repo).args(["ls", "latest"]).arg(&src)).out();
    for gone in ["debug.log", "target", "ignored.txt"] {
        assert!(!text.contains(gone), "{gone} listed:\n{text}");
    }
    for kept in ["a.txt", ".gitignore", "sub/b.txt"] {
        assert!(text.contains(kept), "{kept} missing:\n{text}");
    }
}
