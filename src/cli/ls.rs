//! `cairn ls`: list a snapshot's entries.

use std::io::Write;
use std::path::PathBuf;

use cairn::model::{Entry, EntryKind};
use cairn::repo::Located;
use cairn::{Repository, TreeId};

use super::{Globals, output, snapshot_path};

/// List the entries of a snapshot
#[derive(clap::Args)]
#[command(
    long_about = "List the entries of a snapshot below PATH (default: all of it), recursively: \
type and mode, owner, size, modification time, path.\n\n\
SNAP is `latest`, a full snapshot id, or a unique prefix of 4 or more hex characters. \
PATH is absolute as stored, or relative to the current directory or to a snapshotted path.",
    after_help = "Examples:\n  cairn ls latest\n  cairn ls 1a2b3c4d /home/me/project/src\n  \
cairn ls latest --tag pre-deploy\n\n\
Exit status: 0 listed; 1 error; 2 unknown snapshot or path."
)]
pub struct Args {
    /// Snapshot: latest, an id, or a unique id prefix
    pub snap: String,

    /// Path inside the snapshot to list below
    pub path: Option<PathBuf>,

    /// Print a JSON array of entries
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub filter: super::filter::FilterArgs,
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let repo = g.open()?;
    let (_, snap) = repo.resolve_filtered(&args.snap, &args.filter.filter()?)?;
    let start = match &args.path {
        Some(p) => snapshot_path(&repo, &snap, p)?,
        None => PathBuf::from("/"),
    };
    let mut rows = Vec::new();
    match repo.locate(&snap, &start)? {
        Located::Root(id) => walk(&repo, id, b"", &mut rows)?,
        Located::Entry(e) => {
            let base = start.as_os_str().as_encoded_bytes().to_vec();
            let dir = match &e.kind {
                EntryKind::Dir { tree } => Some(*tree),
                _ => None,
            };
            rows.push((base.clone(), e));
            if let Some(tree) = dir {
                walk(&repo, tree, &base, &mut rows)?;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let arr: Vec<_> = rows
            .iter()
            .map(|(p, e)| {
                serde_json::json!({
                    "path": output::path(p),
                    "type": e.type_name(),
                    "mode": format!("{:04o}", e.meta.mode),
                    "uid": e.meta.uid,
                    "gid": e.meta.gid,
                    "size": e.size(),
                    "mtime": output::rfc3339(e.meta.mtime_ns),
                    "link_target": match &e.kind {
                        EntryKind::Symlink { target } => Some(output::path(target)),
                        _ => None,
                    },
                })
            })
            .collect();
        return output::print_json(&serde_json::Value::Array(arr));
    }
    for (p, e) in &rows {
        let link = match &e.kind {
            EntryKind::Symlink { target } => format!(" -> {}", output::path(target)),
            _ => String::new(),
        };
        writeln!(
            out,
            "{}  {:>5}:{:<5}  {:>12}  {}  {}{}",
            output::mode_string(e.type_char(), e.meta.mode),
            e.meta.uid,
            e.meta.gid,
            e.size(),
            output::local_time(e.meta.mtime_ns),
            output::path(p),
            link
        )?;
    }
    Ok(())
}

fn walk(
    repo: &Repository,
    tree: TreeId,
    prefix: &[u8],
    rows: &mut Vec<(Vec<u8>, Entry)>,
) -> anyhow::Result<()> {
    for e in repo.tree(&tree)?.entries {
        let mut p = prefix.to_vec();
        p.push(b'/');
        p.extend_from_slice(&e.name);
        let sub = match &e.kind {
            EntryKind::Dir { tree } => Some(*tree),
            _ => None,
        };
        rows.push((p.clone(), e));
        if let Some(t) = sub {
            walk(repo, t, &p, rows)?;
        }
    }
    Ok(())
}
