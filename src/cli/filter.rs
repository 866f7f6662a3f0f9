//! `--host`, `--tag` and `--path`: which snapshots a command considers, and
//! which one `latest` names. One definition, flattened into every command
//! that takes a snapshot reference or lists snapshots.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cairn::SnapshotFilter;

/// Snapshot filter options (`#[command(flatten)]`).
#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Snapshot filter")]
pub struct FilterArgs {
    /// Only snapshots taken on this host (repeatable: any of them); `latest`
    /// then names the newest such snapshot
    #[arg(long = "host", id = "filter_host", value_name = "HOST")]
    pub hosts: Vec<String>,

    /// Only snapshots carrying this tag (repeatable: any of them); `latest`
    /// then names the newest such snapshot
    #[arg(long = "tag", id = "filter_tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Only snapshots whose source paths include this path (absolute, or
    /// relative to the current directory; repeatable: all of them)
    #[arg(long = "path", id = "filter_path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

impl FilterArgs {
    /// The library filter; relative paths are made absolute the way
    /// `cairn snapshot` records them.
    pub fn filter(&self) -> anyhow::Result<SnapshotFilter> {
        let paths = self
            .paths
            .iter()
            .map(|p| absolute(p).map(|a| a.as_os_str().as_bytes().to_vec()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SnapshotFilter {
            hosts: self.hosts.clone(),
            tags: self.tags.clone(),
            paths,
        })
    }
}

/// `p` as `cairn snapshot` records a source path: absolute, `.`/`..`
/// resolved, the parent directory's symlinks resolved when it exists, the
/// last component never followed.
fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let lexical = super::normalize(&cwd.join(p));
    let resolved = match (lexical.parent(), lexical.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|d| d.join(name))
            .unwrap_or_else(|_| lexical.clone()),
        _ => lexical,
    };
    Ok(resolved)
}
