//! Seeded synthetic data shared by the benches: `mod common;` in a bench.
//!
//! Everything here is deterministic: one seed gives the same bytes on every
//! machine and every run, so numbers from different runs can be compared.
//! Nothing here needs `rand`; [`Rng`] is SplitMix64.
//!
//! - [`random_bytes`]: incompressible data (zstd keeps it raw).
//! - [`text_like`]: source-code-like lines (zstd shrinks it about 3–5×).
//! - [`write_tree`]: a directory tree of mixed file sizes and kinds.
//! - [`edit_files`]: a near-identical version of that tree (a line inserted
//!   in the middle of every Nth file).

// Each bench uses only some of these helpers.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// SplitMix64: small, fast, good enough for test data, stable forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for word in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
    }
}

/// `len` incompressible bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    Rng::new(seed).fill(&mut out);
    out
}

const KEYWORDS: &[&str] = &[
    "let", "fn", "if", "else", "match", "return", "for", "in", "while", "pub", "struct", "impl",
    "use", "mut", "self", "Some", "None", "Ok", "Err", "true", "false", "const", "where", "as",
];
const TYPES: &[&str] = &[
    "u8",
    "u32",
    "u64",
    "usize",
    "i64",
    "bool",
    "String",
    "Vec<u8>",
    "&str",
    "Path",
    "Result<()>",
    "Option<usize>",
    "HashMap<String, u64>",
];

/// `len` bytes of source-code-like text: indented lines built from keywords,
/// a per-seed vocabulary of identifiers, numbers and comments.
pub fn text_like(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let vocabulary: Vec<String> = (0..400)
        .map(|_| {
            let parts = 1 + rng.below(3);
            (0..parts)
                .map(|_| {
                    let n = 2 + rng.below(7) as usize;
                    (0..n)
                        .map(|_| char::from(b'a' + rng.below(26) as u8))
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join("_")
        })
        .collect();
    let mut out = Vec::with_capacity(len + 128);
    let mut depth = 0usize;
    while out.len() < len {
        let word = |rng: &mut Rng| pick(rng, &vocabulary);
        let line = match rng.below(12) {
            0 if depth > 0 => {
                depth -= 1;
                "}".to_string()
            }
            1 => {
                depth += 1;
                format!(
                    "pub fn {}({}: {}) -> {} {{",
                    word(&mut rng),
                    word(&mut rng),
                    TYPES[rng.below(TYPES.len() as u64) as usize],
                    TYPES[rng.below(TYPES.len() as u64) as usize],
                )
            }
            2 => {
                depth += 1;
                format!("if {} > {} {{", word(&mut rng), rng.below(1000))
            }
            3 => {
                let words: Vec<&str> = (0..3 + rng.below(8)).map(|_| word(&mut rng)).collect();
                format!("// {}", words.join(" "))
            }
            4 => String::new(),
            5 => format!(
                "{} {}.{}({}, {});",
                KEYWORDS[rng.below(KEYWORDS.len() as u64) as usize],
                word(&mut rng),
                word(&mut rng),
                word(&mut rng),
                rng.below(1 << 16),
            ),
            _ => format!(
                "let {} = {}::{}(&{});",
                word(&mut rng),
                word(&mut rng),
                word(&mut rng),
                word(&mut rng),
            ),
        };
        out.extend(std::iter::repeat_n(b' ', 4 * depth.min(6)));
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// A vocabulary word, Zipf-ish: low indices are used far more often.
fn pick<'a>(rng: &mut Rng, vocabulary: &'a [String]) -> &'a str {
    let i = (rng.unit().powi(3) * vocabulary.len() as f64) as usize;
    &vocabulary[i.min(vocabulary.len() - 1)]
}

/// The shape of a generated tree.
#[derive(Debug, Clone, Copy)]
pub struct TreeSpec {
    /// Number of regular files.
    pub files: usize,
    /// Their total size, approximately (within a few bytes per file).
    pub total_bytes: u64,
    /// Seed for sizes, kinds and contents.
    pub seed: u64,
}

/// A tree written by [`write_tree`].
#[derive(Debug, Clone)]
pub struct GeneratedTree {
    /// Every regular file, in generation order.
    pub files: Vec<PathBuf>,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// File sizes: 60% in 512 B–8 KiB, 30% in 8–64 KiB, 9% in 64–256 KiB and 1%
/// in 1–4 MiB (log-uniform within each band), all scaled so they add up to
/// `spec.total_bytes`.
pub fn file_sizes(spec: &TreeSpec) -> Vec<u64> {
    let mut rng = Rng::new(spec.seed);
    let raw: Vec<f64> = (0..spec.files)
        .map(|_| {
            let (lo, hi): (f64, f64) = match rng.below(100) {
                0..60 => (512.0, 8192.0),
                60..90 => (8192.0, 65536.0),
                90..99 => (65536.0, 262_144.0),
                _ => (1_048_576.0, 4_194_304.0),
            };
            lo * (hi / lo).powf(rng.unit())
        })
        .collect();
    let scale = spec.total_bytes as f64 / raw.iter().sum::<f64>();
    raw.iter()
        .map(|r| (r * scale).round().max(1.0) as u64)
        .collect()
}

/// Writes `spec.files` files under `root` as `dNN/sN/fNNNNN.{rs,bin}`: ten
/// files per directory, ten directories per top-level one. Four in five
/// files are [`text_like`] (`.rs`), the rest [`random_bytes`] (`.bin`).
///
/// # Errors
/// I/O errors creating directories or files.
pub fn write_tree(root: &Path, spec: &TreeSpec) -> io::Result<GeneratedTree> {
    let mut kinds = Rng::new(spec.seed ^ 0xa5a5);
    let mut files = Vec::with_capacity(spec.files);
    let mut bytes = 0;
    for (i, size) in file_sizes(spec).into_iter().enumerate() {
        let dir = root
            .join(format!("d{:02}", i / 100))
            .join(format!("s{}", (i / 10) % 10));
        if i % 10 == 0 {
            fs::create_dir_all(&dir)?;
        }
        let seed = spec.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let (ext, data) = if kinds.below(5) == 0 {
            ("bin", random_bytes(size as usize, seed))
        } else {
            ("rs", text_like(size as usize, seed))
        };
        let path = dir.join(format!("f{i:05}.{ext}"));
        fs::write(&path, &data)?;
        bytes += size;
        files.push(path);
    }
    Ok(GeneratedTree { files, bytes })
}

/// Inserts a short line (naming `round`) in the middle of every `every`-th
/// file of `tree`, so each call makes new content; returns how many files
/// were edited. `every = 100` edits 1% of the files.
///
/// # Errors
/// I/O errors reading or writing the files.
pub fn edit_files(tree: &GeneratedTree, every: usize, round: u64) -> io::Result<usize> {
    let mut edited = 0;
    for path in tree.files.iter().step_by(every.max(1)) {
        let mut data = fs::read(path)?;
        let mid = data.len() / 2;
        let line = format!("\n// edited in round {round}\n");
        data.splice(mid..mid, line.bytes());
        fs::write(path, &data)?;
        edited += 1;
    }
    Ok(edited)
}
