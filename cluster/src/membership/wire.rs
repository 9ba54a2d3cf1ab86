//! The gossip datagram and the push-pull state, hand-written little-endian binary.
//!
//! # Datagram (UDP, on the peer port)
//!
//! ```text
//! prefix (27 B)
//!   magic            2 B   b"rg"
//!   protocol_version u8    PROTOCOL_VERSION
//!   cluster_hash     u64   xxh3-64 of the cluster name
//!   mac              16 B  HMAC-SHA256(secret, bytes[0..11] || bytes[27..]), first 16 bytes
//! header
//!   kind             u8    1 Ping, 2 Ack, 3 PingReq, 4 Nack, 5 Gossip
//!   seq              u32   the probe this datagram belongs to (0 for Gossip)
//!   from             u64   sender's node id
//!   from_addr        addr  where to answer
//!   Ping:    target u64    (a node that is not `target` does not answer)
//!   PingReq: target u64, target_addr addr
//! updates
//!   count            u8
//!   count × record
//! record
//!   id u64, incarnation u32, status u8, health u8, flush_hlc u64, addr,
//!   by u64                 only when health is Suspect: who suspected (Lifeguard confirmations)
//! addr
//!   4, ipv4 4 B, port u16  |  6, ipv6 16 B, port u16
//! ```
//!
//! The MAC covers the whole datagram except itself, so the cluster hash and the version are
//! authenticated too; a datagram with another magic, version, cluster hash or MAC is refused
//! before anything else is read. Nothing after the records is allowed (trailing bytes are
//! malformed).
//!
//! # State (push-pull, over the authenticated TCP peer link)
//!
//! ```text
//! format_version u8 (STATE_FORMAT_VERSION), count u32 (≤ MEMBERS_MAX), count × record
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{GossipError, Health, MEMBERS_MAX, Member, Status};
use crate::NodeId;

/// First bytes of every gossip datagram.
pub const GOSSIP_MAGIC: [u8; 2] = *b"rg";
/// The gossip datagram protocol version this build speaks (only this one).
pub const PROTOCOL_VERSION: u8 = 1;
/// The push-pull state format version.
pub const STATE_FORMAT_VERSION: u8 = 1;
/// Bytes of the truncated HMAC-SHA256.
pub const MAC_BYTES: usize = 16;
/// Bytes before the MAC: magic, version, cluster hash.
const MAC_OFFSET: usize = 2 + 1 + 8;
/// Bytes of the prefix: magic, version, cluster hash, MAC.
pub const PREFIX_BYTES: usize = MAC_OFFSET + MAC_BYTES;
const _: () = assert!(PREFIX_BYTES == 27);
/// Largest encoded address (IPv6).
pub const ADDR_BYTES_MAX: usize = 1 + 16 + 2;
/// Largest header after the prefix (a PingReq with IPv6 addresses).
pub const HEADER_BYTES_MAX: usize = 1 + 4 + 8 + ADDR_BYTES_MAX + 8 + ADDR_BYTES_MAX;
/// Smallest encoded record (IPv4, not Suspect).
pub const RECORD_BYTES_MIN: usize = 8 + 4 + 1 + 1 + 8 + 1 + 4 + 2;
const _: () = assert!(RECORD_BYTES_MIN == 29);
/// Largest encoded record (IPv6, Suspect).
pub const RECORD_BYTES_MAX: usize = 8 + 4 + 1 + 1 + 8 + ADDR_BYTES_MAX + 8;
/// Records in one datagram: the count is a `u8`.
pub const UPDATES_PER_DATAGRAM_MAX: usize = u8::MAX as usize;
/// The smallest datagram that still holds a header, the update count and one record; the
/// floor of `Config::datagram_bytes_max`.
pub const DATAGRAM_BYTES_MIN: usize = PREFIX_BYTES + HEADER_BYTES_MAX + 1 + RECORD_BYTES_MAX;
/// Largest datagram accepted (the UDP payload limit); anything longer is refused unread.
pub const DATAGRAM_RECEIVE_BYTES_MAX: usize = 65_507;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// What a datagram asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Are you alive? Answer with an Ack carrying the same seq.
    Ping {
        /// The node meant; another node at that address stays silent.
        target: NodeId,
    },
    /// Alive (directly, or relayed by the member asked to probe indirectly).
    Ack,
    /// Please ping `target` for me and relay its Ack, or send a Nack if it stays silent.
    PingReq {
        /// The member to probe.
        target: NodeId,
        /// Its address.
        target_addr: SocketAddr,
    },
    /// I relayed your PingReq but the target did not answer in time: I am reachable.
    Nack,
    /// Only updates.
    Gossip,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Ping { .. } => 1,
            Kind::Ack => 2,
            Kind::PingReq { .. } => 3,
            Kind::Nack => 4,
            Kind::Gossip => 5,
        }
    }
}

/// The header of a datagram after its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What is asked.
    pub kind: Kind,
    /// The probe it belongs to.
    pub seq: u32,
    /// The sender.
    pub from: NodeId,
    /// Where to answer the sender.
    pub from_addr: SocketAddr,
}

/// One member record as gossiped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The record.
    pub member: Member,
    /// Who suspected it; present exactly when the record's health is Suspect.
    pub by: Option<NodeId>,
}

/// The bytes a record takes on the wire.
pub fn record_bytes(member: &Member) -> usize {
    let addr = match member.addr {
        SocketAddr::V4(_) => 1 + 4 + 2,
        SocketAddr::V6(_) => ADDR_BYTES_MAX,
    };
    let by = if member.health == Health::Suspect {
        8
    } else {
        0
    };
    8 + 4 + 1 + 1 + 8 + addr + by
}

/// Builds one datagram: prefix, header, then records while they fit.
pub struct DatagramWriter {
    bytes: Vec<u8>,
    count_at: usize,
    count: usize,
    bytes_max: usize,
}

impl DatagramWriter {
    /// A datagram of at most `bytes_max` bytes with this header.
    pub fn new(cluster_hash: u64, header: &Header, bytes_max: usize) -> DatagramWriter {
        let mut bytes = Vec::with_capacity(bytes_max.min(2048));
        bytes.extend_from_slice(&GOSSIP_MAGIC);
        bytes.push(PROTOCOL_VERSION);
        bytes.extend_from_slice(&cluster_hash.to_le_bytes());
        bytes.extend_from_slice(&[0; MAC_BYTES]);
        bytes.push(header.kind.byte());
        bytes.extend_from_slice(&header.seq.to_le_bytes());
        bytes.extend_from_slice(&header.from.get().to_le_bytes());
        put_addr(&mut bytes, header.from_addr);
        match header.kind {
            Kind::Ping { target } => bytes.extend_from_slice(&target.get().to_le_bytes()),
            Kind::PingReq {
                target,
                target_addr,
            } => {
                bytes.extend_from_slice(&target.get().to_le_bytes());
                put_addr(&mut bytes, target_addr);
            }
            Kind::Ack | Kind::Nack | Kind::Gossip => {}
        }
        let count_at = bytes.len();
        bytes.push(0);
        debug_assert!(bytes.len() <= bytes_max);
        DatagramWriter {
            bytes,
            count_at,
            count: 0,
            bytes_max,
        }
    }

    /// Bytes still free.
    pub fn room(&self) -> usize {
        if self.count >= UPDATES_PER_DATAGRAM_MAX {
            return 0;
        }
        self.bytes_max.saturating_sub(self.bytes.len())
    }

    /// Appends a record if it fits; says whether it did.
    pub fn push(&mut self, member: &Member, by: Option<NodeId>) -> bool {
        if record_bytes(member) > self.room() {
            return false;
        }
        put_record(&mut self.bytes, member, by);
        self.count += 1;
        true
    }

    /// Records written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Seals the datagram with its MAC; `mac` is the HMAC already keyed with the secret.
    pub fn finish(mut self, mac: &HmacSha256) -> Vec<u8> {
        self.bytes[self.count_at] = self.count as u8;
        let tag = compute_mac(mac, &self.bytes);
        self.bytes[MAC_OFFSET..PREFIX_BYTES].copy_from_slice(&tag[..MAC_BYTES]);
        self.bytes
    }
}

fn compute_mac(mac: &HmacSha256, bytes: &[u8]) -> [u8; 32] {
    let mut mac = mac.clone();
    mac.update(&bytes[..MAC_OFFSET]);
    mac.update(&bytes[PREFIX_BYTES..]);
    mac.finalize().into_bytes().into()
}

/// The HMAC keyed with the cluster secret, cloned for every datagram.
pub fn keyed_mac(secret: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length")
}

/// Checks the prefix and decodes a datagram.
///
/// # Errors
///
/// [`GossipError::Refused`] for another magic, version or cluster, or a MAC that does not
/// verify; [`GossipError::Malformed`] for bytes that do not decode.
pub fn decode_datagram(
    bytes: &[u8],
    cluster_hash: u64,
    mac: &HmacSha256,
) -> Result<(Header, Vec<Update>), GossipError> {
    if bytes.len() > DATAGRAM_RECEIVE_BYTES_MAX {
        return Err(GossipError::Malformed("datagram too long"));
    }
    if bytes.len() < PREFIX_BYTES {
        return Err(GossipError::Refused("shorter than the prefix"));
    }
    if bytes[..2] != GOSSIP_MAGIC {
        return Err(GossipError::Refused("not a ringcache gossip datagram"));
    }
    if bytes[2] != PROTOCOL_VERSION {
        return Err(GossipError::Refused("unknown gossip protocol version"));
    }
    let hash = u64::from_le_bytes(bytes[3..11].try_into().expect("8 bytes"));
    if hash != cluster_hash {
        return Err(GossipError::Refused("from another cluster"));
    }
    let mut check = mac.clone();
    check.update(&bytes[..MAC_OFFSET]);
    check.update(&bytes[PREFIX_BYTES..]);
    if check
        .verify_truncated_left(&bytes[MAC_OFFSET..PREFIX_BYTES])
        .is_err()
    {
        return Err(GossipError::Refused("MAC does not verify"));
    }
    let mut r = Reader::new(&bytes[PREFIX_BYTES..]);
    let kind_byte = r.u8()?;
    let seq = r.u32()?;
    let from = NodeId::new(r.u64()?);
    let from_addr = r.addr()?;
    let kind = match kind_byte {
        1 => Kind::Ping {
            target: NodeId::new(r.u64()?),
        },
        2 => Kind::Ack,
        3 => Kind::PingReq {
            target: NodeId::new(r.u64()?),
            target_addr: r.addr()?,
        },
        4 => Kind::Nack,
        5 => Kind::Gossip,
        _ => return Err(GossipError::Malformed("unknown datagram kind")),
    };
    let count = usize::from(r.u8()?);
    // Bounded by the u8 count and by the bytes actually present.
    let mut updates = Vec::with_capacity(count.min(r.remaining() / RECORD_BYTES_MIN));
    for _ in 0..count {
        updates.push(r.record()?);
    }
    if r.remaining() != 0 {
        return Err(GossipError::Malformed("trailing bytes after the records"));
    }
    let header = Header {
        kind,
        seq,
        from,
        from_addr,
    };
    Ok((header, updates))
}

/// Encodes a full view for push-pull.
pub fn encode_state<'a>(members: impl Iterator<Item = (&'a Member, Option<NodeId>)>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5);
    bytes.push(STATE_FORMAT_VERSION);
    bytes.extend_from_slice(&0u32.to_le_bytes());
    let mut count: u32 = 0;
    for (member, by) in members.take(MEMBERS_MAX) {
        put_record(&mut bytes, member, by);
        count += 1;
    }
    bytes[1..5].copy_from_slice(&count.to_le_bytes());
    bytes
}

/// Decodes a full view from push-pull.
///
/// # Errors
///
/// [`GossipError::Malformed`] for another format version, a count above `MEMBERS_MAX`, or
/// bytes that do not decode.
pub fn decode_state(bytes: &[u8]) -> Result<Vec<Update>, GossipError> {
    let mut r = Reader::new(bytes);
    if r.u8()? != STATE_FORMAT_VERSION {
        return Err(GossipError::Malformed("unknown state format version"));
    }
    let count = r.u32()? as usize;
    if count > MEMBERS_MAX {
        return Err(GossipError::Malformed("more members than MEMBERS_MAX"));
    }
    let mut updates = Vec::with_capacity(count.min(r.remaining() / RECORD_BYTES_MIN));
    for _ in 0..count {
        updates.push(r.record()?);
    }
    if r.remaining() != 0 {
        return Err(GossipError::Malformed("trailing bytes after the members"));
    }
    Ok(updates)
}

fn put_addr(bytes: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            bytes.push(4);
            bytes.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            bytes.push(6);
            bytes.extend_from_slice(&ip.octets());
        }
    }
    bytes.extend_from_slice(&addr.port().to_le_bytes());
}

fn put_record(bytes: &mut Vec<u8>, member: &Member, by: Option<NodeId>) {
    bytes.extend_from_slice(&member.id.get().to_le_bytes());
    bytes.extend_from_slice(&member.incarnation.to_le_bytes());
    bytes.push(match member.status {
        Status::Joining => 0,
        Status::Normal => 1,
        Status::Leaving => 2,
        Status::Left => 3,
        Status::Ready => 4,
    });
    bytes.push(match member.health {
        Health::Alive => 0,
        Health::Suspect => 1,
        Health::Dead => 2,
    });
    bytes.extend_from_slice(&member.flush_hlc.to_le_bytes());
    put_addr(bytes, member.addr);
    if member.health == Health::Suspect {
        // A Suspect record always names a suspecter; the member itself when unknown.
        bytes.extend_from_slice(&by.unwrap_or(member.id).get().to_le_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], GossipError> {
        if self.remaining() < n {
            return Err(GossipError::Malformed("truncated"));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, GossipError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, GossipError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, GossipError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, GossipError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn addr(&mut self) -> Result<SocketAddr, GossipError> {
        let ip = match self.u8()? {
            4 => {
                let o: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
                IpAddr::V4(Ipv4Addr::from(o))
            }
            6 => {
                let o: [u8; 16] = self.take(16)?.try_into().expect("16 bytes");
                IpAddr::V6(Ipv6Addr::from(o))
            }
            _ => return Err(GossipError::Malformed("unknown address family")),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }

    fn record(&mut self) -> Result<Update, GossipError> {
        let id = NodeId::new(self.u64()?);
        let incarnation = self.u32()?;
        let status = match self.u8()? {
            0 => Status::Joining,
            1 => Status::Normal,
            2 => Status::Leaving,
            3 => Status::Left,
            4 => Status::Ready,
            _ => return Err(GossipError::Malformed("unknown status")),
        };
        let health = match self.u8()? {
            0 => Health::Alive,
            1 => Health::Suspect,
            2 => Health::Dead,
            _ => return Err(GossipError::Malformed("unknown health")),
        };
        let flush_hlc = self.u64()?;
        let addr = self.addr()?;
        let by = if health == Health::Suspect {
            Some(NodeId::new(self.u64()?))
        } else {
            None
        };
        Ok(Update {
            member: Member {
                id,
                addr,
                incarnation,
                status,
                health,
                flush_hlc,
            },
            by,
        })
    }
}
