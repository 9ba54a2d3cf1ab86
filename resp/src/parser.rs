//! The request decoder: bytes from a client become one request's arguments.
//!
//! # Format
//!
//! A request is either a multibulk, as every client library sends it:
//!
//! ```text
//! *<count>\r\n  then <count> times  $<length>\r\n<length bytes>\r\n
//! ```
//!
//! or an inline command, as typed over telnet: one line ending in `\n` or `\r\n`, split into
//! arguments like Redis's `sdssplitargs` (blanks separate, `"..."` with `\n \r \t \b \a \xHH`
//! escapes, `'...'` with `\'`). The first byte of a request chooses: `*` means multibulk.
//!
//! This is a port of Redis 7.0's `processMultibulkBuffer` and `processInlineBuffer`, with
//! three deliberate differences, all stricter:
//! - the `\r\n` after a bulk and after a `*`/`$` line is checked (Redis skips two bytes
//!   unseen, so `$2\r\nxxYY` runs `xx`);
//! - the bytes held for one request (arguments already split off plus the buffer) are bounded
//!   by [`ParseLimits::query_buffer_bytes_max`], checked before waiting for a bulk;
//! - a NUL byte does not hide the rest of the buffer (Redis's `strchr` stops at it).
//!
//! The parser keeps the state of a partly received multibulk (the arguments already split
//! off, the length of the bulk in progress), so a large pipelined `MSET` is scanned once.

use bytes::{Buf, Bytes, BytesMut};

/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline request, and the longest `*`/`$` line
/// searched for its `\r`.
pub const INLINE_BYTES_MAX: usize = 64 * 1024;
/// Redis's default `proto-max-bulk-len`.
pub const BULK_BYTES_MAX: usize = 512 * 1024 * 1024;
/// Redis's default `client-query-buffer-limit`.
pub const QUERY_BUFFER_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Redis 7.0 refuses a multibulk count above `INT_MAX`.
pub const MULTIBULK_ARGS_MAX: usize = i32::MAX as usize;
/// Argument slots reserved up front for a multibulk, whatever count it announces (Redis
/// reserves `min(count, 1024)` too): a `*2000000000` costs nothing until the bulks arrive.
const ARGS_PREALLOCATED_MAX: usize = 1024;
/// Redis's `LONG_STR_SIZE`: a decimal integer of this many bytes or more is refused.
const LONG_STR_SIZE: usize = 21;

/// Limits on what one client may send, checked before anything is allocated for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`: the longest single argument. Default 512 MiB.
    pub bulk_bytes_max: usize,
    /// `client-query-buffer-limit`: bytes held for one request (buffered plus already
    /// split-off arguments). Default 1 GiB.
    pub query_buffer_bytes_max: usize,
    /// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline line without a newline, and the
    /// longest `*`/`$` line. Default 64 KiB.
    pub inline_bytes_max: usize,
    /// The largest multibulk count accepted. Default `i32::MAX`, as Redis 7.0 (`INT_MAX`).
    pub multibulk_args_max: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            bulk_bytes_max: BULK_BYTES_MAX,
            query_buffer_bytes_max: QUERY_BUFFER_BYTES_MAX,
            inline_bytes_max: INLINE_BYTES_MAX,
            multibulk_args_max: MULTIBULK_ARGS_MAX,
        }
    }
}

/// A request that breaks the protocol; the connection replies with this text and closes.
///
/// `Display` is Redis's error text without the leading `-`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The count after `*` is not an integer, or is too large.
    #[error("ERR Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// The length after `$` is not an integer, is negative, or exceeds `proto-max-bulk-len`.
    #[error("ERR Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A bulk header did not start with `$`; holds the byte found (CR and LF shown as a space,
    /// as Redis does).
    #[error("ERR Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
    /// No `\r` within `inline_bytes_max` bytes of a `*` line.
    #[error("ERR Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// No `\r` within `inline_bytes_max` bytes of a `$` line.
    #[error("ERR Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// No newline within `inline_bytes_max` bytes of an inline request.
    #[error("ERR Protocol error: too big inline request")]
    TooBigInline,
    /// An inline request with an unclosed quote, or a closing quote not followed by a blank.
    #[error("ERR Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// The bytes of a bulk were not followed by `\r\n` (Redis does not check this).
    #[error("ERR Protocol error: bulk string not terminated by CRLF")]
    BulkNotTerminated,
    /// One request needs more than `client-query-buffer-limit` bytes.
    #[error("ERR Protocol error: query buffer exceeds client-query-buffer-limit ({limit} bytes)")]
    QueryBufferLimit {
        /// The limit in force.
        limit: usize,
    },
}

/// Where the parser stands inside the request at the front of the buffer.
#[derive(Debug, Default)]
enum State {
    /// Between requests.
    #[default]
    Idle,
    /// Inside an inline line: `scanned` bytes are known to hold no `\n`.
    Inline { scanned: usize },
    /// Inside a multibulk.
    Multibulk {
        /// Bulks still to come, the one in progress included.
        remaining: usize,
        /// Bulks already split off the buffer.
        args: Vec<Bytes>,
        /// Their total length, counted against the query buffer limit.
        args_bytes: usize,
        /// The length of the bulk in progress, once its `$` line has been read.
        bulk_len: Option<usize>,
    },
}

/// A bounded, non-recursive, resumable decoder of client requests.
#[derive(Debug)]
pub struct RequestParser {
    limits: ParseLimits,
    state: State,
    /// Bytes still missing for the bulk in progress, as of the last [`RequestParser::parse`].
    bulk_missing: Option<usize>,
}

impl RequestParser {
    /// A parser between requests.
    pub fn new(limits: ParseLimits) -> Self {
        RequestParser {
            limits,
            state: State::Idle,
            bulk_missing: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ParseLimits {
        self.limits
    }

    /// Changes the limits (`CONFIG SET proto-max-bulk-len`, `client-query-buffer-limit`);
    /// they apply from the next `$` or `*` line read.
    pub fn set_limits(&mut self, limits: ParseLimits) {
        self.limits = limits;
    }

    /// Bytes still needed to complete the bulk being received, counting its `\r\n`, so the
    /// connection can reserve buffer space once instead of growing it read by read. `None`
    /// when no bulk length is pending.
    pub fn needed_hint(&self) -> Option<usize> {
        self.bulk_missing
    }

    /// Removes one complete request from the front of `buf` and returns its arguments, which
    /// share `buf`'s memory. Empty requests (`*0`, `*-1`, a blank line) are skipped.
    ///
    /// Returns `Ok(None)` when `buf` holds no complete request yet; what was already consumed
    /// is remembered, so call again with the same buffer once more bytes were appended.
    ///
    /// # Errors
    /// A [`ProtocolError`] when the bytes break the protocol or a limit; the state is reset
    /// and the connection should send the error and close.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let result = self.parse_inner(buf);
        if result.is_err() {
            self.state = State::Idle;
            self.bulk_missing = None;
        }
        result
    }

    fn parse_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        self.bulk_missing = None;
        // One iteration per skipped empty request or per state change: each consumes bytes
        // or returns, so the loop ends.
        loop {
            match &mut self.state {
                State::Idle => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first == b'*' {
                        let Some(count) = self.read_count(buf)? else {
                            return self.wait(buf, 0);
                        };
                        if count > 0 {
                            self.state = State::Multibulk {
                                remaining: count,
                                args: Vec::with_capacity(count.min(ARGS_PREALLOCATED_MAX)),
                                args_bytes: 0,
                                bulk_len: None,
                            };
                        }
                    } else {
                        self.state = State::Inline { scanned: 0 };
                    }
                }
                State::Inline { scanned } => {
                    let Some(offset) = memchr::memchr(b'\n', &buf[*scanned..]) else {
                        *scanned = buf.len();
                        if buf.len() > self.limits.inline_bytes_max {
                            return Err(ProtocolError::TooBigInline);
                        }
                        return self.wait(buf, 0);
                    };
                    let newline = *scanned + offset;
                    let line_end = if newline > 0 && buf[newline - 1] == b'\r' {
                        newline - 1
                    } else {
                        newline
                    };
                    let args = split_inline(&buf[..line_end]);
                    buf.advance(newline + 1);
                    self.state = State::Idle;
                    let args = args?;
                    if !args.is_empty() {
                        return Ok(Some(args));
                    }
                }
                State::Multibulk {
                    remaining,
                    args,
                    args_bytes,
                    bulk_len,
                } => {
                    while *remaining > 0 {
                        let len = match *bulk_len {
                            Some(len) => len,
                            None => {
                                let Some(len) = read_bulk_len(buf, &self.limits)? else {
                                    let held = *args_bytes;
                                    return self.wait(buf, held);
                                };
                                let needed = args_bytes.saturating_add(len).saturating_add(2);
                                if needed > self.limits.query_buffer_bytes_max {
                                    return Err(ProtocolError::QueryBufferLimit {
                                        limit: self.limits.query_buffer_bytes_max,
                                    });
                                }
                                *bulk_len = Some(len);
                                len
                            }
                        };
                        if buf.len() < len + 2 {
                            self.bulk_missing = Some(len + 2 - buf.len());
                            let held = *args_bytes;
                            return self.wait(buf, held);
                        }
                        if &buf[len..len + 2] != b"\r\n" {
                            return Err(ProtocolError::BulkNotTerminated);
                        }
                        args.push(buf.split_to(len).freeze());
                        buf.advance(2);
                        *args_bytes += len;
                        *bulk_len = None;
                        *remaining -= 1;
                    }
                    let args = std::mem::take(args);
                    self.state = State::Idle;
                    return Ok(Some(args));
                }
            }
        }
    }

    /// Needs more bytes: fine unless what is held for this request passes the limit.
    fn wait(&self, buf: &BytesMut, held: usize) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if held.saturating_add(buf.len()) > self.limits.query_buffer_bytes_max {
            return Err(ProtocolError::QueryBufferLimit {
                limit: self.limits.query_buffer_bytes_max,
            });
        }
        Ok(None)
    }

    /// Reads a `*<count>\r\n` line; `Ok(None)` when incomplete. A count ≤ 0 is returned as 0.
    fn read_count(&self, buf: &mut BytesMut) -> Result<Option<usize>, ProtocolError> {
        let Some(line) = find_line(buf, self.limits.inline_bytes_max)
            .map_err(|()| ProtocolError::TooBigMultibulkCount)?
        else {
            return Ok(None);
        };
        let count = line
            .and_then(|cr| string2ll(&buf[1..cr]))
            .filter(|&n| n <= i64::from(i32::MAX))
            .ok_or(ProtocolError::InvalidMultibulkLength)?;
        let count = usize::try_from(count.max(0)).unwrap_or(0);
        if count > self.limits.multibulk_args_max {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        let cr = line.unwrap_or(0);
        buf.advance(cr + 2);
        Ok(Some(count))
    }
}

/// Finds the `\r\n` ending a `*`/`$` line at the front of `buf`.
///
/// `Ok(None)`: incomplete. `Ok(Some(Some(cr)))`: the `\r` is at `cr` and a `\n` follows.
/// `Ok(Some(None))`: a `\r` followed by something else (a broken line).
/// `Err(())`: no `\r` within `window` bytes.
#[allow(clippy::option_option)]
fn find_line(buf: &[u8], window: usize) -> Result<Option<Option<usize>>, ()> {
    // Only the first `window + 2` bytes are searched: a valid line is a few bytes long, and a
    // big buffer behind a broken header must not be scanned on every read.
    let searched = &buf[..buf.len().min(window.saturating_add(2))];
    match memchr::memchr(b'\r', searched) {
        None if buf.len() > window => Err(()),
        None => Ok(None),
        Some(cr) if cr + 1 >= buf.len() => Ok(None),
        Some(cr) if buf[cr + 1] == b'\n' => Ok(Some(Some(cr))),
        Some(_) => Ok(Some(None)),
    }
}

/// Reads a `$<len>\r\n` line; `Ok(None)` when incomplete.
fn read_bulk_len(buf: &mut BytesMut, limits: &ParseLimits) -> Result<Option<usize>, ProtocolError> {
    let Some(line) =
        find_line(buf, limits.inline_bytes_max).map_err(|()| ProtocolError::TooBigBulkCount)?
    else {
        return Ok(None);
    };
    if buf[0] != b'$' {
        let got = match buf[0] {
            b'\r' | b'\n' => b' ',
            other => other,
        };
        return Err(ProtocolError::ExpectedDollar(got));
    }
    let len = line
        .and_then(|cr| string2ll(&buf[1..cr]))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= limits.bulk_bytes_max)
        .ok_or(ProtocolError::InvalidBulkLength)?;
    let cr = line.unwrap_or(0);
    buf.advance(cr + 2);
    Ok(Some(len))
}

/// Redis's `string2ll`: a decimal `i64` with no sign but `-`, no blanks, no leading zeros
/// (except `0` itself), no `-0`, fewer than 21 bytes.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= LONG_STR_SIZE {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Splits an inline line like Redis's `sdssplitargs`. The line ends at a NUL byte, as the C
/// string it is in Redis.
///
/// # Errors
/// [`ProtocolError::UnbalancedQuotes`] for an unclosed quote or a closing quote followed by
/// something other than a blank.
pub fn split_inline(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let line = match memchr::memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    };
    // Out-of-range reads give NUL, as the C string terminator does in Redis.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    // C's isspace: space, \t, \n, \v, \f, \r.
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let (mut in_double, mut in_single, mut done) = (false, false, false);
        while !done {
            let c = at(p);
            if in_double {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && hex(at(p + 2)).is_some()
                    && hex(at(p + 3)).is_some()
                {
                    let byte = hex(at(p + 2)).unwrap_or(0) * 16 + hex(at(p + 3)).unwrap_or(0);
                    current.push(byte);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    current.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => current.push(other),
                }
            }
            if p < line.len() {
                p += 1;
            }
        }
        args.push(Bytes::from(current));
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parser() -> RequestParser {
        RequestParser::new(ParseLimits::default())
    }

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    /// Every request in `input`, then what is left.
    fn parse_all(input: &[u8]) -> (Vec<Vec<Bytes>>, Result<(), ProtocolError>, BytesMut) {
        let mut p = parser();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match p.parse(&mut buf) {
                Ok(Some(a)) => out.push(a),
                Ok(None) => return (out, Ok(()), buf),
                Err(e) => return (out, Err(e), buf),
            }
        }
    }

    fn error_of(input: &[u8]) -> ProtocolError {
        parse_all(input).1.expect_err("expected a protocol error")
    }

    fn multibulk(items: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", items.len()).into_bytes();
        for item in items {
            out.extend_from_slice(format!("${}\r\n", item.len()).as_bytes());
            out.extend_from_slice(item);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn a_multibulk_request_is_split_into_its_arguments() {
        let (reqs, res, rest) = parse_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n");
        assert_eq!(reqs, vec![args(&["SET", "k", "hello"])]);
        assert!(res.is_ok());
        assert!(rest.is_empty());
    }

    #[test]
    fn pipelined_requests_come_out_one_per_call_in_order() {
        let input = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nECHO x\r\n*0\r\n";
        let (reqs, res, rest) = parse_all(input);
        assert_eq!(
            reqs,
            vec![args(&["PING"]), args(&["GET", "a"]), args(&["ECHO", "x"])]
        );
        assert!(res.is_ok());
        assert!(rest.is_empty());
    }

    #[test]
    fn a_request_arriving_byte_by_byte_is_parsed_once_complete() {
        let input = b"*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\nPING\r\n";
        let mut p = parser();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(a) = p.parse(&mut buf).unwrap() {
                out.push(a);
            }
        }
        assert_eq!(out, vec![args(&["GET", "0123456789"]), args(&["PING"])]);
    }

    #[test]
    fn needed_hint_tells_how_many_bytes_the_current_bulk_still_needs() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$100\r\nabc"[..]);
        assert_eq!(p.parse(&mut buf), Ok(None));
        assert_eq!(p.needed_hint(), Some(100 + 2 - 3));
        buf.extend_from_slice(&[b'x'; 97]);
        buf.extend_from_slice(b"\r\n");
        assert!(p.parse(&mut buf).unwrap().is_some());
        assert_eq!(p.needed_hint(), None);
    }

    #[test]
    fn arguments_share_the_buffer_memory() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"*1\r\n$5\r\nhello\r\n"[..]);
        let start = buf.as_ptr() as usize;
        let a = p.parse(&mut buf).unwrap().unwrap();
        assert_eq!(a[0].as_ptr() as usize, start + 8);
    }

    #[test]
    fn empty_multibulks_and_blank_lines_are_skipped() {
        let (reqs, res, _) = parse_all(b"*0\r\n*-1\r\n*-5\r\n\r\n\n   \r\nPING\r\n");
        assert_eq!(reqs, vec![args(&["PING"])]);
        assert!(res.is_ok());
    }

    #[test]
    fn inline_commands_accept_bare_newlines_quotes_and_escapes() {
        let (reqs, _, _) = parse_all(b"PING\nSET a \"hello world\"\r\nECHO '\\'x'\r\n");
        assert_eq!(
            reqs,
            vec![
                args(&["PING"]),
                args(&["SET", "a", "hello world"]),
                args(&["ECHO", "'x"])
            ]
        );
        let (reqs, _, _) = parse_all(b"ECHO \"\\x41\\n\\t\\zq\" a\"b c\"\r\n");
        let expected = [&b"ECHO"[..], b"A\n\tzq", b"ab c"]
            .map(Bytes::from_static)
            .to_vec();
        assert_eq!(reqs, vec![expected]);
        let (reqs, _, _) = parse_all(b"ECHO \"\"\r\n");
        assert_eq!(reqs, vec![vec![Bytes::from_static(b"ECHO"), Bytes::new()]]);
    }

    #[test]
    fn inline_quotes_that_do_not_close_or_touch_text_are_unbalanced() {
        assert_eq!(
            error_of(b"SET a \"hello\r\n"),
            ProtocolError::UnbalancedQuotes
        );
        assert_eq!(
            error_of(b"SET a \"x\"y\r\n"),
            ProtocolError::UnbalancedQuotes
        );
        assert_eq!(error_of(b"SET a 'x'y\r\n"), ProtocolError::UnbalancedQuotes);
        assert_eq!(error_of(b"SET a 'x\n"), ProtocolError::UnbalancedQuotes);
    }

    #[test]
    fn a_bad_multibulk_count_is_an_invalid_multibulk_length() {
        for input in [
            &b"*x\r\n"[..],
            b"*+1\r\n",
            b"*01\r\n",
            b"*\r\n",
            b"*2147483648\r\n",
            b"*1\rx",
        ] {
            assert_eq!(
                error_of(input),
                ProtocolError::InvalidMultibulkLength,
                "{input:?}"
            );
        }
        assert!(
            parse_all(b"*2147483647\r\n").1.is_ok(),
            "INT_MAX is accepted, as in Redis"
        );
    }

    #[test]
    fn a_bad_bulk_length_is_an_invalid_bulk_length() {
        for input in [
            &b"*1\r\n$x\r\n"[..],
            b"*1\r\n$-1\r\n",
            b"*1\r\n$04\r\nPING\r\n",
            b"*1\r\n$+4\r\nPING\r\n",
            b"*1\r\n$536870913\r\n",
            b"*1\r\n$4\rxPING\r\n",
        ] {
            assert_eq!(
                error_of(input),
                ProtocolError::InvalidBulkLength,
                "{input:?}"
            );
        }
        assert!(parse_all(b"*1\r\n$536870912\r\n").1.is_ok());
    }

    #[test]
    fn a_bulk_header_must_start_with_a_dollar() {
        assert_eq!(
            error_of(b"*1\r\nx\r\n"),
            ProtocolError::ExpectedDollar(b'x')
        );
        assert_eq!(error_of(b"*1\r\n\r\n"), ProtocolError::ExpectedDollar(b' '));
        assert_eq!(
            ProtocolError::ExpectedDollar(b'x').to_string(),
            "ERR Protocol error: expected '$', got 'x'"
        );
    }

    #[test]
    fn a_bulk_not_followed_by_crlf_is_refused() {
        assert_eq!(
            error_of(b"*1\r\n$2\r\nxxYY"),
            ProtocolError::BulkNotTerminated
        );
        assert_eq!(
            error_of(b"*1\r\n$4\r\nPING\r\r\n"),
            ProtocolError::BulkNotTerminated
        );
    }

    #[test]
    fn lines_without_end_are_refused_past_the_inline_limit() {
        let mut long = b"*".to_vec();
        long.extend(std::iter::repeat_n(b'1', INLINE_BYTES_MAX + 1));
        assert_eq!(error_of(&long), ProtocolError::TooBigMultibulkCount);
        let mut long = b"*1\r\n$".to_vec();
        long.extend(std::iter::repeat_n(b'1', INLINE_BYTES_MAX + 1));
        assert_eq!(error_of(&long), ProtocolError::TooBigBulkCount);
        let long = vec![b'a'; INLINE_BYTES_MAX + 1];
        assert_eq!(error_of(&long), ProtocolError::TooBigInline);
        let ok = vec![b'a'; INLINE_BYTES_MAX];
        assert!(parse_all(&ok).1.is_ok());
    }

    #[test]
    fn error_texts_are_redis_texts() {
        let cases = [
            (
                ProtocolError::InvalidMultibulkLength,
                "ERR Protocol error: invalid multibulk length",
            ),
            (
                ProtocolError::InvalidBulkLength,
                "ERR Protocol error: invalid bulk length",
            ),
            (
                ProtocolError::TooBigMultibulkCount,
                "ERR Protocol error: too big mbulk count string",
            ),
            (
                ProtocolError::TooBigBulkCount,
                "ERR Protocol error: too big bulk count string",
            ),
            (
                ProtocolError::TooBigInline,
                "ERR Protocol error: too big inline request",
            ),
            (
                ProtocolError::UnbalancedQuotes,
                "ERR Protocol error: unbalanced quotes in request",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn the_query_buffer_limit_counts_split_off_arguments_too() {
        let limits = ParseLimits {
            query_buffer_bytes_max: 100,
            ..ParseLimits::default()
        };
        let mut p = RequestParser::new(limits);
        let mut buf = BytesMut::from(&b"*3\r\n$40\r\n"[..]);
        buf.extend_from_slice(&[b'a'; 40]);
        buf.extend_from_slice(b"\r\n$40\r\n");
        buf.extend_from_slice(&[b'b'; 40]);
        buf.extend_from_slice(b"\r\n$40\r\n");
        assert_eq!(
            p.parse(&mut buf),
            Err(ProtocolError::QueryBufferLimit { limit: 100 })
        );
        // A waiting buffer past the limit is refused too.
        let mut p = RequestParser::new(limits);
        let mut buf = BytesMut::from(&vec![b'x'; 101][..]);
        buf[0] = b'*';
        assert!(p.parse(&mut buf).is_err());
    }

    #[test]
    fn a_lower_bulk_limit_applies_after_set_limits() {
        let mut p = parser();
        p.set_limits(ParseLimits {
            bulk_bytes_max: 3,
            ..ParseLimits::default()
        });
        assert_eq!(p.limits().bulk_bytes_max, 3);
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n"[..]);
        assert_eq!(p.parse(&mut buf), Err(ProtocolError::InvalidBulkLength));
    }

    #[test]
    fn a_huge_announced_count_reserves_little() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"*2000000000\r\n$1\r\na\r\n"[..]);
        assert_eq!(p.parse(&mut buf), Ok(None));
        match &p.state {
            State::Multibulk { args, .. } => assert!(args.capacity() <= ARGS_PREALLOCATED_MAX),
            other => panic!("unexpected state {other:?}"),
        }
    }

    #[test]
    fn string2ll_follows_redis() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            "",
            "-",
            "-0",
            "00",
            "01",
            "+1",
            " 1",
            "1 ",
            "9223372036854775808",
            "1a",
        ] {
            assert_eq!(string2ll(bad.as_bytes()), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_stay_within_limits(
            input in proptest::collection::vec(any::<u8>(), 0..600),
            chunk in 1usize..64,
        ) {
            let limits = ParseLimits {
                bulk_bytes_max: 32,
                query_buffer_bytes_max: 256,
                inline_bytes_max: 48,
                multibulk_args_max: 8,
            };
            let mut p = RequestParser::new(limits);
            let mut buf = BytesMut::new();
            'feed: for piece in input.chunks(chunk) {
                buf.extend_from_slice(piece);
                loop {
                    match p.parse(&mut buf) {
                        Ok(Some(args)) => {
                            prop_assert!(!args.is_empty());
                            prop_assert!(args.iter().map(Bytes::len).sum::<usize>() <= 256);
                        }
                        Ok(None) => {
                            prop_assert!(buf.len() <= 256);
                            if let State::Multibulk { args, args_bytes, .. } = &p.state {
                                prop_assert!(args.capacity() <= 8);
                                prop_assert!(args_bytes + buf.len() <= 256);
                            }
                            break;
                        }
                        Err(_) => break 'feed,
                    }
                }
            }
        }

        #[test]
        fn multibulks_fed_in_random_chunks_come_back_unchanged(
            requests in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
                1..5),
            chunk in 1usize..50,
        ) {
            let mut wire = Vec::new();
            for r in &requests {
                wire.extend(multibulk(r));
            }
            let mut p = parser();
            let mut buf = BytesMut::new();
            let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(a) = p.parse(&mut buf).unwrap() {
                    out.push(a.iter().map(|b| b.to_vec()).collect());
                }
            }
            prop_assert_eq!(out, requests);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn inline_words_without_specials_split_on_blanks(
            words in proptest::collection::vec("[a-zA-Z0-9:_.-]{1,10}", 1..6),
        ) {
            let line = format!("{}\r\n", words.join("  "));
            let (reqs, res, _) = parse_all(line.as_bytes());
            prop_assert!(res.is_ok());
            let expected: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.clone())).collect();
            prop_assert_eq!(reqs, vec![expected]);
        }
    }
}
