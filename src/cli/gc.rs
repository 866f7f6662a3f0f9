//! `cairn gc`: delete what no snapshot references.

use std::io::Write;

use cairn::LockMode;
use cairn::gc::{self, DEFAULT_REPACK_THRESHOLD, GcOptions, GcSummary};
use serde_json::{Value, json};

use super::progress::Bar;
use super::{Globals, output, usage};

/// Delete packs and index entries no snapshot references, rewrite mostly-dead packs
#[derive(clap::Args)]
#[command(
    long_about = "Delete what no remaining snapshot references.\n\n\
Marks every chunk, tree node and snapshot record reachable from the snapshots; \
deletes packs with nothing live and leftovers of interrupted snapshots; copies the \
live blobs of packs whose dead share exceeds the threshold into new packs, then \
deletes the old ones. Takes the repository lock exclusively: it waits for running \
snapshots, and snapshots wait for it. Safe to interrupt at any point.",
    after_help = "Examples:\n  cairn gc\n  cairn gc --dry-run\n  cairn gc --repack-threshold 50% --json\n\n\
Exit status: 0 collected (or would collect); 1 error; 2 bad option or not a repository."
)]
pub struct Args {
    /// Report what would be deleted and freed; change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Rewrite a pack when more than this share of it is dead (0% to 100%)
    #[arg(long, value_name = "PERCENT", default_value_t = format!("{}%", DEFAULT_REPACK_THRESHOLD * 100.0))]
    pub repack_threshold: String,

    /// Print the summary as a JSON object
    #[arg(long)]
    pub json: bool,
}

/// "10%", "10" or "12.5%" → 0.1, 0.1, 0.125.
pub fn parse_percent(s: &str) -> anyhow::Result<f64> {
    let t = s.trim();
    let n = t.strip_suffix('%').unwrap_or(t).trim();
    match n.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v / 100.0),
        _ => Err(usage(format!(
            "--repack-threshold `{s}` is not a percentage from 0% to 100%"
        ))),
    }
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let opts = GcOptions {
        dry_run: args.dry_run,
        repack_threshold: parse_percent(&args.repack_threshold)?,
    };
    let mut repo = g.open_with(LockMode::Exclusive)?;
    let bar = Bar::new(g.quiet, args.json);
    let summary = gc::collect_with(&repo, &opts, &bar)?;
    if !opts.dry_run {
        // Under the exclusive lock, after gc's commit: give the catalog's
        // free pages back (see ARCHITECTURE.md, "Catalog compaction").
        repo.compact_catalog()?;
    }
    bar.clear();
    report(g, &summary, args.json)
}

/// The JSON form of a collection summary (also used by `forget --gc`).
pub fn summary_json(s: &GcSummary) -> Value {
    json!({
        "dry_run": s.dry_run,
        "snapshots": s.snapshots,
        "blobs_live": s.blobs_live,
        "blobs_dead": s.blobs_dead,
        "blobs_missing": s.blobs_missing,
        "trees_removed": s.trees_removed,
        "packs_before": s.packs_before,
        "packs_deleted": s.packs_deleted,
        "packs_repacked": s.packs_repacked,
        "packs_written": s.packs_written,
        "packs_after": s.packs_after,
        "packs_damaged": s.packs_damaged,
        "tmp_files_deleted": s.tmp_files_deleted,
        "bytes_before": s.bytes_before,
        "bytes_freed": s.bytes_freed,
        "bytes_used": s.bytes_used,
        "bytes_live": s.bytes_live,
        "bytes_dead_kept": s.bytes_dead_kept,
    })
}

/// Prints a collection summary: JSON on stdout, or a few lines of text
/// (unless quiet); damage is always named on stderr.
pub fn report(g: &Globals, s: &GcSummary, json: bool) -> anyhow::Result<()> {
    if s.blobs_missing > 0 {
        eprintln!(
            "warning: {} blob(s) reachable from a snapshot are not in the index; run `cairn check`",
            s.blobs_missing
        );
    }
    if s.packs_damaged > 0 {
        eprintln!(
            "warning: {} pack(s) holding live data are missing or damaged and were left alone; run `cairn check`",
            s.packs_damaged
        );
    }
    if json {
        return output::print_json(&summary_json(s));
    }
    if g.quiet {
        return Ok(());
    }
    let (would, freed) = if s.dry_run {
        ("would ", "would free")
    } else {
        ("", "freed")
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} snapshot(s): {} live blob(s), {}",
        s.snapshots,
        s.blobs_live,
        output::bytes(s.bytes_live)
    )?;
    writeln!(
        out,
        "{would}remove {} dead blob(s) and {} tree node(s) from the index",
        s.blobs_dead, s.trees_removed
    )?;
    writeln!(
        out,
        "{would}delete {} pack(s), rewrite {} into {} new, remove {} temporary file(s)",
        s.packs_deleted, s.packs_repacked, s.packs_written, s.tmp_files_deleted
    )?;
    writeln!(
        out,
        "{freed} {}{}; {} in {} pack(s) {}",
        if s.dry_run { "about " } else { "" },
        output::bytes(s.bytes_freed),
        output::bytes(s.bytes_used),
        s.packs_after,
        if s.dry_run { "would remain" } else { "remain" },
    )?;
    if s.bytes_dead_kept > 0 {
        writeln!(
            out,
            "{} of dead data left in packs below the repack threshold",
            output::bytes(s.bytes_dead_kept)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse() {
        assert_eq!(parse_percent("10%").unwrap(), 0.1);
        assert_eq!(parse_percent("50").unwrap(), 0.5);
        assert_eq!(parse_percent("0%").unwrap(), 0.0);
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("-1").is_err());
        assert!(parse_percent("half").is_err());
    }
}
