//! Object ids: the BLAKE3 hash of an object's raw bytes, and typed wrappers
//! so a [`TreeId`] cannot be passed where a [`ChunkId`] is expected.
//!
//! **Invariant:** every id in a repository is `blake3(raw bytes)` of the
//! object it names (a chunk's content, a tree's or snapshot's encoded record),
//! so any reader can verify what it loaded.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Length of an id in bytes.
pub const ID_BYTES: usize = 32;

/// A 32-byte BLAKE3 hash naming an object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(pub [u8; ID_BYTES]);

impl ObjectId {
    /// The id of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(ID_BYTES * 2);
        for b in self.0 {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        s
    }

    /// The first 8 hex characters, as shown in listings.
    pub fn short(&self) -> String {
        self.to_hex()[..8].to_string()
    }

    /// Parses 64 hex characters.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `s` is not 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != ID_BYTES * 2 {
            return Err(Error::invalid(format!(
                "`{s}` is not a full id (64 hex characters)"
            )));
        }
        let mut out = [0u8; ID_BYTES];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0]);
            let lo = hex_digit(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = (h << 4) | l,
                _ => return Err(Error::invalid(format!("`{s}` is not hexadecimal"))),
            }
        }
        Ok(Self(out))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

impl FromStr for ObjectId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_hex(s)
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub ObjectId);

        impl $name {
            /// The id of `data`.
            pub fn of(data: &[u8]) -> Self {
                Self(ObjectId::of(data))
            }
            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; ID_BYTES] {
                &self.0 .0
            }
            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
            /// The first 8 hex characters.
            pub fn short(&self) -> String {
                self.0.short()
            }
        }

        impl From<[u8; ID_BYTES]> for $name {
            fn from(bytes: [u8; ID_BYTES]) -> Self {
                Self(ObjectId(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.short())
            }
        }
    };
}

typed_id!(
    /// Names a chunk of file content.
    ChunkId
);
typed_id!(
    /// Names an encoded directory [`crate::model::Tree`].
    TreeId
);
typed_id!(
    /// Names an encoded [`crate::model::Snapshot`] record.
    SnapshotId
);
typed_id!(
    /// Names a pack file: the hash of its whole contents.
    PackId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let id = ObjectId::of(b"cairn");
        assert_eq!(ObjectId::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(id.short().len(), 8);
        assert!(id.to_hex().starts_with(&id.short()));
    }

    #[test]
    fn id_is_blake3_of_bytes() {
        assert_eq!(
            ObjectId::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn bad_hex_is_refused() {
        assert!(ObjectId::from_hex("xyz").is_err());
        assert!(ObjectId::from_hex(&"g".repeat(64)).is_err());
    }
}
