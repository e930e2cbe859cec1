//! Query-string parsing for route matching, without allocating unless a
//! name or value is actually percent- or plus-encoded.

use std::borrow::Cow;

/// The `name=value` pairs of a raw query string, still encoded. Empty
/// segments are skipped; `flag` (no `=`) has the empty value.
pub(crate) fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.find('=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, ""),
        })
}

/// Form-decode one name or value: `+` is a space, `%XX` a byte. A `%` not
/// followed by two hex digits is kept as is; invalid UTF-8 is replaced
/// (U+FFFD). Borrowed when there is nothing to decode.
pub(crate) fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(digit: &u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pairs() {
        let got: Vec<_> = pairs("a=1&&b&c=x=y&=v").collect();
        assert_eq!(got, vec![("a", "1"), ("b", ""), ("c", "x=y"), ("", "v")]);
        assert_eq!(pairs("").count(), 0);
    }

    #[test]
    fn decodes() {
        assert!(matches!(decode("plain"), Cow::Borrowed("plain")));
        assert_eq!(decode("a+b"), "a b");
        assert_eq!(decode("caf%C3%A9"), "café");
        assert_eq!(decode("%2f%2F"), "//");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%FF"), "\u{FFFD}");
    }
}
