//! The repository's `config` file: format version and the parameters every
//! writer must agree on (chunker bounds, zstd level, pack size).
//!
//! It is JSON so a person can read it; it is written once, atomically, as
//! the last step of `init`, so a directory without it is not a repository.

use serde::{Deserialize, Serialize};

use crate::chunker::ChunkerParams;
use crate::error::{Error, ErrorKind, Result};

/// Repository format version. 1: first format (see docs/FORMAT.md).
pub const FORMAT_VERSION: u32 = 1;
/// Default average chunk size (see docs/ARCHITECTURE.md for the measurement).
pub const DEFAULT_AVG_CHUNK: u32 = 16 << 10;
/// Default zstd level.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// Default pack size target.
pub const DEFAULT_PACK_BYTES: u64 = 16 << 20;

/// The contents of `REPO/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Repository format version; a newer one is refused.
    pub format_version: u32,
    /// Random id of this repository (hex).
    pub id: String,
    /// Chunk size bounds.
    pub chunker: ChunkerParams,
    /// zstd level for new blobs.
    pub zstd_level: i32,
    /// A pack is closed once it reaches this many bytes.
    pub pack_target_bytes: u64,
}

/// Knobs for `init`.
#[derive(Debug, Clone, Copy)]
pub struct InitOptions {
    /// Average chunk size in bytes (power of two, 1 KiB to 4 MiB).
    pub avg_chunk_size: u32,
    /// zstd level, 1 to 19.
    pub zstd_level: i32,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            avg_chunk_size: DEFAULT_AVG_CHUNK,
            zstd_level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

impl RepoConfig {
    /// A fresh config from options.
    ///
    /// # Errors
    /// When an option is out of range.
    pub fn new(opts: &InitOptions) -> Result<Self> {
        if !(1..=19).contains(&opts.zstd_level) {
            return Err(Error::invalid(format!(
                "zstd level {} is out of range (1 to 19)",
                opts.zstd_level
            )));
        }
        let mut seed = [0u8; 32];
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        seed[..16].copy_from_slice(&t.to_le_bytes());
        seed[16..20].copy_from_slice(&std::process::id().to_le_bytes());
        Ok(Self {
            format_version: FORMAT_VERSION,
            id: blake3::hash(&seed).to_hex()[..32].to_string(),
            chunker: ChunkerParams::from_average(opts.avg_chunk_size)?,
            zstd_level: opts.zstd_level,
            pack_target_bytes: DEFAULT_PACK_BYTES,
        })
    }

    /// Parses and validates a config file's bytes.
    ///
    /// # Errors
    /// [`ErrorKind::UnsupportedVersion`] for a newer format,
    /// [`ErrorKind::Corrupt`] for anything unreadable.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: u32,
        }
        let v: VersionOnly = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(format!("config is not valid: {e}")))?;
        if v.format_version != FORMAT_VERSION {
            return Err(Error::new(
                ErrorKind::UnsupportedVersion,
                format!(
                    "repository format {} is not supported by this cairn (it reads {FORMAT_VERSION}); use a matching cairn version",
                    v.format_version
                ),
            ));
        }
        let c: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(format!("config is not valid: {e}")))?;
        c.chunker
            .validate()
            .map_err(|e| Error::corrupt(format!("config: {e}")))?;
        if !(1..=19).contains(&c.zstd_level) || c.pack_target_bytes < 1 << 16 {
            return Err(Error::corrupt(
                "config: zstd level or pack size out of range",
            ));
        }
        Ok(c)
    }

    /// Pretty JSON bytes.
    ///
    /// # Errors
    /// Only on a serializer failure.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid(format!("cannot encode config: {e}")))?;
        out.push(b'\n');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips() {
        let c = RepoConfig::new(&InitOptions::default()).unwrap();
        assert_eq!(RepoConfig::parse(&c.to_bytes().unwrap()).unwrap(), c);
    }

    #[test]
    fn newer_format_is_refused_with_its_own_kind() {
        let e = RepoConfig::parse(br#"{"format_version": 99}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnsupportedVersion);
        assert_eq!(
            RepoConfig::parse(b"{").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
}
