//! The peer handshake: a sans-IO state machine for both ends of a connection.
//!
//! ```text
//! initiator (dialer)                         acceptor
//!   Hello{magic, version, name, id, Ni}  ->
//!                                        <-  Hello{magic, version, name, id, Na}
//!                                        <-  Proof{HMAC(secret, transcript(acceptor))}
//!   Proof{HMAC(secret, transcript(initiator))} ->
//!   Established                              Established
//! ```
//!
//! `transcript(role) = "ringcache-peer-v1" || role:u8 || version_i:u16 || version_a:u16 ||
//! Ni || Na || id_i:u64 || id_a:u64 || name_len:u16 || name` — the prover's own role (0
//! initiator, 1 acceptor), then both hellos in initiator-then-acceptor order. Fresh nonces from
//! both sides make a proof from another session useless (replay); the role byte makes a proof
//! sent back to its author useless (reflection); the versions in the transcript stop a
//! downgrade. Proofs are checked with `verify_slice`, in constant time.
//!
//! Randomness is the caller's: it passes a fresh 32-byte nonce in. On refusal the machine
//! emits an [`Message::Error`] for the peer's log, then [`HandshakeEffect::Refused`]; the caller
//! flushes and closes. Not protected: confidentiality and integrity after the handshake (no
//! encryption or per-frame MAC; TLS later), and a relay that forwards a whole session.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::message::{Hello, MAC_BYTES, Message, NONCE_BYTES, PEER_MAGIC};

/// The highest peer protocol version this build speaks; sent in [`Hello`].
pub const PROTOCOL_VERSION: u16 = 1;
/// The lowest peer protocol version this build still speaks.
pub const PROTOCOL_VERSION_MIN: u16 = 1;
/// Domain separation for the proof MAC.
const PROOF_CONTEXT: &[u8] = b"ringcache-peer-v1";

type HmacSha256 = Hmac<Sha256>;

/// Which end of the connection this machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Dialed the connection; speaks first.
    Initiator,
    /// Accepted the connection.
    Acceptor,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Initiator => 0,
            Role::Acceptor => 1,
        }
    }
}

/// This node's side of the handshake.
#[derive(Clone)]
pub struct LocalPeer {
    /// The cluster this node belongs to; a peer with another name is refused.
    pub cluster_name: String,
    /// This node's id.
    pub node_id: u64,
    /// The shared cluster secret, the HMAC key. Config validation keeps it non-empty.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for LocalPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPeer")
            .field("cluster_name", &self.cluster_name)
            .field("node_id", &self.node_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a handshake was refused; its `Display` is the text the caller logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The peer's hello does not start with [`PEER_MAGIC`]: not a ringcache peer.
    #[error("peer hello has magic {found:02x?}, not \"RINGPEER\": not a ringcache peer")]
    WrongMagic {
        /// The magic received.
        found: [u8; 8],
    },
    /// No protocol version both sides speak.
    #[error("peer speaks protocol version {peer} at most; this node speaks {min} to {max}")]
    UnsupportedProtocolVersion {
        /// The peer's highest version.
        peer: u16,
        /// Our lowest.
        min: u16,
        /// Our highest.
        max: u16,
    },
    /// The peer belongs to another cluster.
    #[error("peer belongs to cluster {theirs:?}, this node to {ours:?}")]
    WrongClusterName {
        /// Our cluster name.
        ours: String,
        /// The peer's.
        theirs: String,
    },
    /// The peer claims this node's own id (a connection to itself, or a duplicate id).
    #[error("peer claims this node's own id {node_id:016x}")]
    SameNodeId {
        /// The id.
        node_id: u64,
    },
    /// The peer's proof does not match: wrong cluster secret, or a replayed or reflected proof.
    #[error("peer {peer_node_id:016x} sent a bad proof: wrong cluster secret or a replayed proof")]
    BadProof {
        /// The id the peer claimed.
        peer_node_id: u64,
    },
    /// A message the handshake did not expect at this step.
    #[error("unexpected peer message kind {got} during the handshake, expected {expected}")]
    UnexpectedMessage {
        /// What the handshake waited for.
        expected: &'static str,
        /// The kind received.
        got: u8,
    },
    /// The peer refused the handshake and said why.
    #[error("peer refused the handshake: {text}")]
    RefusedByPeer {
        /// The peer's reason.
        text: String,
    },
}

/// What the caller must do after feeding the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeEffect {
    /// Send this message to the peer (request id 0).
    Send(Message),
    /// The peer is authenticated; switch the decoder to the established frame limit.
    Established {
        /// The peer's node id.
        peer_node_id: u64,
        /// The protocol version both sides now speak.
        protocol_version: u16,
    },
    /// The handshake failed: log the reason, flush what was sent, close the connection.
    Refused {
        /// Why.
        reason: Refusal,
    },
}

#[derive(Debug)]
enum State {
    AwaitHello,
    AwaitProof { peer: Hello },
    Established,
    Refused,
}

/// One end of one handshake.
#[derive(Debug)]
pub struct Handshake {
    role: Role,
    local: LocalPeer,
    hello: Hello,
    state: State,
}

impl Handshake {
    /// The dialing end; returns the machine and the hello to send first. `nonce` must be fresh
    /// random bytes, never reused.
    pub fn initiate(local: LocalPeer, nonce: [u8; NONCE_BYTES]) -> (Handshake, Message) {
        let handshake = Handshake::new(Role::Initiator, local, nonce);
        let hello = Message::Hello(handshake.hello.clone());
        (handshake, hello)
    }

    /// The accepting end; it waits for the initiator's hello. `nonce` must be fresh random
    /// bytes, never reused.
    pub fn accept(local: LocalPeer, nonce: [u8; NONCE_BYTES]) -> Handshake {
        Handshake::new(Role::Acceptor, local, nonce)
    }

    fn new(role: Role, local: LocalPeer, nonce: [u8; NONCE_BYTES]) -> Handshake {
        let hello = Hello {
            magic: PEER_MAGIC,
            protocol_version: PROTOCOL_VERSION,
            cluster_name: local.cluster_name.clone(),
            node_id: local.node_id,
            nonce,
        };
        Handshake {
            role,
            local,
            hello,
            state: State::AwaitHello,
        }
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the handshake has ended, established or refused.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Established | State::Refused)
    }

    /// Feeds one message received from the peer; returns what to do.
    pub fn on_message(&mut self, message: Message) -> Vec<HandshakeEffect> {
        if let Message::Error { text } = message {
            self.state = State::Refused;
            return vec![HandshakeEffect::Refused {
                reason: Refusal::RefusedByPeer { text },
            }];
        }
        match std::mem::replace(&mut self.state, State::Refused) {
            State::AwaitHello => match message {
                Message::Hello(peer) => self.on_hello(peer),
                other => self.refuse(Refusal::UnexpectedMessage {
                    expected: "hello",
                    got: other.kind(),
                }),
            },
            State::AwaitProof { peer } => match message {
                Message::Proof { mac } => self.on_proof(peer, &mac),
                other => self.refuse(Refusal::UnexpectedMessage {
                    expected: "proof",
                    got: other.kind(),
                }),
            },
            State::Established | State::Refused => self.refuse(Refusal::UnexpectedMessage {
                expected: "nothing (handshake finished)",
                got: message.kind(),
            }),
        }
    }

    fn on_hello(&mut self, peer: Hello) -> Vec<HandshakeEffect> {
        if peer.magic != PEER_MAGIC {
            return self.refuse(Refusal::WrongMagic { found: peer.magic });
        }
        if negotiate(peer.protocol_version).is_none() {
            return self.refuse(Refusal::UnsupportedProtocolVersion {
                peer: peer.protocol_version,
                min: PROTOCOL_VERSION_MIN,
                max: PROTOCOL_VERSION,
            });
        }
        if peer.cluster_name != self.local.cluster_name {
            return self.refuse(Refusal::WrongClusterName {
                ours: self.local.cluster_name.clone(),
                theirs: peer.cluster_name,
            });
        }
        if peer.node_id == self.local.node_id {
            return self.refuse(Refusal::SameNodeId {
                node_id: peer.node_id,
            });
        }
        let mut effects = Vec::with_capacity(2);
        if self.role == Role::Acceptor {
            effects.push(HandshakeEffect::Send(Message::Hello(self.hello.clone())));
            effects.push(HandshakeEffect::Send(Message::Proof {
                mac: self.mac(&peer, self.role).finalize().into_bytes().into(),
            }));
        }
        self.state = State::AwaitProof { peer };
        effects
    }

    fn on_proof(&mut self, peer: Hello, mac: &[u8; MAC_BYTES]) -> Vec<HandshakeEffect> {
        let peer_role = match self.role {
            Role::Initiator => Role::Acceptor,
            Role::Acceptor => Role::Initiator,
        };
        if self.mac(&peer, peer_role).verify_slice(mac).is_err() {
            return self.refuse(Refusal::BadProof {
                peer_node_id: peer.node_id,
            });
        }
        let mut effects = Vec::with_capacity(2);
        if self.role == Role::Initiator {
            effects.push(HandshakeEffect::Send(Message::Proof {
                mac: self.mac(&peer, self.role).finalize().into_bytes().into(),
            }));
        }
        let protocol_version =
            negotiate(peer.protocol_version).expect("checked when the hello arrived");
        effects.push(HandshakeEffect::Established {
            peer_node_id: peer.node_id,
            protocol_version,
        });
        self.state = State::Established;
        effects
    }

    /// The MAC a `prover` computes over this session's two hellos, before finalizing.
    fn mac(&self, peer: &Hello, prover: Role) -> HmacSha256 {
        let (initiator, acceptor) = match self.role {
            Role::Initiator => (&self.hello, peer),
            Role::Acceptor => (peer, &self.hello),
        };
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.local.secret)
            .expect("HMAC takes a key of any length");
        mac.update(PROOF_CONTEXT);
        mac.update(&[prover.byte()]);
        mac.update(&initiator.protocol_version.to_le_bytes());
        mac.update(&acceptor.protocol_version.to_le_bytes());
        mac.update(&initiator.nonce);
        mac.update(&acceptor.nonce);
        mac.update(&initiator.node_id.to_le_bytes());
        mac.update(&acceptor.node_id.to_le_bytes());
        // Both names are equal once the hellos are accepted; bounded to 255 bytes on the wire.
        let name = self.local.cluster_name.as_bytes();
        mac.update(&(name.len() as u16).to_le_bytes());
        mac.update(name);
        mac
    }

    fn refuse(&mut self, reason: Refusal) -> Vec<HandshakeEffect> {
        self.state = State::Refused;
        let mut text = reason.to_string();
        truncate_utf8(&mut text, super::message::ERROR_TEXT_BYTES_MAX);
        vec![
            HandshakeEffect::Send(Message::Error { text }),
            HandshakeEffect::Refused { reason },
        ]
    }
}

/// The version both sides speak, given the peer's highest; `None` if there is none.
fn negotiate(peer_version: u16) -> Option<u16> {
    let version = peer_version.min(PROTOCOL_VERSION);
    (version >= PROTOCOL_VERSION_MIN).then_some(version)
}

fn truncate_utf8(text: &mut String, bytes_max: usize) {
    if text.len() > bytes_max {
        let mut end = bytes_max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}
