//! Follows the HTTP/1.1 request framing on a client connection to spot heads
//! that carry both `Content-Length` and `Transfer-Encoding`.
//!
//! hyper accepts such a request (RFC 9112 §6.3 lets a server process it with
//! the chunked framing and close the connection afterwards) and hands the
//! service a head from which `Content-Length` is already removed. A proxy must
//! not forward what different parsers could frame differently, so Weir
//! rejects these requests with 400. This tracker reads the same bytes hyper
//! reads and records the position (1-based count of request heads on the
//! connection) of the first ambiguous head; the pipeline compares it with its
//! own request count.
//!
//! The tracker follows message framing exactly (fixed length, chunked, none)
//! and switches itself off on anything it does not fully understand
//! (HTTP/2 preface, upgrades, CONNECT, malformed input — hyper rejects the
//! latter on its own), so it can never misreport a well-formed request.

use std::mem::MaybeUninit;

/// Where the tracker is in the request byte stream.
#[derive(Debug)]
enum State {
    /// Collecting a request head.
    Head(Vec<u8>),
    /// Skipping a fixed-length body.
    Fixed(u64),
    /// Collecting a chunk-size line.
    ChunkSize(Vec<u8>),
    /// Skipping chunk data.
    ChunkData(u64),
    /// Expecting the CRLF after chunk data; the number says how many bytes are left.
    ChunkEnd(u8),
    /// Collecting trailer lines after the last chunk. As in hyper, a line
    /// ends at CRLF; a bare LF is part of it.
    Trailers(Vec<u8>),
    /// Not tracking any more.
    Off,
}

/// Tracks request framing on one HTTP/1 connection. See the module docs.
#[derive(Debug)]
pub(crate) struct H1Framing {
    state: State,
    max_head_bytes: usize,
    max_headers: usize,
    heads: u64,
    ambiguous_head: Option<u64>,
}

impl H1Framing {
    /// A tracker for a fresh connection.
    pub(crate) fn new(max_head_bytes: usize, max_headers: usize) -> Self {
        Self {
            state: State::Head(Vec::new()),
            max_head_bytes,
            max_headers,
            heads: 0,
            ambiguous_head: None,
        }
    }

    /// The 1-based number of the first request head that had both
    /// `Content-Length` and `Transfer-Encoding`, once seen.
    pub(crate) fn ambiguous_head(&self) -> Option<u64> {
        self.ambiguous_head
    }

    /// The 1-based number of the request head that has started to arrive
    /// but is not complete yet, if one has. The header read timeout runs
    /// while this is set.
    pub(crate) fn partial_head(&self) -> Option<u64> {
        match &self.state {
            State::Head(buf) if !buf.is_empty() => Some(self.heads + 1),
            _ => None,
        }
    }

    /// True once the tracker has stopped looking at bytes.
    pub(crate) fn is_off(&self) -> bool {
        matches!(self.state, State::Off)
    }

    /// Feed bytes read from the client, in order.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if let State::Head(buf) = &self.state
                && buf.is_empty()
            {
                // The usual case: a whole head in one read. Parsed where it
                // lies; a head split over reads is collected below.
                let take = bytes.len().min(self.max_head_bytes + 1);
                match self.parse_head(&bytes[..take]) {
                    HeadParse::Complete(len) => {
                        bytes = &bytes[len..];
                        continue;
                    }
                    HeadParse::Invalid => {
                        self.state = State::Off;
                        return;
                    }
                    HeadParse::Partial => {}
                }
            }
            let used = match &mut self.state {
                State::Off => return,
                State::Head(buf) => {
                    let take = bytes
                        .len()
                        .min(self.max_head_bytes.saturating_sub(buf.len()) + 1);
                    buf.extend_from_slice(&bytes[..take]);
                    let buf = std::mem::take(buf);
                    self.on_head_bytes(buf, take)
                }
                State::Fixed(remaining) => {
                    let take = skip(remaining, bytes.len());
                    if *remaining == 0 {
                        self.state = State::Head(Vec::new());
                    }
                    take
                }
                State::ChunkSize(line) => match memchr_newline(bytes) {
                    Some(end) => {
                        line.extend_from_slice(&bytes[..=end]);
                        let line = std::mem::take(line);
                        self.state = chunk_size_state(&line);
                        end + 1
                    }
                    None => {
                        line.extend_from_slice(bytes);
                        if line.len() > MAX_CHUNK_LINE {
                            self.state = State::Off;
                        }
                        bytes.len()
                    }
                },
                State::ChunkData(remaining) => {
                    let take = skip(remaining, bytes.len());
                    if *remaining == 0 {
                        self.state = State::ChunkEnd(2);
                    }
                    take
                }
                State::ChunkEnd(left) => {
                    let expected: &[u8] = if *left == 2 { b"\r\n" } else { b"\n" };
                    if bytes[0] != expected[0] {
                        self.state = State::Off;
                        return;
                    }
                    *left -= 1;
                    if *left == 0 {
                        self.state = State::ChunkSize(Vec::new());
                    }
                    1
                }
                State::Trailers(buf) => match memchr_newline(bytes) {
                    Some(end) => {
                        buf.extend_from_slice(&bytes[..=end]);
                        if buf == b"\r\n" {
                            self.state = State::Head(Vec::new());
                        } else if buf.len() > self.max_head_bytes {
                            self.state = State::Off;
                        } else if buf.ends_with(b"\r\n") {
                            buf.clear();
                        }
                        // A bare LF does not end a trailer line: hyper reads
                        // up to the next CRLF, so the line goes on.
                        end + 1
                    }
                    None => {
                        buf.extend_from_slice(bytes);
                        if buf.len() > self.max_head_bytes {
                            self.state = State::Off;
                        }
                        bytes.len()
                    }
                },
            };
            bytes = &bytes[used..];
        }
    }

    /// `buf` is the head collected so far, the last `added` bytes of it new.
    /// Returns how many of the new bytes belong to this head.
    fn on_head_bytes(&mut self, buf: Vec<u8>, added: usize) -> usize {
        match self.parse_head(&buf) {
            HeadParse::Complete(head_len) => added - (buf.len() - head_len),
            HeadParse::Partial if buf.len() <= self.max_head_bytes => {
                self.state = State::Head(buf);
                added
            }
            // Too large, too many headers, HTTP/2 preface, garbage: hyper
            // answers or closes on its own; nothing more to follow here.
            _ => {
                self.state = State::Off;
                added
            }
        }
    }

    /// Parse the request head at the start of `buf`. A complete head is
    /// counted and moves the tracker to its body's state; otherwise the
    /// state is left to the caller.
    fn parse_head(&mut self, buf: &[u8]) -> HeadParse {
        // Field slots are not initialised: httparse writes the ones it uses.
        let mut on_stack = [const { MaybeUninit::uninit() }; STACK_FIELDS];
        let mut on_heap = Vec::new();
        let slots = if self.max_headers <= STACK_FIELDS {
            &mut on_stack[..self.max_headers]
        } else {
            on_heap.resize_with(self.max_headers, MaybeUninit::uninit);
            &mut on_heap[..]
        };
        let mut request = httparse::Request::new(&mut []);
        match request.parse_with_uninit_headers(buf, slots) {
            Ok(httparse::Status::Complete(head_len)) => {
                self.heads += 1;
                self.state = next_state_after_head(&request);
                if matches!(self.state, State::Off) && has_both_lengths(&request) {
                    self.ambiguous_head.get_or_insert(self.heads);
                }
                HeadParse::Complete(head_len)
            }
            Ok(httparse::Status::Partial) => HeadParse::Partial,
            Err(_) => HeadParse::Invalid,
        }
    }
}

/// The longest chunk-size line followed. hyper accepts up to 16 KiB of
/// chunk extensions per body, so a line it accepts is never longer than that
/// plus the size digits; the tracker must not stop earlier, or a connection
/// hyper keeps serving would go on without the header read timeout.
const MAX_CHUNK_LINE: usize = 16 * 1024 + 64;

/// Most header fields parsed in a stack buffer; a larger
/// `limits.max_request_headers` takes one from the heap per head.
const STACK_FIELDS: usize = 128;

/// What parsing a request head gave.
enum HeadParse {
    /// A whole head of this many bytes.
    Complete(usize),
    /// Not all of it yet.
    Partial,
    /// Not an HTTP/1 request head (or over a limit).
    Invalid,
}

/// Skip up to `available` bytes of `remaining`; returns how many were skipped.
fn skip(remaining: &mut u64, available: usize) -> usize {
    let take = (*remaining).min(available as u64);
    *remaining -= take;
    take as usize
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn has_both_lengths(request: &httparse::Request<'_, '_>) -> bool {
    let has = |name: &str| {
        request
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name))
    };
    has("content-length") && has("transfer-encoding")
}

/// The framing of the body after a complete head.
fn next_state_after_head(request: &httparse::Request<'_, '_>) -> State {
    if has_both_lengths(request) {
        // Reported by the caller; hyper closes the connection after this one.
        return State::Off;
    }
    let method = request.method.unwrap_or("");
    let upgrade = request
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("upgrade"));
    if method.eq_ignore_ascii_case("CONNECT") || upgrade {
        // What follows may be a tunnel, not HTTP.
        return State::Off;
    }
    let mut chunked = None;
    let mut length: Option<u64> = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let value = String::from_utf8_lossy(header.value);
            let last = value.rsplit(',').next().unwrap_or("").trim();
            chunked = Some(last.eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let Some(parsed) = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
            else {
                return State::Off;
            };
            if length.is_some_and(|previous| previous != parsed) {
                return State::Off;
            }
            length = Some(parsed);
        }
    }
    match (chunked, length) {
        (Some(true), _) => State::ChunkSize(Vec::new()),
        (Some(false), _) => State::Off,
        (None, Some(0)) | (None, None) => State::Head(Vec::new()),
        (None, Some(n)) => State::Fixed(n),
    }
}

/// The state after a complete chunk-size line (including its newline).
fn chunk_size_state(line: &[u8]) -> State {
    let Some(line) = line.strip_suffix(b"\r\n") else {
        return State::Off;
    };
    let size_part = line.split(|&b| b == b';').next().unwrap_or(&[]);
    let size_text = std::str::from_utf8(size_part).map(str::trim_end);
    match size_text.ok().and_then(|s| u64::from_str_radix(s, 16).ok()) {
        Some(0) => State::Trailers(Vec::new()),
        Some(size) => State::ChunkData(size),
        None => State::Off,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track_with(max_head_bytes: usize, max_headers: usize, chunks: &[&[u8]]) -> H1Framing {
        let mut framing = H1Framing::new(max_head_bytes, max_headers);
        for chunk in chunks {
            framing.feed(chunk);
        }
        framing
    }

    fn track(chunks: &[&[u8]]) -> H1Framing {
        track_with(8192, 100, chunks)
    }

    fn bytewise(stream: &[u8]) -> H1Framing {
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        track(&chunks)
    }

    const CLEAN: &[u8] = b"POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello\
GET /b HTTP/1.1\r\nhost: x\r\n\r\n\
POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n\
5;ext=1\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\n";

    #[test]
    fn follows_clean_requests_without_reporting() {
        for framing in [track(&[CLEAN]), bytewise(CLEAN)] {
            assert_eq!(framing.heads, 3);
            assert_eq!(framing.ambiguous_head(), None);
            assert!(matches!(framing.state, State::Head(ref b) if b.is_empty()));
        }
    }

    #[test]
    fn reports_the_ambiguous_head_by_position() {
        let mut stream = CLEAN.to_vec();
        stream.extend_from_slice(
            b"POST /d HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\
transfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        assert_eq!(track(&[&stream]).ambiguous_head(), Some(4));
        assert_eq!(bytewise(&stream).ambiguous_head(), Some(4));
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_not_a_head() {
        let smuggled = b"POST / HTTP/1.1\r\ntransfer-encoding: x\r\ncontent-length: 1\r\n\r\n";
        let mut stream = format!(
            "POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            smuggled.len()
        )
        .into_bytes();
        stream.extend_from_slice(smuggled);
        let framing = track(&[&stream]);
        assert_eq!(framing.heads, 1);
        assert_eq!(framing.ambiguous_head(), None);
        assert!(!framing.is_off());
    }

    #[test]
    fn switches_off_for_http2_and_upgrades() {
        assert!(track(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]).is_off());
        let upgrade =
            b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n";
        assert!(track(&[upgrade]).is_off());
    }

    #[test]
    fn switches_off_on_oversized_heads() {
        let mut framing = H1Framing::new(64, 100);
        framing.feed(b"GET / HTTP/1.1\r\n");
        framing.feed(&[b'a'; 100]);
        assert!(framing.is_off());

        // The same, complete, in one read: still too large to follow.
        let long = format!("GET / HTTP/1.1\r\nx-long: {}\r\n\r\n", "a".repeat(100));
        let framing = track_with(64, 100, &[long.as_bytes()]);
        assert!(framing.is_off());
        assert_eq!(framing.heads, 0);
    }

    #[test]
    fn long_chunk_extensions_that_hyper_accepts_are_followed() {
        let head = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
        let line = format!("1;ext={}\r\na\r\n0\r\n\r\n", "e".repeat(10_000));
        // The line arrives over two reads, as a long one may.
        let (first, rest) = line.as_bytes().split_at(6_000);
        let framing = track(&[head, first, rest, b"GET / HTTP/1.1\r\n"]);
        assert!(!framing.is_off());
        assert_eq!(framing.partial_head(), Some(2));
    }

    #[test]
    fn a_bare_lf_inside_a_trailer_line_does_not_end_it() {
        // hyper ends a trailer line only at CRLF and serves the next request.
        let body = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n\
1\r\na\r\n0\r\nx-a: 1\r\n\nx-b: 2\r\n\r\nGET / HTTP/1.1\r\n";
        for framing in [track(&[body]), bytewise(body)] {
            assert!(!framing.is_off());
            assert_eq!(framing.heads, 1);
            assert_eq!(framing.partial_head(), Some(2));
        }
    }

    #[test]
    fn an_endless_trailer_line_is_not_collected_past_the_head_limit() {
        let head = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n";
        let line = vec![b'x'; 9000];
        assert!(track(&[head, &line]).is_off());
    }

    #[test]
    fn heads_split_across_reads_are_collected() {
        let (first, rest) = CLEAN.split_at(30);
        let framing = track(&[first, rest]);
        assert_eq!(framing.heads, 3);
        assert!(matches!(framing.state, State::Head(ref b) if b.is_empty()));
    }

    #[test]
    fn a_head_is_partial_from_its_first_byte_until_complete() {
        let mut framing = H1Framing::new(8192, 100);
        assert_eq!(framing.partial_head(), None);
        framing.feed(b"GET /a HTTP/1.1\r\nhost: x\r\n");
        assert_eq!(framing.partial_head(), Some(1));
        framing.feed(b"\r\nGET /b HTTP/1.1\r\n");
        assert_eq!(framing.partial_head(), Some(2));
        framing.feed(b"\r\n");
        assert_eq!(framing.partial_head(), None);
        // A body is not a head, however slowly it arrives.
        framing.feed(b"POST /c HTTP/1.1\r\ncontent-length: 4\r\n\r\nab");
        assert_eq!(framing.partial_head(), None);
        framing.feed(b"cdGET");
        assert_eq!(framing.partial_head(), Some(4));
    }

    #[test]
    fn field_limits_above_the_stack_buffer_are_kept() {
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for i in 0..200 {
            head.push_str(&format!("x-{i}: 1\r\n"));
        }
        head.push_str("content-length: 1\r\ntransfer-encoding: chunked\r\n\r\n");
        let framing = track_with(64 * 1024, 300, &[head.as_bytes()]);
        assert_eq!(framing.heads, 1);
        assert_eq!(framing.ambiguous_head(), Some(1));
        // More fields than allowed: hyper refuses the head; stop following.
        assert!(track_with(64 * 1024, 150, &[head.as_bytes()]).is_off());
        assert!(track_with(64 * 1024, 100, &[head.as_bytes()]).is_off());
    }
}
