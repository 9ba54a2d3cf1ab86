//! A strict RESP2 reply parser for the replies a SET and a GET get.
//!
//! # Format
//! ```text
//! +<line>\r\n            simple string       -<line>\r\n         error
//! :<integer>\r\n         integer             $<len>\r\n<bytes>\r\n  bulk string
//! $-1\r\n                nil bulk            *<n>\r\n<n replies>    array (skipped)
//! *-1\r\n                nil array
//! ```
//! A line holds neither `\r` nor `\n`; an integer is an optional `-` and 1 to 19 digits.
//! Anything else is a [`ParseError`]: the caller drops the connection, since it can no longer
//! tell where the next reply starts. The parser never panics on any input (a property test
//! feeds it arbitrary bytes) and never allocates: replies borrow the buffer.

use std::fmt;

/// The longest line (simple string, error, length) accepted: garbage without `\r\n` must not
/// make the reader buffer without bound.
pub const LINE_BYTES_MAX: usize = 64 * 1024;
/// The largest bulk string accepted (above the largest value a SET sends).
pub const BULK_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The most elements of a skipped array.
pub const ARRAY_LEN_MAX: usize = 1 << 20;
/// How deeply skipped arrays may nest.
pub const ARRAY_DEPTH_MAX: usize = 8;

/// One reply, borrowing the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK`
    Simple(&'a [u8]),
    /// `-ERR ...`: the whole line after `-`.
    Error(&'a [u8]),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`
    Bulk(&'a [u8]),
    /// `$-1`
    Nil,
    /// `*-1`
    NilArray,
    /// `*n`: an array of `n` elements, skipped.
    Array(usize),
}

/// Why the bytes are not a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The first byte is not one of `+ - : $ *`.
    UnknownType(u8),
    /// A line holds `\r` or `\n` other than at its end.
    BadLine,
    /// An integer or length is not a number.
    BadInteger,
    /// A length below -1.
    BadLength,
    /// A bulk string not followed by `\r\n`.
    MissingCrlf,
    /// Longer than [`LINE_BYTES_MAX`], [`BULK_BYTES_MAX`] or [`ARRAY_LEN_MAX`].
    TooLong,
    /// Arrays nested deeper than [`ARRAY_DEPTH_MAX`].
    TooDeep,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownType(b) => write!(f, "unknown reply type byte 0x{b:02x}"),
            ParseError::BadLine => f.write_str("a reply line holds a stray CR or LF"),
            ParseError::BadInteger => f.write_str("a reply integer is not a number"),
            ParseError::BadLength => f.write_str("a reply length is below -1"),
            ParseError::MissingCrlf => f.write_str("a bulk reply does not end with CRLF"),
            ParseError::TooLong => f.write_str("a reply is longer than the parser accepts"),
            ParseError::TooDeep => f.write_str("reply arrays nest too deeply"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses the reply at the start of `buf`: `Ok(None)` when more bytes are needed, else the
/// reply and how many bytes it took.
///
/// # Errors
/// The bytes are not a well-formed reply (see the module doc).
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, ParseError> {
    parse_at(buf, 0, 0)
}

fn parse_at(
    buf: &[u8],
    pos: usize,
    depth: usize,
) -> Result<Option<(Reply<'_>, usize)>, ParseError> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
        return Err(ParseError::UnknownType(kind));
    }
    let Some((line, after_line)) = line_at(buf, pos + 1)? else {
        return Ok(None);
    };
    let parsed = match kind {
        b'+' => Some((Reply::Simple(line), after_line)),
        b'-' => Some((Reply::Error(line), after_line)),
        b':' => Some((Reply::Integer(integer(line)?), after_line)),
        b'$' => bulk(buf, integer(line)?, after_line)?,
        _ => array(buf, integer(line)?, after_line, depth)?,
    };
    Ok(parsed.map(|(reply, end)| (reply, end - pos)))
}

/// The line starting at `start` without its `\r\n`, and where the next one starts.
fn line_at(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, ParseError> {
    let rest = &buf[start.min(buf.len())..];
    let window = &rest[..rest.len().min(LINE_BYTES_MAX + 1)];
    let Some(end) = memchr::memchr2(b'\r', b'\n', window) else {
        return if window.len() > LINE_BYTES_MAX {
            Err(ParseError::TooLong)
        } else {
            Ok(None)
        };
    };
    if window[end] == b'\n' {
        return Err(ParseError::BadLine);
    }
    match rest.get(end + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((&rest[..end], start + end + 2))),
        Some(_) => Err(ParseError::BadLine),
    }
}

/// A strict decimal integer: an optional `-`, then 1 to 19 digits, no overflow.
fn integer(line: &[u8]) -> Result<i64, ParseError> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::BadInteger);
    }
    let mut value: i64 = 0;
    for &d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d - b'0')))
            .ok_or(ParseError::BadInteger)?;
    }
    Ok(if negative { -value } else { value })
}

/// The bulk string whose content starts at `start`, and where the reply ends.
fn bulk(buf: &[u8], len: i64, start: usize) -> Result<Option<(Reply<'_>, usize)>, ParseError> {
    if len == -1 {
        return Ok(Some((Reply::Nil, start)));
    }
    let len = usize::try_from(len).map_err(|_| ParseError::BadLength)?;
    if len > BULK_BYTES_MAX {
        return Err(ParseError::TooLong);
    }
    let end = start + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ParseError::MissingCrlf);
    }
    Ok(Some((Reply::Bulk(&buf[start..end]), end + 2)))
}

/// The array whose elements start at `start` (skipped), and where the reply ends.
fn array(
    buf: &[u8],
    len: i64,
    start: usize,
    depth: usize,
) -> Result<Option<(Reply<'_>, usize)>, ParseError> {
    if len == -1 {
        return Ok(Some((Reply::NilArray, start)));
    }
    let len = usize::try_from(len).map_err(|_| ParseError::BadLength)?;
    if len > ARRAY_LEN_MAX {
        return Err(ParseError::TooLong);
    }
    if depth >= ARRAY_DEPTH_MAX {
        return Err(ParseError::TooDeep);
    }
    let mut pos = start;
    for _ in 0..len {
        match parse_at(buf, pos, depth + 1)? {
            Some((_, taken)) => pos += taken,
            None => return Ok(None),
        }
    }
    Ok(Some((Reply::Array(len), pos)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn complete(bytes: &[u8]) -> (Reply<'_>, usize) {
        parse_reply(bytes).unwrap().expect("complete")
    }

    #[test]
    fn complete_replies_of_every_type() {
        assert_eq!(complete(b"+OK\r\n"), (Reply::Simple(b"OK"), 5));
        assert_eq!(
            complete(b"-TIMEOUT QUORUM got 1 of 2\r\n+OK\r\n"),
            (Reply::Error(b"TIMEOUT QUORUM got 1 of 2"), 28)
        );
        assert_eq!(complete(b":-42\r\n"), (Reply::Integer(-42), 6));
        assert_eq!(complete(b"$3\r\nabc\r\n"), (Reply::Bulk(b"abc"), 9));
        assert_eq!(complete(b"$0\r\n\r\n"), (Reply::Bulk(b""), 6));
        assert_eq!(complete(b"$2\r\n\r\n\r\n"), (Reply::Bulk(b"\r\n"), 8));
        assert_eq!(complete(b"$-1\r\n"), (Reply::Nil, 5));
        assert_eq!(complete(b"*-1\r\n"), (Reply::NilArray, 5));
        assert_eq!(complete(b"*0\r\n"), (Reply::Array(0), 4));
        assert_eq!(
            complete(b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n+next\r\n"),
            (Reply::Array(2), 19)
        );
        assert_eq!(
            complete(b":9223372036854775807\r\n").0,
            Reply::Integer(i64::MAX)
        );
    }

    #[test]
    fn a_reply_after_another_starts_where_the_first_ended() {
        let buf = b"$-1\r\n$5\r\nhello\r\n+OK\r\n";
        let mut pos = 0;
        let mut replies = Vec::new();
        while let Some((reply, taken)) = parse_reply(&buf[pos..]).unwrap() {
            replies.push(reply);
            pos += taken;
        }
        assert_eq!(
            replies,
            [Reply::Nil, Reply::Bulk(b"hello"), Reply::Simple(b"OK")]
        );
        assert_eq!(pos, buf.len());
    }

    #[test]
    fn every_strict_prefix_of_a_reply_is_incomplete() {
        let whole: &[u8] = b"*3\r\n$3\r\nabc\r\n:12\r\n-ERR x\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse_reply(&whole[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse_reply(whole).unwrap().is_some());
    }

    #[test]
    fn garbage_is_an_error() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"hello\r\n", ParseError::UnknownType(b'h')),
            (b"%1\r\n", ParseError::UnknownType(b'%')),
            (b"+O\nK\r\n", ParseError::BadLine),
            (b"+OK\rX", ParseError::BadLine),
            (b":\r\n", ParseError::BadInteger),
            (b":+1\r\n", ParseError::BadInteger),
            (b":1x\r\n", ParseError::BadInteger),
            (b":99999999999999999999\r\n", ParseError::BadInteger),
            (b":-\r\n", ParseError::BadInteger),
            (b"$-2\r\n", ParseError::BadLength),
            (b"$3\r\nabcd\r\n", ParseError::MissingCrlf),
            (b"$99999999999\r\n", ParseError::TooLong),
            (b"*-5\r\n", ParseError::BadLength),
            (b"*1\r\n?\r\n", ParseError::UnknownType(b'?')),
            (
                b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n",
                ParseError::TooDeep,
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                parse_reply(bytes),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let endless = vec![b'x'; LINE_BYTES_MAX + 10];
        let mut line = b"+".to_vec();
        line.extend_from_slice(&endless);
        assert_eq!(parse_reply(&line), Err(ParseError::TooLong));
        assert_eq!(parse_reply(&line[..LINE_BYTES_MAX]), Ok(None));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(Some((_, taken))) = parse_reply(&bytes) {
                prop_assert!(taken > 0 && taken <= bytes.len());
            }
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_prefix_never_panic(
            prefix in prop::sample::select(vec![&b"$"[..], b"*2\r\n", b"$3\r\n", b"*1\r\n$", b":"]),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = prefix.to_vec();
            bytes.extend_from_slice(&tail);
            if let Ok(Some((_, taken))) = parse_reply(&bytes) {
                prop_assert!(taken > 0 && taken <= bytes.len());
            }
        }

        #[test]
        fn bulk_strings_round_trip(value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = format!("${}\r\n", value.len()).into_bytes();
            bytes.extend_from_slice(&value);
            bytes.extend_from_slice(b"\r\n");
            let (reply, taken) = parse_reply(&bytes).unwrap().unwrap();
            prop_assert_eq!(reply, Reply::Bulk(&value));
            prop_assert_eq!(taken, bytes.len());
        }
    }
}
