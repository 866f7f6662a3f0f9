//! `cairn restore`: write a snapshot back to disk.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cairn::model::Snapshot;
use cairn::restore::in_place::{self, Action, Counts, InPlaceOptions, InPlaceOutcome};
use cairn::restore::{self, RestoreOptions};
use cairn::{Repository, SnapshotId};
use serde_json::json;

use super::progress::Bar;
use super::snapshot::StderrReport;
use super::{EXIT_ERROR, Exit, Globals, output, snapshot_paths, usage};

/// Restore a snapshot, or chosen paths of it, into a directory or in place
#[derive(clap::Args)]
#[command(
    group(clap::ArgGroup::new("destination").required(true).args(["target", "in_place"])),
    long_about = "Restore a snapshot into --target, or over the paths it was taken from with \
--in-place: file contents (verified against their hashes), directories, symlinks, empty files, \
permissions and modification times, and owners when run as root.\n\n\
With --target DIR, paths keep their full absolute form below the target (/home/me/p/a.txt is \
restored to DIR/home/me/p/a.txt). A non-empty target is refused unless --overwrite is given. \
Nothing is ever written outside the target, whatever the snapshot contains.\n\n\
With --in-place, the snapshot's source paths (or only the --include paths) are put back as they \
were. cairn first shows what will change (the lines of `cairn diff`: + created, - deleted, \
M modified, m metadata, T type changed; files that are not in the snapshot are kept, marked \
\"(kept)\", unless --delete is given) and asks for confirmation. Before changing anything it \
takes a safety snapshot of those paths as they are now, tagged before-restore, and it ends by \
printing the command that undoes the restore. Each file is replaced atomically (a complete \
temporary file renamed over it); unchanged files are not rewritten; symlinks in the way are \
replaced, never followed; nothing outside the restored paths is changed or deleted.",
    after_help = "Examples:\n  cairn restore latest --target /tmp/restore\n  \
cairn restore 1a2b --target ./out --include /home/me/project/src\n  \
cairn restore latest --tag pre-deploy --host web1 --target ./out\n  \
cairn restore latest --in-place --dry-run\n  \
cairn restore 1a2b --in-place --include /home/me/project/src\n  \
cairn restore 1a2b --in-place --delete --yes          # in a script: no question asked\n\n\
Exit status: 0 restored (or nothing to change, or a dry run); 1 some files could not be \
restored (each named on stderr), the confirmation was declined, or another error; 2 unknown \
snapshot or path, a non-empty target without --overwrite, or --in-place without --yes when \
standard input is not a terminal."
)]
pub struct Args {
    /// Snapshot: latest, an id, or a unique id prefix
    pub snap: String,

    /// Directory to restore into (created if missing)
    #[arg(long, short = 't', value_name = "DIR")]
    pub target: Option<PathBuf>,

    /// Restore over the paths the snapshot was taken from, after a safety
    /// snapshot of them (tag before-restore)
    #[arg(long)]
    pub in_place: bool,

    /// Restore only this path of the snapshot (repeatable); absolute as stored,
    /// or relative to the current directory or to a snapshotted path
    #[arg(long = "include", value_name = "PATH")]
    pub includes: Vec<PathBuf>,

    /// Restore into a non-empty target: entries in the way are replaced (a
    /// directory where the snapshot has a file is deleted with its contents);
    /// files not in the snapshot are left alone
    #[arg(long, conflicts_with = "in_place")]
    pub overwrite: bool,

    /// With --in-place: delete files and directories that are not in the
    /// snapshot (only below the restored paths)
    #[arg(long, conflicts_with = "target")]
    pub delete: bool,

    /// With --in-place: show what would change, change nothing
    #[arg(long, conflicts_with = "target")]
    pub dry_run: bool,

    /// With --in-place: do not ask for confirmation (needed when standard
    /// input is not a terminal)
    #[arg(long, short = 'y', conflicts_with = "target")]
    pub yes: bool,

    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub filter: super::filter::FilterArgs,
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let repo = g.open()?;
    let (id, snap) = repo.resolve_filtered(&args.snap, &args.filter.filter()?)?;
    let includes = snapshot_paths(&repo, &snap, &args.includes)?;
    let Some(target) = &args.target else {
        return run_in_place(g, args, &repo, &id, &snap, includes);
    };
    let opts = RestoreOptions {
        target: target.clone(),
        includes,
        overwrite: args.overwrite,
        owner: cairn::fsmeta::is_root(),
    };
    let bar = Bar::new(g.quiet, args.json);
    let summary = restore::restore_with(&repo, snap.tree, &opts, &bar)
        .with_context(|| format!("restoring snapshot {}", id.short()))?;
    bar.clear();
    print_errors(&summary.errors);
    if args.json {
        output::print_json(&serde_json::json!({
            "id": id.to_hex(),
            "target": target.display().to_string(),
            "files": summary.files,
            "dirs": summary.dirs,
            "others": summary.others,
            "bytes": summary.bytes,
            "errors": errors_json(&summary.errors),
        }))?;
    } else if !g.quiet {
        println!(
            "restored snapshot {} to {}: {} files ({}), {} dirs, {} links/special",
            id.short(),
            target.display(),
            summary.files,
            output::bytes(summary.bytes),
            summary.dirs,
            summary.others
        );
    }
    exit_for(&summary.errors)
}

/// `restore --in-place`: plan, show, confirm, restore, print the undo command.
fn run_in_place(
    g: &Globals,
    args: &Args,
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    includes: Vec<PathBuf>,
) -> anyhow::Result<()> {
    let opts = InPlaceOptions {
        includes,
        delete: args.delete,
        owner: cairn::fsmeta::is_root(),
        username: std::env::var("USER").unwrap_or_default(),
    };
    let plan = in_place::plan(repo, snap, &opts)
        .with_context(|| format!("restoring snapshot {} in place", id.short()))?;
    for w in &plan.warnings {
        eprintln!(
            "warning: {}: {}",
            output::path(w.path.as_os_str().as_bytes()),
            w.message
        );
    }
    let over = plan
        .roots
        .iter()
        .map(|r| output::path(r.as_os_str().as_bytes()))
        .collect::<Vec<_>>()
        .join(", ");
    let n = plan.counts.changes();
    if !args.json && !g.quiet {
        for pc in &plan.changes {
            println!(
                "{} {}{}",
                pc.change.kind.letter(),
                output::path(&pc.change.path),
                if pc.action == Action::Keep {
                    " (kept)"
                } else {
                    ""
                }
            );
        }
        if !plan.changes.is_empty() {
            println!("{}", counts_text(&plan.counts));
        }
    }
    let plan_json = |dry_run: bool| {
        json!({
            "id": id.to_hex(),
            "paths": plan.roots.iter().map(|r| output::path(r.as_os_str().as_bytes())).collect::<Vec<_>>(),
            "dry_run": dry_run,
            "counts": counts_json(&plan.counts),
            "changes": plan.changes.iter().map(|pc| json!({
                "path": output::path(&pc.change.path),
                "change": pc.change.kind.name(),
                "action": match pc.action {
                    Action::Restore => "restore",
                    Action::Delete { .. } => "delete",
                    Action::Keep => "keep",
                },
            })).collect::<Vec<_>>(),
            "safety_snapshot": null,
            "undo": null,
        })
    };
    if n == 0 {
        if args.json {
            output::print_json(&plan_json(args.dry_run))?;
        } else if !g.quiet {
            println!(
                "nothing to restore: {over} already match{} snapshot {}",
                if plan.roots.len() == 1 { "es" } else { "" },
                id.short()
            );
        }
        return Ok(());
    }
    if args.dry_run {
        if args.json {
            output::print_json(&plan_json(true))?;
        } else if !g.quiet {
            println!("dry run: nothing was changed");
        }
        return Ok(());
    }
    if !args.yes {
        confirm(n, &over)?;
    }
    let context = || format!("restoring snapshot {} in place", id.short());
    let saved = {
        let report = StderrReport(Bar::new(g.quiet, args.json));
        in_place::save_current(repo, id, snap, &opts, &report).with_context(context)?
    };
    if !args.json && !g.quiet {
        // Before anything changes: should the restore be interrupted, this
        // names the snapshot that holds the previous state.
        match &saved.safety {
            Some((s, _)) => println!(
                "saved the previous state as snapshot {} (tag {})",
                s.short(),
                in_place::SAFETY_TAG
            ),
            None => println!("nothing existed at {over}: no safety snapshot needed"),
        }
    }
    let bar = Bar::new(g.quiet, args.json);
    let outcome = in_place::apply(repo, snap, &opts, &saved, &bar).with_context(context)?;
    bar.clear();
    print_errors(&outcome.errors);
    let undo = undo_command(repo, &outcome);
    if args.json {
        output::print_json(&json!({
            "id": id.to_hex(),
            "paths": outcome.roots.iter().map(|r| output::path(r.as_os_str().as_bytes())).collect::<Vec<_>>(),
            "dry_run": false,
            "counts": counts_json(&outcome.counts),
            "bytes": outcome.bytes,
            "safety_snapshot": outcome.safety.map(|s| s.to_hex()),
            "undo": undo,
            "errors": errors_json(&outcome.errors),
        }))?;
    } else {
        if !g.quiet {
            println!(
                "restored snapshot {} over {over}: {} ({} written)",
                id.short(),
                counts_text(&outcome.counts),
                output::bytes(outcome.bytes)
            );
        }
        println!("undo with: {undo}");
    }
    exit_for(&outcome.errors)
}

/// Asks on the terminal; refuses (usage error) when there is none.
fn confirm(n: u64, over: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "not restoring in place without confirmation: standard input is not a terminal. \
             Pass --yes to restore (in scripts), or --dry-run to only see what would change",
        ));
    }
    eprint!(
        "Restore {n} change{} over {over}? [y/N] ",
        if n == 1 { "" } else { "s" }
    );
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer")?;
    if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        eprintln!("not restored: nothing was changed");
        Err(Exit(EXIT_ERROR).into())
    }
}

fn counts_text(c: &Counts) -> String {
    let mut s = format!(
        "{} added, {} modified, {} metadata, {} type changed, {} deleted",
        c.added, c.modified, c.metadata, c.type_changed, c.deleted
    );
    if c.kept > 0 {
        s.push_str(&format!(
            ", {} kept (not in the snapshot; --delete removes them)",
            c.kept
        ));
    }
    s
}

fn counts_json(c: &Counts) -> serde_json::Value {
    json!({
        "added": c.added,
        "modified": c.modified,
        "metadata": c.metadata,
        "type_changed": c.type_changed,
        "deleted": c.deleted,
        "kept": c.kept,
        "changes": c.changes(),
    })
}

/// The shell command that undoes an in-place restore: the safety snapshot
/// restored in place with --delete, and the restored paths that did not
/// exist before removed.
fn undo_command(repo: &Repository, outcome: &InPlaceOutcome) -> String {
    let repo_dir = std::fs::canonicalize(repo.root()).unwrap_or_else(|_| repo.root().to_path_buf());
    let mut parts = Vec::new();
    if let Some(s) = &outcome.safety {
        parts.push(format!(
            "cairn --repo {} restore {} --in-place --delete --yes",
            shell_quote(&repo_dir),
            s.to_hex()
        ));
    }
    if !outcome.created.is_empty() {
        let paths: Vec<String> = outcome.created.iter().map(|p| shell_quote(p)).collect();
        parts.push(format!("rm -rf -- {}", paths.join(" ")));
    }
    parts.join(" && ")
}

/// A path as one shell word: bare when it has only safe characters, else in
/// single quotes.
fn shell_quote(p: &Path) -> String {
    let raw = p.as_os_str().as_bytes();
    let safe = !raw.is_empty()
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:=@%".contains(b));
    if safe {
        return String::from_utf8_lossy(raw).into_owned();
    }
    let mut out = String::from("'");
    for chunk in raw.utf8_chunks() {
        out.push_str(&chunk.valid().replace('\'', "'\\''"));
        for b in chunk.invalid() {
            // Not representable in a quoted word: use $'\xNN' for the byte.
            out.push_str(&format!("'$'\\x{b:02x}''"));
        }
    }
    out.push('\'');
    out
}

/// Each path that could not be restored, one line each on stderr.
fn print_errors(errors: &[(PathBuf, String)]) {
    for (p, e) in errors {
        eprintln!("error: {}: {e}", output::path(p.as_os_str().as_bytes()));
    }
}

fn errors_json(errors: &[(PathBuf, String)]) -> Vec<serde_json::Value> {
    errors
        .iter()
        .map(|(p, e)| serde_json::json!({"path": output::path(p.as_os_str().as_bytes()), "message": e}))
        .collect()
}

/// Success, or exit status 1 after a count of the paths that failed.
fn exit_for(errors: &[(PathBuf, String)]) -> anyhow::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    eprintln!("error: {} path(s) could not be restored", errors.len());
    Err(Exit(EXIT_ERROR).into())
}
