//! `cairn diff`: compare two snapshots, or a snapshot with the live file system.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cairn::diff::{self, Change, ChangeKind, Content, DiffOptions, DiffSummary, Side};
use cairn::model::{Entry, EntryKind, Snapshot};
use cairn::{ErrorKind, Repository, SnapshotFilter, SnapshotId};
use serde_json::{Value, json};

use super::{EXIT_PARTIAL, Exit, Globals, output, snapshot_path, usage};

/// Files larger than this get byte ranges instead of a line diff.
const CONTENT_LIMIT: u64 = 1 << 20;

/// Compare two snapshots, or a snapshot with a live folder
#[derive(clap::Args)]
#[command(
    long_about = "Compare two snapshots, or a snapshot with the live file system, and print \
one line per changed path, sorted by path: `+` added, `-` removed, `M` content modified, \
`m` metadata only (mode, owner, mtime), `T` type changed (file, directory, symlink…). \
A summary line follows with counts and bytes added, removed and changed.\n\n\
A and B are each a snapshot (`latest`, a full id, or a unique prefix of 4 or more hex \
characters) or the path of a live folder or file, which is compared with the same path in \
the snapshot on the other side. An argument containing `/` (such as `./project`) is always a \
path. With only A (a snapshot), it is compared with the live paths it was taken from.\n\n\
Snapshot against snapshot reads only the catalog and skips every subtree that did not \
change. Against a live folder, only files whose size, mtime, ctime or inode differ from the \
snapshot are read, and compared by chunks: a touched but identical file shows as `m`.",
    after_help = "Examples:\n  cairn diff 1a2b3c4d latest\n  cairn diff latest ./project\n  \
cairn diff latest\n  cairn diff --stat 1a2b latest /home/me/project/src\n  \
cairn diff --content latest . README.md\n\n\
Exit status: 0 compared (whether or not anything differs); 1 error; \
2 unknown snapshot or path, or bad usage; 3 compared, but some live files could not be read \
(each named on stderr)."
)]
pub struct Args {
    /// Old side: a snapshot (latest, an id, a unique id prefix) or a live path
    #[arg(value_name = "A")]
    pub old: OsString,

    /// New side, likewise [default: the live paths A was taken from]
    #[arg(value_name = "B")]
    pub new: Option<OsString>,

    /// Compare only these subtrees
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Print one JSON array of changes (an object of counts with --stat)
    #[arg(long)]
    pub json: bool,

    /// Print only the summary, with counts per top-level directory
    #[arg(long)]
    pub stat: bool,

    /// Show a unified diff of modified text files, changed byte ranges of others
    #[arg(long, conflicts_with_all = ["json", "stat"])]
    pub content: bool,

    #[command(flatten)]
    pub filter: super::filter::FilterArgs,
}

/// A command-line side, resolved.
enum Arg {
    Snap(SnapshotId, Box<Snapshot>),
    Live(PathBuf),
}

impl Arg {
    fn side(&self) -> Side<'_> {
        match self {
            Arg::Snap(_, s) => Side::Snapshot(s),
            Arg::Live(p) => Side::Live(vec![p.clone()]),
        }
    }

    fn label(&self) -> String {
        match self {
            Arg::Snap(id, _) => id.short(),
            Arg::Live(_) => "live".to_string(),
        }
    }
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let repo = g.open()?;
    let filter = args.filter.filter()?;
    let old = classify(&repo, &args.old, &filter)?;
    let new = match &args.new {
        Some(b) => classify(&repo, b, &filter)?,
        None => match &old {
            Arg::Snap(..) => Arg::Live(PathBuf::new()),
            Arg::Live(p) => {
                return Err(usage(format!(
                    "`{}` is a path: give a snapshot to compare it with",
                    p.display()
                )));
            }
        },
    };
    if matches!((&old, &new), (Arg::Live(_), Arg::Live(_))) {
        return Err(usage(
            "both arguments are paths: at least one side must be a snapshot",
        ));
    }
    let old_side = old.side();
    let new_side = match args.new {
        Some(_) => new.side(),
        None => Side::Live(Vec::new()),
    };
    let snap = [&old, &new].into_iter().find_map(|a| match a {
        Arg::Snap(_, s) => Some(s.as_ref()),
        Arg::Live(_) => None,
    });
    let mut opts = DiffOptions::default();
    for p in &args.paths {
        opts.paths.push(match snap {
            Some(s) => snapshot_path(&repo, s, p)?,
            None => p.clone(),
        });
    }
    let sides = Sides {
        repo: &repo,
        old: &old,
        new: &new,
    };
    let summary = if args.json || args.stat {
        collect(&repo, &old_side, &new_side, &opts, args)?
    } else {
        stream(&sides, &old_side, &new_side, &opts, args.content)?
    };
    for w in &summary.warnings {
        eprintln!(
            "warning: {}: {}",
            output::path(w.path.as_os_str().as_bytes()),
            w.message
        );
    }
    if summary.warnings.is_empty() {
        Ok(())
    } else {
        Err(Exit(EXIT_PARTIAL).into())
    }
}

/// A snapshot reference, else an existing path. An argument with a `/`
/// (or `.`, `..`, or not UTF-8) is always a path.
fn classify(repo: &Repository, arg: &OsStr, filter: &SnapshotFilter) -> anyhow::Result<Arg> {
    let text = arg
        .to_str()
        .filter(|s| !s.contains('/') && *s != "." && *s != "..");
    let Some(text) = text else {
        return Ok(Arg::Live(PathBuf::from(arg)));
    };
    match repo.resolve_filtered(text, filter) {
        Ok((id, snap)) => Ok(Arg::Snap(id, Box::new(snap))),
        Err(e)
            if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput)
                && Path::new(arg).symlink_metadata().is_ok() =>
        {
            Ok(Arg::Live(PathBuf::from(arg)))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "`{text}` is neither a snapshot nor an existing path"
        ))),
    }
}

struct Sides<'a> {
    repo: &'a Repository,
    old: &'a Arg,
    new: &'a Arg,
}

/// The default output: one line per change as it is found, then the summary.
fn stream(
    sides: &Sides<'_>,
    old: &Side<'_>,
    new: &Side<'_>,
    opts: &DiffOptions,
    content: bool,
) -> anyhow::Result<DiffSummary> {
    let mut out = std::io::stdout().lock();
    let mut failed: Option<anyhow::Error> = None;
    let result = diff::diff(sides.repo, old, new, opts, &mut |c| {
        let written = writeln!(out, "{} {}", c.kind.letter(), output::path(&c.path))
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                if content && c.kind == ChangeKind::Modified {
                    // One unreadable file must not end the listing.
                    show_content(sides, &c, &mut out).or_else(|e| {
                        writeln!(
                            out,
                            "  cannot show the content: {}",
                            output::error_chain(&e)
                        )
                        .map_err(anyhow::Error::from)
                    })
                } else {
                    Ok(())
                }
            });
        written.map_err(|e| {
            failed = Some(e);
            cairn::Error::invalid("output failed")
        })
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let summary = result?;
    writeln!(out, "{}", summary_line(&summary))?;
    Ok(summary)
}

/// `--json` and `--stat`: everything is needed before printing.
fn collect(
    repo: &Repository,
    old: &Side<'_>,
    new: &Side<'_>,
    opts: &DiffOptions,
    args: &Args,
) -> anyhow::Result<DiffSummary> {
    let mut json_rows = Vec::new();
    let mut groups: Vec<(Vec<u8>, Counts)> = Vec::new();
    let summary = diff::diff(repo, old, new, opts, &mut |c| {
        if args.stat {
            // The roots come with the summary: regrouped by directory below.
            groups.push((c.path.clone(), Counts::of(c.kind)));
        } else {
            json_rows.push(change_json(&c));
        }
        Ok(())
    })?;
    if !args.stat {
        output::print_json(&Value::Array(json_rows))?;
        return Ok(summary);
    }
    let per_dir = by_top_dir(&summary.roots, groups);
    if args.json {
        let dirs: Vec<Value> = per_dir
            .iter()
            .map(|(p, n)| {
                json!({
                    "path": output::path(p),
                    "added": n.added, "removed": n.removed, "modified": n.modified,
                    "metadata": n.metadata, "type": n.type_changed,
                })
            })
            .collect();
        output::print_json(&json!({
            "roots": summary.roots.iter().map(|r| output::path(r)).collect::<Vec<_>>(),
            "added": summary.added,
            "removed": summary.removed,
            "modified": summary.modified,
            "metadata": summary.metadata,
            "type": summary.type_changed,
            "bytes_added": summary.bytes_added,
            "bytes_removed": summary.bytes_removed,
            "bytes_changed": summary.bytes_changed,
            "dirs": dirs,
        }))?;
    } else {
        let mut out = std::io::stdout().lock();
        let width = per_dir
            .iter()
            .map(|(p, _)| output::path(p).chars().count())
            .max()
            .unwrap_or(0);
        for (p, n) in &per_dir {
            writeln!(out, "{:<width$}  {}", output::path(p), n.describe())?;
        }
        writeln!(out, "{}", summary_line(&summary))?;
    }
    Ok(summary)
}

/// Change counts of one group.
#[derive(Default, Clone, Copy)]
struct Counts {
    added: u64,
    removed: u64,
    modified: u64,
    metadata: u64,
    type_changed: u64,
}

impl Counts {
    fn of(kind: ChangeKind) -> Self {
        let mut c = Self::default();
        c.add(kind, 1);
        c
    }

    fn add(&mut self, kind: ChangeKind, n: u64) {
        match kind {
            ChangeKind::Added => self.added += n,
            ChangeKind::Removed => self.removed += n,
            ChangeKind::Modified => self.modified += n,
            ChangeKind::Metadata => self.metadata += n,
            ChangeKind::Type => self.type_changed += n,
        }
    }

    fn merge(&mut self, o: &Self) {
        self.added += o.added;
        self.removed += o.removed;
        self.modified += o.modified;
        self.metadata += o.metadata;
        self.type_changed += o.type_changed;
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.added, "added"),
            (self.removed, "removed"),
            (self.modified, "modified"),
            (self.metadata, "metadata"),
            (self.type_changed, "type"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        parts.join(", ")
    }
}

/// Regroups per-path counts under the top-level directory below their root
/// (or the root itself), keeping path order.
fn by_top_dir(roots: &[Vec<u8>], rows: Vec<(Vec<u8>, Counts)>) -> Vec<(Vec<u8>, Counts)> {
    let mut out: Vec<(Vec<u8>, Counts)> = Vec::new();
    for (path, counts) in rows {
        let key = top_dir(roots, &path);
        match out.iter_mut().rev().find(|(k, _)| *k == key) {
            Some((_, c)) => c.merge(&counts),
            None => out.push((key, counts)),
        }
    }
    out
}

fn top_dir(roots: &[Vec<u8>], path: &[u8]) -> Vec<u8> {
    for root in roots {
        let base: &[u8] = if root.as_slice() == b"/" { b"" } else { root };
        if path == root.as_slice() {
            return root.clone();
        }
        if let Some(rest) = path.strip_prefix(base).and_then(|r| r.strip_prefix(b"/")) {
            let first = rest.split(|&b| b == b'/').next().unwrap_or(rest);
            let mut key = base.to_vec();
            key.push(b'/');
            key.extend_from_slice(first);
            return key;
        }
    }
    path.to_vec()
}

fn summary_line(s: &DiffSummary) -> String {
    format!(
        "{} added, {} removed, {} modified, {} metadata, {} type; {} added, {} removed, {} changed",
        s.added,
        s.removed,
        s.modified,
        s.metadata,
        s.type_changed,
        output::bytes(s.bytes_added),
        output::bytes(s.bytes_removed),
        output::bytes(s.bytes_changed),
    )
}

fn change_json(c: &Change) -> Value {
    let mut v = json!({
        "path": output::path(&c.path),
        "change": c.kind.name(),
        "old_type": c.old.as_ref().map(Entry::type_name),
        "new_type": c.new.as_ref().map(Entry::type_name),
        "old_size": c.old.as_ref().map(Entry::size),
        "new_size": c.new.as_ref().map(Entry::size),
    });
    let is_file = matches!(
        c.new.as_ref().map(|e| &e.kind),
        Some(EntryKind::File { .. })
    );
    if c.kind == ChangeKind::Modified && is_file {
        v["chunks_differ"] = json!(c.chunks_differ);
        v["bytes_differ"] = json!(c.bytes_differ);
        v["chunks_dropped"] = json!(c.chunks_dropped);
        v["bytes_dropped"] = json!(c.bytes_dropped);
    }
    v
}

/// Where one side's version of a changed file is.
fn content_of<'a>(arg: &Arg, entry: &'a Entry, path: &'a Path) -> Content<'a> {
    match arg {
        Arg::Snap(..) => Content::Stored(entry),
        Arg::Live(_) => Content::Live(path),
    }
}

/// `--content` for one modified entry.
fn show_content(sides: &Sides<'_>, c: &Change, out: &mut dyn Write) -> anyhow::Result<()> {
    let (Some(old), Some(new)) = (&c.old, &c.new) else {
        return Ok(());
    };
    match (&old.kind, &new.kind) {
        (EntryKind::Symlink { target: a }, EntryKind::Symlink { target: b }) => {
            writeln!(
                out,
                "  link target: {} -> {}",
                output::path(a),
                output::path(b)
            )?;
            return Ok(());
        }
        (EntryKind::Device { rdev: a, .. }, EntryKind::Device { rdev: b, .. }) => {
            writeln!(out, "  device number: {a} -> {b}")?;
            return Ok(());
        }
        (EntryKind::File { .. }, EntryKind::File { .. }) => {}
        _ => return Ok(()),
    }
    let path = Path::new(OsStr::from_bytes(&c.path));
    let old_src = content_of(sides.old, old, path);
    let new_src = content_of(sides.new, new, path);
    let a = diff::read_content(sides.repo, old_src, CONTENT_LIMIT)?;
    let b = diff::read_content(sides.repo, new_src, CONTENT_LIMIT)?;
    let texts = match (&a, &b) {
        (Some(a), Some(b)) => match (as_text(a), as_text(b)) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => {
                writeln!(out, "  binary files differ")?;
                None
            }
        },
        _ => {
            writeln!(
                out,
                "  larger than {}: no line diff",
                output::bytes(CONTENT_LIMIT)
            )?;
            None
        }
    };
    if let Some((a, b)) = texts {
        let shown = output::path(&c.path);
        let diff = similar::TextDiff::from_lines(a, b);
        let mut unified = diff.unified_diff();
        unified.context_radius(3).header(
            &format!("{}:{shown}", sides.old.label()),
            &format!("{}:{shown}", sides.new.label()),
        );
        write!(out, "{unified}")?;
        return Ok(());
    }
    let old_extents = diff::chunk_extents(sides.repo, old_src)?;
    let new_extents = diff::chunk_extents(sides.repo, new_src)?;
    for (what, this, other) in [
        ("new", &new_extents, &old_extents),
        ("old", &old_extents, &new_extents),
    ] {
        let ranges = diff::unique_ranges(this, other);
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        let shown: Vec<String> = ranges.iter().map(|r| format!("{r:?}")).collect();
        writeln!(
            out,
            "  {what} file: {} in chunks the {} file lacks: {}",
            output::bytes(total),
            if what == "new" { "old" } else { "new" },
            if shown.is_empty() {
                "none".to_string()
            } else {
                shown.join(", ")
            }
        )?;
    }
    Ok(())
}

/// The content as text when it is UTF-8 without NUL bytes.
fn as_text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_group_under_the_directory_below_their_root() {
        let roots = vec![b"/p".to_vec(), b"/q/file".to_vec()];
        assert_eq!(top_dir(&roots, b"/p"), b"/p");
        assert_eq!(top_dir(&roots, b"/p/src"), b"/p/src");
        assert_eq!(top_dir(&roots, b"/p/src/a/b"), b"/p/src");
        assert_eq!(top_dir(&roots, b"/q/file"), b"/q/file");
        assert_eq!(top_dir(&[b"/".to_vec()], b"/etc/x"), b"/etc");
        let rows = vec![
            (b"/p/a".to_vec(), Counts::of(ChangeKind::Added)),
            (b"/p/a/x".to_vec(), Counts::of(ChangeKind::Added)),
            (b"/p/b".to_vec(), Counts::of(ChangeKind::Modified)),
        ];
        let grouped = by_top_dir(&roots, rows);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].1.describe(), "2 added");
        assert_eq!(grouped[1].1.describe(), "1 modified");
    }
}
