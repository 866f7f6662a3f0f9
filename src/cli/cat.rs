//! `cairn cat`: write one file from a snapshot to stdout.

use std::io::Write;
use std::path::PathBuf;

use cairn::repo::Located;

use super::{Globals, snapshot_path, usage};

/// Write a file from a snapshot to standard output
#[derive(clap::Args)]
#[command(
    long_about = "Write the contents of one file in a snapshot to standard output. \
Every chunk is verified against its hash as it is read.",
    after_help = "Examples:\n  cairn cat latest /etc/hosts\n  cairn cat 1a2b config/app.toml > app.toml\n  \
cairn cat latest --host web1 /etc/hosts\n\n\
Exit status: 0 written; 1 error (e.g. corrupt data); 2 unknown snapshot, path, or not a file."
)]
pub struct Args {
    /// Snapshot: latest, an id, or a unique id prefix
    pub snap: String,

    /// The file's path inside the snapshot: absolute as stored, or relative to
    /// the current directory or to a snapshotted path
    pub path: PathBuf,

    #[command(flatten)]
    pub filter: super::filter::FilterArgs,
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let repo = g.open()?;
    let (_, snap) = repo.resolve_filtered(&args.snap, &args.filter.filter()?)?;
    let path = snapshot_path(&repo, &snap, &args.path)?;
    let Located::Entry(entry) = repo.locate(&snap, &path)? else {
        return Err(usage(format!(
            "{} is a directory, not a file",
            path.display()
        )));
    };
    let mut out = std::io::stdout().lock();
    repo.write_file(&entry, &mut out)
        .map_err(|e| usage_if_not_file(e, &path))?;
    out.flush()?;
    Ok(())
}

fn usage_if_not_file(e: cairn::Error, path: &std::path::Path) -> anyhow::Error {
    if e.kind() == cairn::ErrorKind::InvalidInput {
        usage(format!(
            "{} is not a regular file (`cairn ls` shows what it is)",
            path.display()
        ))
    } else {
        e.into()
    }
}
