//! A deterministic byte pattern for large bodies: byte `i` of a stream is
//! `i % 251`, so a checker can tell a dropped, repeated or reordered chunk
//! from the real thing without keeping the data.

use bytes::Bytes;

const PERIOD: usize = 251;

/// `len` bytes of the pattern starting at stream offset `offset`.
pub fn chunk(offset: u64, len: usize) -> Bytes {
    let start = (offset % PERIOD as u64) as usize;
    let mut data = Vec::with_capacity(len);
    // One period, then copies of it: fast even in an unoptimised build.
    let period: Vec<u8> = (0..PERIOD).map(|i| ((start + i) % PERIOD) as u8).collect();
    while data.len() < len {
        let take = (len - data.len()).min(PERIOD);
        data.extend_from_slice(&period[..take]);
    }
    Bytes::from(data)
}

/// Checks bytes against the pattern as they arrive.
#[derive(Debug)]
pub struct Checker {
    offset: u64,
    intact: bool,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    /// A checker at offset 0.
    pub fn new() -> Self {
        Self {
            offset: 0,
            intact: true,
        }
    }

    /// Check the next bytes of the stream.
    pub fn feed(&mut self, data: &[u8]) {
        if self.intact && data != &chunk(self.offset, data.len())[..] {
            self.intact = false;
        }
        self.offset += data.len() as u64;
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.offset
    }

    /// True when nothing was seen yet.
    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// True when every byte matched the pattern.
    pub fn intact(&self) -> bool {
        self.intact
    }
}
