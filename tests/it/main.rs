//! cairn's integration tests: one binary, one module per area.
//!
//! Run them with `cargo test --test it` (add a test name to filter, e.g.
//! `cargo test --test it round_trip`). They need no network and no fixtures:
//! every test builds its source tree in a fresh temporary directory with the
//! declarative builder in `support.rs` and compares restores with its tree
//! comparison (names, types, bytes, link targets, modes, mtimes).
//!
//! - `support`: tree builder and comparison, scratch dirs, library and CLI
//!   shortcuts, seeded pseudo-random data.
//! - `backup_restore`: snapshot → restore round trips (incl. a property test
//!   on random trees), `--include`, restore targets, hostile tree records.
//! - `catalog`: `gc` and a snapshot that grew the catalog compact it; a
//!   snapshot beside another lock holder neither compacts nor waits.
//! - `dedup`: unchanged trees read nothing, small edits of big files add
//!   little, change detection by size/mtime/ctime/inode.
//! - `diff`: exact change lists (snapshot/snapshot and snapshot/live),
//!   the mirror property, PATH limits, what is read, `cairn diff` output.
//! - `cli`: the `cairn` binary's contract: exit codes, messages, JSON
//!   output, snapshot references, `cat`/`ls`/`restore`, unreadable files.
//! - `check`: `cairn check` names each kind of damage; `cairn repair`
//!   recovers what the packs hold.
//! - `export`: tar and zip archives read back by `tar` and Python's
//!   zipfile match the source; `--include`; a corrupt chunk leaves no file.
//! - `gc`: forget + gc frees space (within 10% of a fresh repository),
//!   dry runs, leftovers, gc beside a snapshot, a killed gc, `stats`.
//! - `restore_in_place`: `restore --in-place` puts a snapshot back over its
//!   paths, keeps or deletes extras, takes a safety snapshot and prints an
//!   undo command that really undoes it; dry runs and refusals change nothing.
//! - `progress`: progress hooks report totals consistent with the work;
//!   no progress bar without a terminal.
//! - `filters`: `--host`/`--tag`/`--path` for `list` and for what `latest`
//!   names; `init --json`.
//! - `robustness`: special files, excludes and ignore files, the repository
//!   inside its own source, missing sources.
//! - `sqlite`: live SQLite databases stored consistently (backup API) under
//!   a writer, WAL and rollback journal; `--no-sqlite-backup`.
//! - `streams`: `--stdin` and `--stdin-from-command`, failing commands,
//!   dedup across successive dumps.
//!
//! Library tests are preferred; CLI tests run the built binary
//! (`CARGO_BIN_EXE_cairn`) in temporary directories. Some tests behave
//! differently as root: permission tests run the `cairn` child as uid 65534
//! (root reads anything), and device nodes are only tested as root. To see
//! what a normal user sees, run the built test binary under
//! `setpriv --reuid 65534 --regid 65534 --clear-groups`.

mod backup_restore;
mod catalog;
mod check;
mod cli;
mod dedup;
mod diff;
mod durability;
mod export;
mod filters;
mod gc;
mod progress;
mod recipes;
mod restore_in_place;
mod retention;
mod robustness;
mod sqlite;
mod streams;
mod support;
