//! Every catalog table, in one place.
//!
//! Keys are raw 32-byte ids; values are our own versioned encodings, so the
//! catalog's contents do not depend on redb's type encodings.

use redb::TableDefinition;

/// Catalog schema version, stored under `meta["schema"]`. 1: first schema.
pub const SCHEMA_VERSION: u8 = 1;

/// `"schema"` → `[SCHEMA_VERSION]`.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Blob id → encoded [`crate::store::BlobLocation`].
pub const BLOBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blobs");
/// Tree id → encoded [`crate::model::Tree`] (the bytes it is the hash of).
pub const TREES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("trees");
/// Snapshot id → encoded [`crate::model::Snapshot`].
pub const SNAPSHOTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("snapshots");
/// Pack id → encoded [`crate::catalog::PackRecord`].
pub const PACKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("packs");
/// `"policy"` → encoded [`crate::retention::Policy`]. Created on first write;
/// a catalog without it has no stored policy.
pub const POLICY: TableDefinition<&str, &[u8]> = TableDefinition::new("policy");
