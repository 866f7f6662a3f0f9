//! `Snapshot::decode` never panics and fails only with `Corrupt`; whatever
//! it accepts survives encode/decode unchanged.
#![no_main]

use cairn::ErrorKind;
use cairn::model::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Snapshot::decode(data) {
        Ok(snap) => {
            let bytes = snap.encode().expect("a decoded snapshot re-encodes");
            assert_eq!(
                Snapshot::decode(&bytes).expect("own encoding decodes"),
                snap
            );
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}"),
    }
});
