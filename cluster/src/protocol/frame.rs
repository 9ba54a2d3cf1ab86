//! Peer frames: the outer layer of the peer protocol.
//!
//! ```text
//! [u32 length][u8 kind][u64 request id][payload ...]
//! ```
//!
//! All integers little-endian. `length` counts the bytes after itself: kind + request id +
//! payload, so it is at least [`FRAME_LENGTH_MIN`] (9). The decoder checks `length` against its
//! limit and the kind against the known kinds *before* it waits for or touches the rest of the
//! frame, so a peer cannot make it buffer more than the limit. Payloads are handed out as
//! zero-copy [`Bytes`] slices of the read buffer (`split_to` + `freeze`).
//!
//! Limits: before the handshake completes a connection decodes with
//! [`HANDSHAKE_FRAME_BYTES_MAX`] (4 KiB) so an unauthenticated client cannot make a node buffer
//! half a gigabyte; once established it switches to [`PEER_FRAME_BYTES_MAX`], which fits one key
//! of [`PEER_KEY_BYTES_MAX`] and one value of [`PEER_VALUE_BYTES_MAX`] (512 MiB, Redis's
//! default `proto-max-bulk-len`). See docs/protocol.md.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::ProtocolError;
use super::message::kind;

/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;
/// Bytes of the frame header: length, kind and request id.
pub const FRAME_HEADER_BYTES: usize = LENGTH_BYTES + 1 + 8;
const _: () = assert!(FRAME_HEADER_BYTES == 13);
/// The smallest valid value of the length field: kind + request id, empty payload.
pub const FRAME_LENGTH_MIN: usize = FRAME_HEADER_BYTES - LENGTH_BYTES;

/// The longest key a peer message carries. Redis allows longer keys, but a key this long is
/// a mistake; the coordinator refuses a longer key with an error before anything is written.
pub const PEER_KEY_BYTES_MAX: usize = 1024 * 1024;
/// The longest value a peer message carries: Redis's default `proto-max-bulk-len`, so every
/// value a default-configured node accepts from a client can be replicated in one frame. If
/// `proto-max-bulk-len` is raised above this, the coordinator refuses the larger values with
/// an error (nothing written) rather than splitting them.
pub const PEER_VALUE_BYTES_MAX: usize = 512 * 1024 * 1024;
/// Slack in a frame for everything but the key and value bytes (lengths, flags, versions).
pub const PEER_FRAME_OVERHEAD_BYTES_MAX: usize = 4096;
/// The largest value of the length field on an established connection: one key, one value
/// and their fixed fields.
pub const PEER_FRAME_BYTES_MAX: usize =
    PEER_VALUE_BYTES_MAX + PEER_KEY_BYTES_MAX + PEER_FRAME_OVERHEAD_BYTES_MAX;
const _: () = assert!(PEER_FRAME_BYTES_MAX <= u32::MAX as usize);
/// The largest value of the length field before the handshake has completed.
pub const HANDSHAKE_FRAME_BYTES_MAX: usize = 4096;

/// One frame, its payload a zero-copy slice of the bytes read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message kind, one of [`kind`].
    pub kind: u8,
    /// Matches a reply to its request on a multiplexed connection; 0 for unsolicited messages.
    pub request_id: u64,
    /// The message body, decoded by [`Message::decode`](super::Message::decode).
    pub payload: Bytes,
}

/// Cuts frames off the front of a read buffer. Holds no buffer itself: the caller reads into
/// a [`BytesMut`] and calls [`FrameDecoder::decode`] until it returns `Ok(None)`.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    frame_bytes_max: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames whose length field exceeds `frame_bytes_max`
    /// (clamped to [`PEER_FRAME_BYTES_MAX`]).
    pub fn new(frame_bytes_max: usize) -> FrameDecoder {
        FrameDecoder {
            frame_bytes_max: frame_bytes_max.min(PEER_FRAME_BYTES_MAX),
        }
    }

    /// A decoder for a connection still in its handshake: [`HANDSHAKE_FRAME_BYTES_MAX`].
    pub fn for_handshake() -> FrameDecoder {
        FrameDecoder::new(HANDSHAKE_FRAME_BYTES_MAX)
    }

    /// The current limit on the length field.
    pub fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }

    /// Changes the limit, e.g. to [`PEER_FRAME_BYTES_MAX`] once the handshake is established.
    pub fn set_frame_bytes_max(&mut self, frame_bytes_max: usize) {
        self.frame_bytes_max = frame_bytes_max.min(PEER_FRAME_BYTES_MAX);
    }

    /// Takes the next complete frame off the front of `buf`.
    ///
    /// `Ok(None)`: the frame is not complete yet; `buf` is untouched. On error `buf` is left
    /// as it was and the connection must be closed: the stream cannot be resynchronized.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if buf.len() < LENGTH_BYTES {
            return Ok(None);
        }
        let length = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if length > self.frame_bytes_max {
            return Err(ProtocolError::FrameTooLarge {
                length,
                max: self.frame_bytes_max,
            });
        }
        if length < FRAME_LENGTH_MIN {
            return Err(ProtocolError::FrameTooShort { length });
        }
        if buf.len() > LENGTH_BYTES {
            let frame_kind = buf[LENGTH_BYTES];
            if !kind::is_known(frame_kind) {
                return Err(ProtocolError::UnknownKind { kind: frame_kind });
            }
        }
        if buf.len() < LENGTH_BYTES + length {
            return Ok(None);
        }
        buf.advance(LENGTH_BYTES);
        let mut frame = buf.split_to(length);
        let frame_kind = frame.get_u8();
        let request_id = frame.get_u64_le();
        Ok(Some(Frame {
            kind: frame_kind,
            request_id,
            payload: frame.freeze(),
        }))
    }
}

/// Appends one frame to `out`. The payload is at most [`PEER_FRAME_BYTES_MAX`] minus the
/// kind and request id; a longer payload is refused and nothing is written.
pub fn encode_frame(
    frame_kind: u8,
    request_id: u64,
    payload: &[u8],
    out: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let length = put_header(frame_kind, request_id, payload.len(), out)?;
    debug_assert_eq!(length, FRAME_LENGTH_MIN + payload.len());
    out.put_slice(payload);
    Ok(())
}

/// Appends a frame header for a payload of `payload_bytes` that the caller writes next.
/// Returns the length field written.
pub(crate) fn put_header(
    frame_kind: u8,
    request_id: u64,
    payload_bytes: usize,
    out: &mut BytesMut,
) -> Result<usize, ProtocolError> {
    let length = FRAME_LENGTH_MIN.saturating_add(payload_bytes);
    if length > PEER_FRAME_BYTES_MAX {
        return Err(ProtocolError::FrameTooLarge {
            length,
            max: PEER_FRAME_BYTES_MAX,
        });
    }
    out.reserve(LENGTH_BYTES + length);
    out.put_u32_le(length as u32);
    out.put_u8(frame_kind);
    out.put_u64_le(request_id);
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_its_payload_shares_the_read_buffer() {
        let mut buf = BytesMut::new();
        encode_frame(kind::PING, 7, b"12345678", &mut buf).unwrap();
        assert_eq!(&buf[..4], &17u32.to_le_bytes());
        let before = buf.as_ptr() as usize;
        let frame = FrameDecoder::new(PEER_FRAME_BYTES_MAX)
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(frame.kind, kind::PING);
        assert_eq!(frame.request_id, 7);
        assert_eq!(&frame.payload[..], b"12345678");
        assert_eq!(frame.payload.as_ptr() as usize, before + FRAME_HEADER_BYTES);
        assert!(buf.is_empty());
    }

    #[test]
    fn an_incomplete_frame_is_left_in_the_buffer() {
        let mut whole = BytesMut::new();
        encode_frame(kind::PING, 1, b"abcdefgh", &mut whole).unwrap();
        let mut decoder = FrameDecoder::new(PEER_FRAME_BYTES_MAX);
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(decoder.decode(&mut part).unwrap(), None);
            assert_eq!(part.len(), cut);
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_the_body_arrives() {
        let mut buf = BytesMut::new();
        buf.put_u32_le((HANDSHAKE_FRAME_BYTES_MAX + 1) as u32);
        let error = FrameDecoder::for_handshake().decode(&mut buf).unwrap_err();
        assert_eq!(
            error,
            ProtocolError::FrameTooLarge {
                length: HANDSHAKE_FRAME_BYTES_MAX + 1,
                max: HANDSHAKE_FRAME_BYTES_MAX
            }
        );
        let mut buf = BytesMut::from(&u32::MAX.to_le_bytes()[..]);
        assert!(matches!(
            FrameDecoder::new(usize::MAX).decode(&mut buf),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn an_unknown_kind_and_a_short_length_are_refused() {
        let mut buf = BytesMut::new();
        buf.put_u32_le(9);
        buf.put_u8(0xEE);
        assert_eq!(
            FrameDecoder::for_handshake().decode(&mut buf),
            Err(ProtocolError::UnknownKind { kind: 0xEE })
        );
        let mut buf = BytesMut::from(&8u32.to_le_bytes()[..]);
        assert_eq!(
            FrameDecoder::for_handshake().decode(&mut buf),
            Err(ProtocolError::FrameTooShort { length: 8 })
        );
    }

    #[test]
    fn a_redis_client_on_the_peer_port_is_refused_at_once() {
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n"[..]);
        assert!(FrameDecoder::for_handshake().decode(&mut buf).is_err());
    }
}
