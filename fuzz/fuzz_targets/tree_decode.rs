//! `Tree::decode` never panics and fails only with `Corrupt`. What it
//! accepts is safe to restore (every name passes `is_valid_name`, names are
//! strictly increasing so none repeats) and survives encode/decode unchanged.
#![no_main]

use cairn::ErrorKind;
use cairn::model::{Tree, is_valid_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tree = match Tree::decode(data) {
        Ok(t) => t,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
            return;
        }
    };
    for e in &tree.entries {
        assert!(
            is_valid_name(&e.name),
            "decode let through the name {:?}",
            e.name
        );
        assert_eq!(tree.get(&e.name), Some(e), "lookup by name misses an entry");
    }
    for pair in tree.entries.windows(2) {
        assert!(pair[0].name < pair[1].name, "entries not strictly sorted");
    }
    let bytes = tree.encode().expect("a decoded tree re-encodes");
    assert_eq!(Tree::decode(&bytes).expect("own encoding decodes"), tree);
    assert_eq!(
        tree.encode().expect("re-encodes"),
        bytes,
        "encoding is not deterministic"
    );
});
