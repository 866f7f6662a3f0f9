//! Live SQLite databases are stored as a consistent copy (the backup API),
//! without their `-wal`/`-shm`/`-journal`; `--no-sqlite-backup` stores raw
//! bytes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cairn::archiver::{SnapshotOptions, WarningKind};
use cairn::{InitOptions, Repository};
use rusqlite::Connection;

use crate::support::*;

const ACCOUNTS: i64 = 20;
const START_BALANCE: i64 = 1000;

/// A bank: accounts whose balances always sum to the same total, a log row
/// per transfer, and a counter of transfers, all changed in one transaction.
fn create_bank(path: &Path, journal_mode: &str) -> Connection {
    let c = Connection::open(path).unwrap();
    let mode: String = c
        .query_row(&format!("PRAGMA journal_mode={journal_mode}"), [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(mode.to_lowercase(), journal_mode.to_lowercase());
    c.execute_batch(
        "CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE log(id INTEGER PRIMARY KEY, src INTEGER, dst INTEGER,
                          amount INTEGER, pad BLOB);
         CREATE TABLE counter(n INTEGER NOT NULL);
         INSERT INTO counter VALUES (0);",
    )
    .unwrap();
    for id in 0..ACCOUNTS {
        c.execute("INSERT INTO accounts VALUES (?1, ?2)", (id, START_BALANCE))
            .unwrap();
    }
    c
}

/// One transfer in one transaction.
fn transfer(c: &mut Connection, i: i64) {
    let tx = c.transaction().unwrap();
    let (src, dst, amount) = (i % ACCOUNTS, (i * 7 + 3) % ACCOUNTS, i % 50 + 1);
    tx.execute(
        "UPDATE accounts SET balance = balance - ?2 WHERE id = ?1",
        (src, amount),
    )
    .unwrap();
    tx.execute(
        "UPDATE accounts SET balance = balance + ?2 WHERE id = ?1",
        (dst, amount),
    )
    .unwrap();
    tx.execute(
        "INSERT INTO log(src, dst, amount, pad) VALUES (?1, ?2, ?3, randomblob(300))",
        (src, dst, amount),
    )
    .unwrap();
    tx.execute("UPDATE counter SET n = n + 1", []).unwrap();
    tx.commit().unwrap();
}

fn transfers(c: &Connection) -> i64 {
    c.query_row("SELECT n FROM counter", [], |r| r.get(0))
        .unwrap()
}

/// Runs transfers in a loop until `stop`; returns how many committed.
fn start_writer(path: PathBuf, stop: Arc<AtomicBool>) -> JoinHandle<i64> {
    std::thread::spawn(move || {
        let mut c = Connection::open(&path).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        // No fsync per commit: faster transfers, same locking.
        c.execute_batch("PRAGMA synchronous=OFF").unwrap();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            transfer(&mut c, i);
            i += 1;
            // Leaves a gap for a rollback-journal reader to take its lock.
            std::thread::sleep(Duration::from_millis(1));
        }
        i
    })
}

/// Checks a restored copy; returns its number of transfers.
fn check_bank(path: &Path) -> i64 {
    let c = Connection::open(path).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "{}", path.display());
    let sum: i64 = c
        .query_row("SELECT sum(balance) FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, ACCOUNTS * START_BALANCE, "money was created or lost");
    let logged: i64 = c
        .query_row("SELECT count(*) FROM log WHERE src >= 0", [], |r| r.get(0))
        .unwrap();
    let n = transfers(&c);
    assert_eq!(logged, n, "log and counter are from one moment");
    n
}

fn siblings(db: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_os_string();
            p.push(s);
            PathBuf::from(p)
        })
        .collect()
}

/// Snapshots a database under a running writer, then checks every restore.
fn snapshots_of_a_busy_database_are_consistent(journal_mode: &str) {
    let s = Scratch::new();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let db = src.join("bank.db");
    let bank = create_bank(&db, journal_mode);
    // A few MB of history, so that copying the file takes a while and a
    // byte-by-byte read would overlap commits.
    bank.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO log(src, dst, amount, pad) SELECT -1, -1, 0, randomblob(2000) FROM n;",
    )
    .unwrap();
    drop(bank);
    fs::write(src.join("notes.txt"), b"beside the database").unwrap();
    let repo = init_repo(&s.join("repo"), &InitOptions::default());

    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(db.clone(), Arc::clone(&stop));
    let watcher = Connection::open(&db).unwrap();
    watcher.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut ids = Vec::new();
    for round in 1..=4 {
        // Let some transfers commit between snapshots.
        while transfers(&watcher) < round * 10 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let r = take_snapshot(&repo, &[&src]);
        let fallbacks: Vec<_> = r
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::SqliteFallback)
            .collect();
        assert!(fallbacks.is_empty(), "backup fell back: {fallbacks:?}");
        ids.push(r);
    }
    stop.store(true, Ordering::Relaxed);
    let committed = writer.join().unwrap();
    drop(watcher);
    assert!(committed >= 40);

    let mut previous = 0;
    for (i, r) in ids.iter().enumerate() {
        let target = s.join(format!("restore-{i}"));
        restore_all(&repo, r.snapshot.tree, &target);
        let copy = restored_path(&target, &db);
        // Before opening the copy: SQLite would fold a -wal into it.
        for sib in siblings(&copy) {
            assert!(!sib.exists(), "{} must not be restored", sib.display());
        }
        let n = check_bank(&copy);
        assert!(n >= previous, "snapshots go forward in time");
        previous = n;
        assert_eq!(
            fs::read(restored_path(&target, &src.join("notes.txt"))).unwrap(),
            b"beside the database"
        );
    }
    assert!(previous > 0, "the last snapshot saw committed transfers");
    assert_eq!(
        fs::read_dir(repo.root().join("tmp")).unwrap().count(),
        0,
        "the backup copies are removed"
    );
}

#[test]
fn a_wal_database_under_a_writer_is_stored_consistently() {
    snapshots_of_a_busy_database_are_consistent("wal");
}

#[test]
fn a_rollback_journal_database_under_a_writer_is_stored_consistently() {
    snapshots_of_a_busy_database_are_consistent("delete");
}

#[test]
fn a_wal_database_changed_only_in_its_wal_is_read_again() {
    let s = Scratch::new();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let db = src.join("app.db");
    let mut c = create_bank(&db, "wal");
    transfer(&mut c, 0);
    // Everything in the main file, the -wal empty but present (open).
    c.execute_batch("PRAGMA wal_autocheckpoint=0; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let first = take_snapshot(&repo, &[&src]);
    let main_before = fs::metadata(&db).unwrap();
    // A commit that lands in the -wal only: the main file's size, mtime,
    // ctime and inode all stay the same.
    c.execute_batch(
        "UPDATE accounts SET balance = balance - 5 WHERE id = 0;
         UPDATE accounts SET balance = balance + 5 WHERE id = 1;",
    )
    .unwrap();
    let main_after = fs::metadata(&db).unwrap();
    assert_eq!(main_before.len(), main_after.len());
    assert_eq!(
        main_before.modified().unwrap(),
        main_after.modified().unwrap()
    );
    let second = take_snapshot(&repo, &[&src]);
    assert_eq!(second.snapshot.summary.files_unchanged, 0, "not reused");
    for (r, expected) in [(&first, START_BALANCE), (&second, START_BALANCE + 5)] {
        let target = s.join(format!("out-{}", r.id.short()));
        restore_all(&repo, r.snapshot.tree, &target);
        let copy = Connection::open(restored_path(&target, &db)).unwrap();
        let balance: i64 = copy
            .query_row("SELECT balance FROM accounts WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        // Transfer 0 moved 1 from account 0 to account 3; account 1 untouched.
        assert_eq!(balance, expected);
    }
    drop(c);
}

#[test]
fn the_backup_leaves_the_source_files_untouched() {
    let s = Scratch::new();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    // A WAL database that nobody has open (no -wal), and a rollback one.
    drop(create_bank(&src.join("closed-wal.db"), "wal"));
    drop(create_bank(&src.join("rollback.db"), "delete"));
    // A WAL database held open, with commits only in its -wal.
    let open = src.join("open.db");
    let mut c = create_bank(&open, "wal");
    c.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    transfer(&mut c, 0);
    // A reader of a live WAL database sets read marks in its -shm, as every
    // SQLite reader does (the -shm is a shared-memory index, not data).
    let without_shm = |root: &Path| {
        let mut d = describe(root);
        assert!(d.remove(&b"open.db-shm"[..]).is_some());
        d
    };
    let before = without_shm(&src);
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let r = take_snapshot(&repo, &[&src]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // Same names, bytes and mtimes: nothing created, nothing written.
    assert_eq!(
        diff_descs(&before, &without_shm(&src)),
        Vec::<String>::new()
    );
    let target = s.join("out");
    restore_all(&repo, r.snapshot.tree, &target);
    for name in ["closed-wal.db", "rollback.db", "open.db"] {
        let copy = restored_path(&target, &src.join(name));
        let expected = i64::from(name == "open.db");
        assert_eq!(check_bank(&copy), expected, "{name}");
    }
    drop(c);
}

#[test]
fn no_sqlite_backup_stores_the_raw_files_byte_for_byte() {
    let s = Scratch::new();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let db = src.join("app.db");
    let mut c = create_bank(&db, "wal");
    c.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    transfer(&mut c, 0);
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let mut opts = SnapshotOptions::new(vec![src.clone()]);
    opts.sqlite_backup = false;
    let r = take_snapshot_with(&repo, opts);
    let target = s.join("out");
    restore_all(&repo, r.snapshot.tree, &target);
    for f in [db.clone(), siblings(&db)[0].clone()] {
        assert!(
            fs::read(restored_path(&target, &f)).unwrap() == fs::read(&f).unwrap(),
            "{} differs",
            f.display()
        );
    }
    drop(c);
}

#[test]
fn a_file_that_only_looks_like_a_database_is_stored_raw_with_a_warning() {
    let s = Scratch::new();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let fake = src.join("fake.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(pseudo_random(3, 10_000));
    fs::write(&fake, &bytes).unwrap();
    let repo = Repository::init(&s.join("repo"), &InitOptions::default()).unwrap();
    let r = take_snapshot(&repo, &[&src]);
    let w: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::SqliteFallback)
        .collect();
    assert_eq!(w.len(), 1, "{:?}", r.warnings);
    assert_eq!(w[0].path, fake);
    let target = s.join("out");
    restore_all(&repo, r.snapshot.tree, &target);
    assert_eq!(fs::read(restored_path(&target, &fake)).unwrap(), bytes);
    assert_eq!(
        fs::read_dir(&src).unwrap().count(),
        1,
        "no file created beside it"
    );
}

/// The chunk ids of `path` in snapshot `r`.
fn chunks_of(
    repo: &Repository,
    r: &cairn::archiver::SnapshotResult,
    path: &Path,
) -> Vec<cairn::ChunkId> {
    match repo.locate(&r.snapshot, path).unwrap() {
        cairn::repo::Located::Entry(e) => match e.kind {
            cairn::model::EntryKind::File { chunks, .. } => chunks,
            other => panic!("{} is not a file: {other:?}", path.display()),
        },
        cairn::repo::Located::Root(_) => panic!("not a file"),
    }
}

#[test]
fn a_database_is_chunked_on_page_boundaries_so_one_changed_row_stores_one_page() {
    let s = Scratch::new();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let db = src.join("app.db");
    let c = Connection::open(&db).unwrap();
    c.execute_batch(
        "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;
         CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT);",
    )
    .unwrap();
    for i in 0..3000 {
        c.execute(
            "INSERT INTO t VALUES (?1, ?2)",
            (i, format!("row {i} {}", "x".repeat(200))),
        )
        .unwrap();
    }
    let repo = init_repo(&s.join("repo"), &InitOptions::default());
    let first = take_snapshot(&repo, &[&src]);
    c.execute("UPDATE t SET body = 'changed' WHERE id = 1500", ())
        .unwrap();
    let second = take_snapshot(&repo, &[&src]);
    drop(c);

    let size = fs::metadata(&db).unwrap().len();
    let (a, b) = (
        chunks_of(&repo, &first, &db),
        chunks_of(&repo, &second, &db),
    );
    assert_eq!(b.len() as u64, size / 4096, "one chunk per 4 KiB page");
    let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    // The row's leaf page, and perhaps page 1 (its header holds the change
    // counter): content-defined chunks of 16 KiB would span several pages.
    assert_eq!(a.len(), b.len());
    assert!((1..=2).contains(&changed), "{changed} chunks changed");
    let target = s.join("out");
    restore_all(&repo, second.snapshot.tree, &target);
    // The backup copy differs from the live file in header counters only:
    // compare what a reader sees.
    let restored = Connection::open(restored_path(&target, &db)).unwrap();
    let (rows, body): (i64, String) = restored
        .query_row(
            "SELECT (SELECT count(*) FROM t), (SELECT body FROM t WHERE id = 1500)",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, body.as_str()), (3000, "changed"));
}
