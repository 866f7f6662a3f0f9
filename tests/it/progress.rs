//! Progress reporting: the library's hooks report totals consistent with
//! the work done, and the CLI draws nothing (no escape codes, no carriage
//! returns) when stderr is not a terminal.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn::archiver::{self, Report, SnapshotOptions, Warning};
use cairn::check::{CheckOptions, ReadData};
use cairn::gc::GcOptions;
use cairn::progress::{Phase, Progress};
use cairn::repo::RawRepository;
use cairn::restore::{self, RestoreOptions};
use cairn::{LockMode, Repository};

use crate::support::*;

/// Records each phase with the items and bytes counted during it.
#[derive(Default)]
struct Recorder {
    phases: Mutex<Vec<(Phase, u64, u64)>>,
    items: AtomicU64,
    bytes: AtomicU64,
}

impl Recorder {
    /// Every phase with its (items, bytes) counts.
    fn done(&self) -> Vec<(Phase, u64, u64)> {
        let mut phases = self.phases.lock().unwrap().clone();
        if let Some(last) = phases.last_mut() {
            last.1 = self.items.load(Ordering::SeqCst);
            last.2 = self.bytes.load(Ordering::SeqCst);
        }
        phases
    }

    fn phase_named(&self, name: &str) -> (Phase, u64, u64) {
        self.done()
            .into_iter()
            .find(|(p, _, _)| p.name == name)
            .unwrap_or_else(|| panic!("no phase {name} in {:?}", self.done()))
    }
}

impl Progress for Recorder {
    fn phase(&self, phase: &Phase) {
        let mut phases = self.phases.lock().unwrap();
        if let Some(last) = phases.last_mut() {
            last.1 = self.items.swap(0, Ordering::SeqCst);
            last.2 = self.bytes.swap(0, Ordering::SeqCst);
        }
        phases.push((*phase, 0, 0));
    }
    fn items(&self, n: u64) {
        self.items.fetch_add(n, Ordering::SeqCst);
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::SeqCst);
    }
}

impl Report for Recorder {
    fn warning(&self, _: &Warning) {}
    fn progress(&self) -> &dyn Progress {
        self
    }
}

/// Three files of 0, 100 KB and 300 KB, and a small one in a subdirectory.
fn source(s: &Scratch) -> (std::path::PathBuf, u64) {
    let src = s.join("src");
    Spec::new()
        .file("src/empty", b"")
        .file("src/sub/small.txt", b"small\n")
        .create(s.path());
    write_pseudo_random(&src.join("big1"), 1, 100_000);
    write_pseudo_random(&src.join("big2"), 2, 300_000);
    (src, 400_006)
}

#[test]
fn snapshot_reports_scanned_files_then_the_files_it_reads_with_their_totals() {
    let s = Scratch::new();
    let (src, total) = source(&s);
    let repo = init_repo(&s.join("repo"), &SMALL_CHUNKS);
    let rec = Recorder::default();
    archiver::snapshot(&repo, &SnapshotOptions::new(vec![src.clone()]), &rec).unwrap();
    let names: Vec<&str> = rec.done().iter().map(|(p, _, _)| p.name).collect();
    assert_eq!(names, ["scan", "read"]);
    let (scan, scanned, scanned_bytes) = rec.phase_named("scan");
    assert_eq!((scan.total_items, scan.total_bytes), (None, None));
    assert_eq!((scanned, scanned_bytes), (4, total));
    let (read, files, bytes) = rec.phase_named("read");
    assert_eq!((read.total_items, read.total_bytes), (Some(4), Some(total)));
    assert_eq!((files, bytes), (4, total));

    // Nothing changed: the second snapshot scans everything, reads nothing.
    let rec = Recorder::default();
    archiver::snapshot(&repo, &SnapshotOptions::new(vec![src]), &rec).unwrap();
    assert_eq!(rec.phase_named("scan").1, 4);
    let (read, files, bytes) = rec.phase_named("read");
    assert_eq!((read.total_items, read.total_bytes), (Some(0), Some(0)));
    assert_eq!((files, bytes), (0, 0));
}

#[test]
fn restore_reports_every_byte_of_the_files_it_restores() {
    let s = Scratch::new();
    let (src, total) = source(&s);
    let repo = init_repo(&s.join("repo"), &SMALL_CHUNKS);
    let snap = take_snapshot(&repo, &[&src]).snapshot;
    let rec = Recorder::default();
    let opts = RestoreOptions {
        target: s.join("out"),
        includes: Vec::new(),
        overwrite: false,
        owner: false,
    };
    let summary = restore::restore_with(&repo, snap.tree, &opts, &rec).unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    let phases = rec.done();
    assert_eq!(phases.len(), 1, "{phases:?}");
    let (phase, files, bytes) = phases[0];
    assert_eq!(phase.name, "restore");
    assert_eq!(phase.total_items, Some(4));
    assert_eq!(phase.total_bytes, Some(total));
    assert_eq!((files, bytes), (summary.files, summary.bytes));
    assert_eq!(bytes, total);
}

#[test]
fn check_read_data_reports_each_pack_and_its_bytes() {
    let s = Scratch::new();
    let (src, _) = source(&s);
    let repo_path = s.join("repo");
    take_snapshot(&init_repo(&repo_path, &SMALL_CHUNKS), &[&src]);
    let raw = RawRepository::open(&repo_path, LockMode::Shared, &|| {}).unwrap();
    let pack_bytes: u64 = raw
        .store()
        .list_packs()
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    let rec = Recorder::default();
    let opts = CheckOptions {
        read_data: ReadData::All,
    };
    let report = cairn::check::check_with(&raw, &opts, &rec).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let (phase, packs, bytes) = rec.phase_named("read-data");
    assert_eq!(phase.total_items, Some(report.packs_read as u64));
    assert_eq!(phase.total_bytes, Some(pack_bytes));
    assert_eq!((packs, bytes), (report.packs_read as u64, pack_bytes));

    // Without --read-data there is nothing long to report.
    let rec = Recorder::default();
    cairn::check::check_with(&raw, &CheckOptions::default(), &rec).unwrap();
    assert!(rec.done().is_empty());
}

#[test]
fn gc_reports_the_packs_it_rewrites_and_the_live_bytes_it_copies() {
    let s = Scratch::new();
    let (src, _) = source(&s);
    let repo_path = s.join("repo");
    let repo = init_repo(&repo_path, &SMALL_CHUNKS);
    let first = take_snapshot(&repo, &[&src]).id;
    std::fs::remove_file(src.join("big2")).unwrap();
    take_snapshot(&repo, &[&src]);
    repo.catalog().remove_snapshots(&[first]).unwrap();
    drop(repo);
    let repo = Repository::open(&repo_path, LockMode::Exclusive, &|| {}).unwrap();
    let rec = Recorder::default();
    let opts = GcOptions {
        dry_run: false,
        repack_threshold: 0.0,
    };
    let summary = cairn::gc::collect_with(&repo, &opts, &rec).unwrap();
    let (mark, files, _) = rec.phase_named("mark");
    assert_eq!(mark.total_items, None);
    assert_eq!(files, 3, "file entries of the remaining snapshot");
    let (repack, packs, bytes) = rec.phase_named("repack");
    assert_eq!(repack.total_items, Some(summary.packs_repacked));
    assert_eq!(packs, summary.packs_repacked);
    assert_eq!(repack.total_bytes, Some(bytes));
    assert!(
        bytes > 0 && bytes <= summary.bytes_live,
        "{bytes} of {summary:?}"
    );
    drop(repo);
    restore_every_snapshot(&repo_path, s.path());
}

/// No escape code and no carriage return: what a log file must not get.
#[track_caller]
fn assert_plain(what: &str, out: &CliOut) {
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\r'),
        "{what}: stderr has terminal control characters: {:?}",
        out.stderr
    );
}

#[test]
fn without_a_terminal_long_commands_write_no_progress_bar() {
    let s = Scratch::new();
    let (src, _) = source(&s);
    let repo = s.join("repo");
    // The repository inside the source: one "skipped" warning line.
    let inner = src.join("repo");
    let out = run(cairn_at(&inner).args(["snapshot", "--init"]).arg(&src));
    out.ok();
    assert_plain("snapshot", &out);
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("warning: skipped: "),
        "{warnings:?}"
    );

    let out = run(cairn_at(&repo).args(["snapshot", "--init"]).arg(&src));
    out.ok();
    assert_plain("snapshot", &out);
    let out = run(cairn_at(&repo)
        .args(["restore", "latest", "--target"])
        .arg(s.join("out")));
    out.ok();
    assert_plain("restore", &out);
    assert_eq!(out.stderr, "");
    assert_eq!(
        hash_file(&restored_path(&s.join("out"), &src.join("big2"))),
        hash_file(&src.join("big2"))
    );
    let out = run(cairn_at(&repo).args(["check", "--read-data"]));
    out.ok();
    assert_plain("check --read-data", &out);
    assert_eq!(out.stderr, "");
    let out = run(cairn_at(&repo).args(["forget", "--keep-last", "1", "--gc"]));
    out.ok();
    assert_plain("forget --gc", &out);
    let out = run(cairn_at(&repo).args(["gc", "--repack-threshold", "0%"]));
    out.ok();
    assert_plain("gc", &out);
    assert_eq!(out.stderr, "");
}

/// A sanity check on the helper itself: it does see a carriage return.
#[test]
fn the_plain_check_catches_carriage_returns() {
    let out = CliOut {
        code: 0,
        stdout: Vec::new(),
        stderr: "50%\r".to_string(),
    };
    let caught = std::panic::catch_unwind(|| assert_plain("x", &out));
    assert!(caught.is_err());
}
