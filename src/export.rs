//! Writes a snapshot (or chosen paths of it) as a standard archive: tar,
//! zstd-compressed tar, or zip, which any tool can open.
//!
//! The snapshot is walked depth first, one tree node at a time, in the
//! trees' raw-name order; each directory comes before its contents. File
//! contents are streamed chunk by chunk through [`Repository::write_file`],
//! which verifies every chunk against its hash, so memory stays bounded
//! whatever the file sizes (zip keeps one small central-directory record per
//! entry until the end, as the format requires).
//!
//! Archive paths are relative: the snapshot path `/home/me/a.txt` is stored
//! as `home/me/a.txt`, and the directories above it come first, as restore
//! creates them.
//!
//! What each format holds:
//!
//! | entry | tar (GNU format) | zip |
//! |---|---|---|
//! | directory, file | mode, uid/gid, mtime (seconds) | mode, mtime (seconds: extended timestamp field; DOS time in the given zone) |
//! | symlink | symlink entry | `S_IFLNK` mode, target as content (as Info-ZIP) |
//! | FIFO, device | FIFO / device entry | skipped, listed in [`ExportSummary::skipped`] |
//! | socket | skipped | skipped |
//! | non-UTF-8 name | raw bytes | refused ([`ErrorKind::InvalidInput`]) |
//!
//! Hard links are stored as independent regular files: snapshots do not
//! record link structure. Long names use GNU long-name entries in tar; zip
//! files larger than 4 GiB use zip64.
//!
//! **Invariant:** nothing is read from the repository without verification,
//! and [`export_to_path`] never leaves a partial archive under the final name.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use zip::write::{ExtendedFileOptions, FileOptions};
use zip::{CompressionMethod, System, ZipWriter};

use crate::catalog::CatalogReader;
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::id::TreeId;
use crate::model::{Entry, EntryKind, Meta};
use crate::repo::{Repository, locate_in, path_components};
use crate::store::sync_dir;

/// Archive formats `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// POSIX tar with GNU long-name extensions, uncompressed.
    Tar,
    /// The same tar stream, zstd-compressed (`.tar.zst`).
    TarZst,
    /// Zip with deflate (symlinks and directories stored).
    Zip,
}

impl Format {
    /// The format a file name asks for by its extension (`.tar`,
    /// `.tar.zst`/`.tzst`, `.zip`, any case); `None` for anything else.
    pub fn from_file_name(name: &Path) -> Option<Self> {
        let name = name.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".tar") {
            Some(Self::Tar)
        } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Some(Self::TarZst)
        } else if name.ends_with(".zip") {
            Some(Self::Zip)
        } else {
            None
        }
    }

    /// The usual file-name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Tar => "tar",
            Self::TarZst => "tar.zst",
            Self::Zip => "zip",
        }
    }
}

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The archive format.
    pub format: Format,
    /// Absolute paths inside the snapshot to export; everything when empty.
    pub includes: Vec<PathBuf>,
    /// The zone for zip's DOS timestamps, which have no zone of their own
    /// (readers take them as local time). Tar and zip's extended timestamp
    /// field are UTC and do not use it.
    pub time_zone: TimeZone,
    /// zstd level for [`Format::TarZst`].
    pub zstd_level: i32,
}

impl ExportOptions {
    /// The whole snapshot in `format`, DOS times in UTC, zstd level 3.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            includes: Vec::new(),
            time_zone: TimeZone::UTC,
            zstd_level: 3,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Default, Clone)]
pub struct ExportSummary {
    /// Directory entries.
    pub dirs: u64,
    /// Regular files.
    pub files: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// FIFOs and device nodes.
    pub specials: u64,
    /// File content bytes (before compression).
    pub bytes: u64,
    /// Entries the format cannot hold, left out: archive path and why.
    pub skipped: Vec<(Vec<u8>, String)>,
}

/// A writer that can also seek, for zip's seekable writer.
pub trait WriteSeek: Write + Seek {}
impl<T: Write + Seek> WriteSeek for T {}

/// Writes the archive of tree `root` (limited to `opts.includes`) to a
/// stream that cannot seek, such as a pipe: zip entries then carry their
/// sizes in data descriptors after their data.
///
/// # Errors
/// [`ErrorKind::NotFound`] for an include that is not in the snapshot
/// (checked before anything is written); [`ErrorKind::InvalidInput`] for a
/// name zip cannot hold; corruption (naming the file) and I/O errors. After
/// an error the output holds a partial archive.
pub fn export<W: Write>(
    repo: &Repository,
    root: TreeId,
    opts: &ExportOptions,
    out: W,
) -> Result<ExportSummary> {
    match opts.format {
        Format::Zip => run(
            repo,
            root,
            opts,
            ZipSink::new(ZipWriter::new_stream(out), opts),
        )
        .map(|(summary, _)| summary),
        _ => export_tar(repo, root, opts, out),
    }
}

/// As [`export`], to a seekable output (a file): zip entries get their
/// sizes in their local headers, which some readers need.
///
/// # Errors
/// As [`export`].
pub fn export_seekable<W: WriteSeek>(
    repo: &Repository,
    root: TreeId,
    opts: &ExportOptions,
    out: W,
) -> Result<ExportSummary> {
    match opts.format {
        Format::Zip => run(repo, root, opts, ZipSink::new(ZipWriter::new(out), opts))
            .map(|(summary, _)| summary),
        _ => export_tar(repo, root, opts, out),
    }
}

/// Writes the archive to the file `path`: to a temporary file in the same
/// directory first, synced and renamed over `path` only once complete, so a
/// failed export never leaves a partial archive under that name.
///
/// # Errors
/// As [`export`]; I/O errors creating, syncing or renaming the file. The
/// temporary file is removed on error.
pub fn export_to_path(
    repo: &Repository,
    root: TreeId,
    opts: &ExportOptions,
    path: &Path,
) -> Result<ExportSummary> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        Error::invalid(format!(
            "{} does not name a file; give a file name for the archive",
            path.display()
        ))
    })?;
    let (tmp, file) = create_temp(dir, name)?;
    let result = (|| {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let summary = export_seekable(repo, root, opts, &mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| Error::io("writing", &tmp, e.into_error()))?;
        file.sync_all().at("syncing", &tmp)?;
        fs::rename(&tmp, path).at("creating", path)?;
        sync_dir(dir)?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `DIR/.NAME.PID.N.tmp` exclusively.
fn create_temp(dir: &Path, name: &OsStr) -> Result<(PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut n = 0u32;
    loop {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(Error::io("creating", &tmp, e)),
        }
    }
}

fn export_tar<W: Write>(
    repo: &Repository,
    root: TreeId,
    opts: &ExportOptions,
    out: W,
) -> Result<ExportSummary> {
    if opts.format == Format::TarZst {
        let enc = zstd::stream::write::Encoder::new(out, opts.zstd_level).map_err(output_io)?;
        let (summary, enc) = run(repo, root, opts, TarSink::new(enc))?;
        enc.finish()
            .and_then(|mut out| out.flush())
            .map_err(output_io)?;
        Ok(summary)
    } else {
        run(repo, root, opts, TarSink::new(out)).map(|(summary, _)| summary)
    }
}

// ---------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------

/// Where the walk sends entries.
trait Sink {
    fn dir(&mut self, path: &[u8], entry: &Entry) -> Result<()>;
    fn file(&mut self, repo: &Repository, path: &[u8], entry: &Entry, size: u64) -> Result<()>;
    fn symlink(&mut self, path: &[u8], entry: &Entry, target: &[u8]) -> Result<()>;
    /// A FIFO, device or socket: `Ok(Some(reason))` when left out.
    fn special(&mut self, path: &[u8], entry: &Entry) -> Result<Option<String>>;
    /// Ends the archive and hands back the output.
    fn finish(self) -> Result<Self::Out>;
    /// What the sink wrote to.
    type Out;
}

fn run<S: Sink>(
    repo: &Repository,
    root: TreeId,
    opts: &ExportOptions,
    sink: S,
) -> Result<(ExportSummary, S::Out)> {
    let reader = repo.catalog().begin_read()?;
    let mut selectors = Vec::new();
    for inc in &opts.includes {
        // A clear "not in the snapshot" before anything is written.
        locate_in(&reader, root, inc)?;
        selectors.push(path_components(inc)?);
    }
    let all = selectors.is_empty() || selectors.iter().any(Vec::is_empty);
    let mut walk = Walk {
        repo,
        reader: &reader,
        sink,
        summary: ExportSummary::default(),
    };
    walk.tree(root, &mut Vec::new(), &selectors, all)?;
    let out = walk.sink.finish()?;
    Ok((walk.summary, out))
}

struct Walk<'a, S> {
    repo: &'a Repository,
    reader: &'a CatalogReader,
    sink: S,
    summary: ExportSummary,
}

impl<S: Sink> Walk<'_, S> {
    /// Emits the entries of `tree` below archive path `prefix` (empty for
    /// the root, else ending in `/`). `selectors` are the remaining name
    /// lists of the includes that lead here; `all` takes everything.
    fn tree(
        &mut self,
        tree: TreeId,
        prefix: &mut Vec<u8>,
        selectors: &[Vec<Vec<u8>>],
        all: bool,
    ) -> Result<()> {
        let tree = self.reader.tree(&tree)?;
        for entry in &tree.entries {
            let Some((take_all, rests)) = crate::restore::select(selectors, all, &entry.name)
            else {
                continue;
            };
            let len = prefix.len();
            prefix.extend_from_slice(&entry.name);
            let result = self.entry(entry, prefix, &rests, take_all);
            prefix.truncate(len);
            result?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        entry: &Entry,
        path: &mut Vec<u8>,
        rests: &[Vec<Vec<u8>>],
        take_all: bool,
    ) -> Result<()> {
        match &entry.kind {
            EntryKind::Dir { tree } => {
                self.sink.dir(path, entry).map_err(|e| about(e, path))?;
                self.summary.dirs += 1;
                path.push(b'/');
                self.tree(*tree, path, rests, take_all)
            }
            // An include naming something below a non-directory matches nothing.
            _ if !take_all => Ok(()),
            EntryKind::File { size, .. } => {
                self.sink
                    .file(self.repo, path, entry, *size)
                    .map_err(|e| about(e, path))?;
                self.summary.files += 1;
                self.summary.bytes += size;
                Ok(())
            }
            EntryKind::Symlink { target } => {
                self.sink
                    .symlink(path, entry, target)
                    .map_err(|e| about(e, path))?;
                self.summary.symlinks += 1;
                Ok(())
            }
            EntryKind::Fifo | EntryKind::Device { .. } | EntryKind::Socket => {
                match self.sink.special(path, entry).map_err(|e| about(e, path))? {
                    Some(reason) => self.summary.skipped.push((path.clone(), reason)),
                    None => self.summary.specials += 1,
                }
                Ok(())
            }
        }
    }
}

/// Puts the archive path into an error (keeping its kind, and an I/O
/// cause such as a closed pipe).
fn about(e: Error, path: &[u8]) -> Error {
    let shown = show(path);
    let io_cause = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map(|io| io::Error::new(io.kind(), io.to_string()));
    match (e.kind(), io_cause) {
        (ErrorKind::Io, Some(io)) => Error::io(
            "exporting",
            Path::new(OsStr::from_bytes(path)),
            io::Error::new(io.kind(), format!("{e}: {io}")),
        ),
        (kind, _) => Error::new(
            kind,
            format!("exporting {shown}: {}", crate::error::error_chain(&e)),
        ),
    }
}

/// A raw path for messages: valid UTF-8 as is, other bytes as `\xNN`.
fn show(raw: &[u8]) -> String {
    let mut out = String::new();
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Counts the bytes written through it.
struct Counting<'a, W: ?Sized> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write + ?Sized> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a file's verified content to `out`, checking it has `size` bytes.
fn write_content<W: Write + ?Sized>(
    repo: &Repository,
    entry: &Entry,
    size: u64,
    out: &mut W,
) -> Result<()> {
    let mut counting = Counting { inner: out, n: 0 };
    repo.write_file(entry, &mut counting)?;
    if counting.n != size {
        return Err(Error::corrupt(format!(
            "its chunks hold {} bytes but its recorded size is {size}",
            counting.n
        )));
    }
    Ok(())
}

fn mtime_secs(meta: &Meta) -> i64 {
    meta.mtime_ns.div_euclid(1_000_000_000)
}

fn output_io(e: io::Error) -> Error {
    Error::io("writing", Path::new("output"), e)
}

// ---------------------------------------------------------------------------
// tar
// ---------------------------------------------------------------------------

struct TarSink<W: Write> {
    builder: tar::Builder<W>,
}

impl<W: Write> TarSink<W> {
    fn new(out: W) -> Self {
        Self {
            builder: tar::Builder::new(out),
        }
    }

    fn header(entry: &Entry, ty: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(ty);
        h.set_mode(entry.meta.mode & 0o7777);
        h.set_uid(u64::from(entry.meta.uid));
        h.set_gid(u64::from(entry.meta.gid));
        // GNU tar headers hold whole seconds; times before 1970 become 0.
        h.set_mtime(u64::try_from(mtime_secs(&entry.meta)).unwrap_or(0));
        h.set_size(0);
        h
    }

    /// Appends a header (after a GNU long-name entry when needed), no data.
    fn append(&mut self, mut header: tar::Header, path: &[u8]) -> Result<()> {
        self.builder
            .append_data(&mut header, Path::new(OsStr::from_bytes(path)), io::empty())
            .map_err(output_io)
    }
}

impl<W: Write> Sink for TarSink<W> {
    type Out = W;

    fn dir(&mut self, path: &[u8], entry: &Entry) -> Result<()> {
        self.append(Self::header(entry, tar::EntryType::Directory), path)
    }

    fn file(&mut self, repo: &Repository, path: &[u8], entry: &Entry, size: u64) -> Result<()> {
        let mut header = Self::header(entry, tar::EntryType::Regular);
        header.set_size(size);
        // The header with the size, then the content streamed straight into
        // the archive (append_data with no data writes just the header),
        // then the padding to the next 512-byte block.
        self.append(header, path)?;
        let out = self.builder.get_mut();
        write_content(repo, entry, size, out)?;
        let pad = (512 - size % 512) % 512;
        out.write_all(&[0u8; 512][..usize::try_from(pad).unwrap_or(0)])
            .map_err(output_io)
    }

    fn symlink(&mut self, path: &[u8], entry: &Entry, target: &[u8]) -> Result<()> {
        let mut header = Self::header(entry, tar::EntryType::Symlink);
        self.builder
            .append_link(
                &mut header,
                Path::new(OsStr::from_bytes(path)),
                Path::new(OsStr::from_bytes(target)),
            )
            .map_err(output_io)
    }

    fn special(&mut self, path: &[u8], entry: &Entry) -> Result<Option<String>> {
        let mut header = match entry.kind {
            EntryKind::Fifo => Self::header(entry, tar::EntryType::Fifo),
            EntryKind::Device { block, rdev } => {
                let ty = if block {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Char
                };
                let mut h = Self::header(entry, ty);
                h.set_device_major(rustix::fs::major(rdev))
                    .map_err(output_io)?;
                h.set_device_minor(rustix::fs::minor(rdev))
                    .map_err(output_io)?;
                h
            }
            _ => return Ok(Some("tar cannot hold a socket".into())),
        };
        header.set_size(0);
        self.append(header, path).map(|()| None)
    }

    fn finish(self) -> Result<W> {
        // into_inner writes the two zero blocks that end a tar archive.
        let mut out = self.builder.into_inner().map_err(output_io)?;
        out.flush().map_err(output_io)?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// zip
// ---------------------------------------------------------------------------

/// Unix file-type bits for zip's external attributes.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
/// Above this size a zip entry is written with zip64 sizes (4 GiB less a
/// margin for deflate's worst-case growth).
const ZIP64_FROM: u64 = 0xF000_0000;

struct ZipSink<W: Write + Seek> {
    zip: ZipWriter<W>,
    time_zone: TimeZone,
}

impl<W: Write + Seek> ZipSink<W> {
    fn new(zip: ZipWriter<W>, opts: &ExportOptions) -> Self {
        Self {
            zip,
            time_zone: opts.time_zone.clone(),
        }
    }

    fn name(path: &[u8]) -> Result<&str> {
        std::str::from_utf8(path).map_err(|_| {
            Error::invalid(
                "zip names must be UTF-8 and this name is not; export as tar (--format tar), \
                 which keeps names byte for byte, or export the other paths with --include",
            )
        })
    }

    /// Options with mode and both timestamps (DOS local time, and the UTC
    /// extended timestamp field that Info-ZIP and others prefer).
    fn options(
        &self,
        entry: &Entry,
        type_bits: u32,
    ) -> Result<FileOptions<'static, 'static, ExtendedFileOptions>> {
        let secs = mtime_secs(&entry.meta);
        let mut opts = FileOptions::<ExtendedFileOptions>::default()
            .system(System::Unix)
            .external_attributes((type_bits | (entry.meta.mode & 0o7777)) << 16)
            .last_modified_time(self.dos_time(secs));
        if let Ok(t) = i32::try_from(secs) {
            let mut ut = vec![1u8]; // flags: modification time present
            ut.extend_from_slice(&t.to_le_bytes());
            opts.add_extra_field(0x5455, ut, false).map_err(zip_err)?;
        }
        Ok(opts)
    }

    fn dos_time(&self, secs: i64) -> zip::DateTime {
        jiff::Timestamp::from_second(secs)
            .ok()
            .map(|t| t.to_zoned(self.time_zone.clone()).datetime())
            .and_then(|d| {
                zip::DateTime::from_date_and_time(
                    u16::try_from(d.year()).ok()?,
                    d.month().unsigned_abs(),
                    d.day().unsigned_abs(),
                    d.hour().unsigned_abs(),
                    d.minute().unsigned_abs(),
                    d.second().unsigned_abs(),
                )
                .ok()
            })
            // Outside 1980..2107 DOS time cannot say; the extended field can.
            .unwrap_or_default()
    }
}

fn zip_err(e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(io) => output_io(io),
        other => Error::new(ErrorKind::Io, format!("writing zip archive: {other}")),
    }
}

impl<W: Write + Seek> Sink for ZipSink<W> {
    type Out = W;

    fn dir(&mut self, path: &[u8], entry: &Entry) -> Result<()> {
        let name = format!("{}/", Self::name(path)?);
        let opts = self.options(entry, S_IFDIR)?;
        self.zip.add_directory(name, opts).map_err(zip_err)
    }

    fn file(&mut self, repo: &Repository, path: &[u8], entry: &Entry, size: u64) -> Result<()> {
        let name = Self::name(path)?;
        let opts = self
            .options(entry, S_IFREG)?
            .compression_method(CompressionMethod::Deflated)
            .large_file(size >= ZIP64_FROM);
        self.zip.start_file(name, opts).map_err(zip_err)?;
        write_content(repo, entry, size, &mut self.zip)
    }

    fn symlink(&mut self, path: &[u8], entry: &Entry, target: &[u8]) -> Result<()> {
        let name = Self::name(path)?;
        // As Info-ZIP: S_IFLNK in the mode, the target (raw bytes) as content.
        let opts = self
            .options(entry, S_IFLNK)?
            .compression_method(CompressionMethod::Stored);
        self.zip.start_file(name, opts).map_err(zip_err)?;
        self.zip.write_all(target).map_err(output_io)
    }

    fn special(&mut self, _path: &[u8], entry: &Entry) -> Result<Option<String>> {
        Ok(Some(format!("zip cannot hold a {}", entry.type_name())))
    }

    fn finish(self) -> Result<W> {
        let mut out = self.zip.finish().map_err(zip_err)?;
        out.flush().map_err(output_io)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_file_names() {
        let f = |n: &str| Format::from_file_name(Path::new(n));
        assert_eq!(f("a.tar"), Some(Format::Tar));
        assert_eq!(f("dir/B.TAR"), Some(Format::Tar));
        assert_eq!(f("a.tar.zst"), Some(Format::TarZst));
        assert_eq!(f("a.tzst"), Some(Format::TarZst));
        assert_eq!(f("a.zip"), Some(Format::Zip));
        assert_eq!(f("a.tgz"), None);
        assert_eq!(f("zip"), None);
    }

    #[test]
    fn message_paths_escape_only_invalid_bytes() {
        assert_eq!(show(b"a/\xc3\xa9/caf\xe9"), "a/\u{e9}/caf\\xe9");
    }
}
