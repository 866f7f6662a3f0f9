//! `cairn init`: create a repository.

use anyhow::Context;
use cairn::config::{DEFAULT_AVG_CHUNK, DEFAULT_ZSTD_LEVEL};
use cairn::{InitOptions, Repository};

use super::{Globals, output, usage};

/// Create a new repository
#[derive(clap::Args)]
#[command(
    long_about = "Create a new, empty repository at --repo (or CAIRN_REPO).\n\n\
The directory must not exist or be empty; an existing repository is never overwritten. \
The chunk size and compression level are fixed for the repository's life.",
    after_help = "Examples:\n  cairn --repo /backups/cairn init\n  cairn --repo ./repo init --avg-chunk-size 128KiB --zstd-level 6\n  \
cairn --repo ./repo init --json\n\n\
Exit status: 0 created; 1 I/O error; 2 bad option or the directory is not empty."
)]
pub struct Args {
    /// Average chunk size: a power of two from 1KiB to 4MiB (e.g. 64KiB)
    #[arg(long, value_name = "SIZE", default_value_t = format!("{}KiB", DEFAULT_AVG_CHUNK >> 10))]
    pub avg_chunk_size: String,

    /// zstd compression level, 1 (fastest) to 19 (smallest)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ZSTD_LEVEL)]
    pub zstd_level: i32,

    /// Print the repository's path and configuration as one JSON object
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub fn options(&self) -> anyhow::Result<InitOptions> {
        Ok(InitOptions {
            avg_chunk_size: parse_size(&self.avg_chunk_size)?,
            zstd_level: self.zstd_level,
        })
    }
}

/// "64KiB", "64K", "1MiB", "65536" → bytes.
pub fn parse_size(s: &str) -> anyhow::Result<u32> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(usage(format!("`{s}` is not a size such as 64KiB"))),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| usage(format!("`{s}` is not a size such as 64KiB")))
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let path = g.repo_path()?;
    let repo = Repository::init(path, &args.options()?)
        .with_context(|| format!("creating repository {}", path.display()))?;
    if args.json {
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        return output::print_json(&serde_json::json!({
            "path": output::path(abs.as_os_str().as_encoded_bytes()),
            "id": repo.config().id,
            "config": serde_json::to_value(repo.config())?,
        }));
    }
    if !g.quiet {
        let c = repo.config();
        println!(
            "created cairn repository {} at {} (average chunk {} KiB, zstd level {})",
            &c.id[..8],
            path.display(),
            c.chunker.avg_size >> 10,
            c.zstd_level
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
    }
}
