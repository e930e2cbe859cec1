//! New versions of the `reload-marker` test filters: each carries
//! `weir-reload-marker:` followed by 16 bytes it sends back as `x-marker`.
//! Overwriting those 16 bytes gives a module with a new SHA-256 (one no
//! cache has seen) whose responses name it.

/// What precedes the 16 marker bytes in the component's data.
pub const PREFIX: &[u8] = b"weir-reload-marker:";
/// How many bytes a marker has.
pub const LEN: usize = 16;

/// `component` (a `reload-marker` build) with its marker set to `marker`
/// (exactly [`LEN`] ASCII bytes). Panics if the component does not carry
/// the prefix exactly once.
pub fn with_marker(component: &[u8], marker: &str) -> Vec<u8> {
    assert_eq!(marker.len(), LEN, "a marker is {LEN} bytes: {marker:?}");
    assert!(marker.is_ascii(), "a marker is ASCII: {marker:?}");
    let found: Vec<usize> = component
        .windows(PREFIX.len())
        .enumerate()
        .filter(|(_, window)| *window == PREFIX)
        .map(|(at, _)| at)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "the component must carry the marker prefix exactly once"
    );
    let start = found[0] + PREFIX.len();
    let mut out = component.to_vec();
    out[start..start + LEN].copy_from_slice(marker.as_bytes());
    out
}

/// Marker number `n` as 16 digits.
pub fn numbered(n: u64) -> String {
    format!("{n:016}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::{RELOAD_MARKER, RELOAD_MARKER_LARGE};

    #[test]
    fn a_new_marker_changes_only_the_marker_bytes() {
        for path in [RELOAD_MARKER, RELOAD_MARKER_LARGE] {
            let built = std::fs::read(path).unwrap();
            let patched = with_marker(&built, &numbered(42));
            assert_eq!(patched.len(), built.len());
            let differing = built.iter().zip(&patched).filter(|(a, b)| a != b).count();
            assert!((1..=LEN).contains(&differing), "{path}: {differing}");
            // As built, the marker is zeros: patching it back restores the bytes.
            assert_eq!(with_marker(&patched, &numbered(0)), built, "{path}");
        }
    }
}
