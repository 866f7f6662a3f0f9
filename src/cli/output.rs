//! Formatting shared by the commands: sizes, times, paths, JSON.

use std::io::Write;

use cairn::SnapshotId;
use cairn::model::Snapshot;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

/// The whole cause chain of an error, `: `-separated, without repeats.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in err.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p == &s) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// 1536 → "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn zoned(ns: i64) -> Option<jiff::Zoned> {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .ok()
        .map(|t| t.to_zoned(TimeZone::system()))
}

/// Local time for tables: `2026-11-21 15:50:56`.
pub fn local_time(ns: i64) -> String {
    zoned(ns).map_or_else(
        || ns.to_string(),
        |z| z.strftime("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// RFC 3339 with the local offset, for JSON.
pub fn rfc3339(ns: i64) -> String {
    zoned(ns).map_or_else(
        || ns.to_string(),
        |z| z.timestamp().display_with_offset(z.offset()).to_string(),
    )
}

/// Parses an RFC 3339 time into ns since the epoch.
pub fn parse_rfc3339(s: &str) -> anyhow::Result<i64> {
    let ts: jiff::Timestamp = s.parse().map_err(|e| {
        super::usage(format!(
            "--time `{s}` is not an RFC 3339 time such as 2026-01-31T09:30:00Z: {e}"
        ))
    })?;
    i64::try_from(ts.as_nanosecond())
        .map_err(|_| super::usage(format!("--time `{s}` is out of range")))
}

/// A path for display: as-is when printable UTF-8, else with `\xNN`, `\n`
/// and `\\` escapes so one entry stays on one line.
pub fn path(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) if !s.chars().any(|c| c.is_control() || c == '\\') => s.to_string(),
        _ => {
            let mut out = String::new();
            for chunk in raw.utf8_chunks() {
                for c in chunk.valid().chars() {
                    match c {
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        '\\' => out.push_str("\\\\"),
                        c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                        c => out.push(c),
                    }
                }
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}

/// `rwxr-xr-x` style mode string with the type letter in front, showing
/// set-id and sticky bits as `ls -l` does (`s`/`S`, `t`/`T`).
pub fn mode_string(type_char: char, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(type_char);
    // (shift of the rwx triple, its special bit, letter when x is set)
    for (shift, special, letter) in [(6u32, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (mode & special != 0, bits & 1 != 0) {
            (true, true) => letter,
            (true, false) => letter.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// The JSON form of a snapshot, shared by `snapshot --json` and `list --json`.
pub fn snapshot_json(id: &SnapshotId, s: &Snapshot) -> Value {
    let m = &s.summary;
    json!({
        "id": id.to_hex(),
        "short_id": id.short(),
        "time": rfc3339(s.time_ns),
        "paths": s.paths.iter().map(|p| path(p)).collect::<Vec<_>>(),
        "tags": s.tags,
        "message": s.message,
        "host": s.host,
        "username": s.username,
        "parent": s.parent.map(|p| p.to_hex()),
        "tree": s.tree.to_hex(),
        "files_new": m.files_new,
        "files_changed": m.files_changed,
        "files_unchanged": m.files_unchanged,
        "dirs": m.dirs,
        "others": m.others,
        "bytes_total": m.bytes_total,
        "bytes_read": m.bytes_read,
        "bytes_added": m.bytes_added,
        "blobs_added": m.blobs_added,
        "errors": m.errors,
        "duration_ms": m.duration_ms,
    })
}

/// Writes a JSON value and a newline to stdout.
pub fn print_json(v: &Value) -> anyhow::Result<()> {
    // Serialised first so a closed pipe surfaces as an io::Error, which the
    // exit-code mapping recognises.
    let mut text = serde_json::to_vec_pretty(v)?;
    text.push(b'\n');
    std::io::stdout().lock().write_all(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_escaped_only_when_needed() {
        assert_eq!(path(b"/a b/c.txt"), "/a b/c.txt");
        assert_eq!(path(b"/x\ny"), "/x\\ny");
        assert_eq!(path(b"/\xff"), "/\\xff");
        assert_eq!(path(b"/a\\b\n"), "/a\\\\b\\n");
    }

    #[test]
    fn sizes_and_modes_format() {
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(mode_string('d', 0o755), "drwxr-xr-x");
        assert_eq!(mode_string('-', 0o640), "-rw-r-----");
        assert_eq!(mode_string('d', 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string('-', 0o4644), "-rwSr--r--");
        assert_eq!(mode_string('-', 0o2755), "-rwxr-sr-x");
    }

    #[test]
    fn rfc3339_parses_offsets() {
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:01Z").unwrap(),
            1_000_000_000
        );
        assert_eq!(
            parse_rfc3339("1970-01-01T01:00:01+01:00").unwrap(),
            1_000_000_000
        );
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
