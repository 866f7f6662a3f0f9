//! Chunking: the one-shot `chunk_slice` and the streaming `Chunker` (small,
//! growing buffer; short and interrupted reads) cut the same boundaries; the
//! chunks concatenate back to the input; every chunk but the last is within
//! [min, max] and the last is within [1, max]. Input layout: see
//! `cairn_fuzz::ChunkerInput`.
#![no_main]

use cairn::chunker::{Chunker, ChunkerParams, chunk_slice};
use cairn_fuzz::{ChoppyReader, ChunkerInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let input = ChunkerInput::from_bytes(bytes);
    let data = input.data;
    let p = ChunkerParams::from_average(1 << input.avg_log).expect("exponent in range");
    let (min, max) = (p.min_size as usize, p.max_size as usize);

    let one_shot = chunk_slice(data, &p);
    let mut pos = 0;
    for (i, r) in one_shot.iter().enumerate() {
        assert_eq!(r.start, pos, "chunks are not contiguous");
        assert!(
            !r.is_empty() && r.len() <= max,
            "chunk {i} has {} bytes",
            r.len()
        );
        if i + 1 < one_shot.len() {
            assert!(
                r.len() >= min,
                "chunk {i} of {} bytes is below min",
                r.len()
            );
        }
        pos = r.end;
    }
    assert_eq!(pos, data.len(), "chunks do not cover the input");

    let reader = ChoppyReader::new(data, input.read_step, input.interrupt);
    let mut chunker = Chunker::with_buffer_size(reader, p, input.buffer_size);
    let mut streamed = Vec::with_capacity(one_shot.len());
    let mut joined = Vec::with_capacity(data.len());
    loop {
        let batch = chunker.next_batch().expect("reading a slice never fails");
        if batch.is_empty() {
            assert!(batch.data.is_empty(), "empty batch carries bytes");
            break;
        }
        let base = joined.len();
        let mut end = 0;
        for r in &batch.ranges {
            assert_eq!(r.start, end, "batch ranges are not contiguous");
            joined.extend_from_slice(&batch.data[r.clone()]);
            streamed.push(base + r.start..base + r.end);
            end = r.end;
        }
        assert_eq!(
            end,
            batch.data.len(),
            "batch data is not exactly its chunks"
        );
        assert!(
            joined.len() <= data.len(),
            "streaming yields more than the input"
        );
    }
    assert!(
        joined == data,
        "streamed chunks do not concatenate to the input"
    );
    assert_eq!(
        streamed, one_shot,
        "streaming and one-shot boundaries differ"
    );
});
