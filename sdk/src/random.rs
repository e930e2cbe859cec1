//! Randomness from the proxy.

use crate::backend;

/// A random `u64`.
pub fn u64() -> u64 {
    backend::random_u64()
}

/// A random number in `0..n` (`0` when `n` is `0`), without modulo bias.
pub fn below(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    // Reject the top, incomplete copy of 0..n so every result is equally likely.
    let zone = u64::MAX - (u64::MAX % n + 1) % n;
    loop {
        let x = u64();
        if x <= zone {
            return x % n;
        }
    }
}

/// A random `f64` in `[0, 1)`.
pub fn f64() -> f64 {
    (u64() >> 11) as f64 / (1u64 << 53) as f64
}
