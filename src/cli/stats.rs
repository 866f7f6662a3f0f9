//! `cairn stats`: what the repository holds and what it costs.

use std::io::Write;

use cairn::stats::{RepoStats, stats};
use serde_json::{Value, json};

use super::{Globals, output};

/// Show snapshot, dedup and storage figures, and what gc could free
#[derive(clap::Args)]
#[command(
    long_about = "Show what the repository holds and what it costs.\n\n\
files: file entries summed over all snapshots (unique: distinct contents); \
logical: the snapshots' file sizes summed; stored: the pack files on disk, after \
dedup and compression; dead: what `cairn gc` could free. Reads every distinct tree \
node once.",
    after_help = "Examples:\n  cairn stats\n  cairn stats --json\n\n\
Exit status: 0 shown; 1 error; 2 not a repository."
)]
pub struct Args {
    /// Print a JSON object
    #[arg(long)]
    pub json: bool,
}

fn to_json(s: &RepoStats) -> Value {
    json!({
        "snapshots": s.snapshots,
        "files": s.files,
        "files_unique": s.files_unique,
        "bytes_logical": s.bytes_logical,
        "bytes_stored": s.bytes_stored,
        "dedup_ratio": s.dedup_ratio,
        "packs": s.packs,
        "chunks": s.chunks,
        "trees": s.trees,
        "bytes_live": s.bytes_live,
        "bytes_dead": s.bytes_dead,
        "blobs_missing": s.blobs_missing,
    })
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let repo = g.open()?;
    let s = stats(&repo)?;
    if s.blobs_missing > 0 {
        eprintln!(
            "warning: {} blob(s) reachable from a snapshot are not in the index; run `cairn check`",
            s.blobs_missing
        );
    }
    if args.json {
        return output::print_json(&to_json(&s));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "snapshots:      {}", s.snapshots)?;
    writeln!(
        out,
        "files:          {} ({} unique)",
        s.files, s.files_unique
    )?;
    writeln!(out, "logical size:   {}", output::bytes(s.bytes_logical))?;
    writeln!(
        out,
        "stored size:    {} in {} pack(s)",
        output::bytes(s.bytes_stored),
        s.packs
    )?;
    writeln!(out, "dedup ratio:    {:.2}x", s.dedup_ratio)?;
    writeln!(
        out,
        "blobs:          {} chunk(s), {} tree node(s), {} live",
        s.chunks,
        s.trees,
        output::bytes(s.bytes_live)
    )?;
    writeln!(out, "dead (gc):      {}", output::bytes(s.bytes_dead))?;
    Ok(())
}
