//! `cairn export`: write a snapshot as a tar or zip archive.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use cairn::export::{self, ExportOptions, ExportSummary, Format};

use super::{Globals, output, snapshot_paths, usage};

/// Write a snapshot, or chosen paths of it, as a tar or zip archive
#[derive(clap::Args)]
#[command(
    long_about = "Write a snapshot, or the paths chosen with --include, as a standard archive \
that tar, unzip, file managers and other backup tools can open: directories, files (with their \
modes and modification times, and owners in tar), symlinks and empty files. Every chunk is \
verified against its hash as it is read, and the archive is streamed: memory use does not grow \
with file sizes.\n\n\
Paths in the archive are relative and keep their full form from the snapshot: \
/home/me/project/src/main.rs is stored as home/me/project/src/main.rs.\n\n\
The format is --format, else taken from the -o file name (.tar, .tar.zst or .tzst, .zip), \
else tar. tar keeps FIFOs and device nodes, owners and names that are not UTF-8; zip leaves \
FIFOs, devices and sockets out with a warning, and refuses names that are not UTF-8. Hard \
links become separate files in both.\n\n\
With -o FILE the archive is written to a temporary file next to FILE and renamed into place \
only when complete, so a failed export never leaves a partial FILE. Without -o (or with -o -) \
it goes to standard output, which must not be a terminal.",
    after_help = "Examples:\n  cairn export latest -o project.tar\n  \
cairn export latest -o project.zip --include /home/me/project/src\n  \
cairn export 1a2b --format tar.zst > backup.tar.zst\n  \
cairn export latest | tar -tvf -\n  \
cairn export latest | gzip > project.tar.gz\n\n\
Exit status: 0 written (entries the format cannot hold are named on stderr); 1 error, e.g. a \
corrupt chunk (no -o FILE is left behind); 2 bad usage: unknown snapshot or path, a terminal as \
output, an unsupported file extension, or a name zip cannot hold."
)]
pub struct Args {
    /// Snapshot: latest, an id, or a unique id prefix
    pub snap: String,

    /// Export only this path of the snapshot (repeatable); absolute as stored,
    /// or relative to the current directory or to a snapshotted path
    #[arg(long = "include", value_name = "PATH")]
    pub includes: Vec<PathBuf>,

    /// Archive format [default: from the -o extension, else tar]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,

    /// Write the archive to FILE (`-`: standard output, the default)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub filter: super::filter::FilterArgs,
}

/// `--format` values.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// Uncompressed tar (GNU long names)
    Tar,
    /// zstd-compressed tar
    #[value(name = "tar.zst")]
    TarZst,
    /// Zip, deflate-compressed
    Zip,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Tar => Format::Tar,
            FormatArg::TarZst => Format::TarZst,
            FormatArg::Zip => Format::Zip,
        }
    }
}

/// Compressed-tar names we do not write; saying so beats a plain tar
/// behind a misleading name.
const UNSUPPORTED: [&str; 7] = [
    ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".gz",
];

fn format_for(args: &Args, file: Option<&Path>) -> anyhow::Result<Format> {
    if let Some(f) = args.format {
        return Ok(f.into());
    }
    let Some(file) = file else {
        return Ok(Format::Tar);
    };
    if let Some(f) = Format::from_file_name(file) {
        return Ok(f);
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if let Some(ext) = UNSUPPORTED.iter().find(|e| name.ends_with(*e)) {
        return Err(usage(format!(
            "cairn export does not write {ext} archives; use -o NAME.tar.zst, or compress the \
             tar stream yourself: `cairn export SNAP | gzip > NAME.tar.gz`"
        )));
    }
    Ok(Format::Tar)
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let file = args.output.as_deref().filter(|p| *p != Path::new("-"));
    let format = format_for(args, file)?;
    if file.is_none() && std::io::stdout().is_terminal() {
        return Err(usage(
            "refusing to write a binary archive to a terminal; redirect standard output \
             (`> FILE`, `| tar -tvf -`) or pass -o FILE",
        ));
    }
    let repo = g.open()?;
    let (id, snap) = repo.resolve_filtered(&args.snap, &args.filter.filter()?)?;
    let includes = snapshot_paths(&repo, &snap, &args.includes)?;
    let opts = ExportOptions {
        format,
        includes,
        time_zone: jiff::tz::TimeZone::system(),
        ..ExportOptions::new(format)
    };
    let summary = match file {
        Some(path) => export::export_to_path(&repo, snap.tree, &opts, path)
            .with_context(|| format!("exporting snapshot {} to {}", id.short(), path.display()))?,
        None => {
            let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            let summary = export::export(&repo, snap.tree, &opts, &mut out)
                .with_context(|| format!("exporting snapshot {}", id.short()))?;
            out.flush()?;
            summary
        }
    };
    report(g, &id, format, file, &summary);
    Ok(())
}

fn report(
    g: &Globals,
    id: &cairn::SnapshotId,
    format: Format,
    file: Option<&Path>,
    s: &ExportSummary,
) {
    for (path, why) in &s.skipped {
        eprintln!("warning: {} left out: {why}", output::path(path));
    }
    if g.quiet {
        return;
    }
    // Standard error: standard output may be the archive.
    eprintln!(
        "exported snapshot {} as {} to {}: {} files ({}), {} dirs, {} symlinks, {} special{}",
        id.short(),
        format.extension(),
        file.map_or_else(
            || "standard output".to_string(),
            |p| p.display().to_string()
        ),
        s.files,
        output::bytes(s.bytes),
        s.dirs,
        s.symlinks,
        s.specials,
        if s.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} left out", s.skipped.len())
        }
    );
}
