//! Between the filesystem and [`Meta`]: reading `lstat` results into the
//! model, and applying stored metadata on restore.
//!
//! Unix only: modes, owners, inodes and ctimes are what change detection and
//! faithful restores need.

use std::fs::{File, FileTimes, Metadata, OpenOptions, Permissions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};
use crate::model::{EntryKind, Meta};

fn to_ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// The model's view of an `lstat` result.
pub fn meta_of(md: &Metadata) -> Meta {
    Meta {
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: to_ns(md.mtime(), md.mtime_nsec()),
        ctime_ns: to_ns(md.ctime(), md.ctime_nsec()),
        inode: md.ino(),
    }
}

/// The kind of an entry that is not a regular file, directory or symlink.
pub fn special_kind(md: &Metadata) -> EntryKind {
    let ft = md.file_type();
    if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_block_device() || ft.is_char_device() {
        EntryKind::Device {
            block: ft.is_block_device(),
            rdev: md.rdev(),
        }
    } else {
        EntryKind::Socket
    }
}

/// Opens a source file for reading without following a symlink swapped in
/// since it was listed, and without blocking on a FIFO swapped in.
///
/// # Errors
/// The OS error (`ELOOP` for a symlink).
pub fn open_source_file(path: &Path) -> std::io::Result<File> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
}

/// Nanoseconds since the epoch as a `SystemTime` (negative values allowed).
pub fn system_time(ns: i64) -> SystemTime {
    let abs = Duration::new(
        ns.unsigned_abs() / 1_000_000_000,
        (ns.unsigned_abs() % 1_000_000_000) as u32,
    );
    if ns >= 0 {
        UNIX_EPOCH + abs
    } else {
        UNIX_EPOCH - abs
    }
}

/// Whether this process runs as root (and so restores ownership).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// This machine's host name.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Applies owner (when `owner`), mode and mtime to an open regular file.
///
/// # Errors
/// I/O errors naming `path`.
pub fn apply_to_file(file: &File, path: &Path, meta: &Meta, owner: bool) -> Result<()> {
    apply_to_new_file(file, path, meta, owner, true)
}

/// Applies owner (when `set_owner`), mode (when `set_mode`) and mtime to a
/// file restore just created, with one `futimens` for the times.
///
/// # Errors
/// I/O errors naming `path`.
pub fn apply_to_new_file(
    file: &File,
    path: &Path,
    meta: &Meta,
    set_owner: bool,
    set_mode: bool,
) -> Result<()> {
    if set_owner {
        std::os::unix::fs::fchown(file, Some(meta.uid), Some(meta.gid))
            .at("setting owner of", path)?;
    }
    if set_mode {
        file.set_permissions(Permissions::from_mode(meta.mode))
            .at("setting mode of", path)?;
    }
    let t = system_time(meta.mtime_ns);
    file.set_times(FileTimes::new().set_modified(t).set_accessed(t))
        .at("setting mtime of", path)
}

/// Applies owner (when `owner`), mode (unless a symlink) and mtime to `path`
/// without following a final symlink.
///
/// # Errors
/// I/O errors naming `path`.
pub fn apply_to_path(path: &Path, meta: &Meta, is_symlink: bool, owner: bool) -> Result<()> {
    if owner {
        std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid))
            .at("setting owner of", path)?;
    }
    if !is_symlink {
        std::fs::set_permissions(path, Permissions::from_mode(meta.mode))
            .at("setting mode of", path)?;
    }
    let t = filetime::FileTime::from_system_time(system_time(meta.mtime_ns));
    filetime::set_symlink_file_times(path, t, t).at("setting mtime of", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_and_positive_times_convert() {
        assert_eq!(system_time(0), UNIX_EPOCH);
        assert_eq!(
            system_time(-1_500_000_000),
            UNIX_EPOCH - Duration::from_millis(1500)
        );
        assert_eq!(system_time(2_000_000_001), UNIX_EPOCH + Duration::new(2, 1));
    }
}
