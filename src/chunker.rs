//! Content-defined chunking (FastCDC 2020, normalisation level 1, gear seed 0).
//!
//! Boundaries depend only on the bytes near them, so an edit in the middle of
//! a file moves at most the chunks around it and the rest deduplicate.
//!
//! [`Chunker`] streams a reader through one fixed buffer and hands out
//! *batches* of chunks: the caller hashes and compresses a batch in parallel,
//! then asks for the next. Memory stays at one buffer however large the file.
//!
//! **Invariant:** pure apart from reading its `Read`; chunk boundaries for a
//! given [`ChunkerParams`] never change within a repository format version
//! (a golden test pins them).

use std::io::{self, Read};
use std::ops::Range;

use fastcdc::v2020::{Normalization, cut, select_masks};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Size of the streaming buffer: one batch of chunks is at most this long.
pub const BATCH_BYTES: usize = 8 << 20;

/// Chunk size bounds, in bytes. `avg` is a power of two; min = avg/4, max = avg*4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// No chunk is shorter, except a file's last.
    pub min_size: u32,
    /// The target average.
    pub avg_size: u32,
    /// No chunk is longer.
    pub max_size: u32,
}

impl ChunkerParams {
    /// Smallest average chunk size accepted.
    pub const MIN_AVG: u32 = 1 << 10;
    /// Largest average chunk size accepted.
    pub const MAX_AVG: u32 = 4 << 20;

    /// Bounds derived from an average: min = avg/4, max = avg*4.
    ///
    /// # Errors
    /// When `avg` is not a power of two between 1 KiB and 4 MiB.
    pub fn from_average(avg: u32) -> Result<Self> {
        if !avg.is_power_of_two() || !(Self::MIN_AVG..=Self::MAX_AVG).contains(&avg) {
            return Err(Error::invalid(format!(
                "average chunk size {avg} must be a power of two between 1 KiB and 4 MiB"
            )));
        }
        Ok(Self {
            min_size: avg / 4,
            avg_size: avg,
            max_size: avg * 4,
        })
    }

    /// Checks bounds read back from a repository's config.
    ///
    /// # Errors
    /// When they are not what [`Self::from_average`] would produce.
    pub fn validate(&self) -> Result<()> {
        let expected = Self::from_average(self.avg_size)?;
        if *self != expected {
            return Err(Error::invalid(format!(
                "chunker bounds {}/{}/{} are not avg/4, avg, avg*4",
                self.min_size, self.avg_size, self.max_size
            )));
        }
        Ok(())
    }

    /// Fixed-size cuts every `size` bytes (for page-structured files whose
    /// pages never shift, such as SQLite databases). Not a repository
    /// setting: [`Self::validate`] refuses it.
    ///
    /// # Panics
    /// When `size` is 0.
    pub fn fixed(size: u32) -> Self {
        assert!(size > 0, "fixed chunk size must be positive");
        Self {
            min_size: size,
            avg_size: size,
            max_size: size,
        }
    }

    fn masks(&self) -> Masks {
        let (s, l) = select_masks(self.avg_size as usize, Normalization::Level1);
        Masks { s, l }
    }
}

#[derive(Clone, Copy)]
struct Masks {
    s: u64,
    l: u64,
}

/// Length of the first chunk of `data` (all of it if no cut point).
fn next_cut(data: &[u8], p: &ChunkerParams, m: Masks) -> usize {
    if p.min_size == p.max_size {
        return (p.max_size as usize).min(data.len());
    }
    let (_, len) = cut(
        data,
        p.min_size as usize,
        p.avg_size as usize,
        p.max_size as usize,
        m.s,
        m.l,
        m.s << 1,
        m.l << 1,
    );
    len.max(1).min(data.len())
}

/// Chunk boundaries of an in-memory buffer.
pub fn chunk_slice(data: &[u8], params: &ChunkerParams) -> Vec<Range<usize>> {
    let masks = params.masks();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let len = next_cut(&data[pos..], params, masks);
        out.push(pos..pos + len);
        pos += len;
    }
    out
}

/// Streams a reader into batches of content-defined chunks.
pub struct Chunker<R> {
    reader: R,
    params: ChunkerParams,
    masks: Masks,
    buf: Vec<u8>,
    limit: usize,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader` with a [`BATCH_BYTES`] buffer.
    pub fn new(reader: R, params: ChunkerParams) -> Self {
        Self::with_buffer_size(reader, params, BATCH_BYTES)
    }

    /// A chunker whose buffer starts at `size` bytes (at least 4 KiB).
    ///
    /// Pass a file's length + 1 so small files get small buffers: the buffer
    /// grows (up to [`BATCH_BYTES`] or twice the max chunk) only when the
    /// input turns out longer than that.
    pub fn with_buffer_size(reader: R, params: ChunkerParams, size: usize) -> Self {
        let limit = BATCH_BYTES.max(2 * params.max_size as usize);
        Self {
            reader,
            params,
            masks: params.masks(),
            buf: vec![0; size.clamp(4096, limit)],
            limit,
            start: 0,
            end: 0,
            eof: false,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        while !self.eof && self.end < self.buf.len() {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next batch of chunks, as ranges into [`Batch::data`]; empty at the end.
    ///
    /// # Errors
    /// Whatever the reader returns (interrupted reads are retried).
    pub fn next_batch(&mut self) -> io::Result<Batch<'_>> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let max = self.params.max_size as usize;
        self.fill()?;
        // A small buffer filled up before one max-size chunk fit: grow it.
        while !self.eof && self.end < max {
            let grown = (self.buf.len() * 2).max(2 * max).min(self.limit);
            self.buf.resize(grown, 0);
            self.fill()?;
        }
        let mut ranges = Vec::new();
        let mut pos = 0;
        // A cut is final only when `max` bytes follow it, or at end of input.
        while pos < self.end && (self.eof || self.end - pos >= max) {
            let len = next_cut(&self.buf[pos..self.end], &self.params, self.masks);
            ranges.push(pos..pos + len);
            pos += len;
        }
        self.start = pos;
        Ok(Batch {
            data: &self.buf[..pos],
            ranges,
        })
    }
}

/// Chunks found in one fill of the buffer.
pub struct Batch<'a> {
    /// The bytes the ranges index into.
    pub data: &'a [u8],
    /// Each chunk's byte range within `data`, in order.
    pub ranges: Vec<Range<usize>>,
}

impl Batch<'_> {
    /// True when the input is exhausted.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn stream_ranges(data: &[u8], params: ChunkerParams, buf: usize) -> Vec<Range<usize>> {
        let mut chunker = Chunker::with_buffer_size(data, params, buf);
        let mut out = Vec::new();
        let mut base = 0;
        loop {
            let batch = chunker.next_batch().unwrap();
            if batch.is_empty() {
                break;
            }
            let consumed = batch.data.len();
            out.extend(batch.ranges.iter().map(|r| r.start + base..r.end + base));
            base += consumed;
        }
        out
    }

    #[test]
    fn params_are_validated() {
        assert!(ChunkerParams::from_average(3000).is_err());
        assert!(ChunkerParams::from_average(512).is_err());
        assert!(ChunkerParams::from_average(8 << 20).is_err());
        let p = ChunkerParams::from_average(65536).unwrap();
        assert_eq!((p.min_size, p.max_size), (16384, 262_144));
        p.validate().unwrap();
    }

    #[test]
    fn golden_boundaries_are_stable() {
        // Changing these breaks dedup against existing repositories.
        let data = pseudo_random(1 << 20, 42);
        let p = ChunkerParams::from_average(16 << 10).unwrap();
        let lens: Vec<usize> = chunk_slice(&data, &p).iter().map(|r| r.len()).collect();
        let ids: Vec<String> = chunk_slice(&data, &p)
            .iter()
            .take(3)
            .map(|r| blake3::hash(&data[r.clone()]).to_hex()[..16].to_string())
            .collect();
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        let actual = format!(
            "{} chunks; first {:?}; ids {:?}",
            lens.len(),
            &lens[..5],
            ids
        );
        assert_eq!(actual, GOLDEN_BOUNDARIES, "chunk boundaries moved");
    }

    const GOLDEN_BOUNDARIES: &str = "50 chunks; first [17406, 18799, 17061, 16828, 10916]; ids [\"849c38adde6d514c\", \"30f6febf3d152f7b\", \"5ed9432f30ad10d5\"]";

    #[test]
    fn edit_in_middle_changes_few_chunks() {
        let p = ChunkerParams::from_average(16 << 10).unwrap();
        let a = pseudo_random(4 << 20, 7);
        let mut b = a.clone();
        b[2 << 20] ^= 0xff;
        b.splice(3 << 20..3 << 20, [1, 2, 3]);
        let ids = |d: &[u8]| -> std::collections::HashSet<_> {
            chunk_slice(d, &p)
                .into_iter()
                .map(|r| blake3::hash(&d[r]))
                .collect()
        };
        let (ia, ib) = (ids(&a), ids(&b));
        let new = ib.difference(&ia).count();
        assert!(new <= 6, "{new} of {} chunks changed", ib.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn streaming_equals_one_shot_and_respects_bounds(
            len in 0usize..600_000, seed in any::<u64>(), avg_log in 10u32..15,
            buf in 0usize..300_000,
        ) {
            let p = ChunkerParams::from_average(1 << avg_log).unwrap();
            let data = pseudo_random(len, seed);
            let one = chunk_slice(&data, &p);
            prop_assert_eq!(&stream_ranges(&data, p, buf), &one);
            let mut pos = 0;
            for (i, r) in one.iter().enumerate() {
                prop_assert_eq!(r.start, pos);
                prop_assert!(r.len() <= p.max_size as usize);
                if i + 1 < one.len() {
                    prop_assert!(r.len() >= p.min_size as usize);
                }
                pos = r.end;
            }
            prop_assert_eq!(pos, data.len());
        }
    }
}
