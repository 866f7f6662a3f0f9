//! `cairn export`: archives that standard tools read back into the same
//! tree (bytes, modes, mtimes to the second), for tar and zip, to a file and
//! to standard output; `--include`; what zip cannot hold; a corrupt chunk
//! leaves no archive behind.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cairn::export::{self, ExportOptions, Format};
use cairn::{ErrorKind, LockMode, Repository};

use crate::support::*;

/// 1_600_000_000 s (2020-09-13) plus a fraction, so truncation to whole
/// seconds is exercised.
const T: i64 = 1_600_000_000_123_456_789;

/// A source tree with every kind of entry an archive should carry.
fn source(scratch: &Scratch) -> PathBuf {
    let src = scratch.join("src");
    let long_dir = "a-directory-with-a-rather-long-name-to-push-the-path-past-one-hundred-bytes";
    Spec::new()
        .dir("src")
        .mode(0o750)
        .mtime(T)
        .file("src/hello.txt", b"hello, world\n")
        .mtime(T + 1_000_000_000)
        .file("src/empty", b"")
        .mtime(T + 2_000_000_000)
        .file("src/run.sh", b"#!/bin/sh\necho hi\n")
        .mode(0o755)
        .mtime(T + 3_000_000_000)
        .file("src/read-only.txt", b"look, don't touch\n")
        .mode(0o444)
        .mtime(T + 4_000_000_000)
        .file("src/data/big.bin", pseudo_random(7, 300_000))
        .mtime(T + 5_000_000_000)
        .dir("src/data")
        .mtime(T + 6_000_000_000)
        .file("src/with spaces/and (parens) & more.txt", b"odd name\n")
        .mtime(T + 7_000_000_000)
        .dir("src/with spaces")
        .mtime(T + 8_000_000_000)
        .file(
            format!("src/{long_dir}/and-a-file-name-that-is-long-too.txt"),
            b"long path\n",
        )
        .mtime(T + 9_000_000_000)
        .dir(format!("src/{long_dir}"))
        .mtime(T + 10_000_000_000)
        .dir("src/empty-dir")
        .mode(0o700)
        .mtime(T + 11_000_000_000)
        .symlink("src/link-to-hello", "hello.txt")
        .mtime(T + 12_000_000_000)
        .symlink("src/dangling", "../nowhere/at/all")
        .mtime(T + 13_000_000_000)
        .file("src/ünïcödé.txt", b"utf-8 name\n")
        .mtime(T + 14_000_000_000)
        // Exported as a second regular file with the same content.
        .hardlink("src/hello-again.txt", "src/hello.txt")
        .create(scratch.path());
    // Set last: writing the children changed it.
    set_mtime(&src, T);
    assert!(
        format!(
            "{}/{long_dir}/and-a-file-name-that-is-long-too.txt",
            src.display()
        )
        .len()
            > 100
    );
    src
}

struct Fixture {
    scratch: Scratch,
    repo: PathBuf,
    src: PathBuf,
}

fn fixture() -> Fixture {
    let scratch = Scratch::new();
    let src = source(&scratch);
    let repo = scratch.join("repo");
    let r = init_repo(&repo, &SMALL_CHUNKS);
    take_snapshot(&r, &[&src]);
    Fixture { scratch, repo, src }
}

/// `describe` with mtimes truncated to whole seconds (what tar and zip hold).
fn describe_secs(root: &Path) -> BTreeMap<Vec<u8>, Desc> {
    describe(root)
        .into_iter()
        .map(|(k, mut d)| {
            d.mtime_ns = d.mtime_ns.div_euclid(1_000_000_000) * 1_000_000_000;
            (k, d)
        })
        .collect()
}

#[track_caller]
fn assert_same_secs(src: &Path, extracted: &Path, left_out: &[&str]) {
    let mut want = describe_secs(src);
    for p in left_out {
        assert!(want.remove(p.as_bytes()).is_some(), "{p} not in the source");
    }
    let diff = diff_descs(&want, &describe_secs(extracted));
    assert!(
        diff.is_empty(),
        "extracted tree differs from the source\n{}",
        diff.join("\n")
    );
}

/// Runs a system tool, asserting success.
#[track_caller]
fn tool(cmd: &mut Command) {
    let out = cmd.output().expect("running a system tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tar_extract(archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    tool(
        Command::new("tar")
            .arg("--no-same-owner")
            .arg("-xpf")
            .arg(archive)
            .arg("-C")
            .arg(into),
    );
}

/// Member names of a tar archive, in archive order, as GNU tar lists them.
fn tar_names(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

/// Extracts a zip with Python's zipfile into `into`, honouring what the
/// archive says (zipfile itself ignores it): directories, `S_IFLNK` entries
/// as symlinks, modes from the external attributes, mtimes from the
/// extended-timestamp field. Also checks every entry's CRC, that each DOS
/// time is the UTC mtime rounded down to even seconds, and prints the names
/// in archive order.
const PY_UNZIP: &str = r#"
import os, stat, struct, sys, time, zipfile
archive, dest = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(archive)
assert z.testzip() is None, "bad CRC"
later = []
for info in z.infolist():
    mode = info.external_attr >> 16
    mtime = None
    extra = info.extra
    while len(extra) >= 4:
        hid, size = struct.unpack("<HH", extra[:4])
        if hid == 0x5455 and extra[4] & 1:
            mtime = struct.unpack("<i", extra[5:9])[0]
        extra = extra[4 + size:]
    assert mtime is not None, info.filename + ": no extended timestamp"
    want = time.gmtime(mtime)[:6]
    want = want[:5] + (want[5] // 2 * 2,)
    assert info.date_time == want, (info.filename, info.date_time, want)
    path = os.path.join(dest, info.filename)
    if stat.S_ISDIR(mode):
        os.makedirs(path, exist_ok=True)
        later.append((path, mode, mtime))
        continue
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if stat.S_ISLNK(mode):
        os.symlink(z.read(info), path)
        os.utime(path, (mtime, mtime), follow_symlinks=False)
        continue
    assert stat.S_ISREG(mode), info.filename
    with open(path, "wb") as f:
        f.write(z.read(info))
    os.chmod(path, stat.S_IMODE(mode))
    os.utime(path, (mtime, mtime))
for path, mode, mtime in reversed(later):
    os.chmod(path, stat.S_IMODE(mode))
    os.utime(path, (mtime, mtime))
for info in z.infolist():
    print(info.filename.rstrip("/"))
"#;

fn zip_extract(archive: &Path, into: &Path) -> Vec<String> {
    fs::create_dir_all(into).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(PY_UNZIP)
        .arg(archive)
        .arg(into)
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "python zipfile extraction failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every name is relative and comes after the directory holding it.
#[track_caller]
fn assert_parents_first(names: &[String]) {
    for (i, n) in names.iter().enumerate() {
        assert!(!n.starts_with('/'), "absolute name {n}");
        if let Some((parent, _)) = n.rsplit_once('/') {
            let at = names.iter().position(|m| m == parent);
            assert!(
                at.is_some_and(|at| at < i),
                "{n} is not preceded by its directory {parent}"
            );
        }
    }
}

/// The archive name of an absolute source path.
fn rel(p: &Path) -> String {
    p.strip_prefix("/").unwrap().to_str().unwrap().to_string()
}

#[test]
fn tar_to_a_file_and_to_stdout_extracts_to_the_same_tree() {
    let f = fixture();
    let file = f.scratch.join("out.tar");
    let out = run(cairn_at(&f.repo)
        .args(["export", "latest", "-o"])
        .arg(&file));
    out.ok();
    assert!(out.stderr.contains("as tar"), "{}", out.stderr);
    let piped = run(cairn_at(&f.repo).args(["export", "latest"]));
    piped.ok();
    let streamed = f.scratch.join("streamed.tar");
    fs::write(&streamed, &piped.stdout).unwrap();
    // The same snapshot gives the same bytes whichever way it is written.
    assert_eq!(fs::read(&file).unwrap(), piped.stdout);

    for (archive, dir) in [(&file, "x-file"), (&streamed, "x-stdout")] {
        let into = f.scratch.join(dir);
        tar_extract(archive, &into);
        assert_same_secs(&f.src, &restored_path(&into, &f.src), &[]);
        let names = tar_names(archive);
        assert_parents_first(&names);
        assert!(names.contains(&rel(&f.src.join("data/big.bin"))));
    }
}

#[test]
fn tar_entries_carry_types_owners_and_fifos() {
    let scratch = Scratch::new();
    let src = scratch.join("src");
    Spec::new()
        .file("src/f", b"x")
        .fifo("src/pipe")
        .mode(0o640)
        .create(scratch.path());
    let repo = scratch.join("repo");
    let r = init_repo(&repo, &SMALL_CHUNKS);
    take_snapshot(&r, &[&src]);
    let (_, snap) = r.resolve("latest").unwrap();
    let mut buf = Vec::new();
    let summary =
        export::export(&r, snap.tree, &ExportOptions::new(Format::Tar), &mut buf).unwrap();
    assert_eq!((summary.files, summary.specials), (1, 1));
    assert!(summary.skipped.is_empty());

    let md = fs::metadata(src.join("f")).unwrap();
    let mut seen = BTreeMap::new();
    let mut archive = tar::Archive::new(&buf[..]);
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let name = e.path().unwrap().to_str().unwrap().to_string();
        use std::os::unix::fs::MetadataExt;
        if name == rel(&src.join("f")) {
            assert_eq!(h.uid().unwrap(), u64::from(md.uid()));
            assert_eq!(h.gid().unwrap(), u64::from(md.gid()));
        }
        seen.insert(name, (h.entry_type(), h.mode().unwrap()));
    }
    assert_eq!(seen[&rel(&src.join("pipe"))], (tar::EntryType::Fifo, 0o640));
    assert_eq!(seen[&rel(&src)].0, tar::EntryType::Directory);

    // GNU tar recreates the FIFO.
    let archive = scratch.join("a.tar");
    fs::write(&archive, &buf).unwrap();
    let into = scratch.join("x");
    tar_extract(&archive, &into);
    assert_same_secs(&src, &restored_path(&into, &src), &[]);
}

#[test]
fn zip_to_a_file_and_to_stdout_extracts_to_the_same_tree() {
    let f = fixture();
    let file = f.scratch.join("out.zip");
    run(cairn_at(&f.repo)
        .args(["export", "latest", "-o"])
        .arg(&file))
    .ok();
    // Without -o the format must be asked for; the stream has data descriptors.
    let piped = run(cairn_at(&f.repo).args(["export", "latest", "--format", "zip"]));
    piped.ok();
    let streamed = f.scratch.join("streamed.zip");
    fs::write(&streamed, &piped.stdout).unwrap();

    for (archive, dir) in [(&file, "x-file"), (&streamed, "x-stdout")] {
        let into = f.scratch.join(dir);
        let names = zip_extract(archive, &into);
        assert_same_secs(&f.src, &restored_path(&into, &f.src), &[]);
        assert_parents_first(&names);
    }
}

#[test]
fn tar_zst_is_a_compressed_tar() {
    let f = fixture();
    let file = f.scratch.join("out.tar.zst");
    run(cairn_at(&f.repo)
        .args(["export", "latest", "-o"])
        .arg(&file))
    .ok();
    let tar_bytes = zstd::decode_all(fs::File::open(&file).unwrap()).unwrap();
    let plain = run(cairn_at(&f.repo).args(["export", "latest", "--format", "tar"]));
    plain.ok();
    assert_eq!(tar_bytes, plain.stdout);
}

#[test]
fn include_limits_the_archive_to_those_paths_and_their_parents() {
    let f = fixture();
    let file = f.scratch.join("part.zip");
    run(cairn_at(&f.repo)
        .args(["export", "latest", "--include"])
        .arg(f.src.join("data"))
        .arg("--include")
        .arg(f.src.join("hello.txt"))
        .arg("-o")
        .arg(&file))
    .ok();
    let into = f.scratch.join("x");
    let names = zip_extract(&file, &into);
    let mut want: Vec<String> = f
        .src
        .ancestors()
        .filter(|a| *a != Path::new("/"))
        .map(rel)
        .collect();
    want.extend([
        rel(&f.src.join("data")),
        rel(&f.src.join("data/big.bin")),
        rel(&f.src.join("hello.txt")),
    ]);
    let mut got = names.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_parents_first(&names);
    assert_eq!(
        fs::read(restored_path(&into, &f.src.join("data/big.bin"))).unwrap(),
        pseudo_random(7, 300_000)
    );

    // An include that is not in the snapshot is a usage error; no file.
    let missing = f.scratch.join("missing.tar");
    let out = run(cairn_at(&f.repo)
        .args(["export", "latest", "--include"])
        .arg(f.src.join("no-such-thing"))
        .arg("-o")
        .arg(&missing));
    out.expect_code(2);
    assert!(out.stderr.contains("not in the snapshot"), "{}", out.stderr);
    assert!(!missing.exists());
}

#[test]
fn zip_leaves_out_fifos_with_a_warning_and_refuses_non_utf8_names() {
    let scratch = Scratch::new();
    let src = scratch.join("src");
    Spec::new()
        .file("src/f", b"x")
        .fifo("src/pipe")
        .create(scratch.path());
    let repo = scratch.join("repo");
    init_repo(&repo, &SMALL_CHUNKS);
    run(cairn_at(&repo).arg("snapshot").arg(&src)).ok();
    let file = scratch.join("a.zip");
    let out = run(cairn_at(&repo).args(["export", "latest", "-o"]).arg(&file));
    out.ok();
    assert!(
        out.stderr.contains(&format!(
            "warning: {} left out: zip cannot hold a fifo",
            rel(&src.join("pipe"))
        )),
        "{}",
        out.stderr
    );
    let into = scratch.join("x");
    zip_extract(&file, &into);
    assert_same_secs(&src, &restored_path(&into, &src), &["pipe"]);

    // A name that is not UTF-8: tar keeps it byte for byte, zip refuses it.
    Spec::new()
        .file(b"src/caf\xe9", b"latin-1 name")
        .create(scratch.path());
    run(cairn_at(&repo).arg("snapshot").arg(&src)).ok();
    let tar = scratch.join("b.tar");
    run(cairn_at(&repo).args(["export", "latest", "-o"]).arg(&tar)).ok();
    let into = scratch.join("y");
    tar_extract(&tar, &into);
    assert_same_secs(&src, &restored_path(&into, &src), &[]);

    let zip = scratch.join("b.zip");
    let out = run(cairn_at(&repo).args(["export", "latest", "-o"]).arg(&zip));
    out.expect_code(2);
    assert!(
        out.stderr.contains(&format!("{}/caf\\xe9", rel(&src)))
            && out.stderr.contains("UTF-8")
            && out.stderr.contains("--format tar"),
        "{}",
        out.stderr
    );
    assert!(!zip.exists());
    assert_eq!(leftovers(&scratch), Vec::<String>::new());
}

/// Temporary files export left in the scratch directory.
fn leftovers(scratch: &Scratch) -> Vec<String> {
    fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_corrupt_chunk_fails_naming_the_file_and_leaves_no_archive() {
    let scratch = Scratch::new();
    let src = scratch.join("src");
    Spec::new()
        .file("src/big.bin", pseudo_random(3, 200_000))
        .create(scratch.path());
    let repo = scratch.join("repo");
    init_repo(&repo, &SMALL_CHUNKS);
    run(cairn_at(&repo).arg("snapshot").arg(&src)).ok();
    // Flip a byte in the middle of the only pack: inside some chunk of big.bin.
    let pack = fs::read_dir(repo.join("objects"))
        .unwrap()
        .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    fs::set_permissions(&pack, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&pack, bytes).unwrap();

    for name in ["a.tar", "a.zip", "a.tar.zst"] {
        let file = scratch.join(name);
        let out = run(cairn_at(&repo).args(["export", "latest", "-o"]).arg(&file));
        out.expect_code(1);
        assert!(
            out.stderr.contains(&rel(&src.join("big.bin"))),
            "{name}: {}",
            out.stderr
        );
        assert!(!file.exists(), "{name} was left behind");
    }
    // An existing file of that name is left as it was.
    let old = scratch.join("old.tar");
    fs::write(&old, b"the previous archive").unwrap();
    run(cairn_at(&repo).args(["export", "latest", "-o"]).arg(&old)).expect_code(1);
    assert_eq!(fs::read(&old).unwrap(), b"the previous archive");
    assert_eq!(leftovers(&scratch), Vec::<String>::new());

    // The library says it is corruption.
    let r = Repository::open(&repo, LockMode::Shared, &|| {}).unwrap();
    let (_, snap) = r.resolve("latest").unwrap();
    let err = export::export(
        &r,
        snap.tree,
        &ExportOptions::new(Format::Tar),
        std::io::sink(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{}", chain(&err));
}

#[test]
fn usage_errors_and_format_choice() {
    let f = fixture();
    // No snapshot of that name.
    run(cairn_at(&f.repo)
        .args(["export", "feed", "-o"])
        .arg(f.scratch.join("a.tar")))
    .expect_code(2);
    // Compressed tar formats we do not write are named, not silently tar'd.
    let out = run(cairn_at(&f.repo)
        .args(["export", "latest", "-o"])
        .arg(f.scratch.join("a.tgz")));
    out.expect_code(2);
    assert!(out.stderr.contains(".tgz"), "{}", out.stderr);
    // --format wins over the extension.
    let file = f.scratch.join("really-a-zip.tar");
    run(cairn_at(&f.repo)
        .args(["export", "latest", "--format", "zip", "-o"])
        .arg(&file))
    .ok();
    assert_eq!(&fs::read(&file).unwrap()[..4], b"PK\x03\x04");
    // `-o -` is standard output.
    let out = run(cairn_at(&f.repo).args(["export", "latest", "-o", "-", "-q"]));
    out.ok();
    assert_eq!(out.stderr, "");
    assert!(out.stdout.len() > 300_000);
}

#[test]
fn refuses_to_write_to_a_terminal() {
    // `script` gives the command a pseudo-terminal as standard output.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let f = fixture();
    let cmd = format!(
        "{} --repo '{}' export latest",
        env!("CARGO_BIN_EXE_cairn"),
        f.repo.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("refusing to write a binary archive to a terminal"),
        "{text}"
    );
}
