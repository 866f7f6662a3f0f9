//! `cairn list`: one line per snapshot.

use std::io::Write;

use super::{Globals, output};

/// List snapshots, oldest first
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn list\n  cairn list --tag pre-deploy --json\n  \
cairn list --host web1 --host web2\n  cairn list --path /home/me/project\n\n\
Exit status: 0 listed; 1 error; 2 not a repository."
)]
pub struct Args {
    /// Print a JSON array, oldest first
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub filter: super::filter::FilterArgs,
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let repo = g.open()?;
    let filter = args.filter.filter()?;
    let snaps: Vec<_> = repo
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| filter.matches(s))
        .collect();
    if args.json {
        let arr: Vec<_> = snaps
            .iter()
            .map(|(id, s)| output::snapshot_json(id, s))
            .collect();
        return output::print_json(&serde_json::Value::Array(arr));
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<8}  {:<19}  {:<12}  {:<16}  {:>10}  {:<24}  MESSAGE",
        "ID", "TIME", "HOST", "TAGS", "SIZE", "PATHS"
    )?;
    for (id, s) in &snaps {
        let paths: Vec<String> = s.paths.iter().map(|p| output::path(p)).collect();
        writeln!(
            out,
            "{:<8}  {:<19}  {:<12}  {:<16}  {:>10}  {:<24}  {}",
            id.short(),
            output::local_time(s.time_ns),
            s.host,
            s.tags.join(","),
            output::bytes(s.summary.bytes_total),
            paths.join(","),
            s.message.replace('\n', " ")
        )?;
    }
    if !g.quiet {
        writeln!(out, "{} snapshot(s)", snaps.len())?;
    }
    Ok(())
}
