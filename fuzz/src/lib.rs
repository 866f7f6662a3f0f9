//! Helpers shared by the fuzz targets and the seed corpus generator.
//!
//! Only the `chunker` target has structured input; its byte layout lives
//! here so `gen_corpus` writes seeds the target reads back exactly.

use std::io::{self, Read};

/// Smallest average-size exponent the `chunker` target uses (1 KiB).
pub const MIN_AVG_LOG: u32 = 10;
/// Largest average-size exponent the `chunker` target uses (16 KiB).
pub const MAX_AVG_LOG: u32 = 14;
/// Bytes of [`ChunkerInput`] header before the data.
pub const CHUNKER_HEADER_BYTES: usize = 5;

/// Input of the `chunker` target.
///
/// ```text
/// byte 0     average size exponent: 10 + (b % 5), so 1 KiB ..= 16 KiB
/// bytes 1-2  u16 LE; the streaming buffer starts at 4 * that many bytes
///            (Chunker clamps it to at least 4 KiB and grows it as needed)
/// byte 3     read step r: each read() returns at most r*r bytes (0: no limit)
/// byte 4     bit 0: every third read() fails with ErrorKind::Interrupted
/// rest       the bytes to chunk
/// ```
///
/// Inputs shorter than the header are padded with zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkerInput<'a> {
    /// Average chunk size is `1 << avg_log`.
    pub avg_log: u32,
    /// Initial streaming buffer size passed to `Chunker::with_buffer_size`.
    pub buffer_size: usize,
    /// Largest read the reader serves at once (`None`: whatever is asked).
    pub read_step: Option<usize>,
    /// Whether the reader injects `Interrupted` errors.
    pub interrupt: bool,
    /// The bytes to chunk.
    pub data: &'a [u8],
}

impl<'a> ChunkerInput<'a> {
    /// Reads the layout documented on the type; never fails.
    pub fn from_bytes(bytes: &'a [u8]) -> Self {
        let mut h = [0u8; CHUNKER_HEADER_BYTES];
        let n = bytes.len().min(CHUNKER_HEADER_BYTES);
        h[..n].copy_from_slice(&bytes[..n]);
        let step = usize::from(h[3]);
        Self {
            avg_log: MIN_AVG_LOG + u32::from(h[0]) % (MAX_AVG_LOG - MIN_AVG_LOG + 1),
            buffer_size: 4 * usize::from(u16::from_le_bytes([h[1], h[2]])),
            read_step: (step != 0).then_some(step * step),
            interrupt: h[4] & 1 == 1,
            data: &bytes[n..],
        }
    }

    /// The bytes [`Self::from_bytes`] turns back into `self`.
    ///
    /// # Panics
    /// When a field is outside what the layout can express (a bug in the
    /// generator, not in fuzzed code).
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!((MIN_AVG_LOG..=MAX_AVG_LOG).contains(&self.avg_log));
        assert_eq!(
            self.buffer_size % 4,
            0,
            "buffer size must be a multiple of 4"
        );
        let quarter = u16::try_from(self.buffer_size / 4).expect("buffer size fits the layout");
        let step = match self.read_step {
            None => 0,
            Some(s) => {
                let r = s.isqrt();
                assert!(
                    r * r == s && (1..=255).contains(&r),
                    "read step must be r*r"
                );
                u8::try_from(r).expect("checked above")
            }
        };
        let avg = u8::try_from(self.avg_log - MIN_AVG_LOG).expect("checked above");
        let mut out = vec![avg];
        out.extend_from_slice(&quarter.to_le_bytes());
        out.push(step);
        out.push(u8::from(self.interrupt));
        out.extend_from_slice(self.data);
        out
    }
}

/// A reader over a slice that serves short reads and, optionally, spurious
/// `Interrupted` errors, as pipes and network file systems may.
pub struct ChoppyReader<'a> {
    data: &'a [u8],
    step: Option<usize>,
    interrupt: bool,
    calls: u64,
}

impl<'a> ChoppyReader<'a> {
    /// A reader over `data` serving at most `step` bytes per call.
    pub fn new(data: &'a [u8], step: Option<usize>, interrupt: bool) -> Self {
        Self {
            data,
            step,
            interrupt,
            calls: 0,
        }
    }
}

impl Read for ChoppyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.interrupt && self.calls.is_multiple_of(3) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = buf
            .len()
            .min(self.data.len())
            .min(self.step.unwrap_or(usize::MAX));
        let (head, rest) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = rest;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunker_input_round_trips() {
        let data = [1u8, 2, 3];
        let input = ChunkerInput {
            avg_log: 12,
            buffer_size: 4 * 1000,
            read_step: Some(49),
            interrupt: true,
            data: &data,
        };
        assert_eq!(ChunkerInput::from_bytes(&input.to_bytes()), input);
        let short = ChunkerInput::from_bytes(&[3]);
        assert_eq!(
            (short.avg_log, short.read_step, short.data),
            (13, None, &[][..])
        );
    }
}
