//! Progress reporting hooks for long operations.
//!
//! Snapshot, restore, `check` with data reads and gc tell a [`Progress`]
//! what they are doing: a [`Phase`] (a name, the unit its items count, and
//! totals when they are known up front), then counts of items and bytes as
//! they are done. Every method has a no-op default, so an implementation
//! picks what it needs; [`NoProgress`] ignores everything.
//!
//! The library never draws anything: the CLI turns these calls into a
//! progress bar on a terminal (and nothing otherwise). Calls come from many
//! threads and may be frequent (one per file or per pack, bytes per batch of
//! chunks), so an implementation should keep them cheap (atomic adds).

/// One stage of an operation, announced before its work starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// Short name shown to the user: `scan`, `read`, `restore`, `read-data`, `repack`…
    pub name: &'static str,
    /// What the item count counts: `files`, `packs`…
    pub unit: &'static str,
    /// Items this phase will do, when known.
    pub total_items: Option<u64>,
    /// Bytes this phase will process, when known.
    pub total_bytes: Option<u64>,
}

impl Phase {
    /// A phase with no known totals.
    pub fn new(name: &'static str, unit: &'static str) -> Self {
        Self {
            name,
            unit,
            total_items: None,
            total_bytes: None,
        }
    }

    /// The same phase with known totals.
    #[must_use]
    pub fn totals(mut self, items: u64, bytes: u64) -> Self {
        self.total_items = Some(items);
        self.total_bytes = Some(bytes);
        self
    }
}

/// Receives progress from a long operation. Shared between worker threads.
pub trait Progress: Sync {
    /// A new phase starts; the counts restart from zero.
    fn phase(&self, _phase: &Phase) {}
    /// `n` more items (files, packs) of the current phase are done.
    fn items(&self, _n: u64) {}
    /// `n` more bytes of the current phase are done.
    fn bytes(&self, _n: u64) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
