//! Deduplication and change detection: what a second snapshot reads and adds.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use cairn::archiver::SnapshotOptions;
use cairn::model::{Entry, EntryKind, Snapshot};
use cairn::repo::Located;
use cairn::restore::{self, RestoreOptions};
use cairn::{ChunkId, InitOptions, Repository};

use crate::support::*;

/// Size of the repository on disk: (pack files, catalog file).
fn repo_size(repo: &Path) -> (u64, u64) {
    (
        du(&repo.join("objects")),
        fs::metadata(repo.join("catalog.redb")).unwrap().len(),
    )
}

#[test]
fn an_unchanged_tree_of_10000_files_reads_nothing_and_adds_almost_nothing() {
    let s = Scratch::new();
    let src = s.join("src");
    for d in 0..8 {
        let dir = src.join(format!("dir-{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..1250 {
            let body = format!("directory {d}, file {f}: {}\n", "some text ".repeat(f % 20));
            fs::write(dir.join(format!("file-{f:05}.txt")), body).unwrap();
        }
    }
    let repo_path = s.join("repo");
    let repo = init_repo(&repo_path, &InitOptions::default());
    let first = take_snapshot(&repo, &[&src]);
    assert_eq!(first.snapshot.summary.files_new, 10_000);
    let (objects0, catalog0) = repo_size(&repo_path);

    let second = take_snapshot(&repo, &[&src]);
    let m = second.snapshot.summary;
    assert_eq!(second.snapshot.parent, Some(first.id));
    assert_eq!(m.bytes_read, 0, "{m:?}");
    assert_eq!(m.files_unchanged, 10_000, "{m:?}");
    assert_eq!((m.files_new, m.files_changed), (0, 0), "{m:?}");
    assert_eq!(m.bytes_total, first.snapshot.summary.bytes_total);

    // What the second snapshot adds: the snapshot record and the tree nodes
    // on the path from `/` to the source (their parents' metadata may have
    // changed meanwhile, e.g. /tmp's mtime); the source's own tree is reused.
    let (objects1, catalog1) = repo_size(&repo_path);
    let total0 = objects0 + catalog0;
    let added_objects = objects1 - objects0;
    eprintln!(
        "10k unchanged: objects {objects0} -> {objects1}, catalog {catalog0} -> {catalog1}, bytes_added {}, blobs_added {}",
        m.bytes_added, m.blobs_added
    );
    // Pack framing (header, index, trailer) comes on top of the blob bytes.
    assert!(m.bytes_added <= added_objects, "{m:?}");
    assert!(
        added_objects * 100 < total0,
        "packs grew by {added_objects} bytes of {total0}"
    );
    // redb grows its file by whole regions, so its growth is noisy; counted
    // together with the packs it must still stay under 1% of the repository.
    let added = added_objects + catalog1.saturating_sub(catalog0);
    assert!(
        added * 100 < total0,
        "repository grew by {added} bytes ({added_objects} in packs, catalog {catalog0} -> {catalog1}) of {total0}"
    );
}

/// The chunk list of the file at `path` in `snap`.
fn chunks_of(repo: &Repository, snap: &Snapshot, path: &Path) -> Vec<ChunkId> {
    match repo.locate(snap, path).unwrap() {
        Located::Entry(Entry {
            kind: EntryKind::File { chunks, .. },
            ..
        }) => chunks,
        other => panic!("{} is not a file: {other:?}", path.display()),
    }
}

#[test]
fn editing_a_few_bytes_of_a_100_mb_file_adds_a_few_chunks() {
    const SIZE: u64 = 100_000_000;
    let s = Scratch::new();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let big = src.join("big.bin");
    write_pseudo_random(&big, 42, SIZE);
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let first = take_snapshot(&repo, &[&src]);
    assert_eq!(first.snapshot.summary.bytes_read, SIZE);

    // Overwrite 16 bytes in the middle, in place.
    let f = fs::OpenOptions::new().write(true).open(&big).unwrap();
    f.write_all_at(b"sixteen bytes!!!", SIZE / 2 + 12_345)
        .unwrap();
    drop(f);
    let edited = hash_file(&big);

    let second = take_snapshot(&repo, &[&src]);
    let m = second.snapshot.summary;
    assert_eq!(m.files_changed, 1, "{m:?}");
    let old: HashSet<ChunkId> = chunks_of(&repo, &first.snapshot, &big)
        .into_iter()
        .collect();
    let new_chunks = chunks_of(&repo, &second.snapshot, &big)
        .into_iter()
        .filter(|c| !old.contains(c))
        .count() as u64;
    assert!((1..=3).contains(&new_chunks), "{new_chunks} new chunks");
    // New blobs: those chunks, one tree per directory from `/` to the
    // source (`/`, tmp, scratch, src: 4 with the default temp dir), and the
    // snapshot record; with /tmp that is at most 8.
    let trees = src.components().count() as u64;
    assert!(
        m.blobs_added <= new_chunks + trees + 1,
        "{} blobs added ({new_chunks} new chunks, {trees} trees on the path)",
        m.blobs_added
    );
    assert!(m.bytes_added < 1_000_000, "{} bytes added", m.bytes_added);
    eprintln!(
        "100 MB edit: {new_chunks} new chunks, {} blobs, {} bytes added",
        m.blobs_added, m.bytes_added
    );

    let out = s.join("out");
    let summary = restore::restore(
        &repo,
        second.snapshot.tree,
        &RestoreOptions {
            target: out.clone(),
            includes: vec![big.clone()],
            overwrite: false,
            owner: false,
        },
    )
    .unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    let restored = restored_path(&out, &big);
    assert_eq!(fs::metadata(&restored).unwrap().len(), SIZE);
    assert_eq!(hash_file(&restored), edited);
}

// ---------------------------------------------------------------------------
// Change detection: size, mtime, ctime, inode
// ---------------------------------------------------------------------------

struct Fixture {
    s: Scratch,
    src: std::path::PathBuf,
    repo: Repository,
}

fn fixture() -> Fixture {
    let s = Scratch::new();
    let src = s.join("src");
    Spec::new()
        .file("src/a.txt", b"alpha alpha")
        .mtime(1_700_000_000_000_000_000)
        .file("src/b.txt", b"bravo")
        .file("src/sub/c.txt", b"charlie")
        .create(s.path());
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let first = take_snapshot(&repo, &[&src]);
    assert_eq!(first.snapshot.summary.files_new, 3);
    Fixture { s, src, repo }
}

/// The content of `path` in `snap`, through the library.
fn content(repo: &Repository, snap: &Snapshot, path: &Path) -> Vec<u8> {
    let Located::Entry(e) = repo.locate(snap, path).unwrap() else {
        panic!("root");
    };
    let mut out = Vec::new();
    repo.write_file(&e, &mut out).unwrap();
    out
}

/// Waits until `path`'s ctime differs from `before` (the kernel's clock for
/// ctime is coarse), touching the inode's status again if needed.
fn ensure_ctime_moved(path: &Path, before: i64) {
    loop {
        let md = fs::metadata(path).unwrap();
        if md.ctime() * 1_000_000_000 + md.ctime_nsec() != before {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        fs::set_permissions(path, fs::Permissions::from_mode(md.mode() & 0o7777)).unwrap();
    }
}

fn ctime_ns(path: &Path) -> i64 {
    let md = fs::metadata(path).unwrap();
    md.ctime() * 1_000_000_000 + md.ctime_nsec()
}

#[test]
fn an_identical_second_snapshot_reuses_every_file() {
    let f = fixture();
    let second = take_snapshot(&f.repo, &[&f.src]);
    let m = second.snapshot.summary;
    assert_eq!(
        (m.files_new, m.files_changed, m.files_unchanged),
        (0, 0, 3),
        "{m:?}"
    );
    assert_eq!(m.bytes_read, 0);
    let first = &f.repo.snapshots().unwrap()[0].1;
    assert_eq!(
        chunks_of(&f.repo, first, &f.src.join("a.txt")),
        chunks_of(&f.repo, &second.snapshot, &f.src.join("a.txt"))
    );
}

#[test]
fn a_new_mtime_makes_a_file_read_again() {
    let f = fixture();
    let a = f.src.join("a.txt");
    set_mtime(&a, 1_700_000_000_000_000_001);
    let second = take_snapshot(&f.repo, &[&f.src]);
    let m = second.snapshot.summary;
    assert_eq!(
        (m.files_new, m.files_changed, m.files_unchanged),
        (0, 1, 2),
        "{m:?}"
    );
    assert_eq!(m.bytes_read, 11);
}

#[test]
fn a_new_size_with_the_old_mtime_makes_a_file_read_again() {
    let f = fixture();
    let a = f.src.join("a.txt");
    fs::write(&a, b"alpha alpha, longer now").unwrap();
    set_mtime(&a, 1_700_000_000_000_000_000);
    let second = take_snapshot(&f.repo, &[&f.src]);
    let m = second.snapshot.summary;
    assert_eq!((m.files_changed, m.files_unchanged), (1, 2), "{m:?}");
    assert_eq!(
        content(&f.repo, &second.snapshot, &a),
        b"alpha alpha, longer now"
    );
}

#[test]
fn new_content_of_the_same_size_and_mtime_is_caught_by_ctime() {
    let f = fixture();
    let a = f.src.join("a.txt");
    let before = ctime_ns(&a);
    fs::write(&a, b"ALPHA ALPHA").unwrap();
    set_mtime(&a, 1_700_000_000_000_000_000);
    ensure_ctime_moved(&a, before);
    let second = take_snapshot(&f.repo, &[&f.src]);
    let m = second.snapshot.summary;
    assert_eq!((m.files_changed, m.files_unchanged), (1, 2), "{m:?}");
    assert_eq!(content(&f.repo, &second.snapshot, &a), b"ALPHA ALPHA");
}

#[test]
fn a_replaced_file_with_the_same_size_and_mtime_is_read_again() {
    let f = fixture();
    let a = f.src.join("a.txt");
    let tmp = f.s.join("replacement");
    fs::write(&tmp, b"ALPHA alpha").unwrap();
    set_mtime(&tmp, 1_700_000_000_000_000_000);
    let old_inode = fs::metadata(&a).unwrap().ino();
    fs::rename(&tmp, &a).unwrap();
    assert_ne!(fs::metadata(&a).unwrap().ino(), old_inode);
    let second = take_snapshot(&f.repo, &[&f.src]);
    assert_eq!(second.snapshot.summary.files_changed, 1);
    assert_eq!(content(&f.repo, &second.snapshot, &a), b"ALPHA alpha");
}

#[test]
fn force_read_reads_every_file_again() {
    let f = fixture();
    let mut opts = SnapshotOptions::new(vec![f.src.clone()]);
    opts.force_read = true;
    let second = take_snapshot_with(&f.repo, opts);
    let m = second.snapshot.summary;
    assert_eq!((m.files_changed, m.files_unchanged), (3, 0), "{m:?}");
    assert_eq!(m.bytes_read, 11 + 5 + 7);
    // Same content: nothing new but the snapshot record (and path trees).
    assert!(
        m.blobs_added <= f.src.components().count() as u64 + 1,
        "{m:?}"
    );
}

#[test]
fn many_small_files_share_frames_and_restore_exactly() {
    let s = Scratch::new();
    let src = s.join("src");
    let mut spec = Spec::new();
    let mut contents = HashSet::new();
    for i in 0..300u64 {
        let text = pseudo_text(i, 200 + (i as usize * 37) % 3800);
        contents.insert(cairn::ObjectId::of(&text));
        spec = spec.file(format!("src/d{}/f{i}.txt", i % 7), text);
    }
    spec.create(s.path());
    let repo_path = s.join("repo");
    let repo = init_repo(&repo_path, &InitOptions::default());
    take_snapshot(&repo, &[&src]);

    // Every file is one chunk; they share a few compressed frames.
    let mut blobs = 0usize;
    let mut frames = HashSet::new();
    let mut chunks_seen = HashSet::new();
    for (pack, _) in repo.store().list_packs().unwrap() {
        for e in repo.store().read_footer(&pack).unwrap() {
            blobs += 1;
            frames.insert((pack, e.offset));
            if e.kind == cairn::store::BlobKind::Chunk {
                chunks_seen.insert(e.id);
            }
        }
    }
    assert_eq!(chunks_seen, contents, "each file is stored as one chunk");
    assert!(
        frames.len() * 20 < blobs,
        "{} frames for {blobs} blobs: small files should share frames",
        frames.len()
    );
    drop(repo);
    assert_eq!(restore_every_snapshot(&repo_path, s.path()), 1);
}
