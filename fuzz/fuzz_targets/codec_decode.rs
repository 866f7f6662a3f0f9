//! `codec::decode` never panics and fails only with `Corrupt`; whatever it
//! accepts, `encode` then `decode` gives back unchanged.
#![no_main]

use cairn::ErrorKind;
use cairn::codec::{self, FRAME_HEADER_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match codec::decode(data) {
        Ok(raw) => {
            assert_eq!(
                codec::raw_len(data).ok(),
                Some(raw.len()),
                "header and body disagree"
            );
            for level in [1, 3] {
                let frame = codec::encode(&raw, level).expect("a decoded blob re-encodes");
                assert!(
                    frame.len() <= raw.len() + FRAME_HEADER_BYTES,
                    "encode grew the blob"
                );
                assert_eq!(codec::decode(&frame).expect("own frame decodes"), raw);
            }
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}"),
    }
});
