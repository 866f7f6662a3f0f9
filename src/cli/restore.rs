//! `cairn restore`: write a snapshot back to disk.

use std::path::PathBuf;

use anyhow::Context;
use cairn::restore::{self, RestoreOptions};

use super::progress::Bar;
use super::{EXIT_ERROR, Exit, Globals, output, snapshot_path};

/// Restore a snapshot, or chosen paths of it, into a directory
#[derive(clap::Args)]
#[command(
    long_about = "Restore a snapshot into --target: file contents (verified against their hashes), \
directories, symlinks, empty files, permissions and modification times, and owners when run as \
root. Paths keep their full absolute form below the target (/home/me/p/a.txt is restored to \
TARGET/home/me/p/a.txt).\n\n\
A non-empty target is refused unless --overwrite is given. Nothing is ever written outside \
the target, whatever the snapshot contains.",
    after_help = "Examples:\n  cairn restore latest --target /tmp/restore\n  \
cairn restore 1a2b --target ./out --include /home/me/project/src\n  \
cairn restore latest --tag pre-deploy --host web1 --target ./out\n\n\
Exit status: 0 restored; 1 some files could not be restored (each named on stderr) or another \
error; 2 unknown snapshot or path, or a non-empty target without --overwrite."
)]
pub struct Args {
    /// Snapshot: latest, an id, or a unique id prefix
    pub snap: String,

    /// Directory to restore into (created if missing)
    #[arg(long, short = 't', value_name = "DIR")]
    pub target: PathBuf,

    /// Restore only this path of the snapshot (repeatable); absolute as stored,
    /// or relative to the current directory or to a snapshotted path
    #[arg(long = "include", value_name = "PATH")]
    pub includes: Vec<PathBuf>,

    /// Restore into a non-empty target: entries in the way are replaced (a
    /// directory where the snapshot has a file is deleted with its contents);
    /// files not in the snapshot are left alone
    #[arg(long)]
    pub overwrite: bool,

    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub filter: super::filter::FilterArgs,
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let repo = g.open()?;
    let (id, snap) = repo.resolve_filtered(&args.snap, &args.filter.filter()?)?;
    let includes = args
        .includes
        .iter()
        .map(|p| snapshot_path(&repo, &snap, p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = RestoreOptions {
        target: args.target.clone(),
        includes,
        overwrite: args.overwrite,
        owner: cairn::fsmeta::is_root(),
    };
    let bar = Bar::new(g.quiet, args.json);
    let summary = restore::restore_with(&repo, snap.tree, &opts, &bar)
        .with_context(|| format!("restoring snapshot {}", id.short()))?;
    bar.clear();
    for (p, e) in &summary.errors {
        eprintln!(
            "error: {}: {e}",
            output::path(p.as_os_str().as_encoded_bytes())
        );
    }
    if args.json {
        output::print_json(&serde_json::json!({
            "id": id.to_hex(),
            "target": args.target.display().to_string(),
            "files": summary.files,
            "dirs": summary.dirs,
            "others": summary.others,
            "bytes": summary.bytes,
            "errors": summary.errors.iter().map(|(p, e)| serde_json::json!({
                "path": output::path(p.as_os_str().as_encoded_bytes()), "message": e
            })).collect::<Vec<_>>(),
        }))?;
    } else if !g.quiet {
        println!(
            "restored snapshot {} to {}: {} files ({}), {} dirs, {} links/special",
            id.short(),
            args.target.display(),
            summary.files,
            output::bytes(summary.bytes),
            summary.dirs,
            summary.others
        );
    }
    if summary.errors.is_empty() {
        Ok(())
    } else {
        eprintln!(
            "error: {} path(s) could not be restored",
            summary.errors.len()
        );
        Err(Exit(EXIT_ERROR).into())
    }
}
