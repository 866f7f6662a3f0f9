//! chunkmeasure: measure FastCDC chunk parameters and zstd levels for cairn.
//!
//! Subcommands (all print Markdown tables on stdout, progress on stderr):
//!   dedup      <name> <series-dir>                    simulate a repository over v00..v09 for every parameter set
//!   levels     <name> <series-dir> <params,...> <levels,...> [max-mb]
//!                                                      zstd levels on the unique chunks of v00
//!   smallfiles <tree-dir> <params>                     per-file vs per-chunk vs solid compression, by file size
//!
//! A series dir holds v00..v09, each either a file (one blob) or a directory
//! (a tree: files are chunked one by one in sorted path order, the chunker
//! restarting at every file boundary, as cairn does).

use fastcdc::v2020::FastCDC;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PARAMS_KIB: [(usize, usize, usize); 6] = [
    (2, 8, 32),
    (4, 16, 64),
    (8, 32, 128),
    (16, 64, 256),
    (64, 256, 1024),
    (256, 1024, 4096),
];
const LEVEL: i32 = 3;
const MB: f64 = 1e6;

#[derive(Clone, Copy)]
struct P {
    min: usize,
    avg: usize,
    max: usize,
}
impl P {
    fn kib(t: (usize, usize, usize)) -> P {
        P { min: t.0 * 1024, avg: t.1 * 1024, max: t.2 * 1024 }
    }
    fn parse(s: &str) -> P {
        let v: Vec<usize> = s.split('/').map(|x| x.parse().expect("min/avg/max in KiB")).collect();
        P::kib((v[0], v[1], v[2]))
    }
    fn label(&self) -> String {
        format!("{}/{}/{}", self.min / 1024, self.avg / 1024, self.max / 1024)
    }
}

/// CPU time consumed by the calling thread (robust against a noisy shared machine).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct Timer {
    cpu: Duration,
    wall: Instant,
}
impl Timer {
    fn start() -> Timer {
        Timer { cpu: thread_cpu(), wall: Instant::now() }
    }
    fn stop(&self) -> (f64, f64) {
        ((thread_cpu() - self.cpu).as_secs_f64(), self.wall.elapsed().as_secs_f64())
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut ents: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    ents.sort();
    for p in ents {
        if p.is_dir() {
            walk(&p, out)
        } else {
            out.push(p)
        }
    }
}

/// Load one version: a list of (relative path, contents).
fn load(p: &Path) -> Vec<(String, Vec<u8>)> {
    if p.is_dir() {
        let mut files = Vec::new();
        walk(p, &mut files);
        files
            .into_iter()
            .map(|f| (f.strip_prefix(p).unwrap().to_string_lossy().into_owned(), fs::read(&f).unwrap()))
            .collect()
    } else {
        vec![(p.file_name().unwrap().to_string_lossy().into_owned(), fs::read(p).unwrap())]
    }
}

fn versions(series: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(series)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.len() >= 3 && n.starts_with('v') && n[1..3].chars().all(|c| c.is_ascii_digit())
        })
        .collect();
    v.sort();
    v
}

/// (file index, offset, length)
type Cut = (u32, usize, usize);

fn chunk(files: &[(String, Vec<u8>)], p: P) -> Vec<Cut> {
    let mut cuts = Vec::new();
    for (i, (_, d)) in files.iter().enumerate() {
        for c in FastCDC::new(d, p.min, p.avg, p.max) {
            cuts.push((i as u32, c.offset, c.length));
        }
    }
    cuts
}

fn slice<'a>(files: &'a [(String, Vec<u8>)], c: &Cut) -> &'a [u8] {
    &files[c.0 as usize].1[c.1..c.1 + c.2]
}

/// Stored size of one chunk: zstd frame, or raw if compression does not help.
fn stored_size(comp: &mut zstd::bulk::Compressor, data: &[u8]) -> usize {
    let z = comp.compress(data).unwrap();
    z.len().min(data.len())
}

fn compress_sizes(chunks: &[&[u8]], level: i32) -> Vec<usize> {
    chunks
        .par_iter()
        .map_init(|| zstd::bulk::Compressor::new(level).unwrap(), |c, d| stored_size(c, d))
        .collect()
}

fn mb(x: u64) -> f64 {
    x as f64 / MB
}

// ---------------------------------------------------------------- dedup

#[derive(Default)]
struct Repo {
    seen: HashSet<[u8; 32]>,
    stored: Vec<u64>,     // stored (compressed) bytes added per version
    raw_new: Vec<u64>,    // uncompressed bytes of new chunks per version
    new_chunks: Vec<u64>, // new index entries per version
    chunks_total: u64,    // chunk references over all versions
    bytes_in: u64,
    chunk_cpu: f64,
    hash_cpu: f64,
    wall: f64,
}

fn cmd_dedup(name: &str, series: &Path) {
    let params: Vec<P> = PARAMS_KIB.iter().map(|&t| P::kib(t)).collect();
    let mut repos: Vec<Repo> = params.iter().map(|_| Repo::default()).collect();
    let vers = versions(series);
    let mut logical = Vec::new();
    for v in &vers {
        let files = load(v);
        let vbytes: u64 = files.iter().map(|f| f.1.len() as u64).sum();
        logical.push(vbytes);
        eprintln!("[{name}] {}: {} files, {:.1} MB", v.display(), files.len(), mb(vbytes));
        for (p, r) in params.iter().zip(repos.iter_mut()) {
            // chunking and hashing: single-threaded, timed separately (thread CPU time + wall)
            let t = Timer::start();
            let cuts = chunk(&files, *p);
            let (c_cpu, c_wall) = t.stop();
            let t = Timer::start();
            let hashes: Vec<[u8; 32]> = cuts.iter().map(|c| *blake3::hash(slice(&files, c)).as_bytes()).collect();
            let (h_cpu, h_wall) = t.stop();
            r.chunk_cpu += c_cpu;
            r.hash_cpu += h_cpu;
            r.wall += c_wall + h_wall;
            r.bytes_in += vbytes;
            r.chunks_total += cuts.len() as u64;
            // new chunks (not seen in the repository yet, first occurrence within this version)
            let mut new: Vec<&[u8]> = Vec::new();
            for (c, h) in cuts.iter().zip(&hashes) {
                if r.seen.insert(*h) {
                    new.push(slice(&files, c));
                }
            }
            let sizes = compress_sizes(&new, LEVEL);
            r.stored.push(sizes.iter().map(|&s| s as u64).sum());
            r.raw_new.push(new.iter().map(|d| d.len() as u64).sum());
            r.new_chunks.push(new.len() as u64);
            eprintln!(
                "  {:>14}: {:>8} chunks, {:>7} new, +{:8.2} MB stored, chunk {:.0} MB/s hash {:.0} MB/s (cpu)",
                p.label(),
                cuts.len(),
                new.len(),
                mb(*r.stored.last().unwrap()),
                mb(vbytes) / c_cpu,
                mb(vbytes) / h_cpu
            );
        }
    }
    let total_logical: u64 = logical.iter().sum();
    println!("### {name}: repository after {} versions (zstd level {LEVEL}, FastCDC v2020, normalization level 1)\n", vers.len());
    println!(
        "Logical input: {:.1} MB over {} versions (v00 {:.1} MB, last {:.1} MB).\n",
        mb(total_logical),
        vers.len(),
        mb(logical[0]),
        mb(*logical.last().unwrap())
    );
    println!("| min/avg/max KiB | total stored MB | dedup+comp ratio | v00 added MB | mean added/later version MB | later version added, % of v00 stored | unique chunks (index entries) | mean unique chunk KiB | chunk MB/s | hash MB/s | chunk+hash MB/s (cpu) | chunk+hash MB/s (wall) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (p, r) in params.iter().zip(&repos) {
        let total: u64 = r.stored.iter().sum();
        let later = &r.stored[1..];
        let mean_later = later.iter().sum::<u64>() as f64 / later.len() as f64;
        let uniq: u64 = r.new_chunks.iter().sum();
        let raw: u64 = r.raw_new.iter().sum();
        println!(
            "| {} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1}% | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} |",
            p.label(),
            mb(total),
            total_logical as f64 / total as f64,
            mb(r.stored[0]),
            mean_later / MB,
            100.0 * mean_later / r.stored[0] as f64,
            uniq,
            raw as f64 / uniq as f64 / 1024.0,
            mb(r.bytes_in) / r.chunk_cpu,
            mb(r.bytes_in) / r.hash_cpu,
            mb(r.bytes_in) / (r.chunk_cpu + r.hash_cpu),
            mb(r.bytes_in) / r.wall
        );
    }
    println!("\nStored MB added per version (compressed, new chunks only):\n");
    print!("| min/avg/max KiB |");
    for v in &vers {
        print!(" {} |", v.file_stem().unwrap().to_string_lossy());
    }
    println!("\n|---|{}", "---:|".repeat(vers.len()));
    for (p, r) in params.iter().zip(&repos) {
        print!("| {} |", p.label());
        for s in &r.stored {
            print!(" {:.2} |", mb(*s));
        }
        println!();
    }
    println!("\nNew raw (uncompressed) bytes per later version, mean: ");
    for (p, r) in params.iter().zip(&repos) {
        let later = &r.raw_new[1..];
        print!("{} = {:.2} MB; ", p.label(), later.iter().sum::<u64>() as f64 / later.len() as f64 / MB);
    }
    println!("\n");
}

// ---------------------------------------------------------------- levels

/// Compress `chunks` at `level` on all cores; each rayon job is one contiguous
/// slice run on one thread, so per-thread CPU time is exact. Returns
/// (stored sizes, compressed frames (None = stored raw), cpu seconds, wall seconds).
fn compress_all(chunks: &[&[u8]], level: i32) -> (Vec<usize>, Vec<Option<Vec<u8>>>, f64, f64) {
    let wall = Instant::now();
    let nslices = rayon::current_num_threads() * 4;
    let per = chunks.len().div_ceil(nslices).max(1);
    let parts: Vec<(Vec<usize>, Vec<Option<Vec<u8>>>, f64)> = chunks
        .par_chunks(per)
        .map(|part| {
            let t = thread_cpu();
            let mut c = zstd::bulk::Compressor::new(level).unwrap();
            let mut sizes = Vec::with_capacity(part.len());
            let mut frames = Vec::with_capacity(part.len());
            for d in part {
                let z = c.compress(d).unwrap();
                if z.len() < d.len() {
                    sizes.push(z.len());
                    frames.push(Some(z));
                } else {
                    sizes.push(d.len());
                    frames.push(None);
                }
            }
            (sizes, frames, (thread_cpu() - t).as_secs_f64())
        })
        .collect();
    let wall = wall.elapsed().as_secs_f64();
    let mut sizes = Vec::new();
    let mut frames = Vec::new();
    let mut cpu = 0.0;
    for (s, f, c) in parts {
        sizes.extend(s);
        frames.extend(f);
        cpu += c;
    }
    (sizes, frames, cpu, wall)
}

fn decompress_all(chunks: &[&[u8]], frames: &[Option<Vec<u8>>]) -> (f64, f64) {
    let wall = Instant::now();
    let nslices = rayon::current_num_threads() * 4;
    let per = chunks.len().div_ceil(nslices).max(1);
    let cpu: f64 = chunks
        .par_chunks(per)
        .zip(frames.par_chunks(per))
        .map(|(orig, fr)| {
            let t = thread_cpu();
            let mut d = zstd::bulk::Decompressor::new().unwrap();
            for (o, f) in orig.iter().zip(fr) {
                if let Some(z) = f {
                    let out = d.decompress(z, o.len()).unwrap();
                    assert_eq!(out.len(), o.len());
                }
            }
            (thread_cpu() - t).as_secs_f64()
        })
        .sum();
    (cpu, wall.elapsed().as_secs_f64())
}

fn cmd_levels(name: &str, series: &Path, params: &str, levels: &str, max_mb: f64) {
    let v0 = &versions(series)[0];
    let files = load(v0);
    let vbytes: u64 = files.iter().map(|f| f.1.len() as u64).sum();
    println!("### {name} ({}, {:.1} MB): zstd level vs size and speed\n", v0.display(), mb(vbytes));
    println!("| min/avg/max KiB | level | chunks compressed | input MB | stored MB | ratio | compress MB/s per core (cpu) | compress MB/s wall ({} threads) | decompress MB/s per core (cpu) |", rayon::current_num_threads());
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ps in params.split(',') {
        let p = P::parse(ps);
        let cuts = chunk(&files, p);
        let mut seen = HashSet::new();
        let mut uniq: Vec<&[u8]> = cuts
            .iter()
            .filter(|c| seen.insert(*blake3::hash(slice(&files, c)).as_bytes()))
            .map(|c| slice(&files, c))
            .collect();
        let total: usize = uniq.iter().map(|d| d.len()).sum();
        // deterministic sample (every k-th unique chunk) to bound run time of the slow levels
        let k = ((total as f64 / MB / max_mb).ceil() as usize).max(1);
        if k > 1 {
            uniq = uniq.into_iter().step_by(k).collect();
        }
        let input: usize = uniq.iter().map(|d| d.len()).sum();
        for lv in levels.split(',') {
            let lv: i32 = lv.parse().unwrap();
            // noisy shared machine: repeat the fast levels and keep the best (lowest) time
            let reps = if lv <= 9 { 3 } else { 1 };
            let (sizes, frames, mut cpu, mut wall) = compress_all(&uniq, lv);
            for _ in 1..reps {
                let (_, _, c, w) = compress_all(&uniq, lv);
                cpu = cpu.min(c);
                wall = wall.min(w);
            }
            let dcpu = (0..3).map(|_| decompress_all(&uniq, &frames).0).fold(f64::INFINITY, f64::min);
            let stored: usize = sizes.iter().sum();
            let zin: usize = uniq.iter().zip(&frames).filter(|(_, f)| f.is_some()).map(|(d, _)| d.len()).sum();
            eprintln!("[{name}] {} level {lv}: ratio {:.3}, {:.1} MB/s/core", p.label(), input as f64 / stored as f64, input as f64 / MB / cpu);
            println!(
                "| {} | {} | {}{} | {:.1} | {:.1} | {:.3} | {:.1} | {:.1} | {:.0} |",
                p.label(),
                lv,
                uniq.len(),
                if k > 1 { format!(" (1 in {k})") } else { String::new() },
                input as f64 / MB,
                stored as f64 / MB,
                input as f64 / stored as f64,
                input as f64 / MB / cpu,
                input as f64 / MB / wall,
                zin as f64 / MB / dcpu
            );
        }
    }
    println!();
}

// ---------------------------------------------------------------- small files

fn cmd_smallfiles(tree: &Path, params: &str) {
    let files = load(tree);
    let total: usize = files.iter().map(|f| f.1.len()).sum();
    let datas: Vec<&[u8]> = files.iter().map(|f| f.1.as_slice()).collect();
    let whole = compress_sizes(&datas, LEVEL);
    let whole_sum: usize = whole.iter().sum();
    // solid: all files concatenated, one zstd stream (what tar.zst would get)
    let cat: Vec<u8> = files.iter().flat_map(|f| f.1.iter().copied()).collect();
    let solid = zstd::bulk::compress(&cat, LEVEL).unwrap().len();
    // dictionary trained on every 8th file (as a per-repository dictionary would be);
    // it is evaluated on the other 7/8 of the files only (held out)
    let samples: Vec<&[u8]> = datas.iter().step_by(8).copied().collect();
    let dict = zstd::dict::from_samples(&samples, 112 * 1024).unwrap();
    let held_out = |i: usize| i % 8 != 0;
    let with_dict: Vec<usize> = datas
        .par_iter()
        .map_init(
            || zstd::bulk::Compressor::with_dictionary(LEVEL, &dict).unwrap(),
            |c, d| stored_size(c, d),
        )
        .collect();
    let ho: Vec<usize> = (0..files.len()).filter(|&i| held_out(i)).collect();
    let ho_raw: usize = ho.iter().map(|&i| files[i].1.len()).sum();
    let ho_whole: usize = ho.iter().map(|&i| whole[i]).sum();
    let ho_dict: usize = ho.iter().map(|&i| with_dict[i]).sum();

    println!("### Source tree {} ({} files, {:.1} MB): does per-file / per-chunk compression hurt small files? (zstd level {LEVEL})\n", tree.display(), files.len(), total as f64 / MB);
    println!("| mode | stored MB | ratio | vs solid stream |");
    println!("|---|---:|---:|---:|");
    let row = |m: &str, s: usize| {
        println!("| {m} | {:.2} | {:.3} | {:+.1}% |", s as f64 / MB, total as f64 / s as f64, 100.0 * (s as f64 / solid as f64 - 1.0))
    };
    row("solid stream (all files concatenated, one frame)", solid);
    row("whole file, one frame per file", whole_sum);
    println!(
        "| held-out 7/8 of files: whole file, one frame per file | {:.2} | {:.3} | |",
        ho_whole as f64 / MB,
        ho_raw as f64 / ho_whole as f64
    );
    println!(
        "| held-out 7/8 of files: whole file + 112 KiB dictionary trained on the other 1/8 | {:.2} | {:.3} | {:+.1}% vs same files without dict |",
        ho_dict as f64 / MB,
        ho_raw as f64 / ho_dict as f64,
        100.0 * (ho_dict as f64 / ho_whole as f64 - 1.0)
    );
    let mut per_file_chunked: HashMap<String, Vec<usize>> = HashMap::new();
    for ps in params.split(',') {
        let p = P::parse(ps);
        let cuts = chunk(&files, p);
        let chunks: Vec<&[u8]> = cuts.iter().map(|c| slice(&files, c)).collect();
        let sizes = compress_sizes(&chunks, LEVEL);
        let mut pf = vec![0usize; files.len()];
        for (c, s) in cuts.iter().zip(&sizes) {
            pf[c.0 as usize] += s;
        }
        let s: usize = sizes.iter().sum();
        row(&format!("per chunk {} ({} chunks)", p.label(), chunks.len()), s);
        println!("|   ↳ loss vs whole-file frames | | | {:+.1}% |", 100.0 * (s as f64 / whole_sum as f64 - 1.0));
        per_file_chunked.insert(p.label(), pf);
    }
    println!("\nBy file size (ratio = raw / stored; higher is better):\n");
    let labels: Vec<String> = params.split(',').map(|s| P::parse(s).label()).collect();
    print!("| file size | files | MB | ratio whole file | ratio whole file + dict (held-out files) |");
    for l in &labels {
        print!(" ratio per chunk {l} |");
    }
    println!("\n|---|---:|---:|---:|---:|{}", "---:|".repeat(labels.len()));
    let buckets = [(0usize, 1024usize, "< 1 KiB"), (1024, 4096, "1-4 KiB"), (4096, 16384, "4-16 KiB"), (16384, 65536, "16-64 KiB"), (65536, 262144, "64-256 KiB"), (262144, usize::MAX, ">= 256 KiB")];
    for (lo, hi, name) in buckets {
        let idx: Vec<usize> = (0..files.len()).filter(|&i| files[i].1.len() >= lo && files[i].1.len() < hi).collect();
        if idx.is_empty() {
            continue;
        }
        let raw: usize = idx.iter().map(|&i| files[i].1.len()).sum();
        let w: usize = idx.iter().map(|&i| whole[i]).sum();
        let hraw: usize = idx.iter().filter(|&&i| held_out(i)).map(|&i| files[i].1.len()).sum();
        let d: usize = idx.iter().filter(|&&i| held_out(i)).map(|&i| with_dict[i]).sum();
        print!("| {name} | {} | {:.2} | {:.2} | {:.2} |", idx.len(), raw as f64 / MB, raw as f64 / w as f64, hraw as f64 / d as f64);
        for l in &labels {
            let s: usize = idx.iter().map(|&i| per_file_chunked[l][i]).sum();
            print!(" {:.2} |", raw as f64 / s as f64);
        }
        println!();
    }
    println!();
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(|s| s.as_str()) {
        Some("dedup") => cmd_dedup(&a[2], Path::new(&a[3])),
        Some("levels") => cmd_levels(&a[2], Path::new(&a[3]), &a[4], &a[5], a.get(6).map(|s| s.parse().unwrap()).unwrap_or(f64::INFINITY)),
        Some("smallfiles") => cmd_smallfiles(Path::new(&a[2]), &a[3]),
        _ => {
            eprintln!("usage: chunkmeasure dedup NAME SERIES | levels NAME SERIES PARAMS LEVELS [MAX_MB] | smallfiles TREE PARAMS");
            std::process::exit(2)
        }
    }
}
