//! Blob framing: how one object's raw bytes are stored inside a pack.
//!
//! ```text
//! offset size  field
//! 0      1     codec: 0 = raw, 1 = zstd
//! 1      4     raw length, u32 little-endian
//! 5      ...   payload (raw bytes, or one zstd frame)
//! ```
//!
//! Each blob is compressed on its own so one chunk can be read without its
//! neighbours. A blob is kept raw when zstd does not make it smaller.
//!
//! **Invariant:** pure; no I/O. `decode` never panics and never allocates
//! more than [`MAX_BLOB_BYTES`], whatever the input.

use std::cell::RefCell;

use crate::error::{Error, Result};

/// Size of the frame header in bytes.
pub const FRAME_HEADER_BYTES: usize = 5;
/// The largest raw object we encode or decode (bounds allocation on decode).
pub const MAX_BLOB_BYTES: usize = 256 << 20;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Frames `raw`, zstd-compressed at `level` unless that does not shrink it.
///
/// # Errors
/// When `raw` exceeds [`MAX_BLOB_BYTES`] or zstd fails.
pub fn encode(raw: &[u8], level: i32) -> Result<Vec<u8>> {
    let raw_len = u32::try_from(raw.len())
        .ok()
        .filter(|&n| n as usize <= MAX_BLOB_BYTES)
        .ok_or_else(|| Error::invalid(format!("object of {} bytes is too large", raw.len())))?;
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + raw.len());
    out.push(CODEC_ZSTD);
    out.extend_from_slice(&raw_len.to_le_bytes());
    let compressed = compress_into(raw, level, &mut out)?;
    if !compressed {
        out.clear();
        out.push(CODEC_RAW);
        out.extend_from_slice(&raw_len.to_le_bytes());
        out.extend_from_slice(raw);
    }
    Ok(out)
}

/// Appends zstd(raw) to `out`; false when the result would not be smaller.
fn compress_into(raw: &[u8], level: i32, out: &mut Vec<u8>) -> Result<bool> {
    if raw.is_empty() {
        return Ok(false);
    }
    let header = out.len();
    // Only worth keeping if strictly smaller than the raw bytes.
    out.resize(header + raw.len() - 1, 0);
    let written = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            let c = zstd::bulk::Compressor::new(level)
                .map_err(|e| Error::invalid(format!("zstd level {level}: {e}")))?;
            *slot = Some((level, c));
        }
        let (_, c) = slot.as_mut().expect("compressor was just set");
        Ok::<_, Error>(c.compress_to_buffer(raw, &mut out[header..]).ok())
    })?;
    match written {
        Some(n) => {
            out.truncate(header + n);
            Ok(true)
        }
        None => {
            out.truncate(header);
            Ok(false)
        }
    }
}

/// The raw length a frame declares, without decoding it.
///
/// # Errors
/// [`crate::ErrorKind::Corrupt`] when the header is short or unknown.
pub fn raw_len(frame: &[u8]) -> Result<usize> {
    header(frame).map(|(_, len)| len)
}

fn header(frame: &[u8]) -> Result<(u8, usize)> {
    if frame.len() < FRAME_HEADER_BYTES {
        return Err(Error::corrupt(format!(
            "blob frame of {} bytes is shorter than its header",
            frame.len()
        )));
    }
    let codec = frame[0];
    if codec != CODEC_RAW && codec != CODEC_ZSTD {
        return Err(Error::corrupt(format!("blob has unknown codec {codec}")));
    }
    let len = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    if len > MAX_BLOB_BYTES {
        return Err(Error::corrupt(format!(
            "blob claims {len} raw bytes, more than the limit"
        )));
    }
    Ok((codec, len))
}

/// Decodes a frame back to its raw bytes.
///
/// Frames `encode` would not write (a zstd frame of incompressible data)
/// are accepted when they decode consistently: the caller's hash check is
/// what proves the bytes are the object's.
///
/// # Errors
/// [`crate::ErrorKind::Corrupt`] for a short or unknown header, a raw
/// length over the limit, a payload that does not decompress, or a length
/// that does not match the header.
pub fn decode(frame: &[u8]) -> Result<Vec<u8>> {
    let (codec, len) = header(frame)?;
    let payload = &frame[FRAME_HEADER_BYTES..];
    let raw = match codec {
        CODEC_RAW => payload.to_vec(),
        _ => decompress(payload, len)
            .map_err(|e| Error::corrupt(format!("blob does not decompress: {e}")))?,
    };
    if raw.len() != len {
        return Err(Error::corrupt(format!(
            "blob decodes to {} bytes, header says {len}",
            raw.len()
        )));
    }
    Ok(raw)
}

/// zstd-decompresses `payload` (at most `capacity` bytes) with this
/// thread's decompression context, created on first use: a fresh context
/// per blob was 5-6% of restore.
fn decompress(payload: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        let d = slot.as_mut().expect("decompressor was just set");
        d.decompress(payload, capacity)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compressible_data_is_compressed() {
        let raw = vec![7u8; 100_000];
        let frame = encode(&raw, 3).unwrap();
        assert_eq!(frame[0], CODEC_ZSTD);
        assert!(frame.len() < 1000);
        assert_eq!(decode(&frame).unwrap(), raw);
    }

    #[test]
    fn incompressible_data_is_stored_raw() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let raw: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let frame = encode(&raw, 3).unwrap();
        assert_eq!(frame[0], CODEC_RAW);
        assert_eq!(frame.len(), raw.len() + FRAME_HEADER_BYTES);
        assert_eq!(decode(&frame).unwrap(), raw);
    }

    #[test]
    fn empty_round_trips() {
        let frame = encode(b"", 3).unwrap();
        assert_eq!(decode(&frame).unwrap(), b"");
    }

    #[test]
    fn lying_header_is_corrupt() {
        let mut frame = encode(&vec![1u8; 1000], 3).unwrap();
        frame[1] = frame[1].wrapping_add(1);
        assert!(decode(&frame).is_err());
        assert!(decode(&[9, 0, 0, 0, 0]).is_err());
        assert!(decode(&[0, 255, 255, 255, 255]).is_err());
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(raw in proptest::collection::vec(any::<u8>(), 0..20_000), level in 1i32..6) {
            prop_assert_eq!(decode(&encode(&raw, level).unwrap()).unwrap(), raw);
        }

        #[test]
        fn decode_never_panics(frame in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&frame);
        }
    }
}
