//! The command line: global options, the command enum, and the one place
//! where outcomes become exit codes.
//!
//! Only this module prints, reads environment variables or picks an exit
//! code; everything else is the library's.

mod cat;
mod check;
mod diff;
mod export;
mod filter;
mod forget;
mod gc;
mod init;
mod list;
mod ls;
mod output;
mod policy;
mod progress;
mod repair;
mod restore;
mod snapshot;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cairn::{ErrorKind, LockMode, Repository};
use clap::{Parser, Subcommand};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: an error (I/O, corruption, a failed restore…).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: bad usage (unknown option, unknown snapshot, no repository…).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the snapshot was taken but some files could not be read.
pub const EXIT_PARTIAL: u8 = 3;

const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success
  1  error (I/O, corrupt repository data, some files failed to restore)
  2  bad usage (bad option, unknown or ambiguous snapshot, not a repository)
  3  snapshot taken, but some files could not be read (each named on stderr)";

/// A content-addressed, deduplicating snapshot store.
#[derive(Parser)]
#[command(name = "cairn", version, about, after_help = EXIT_STATUS_HELP)]
pub struct Cli {
    /// Repository directory [env: CAIRN_REPO]
    #[arg(long, short = 'r', global = true, env = "CAIRN_REPO", hide_env = true)]
    repo: Option<PathBuf>,

    /// Print only errors and warnings
    #[arg(long, short = 'q', global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Init(init::Args),
    Snapshot(snapshot::Args),
    List(list::Args),
    Ls(ls::Args),
    Cat(cat::Args),
    Diff(diff::Args),
    Restore(restore::Args),
    Export(export::Args),
    Check(check::Args),
    Repair(repair::Args),
    Forget(forget::Args),
    Policy(policy::Args),
    Gc(gc::Args),
    Stats(stats::Args),
}

/// Global settings every command sees.
pub struct Globals {
    repo: Option<PathBuf>,
    quiet: bool,
}

/// An error that carries its own exit code (for "partial success" cases).
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// A usage error (exit code 2) with a message.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(cairn::Error::invalid(msg.into()))
}

impl Globals {
    /// The repository path, or a usage error naming both ways to give it.
    fn repo_path(&self) -> anyhow::Result<&Path> {
        self.repo
            .as_deref()
            .ok_or_else(|| usage("no repository given: pass --repo PATH or set CAIRN_REPO"))
    }

    /// Opens the repository with a shared lock, saying so if it has to wait.
    fn open(&self) -> anyhow::Result<Repository> {
        self.open_with(LockMode::Shared)
    }

    fn open_with(&self, mode: LockMode) -> anyhow::Result<Repository> {
        let path = self.repo_path()?;
        let wait = || {
            eprintln!(
                "waiting for another cairn process to release {}",
                path.display()
            )
        };
        Repository::open(path, mode, &wait)
            .with_context(|| format!("opening repository {}", path.display()))
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    // redb can panic on a damaged catalog page rather than return an error;
    // a user should get a way out, not a backtrace and exit code 101.
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "error: cairn stopped on an internal error: {info}\n\
             If the repository is damaged, `cairn check` says where and \
             `cairn repair` rebuilds the catalog from the packs."
        );
    }));
    match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(_) => ExitCode::from(EXIT_ERROR),
    }
}

fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let globals = Globals {
        repo: cli.repo,
        quiet: cli.quiet,
    };
    let result = match cli.command {
        Command::Init(a) => init::run(&globals, &a),
        Command::Snapshot(a) => snapshot::run(&globals, &a),
        Command::List(a) => list::run(&globals, &a),
        Command::Ls(a) => ls::run(&globals, &a),
        Command::Cat(a) => cat::run(&globals, &a),
        Command::Diff(a) => diff::run(&globals, &a),
        Command::Restore(a) => restore::run(&globals, &a),
        Command::Export(a) => export::run(&globals, &a),
        Command::Check(a) => check::run(&globals, &a),
        Command::Repair(a) => repair::run(&globals, &a),
        Command::Forget(a) => forget::run(&globals, &a),
        Command::Policy(a) => policy::run(&globals, &a),
        Command::Gc(a) => gc::run(&globals, &a),
        Command::Stats(a) => stats::run(&globals, &a),
    };
    ExitCode::from(exit_code(result))
}

/// The one mapping from outcome to exit code.
fn exit_code(result: anyhow::Result<()>) -> u8 {
    let Err(err) = result else {
        return EXIT_OK;
    };
    if let Some(Exit(code)) = err.downcast_ref::<Exit>() {
        return *code;
    }
    // A closed pipe (`cairn ls … | head`) is not a failure.
    if err
        .chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    {
        return EXIT_OK;
    }
    eprintln!("error: {}", output::error_chain(&err));
    match err.chain().find_map(|c| c.downcast_ref::<cairn::Error>()) {
        Some(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidInput
                    | ErrorKind::NotFound
                    | ErrorKind::Ambiguous
                    | ErrorKind::Repository
            ) =>
        {
            EXIT_USAGE
        }
        _ => EXIT_ERROR,
    }
}

/// [`snapshot_path`] for each of `args` (`--include` lists).
pub fn snapshot_paths(
    repo: &Repository,
    snap: &cairn::model::Snapshot,
    args: &[PathBuf],
) -> anyhow::Result<Vec<PathBuf>> {
    args.iter().map(|p| snapshot_path(repo, snap, p)).collect()
}

/// Interprets a user-given path inside `snap`: absolute as stored; relative
/// to the current directory, else to one of the snapshot's source paths.
pub fn snapshot_path(
    repo: &Repository,
    snap: &cairn::model::Snapshot,
    arg: &Path,
) -> anyhow::Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if arg.is_absolute() {
        return Ok(normalize(arg));
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let mut candidates = vec![normalize(&cwd.join(arg))];
    for p in &snap.paths {
        candidates.push(normalize(
            &Path::new(std::ffi::OsStr::from_bytes(p)).join(arg),
        ));
    }
    Ok(candidates
        .iter()
        .find(|c| repo.locate(snap, c).is_ok())
        .unwrap_or(&candidates[0])
        .clone())
}

/// Lexically removes `.` and resolves `..` against the preceding name.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
