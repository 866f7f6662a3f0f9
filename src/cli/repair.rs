//! `cairn repair`: rebuild the catalog from the packs.

use std::io::Write;

use anyhow::Context;
use cairn::LockMode;
use cairn::repair;
use cairn::repo::RawRepository;
use serde_json::json;

use super::{EXIT_ERROR, Exit, Globals, check, output};

/// Rebuild the catalog's index (and, if it is lost or damaged, its snapshots and trees) from the packs
#[derive(clap::Args)]
#[command(
    after_help = "Repair takes the repository lock exclusively, rebuilds the catalog in tmp/ \
and renames it into place, so an interrupted repair changes nothing. A damaged catalog is kept \
as catalog.redb.damaged-<unix seconds>. It then checks the result and names the snapshots and \
paths that could not be recovered.\n\n\
With --read-data it also decodes and re-hashes every blob and leaves damaged ones out of the \
index, so that the next snapshot of an affected file stores its content again.\n\n\
Examples:\n  cairn repair\n  cairn repair --read-data --json\n\n\
Exit status: 0 everything recovered; 1 something could not be recovered (named) or error; \
2 not a repository."
)]
pub struct Args {
    /// Also decode and re-hash every blob, leaving damaged ones out of the
    /// index so the next snapshot stores their content again
    #[arg(long)]
    pub read_data: bool,

    /// Print the report as one JSON object
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let path = g.repo_path()?;
    let wait = || {
        eprintln!(
            "waiting for another cairn process to release {}",
            path.display()
        );
    };
    let repo = RawRepository::open(path, LockMode::Exclusive, &wait)
        .with_context(|| format!("opening repository {}", path.display()))?;
    let r = repair::repair(
        &repo,
        &repair::RepairOptions {
            read_data: args.read_data,
        },
    )
    .context("repairing the catalog")?;
    if args.json {
        output::print_json(&json!({
            "complete": r.is_complete(),
            "catalog_error": r.catalog_error,
            "damaged_catalog": r.damaged_catalog.as_ref().map(|p| p.display().to_string()),
            "packs": r.packs,
            "blobs": r.blobs,
            "trees": r.trees,
            "copies_restored": r.copies_restored,
            "snapshots": r.snapshots,
            "unreadable_packs": r.unreadable_packs.iter().map(|(id, why)| json!({
                "pack": id.to_hex(), "message": why,
            })).collect::<Vec<_>>(),
            "damaged_blobs": r.damaged_blobs.iter().map(|(id, why)| json!({
                "object": id.to_hex(), "message": why,
            })).collect::<Vec<_>>(),
            "bad_records": r.bad_records.iter().map(|(id, why)| json!({
                "object": id.to_hex(), "message": why,
            })).collect::<Vec<_>>(),
            "check": check::report_json(&r.after),
        }))?;
    } else {
        let mut out = std::io::stdout().lock();
        if let Some(e) = &r.catalog_error {
            writeln!(out, "catalog was unusable: {e}")?;
            writeln!(out, "rebuilt snapshots and trees from the packs")?;
        }
        if let Some(p) = &r.damaged_catalog {
            writeln!(out, "damaged catalog kept as {}", p.display())?;
        }
        if !g.quiet {
            writeln!(
                out,
                "indexed {} pack(s), {} blob(s); catalog holds {} tree(s), {} snapshot(s)",
                r.packs, r.blobs, r.trees, r.snapshots
            )?;
        }
        if r.copies_restored > 0 {
            writeln!(
                out,
                "stored {} tree/snapshot record(s) that no pack held in a new pack",
                r.copies_restored
            )?;
        }
        for (_, why) in &r.unreadable_packs {
            writeln!(out, "unreadable: {why}")?;
        }
        for (_, why) in &r.damaged_blobs {
            writeln!(out, "damaged: {why}")?;
        }
        for (_, why) in &r.bad_records {
            writeln!(out, "unrecoverable: {why}")?;
        }
        drop(out);
        check::print_report(&r.after, g.quiet)?;
    }
    if r.is_complete() {
        Ok(())
    } else {
        if !args.json {
            eprintln!("error: repair finished, but some data could not be recovered (named above)");
        }
        Err(Exit(EXIT_ERROR).into())
    }
}
