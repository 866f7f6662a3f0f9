//! `cairn snapshot`: take a snapshot of paths.

use std::path::PathBuf;

use anyhow::Context;
use cairn::archiver::{self, Report, SnapshotOptions, Warning, WarningKind};
use cairn::{InitOptions, LockMode, Repository};

use super::progress::Bar;
use super::{EXIT_PARTIAL, Exit, Globals, output};

/// Take a snapshot of files and directories
#[derive(clap::Args)]
#[command(
    long_about = "Take a snapshot of one or more files or directories.\n\n\
Every file is stored, hidden ones included: nothing is skipped unless you ask with --exclude or \
--ignore-file. Symlinks are stored as links, never followed. Files whose size, mtime, ctime and \
inode match the previous snapshot of the same paths on this host are not read again.",
    after_help = "Examples:\n  cairn --repo ./backups snapshot --init .\n  \
cairn snapshot ~/project --tag pre-deploy --message \"before v1.2\"\n  \
cairn snapshot ~/project --exclude target --exclude '*.log' --ignore-file .gitignore\n\n\
Exit status: 0 snapshot taken; 1 error, nothing committed; 2 bad usage; \
3 snapshot taken but some files could not be read (each named on stderr)."
)]
pub struct Args {
    /// Files or directories to snapshot
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// A message to keep with the snapshot
    #[arg(
        long,
        short = 'm',
        value_name = "TEXT",
        default_value = "",
        hide_default_value = true
    )]
    pub message: String,

    /// Leave out paths matching a gitignore-style pattern (repeatable)
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,

    /// Honour ignore files of this name in every directory, e.g. .gitignore (repeatable)
    #[arg(long = "ignore-file", value_name = "NAME")]
    pub ignore_files: Vec<String>,

    /// Record this time instead of now (RFC 3339, e.g. 2026-01-31T09:30:00Z)
    #[arg(long, value_name = "RFC3339")]
    pub time: Option<String>,

    /// Record this host name (also picks the parent snapshot)
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,

    /// Read every file, even those unchanged since the parent snapshot
    #[arg(long)]
    pub force: bool,

    /// Create the repository first if it does not exist
    #[arg(long)]
    pub init: bool,

    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,
}

struct StderrReport(Bar);

impl Report for StderrReport {
    fn progress(&self) -> &dyn cairn::progress::Progress {
        &self.0
    }

    fn warning(&self, w: &Warning) {
        let what = match w.kind {
            WarningKind::Unreadable => "could not read",
            WarningKind::Vanished => "vanished",
            WarningKind::Changed => "changed during read",
            WarningKind::Skipped => "skipped",
        };
        self.0.eprintln(&format!(
            "warning: {what}: {}: {}",
            output::path(w.path.as_os_str().as_encoded_bytes()),
            w.message
        ));
    }
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let path = g.repo_path()?;
    let created = args.init && !Repository::exists(path);
    if created {
        Repository::init(path, &InitOptions::default())
            .with_context(|| format!("creating repository {}", path.display()))?;
        if !g.quiet && !args.json {
            println!("created repository at {}", path.display());
        }
    }
    let repo = g.open_with(LockMode::Shared)?;
    let mut opts = SnapshotOptions::new(args.paths.clone());
    opts.tags.clone_from(&args.tags);
    opts.message.clone_from(&args.message);
    opts.excludes.clone_from(&args.excludes);
    opts.ignore_files.clone_from(&args.ignore_files);
    opts.force_read = args.force;
    opts.username = std::env::var("USER").unwrap_or_default();
    if let Some(h) = &args.host {
        opts.host.clone_from(h);
    }
    if let Some(t) = &args.time {
        opts.time_ns = Some(output::parse_rfc3339(t)?);
    }
    let report = StderrReport(Bar::new(g.quiet, args.json));
    let result = archiver::snapshot(&repo, &opts, &report).context("taking snapshot")?;
    drop(report);
    let s = &result.snapshot;
    let m = &s.summary;
    if args.json {
        let mut v = output::snapshot_json(&result.id, s);
        v["repository_created"] = created.into();
        v["warnings"] = result
            .warnings
            .iter()
            .map(|w| {
                serde_json::json!({
                    "path": output::path(w.path.as_os_str().as_encoded_bytes()),
                    "kind": format!("{:?}", w.kind).to_lowercase(),
                    "message": w.message,
                })
            })
            .collect();
        output::print_json(&v)?;
    } else if !g.quiet {
        println!("snapshot {} saved", result.id.short());
        println!(
            "  files: {} new, {} changed, {} unchanged; {} dirs",
            m.files_new, m.files_changed, m.files_unchanged, m.dirs
        );
        println!(
            "  read {}, added {} to the repository ({} total in snapshot) in {:.2} s",
            output::bytes(m.bytes_read),
            output::bytes(m.bytes_added),
            output::bytes(m.bytes_total),
            m.duration_ms as f64 / 1000.0
        );
    }
    if m.errors > 0 {
        eprintln!(
            "warning: {} path(s) could not be read and are missing or incomplete in snapshot {}",
            m.errors,
            result.id.short()
        );
        return Err(Exit(EXIT_PARTIAL).into());
    }
    Ok(())
}
