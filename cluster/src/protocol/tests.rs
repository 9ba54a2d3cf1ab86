//! Round-trip, never-panic and handshake tests for the peer protocol.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use ringcache_storage::{Record, Version};

use super::frame::FRAME_LENGTH_MIN;
use super::message::{DIGEST_SPANS_MAX, FETCH_KEYS_MAX};
use super::*;

fn decode_all(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> Vec<(u64, Message)> {
    let mut out = Vec::new();
    while let Some(frame) = decoder.decode(buf).unwrap() {
        out.push((frame.request_id, Message::decode(&frame).unwrap()));
    }
    out
}

fn version() -> impl Strategy<Value = Version> {
    (any::<u64>(), any::<u32>()).prop_map(|(hlc, node)| Version { hlc, node })
}

fn record() -> impl Strategy<Value = Record> {
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        version(),
        proptest::option::of(any::<u64>()),
        version(),
    )
        .prop_map(|(value, value_version, expiry_ms, expiry_version)| Record {
            kind: Default::default(),
            value: value.map(|v| ringcache_storage::Value::Bytes(Bytes::from(v))),
            value_version,
            expiry_ms,
            expiry_version,
        })
}

fn message() -> impl Strategy<Value = Message> {
    let key = proptest::collection::vec(any::<u8>(), 0..32).prop_map(Bytes::from);
    prop_oneof![
        (
            any::<[u8; 8]>(),
            any::<u16>(),
            "[a-z0-9é-]{0,40}",
            any::<u64>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(magic, protocol_version, cluster_name, node_id, nonce)| {
                Message::Hello(Hello {
                    magic,
                    protocol_version,
                    cluster_name,
                    node_id,
                    nonce,
                })
            }),
        any::<[u8; 32]>().prop_map(|mac| Message::Proof { mac }),
        any::<u64>().prop_map(|now_ms| Message::Ping { now_ms }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(now_ms, echoed_ms)| Message::Pong { now_ms, echoed_ms }),
        key.clone().prop_map(|key| Message::Read { key }),
        proptest::option::of(record()).prop_map(|record| Message::ReadReply { record }),
        (key.clone(), record()).prop_map(|(key, record)| Message::Write { key, record }),
        Just(Message::WriteAck),
        ".{0,100}".prop_map(|text| Message::Error { text }),
        (any::<u64>(), 0..1000u32).prop_map(|(from_token, count)| Message::Scan {
            from_token,
            count,
            kind: (count % 3 == 0).then_some(ringcache_storage::DataType::Hash),
        }),
        (any::<u64>(), proptest::collection::vec(key.clone(), 0..8))
            .prop_map(|(next_token, keys)| Message::ScanReply { next_token, keys }),
        Just(Message::KeyCount),
        any::<u64>().prop_map(|keys| Message::KeyCountReply { keys }),
        version().prop_map(|version| Message::Flush { version }),
        key.clone().prop_map(|state| Message::Members { state }),
        key.clone()
            .prop_map(|state| Message::MembersReply { state }),
        (
            any::<u64>(),
            0..1000u32,
            proptest::collection::vec(any::<(u64, u64)>(), 0..8)
        )
            .prop_map(|(cursor, count, ranges)| Message::StreamRead {
                cursor,
                count,
                ranges
            }),
        (
            any::<u64>(),
            proptest::collection::vec((key.clone(), record()), 0..8)
        )
            .prop_map(|(cursor, records)| Message::StreamReply { cursor, records }),
        proptest::collection::vec(any::<(u32, u32)>(), 0..8)
            .prop_map(|spans| Message::Digests { spans }),
        proptest::collection::vec(any::<u64>(), 0..8)
            .prop_map(|digests| Message::DigestsReply { digests }),
        proptest::collection::vec(any::<(u64, u64)>(), 0..8)
            .prop_map(|spans| Message::Versions { spans }),
        proptest::collection::vec(any::<(u64, u64)>(), 0..8)
            .prop_map(|spans| Message::SpanDigests { spans }),
        (key.clone(), key.clone())
            .prop_map(|(channel, payload)| Message::Publish { channel, payload }),
        (
            any::<bool>(),
            proptest::collection::vec((key.clone(), record()), 0..8)
        )
            .prop_map(|(truncated, headers)| Message::VersionsReply { truncated, headers }),
        proptest::collection::vec(key.clone(), 0..8).prop_map(|keys| Message::Fetch { keys }),
        proptest::collection::vec((key, record()), 0..8)
            .prop_map(|records| Message::RepairWrite { records }),
        (
            any::<u64>(),
            proptest::collection::vec(any::<(u64, u64, u64)>(), 0..8)
        )
            .prop_map(|(started_ms, ranges)| Message::RepairDone { started_ms, ranges }),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip_across_arbitrary_read_boundaries(
        messages in proptest::collection::vec((any::<u64>(), message()), 1..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut wire = BytesMut::new();
        for (request_id, message) in &messages {
            message.encode(*request_id, &mut wire).unwrap();
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();
        let mut decoder = FrameDecoder::new(PEER_FRAME_BYTES_MAX);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut from = 0;
        for cut in cuts {
            buf.extend_from_slice(&wire[from..cut]);
            from = cut;
            decoded.extend(decode_all(&mut decoder, &mut buf));
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, messages);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_pass_the_limit(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut decoder = FrameDecoder::for_handshake();
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            prop_assert!(frame.payload.len() + FRAME_LENGTH_MIN <= HANDSHAKE_FRAME_BYTES_MAX);
            let _ = Message::decode(&frame);
        }
    }

    #[test]
    fn arbitrary_payloads_never_panic(kind in 0u8..32, payload in proptest::collection::vec(any::<u8>(), 0..128)) {
        let frame = Frame { kind, request_id: 0, payload: Bytes::from(payload) };
        let _ = Message::decode(&frame);
    }

    #[test]
    fn every_truncation_of_a_message_is_an_error(message in message()) {
        let mut wire = BytesMut::new();
        message.encode(0, &mut wire).unwrap();
        let frame = FrameDecoder::new(PEER_FRAME_BYTES_MAX).decode(&mut wire).unwrap().unwrap();
        for len in 0..frame.payload.len() {
            let cut = Frame { payload: frame.payload.slice(..len), ..frame.clone() };
            prop_assert!(Message::decode(&cut).is_err());
        }
    }
}

#[test]
fn a_decoded_value_is_a_slice_of_the_frame_not_a_copy() {
    let record = Record::new(
        Bytes::from(vec![7u8; 1000]),
        Some(5),
        Version { hlc: 9, node: 1 },
    );
    let mut wire = BytesMut::new();
    Message::Write {
        key: Bytes::from_static(b"k"),
        record,
    }
    .encode(3, &mut wire)
    .unwrap();
    let frame = FrameDecoder::new(PEER_FRAME_BYTES_MAX)
        .decode(&mut wire)
        .unwrap()
        .unwrap();
    let Message::Write { record, .. } = Message::decode(&frame).unwrap() else {
        panic!("not a write");
    };
    let value = record.bytes().unwrap().clone();
    let payload = frame.payload.as_ptr_range();
    assert!(payload.contains(&value.as_ptr()));
}

#[test]
fn an_announced_key_over_its_bound_is_refused_before_reading_it() {
    let mut payload = BytesMut::new();
    payload.put_u32_le((PEER_KEY_BYTES_MAX + 1) as u32);
    let frame = Frame {
        kind: kind::READ,
        request_id: 0,
        payload: payload.freeze(),
    };
    assert_eq!(
        Message::decode(&frame),
        Err(ProtocolError::FieldTooLong {
            field: "key",
            bytes: PEER_KEY_BYTES_MAX + 1,
            max: PEER_KEY_BYTES_MAX
        })
    );
}

#[test]
fn bad_record_flags_presence_bytes_and_trailing_bytes_are_refused() {
    let frame = |kind, payload: &[u8]| Frame {
        kind,
        request_id: 0,
        payload: Bytes::copy_from_slice(payload),
    };
    assert!(matches!(
        Message::decode(&frame(kind::READ_REPLY, &[2])),
        Err(ProtocolError::Malformed { .. })
    ));
    let malformed = |flags: u8, value: &[u8]| {
        let mut reply = vec![1u8, flags];
        reply.extend_from_slice(&[0; 24]);
        reply.extend_from_slice(&(value.len() as u32).to_le_bytes());
        reply.extend_from_slice(value);
        match Message::decode(&frame(kind::READ_REPLY, &reply)) {
            Err(ProtocolError::Malformed { what, .. }) => what,
            other => panic!("flags {flags:#b}: {other:?}"),
        }
    };
    assert_eq!(malformed(0b1000_0001, b""), "record flags");
    // Type 7: no such type.
    assert_eq!(malformed(0b1_1101, b""), "record type");
    // A hash (type 1) whose value is not an encoded collection.
    assert_eq!(malformed(0b0_0101, b"garbage"), "collection encoding");
    assert_eq!(
        Message::decode(&frame(kind::WRITE_ACK, &[0])),
        Err(ProtocolError::TrailingBytes {
            kind: kind::WRITE_ACK,
            bytes: 1
        })
    );
    assert_eq!(
        Message::decode(&frame(kind::ERROR, &[1, 0, 0xff])),
        Err(ProtocolError::NotUtf8 {
            field: "error text"
        })
    );
}

#[test]
fn an_oversized_field_is_refused_on_encode_and_nothing_is_written() {
    let mut out = BytesMut::new();
    let error = Message::Error {
        text: "x".repeat(2000),
    }
    .encode(1, &mut out)
    .unwrap_err();
    assert!(matches!(
        error,
        ProtocolError::FieldTooLong {
            field: "error text",
            ..
        }
    ));
    assert!(out.is_empty());
}

// ---- handshake ----

const SECRET: &[u8] = b"correct horse battery staple";

fn peer(node_id: u64, cluster_name: &str, secret: &[u8]) -> LocalPeer {
    LocalPeer {
        cluster_name: cluster_name.to_owned(),
        node_id,
        secret: secret.to_vec(),
    }
}

/// Sends every `Send` effect through the real codec, as the wire would.
fn wire(message: &Message) -> Message {
    let mut buf = BytesMut::new();
    message.encode(0, &mut buf).unwrap();
    let frame = FrameDecoder::for_handshake()
        .decode(&mut buf)
        .unwrap()
        .unwrap();
    Message::decode(&frame).unwrap()
}

fn sent(effects: &[HandshakeEffect]) -> Vec<Message> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            HandshakeEffect::Send(message) => Some(wire(message)),
            _ => None,
        })
        .collect()
}

fn refusal(effects: &[HandshakeEffect]) -> Option<Refusal> {
    effects.iter().find_map(|effect| match effect {
        HandshakeEffect::Refused { reason } => Some(reason.clone()),
        _ => None,
    })
}

fn feed(handshake: &mut Handshake, messages: Vec<Message>) -> Vec<HandshakeEffect> {
    let mut effects = Vec::new();
    for message in messages {
        effects.extend(handshake.on_message(message));
    }
    effects
}

/// Runs a full handshake; returns both sides' last effects.
fn run(initiator: LocalPeer, acceptor: LocalPeer) -> (Vec<HandshakeEffect>, Vec<HandshakeEffect>) {
    let (mut i, hello) = Handshake::initiate(initiator, [1; 32]);
    let mut a = Handshake::accept(acceptor, [2; 32]);
    let a_first = a.on_message(wire(&hello));
    if refusal(&a_first).is_some() {
        return (Vec::new(), a_first);
    }
    let i_effects = feed(&mut i, sent(&a_first));
    if refusal(&i_effects).is_some() {
        return (i_effects, a_first);
    }
    let a_effects = feed(&mut a, sent(&i_effects));
    (i_effects, a_effects)
}

#[test]
fn both_sides_are_established_with_the_same_secret() {
    let (i, a) = run(peer(10, "prod", SECRET), peer(20, "prod", SECRET));
    assert!(i.contains(&HandshakeEffect::Established {
        peer_node_id: 20,
        protocol_version: PROTOCOL_VERSION
    }));
    assert!(a.contains(&HandshakeEffect::Established {
        peer_node_id: 10,
        protocol_version: PROTOCOL_VERSION
    }));
}

#[test]
fn a_wrong_secret_is_refused_by_the_side_that_checks_first() {
    let (i, _) = run(peer(10, "prod", b"wrong"), peer(20, "prod", SECRET));
    assert_eq!(refusal(&i), Some(Refusal::BadProof { peer_node_id: 20 }));
    assert!(
        i.iter()
            .all(|e| !matches!(e, HandshakeEffect::Send(Message::Proof { .. })))
    );
    let (_, a) = run(peer(10, "prod", SECRET), peer(20, "prod", b"wrong"));
    assert!(refusal(&a).is_none());
}

#[test]
fn a_wrong_secret_on_the_acceptor_is_refused_by_the_initiator() {
    let (i, _) = run(peer(10, "prod", SECRET), peer(20, "prod", b"wrong"));
    assert_eq!(refusal(&i), Some(Refusal::BadProof { peer_node_id: 20 }));
}

#[test]
fn an_initiator_proof_under_a_wrong_secret_is_refused_by_the_acceptor() {
    let (mut i, hello) = Handshake::initiate(peer(10, "prod", SECRET), [1; 32]);
    let mut a = Handshake::accept(peer(20, "prod", SECRET), [2; 32]);
    let a_first = a.on_message(hello);
    feed(&mut i, sent(&a_first));
    // A forged initiator proof, computed without the secret.
    let effects = a.on_message(Message::Proof { mac: [0; 32] });
    assert_eq!(
        refusal(&effects),
        Some(Refusal::BadProof { peer_node_id: 10 })
    );
    assert!(matches!(
        effects[0],
        HandshakeEffect::Send(Message::Error { .. })
    ));
}

#[test]
fn a_wrong_cluster_name_is_refused() {
    let (_, a) = run(peer(10, "staging", SECRET), peer(20, "prod", SECRET));
    assert_eq!(
        refusal(&a),
        Some(Refusal::WrongClusterName {
            ours: "prod".into(),
            theirs: "staging".into()
        })
    );
}

#[test]
fn a_wrong_magic_and_an_unsupported_version_are_refused() {
    let hello = |magic, protocol_version| {
        Message::Hello(Hello {
            magic,
            protocol_version,
            cluster_name: "prod".into(),
            node_id: 10,
            nonce: [1; 32],
        })
    };
    let mut a = Handshake::accept(peer(20, "prod", SECRET), [2; 32]);
    assert_eq!(
        refusal(&a.on_message(hello(*b"REDISPEE", PROTOCOL_VERSION))),
        Some(Refusal::WrongMagic {
            found: *b"REDISPEE"
        })
    );
    let mut a = Handshake::accept(peer(20, "prod", SECRET), [2; 32]);
    assert_eq!(
        refusal(&a.on_message(hello(PEER_MAGIC, 0))),
        Some(Refusal::UnsupportedProtocolVersion {
            peer: 0,
            min: PROTOCOL_VERSION_MIN,
            max: PROTOCOL_VERSION
        })
    );
    // A newer peer is met at our highest version.
    let mut a = Handshake::accept(peer(20, "prod", SECRET), [2; 32]);
    assert!(refusal(&a.on_message(hello(PEER_MAGIC, PROTOCOL_VERSION + 1))).is_none());
}

#[test]
fn a_proof_replayed_from_another_session_is_refused() {
    // Session 1, recorded by an eavesdropper.
    let (mut i, hello) = Handshake::initiate(peer(10, "prod", SECRET), [1; 32]);
    let mut a = Handshake::accept(peer(20, "prod", SECRET), [2; 32]);
    let a_first = a.on_message(hello.clone());
    let i_effects = feed(&mut i, sent(&a_first));
    let recorded_proof = sent(&i_effects).pop().unwrap();
    // Session 2: the attacker replays the hello and the proof; the acceptor's nonce is new.
    let mut a2 = Handshake::accept(peer(20, "prod", SECRET), [3; 32]);
    a2.on_message(hello);
    let effects = a2.on_message(recorded_proof);
    assert_eq!(
        refusal(&effects),
        Some(Refusal::BadProof { peer_node_id: 10 })
    );
}

#[test]
fn a_proof_reflected_back_to_its_author_is_refused() {
    // The attacker claims id 10, gets the acceptor's proof, and sends it straight back.
    let mut a = Handshake::accept(peer(20, "prod", SECRET), [2; 32]);
    let attacker_hello = Message::Hello(Hello {
        magic: PEER_MAGIC,
        protocol_version: PROTOCOL_VERSION,
        cluster_name: "prod".into(),
        node_id: 10,
        nonce: [2; 32],
    });
    let a_first = sent(&a.on_message(attacker_hello));
    let acceptor_proof = a_first
        .into_iter()
        .find(|m| matches!(m, Message::Proof { .. }))
        .unwrap();
    let effects = a.on_message(acceptor_proof);
    assert_eq!(
        refusal(&effects),
        Some(Refusal::BadProof { peer_node_id: 10 })
    );
}

#[test]
fn a_connection_to_itself_is_refused() {
    let (_, a) = run(peer(10, "prod", SECRET), peer(10, "prod", SECRET));
    assert_eq!(refusal(&a), Some(Refusal::SameNodeId { node_id: 10 }));
}

#[test]
fn messages_out_of_order_are_refused() {
    let mut a = Handshake::accept(peer(20, "prod", SECRET), [2; 32]);
    assert_eq!(
        refusal(&a.on_message(Message::Proof { mac: [0; 32] })),
        Some(Refusal::UnexpectedMessage {
            expected: "hello",
            got: kind::PROOF
        })
    );
    let (mut i, _) = Handshake::initiate(peer(10, "prod", SECRET), [1; 32]);
    assert_eq!(
        refusal(&i.on_message(Message::Write {
            key: Bytes::new(),
            record: Record::default()
        })),
        Some(Refusal::UnexpectedMessage {
            expected: "hello",
            got: kind::WRITE
        })
    );
    let (i_effects, a_effects) = run(peer(10, "prod", SECRET), peer(20, "prod", SECRET));
    assert!(refusal(&i_effects).is_none() && refusal(&a_effects).is_none());
    let mut a = Handshake::accept(peer(20, "prod", SECRET), [2; 32]);
    let (_, hello) = Handshake::initiate(peer(10, "prod", SECRET), [1; 32]);
    a.on_message(hello.clone());
    assert_eq!(
        refusal(&a.on_message(hello)),
        Some(Refusal::UnexpectedMessage {
            expected: "proof",
            got: kind::HELLO
        })
    );
    assert!(a.is_finished());
}

#[test]
fn a_peer_refusal_is_reported_with_its_text() {
    let (mut i, _) = Handshake::initiate(peer(10, "prod", SECRET), [1; 32]);
    assert_eq!(
        refusal(&i.on_message(Message::Error {
            text: "go away".into()
        })),
        Some(Refusal::RefusedByPeer {
            text: "go away".into()
        })
    );
}

#[test]
fn a_scan_reply_claiming_more_keys_than_the_bound_is_refused_before_allocating() {
    let mut payload = Vec::new();
    payload.extend_from_slice(&0u64.to_le_bytes());
    payload.extend_from_slice(&u32::MAX.to_le_bytes());
    let frame = Frame {
        kind: kind::SCAN_REPLY,
        request_id: 0,
        payload: Bytes::from(payload),
    };
    assert!(matches!(
        Message::decode(&frame),
        Err(ProtocolError::FieldTooLong { .. })
    ));
}

#[test]
fn a_digest_request_over_its_bound_is_refused_before_allocating() {
    let mut payload = Vec::new();
    payload.extend_from_slice(&((DIGEST_SPANS_MAX + 1) as u32).to_le_bytes());
    let frame = Frame {
        kind: kind::DIGESTS,
        request_id: 0,
        payload: Bytes::from(payload),
    };
    assert!(matches!(
        Message::decode(&frame),
        Err(ProtocolError::FieldTooLong { .. })
    ));
    let too_many = Message::Fetch {
        keys: vec![Bytes::new(); FETCH_KEYS_MAX + 1],
    };
    assert!(too_many.encode(0, &mut BytesMut::new()).is_err());
}
