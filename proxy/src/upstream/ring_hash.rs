//! Consistent hashing: a ring of virtual nodes.
//!
//! Each endpoint owns [`VIRTUAL_NODES`] points on a 64-bit ring, placed by a
//! stable hash of its address and the point's number, so every proxy process
//! builds the same ring from the same addresses. A key goes to the owner of
//! the first point at or after the key's hash (wrapping). Removing an
//! endpoint moves only the keys it owned; adding one takes keys only from
//! others' arcs, about 1/n of them.

use std::net::SocketAddr;

/// Points per endpoint: enough for an even spread (each endpoint's share is
/// within a few percent of 1/n) while keeping the ring small.
pub(crate) const VIRTUAL_NODES: usize = 160;

/// The ring for one endpoint set; indices refer to that set's order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ring {
    /// `(point, endpoint index)`, sorted.
    points: Vec<(u64, u32)>,
}

impl Ring {
    pub(crate) fn new(addrs: &[SocketAddr]) -> Self {
        let mut points = Vec::with_capacity(addrs.len() * VIRTUAL_NODES);
        for (index, addr) in addrs.iter().enumerate() {
            let key = addr.to_string();
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            for node in 0..VIRTUAL_NODES {
                let mut bytes = Vec::with_capacity(key.len() + 8);
                bytes.extend_from_slice(key.as_bytes());
                bytes.push(b'#');
                bytes.extend_from_slice(node.to_string().as_bytes());
                points.push((hash(&bytes), index));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// The endpoint owning `key_hash`: the owner of the first point at or
    /// after it, skipping points of endpoints `usable` rejects. `None` when
    /// the ring is empty or no endpoint is usable.
    pub(crate) fn lookup(
        &self,
        key_hash: u64,
        mut usable: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let len = self.points.len();
        if len == 0 {
            return None;
        }
        let start = self.points.partition_point(|&(point, _)| point < key_hash);
        (0..len)
            .map(|step| self.points[(start + step) % len].1 as usize)
            .find(|&index| usable(index))
    }
}

/// A stable 64-bit hash (FNV-1a, then a murmur3 finaliser to spread the bits):
/// the same input gives the same value on every build and platform.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn addrs(n: usize) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([10, 0, 0, i as u8 + 1], 8080)))
            .collect()
    }

    fn owner(ring: &Ring, set: &[SocketAddr], key: &str) -> SocketAddr {
        set[ring.lookup(hash(key.as_bytes()), |_| true).unwrap()]
    }

    #[test]
    fn hash_is_stable() {
        // Pinned values: changing the hash would remap every sticky session.
        assert_eq!(hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(hash(b"user-42"), 0xa395_32c7_ab05_1e8d);
        assert_eq!(hash(b"10.0.0.1:8080#0"), 0x6528_3bf9_882a_6167);
    }

    #[test]
    fn same_key_same_endpoint_and_even_spread() {
        let set = addrs(4);
        let ring = Ring::new(&set);
        let mut counts: HashMap<SocketAddr, usize> = HashMap::new();
        for i in 0..20_000 {
            let key = format!("session-{i}");
            let first = owner(&ring, &set, &key);
            assert_eq!(owner(&ring, &set, &key), first);
            *counts.entry(first).or_default() += 1;
        }
        assert_eq!(counts.len(), 4);
        for (addr, count) in counts {
            // 5000 expected; virtual nodes keep each share well within ±30%.
            assert!((3_500..=6_500).contains(&count), "{addr}: {count}");
        }
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_keys() {
        let before_set = addrs(5);
        let before = Ring::new(&before_set);
        let removed = before_set[2];
        let after_set: Vec<_> = before_set
            .iter()
            .copied()
            .filter(|a| *a != removed)
            .collect();
        let after = Ring::new(&after_set);
        let mut moved = 0;
        for i in 0..10_000 {
            let key = format!("k{i}");
            let old = owner(&before, &before_set, &key);
            let new = owner(&after, &after_set, &key);
            if old == removed {
                moved += 1;
                assert_ne!(new, removed);
            } else {
                assert_eq!(new, old, "key {key} moved although its endpoint stayed");
            }
        }
        // The removed endpoint held about a fifth of the keys.
        assert!((1_000..=3_000).contains(&moved), "{moved} keys moved");
    }

    #[test]
    fn unusable_endpoints_are_skipped_and_empty_ring_gives_none() {
        let set = addrs(3);
        let ring = Ring::new(&set);
        for i in 0..1_000 {
            let h = hash(format!("x{i}").as_bytes());
            let preferred = ring.lookup(h, |_| true).unwrap();
            let fallback = ring.lookup(h, |index| index != preferred).unwrap();
            assert_ne!(fallback, preferred);
        }
        assert_eq!(ring.lookup(1, |_| false), None);
        assert_eq!(Ring::new(&[]).lookup(1, |_| true), None);
    }
}
