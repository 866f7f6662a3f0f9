//! Error policy for the library.
//!
//! One error type, [`Error`], carries a [`ErrorKind`] that callers (the CLI's
//! exit-code mapping, `check`) branch on, and a message that names the thing
//! at fault. The kinds keep three families apart:
//!
//! - **corruption**: bytes on disk that do not decode or do not hash to their
//!   name, or a blob the catalog references but no pack holds;
//! - **not found / invalid input**: the user asked for something that does
//!   not exist or gave a value we refuse; these are usage problems;
//! - **I/O**: the operating system said no; the path is always attached.
//!
//! Lower layers attach context (path, object id, table) where the error is
//! first seen; upper layers do not re-stringify. Decoders never panic on
//! bytes read from disk: they return [`ErrorKind::Corrupt`].

use std::fmt;
use std::path::Path;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely: the CLI maps kinds to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operating system refused a read or write.
    Io,
    /// Bytes on disk do not decode, do not match their hash, or are missing.
    Corrupt,
    /// A snapshot, path or object the user named does not exist.
    NotFound,
    /// A snapshot prefix matches more than one snapshot.
    Ambiguous,
    /// A value given by the user is refused (bad option, non-empty target…).
    InvalidInput,
    /// The path is not a cairn repository, or one exists where none may.
    Repository,
    /// The repository was written by a newer cairn.
    UnsupportedVersion,
    /// The catalog database refused an operation.
    Catalog,
}

/// The library's error: a kind plus a message naming the thing at fault.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An I/O error about `path`, saying what we were doing.
    pub fn io(doing: &str, path: &Path, source: std::io::Error) -> Self {
        Self {
            kind: ErrorKind::Io,
            message: format!("{doing} {}", path.display()),
            source: Some(Box::new(source)),
        }
    }

    /// Corrupt or missing repository data.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    /// Something the user named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// A value the user gave is refused.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A catalog (redb) failure, with what we were doing.
    pub fn catalog(doing: &str, source: impl Into<redb::Error>) -> Self {
        let source: redb::Error = source.into();
        let kind = match source {
            redb::Error::Corrupted(_) => ErrorKind::Corrupt,
            _ => ErrorKind::Catalog,
        };
        Self {
            kind,
            message: format!("catalog: {doing}"),
            source: Some(Box::new(source)),
        }
    }

    /// The kind, for callers that branch on it.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the underlying cause is an I/O "not found".
    pub fn is_io_not_found(&self) -> bool {
        self.source
            .as_ref()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Adds "while doing X with PATH" to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, doing: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, doing: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(doing, path, e))
    }
}

/// An error with its sources, `: `-separated.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
