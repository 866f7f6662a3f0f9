//! Writes seed inputs for every fuzz target, built with the library itself
//! so they are valid (or, for the chunker, interesting) by construction.
//!
//! ```text
//! cd fuzz && cargo run --release --example gen_corpus [-- OUT_DIR]
//! ```
//!
//! OUT_DIR defaults to `fuzz/corpus`; each target gets `OUT_DIR/<target>/`
//! with files named `seed-*`. Output is deterministic: no clock, no
//! randomness, so the same library version writes the same bytes. Every seed
//! is checked against its decoder before it is written.

use std::fs;
use std::path::{Path, PathBuf};

use cairn::chunker::ChunkerParams;
use cairn::codec;
use cairn::config::{DEFAULT_AVG_CHUNK, DEFAULT_PACK_BYTES, DEFAULT_ZSTD_LEVEL, FORMAT_VERSION};
use cairn::model::{Entry, EntryKind, Meta, Snapshot, SnapshotSummary, Tree};
use cairn::store::PackStore;
use cairn::store::pack::{BlobKind, BlobLocation, PackEntry, parse_footer};
use cairn::{ChunkId, ObjectId, RepoConfig, SnapshotId, TreeId};
use cairn_fuzz::ChunkerInput;

type Seeds = Vec<(&'static str, Vec<u8>)>;
/// A pack's name and the blobs it holds.
type PackContents = (&'static str, Vec<(BlobKind, Vec<u8>)>);

fn main() {
    let out = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"),
        PathBuf::from,
    );
    let (pack_seeds, locations) = packs();
    let targets: Vec<(&str, Seeds)> = vec![
        ("codec_decode", codec_frames()),
        ("tree_decode", trees()),
        ("snapshot_decode", snapshots()),
        ("pack_footer", pack_seeds),
        ("blob_location", locations),
        ("config_parse", configs()),
        ("chunker", chunker_inputs()),
    ];
    for (target, seeds) in targets {
        let dir = out.join(target);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        for (name, bytes) in &seeds {
            let path = dir.join(format!("seed-{name}"));
            fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
}

/// Deterministic pseudo-random bytes (xorshift), incompressible for zstd.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn codec_frames() -> Seeds {
    let text = b"cairn keeps every snapshot; ".repeat(40);
    let seeds = vec![
        ("empty", codec::encode(b"", 3).expect("encode")),
        (
            "raw-noise",
            codec::encode(&noise(300, 1), 3).expect("encode"),
        ),
        ("zstd-text", codec::encode(&text, 3).expect("encode")),
        (
            "zstd-zeros",
            codec::encode(&[0u8; 4096], 19).expect("encode"),
        ),
    ];
    for (name, frame) in &seeds {
        codec::decode(frame).unwrap_or_else(|e| panic!("codec seed {name}: {e}"));
    }
    seeds
}

fn meta(mode: u32) -> Meta {
    Meta {
        mode,
        uid: 1000,
        gid: 100,
        mtime_ns: 1_700_000_000_123_456_789,
        ctime_ns: 1_700_000_001_000_000_000,
        inode: 424_242,
    }
}

fn entry(name: &[u8], kind: EntryKind, mode: u32) -> Entry {
    Entry {
        name: name.to_vec(),
        kind,
        meta: meta(mode),
    }
}

fn trees() -> Seeds {
    let child = Tree {
        entries: vec![entry(
            b"notes.txt",
            EntryKind::File {
                size: 5,
                chunks: vec![ChunkId::of(b"hello")],
            },
            0o644,
        )],
    };
    let (child_id, child_bytes) = child.encode_with_id().expect("encode tree");
    let every_kind = Tree {
        entries: vec![
            entry(
                b"big.bin",
                EntryKind::File {
                    size: 200_000,
                    chunks: vec![
                        ChunkId::of(b"one"),
                        ChunkId::of(b"two"),
                        ChunkId::of(b"three"),
                    ],
                },
                0o600,
            ),
            entry(
                b"dev-sda",
                EntryKind::Device {
                    block: true,
                    rdev: 0x0800,
                },
                0o660,
            ),
            entry(b"docs", EntryKind::Dir { tree: child_id }, 0o755),
            entry(
                b"empty",
                EntryKind::File {
                    size: 0,
                    chunks: vec![],
                },
                0o644,
            ),
            entry(
                b"link",
                EntryKind::Symlink {
                    target: b"../etc/hosts".to_vec(),
                },
                0o777,
            ),
            entry(b"pipe", EntryKind::Fifo, 0o644),
            entry(b"sock", EntryKind::Socket, 0o755),
            entry(
                b"tty",
                EntryKind::Device {
                    block: false,
                    rdev: 0x0401,
                },
                0o620,
            ),
            entry(b"\xffnot utf-8 \n", EntryKind::Fifo, 0o4755),
        ],
    };
    let seeds = vec![
        ("empty", Tree::default().encode().expect("encode tree")),
        ("one-file", child_bytes),
        ("every-kind", every_kind.encode().expect("encode tree")),
    ];
    for (name, bytes) in &seeds {
        Tree::decode(bytes).unwrap_or_else(|e| panic!("tree seed {name}: {e}"));
    }
    seeds
}

fn snapshots() -> Seeds {
    let first = Snapshot {
        time_ns: 1_700_000_000_000_000_000,
        tree: TreeId::of(b"root"),
        paths: vec![b"/home/user/src".to_vec(), b"/tmp/\xff".to_vec()],
        host: "build-host".into(),
        username: "user".into(),
        tags: vec!["daily".into(), "nightly".into()],
        message: "before the upgrade".into(),
        parent: None,
        summary: SnapshotSummary {
            files_new: 10,
            dirs: 3,
            bytes_total: 123_456,
            bytes_read: 123_456,
            bytes_added: 40_000,
            blobs_added: 14,
            duration_ms: 250,
            ..SnapshotSummary::default()
        },
        program_version: "0.1.0".into(),
    };
    let first_bytes = first.encode().expect("encode snapshot");
    let second = Snapshot {
        time_ns: -1,
        parent: Some(SnapshotId::of(&first_bytes)),
        tags: vec![],
        message: String::new(),
        summary: SnapshotSummary {
            files_unchanged: 10,
            files_changed: 1,
            errors: 2,
            others: 1,
            ..first.summary
        },
        ..first.clone()
    };
    let seeds = vec![
        ("first", first_bytes),
        ("with-parent", second.encode().expect("encode snapshot")),
    ];
    for (name, bytes) in &seeds {
        Snapshot::decode(bytes).unwrap_or_else(|e| panic!("snapshot seed {name}: {e}"));
    }
    seeds
}

/// Real pack files written by `PackWriter`, and catalog location records
/// pointing into them.
fn packs() -> (Seeds, Seeds) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (objects, tmp) = (dir.path().join("objects"), dir.path().join("tmp"));
    fs::create_dir_all(&objects).expect("objects dir");
    fs::create_dir_all(&tmp).expect("tmp dir");
    let store = PackStore::new(objects, tmp);

    let tree = trees().pop().expect("a tree seed").1;
    let snap = snapshots().remove(0).1;
    let contents: [PackContents; 3] = [
        ("empty", vec![]),
        ("one-chunk", vec![(BlobKind::Chunk, b"hello".to_vec())]),
        (
            "mixed",
            vec![
                (BlobKind::Chunk, noise(2000, 7)),
                (BlobKind::Chunk, vec![b'z'; 5000]),
                (BlobKind::Chunk, Vec::new()),
                (BlobKind::Tree, tree),
                (BlobKind::Snapshot, snap),
            ],
        ),
    ];
    let (mut packs, mut locations) = (Seeds::new(), Seeds::new());
    for (name, blobs) in contents {
        let mut w = store.new_writer().expect("pack writer");
        for (kind, raw) in &blobs {
            let frame = codec::encode(raw, 3).expect("encode blob");
            let raw_len = u32::try_from(raw.len()).expect("small blob");
            w.add(ObjectId::of(raw), *kind, raw_len, &frame)
                .expect("add blob");
        }
        let done = w.finish(&store).expect("finish pack");
        let bytes = fs::read(store.pack_path(&done.id)).expect("read pack back");
        let parsed: Vec<PackEntry> =
            parse_footer(&bytes).unwrap_or_else(|e| panic!("pack seed {name}: {e}"));
        assert_eq!(parsed, done.entries, "pack seed {name}");
        if let Some(last) = done.entries.last() {
            let loc = BlobLocation::new(done.id, last)
                .encode()
                .expect("encode location");
            BlobLocation::decode(&loc).expect("location seed decodes");
            locations.push((name, loc));
        }
        packs.push((name, bytes));
    }
    (packs, locations)
}

fn configs() -> Seeds {
    let default = RepoConfig {
        format_version: FORMAT_VERSION,
        id: "0123456789abcdef0123456789abcdef".into(),
        chunker: ChunkerParams::from_average(DEFAULT_AVG_CHUNK).expect("default average"),
        zstd_level: DEFAULT_ZSTD_LEVEL,
        pack_target_bytes: DEFAULT_PACK_BYTES,
    };
    let small = RepoConfig {
        chunker: ChunkerParams::from_average(1 << 10).expect("1 KiB average"),
        zstd_level: 19,
        pack_target_bytes: 1 << 16,
        ..default.clone()
    };
    let seeds = vec![
        ("default", default.to_bytes().expect("encode config")),
        ("small-chunks", small.to_bytes().expect("encode config")),
    ];
    for (name, bytes) in &seeds {
        RepoConfig::parse(bytes).unwrap_or_else(|e| panic!("config seed {name}: {e}"));
    }
    seeds
}

fn chunker_inputs() -> Seeds {
    let text = b"a line of a text file that repeats now and then\n".repeat(2000);
    let zeros = vec![0u8; 70_000];
    let noise_small = noise(9_000, 3);
    let noise_mid = noise(60_000, 4);
    let noise_big = noise(250_000, 5);
    let input = |avg_log, buffer_size, read_step, interrupt, data| {
        ChunkerInput {
            avg_log,
            buffer_size,
            read_step,
            interrupt,
            data,
        }
        .to_bytes()
    };
    vec![
        ("empty", input(10, 0, None, false, &[][..])),
        ("noise-1k", input(10, 0, Some(49), true, &noise_small)),
        (
            "noise-4k-small-reads",
            input(12, 4096, Some(1), false, &noise_mid),
        ),
        ("zeros-8k", input(13, 8192, None, true, &zeros)),
        ("text-16k", input(14, 4096, Some(4096), false, &text)),
        (
            "noise-16k-big-buffer",
            input(14, 200_000, None, false, &noise_big),
        ),
    ]
}
