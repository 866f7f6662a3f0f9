//! A bounded cache of decoded group frames, keyed by (pack, frame offset).
//!
//! Packs are immutable and named by their hash, so a key always denotes the
//! same bytes; readers still verify every blob they slice out. The cache is
//! split into shards, each a small least-recently-used list under its own
//! mutex, so parallel readers rarely wait on each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::id::PackId;

/// Few shards, so that each holds several full groups (1 MiB each): a frame
/// larger than a shard's share of the budget is not kept at all.
const SHARDS: usize = 2;

type Key = (PackId, u64);

pub(crate) struct FrameCache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Key, (Arc<Vec<u8>>, u64)>,
    bytes: usize,
    tick: u64,
}

impl FrameCache {
    /// A cache holding at most about `budget` decoded bytes.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_budget: budget / SHARDS,
        }
    }

    fn shard(&self, key: &Key) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Vec<u8>>> {
        let mut shard = self.shard(key);
        shard.tick += 1;
        let tick = shard.tick;
        shard.map.get_mut(key).map(|(d, t)| {
            *t = tick;
            Arc::clone(d)
        })
    }

    /// Keeps `frame`, evicting the least recently used ones beyond the
    /// budget. A frame larger than a shard's budget is not kept.
    pub(crate) fn insert(&self, key: Key, frame: Arc<Vec<u8>>) {
        if frame.len() > self.shard_budget {
            return;
        }
        let mut shard = self.shard(&key);
        shard.tick += 1;
        let tick = shard.tick;
        let len = frame.len();
        if let Some((old, _)) = shard.map.insert(key, (frame, tick)) {
            shard.bytes -= old.len();
        }
        shard.bytes += len;
        while shard.bytes > self.shard_budget {
            let Some(oldest) = shard
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((d, _)) = shard.map.remove(&oldest) {
                shard.bytes -= d.len();
            }
        }
    }
}

fn shard_of(key: &Key) -> usize {
    let h = usize::from(key.0.as_bytes()[0]) ^ (key.1 as usize).wrapping_mul(0x9e37_79b9);
    h % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let cache = FrameCache::new(SHARDS * 100);
        let p = PackId::from([1u8; 32]);
        // Same shard: offsets chosen so the hash lands in one shard.
        let keys: Vec<Key> = (0u64..)
            .map(|o| (p, o))
            .filter(|k| shard_of(k) == 0)
            .take(3)
            .collect();
        cache.insert(keys[0], Arc::new(vec![0; 40]));
        cache.insert(keys[1], Arc::new(vec![1; 40]));
        assert!(cache.get(&keys[0]).is_some());
        cache.insert(keys[2], Arc::new(vec![2; 40]));
        assert!(cache.get(&keys[0]).is_some(), "recently used stays");
        assert!(cache.get(&keys[1]).is_none(), "least recently used goes");
        assert!(cache.get(&keys[2]).is_some());
        cache.insert(keys[1], Arc::new(vec![0; 101]));
        assert!(cache.get(&keys[1]).is_none(), "over budget is not kept");
    }
}
