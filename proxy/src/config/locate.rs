//! Finding where a field path sits in the configuration text, so semantic
//! errors can carry `line:column` like syntax errors do.
//!
//! YAML is located with the real YAML parser: a probing deserializer walks
//! the document along the path and fails on purpose at the target node;
//! `serde_yaml_ng` stamps that failure with the node's parser mark (this
//! handles flow style, quoting, comments, anchors and aliases exactly as
//! loading does). JSON is located by a small scanner.
//!
//! The position found is the key of the last path segment when it is a
//! mapping key, the node itself for a sequence item. When the path does not
//! exist all the way down, the nearest ancestor that does is returned.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Format;
use super::error::{FieldPath, PathSegment};

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
}

/// Where `path` (or its nearest existing ancestor) is in `text`. None only
/// when the text cannot be parsed at all.
pub fn locate(text: &str, format: Format, path: &FieldPath) -> Option<Position> {
    match format {
        Format::Yaml => locate_yaml(text, path.segments()),
        Format::Json => locate_json(text, path.segments()),
    }
}

fn locate_yaml(text: &str, path: &[PathSegment]) -> Option<Position> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    match (Probe { path }).deserialize(deserializer) {
        Ok(()) => None,
        // Only our own failure says where the node is; others are parse errors.
        Err(error) if error.to_string().contains(HERE) => error.location().map(|at| Position {
            line: at.line(),
            column: at.column(),
        }),
        Err(_) => None,
    }
}

/// Descends along `path` and fails at the node it ends on (or at the
/// deepest node that exists). Every visit ends in an error: the default
/// `Visitor` methods reject scalars, which is exactly "fail here".
struct Probe<'p> {
    path: &'p [PathSegment],
}

/// The message of the probe's failure (also its `expecting`, which serde
/// puts in the "invalid type" errors of the default visitor methods).
const HERE: &str = "the node being located";

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HERE)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((PathSegment::Key(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        while let Some(found) = map.next_key_seed(KeyProbe {
            want,
            is_target: rest.is_empty(),
        })? {
            if found {
                return map.next_value_seed(Probe { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(HERE))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((PathSegment::Index(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom(HERE));
            }
        }
        seq.next_element_seed(Probe { path: rest })?;
        Err(de::Error::custom(HERE))
    }
}

/// Reads one mapping key: Ok(true) if it is the wanted one (and the walk
/// goes on into its value), an error at the key itself if it is the wanted
/// one and the last segment, Ok(false) otherwise.
struct KeyProbe<'p> {
    want: &'p str,
    is_target: bool,
}

impl KeyProbe<'_> {
    fn matched<E: de::Error>(self, key: &str) -> Result<bool, E> {
        match key == self.want {
            true if self.is_target => Err(E::custom(HERE)),
            found => Ok(found),
        }
    }
}

impl<'de> DeserializeSeed<'de> for KeyProbe<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyProbe<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        self.matched(key)
    }
    fn visit_bool<E: de::Error>(self, key: bool) -> Result<bool, E> {
        self.matched(&key.to_string())
    }
    fn visit_i64<E: de::Error>(self, key: i64) -> Result<bool, E> {
        self.matched(&key.to_string())
    }
    fn visit_u64<E: de::Error>(self, key: u64) -> Result<bool, E> {
        self.matched(&key.to_string())
    }
    fn visit_f64<E: de::Error>(self, key: f64) -> Result<bool, E> {
        self.matched(&key.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

fn locate_json(text: &str, path: &[PathSegment]) -> Option<Position> {
    let mut scanner = JsonScanner {
        text: text.as_bytes(),
        at: 0,
    };
    let offset = scanner.find(path)?;
    Some(position_of(text, offset))
}

/// The line and column of a byte offset.
pub fn position_of(text: &str, offset: usize) -> Position {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// Just enough JSON to walk to a node: values are skipped, keys decoded.
struct JsonScanner<'t> {
    text: &'t [u8],
    at: usize,
}

impl JsonScanner<'_> {
    /// The offset of the node at `path` (or its deepest existing ancestor),
    /// None if the text is not JSON.
    fn find(&mut self, path: &[PathSegment]) -> Option<usize> {
        self.skip_whitespace();
        let start = self.at;
        let Some((segment, rest)) = path.split_first() else {
            return Some(start);
        };
        match (self.peek()?, segment) {
            (b'{', PathSegment::Key(want)) => {
                self.at += 1;
                loop {
                    self.skip_whitespace();
                    if self.peek()? != b'"' {
                        return Some(start); // `}`: not found
                    }
                    let key_at = self.at;
                    let key = self.string()?;
                    self.skip_whitespace();
                    self.expect(b':')?;
                    if key == *want {
                        if rest.is_empty() {
                            return Some(key_at);
                        }
                        return Some(self.find(rest).unwrap_or(key_at));
                    }
                    self.skip_value()?;
                    self.skip_whitespace();
                    if self.peek()? == b',' {
                        self.at += 1;
                    }
                }
            }
            (b'[', PathSegment::Index(want)) => {
                self.at += 1;
                for index in 0.. {
                    self.skip_whitespace();
                    if self.peek()? == b']' {
                        return Some(start);
                    }
                    if index == *want {
                        return self.find(rest);
                    }
                    self.skip_value()?;
                    self.skip_whitespace();
                    if self.peek()? == b',' {
                        self.at += 1;
                    }
                }
                None
            }
            _ => Some(start),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.string().map(drop),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.at += 1;
                loop {
                    self.skip_whitespace();
                    match self.peek()? {
                        byte if byte == close => {
                            self.at += 1;
                            return Some(());
                        }
                        b',' | b':' => self.at += 1,
                        _ => self.skip_value()?,
                    }
                }
            }
            _ => {
                // number, true, false, null
                let rest = &self.text[self.at..];
                let len = rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(rest.len());
                (len > 0).then(|| self.at += len)
            }
        }
    }

    /// A string token, decoded (escapes included), the cursor after it.
    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let mut decoded = Vec::new();
        loop {
            let byte = self.peek()?;
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(decoded).ok(),
                b'\\' => {
                    let escape = self.peek()?;
                    self.at += 1;
                    let simple = match escape {
                        b'n' => Some(b'\n'),
                        b't' => Some(b'\t'),
                        b'r' => Some(b'\r'),
                        b'b' => Some(0x08),
                        b'f' => Some(0x0c),
                        b'u' => None,
                        other => Some(other), // `"`, `\`, `/`
                    };
                    match simple {
                        Some(byte) => decoded.push(byte),
                        None => {
                            let c = self.unicode_escape()?;
                            decoded.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                    }
                }
                other => decoded.push(other),
            }
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` already read),
    /// including a following low surrogate.
    fn unicode_escape(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if (0xD800..0xDC00).contains(&high) && self.text[self.at..].starts_with(b"\\u") {
            self.at += 2;
            let low = self.hex4()?;
            let combined = 0x10000 + ((high - 0xD800) << 10) + (low.checked_sub(0xDC00)?);
            return char::from_u32(combined);
        }
        Some(char::from_u32(high).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.text.get(self.at..self.at + 4)?).ok()?;
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> FieldPath {
        // `a.b[1].c` → segments; test-only, keys without dots.
        let mut path = FieldPath::root();
        for part in text.split('.').filter(|part| !part.is_empty()) {
            let mut pieces = part.split('[');
            let key = pieces.next().unwrap();
            if !key.is_empty() {
                path = path.key(key);
            }
            for index in pieces {
                path = path.index(index.trim_end_matches(']').parse().unwrap());
            }
        }
        path
    }

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    const YAML: &str = "\
# comment
listeners:
  - address: 127.0.0.1:8080
  - name: second
    address: \"127.0.0.1:8081\"
virtual_hosts:
  - name: main
    domains: [a.example, \"b.example\"]
    routes:
      - match: {prefix: /api}
        forward:
          cluster: backnd
      - direct_response:
          status: 200
base: &base
  x: 1
copy: *base
";

    #[test]
    fn yaml_keys_are_located_at_the_key() {
        let yaml = |p| locate(YAML, Format::Yaml, &path(p));
        assert_eq!(yaml("listeners"), at(2, 1));
        assert_eq!(yaml("listeners[1].address"), at(5, 5));
        assert_eq!(
            yaml("virtual_hosts[0].routes[0].forward.cluster"),
            at(12, 11)
        );
        assert_eq!(
            yaml("virtual_hosts[0].routes[1].direct_response.status"),
            at(14, 11)
        );
        assert_eq!(yaml("virtual_hosts[0].routes[0].match.prefix"), at(10, 17));
    }

    #[test]
    fn yaml_sequence_items_are_located_at_the_item() {
        let yaml = |p| locate(YAML, Format::Yaml, &path(p));
        assert_eq!(yaml("listeners[0]"), at(3, 5));
        assert_eq!(yaml("virtual_hosts[0].domains[1]"), at(8, 26));
        assert_eq!(yaml("virtual_hosts[0].routes[1]"), at(13, 9));
    }

    #[test]
    fn yaml_missing_nodes_fall_back_to_the_nearest_ancestor() {
        let yaml = |p| locate(YAML, Format::Yaml, &path(p));
        // routes[1] has no `forward`: its mapping (first key) is reported.
        assert_eq!(
            yaml("virtual_hosts[0].routes[1].forward.cluster"),
            at(13, 9)
        );
        assert_eq!(yaml("listeners[7]"), at(3, 3));
        // Descending into a scalar stops at the scalar.
        assert_eq!(yaml("listeners[0].address.deeper"), at(3, 14));
        assert_eq!(yaml("nothing"), at(2, 1));
        // Aliases resolve to the anchored node.
        assert_eq!(yaml("copy.x"), at(16, 3));
    }

    #[test]
    fn yaml_that_does_not_parse_has_no_position() {
        assert_eq!(locate("a: 1\nb: [1, 2", Format::Yaml, &path("b[5]")), None);
        assert_eq!(locate("a: 1\nb: 'x", Format::Yaml, &path("c")), None);
    }

    const JSON: &str = r#"{
  "listeners": [{"address": "127.0.0.1:8080"}, {"name": "x\"\u00e9\ud83d\ude00", "address": "1"}],
  "virtual_hosts": [
    {
      "name": "main",
      "domains": ["a", "b"],
      "routes": [{"forward": {"cluster": "backnd", "timeout": null}}, {"n": [1, -2.5e3, true, {}]}],
      "x\"y": 1
    }
  ]
}"#;

    #[test]
    fn json_keys_and_items_are_located() {
        let json = |p| locate(JSON, Format::Json, &path(p));
        assert_eq!(json(""), at(1, 1));
        assert_eq!(json("listeners"), at(2, 3));
        assert_eq!(json("listeners[1]"), at(2, 48));
        assert_eq!(json("listeners[1].address"), at(2, 82));
        assert_eq!(json("virtual_hosts[0].domains[1]"), at(6, 24));
        assert_eq!(
            json("virtual_hosts[0].routes[0].forward.cluster"),
            at(7, 31)
        );
        assert_eq!(json("virtual_hosts[0].routes[1].n"), at(7, 72));
    }

    #[test]
    fn json_keys_with_escapes_are_decoded() {
        let quoted = FieldPath::root().key("virtual_hosts").index(0).key("x\"y");
        assert_eq!(locate(JSON, Format::Json, &quoted), at(8, 7));
    }

    #[test]
    fn json_missing_nodes_fall_back_to_the_nearest_ancestor() {
        let json = |p| locate(JSON, Format::Json, &path(p));
        assert_eq!(json("virtual_hosts[0].routes[1].forward"), at(7, 71));
        assert_eq!(json("virtual_hosts[3]"), at(3, 20));
        assert_eq!(json("virtual_hosts[0].name.deeper"), at(5, 15));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(position_of("é: [x]", 5), Position { line: 1, column: 5 });
        assert_eq!(position_of("a\nbc", 3), Position { line: 2, column: 2 });
    }
}
