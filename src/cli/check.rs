//! `cairn check`: verify that the catalog and the packs agree.

use std::io::Write;

use anyhow::Context;
use cairn::LockMode;
use cairn::check::{self, CheckOptions, CheckReport, DamageKind, ReadData};
use cairn::repo::RawRepository;
use serde_json::{Value, json};

use super::progress::Bar;
use super::{EXIT_ERROR, Exit, Globals, output};

/// Verify the repository: catalog, packs, and (optionally) every blob
#[derive(clap::Args)]
#[command(
    after_help = "Without --read-data, check verifies that every pack the catalog lists exists \
with its recorded size and an intact footer, that every blob location matches its pack, and \
that every snapshot's trees are present and decode and every chunk it references is indexed. \
--read-data also hashes every pack file against its id and decodes and re-hashes every blob.\n\n\
--read-data-subset n/m reads the packs whose id (first 4 bytes, big-endian) is n-1 modulo m; \
N% reads the packs whose id (first 8 bytes) lies in the first N% of the id space: the same \
packs every time.\n\n\
Examples:\n  cairn check\n  cairn check --read-data\n  cairn check --read-data-subset 1/5 --json\n\n\
Exit status: 0 no damage; 1 damage found (named on stdout) or error; 2 not a repository or bad option."
)]
pub struct Args {
    /// Read every pack in full and re-hash every blob
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,

    /// Read only a subset of the packs: `n/m` or a percentage such as `10%`
    #[arg(long, value_name = "N%|N/M")]
    pub read_data_subset: Option<String>,

    /// Print the report as one JSON object
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let read_data = match (&args.read_data_subset, args.read_data) {
        (Some(s), _) => ReadData::parse_subset(s)?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    let path = g.repo_path()?;
    let wait = || {
        eprintln!(
            "waiting for another cairn process to release {}",
            path.display()
        );
    };
    let repo = RawRepository::open(path, LockMode::Shared, &wait)
        .with_context(|| format!("opening repository {}", path.display()))?;
    let bar = Bar::new(g.quiet, args.json);
    let report = check::check_with(&repo, &CheckOptions { read_data }, &bar)?;
    bar.clear();
    if args.json {
        output::print_json(&report_json(&report))?;
    } else {
        print_report(&report, g.quiet)?;
    }
    if report.is_ok() {
        Ok(())
    } else {
        if !args.json {
            eprintln!(
                "error: check found damage: {} problem(s), {} damaged snapshot(s)",
                report.problems.len(),
                report.damaged.len()
            );
        }
        Err(Exit(EXIT_ERROR).into())
    }
}

/// The report as JSON (shared with `cairn repair --json`).
pub fn report_json(r: &CheckReport) -> Value {
    json!({
        "ok": r.is_ok(),
        "catalog_ok": r.catalog_ok,
        "packs_on_disk": r.packs_on_disk,
        "packs_listed": r.packs_listed,
        "packs_unreferenced": r.packs_unreferenced,
        "packs_read": r.packs_read,
        "blobs_verified": r.blobs_verified,
        "snapshots": r.snapshots,
        "problems": r.problems.iter().map(|p| json!({
            "kind": p.kind.name(),
            "pack": p.pack.map(|id| id.to_hex()),
            "object": p.object.map(|id| id.to_hex()),
            "message": p.message,
        })).collect::<Vec<_>>(),
        "damaged_snapshots": r.damaged.iter().map(|d| json!({
            "id": d.id.to_hex(),
            "short_id": d.id.short(),
            "time": output::rfc3339(d.snapshot.time_ns),
            "paths": d.paths.iter().map(|p| json!({
                "path": output::path(&p.path),
                "type": damage_name(p.kind),
                "reason": p.reason,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn damage_name(k: DamageKind) -> &'static str {
    match k {
        DamageKind::File => "file",
        DamageKind::Tree => "dir",
    }
}

/// Prints the report for people (shared with `cairn repair`).
pub fn print_report(r: &CheckReport, quiet: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if !quiet {
        writeln!(
            out,
            "catalog: {}",
            if r.catalog_ok { "ok" } else { "DAMAGED" }
        )?;
        writeln!(
            out,
            "packs: {} listed, {} on disk ({} unreferenced), {} read in full, {} blobs verified",
            r.packs_listed, r.packs_on_disk, r.packs_unreferenced, r.packs_read, r.blobs_verified
        )?;
        writeln!(out, "snapshots: {} checked", r.snapshots)?;
    }
    for p in &r.problems {
        writeln!(out, "problem [{}]: {}", p.kind.name(), p.message)?;
    }
    for d in &r.damaged {
        writeln!(
            out,
            "snapshot {} ({}) is damaged: {} path(s) cannot be restored",
            d.id.short(),
            output::local_time(d.snapshot.time_ns),
            d.paths.len()
        )?;
        for p in &d.paths {
            writeln!(
                out,
                "  {} {}: {}",
                damage_name(p.kind),
                output::path(&p.path),
                p.reason
            )?;
        }
    }
    if r.is_ok() && !quiet {
        writeln!(out, "no damage found")?;
    }
    Ok(())
}
