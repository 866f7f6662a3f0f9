//! `BlobLocation::decode` (catalog records) never panics and fails only with
//! `Corrupt`; whatever it accepts survives encode/decode unchanged.
#![no_main]

use cairn::ErrorKind;
use cairn::store::BlobLocation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match BlobLocation::decode(data) {
        Ok(loc) => {
            let bytes = loc.encode().expect("a decoded location re-encodes");
            assert_eq!(
                BlobLocation::decode(&bytes).expect("own encoding decodes"),
                loc
            );
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}"),
    }
});
