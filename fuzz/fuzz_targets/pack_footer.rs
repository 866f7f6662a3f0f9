//! `pack::parse_footer` never panics and fails only with `Corrupt`; every
//! entry it accepts lies between the pack header and the footer, so reading
//! a blob at that location can never run into the footer or off the file,
//! and every blob lies inside its decoded frame, whose entries agree.
#![no_main]

use cairn::ErrorKind;
use cairn::store::pack::{PACK_HEADER, PACK_TRAILER_BYTES, parse_footer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let entries = match parse_footer(data) {
        Ok(entries) => entries,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
            return;
        }
    };
    // Recomputed from the trailer here rather than trusted from the parser.
    let len_at = data.len() - PACK_TRAILER_BYTES;
    let footer_len = u32::from_le_bytes(data[len_at..len_at + 4].try_into().expect("4 bytes"));
    let blobs_end = len_at
        .checked_sub(footer_len as usize)
        .expect("accepted footer length fits in the file") as u64;
    assert!(
        blobs_end >= PACK_HEADER.len() as u64,
        "footer overlaps the header"
    );
    for e in &entries {
        assert!(
            e.offset >= PACK_HEADER.len() as u64,
            "entry inside the header: {e:?}"
        );
        assert!(
            e.offset + u64::from(e.length) <= blobs_end,
            "entry runs past the blob area ({blobs_end}): {e:?}"
        );
        assert!(
            u64::from(e.inner) + u64::from(e.raw_len) <= u64::from(e.frame_raw),
            "blob outside its frame: {e:?}"
        );
    }
    for pair in entries.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.offset == b.offset {
            assert!(a.length == b.length && a.frame_raw == b.frame_raw, "{a:?} {b:?}");
        } else {
            assert!(b.offset >= a.offset + u64::from(a.length), "frames overlap: {a:?} {b:?}");
        }
    }
});
