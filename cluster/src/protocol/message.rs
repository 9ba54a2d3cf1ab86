//! Peer messages: the payload of each frame kind.
//!
//! Every integer is little-endian; every variable-length field has a length prefix that is
//! checked against its bound before the field is read. A message must use its whole payload:
//! trailing bytes are an error. Layouts (payload only, after the frame header):
//!
//! ```text
//! HELLO      magic[8] protocol_version:u16 node_id:u64 nonce[32] name_len:u16 name[name_len]
//! PROOF      mac[32]
//! PING       now_ms:u64
//! PONG       now_ms:u64 echoed_ms:u64
//! READ       key_len:u32 key[key_len]
//! READ_REPLY present:u8 (0 | 1) [record if present]
//! WRITE      key_len:u32 key[key_len] record
//! WRITE_ACK  (empty)
//! ERROR      text_len:u16 text[text_len] (UTF-8)
//! SCAN       from_token:u64 count:u32                 (count <= SCAN_KEYS_MAX)
//! SCAN_REPLY next_token:u64 n:u32 n × (key_len:u32 key[key_len])   (n <= SCAN_KEYS_MAX)
//! KEY_COUNT  (empty)
//! KEY_COUNT_REPLY keys:u64
//! FLUSH      version_hlc:u64 version_node:u32         (answered with WRITE_ACK)
//! MEMBERS    state_len:u32 state[state_len]           (gossip push-pull; state <= MEMBERS_STATE_BYTES_MAX)
//! MEMBERS_REPLY state_len:u32 state[state_len]
//! STREAM_READ cursor:u64 count:u32 n:u32 n × (first:u64 last:u64)   (count <= STREAM_KEYS_MAX, n <= STREAM_RANGES_MAX)
//! STREAM_REPLY cursor:u64 n:u32 n × (key_len:u32 key[key_len] record)   (n <= STREAM_KEYS_MAX)
//! DIGESTS    n:u32 n × (first_leaf:u32 last_leaf:u32)        (n <= DIGEST_SPANS_MAX)
//! DIGESTS_REPLY n:u32 n × digest:u64                       (n <= DIGEST_SPANS_MAX)
//! VERSIONS   n:u32 n × (first:u64 last:u64)                  (n <= VERSION_SPANS_MAX)
//! VERSIONS_REPLY truncated:u8 n:u32 n × (key_len:u32 key[key_len] record)   (n <= VERSION_KEYS_MAX;
//!            each record's value, if any, is empty: only the versions count)
//! FETCH      n:u32 n × (key_len:u32 key[key_len])            (n <= FETCH_KEYS_MAX; answered with
//!            STREAM_REPLY, cursor 0, the records held)
//! REPAIR_WRITE n:u32 n × (key_len:u32 key[key_len] record)   (n <= FETCH_KEYS_MAX; answered with WRITE_ACK)
//! REPAIR_DONE started_ms:u64 n:u32 n × (start:u64 end:u64 replicas:u64)   (n <= STREAM_RANGES_MAX;
//!            answered with WRITE_ACK; replicas: a hash of the range's sorted replicas)
//! SPAN_DIGESTS n:u32 n × (first:u64 last:u64)              (n <= VERSION_SPANS_MAX; answered with
//!            DIGESTS_REPLY, one digest per span)
//! PUBLISH    channel_len:u32 channel[channel_len] payload_len:u32 payload[payload_len]
//!            (channel <= PEER_KEY_BYTES_MAX, payload <= PEER_VALUE_BYTES_MAX; answered with
//!            WRITE_ACK)
//!
//! record     flags:u8 value_hlc:u64 value_node:u32 expiry_hlc:u64 expiry_node:u32
//!            [expiry_ms:u64 if flags & HAS_EXPIRY] [value_len:u32 value[value_len] if flags & HAS_VALUE]
//! ```
//!
//! Flags other than [`RECORD_HAS_VALUE`] and [`RECORD_HAS_EXPIRY`] must be zero. A record
//! without `HAS_VALUE` is a tombstone.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ringcache_storage::{DataType, Record, Summary, Value, Version};

use super::ProtocolError;
use super::frame::{Frame, PEER_KEY_BYTES_MAX, PEER_VALUE_BYTES_MAX, put_header};

/// The frame kinds, one per [`Message`] variant.
pub mod kind {
    /// [`Message::Hello`](super::Message::Hello).
    pub const HELLO: u8 = 1;
    /// [`Message::Proof`](super::Message::Proof).
    pub const PROOF: u8 = 2;
    /// [`Message::Ping`](super::Message::Ping).
    pub const PING: u8 = 3;
    /// [`Message::Pong`](super::Message::Pong).
    pub const PONG: u8 = 4;
    /// [`Message::Read`](super::Message::Read).
    pub const READ: u8 = 5;
    /// [`Message::ReadReply`](super::Message::ReadReply).
    pub const READ_REPLY: u8 = 6;
    /// [`Message::Write`](super::Message::Write).
    pub const WRITE: u8 = 7;
    /// [`Message::WriteAck`](super::Message::WriteAck).
    pub const WRITE_ACK: u8 = 8;
    /// [`Message::Error`](super::Message::Error).
    pub const ERROR: u8 = 9;
    /// [`Message::Scan`](super::Message::Scan).
    pub const SCAN: u8 = 10;
    /// [`Message::ScanReply`](super::Message::ScanReply).
    pub const SCAN_REPLY: u8 = 11;
    /// [`Message::KeyCount`](super::Message::KeyCount).
    pub const KEY_COUNT: u8 = 12;
    /// [`Message::KeyCountReply`](super::Message::KeyCountReply).
    pub const KEY_COUNT_REPLY: u8 = 13;
    /// [`Message::Flush`](super::Message::Flush).
    pub const FLUSH: u8 = 14;
    /// [`Message::Members`](super::Message::Members).
    pub const MEMBERS: u8 = 15;
    /// [`Message::MembersReply`](super::Message::MembersReply).
    pub const MEMBERS_REPLY: u8 = 16;
    /// [`Message::StreamRead`](super::Message::StreamRead).
    pub const STREAM_READ: u8 = 17;
    /// [`Message::StreamReply`](super::Message::StreamReply).
    pub const STREAM_REPLY: u8 = 18;
    /// [`Message::Digests`](super::Message::Digests).
    pub const DIGESTS: u8 = 19;
    /// [`Message::DigestsReply`](super::Message::DigestsReply).
    pub const DIGESTS_REPLY: u8 = 20;
    /// [`Message::Versions`](super::Message::Versions).
    pub const VERSIONS: u8 = 21;
    /// [`Message::VersionsReply`](super::Message::VersionsReply).
    pub const VERSIONS_REPLY: u8 = 22;
    /// [`Message::Fetch`](super::Message::Fetch).
    pub const FETCH: u8 = 23;
    /// [`Message::RepairWrite`](super::Message::RepairWrite).
    pub const REPAIR_WRITE: u8 = 24;
    /// [`Message::RepairDone`](super::Message::RepairDone).
    pub const REPAIR_DONE: u8 = 25;
    /// [`Message::SpanDigests`](super::Message::SpanDigests).
    pub const SPAN_DIGESTS: u8 = 26;
    /// [`Message::Publish`](super::Message::Publish).
    pub const PUBLISH: u8 = 27;

    /// Whether `kind` is a kind this protocol version knows.
    pub fn is_known(kind: u8) -> bool {
        (HELLO..=PUBLISH).contains(&kind)
    }
}

/// The magic that opens every [`Hello`].
pub const PEER_MAGIC: [u8; 8] = *b"RINGPEER";
/// Bytes of a handshake nonce.
pub const NONCE_BYTES: usize = 32;
/// Bytes of a handshake proof (HMAC-SHA256).
pub const MAC_BYTES: usize = 32;
/// The longest cluster name, in bytes of UTF-8.
pub const CLUSTER_NAME_BYTES_MAX: usize = 255;
/// The longest [`Message::Error`] text, in bytes of UTF-8.
pub const ERROR_TEXT_BYTES_MAX: usize = 1024;
/// Record flag: the value cell holds a value (otherwise it is a tombstone).
pub const RECORD_HAS_VALUE: u8 = 0b01;
/// Record flag: the expiry cell holds an expiry.
pub const RECORD_HAS_EXPIRY: u8 = 0b10;
/// Where the value's type number sits in the record flags (bits 2..5; 0 is a string).
pub const RECORD_KIND_SHIFT: u8 = 2;
/// The record flag bits that hold the value's type.
pub const RECORD_KIND_MASK: u8 = 0b11100;
/// [`Message::Scan`]'s type byte for keys of every type.
pub const SCAN_ANY_TYPE: u8 = 0xff;
/// Most keys one [`Message::Scan`] asks for and one [`Message::ScanReply`] carries.
pub const SCAN_KEYS_MAX: usize = 100_000;
/// Largest membership state one [`Message::Members`] carries: about 40 bytes a member, so
/// room for some 100,000 members.
pub const MEMBERS_STATE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most keys one [`Message::StreamRead`] walks and one [`Message::StreamReply`] carries.
pub const STREAM_KEYS_MAX: usize = 65_536;
/// Most token ranges one [`Message::StreamRead`] asks for (a node's ranges as a replica:
/// vnodes × N, so 512 × 8 at most).
pub const STREAM_RANGES_MAX: usize = 65_536;
/// Most leaf spans one [`Message::Digests`] asks for.
pub const DIGEST_SPANS_MAX: usize = 65_536;
/// Most token spans one [`Message::Versions`] asks for.
pub const VERSION_SPANS_MAX: usize = 4_096;
/// Most keys one [`Message::VersionsReply`] carries: more are left for the next round.
pub const VERSION_KEYS_MAX: usize = 262_144;
/// Most keys one [`Message::Fetch`] asks for and one [`Message::RepairWrite`] carries.
pub const FETCH_KEYS_MAX: usize = 4_096;
/// Bytes of a record without its expiry and value: flags and two versions.
const RECORD_FIXED_BYTES: usize = 1 + 2 * VERSION_BYTES;
const VERSION_BYTES: usize = 8 + 4;
const HELLO_FIXED_BYTES: usize = 8 + 2 + 8 + NONCE_BYTES + 2;
const _: () = assert!(HELLO_FIXED_BYTES == 52);

/// The first message each side of a connection sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// [`PEER_MAGIC`] from a ringcache peer.
    pub magic: [u8; 8],
    /// The highest protocol version the sender speaks.
    pub protocol_version: u16,
    /// The cluster the sender belongs to.
    pub cluster_name: String,
    /// The sender's node id.
    pub node_id: u64,
    /// A fresh random challenge, never reused.
    pub nonce: [u8; NONCE_BYTES],
}

/// One peer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Opens the handshake, from each side.
    Hello(Hello),
    /// Proves knowledge of the cluster secret for this session.
    Proof {
        /// HMAC-SHA256 over the session transcript; see the handshake module.
        mac: [u8; MAC_BYTES],
    },
    /// Liveness and clock-offset probe.
    Ping {
        /// The sender's wall clock, unix milliseconds.
        now_ms: u64,
    },
    /// Answer to [`Message::Ping`].
    Pong {
        /// The replier's wall clock when it replied, unix milliseconds.
        now_ms: u64,
        /// The `now_ms` of the ping being answered.
        echoed_ms: u64,
    },
    /// Asks a replica for its record of `key`.
    Read {
        /// The key.
        key: Bytes,
    },
    /// Answer to [`Message::Read`]: `None` if the replica has no record (not even a tombstone).
    ReadReply {
        /// The replica's record.
        record: Option<Record>,
    },
    /// Asks a replica to merge `record` into its record of `key`.
    Write {
        /// The key.
        key: Bytes,
        /// The record to merge.
        record: Record,
    },
    /// Answer to [`Message::Write`]: the record is merged (and durable per the fsync policy).
    WriteAck,
    /// The request failed; `text` says why, for the log.
    Error {
        /// What happened.
        text: String,
    },
    /// Asks for about `count` of the replica's keys in token order from `from_token`
    /// (a walk of the keyspace: `SCAN`, `KEYS`).
    Scan {
        /// Where to start, a token (0: the beginning).
        from_token: u64,
        /// Keys wanted, at most [`SCAN_KEYS_MAX`].
        count: u32,
        /// Only keys of this type (`SCAN ... TYPE`); `None` for every type.
        kind: Option<DataType>,
    },
    /// Answer to [`Message::Scan`]: live keys, and where the next call starts (0: done).
    ScanReply {
        /// Where to resume.
        next_token: u64,
        /// Live keys seen.
        keys: Vec<Bytes>,
    },
    /// Asks for the replica's count of live keys (`DBSIZE`).
    KeyCount,
    /// Answer to [`Message::KeyCount`].
    KeyCountReply {
        /// Live keys in the replica's store.
        keys: u64,
    },
    /// Removes every record older than `version` (`FLUSHALL`); answered with
    /// [`Message::WriteAck`].
    Flush {
        /// The flush time: records with older versions are dead.
        version: Version,
    },
    /// Gossip push-pull: the sender's whole membership view, encoded by
    /// `membership::Membership::encode_state`; answered with [`Message::MembersReply`].
    Members {
        /// The encoded view.
        state: Bytes,
    },
    /// Answer to [`Message::Members`]: the receiver's view after merging the sender's.
    MembersReply {
        /// The encoded view.
        state: Bytes,
    },
    /// Streaming: walks about `count` of the replica's records in its store order from
    /// `cursor` (0: the start) and returns those whose key token lies in one of `ranges`
    /// (tombstones included), so a joining node can take its ranges.
    StreamRead {
        /// Where the walk resumes (a [`Message::StreamReply`]'s cursor).
        cursor: u64,
        /// Records to walk, at most [`STREAM_KEYS_MAX`].
        count: u32,
        /// Token ranges `first..=last` (inclusive, never wrapping), sorted.
        ranges: Vec<(u64, u64)>,
    },
    /// Answer to [`Message::StreamRead`].
    StreamReply {
        /// Where the next walk resumes; 0 when the walk is complete.
        cursor: u64,
        /// Records in the ranges asked for.
        records: Vec<(Bytes, Record)>,
    },
    /// Anti-entropy: the XOR of the Merkle leaves in each span `first..=last` (leaf indexes).
    Digests {
        /// Leaf spans, at most [`DIGEST_SPANS_MAX`].
        spans: Vec<(u32, u32)>,
    },
    /// Answer to [`Message::Digests`]: one digest per span, in order.
    DigestsReply {
        /// The digests.
        digests: Vec<u64>,
    },
    /// Anti-entropy: the versions of every record whose token is in one of `spans`.
    Versions {
        /// Token spans `first..=last`, sorted and disjoint, at most [`VERSION_SPANS_MAX`].
        spans: Vec<(u64, u64)>,
    },
    /// Answer to [`Message::Versions`]: records with empty values (a tombstone has none).
    VersionsReply {
        /// More keys were there than [`VERSION_KEYS_MAX`]: the list stops short.
        truncated: bool,
        /// Keys and their records' versions.
        headers: Vec<(Bytes, Record)>,
    },
    /// Anti-entropy: the records of these keys; answered with [`Message::StreamReply`].
    Fetch {
        /// The keys, at most [`FETCH_KEYS_MAX`].
        keys: Vec<Bytes>,
    },
    /// Anti-entropy: records to merge, pushed by a replica that holds newer versions;
    /// answered with [`Message::WriteAck`].
    RepairWrite {
        /// Keys and records, at most [`FETCH_KEYS_MAX`].
        records: Vec<(Bytes, Record)>,
    },
    /// Anti-entropy: these ranges were repaired with every replica by a round that started at
    /// `started_ms`; answered with [`Message::WriteAck`].
    RepairDone {
        /// When the round started (unix ms): what it repaired is at least that recent.
        started_ms: u64,
        /// The ranges as the round saw them: first token (exclusive), last token, and a hash
        /// of their sorted replicas (`repair::replicas_hash`).
        ranges: Vec<(u64, u64, u64)>,
    },
    /// Anti-entropy: the XOR of the digests of the records in each token span (parts of a
    /// Merkle leaf, at a range's edge); answered with [`Message::DigestsReply`].
    SpanDigests {
        /// Token spans `first..=last`, sorted and disjoint, at most [`VERSION_SPANS_MAX`].
        spans: Vec<(u64, u64)>,
    },
    /// Pub/sub: a message published on the sender, for the receiver's subscribers; answered
    /// with [`Message::WriteAck`], which the sender does not wait for.
    Publish {
        /// The channel.
        channel: Bytes,
        /// The message.
        payload: Bytes,
    },
}

impl Message {
    /// The frame kind of this message.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Hello(_) => kind::HELLO,
            Message::Proof { .. } => kind::PROOF,
            Message::Ping { .. } => kind::PING,
            Message::Pong { .. } => kind::PONG,
            Message::Read { .. } => kind::READ,
            Message::ReadReply { .. } => kind::READ_REPLY,
            Message::Write { .. } => kind::WRITE,
            Message::WriteAck => kind::WRITE_ACK,
            Message::Error { .. } => kind::ERROR,
            Message::Scan { .. } => kind::SCAN,
            Message::ScanReply { .. } => kind::SCAN_REPLY,
            Message::KeyCount => kind::KEY_COUNT,
            Message::KeyCountReply { .. } => kind::KEY_COUNT_REPLY,
            Message::Flush { .. } => kind::FLUSH,
            Message::Members { .. } => kind::MEMBERS,
            Message::MembersReply { .. } => kind::MEMBERS_REPLY,
            Message::StreamRead { .. } => kind::STREAM_READ,
            Message::StreamReply { .. } => kind::STREAM_REPLY,
            Message::Digests { .. } => kind::DIGESTS,
            Message::DigestsReply { .. } => kind::DIGESTS_REPLY,
            Message::Versions { .. } => kind::VERSIONS,
            Message::VersionsReply { .. } => kind::VERSIONS_REPLY,
            Message::Fetch { .. } => kind::FETCH,
            Message::RepairWrite { .. } => kind::REPAIR_WRITE,
            Message::RepairDone { .. } => kind::REPAIR_DONE,
            Message::SpanDigests { .. } => kind::SPAN_DIGESTS,
            Message::Publish { .. } => kind::PUBLISH,
        }
    }

    /// Appends this message as one frame to `out`, so many frames can be batched per flush.
    /// A field over its bound is refused and nothing is written.
    pub fn encode(&self, request_id: u64, out: &mut BytesMut) -> Result<(), ProtocolError> {
        let payload_bytes = self.payload_bytes()?;
        put_header(self.kind(), request_id, payload_bytes, out)?;
        let start = out.len();
        match self {
            Message::Hello(hello) => {
                out.put_slice(&hello.magic);
                out.put_u16_le(hello.protocol_version);
                out.put_u64_le(hello.node_id);
                out.put_slice(&hello.nonce);
                put_str16(&hello.cluster_name, out);
            }
            Message::Proof { mac } => out.put_slice(mac),
            Message::Ping { now_ms } => out.put_u64_le(*now_ms),
            Message::Pong { now_ms, echoed_ms } => {
                out.put_u64_le(*now_ms);
                out.put_u64_le(*echoed_ms);
            }
            Message::Read { key } => put_bytes32(key, out),
            Message::Publish { channel, payload } => {
                put_bytes32(channel, out);
                put_bytes32(payload, out);
            }
            Message::ReadReply { record } => match record {
                None => out.put_u8(0),
                Some(record) => {
                    out.put_u8(1);
                    put_record(record, out);
                }
            },
            Message::Write { key, record } => {
                put_bytes32(key, out);
                put_record(record, out);
            }
            Message::WriteAck => {}
            Message::Error { text } => put_str16(text, out),
            Message::Scan {
                from_token,
                count,
                kind,
            } => {
                out.put_u64_le(*from_token);
                out.put_u32_le(*count);
                out.put_u8(kind.map_or(SCAN_ANY_TYPE, DataType::number));
            }
            Message::ScanReply { next_token, keys } => {
                out.put_u64_le(*next_token);
                out.put_u32_le(keys.len() as u32);
                for key in keys {
                    put_bytes32(key, out);
                }
            }
            Message::KeyCount => {}
            Message::KeyCountReply { keys } => out.put_u64_le(*keys),
            Message::Flush { version } => put_version(*version, out),
            Message::Members { state } | Message::MembersReply { state } => {
                put_bytes32(state, out);
            }
            Message::StreamRead {
                cursor,
                count,
                ranges,
            } => {
                out.put_u64_le(*cursor);
                out.put_u32_le(*count);
                out.put_u32_le(ranges.len() as u32);
                for (start, end) in ranges {
                    out.put_u64_le(*start);
                    out.put_u64_le(*end);
                }
            }
            Message::StreamReply { cursor, records } => {
                out.put_u64_le(*cursor);
                put_records(records, out);
            }
            Message::Digests { spans } => {
                out.put_u32_le(spans.len() as u32);
                for (first, last) in spans {
                    out.put_u32_le(*first);
                    out.put_u32_le(*last);
                }
            }
            Message::DigestsReply { digests } => {
                out.put_u32_le(digests.len() as u32);
                for digest in digests {
                    out.put_u64_le(*digest);
                }
            }
            Message::Versions { spans } | Message::SpanDigests { spans } => {
                out.put_u32_le(spans.len() as u32);
                for (first, last) in spans {
                    out.put_u64_le(*first);
                    out.put_u64_le(*last);
                }
            }
            Message::VersionsReply { truncated, headers } => {
                out.put_u8(u8::from(*truncated));
                put_records(headers, out);
            }
            Message::Fetch { keys } => {
                out.put_u32_le(keys.len() as u32);
                for key in keys {
                    put_bytes32(key, out);
                }
            }
            Message::RepairWrite { records } => put_records(records, out),
            Message::RepairDone { started_ms, ranges } => {
                out.put_u64_le(*started_ms);
                out.put_u32_le(ranges.len() as u32);
                for (start, end, replicas) in ranges {
                    out.put_u64_le(*start);
                    out.put_u64_le(*end);
                    out.put_u64_le(*replicas);
                }
            }
        }
        debug_assert_eq!(out.len() - start, payload_bytes);
        Ok(())
    }

    /// The payload size of this message, checking every field against its bound.
    fn payload_bytes(&self) -> Result<usize, ProtocolError> {
        Ok(match self {
            Message::Hello(hello) => {
                check(
                    "cluster name",
                    hello.cluster_name.len(),
                    CLUSTER_NAME_BYTES_MAX,
                )?;
                HELLO_FIXED_BYTES + hello.cluster_name.len()
            }
            Message::Proof { .. } => MAC_BYTES,
            Message::Ping { .. } => 8,
            Message::Pong { .. } => 16,
            Message::Read { key } => {
                check("key", key.len(), PEER_KEY_BYTES_MAX)?;
                4 + key.len()
            }
            Message::Publish { channel, payload } => {
                check("channel", channel.len(), PEER_KEY_BYTES_MAX)?;
                check("payload", payload.len(), PEER_VALUE_BYTES_MAX)?;
                8 + channel.len() + payload.len()
            }
            Message::ReadReply { record } => {
                1 + match record {
                    None => 0,
                    Some(record) => record_bytes(record)?,
                }
            }
            Message::Write { key, record } => {
                check("key", key.len(), PEER_KEY_BYTES_MAX)?;
                4 + key.len() + record_bytes(record)?
            }
            Message::WriteAck => 0,
            Message::Error { text } => {
                check("error text", text.len(), ERROR_TEXT_BYTES_MAX)?;
                2 + text.len()
            }
            Message::Scan { count, .. } => {
                check("scan count", *count as usize, SCAN_KEYS_MAX)?;
                13
            }
            Message::ScanReply { keys, .. } => {
                check("scan keys", keys.len(), SCAN_KEYS_MAX)?;
                let mut bytes = 12;
                for key in keys {
                    check("key", key.len(), PEER_KEY_BYTES_MAX)?;
                    bytes += 4 + key.len();
                }
                bytes
            }
            Message::KeyCount => 0,
            Message::KeyCountReply { .. } => 8,
            Message::Flush { .. } => VERSION_BYTES,
            Message::Members { state } | Message::MembersReply { state } => {
                check("membership state", state.len(), MEMBERS_STATE_BYTES_MAX)?;
                4 + state.len()
            }
            Message::StreamRead { count, ranges, .. } => {
                check("stream count", *count as usize, STREAM_KEYS_MAX)?;
                check("stream ranges", ranges.len(), STREAM_RANGES_MAX)?;
                16 + 16 * ranges.len()
            }
            Message::StreamReply { records, .. } => {
                check("stream records", records.len(), STREAM_KEYS_MAX)?;
                8 + records_bytes(records)?
            }
            Message::Digests { spans } => {
                check("digest spans", spans.len(), DIGEST_SPANS_MAX)?;
                4 + 8 * spans.len()
            }
            Message::DigestsReply { digests } => {
                check("digests", digests.len(), DIGEST_SPANS_MAX)?;
                4 + 8 * digests.len()
            }
            Message::Versions { spans } | Message::SpanDigests { spans } => {
                check("version spans", spans.len(), VERSION_SPANS_MAX)?;
                4 + 16 * spans.len()
            }
            Message::VersionsReply { headers, .. } => {
                check("version keys", headers.len(), VERSION_KEYS_MAX)?;
                1 + records_bytes(headers)?
            }
            Message::Fetch { keys } => {
                check("fetch keys", keys.len(), FETCH_KEYS_MAX)?;
                let mut bytes = 4;
                for key in keys {
                    check("key", key.len(), PEER_KEY_BYTES_MAX)?;
                    bytes += 4 + key.len();
                }
                bytes
            }
            Message::RepairWrite { records } => {
                check("repair records", records.len(), FETCH_KEYS_MAX)?;
                records_bytes(records)?
            }
            Message::RepairDone { ranges, .. } => {
                check("repaired ranges", ranges.len(), STREAM_RANGES_MAX)?;
                12 + 24 * ranges.len()
            }
        })
    }

    /// Decodes the message in `frame`. Keys and values are zero-copy slices of the payload.
    pub fn decode(frame: &Frame) -> Result<Message, ProtocolError> {
        let mut reader = Reader {
            kind: frame.kind,
            rest: frame.payload.clone(),
        };
        let message = match frame.kind {
            kind::HELLO => {
                let magic = reader.array::<8>()?;
                let protocol_version = reader.u16()?;
                let node_id = reader.u64()?;
                let nonce = reader.array::<NONCE_BYTES>()?;
                let cluster_name = reader.str16("cluster name", CLUSTER_NAME_BYTES_MAX)?;
                Message::Hello(Hello {
                    magic,
                    protocol_version,
                    cluster_name,
                    node_id,
                    nonce,
                })
            }
            kind::PROOF => Message::Proof {
                mac: reader.array::<MAC_BYTES>()?,
            },
            kind::PING => Message::Ping {
                now_ms: reader.u64()?,
            },
            kind::PONG => Message::Pong {
                now_ms: reader.u64()?,
                echoed_ms: reader.u64()?,
            },
            kind::READ => Message::Read {
                key: reader.bytes32("key", PEER_KEY_BYTES_MAX)?,
            },
            kind::PUBLISH => Message::Publish {
                channel: reader.bytes32("channel", PEER_KEY_BYTES_MAX)?,
                payload: reader.bytes32("payload", PEER_VALUE_BYTES_MAX)?,
            },
            kind::READ_REPLY => {
                let record = match reader.u8()? {
                    0 => None,
                    1 => Some(reader.record()?),
                    other => {
                        return Err(ProtocolError::Malformed {
                            kind: frame.kind,
                            what: "record presence byte",
                            value: u64::from(other),
                        });
                    }
                };
                Message::ReadReply { record }
            }
            kind::WRITE => {
                let key = reader.bytes32("key", PEER_KEY_BYTES_MAX)?;
                let record = reader.record()?;
                Message::Write { key, record }
            }
            kind::WRITE_ACK => Message::WriteAck,
            kind::ERROR => Message::Error {
                text: reader.str16("error text", ERROR_TEXT_BYTES_MAX)?,
            },
            kind::SCAN => {
                let from_token = reader.u64()?;
                let count = reader.u32()?;
                check("scan count", count as usize, SCAN_KEYS_MAX)?;
                let kind = match reader.u8()? {
                    SCAN_ANY_TYPE => None,
                    n => Some(DataType::from_number(n).ok_or(ProtocolError::Malformed {
                        kind: kind::SCAN,
                        what: "scan type",
                        value: u64::from(n),
                    })?),
                };
                Message::Scan {
                    from_token,
                    count,
                    kind,
                }
            }
            kind::SCAN_REPLY => {
                let next_token = reader.u64()?;
                let n = reader.u32()? as usize;
                check("scan keys", n, SCAN_KEYS_MAX)?;
                // Each key takes at least its 4-byte length: no allocation past the payload.
                let mut keys = Vec::with_capacity(n.min(reader.rest.len() / 4));
                for _ in 0..n {
                    keys.push(reader.bytes32("key", PEER_KEY_BYTES_MAX)?);
                }
                Message::ScanReply { next_token, keys }
            }
            kind::KEY_COUNT => Message::KeyCount,
            kind::KEY_COUNT_REPLY => Message::KeyCountReply {
                keys: reader.u64()?,
            },
            kind::FLUSH => Message::Flush {
                version: reader.version()?,
            },
            kind::MEMBERS => Message::Members {
                state: reader.bytes32("membership state", MEMBERS_STATE_BYTES_MAX)?,
            },
            kind::MEMBERS_REPLY => Message::MembersReply {
                state: reader.bytes32("membership state", MEMBERS_STATE_BYTES_MAX)?,
            },
            kind::STREAM_READ => {
                let cursor = reader.u64()?;
                let count = reader.u32()?;
                check("stream count", count as usize, STREAM_KEYS_MAX)?;
                let n = reader.u32()? as usize;
                check("stream ranges", n, STREAM_RANGES_MAX)?;
                reader.need(16 * n)?;
                let ranges = (0..n)
                    .map(|_| (reader.rest.get_u64_le(), reader.rest.get_u64_le()))
                    .collect();
                Message::StreamRead {
                    cursor,
                    count,
                    ranges,
                }
            }
            kind::STREAM_REPLY => {
                let cursor = reader.u64()?;
                let records = reader.records("stream records", STREAM_KEYS_MAX)?;
                Message::StreamReply { cursor, records }
            }
            kind::DIGESTS => {
                let n = reader.u32()? as usize;
                check("digest spans", n, DIGEST_SPANS_MAX)?;
                reader.need(8 * n)?;
                let spans = (0..n)
                    .map(|_| (reader.rest.get_u32_le(), reader.rest.get_u32_le()))
                    .collect();
                Message::Digests { spans }
            }
            kind::DIGESTS_REPLY => {
                let n = reader.u32()? as usize;
                check("digests", n, DIGEST_SPANS_MAX)?;
                reader.need(8 * n)?;
                let digests = (0..n).map(|_| reader.rest.get_u64_le()).collect();
                Message::DigestsReply { digests }
            }
            kind::VERSIONS => Message::Versions {
                spans: reader.token_spans()?,
            },
            kind::SPAN_DIGESTS => Message::SpanDigests {
                spans: reader.token_spans()?,
            },
            kind::VERSIONS_REPLY => {
                let truncated = match reader.u8()? {
                    0 => false,
                    1 => true,
                    other => {
                        return Err(ProtocolError::Malformed {
                            kind: frame.kind,
                            what: "truncated flag",
                            value: u64::from(other),
                        });
                    }
                };
                let headers = reader.records("version keys", VERSION_KEYS_MAX)?;
                Message::VersionsReply { truncated, headers }
            }
            kind::FETCH => {
                let n = reader.u32()? as usize;
                check("fetch keys", n, FETCH_KEYS_MAX)?;
                let mut keys = Vec::with_capacity(n.min(reader.rest.len() / 4));
                for _ in 0..n {
                    keys.push(reader.bytes32("key", PEER_KEY_BYTES_MAX)?);
                }
                Message::Fetch { keys }
            }
            kind::REPAIR_WRITE => Message::RepairWrite {
                records: reader.records("repair records", FETCH_KEYS_MAX)?,
            },
            kind::REPAIR_DONE => {
                let started_ms = reader.u64()?;
                let n = reader.u32()? as usize;
                check("repaired ranges", n, STREAM_RANGES_MAX)?;
                reader.need(24 * n)?;
                let ranges = (0..n)
                    .map(|_| {
                        let start = reader.rest.get_u64_le();
                        let end = reader.rest.get_u64_le();
                        (start, end, reader.rest.get_u64_le())
                    })
                    .collect();
                Message::RepairDone { started_ms, ranges }
            }
            other => return Err(ProtocolError::UnknownKind { kind: other }),
        };
        if !reader.rest.is_empty() {
            return Err(ProtocolError::TrailingBytes {
                kind: frame.kind,
                bytes: reader.rest.len(),
            });
        }
        Ok(message)
    }
}

fn check(field: &'static str, bytes: usize, max: usize) -> Result<(), ProtocolError> {
    if bytes > max {
        return Err(ProtocolError::FieldTooLong { field, bytes, max });
    }
    Ok(())
}

fn record_bytes(record: &Record) -> Result<usize, ProtocolError> {
    let mut bytes = RECORD_FIXED_BYTES;
    if record.expiry_ms.is_some() {
        bytes += 8;
    }
    if let Some(value) = &record.value {
        check("value", value.encoded_len(), PEER_VALUE_BYTES_MAX)?;
        bytes += 4 + value.encoded_len();
    }
    Ok(bytes)
}

/// Bytes of a list of keys and records: a count, then each.
fn records_bytes(records: &[(Bytes, Record)]) -> Result<usize, ProtocolError> {
    let mut bytes = 4;
    for (key, record) in records {
        check("key", key.len(), PEER_KEY_BYTES_MAX)?;
        bytes += 4 + key.len() + record_bytes(record)?;
    }
    Ok(bytes)
}

/// Callers have checked the count and every key against their bounds.
fn put_records(records: &[(Bytes, Record)], out: &mut BytesMut) {
    out.put_u32_le(records.len() as u32);
    for (key, record) in records {
        put_bytes32(key, out);
        put_record(record, out);
    }
}

fn put_version(version: Version, out: &mut BytesMut) {
    out.put_u64_le(version.hlc);
    out.put_u32_le(version.node);
}

fn put_record(record: &Record, out: &mut BytesMut) {
    let mut flags = 0;
    if record.value.is_some() {
        flags |= RECORD_HAS_VALUE;
    }
    if record.expiry_ms.is_some() {
        flags |= RECORD_HAS_EXPIRY;
    }
    flags |= record.kind.number() << RECORD_KIND_SHIFT;
    out.put_u8(flags);
    put_version(record.value_version, out);
    put_version(record.expiry_version, out);
    if let Some(expiry_ms) = record.expiry_ms {
        out.put_u64_le(expiry_ms);
    }
    if let Some(value) = &record.value {
        put_bytes32(&value.to_bytes(), out);
    }
}

/// Callers have checked the length against a bound below `u32::MAX`.
fn put_bytes32(bytes: &[u8], out: &mut BytesMut) {
    out.put_u32_le(bytes.len() as u32);
    out.put_slice(bytes);
}

/// Callers have checked the length against a bound below `u16::MAX`.
fn put_str16(text: &str, out: &mut BytesMut) {
    out.put_u16_le(text.len() as u16);
    out.put_slice(text.as_bytes());
}

/// Reads fields off a payload, every read checked against what is left.
struct Reader {
    kind: u8,
    rest: Bytes,
}

impl Reader {
    fn need(&self, bytes: usize) -> Result<(), ProtocolError> {
        if self.rest.len() < bytes {
            return Err(ProtocolError::Truncated {
                kind: self.kind,
                needed: bytes,
                available: self.rest.len(),
            });
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        self.need(1)?;
        Ok(self.rest.get_u8())
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        self.need(2)?;
        Ok(self.rest.get_u16_le())
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.need(4)?;
        Ok(self.rest.get_u32_le())
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        self.need(8)?;
        Ok(self.rest.get_u64_le())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        self.need(N)?;
        let mut array = [0u8; N];
        self.rest.copy_to_slice(&mut array);
        Ok(array)
    }

    fn take(
        &mut self,
        field: &'static str,
        bytes: usize,
        max: usize,
    ) -> Result<Bytes, ProtocolError> {
        check(field, bytes, max)?;
        self.need(bytes)?;
        Ok(self.rest.split_to(bytes))
    }

    fn bytes32(&mut self, field: &'static str, max: usize) -> Result<Bytes, ProtocolError> {
        let bytes = self.u32()? as usize;
        self.take(field, bytes, max)
    }

    fn str16(&mut self, field: &'static str, max: usize) -> Result<String, ProtocolError> {
        let bytes = usize::from(self.u16()?);
        let raw = self.take(field, bytes, max)?;
        String::from_utf8(raw.to_vec()).map_err(|_| ProtocolError::NotUtf8 { field })
    }

    fn version(&mut self) -> Result<Version, ProtocolError> {
        Ok(Version {
            hlc: self.u64()?,
            node: self.u32()?,
        })
    }

    /// A count (at most [`VERSION_SPANS_MAX`]), then that many token spans.
    fn token_spans(&mut self) -> Result<Vec<(u64, u64)>, ProtocolError> {
        let n = self.u32()? as usize;
        check("version spans", n, VERSION_SPANS_MAX)?;
        self.need(16 * n)?;
        Ok((0..n)
            .map(|_| (self.rest.get_u64_le(), self.rest.get_u64_le()))
            .collect())
    }

    /// A count (at most `max`), then that many keys and records.
    fn records(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<Vec<(Bytes, Record)>, ProtocolError> {
        let n = self.u32()? as usize;
        check(field, n, max)?;
        // Each record takes at least a key length and a record's fixed bytes: no allocation
        // past what the payload can hold.
        let mut records = Vec::with_capacity(n.min(self.rest.len() / (4 + RECORD_FIXED_BYTES)));
        for _ in 0..n {
            let key = self.bytes32("key", PEER_KEY_BYTES_MAX)?;
            records.push((key, self.record()?));
        }
        Ok(records)
    }

    fn record(&mut self) -> Result<Record, ProtocolError> {
        let flags = self.u8()?;
        let message_kind = self.kind;
        let malformed = move |what| ProtocolError::Malformed {
            kind: message_kind,
            what,
            value: u64::from(flags),
        };
        if flags & !(RECORD_HAS_VALUE | RECORD_HAS_EXPIRY | RECORD_KIND_MASK) != 0 {
            return Err(malformed("record flags"));
        }
        let data_type = DataType::from_number((flags & RECORD_KIND_MASK) >> RECORD_KIND_SHIFT)
            .ok_or_else(|| malformed("record type"))?;
        let value_version = self.version()?;
        let expiry_version = self.version()?;
        let expiry_ms = if flags & RECORD_HAS_EXPIRY != 0 {
            Some(self.u64()?)
        } else {
            None
        };
        let value = if flags & RECORD_HAS_VALUE != 0 {
            Some(self.bytes32("value", PEER_VALUE_BYTES_MAX)?)
        } else {
            None
        };
        // A collection must decode: a peer never makes a replica store garbage it would
        // then fail to read. (A repair's version list carries a summary in its place.)
        let value = match value {
            Some(bytes) if data_type.is_collection() && message_kind == kind::VERSIONS_REPLY => {
                let summary = Summary::decode(&bytes).map_err(|_| malformed("summary"))?;
                Some(Value::Summary(Box::new(summary)))
            }
            Some(bytes) => Some(
                Value::decode(data_type, bytes).map_err(|_| malformed("collection encoding"))?,
            ),
            None => None,
        };
        Ok(Record {
            kind: data_type,
            value,
            value_version,
            expiry_ms,
            expiry_version,
        })
    }
}
