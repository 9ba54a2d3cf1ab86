//! The peer protocol, without I/O: framing, messages and the authenticated handshake.
//!
//! - [`frame`]: `[u32 length][u8 kind][u64 request id][payload]` and the [`FrameDecoder`].
//! - [`message`]: the [`Message`] carried by each frame kind, every field bounded on decode.
//! - [`handshake`]: the [`Handshake`] state machine (HMAC-SHA256 challenge–response).
//!
//! The byte layouts are documented at the top of each module and in docs/protocol.md.
//! Any [`ProtocolError`] closes the connection: the stream cannot be resynchronized.

pub mod frame;
pub mod handshake;
pub mod message;

pub use frame::{
    FRAME_HEADER_BYTES, Frame, FrameDecoder, HANDSHAKE_FRAME_BYTES_MAX, PEER_FRAME_BYTES_MAX,
    PEER_KEY_BYTES_MAX, PEER_VALUE_BYTES_MAX, encode_frame,
};
pub use handshake::{
    Handshake, HandshakeEffect, LocalPeer, PROTOCOL_VERSION, PROTOCOL_VERSION_MIN, Refusal, Role,
};
pub use message::{Hello, Message, PEER_MAGIC, kind};

/// A peer sent bytes that are not a valid frame or message. Nothing was applied; the
/// connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The length field exceeds the connection's limit.
    #[error("peer frame of {length} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The length field.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// The length field is too small to hold a kind and a request id.
    #[error("peer frame length {length} is shorter than its header")]
    FrameTooShort {
        /// The length field.
        length: usize,
    },
    /// The frame kind is not one this protocol version knows.
    #[error("unknown peer frame kind {kind}")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// The payload ends before a field it announces.
    #[error("peer message kind {kind} truncated: needed {needed} bytes, {available} left")]
    Truncated {
        /// The frame kind.
        kind: u8,
        /// Bytes the next field needs.
        needed: usize,
        /// Bytes left in the payload.
        available: usize,
    },
    /// A length-prefixed field exceeds its bound.
    #[error("peer message {field} of {bytes} bytes exceeds the limit of {max} bytes")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its announced length.
        bytes: usize,
        /// The bound.
        max: usize,
    },
    /// A text field is not UTF-8.
    #[error("peer message {field} is not UTF-8")]
    NotUtf8 {
        /// The field.
        field: &'static str,
    },
    /// A field holds a value the format does not allow.
    #[error("peer message kind {kind}: invalid {what} {value}")]
    Malformed {
        /// The frame kind.
        kind: u8,
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// The payload has bytes after the message.
    #[error("peer message kind {kind} has {bytes} trailing bytes")]
    TrailingBytes {
        /// The frame kind.
        kind: u8,
        /// How many.
        bytes: usize,
    },
}

#[cfg(test)]
mod tests;
