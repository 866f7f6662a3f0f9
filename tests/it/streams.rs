//! Stream snapshots: `--stdin` and `--stdin-from-command` store one file,
//! `/NAME`, that `cat`, `ls` and `restore` give back; a failing command
//! commits nothing; successive dumps deduplicate.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use cairn::archiver::{self, NoReport, SnapshotOptions, StreamSource, validate_stream_name};
use cairn::model::EntryKind;
use cairn::repo::Located;
use cairn::{ErrorKind, InitOptions, LockMode, Repository};

use crate::support::*;

/// Runs `cmd` with `input` on its standard input.
fn run_with_input(cmd: &mut Command, input: &[u8]) -> CliOut {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running cairn");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // cairn may refuse its arguments and exit before reading: EPIPE.
        if let Err(e) = stdin.write_all(&input) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    CliOut {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn snapshot_count(repo: &Path) -> usize {
    Repository::open(repo, LockMode::Shared, &|| {})
        .unwrap()
        .snapshots()
        .unwrap()
        .len()
}

/// Names of the pack files below `objects/`.
fn packs(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for d in fs::read_dir(repo.join("objects")).unwrap() {
        for p in fs::read_dir(d.unwrap().path()).unwrap() {
            out.push(p.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// The content of `/name` in snapshot `reference`, through the library.
fn stored(repo: &Repository, reference: &str, name: &str) -> Vec<u8> {
    let (_, snap) = repo.resolve(reference).unwrap();
    let Located::Entry(entry) = repo.locate(&snap, &Path::new("/").join(name)).unwrap() else {
        panic!("/{name} is the root");
    };
    let mut out = Vec::new();
    repo.write_file(&entry, &mut out).unwrap();
    out
}

#[test]
fn stdin_round_trips_through_cat_ls_and_restore() {
    let s = Scratch::new();
    let repo = s.join("repo");
    run(cairn_at(&repo).arg("init")).ok();
    let data = pseudo_random(1, 3 << 20);
    run_with_input(
        cairn_at(&repo).args(["snapshot", "--stdin", "--stdin-name", "dump.bin"]),
        &data,
    )
    .ok();
    let cat = run(cairn_at(&repo).args(["cat", "latest", "/dump.bin"]));
    cat.ok();
    assert!(cat.stdout == data, "cat gives the bytes back");

    let ls = run(cairn_at(&repo).args(["ls", "latest"]));
    ls.ok();
    assert!(ls.out().contains("-rw-------"), "mode 0600: {}", ls.out());
    assert!(ls.out().contains("/dump.bin"), "{}", ls.out());

    let list = run(cairn_at(&repo).args(["list", "--json"]));
    list.ok();
    assert!(list.out().contains("\"/dump.bin\""), "{}", list.out());

    let target = s.join("out");
    run(cairn_at(&repo)
        .args(["restore", "latest", "--target"])
        .arg(&target))
    .ok();
    assert_eq!(fs::read(target.join("dump.bin")).unwrap(), data);
}

#[test]
fn an_empty_stdin_is_stored_as_an_empty_file_named_stdin() {
    let s = Scratch::new();
    let repo = s.join("repo");
    run(cairn_at(&repo).arg("init")).ok();
    run_with_input(cairn_at(&repo).args(["snapshot", "--stdin"]), b"").ok();
    let cat = run(cairn_at(&repo).args(["cat", "latest", "/stdin"]));
    cat.ok();
    assert!(cat.stdout.is_empty());
    let r = Repository::open(&repo, LockMode::Shared, &|| {}).unwrap();
    let (_, snap) = r.resolve("latest").unwrap();
    assert_eq!(snap.paths, vec![b"/stdin".to_vec()]);
    let Located::Entry(e) = r.locate(&snap, Path::new("/stdin")).unwrap() else {
        panic!("no /stdin");
    };
    assert!(matches!(e.kind, EntryKind::File { size: 0, .. }));
    assert_eq!(e.meta.mode, 0o600);
    assert_eq!(
        e.meta.mtime_ns, snap.time_ns,
        "mtime is the snapshot's time"
    );
}

#[test]
fn a_command_output_round_trips_under_the_command_name() {
    let s = Scratch::new();
    let repo = s.join("repo");
    run(cairn_at(&repo).arg("init")).ok();
    let file = s.join("data");
    write_pseudo_random(&file, 2, 2 << 20);
    // The default name is the command's file name.
    let out = run(cairn_at(&repo)
        .args(["snapshot", "--stdin-from-command", "--", "cat"])
        .arg(&file));
    out.ok();
    let cat = run(cairn_at(&repo).args(["cat", "latest", "/cat"]));
    cat.ok();
    assert!(cat.stdout == fs::read(&file).unwrap());

    // Arguments reach the command unchanged (no shell), and --stdin-name wins.
    run(cairn_at(&repo).args([
        "snapshot",
        "--stdin-from-command",
        "--stdin-name",
        "args.txt",
        "--",
        "printf",
        "%s|",
        "a b",
        "$HOME",
        "*",
    ]))
    .ok();
    let cat = run(cairn_at(&repo).args(["cat", "latest", "/args.txt"]));
    cat.ok();
    assert_eq!(cat.out(), "a b|$HOME|*|");
}

#[test]
fn a_failing_command_commits_nothing() {
    let s = Scratch::new();
    let repo = s.join("repo");
    run(cairn_at(&repo).arg("init")).ok();
    run_with_input(
        cairn_at(&repo).args(["snapshot", "--stdin", "--stdin-name", "ok"]),
        b"fine",
    )
    .ok();
    let packs_before = packs(&repo);

    let out = run(cairn_at(&repo).args([
        "snapshot",
        "--stdin-from-command",
        "--",
        "sh",
        "-c",
        "echo partial; echo oops >&2; exit 3",
    ]));
    out.expect_code(1);
    assert!(out.stderr.contains("`sh`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("exited with status 3"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("oops"),
        "stderr passes through: {}",
        out.stderr
    );

    let out = run(cairn_at(&repo).args([
        "snapshot",
        "--stdin-from-command",
        "--",
        "sh",
        "-c",
        "echo partial; kill -9 $$",
    ]));
    out.expect_code(1);
    assert!(out.stderr.contains("killed by signal 9"), "{}", out.stderr);

    let out = run(cairn_at(&repo).args([
        "snapshot",
        "--stdin-from-command",
        "--",
        "/nonexistent/dump-tool",
    ]));
    out.expect_code(1);
    assert!(
        out.stderr.contains("/nonexistent/dump-tool"),
        "{}",
        out.stderr
    );

    assert_eq!(snapshot_count(&repo), 1, "no snapshot was recorded");
    assert_eq!(
        packs(&repo),
        packs_before,
        "no pack holds the partial output"
    );
    assert_eq!(fs::read_dir(repo.join("tmp")).unwrap().count(), 0);
    let list = run(cairn_at(&repo).args(["list"]));
    assert!(!list.out().contains("/sh"), "{}", list.out());
    run(cairn_at(&repo).args(["check"])).ok();
}

#[test]
fn bad_stream_names_are_refused_before_anything_runs() {
    let s = Scratch::new();
    let repo = s.join("repo");
    run(cairn_at(&repo).arg("init")).ok();
    let marker = s.join("ran");
    for name in ["", ".", "..", "a/b", "/x"] {
        let out = run(cairn_at(&repo)
            .args([
                "snapshot",
                "--stdin-from-command",
                "--stdin-name",
                name,
                "--",
            ])
            .args(["touch"])
            .arg(&marker));
        out.expect_code(2);
        assert!(
            out.stderr.contains("stream name"),
            "{name:?}: {}",
            out.stderr
        );
        assert!(!marker.exists(), "the command must not run for {name:?}");
        run_with_input(
            cairn_at(&repo).args(["snapshot", "--stdin", "--stdin-name", name]),
            b"x",
        )
        .expect_code(2);
    }
    assert_eq!(snapshot_count(&repo), 0);
    assert!(validate_stream_name(b"a\0b").is_err(), "NUL is refused");
    assert!(validate_stream_name(b"db.sql").is_ok());

    // Misused options are usage errors too.
    run(cairn_at(&repo).args(["snapshot", "--stdin-from-command"])).expect_code(2);
    run(cairn_at(&repo).args(["snapshot", "--stdin", "x"])).expect_code(2);
    run(cairn_at(&repo).args(["snapshot", "--stdin-name", "x", "."])).expect_code(2);
}

#[test]
fn successive_dumps_with_small_edits_add_little() {
    let s = Scratch::new();
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let first = pseudo_random(7, 20 << 20);
    let mut second = first.clone();
    // A few small edits: overwrite, insert, delete, as between two dumps.
    second[1_000_000..1_000_100].fill(0xAA);
    second.splice(8_000_000..8_000_000, b"an inserted row".iter().copied());
    second.drain(15_000_000..15_000_050);
    second.extend_from_slice(b"-- trailer of the second dump\n");

    let opts = SnapshotOptions::new(Vec::new());
    let a = archiver::snapshot_stream(
        &repo,
        &opts,
        b"dump.sql",
        StreamSource::Reader(&mut &first[..]),
        &NoReport,
    )
    .unwrap();
    let b = archiver::snapshot_stream(
        &repo,
        &opts,
        b"dump.sql",
        StreamSource::Reader(&mut &second[..]),
        &NoReport,
    )
    .unwrap();
    assert!(
        a.snapshot.summary.bytes_added >= 20 << 20,
        "random data does not compress"
    );
    let added = b.snapshot.summary.bytes_added;
    assert!(
        added < (first.len() / 50) as u64,
        "the second dump added {added} bytes, more than 2% of {}",
        first.len()
    );
    assert_eq!(
        b.snapshot.parent,
        Some(a.id),
        "same name, same host: a parent chain"
    );
    assert_eq!(b.snapshot.summary.files_changed, 1);
    assert_eq!(stored(&repo, &a.id.to_string(), "dump.sql"), first);
    assert_eq!(stored(&repo, &b.id.to_string(), "dump.sql"), second);
}

#[test]
fn a_stream_snapshot_takes_no_paths() {
    let s = Scratch::new();
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let opts = SnapshotOptions::new(vec![s.path().to_path_buf()]);
    let err = archiver::snapshot_stream(
        &repo,
        &opts,
        b"x",
        StreamSource::Reader(&mut &b""[..]),
        &NoReport,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
