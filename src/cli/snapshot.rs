//! `cairn snapshot`: take a snapshot of paths.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::Context;
use cairn::archiver::{self, Report, SnapshotOptions, StreamSource, Warning, WarningKind};
use cairn::{InitOptions, LockMode, Repository};

use super::progress::Bar;
use super::{EXIT_PARTIAL, Exit, Globals, output, usage};

/// Take a snapshot of files and directories
#[derive(clap::Args)]
#[command(
    long_about = "Take a snapshot of one or more files or directories, or of a stream.\n\n\
Every file is stored, hidden ones included: nothing is skipped unless you ask with --exclude or \
--ignore-file. Symlinks are stored as links, never followed. Files whose size, mtime, ctime and \
inode match the previous snapshot of the same paths on this host are not read again.\n\n\
SQLite databases (files starting with `SQLite format 3`) are copied consistently through \
SQLite's online backup API, even while another program writes to them, and their -wal, -shm \
and -journal files are left out; --no-sqlite-backup stores the raw bytes instead. Other \
databases (PostgreSQL, MySQL, DuckDB, MongoDB) are not consistent as raw files while running: \
snapshot a dump with --stdin-from-command (see docs/databases.md).\n\n\
--stdin stores standard input as one file /NAME (default name `stdin`); \
--stdin-from-command runs the command given after `--` (no shell) and stores its standard \
output as /NAME (default: the command's file name). A command that exits non-zero or is \
killed commits nothing. Stored streams get mode 0600 and the snapshot's time.",
    after_help = "Examples:\n  cairn --repo ./backups snapshot --init .\n  \
cairn snapshot ~/project --tag pre-deploy --message \"before v1.2\"\n  \
cairn snapshot ~/project --exclude target --exclude '*.log' --ignore-file .gitignore\n  \
pg_dump mydb | cairn snapshot --stdin --stdin-name mydb.sql\n  \
cairn snapshot --stdin-from-command --stdin-name mydb.sql -- pg_dump mydb\n  \
cairn cat latest /mydb.sql > mydb.sql\n\n\
Exit status: 0 snapshot taken; 1 error, nothing committed; 2 bad usage; \
3 snapshot taken but some files could not be read (each named on stderr)."
)]
pub struct Args {
    /// Files or directories to snapshot (with --stdin-from-command: the command and its arguments, after `--`)
    #[arg(
        required_unless_present_any = ["stdin", "stdin_from_command"],
        value_name = "PATH"
    )]
    pub paths: Vec<std::ffi::OsString>,

    /// Store standard input as one file, /NAME (see --stdin-name)
    #[arg(long, conflicts_with = "stdin_from_command")]
    pub stdin: bool,

    /// Run the command given after `--` (no shell) and store its standard output; fails, committing nothing, unless it exits 0
    #[arg(long)]
    pub stdin_from_command: bool,

    /// File name of the stored stream [default: `stdin`, or the command's file name]
    #[arg(long, value_name = "NAME")]
    pub stdin_name: Option<std::ffi::OsString>,

    /// Store SQLite databases as raw bytes (and their -wal/-shm/-journal files) instead of a consistent backup copy
    #[arg(long)]
    pub no_sqlite_backup: bool,

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

/// Refuses options that make no sense for a stream, before anything runs.
fn check_stream_args(args: &Args) -> anyhow::Result<()> {
    if args.stdin && !args.paths.is_empty() {
        return Err(usage(
            "--stdin takes no paths: snapshot standard input and paths separately",
        ));
    }
    if args.stdin_from_command && args.paths.is_empty() {
        return Err(usage(
            "--stdin-from-command needs a command after `--`, e.g. \
             `cairn snapshot --stdin-from-command -- pg_dump mydb`",
        ));
    }
    if !args.excludes.is_empty() || !args.ignore_files.is_empty() || args.force {
        return Err(usage(
            "--exclude, --ignore-file and --force apply to paths, not to a stream",
        ));
    }
    if args.no_sqlite_backup {
        return Err(usage(
            "--no-sqlite-backup applies to paths, not to a stream",
        ));
    }
    if let Some(n) = &args.stdin_name {
        archiver::validate_stream_name(n.as_bytes())?;
    }
    Ok(())
}

pub(super) struct StderrReport(pub(super) Bar);

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
            WarningKind::SqliteFallback => "stored raw",
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
    let stream = args.stdin || args.stdin_from_command;
    if stream {
        check_stream_args(args)?;
    } else if args.stdin_name.is_some() {
        return Err(usage(
            "--stdin-name names a stream: use it with --stdin or --stdin-from-command",
        ));
    }
    let repo = g.open_with(LockMode::Shared)?;
    let paths = if stream {
        Vec::new()
    } else {
        args.paths.iter().map(PathBuf::from).collect()
    };
    let mut opts = SnapshotOptions::new(paths);
    opts.sqlite_backup = !args.no_sqlite_backup;
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
    let result = if stream {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        let source = if args.stdin {
            StreamSource::Reader(&mut lock)
        } else {
            let (program, rest) = args.paths.split_first().expect("checked above");
            StreamSource::Command {
                program: program.clone(),
                args: rest.to_vec(),
            }
        };
        let name = match &args.stdin_name {
            Some(n) => n.as_bytes().to_vec(),
            None => source.default_name(),
        };
        archiver::snapshot_stream(&repo, &opts, &name, source, &report)
            .context("taking snapshot")?
    } else {
        archiver::snapshot(&repo, &opts, &report).context("taking snapshot")?
    };
    drop(report);
    // The snapshot is committed; compact the catalog if it holds much free
    // space and no other process uses the repository (never waits).
    repo.close_compacting()
        .context("compacting the catalog after the snapshot")?;
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
