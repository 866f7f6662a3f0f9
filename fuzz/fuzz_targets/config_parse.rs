//! `RepoConfig::parse` never panics and fails only with `Corrupt` or
//! `UnsupportedVersion`; what it accepts is in range and survives
//! `to_bytes`/`parse` unchanged.
#![no_main]

use cairn::{ErrorKind, RepoConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match RepoConfig::parse(data) {
        Ok(config) => {
            config
                .chunker
                .validate()
                .expect("accepted chunker bounds are valid");
            assert!((1..=19).contains(&config.zstd_level));
            let bytes = config.to_bytes().expect("an accepted config re-encodes");
            assert_eq!(
                RepoConfig::parse(&bytes).expect("own encoding parses"),
                config
            );
        }
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::UnsupportedVersion),
            "{:?}: {e}",
            e.kind()
        ),
    }
});
