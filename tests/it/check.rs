//! `cairn check` and `cairn repair`: each kind of damage (a flipped byte in
//! a pack, a truncated pack, a deleted pack, a damaged or deleted catalog)
//! is detected and named (pack id, snapshot, file path), and repair
//! recovers what the packs still hold.

use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use cairn::store::BlobKind;
use cairn::store::pack::parse_footer;
use serde_json::Value;

use crate::support::*;

/// A repository with two snapshots of `src`, each written to its own pack(s):
/// A holds `a/big.bin` and `b/other.txt`; B adds `c/new.bin`.
struct Fixture {
    scratch: Scratch,
    repo: PathBuf,
    src: PathBuf,
    /// Snapshot ids (full hex), oldest first.
    a: String,
    b: String,
    /// Packs added by each snapshot.
    packs_a: Vec<String>,
    packs_b: Vec<String>,
}

fn packs(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in fs::read_dir(repo.join("objects")).unwrap() {
        for f in fs::read_dir(sub.unwrap().path()).unwrap() {
            out.push(f.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fn pack_path(repo: &Path, id: &str) -> PathBuf {
    repo.join("objects").join(&id[..2]).join(id)
}

fn snap(repo: &Path, src: &Path) -> String {
    let out = run(cairn_at(repo).arg("snapshot").arg(src).arg("--json"));
    out.ok();
    out.json()["id"].as_str().unwrap().to_string()
}

fn fixture() -> Fixture {
    let scratch = Scratch::new();
    let src = scratch.join("src");
    Spec::new()
        .file("src/a/big.bin", pseudo_random(1, 120_000))
        .file("src/b/other.txt", b"other file, stays intact\n")
        .create(scratch.path());
    let repo = scratch.join("repo");
    init_repo(&repo, &SMALL_CHUNKS);
    let a = snap(&repo, &src);
    let packs_a = packs(&repo);
    fs::create_dir(src.join("c")).unwrap();
    fs::write(src.join("c/new.bin"), pseudo_random(2, 50_000)).unwrap();
    let b = snap(&repo, &src);
    let packs_b: Vec<String> = packs(&repo)
        .into_iter()
        .filter(|p| !packs_a.contains(p))
        .collect();
    assert_eq!(packs_a.len(), 1, "fixture expects one pack per snapshot");
    assert_eq!(packs_b.len(), 1, "fixture expects one pack per snapshot");
    Fixture {
        scratch,
        repo,
        src,
        a,
        b,
        packs_a,
        packs_b,
    }
}

fn check_json(repo: &Path, extra: &[&str]) -> (i32, Value) {
    let out = run(cairn_at(repo).arg("check").arg("--json").args(extra));
    assert!(!out.stderr.contains("panicked"), "panic: {}", out.stderr);
    (out.code, out.json())
}

/// `(short snapshot id, [damaged paths])` from a check report, oldest first.
fn damaged(report: &Value) -> Vec<(String, Vec<String>)> {
    report["damaged_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["short_id"].as_str().unwrap().to_string(),
                d["paths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["path"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// Kinds of the problems naming `pack`.
fn problems_of(report: &Value, pack: &str) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["pack"].as_str() == Some(pack))
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// Restores `snapshot` into a new directory; returns where `src` landed.
fn restore_cli(f: &Fixture, snapshot: &str, name: &str) -> PathBuf {
    let target = f.scratch.join(name);
    run(cairn_at(&f.repo)
        .args(["restore", snapshot, "--target"])
        .arg(&target))
    .ok();
    restored_path(&target, &f.src)
}

fn listed_ids(repo: &Path) -> Vec<String> {
    let out = run(cairn_at(repo).args(["list", "--json"]));
    out.ok();
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_healthy_repository_checks_clean_with_and_without_reading_data() {
    let f = fixture();
    for extra in [
        &[][..],
        &["--read-data"],
        &["--read-data-subset", "1/2"],
        &["--read-data-subset", "2/2"],
        &["--read-data-subset", "100%"],
    ] {
        let (code, r) = check_json(&f.repo, extra);
        assert_eq!(code, 0, "{extra:?}: {r:#}");
        assert_eq!(r["ok"], true);
        assert_eq!(r["snapshots"], 2);
        assert_eq!(r["packs_listed"], 2);
    }
    let (_, all) = check_json(&f.repo, &["--read-data"]);
    assert_eq!(all["packs_read"], 2);
    // The n/m subsets partition the packs.
    let (_, one) = check_json(&f.repo, &["--read-data-subset", "1/2"]);
    let (_, two) = check_json(&f.repo, &["--read-data-subset", "2/2"]);
    assert_eq!(
        one["packs_read"].as_u64().unwrap() + two["packs_read"].as_u64().unwrap(),
        2
    );
    let text = run(cairn_at(&f.repo).arg("check"));
    text.ok();
    assert!(text.out().contains("no damage found"), "{}", text.out());
    let bad = run(cairn_at(&f.repo).args(["check", "--read-data-subset", "3/2"]));
    bad.expect_code(2);
}

#[test]
fn a_flipped_byte_in_a_pack_is_found_by_read_data_and_named() {
    let f = fixture();
    // Flip one byte in the middle of a chunk frame of the first pack; the
    // only chunks in it belong to a/big.bin and b/other.txt, and other.txt
    // is one small chunk: pick the largest chunk, which is big.bin's.
    let pack = &f.packs_a[0];
    let path = pack_path(&f.repo, pack);
    let mut bytes = fs::read(&path).unwrap();
    let entry = parse_footer(&bytes)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == BlobKind::Chunk)
        .max_by_key(|e| e.length)
        .unwrap();
    bytes[(entry.offset + u64::from(entry.length) / 2) as usize] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let (code, r) = check_json(&f.repo, &["--read-data"]);
    assert_eq!(code, 1, "{r:#}");
    let kinds = problems_of(&r, pack);
    assert!(kinds.contains(&"pack_hash".to_string()), "{r:#}");
    assert!(kinds.contains(&"blob_damaged".to_string()), "{r:#}");
    let big = p(&f.src.join("a/big.bin"));
    assert_eq!(
        damaged(&r),
        vec![
            (f.a[..8].to_string(), vec![big.clone()]),
            (f.b[..8].to_string(), vec![big.clone()]),
        ]
    );
    // The human report names the pack, both snapshots and the path too.
    let text = run(cairn_at(&f.repo).args(["check", "--read-data"]));
    text.expect_code(1);
    for needle in [pack.as_str(), &f.a[..8], &f.b[..8], big.as_str()] {
        assert!(text.out().contains(needle), "{needle} in:\n{}", text.out());
    }
}

#[test]
fn a_truncated_pack_is_found_without_reading_data() {
    let f = fixture();
    let pack = &f.packs_b[0];
    let path = pack_path(&f.repo, pack);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let (code, r) = check_json(&f.repo, &[]);
    assert_eq!(code, 1, "{r:#}");
    let kinds = problems_of(&r, pack);
    assert!(kinds.contains(&"pack_size".to_string()), "{r:#}");
    assert!(kinds.contains(&"pack_footer".to_string()), "{r:#}");
    assert_eq!(
        damaged(&r),
        vec![(f.b[..8].to_string(), vec![p(&f.src.join("c/new.bin"))])]
    );
}

#[test]
fn a_deleted_pack_is_found_and_repair_reports_exactly_what_is_lost() {
    let f = fixture();
    let before = restore_cli(&f, &f.a, "before");
    let pack = &f.packs_b[0];
    fs::remove_file(pack_path(&f.repo, pack)).unwrap();
    let new_bin = p(&f.src.join("c/new.bin"));
    let expected = vec![(f.b[..8].to_string(), vec![new_bin.clone()])];

    let (code, r) = check_json(&f.repo, &[]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(problems_of(&r, pack), vec!["missing_pack".to_string()]);
    assert_eq!(damaged(&r), expected);

    let out = run(cairn_at(&f.repo).args(["repair", "--json"]));
    out.expect_code(1);
    let rep = out.json();
    assert_eq!(rep["complete"], false);
    assert_eq!(rep["catalog_error"], Value::Null, "{rep:#}");
    assert_eq!(damaged(&rep["check"]), expected);

    // B's trees and record lived only in the lost pack: repair stored them again.
    assert!(rep["copies_restored"].as_u64().unwrap() > 0, "{rep:#}");

    let (code, r) = check_json(&f.repo, &[]);
    assert_eq!(code, 1);
    assert_eq!(damaged(&r), expected);
    let kinds: Vec<&str> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.is_empty(), "only the lost file remains: {r:#}");
    // Both snapshots are still listed; A restores exactly as before.
    assert_eq!(listed_ids(&f.repo), vec![f.a.clone(), f.b.clone()]);
    let after = restore_cli(&f, &f.a, "after");
    assert_same_tree(&before, &after);
    // B restores everything but the lost file.
    let target = f.scratch.join("after-b");
    let out = run(cairn_at(&f.repo)
        .args(["restore", &f.b, "--target"])
        .arg(&target));
    out.expect_code(1);
    assert!(out.stderr.contains("new.bin"), "{}", out.stderr);
    let b_dir = restored_path(&target, &f.src);
    assert_eq!(
        fs::read(b_dir.join("a/big.bin")).unwrap(),
        pseudo_random(1, 120_000)
    );

    // The copies make the catalog rebuildable again: losing it now loses
    // nothing more.
    fs::remove_file(f.repo.join("catalog.redb")).unwrap();
    let out = run(cairn_at(&f.repo).args(["repair", "--json"]));
    out.expect_code(1);
    assert_eq!(damaged(&out.json()["check"]), expected);
    assert_eq!(listed_ids(&f.repo), vec![f.a.clone(), f.b.clone()]);
}

/// Damages the catalog in one of several ways.
fn damage_catalog(repo: &Path, how: &str) {
    let path = repo.join("catalog.redb");
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    match how {
        "delete" => fs::remove_file(&path).unwrap(),
        "truncate" => {
            bytes.truncate(n / 2);
            fs::write(&path, &bytes).unwrap();
        }
        "overwrite" => {
            for b in &mut bytes[n / 4..3 * n / 4] {
                *b ^= 0x5a;
            }
            fs::write(&path, &bytes).unwrap();
        }
        _ => unreachable!(),
    }
}

#[test]
fn a_damaged_or_lost_catalog_is_found_and_repair_restores_every_snapshot() {
    let f = fixture();
    let before_a = restore_cli(&f, &f.a, "before-a");
    let before_b = restore_cli(&f, &f.b, "before-b");
    let pristine = f.scratch.join("pristine");
    fs::create_dir(&pristine).unwrap();
    fs::copy(f.repo.join("catalog.redb"), pristine.join("catalog.redb")).unwrap();
    for how in ["truncate", "overwrite", "delete"] {
        fs::copy(pristine.join("catalog.redb"), f.repo.join("catalog.redb")).unwrap();
        damage_catalog(&f.repo, how);

        let out = run(cairn_at(&f.repo).arg("check"));
        out.expect_code(1);
        assert!(out.out().contains("catalog.redb"), "{how}: {}", out.out());
        assert!(out.out().contains("cairn repair"), "{how}: {}", out.out());
        let (code, r) = check_json(&f.repo, &[]);
        assert_eq!(code, 1, "{how}");
        assert_eq!(r["catalog_ok"], false, "{how}");
        assert_eq!(r["problems"][0]["kind"], "catalog_damaged", "{how}");

        let out = run(cairn_at(&f.repo).args(["repair", "--json"]));
        out.ok();
        let rep = out.json();
        assert_ne!(rep["catalog_error"], Value::Null, "{how}");
        assert_eq!(rep["snapshots"], 2, "{how}");
        if how != "delete" {
            let kept = rep["damaged_catalog"].as_str().unwrap();
            assert!(Path::new(kept).is_file(), "{how}: {kept}");
            fs::remove_file(kept).unwrap();
        }
        let (code, r) = check_json(&f.repo, &["--read-data"]);
        assert_eq!(code, 0, "{how}: {r:#}");
        assert_eq!(listed_ids(&f.repo), vec![f.a.clone(), f.b.clone()], "{how}");
        let after_a = restore_cli(&f, &f.a, &format!("{how}-a"));
        let after_b = restore_cli(&f, &f.b, &format!("{how}-b"));
        assert_same_tree(&before_a, &after_a);
        assert_same_tree(&before_b, &after_b);
    }
    // Nothing is left behind in tmp/.
    assert_eq!(fs::read_dir(f.repo.join("tmp")).unwrap().count(), 0);
}

#[test]
fn repair_of_a_healthy_repository_changes_nothing_visible() {
    let f = fixture();
    let out = run(cairn_at(&f.repo).arg("repair"));
    out.ok();
    assert_eq!(listed_ids(&f.repo), vec![f.a.clone(), f.b.clone()]);
    let (code, r) = check_json(&f.repo, &["--read-data"]);
    assert_eq!(code, 0, "{r:#}");
    assert!(
        !fs::read_dir(&f.repo).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("damaged")),
        "a healthy catalog is not kept as damaged"
    );
}

#[test]
fn repair_with_read_data_unindexes_a_damaged_chunk_so_the_next_snapshot_heals_it() {
    let f = fixture();
    let before = restore_cli(&f, &f.a, "before");
    let pack = &f.packs_a[0];
    let path = pack_path(&f.repo, pack);
    let mut bytes = fs::read(&path).unwrap();
    let footer = parse_footer(&bytes).unwrap();
    // A chunk of big.bin (random, so in a frame stored raw: codec byte 0)
    // gets one byte flipped; only that blob is then damaged, whatever else
    // the frame holds.
    let big_chunks = small_chunk_ids(&fs::read(f.src.join("a/big.bin")).unwrap());
    let entry = footer
        .iter()
        .find(|e| big_chunks.contains(&e.id) && bytes[e.offset as usize] == 0 && e.raw_len > 8)
        .unwrap();
    // 5 bytes of frame header (codec, raw length), then the blob at `inner`.
    bytes[(entry.offset + 5 + u64::from(entry.inner) + 5) as usize] ^= 0x80;
    fs::write(&path, &bytes).unwrap();
    let in_frame = vec![entry.id.to_hex()];

    let out = run(cairn_at(&f.repo).args(["repair", "--read-data", "--json"]));
    out.expect_code(1);
    let rep = out.json();
    let mut damaged_blobs: Vec<String> = rep["damaged_blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["object"].as_str().unwrap().to_string())
        .collect();
    damaged_blobs.sort();
    assert_eq!(damaged_blobs, in_frame, "{rep:#}");
    let big = p(&f.src.join("a/big.bin"));
    // Now even a check without reading data sees the loss.
    let (code, r) = check_json(&f.repo, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        damaged(&r),
        vec![
            (f.a[..8].to_string(), vec![big.clone()]),
            (f.b[..8].to_string(), vec![big.clone()]),
        ]
    );
    // The file is unchanged on disk: the next snapshot that reads it
    // (`--force`, as its size and times are unchanged) stores the chunk
    // again, which heals the older snapshots too.
    run(cairn_at(&f.repo)
        .args(["snapshot", "--force", "-q"])
        .arg(&f.src))
    .ok();
    let (code, r) = check_json(&f.repo, &[]);
    assert_eq!(code, 0, "{r:#}");
    let (_, r) = check_json(&f.repo, &["--read-data"]);
    assert!(damaged(&r).is_empty(), "{r:#}");
    let after = restore_cli(&f, &f.a, "after");
    assert_same_tree(&before, &after);
}

#[test]
fn repair_waits_for_every_other_process_to_release_the_repository() {
    let f = fixture();
    let shared = cairn::Repository::open(&f.repo, cairn::LockMode::Shared, &|| {}).unwrap();
    let mut child = cairn_at(&f.repo)
        .arg("repair")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // Blocks until repair says it waits: it cannot take the lock while we
    // hold it shared.
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("waiting for another cairn process"), "{line}");
    assert_eq!(fs::read_dir(f.repo.join("tmp")).unwrap().count(), 0);
    drop(shared);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(listed_ids(&f.repo), vec![f.a.clone(), f.b.clone()]);
}

/// A repository holding one snapshot of 40 small text files, which share
/// compressed frames.
/// The ids of the chunks `data` is cut into in a `SMALL_CHUNKS` repository
/// (a file of 1,500 bytes may be one chunk or two).
fn small_chunk_ids(data: &[u8]) -> Vec<cairn::ObjectId> {
    let params = cairn::chunker::ChunkerParams::from_average(SMALL_CHUNKS.avg_chunk_size).unwrap();
    cairn::chunker::chunk_slice(data, &params)
        .into_iter()
        .map(|r| cairn::ObjectId::of(&data[r]))
        .collect()
}

fn small_files_fixture() -> (Scratch, PathBuf, PathBuf, String) {
    let scratch = Scratch::new();
    let mut spec = Spec::new();
    for i in 0..40u64 {
        spec = spec.file(format!("src/t/f{i}.txt"), pseudo_text(i, 1500));
    }
    spec.create(scratch.path());
    let src = scratch.join("src");
    let repo = scratch.join("repo");
    init_repo(&repo, &SMALL_CHUNKS);
    let id = snap(&repo, &src);
    (scratch, repo, src, id)
}

#[test]
fn a_flipped_byte_in_a_grouped_frame_names_exactly_the_damaged_files() {
    let (_s, repo, src, id) = small_files_fixture();
    let pack = packs(&repo).remove(0);
    let path = pack_path(&repo, &pack);
    let mut bytes = fs::read(&path).unwrap();
    let footer = parse_footer(&bytes).unwrap();
    // The compressed frame holding the most chunks.
    let frame = footer
        .chunk_by(|a, b| a.offset == b.offset)
        .filter(|f| bytes[f[0].offset as usize] == 1)
        .max_by_key(|f| f.iter().filter(|e| e.kind == BlobKind::Chunk).count())
        .unwrap();
    assert!(frame.len() > 5, "small files should share a frame");
    let (offset, length) = (frame[0].offset, frame[0].length);
    bytes[(offset + u64::from(length) / 2) as usize] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    // The blobs whose bytes the damage changed: every blob of the frame if
    // it no longer decodes, else those that no longer match their hash.
    let decoded = cairn::codec::decode(&bytes[offset as usize..][..length as usize]).ok();
    let hit: Vec<_> = frame
        .iter()
        .filter(|e| {
            decoded.as_deref().is_none_or(|d| {
                d.get(e.inner as usize..(e.inner + e.raw_len) as usize)
                    .is_none_or(|raw| cairn::ObjectId::of(raw) != e.id)
            })
        })
        .map(|e| e.id)
        .collect();
    // A file is damaged when any of its chunks is hit (a file may be cut
    // into more than one chunk).
    let r = cairn::Repository::open(&repo, cairn::LockMode::Shared, &|| {}).unwrap();
    let (_, snapshot) = r.resolve(&id).unwrap();
    let chunks_of = |f: &Path| match r.locate(&snapshot, f).unwrap() {
        cairn::repo::Located::Entry(cairn::model::Entry {
            kind: cairn::model::EntryKind::File { chunks, .. },
            ..
        }) => chunks.iter().map(|c| c.0).collect::<Vec<_>>(),
        _ => panic!("{} is not a file in the snapshot", f.display()),
    };
    let mut expected: Vec<String> = (0..40)
        .map(|i| src.join(format!("t/f{i}.txt")))
        .filter(|f| chunks_of(f).iter().any(|c| hit.contains(c)))
        .map(|f| p(&f))
        .collect();
    drop(r);
    expected.sort();
    assert!(!expected.is_empty(), "the flip should damage some file");

    let (code, r) = check_json(&repo, &["--read-data"]);
    assert_eq!(code, 1, "{r:#}");
    assert!(
        problems_of(&r, &pack).contains(&"blob_damaged".to_string()),
        "{r:#}"
    );
    let found = damaged(&r);
    assert_eq!(found.len(), 1, "{r:#}");
    assert_eq!(found[0].0, id[..8]);
    let mut paths = found[0].1.clone();
    paths.sort();
    assert_eq!(paths, expected);
}

#[test]
fn repair_rebuilds_grouped_locations_exactly() {
    let (s, repo, src, id) = small_files_fixture();
    let locations = || {
        let r = cairn::Repository::open(&repo, cairn::LockMode::Shared, &|| {}).unwrap();
        let reader = r.catalog().begin_read().unwrap();
        let mut all = Vec::new();
        reader
            .for_each_blob(|id, loc| {
                all.push((id, loc));
                Ok(())
            })
            .unwrap();
        all.sort_by_key(|(id, _)| *id);
        all
    };
    let before = locations();
    assert!(
        before.iter().any(|(_, l)| l.inner > 0),
        "some blob should sit inside a shared frame"
    );
    fs::remove_file(repo.join("catalog.redb")).unwrap();
    run(cairn_at(&repo).args(["repair", "-q"])).ok();
    assert_eq!(locations(), before);
    let (code, r) = check_json(&repo, &["--read-data"]);
    assert_eq!(code, 0, "{r:#}");
    let target = s.join("restored");
    run(cairn_at(&repo)
        .args(["restore", &id, "--target"])
        .arg(&target))
    .ok();
    assert_same_tree(&src, &restored_path(&target, &src));
}

#[test]
fn read_data_streams_a_large_pack_and_names_a_flip_in_its_middle() {
    // One pack of many 1 MiB frames; a flipped byte in a frame in the
    // middle is found, only the file it belongs to is named, and every
    // frame after it is still read and verified.
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("src/large.bin", pseudo_random(21, 6 << 20))
        .file("src/small.txt", b"a small file that stays intact\n")
        .create(s.path());
    let repo = s.join("repo");
    init_repo(&repo, &SMALL_CHUNKS);
    let id = snap(&repo, &src);
    let all = packs(&repo);
    assert_eq!(all.len(), 1, "expected one pack");
    let path = pack_path(&repo, &all[0]);
    let mut bytes = fs::read(&path).unwrap();
    let entries = parse_footer(&bytes).unwrap();
    let mut frames: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == BlobKind::Chunk)
        .map(|e| (e.offset, e.length))
        .collect();
    frames.dedup();
    assert!(frames.len() >= 5, "{} frames", frames.len());
    let (offset, length) = frames[frames.len() / 2];
    let in_frame = entries.iter().filter(|e| e.offset == offset).count() as u64;
    bytes[(offset + u64::from(length) / 2) as usize] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let (code, r) = check_json(&repo, &["--read-data"]);
    assert_eq!(code, 1, "{r:#}");
    let kinds = problems_of(&r, &all[0]);
    assert!(kinds.contains(&"pack_hash".to_string()), "{r:#}");
    // Only blobs of the damaged frame fail; every other blob, before and
    // after it in the pack, is read and verified.
    let bad = kinds.iter().filter(|k| *k == "blob_damaged").count() as u64;
    assert!((1..=in_frame).contains(&bad), "{r:#}");
    assert_eq!(
        r["blobs_verified"].as_u64().unwrap(),
        entries.len() as u64 - bad,
        "{r:#}"
    );
    assert_eq!(
        damaged(&r),
        vec![(id[..8].to_string(), vec![p(&src.join("large.bin"))])]
    );
}
