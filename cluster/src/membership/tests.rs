use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::wire::{self, DatagramWriter, Header, Kind};
use super::*;

const CLUSTER: &str = "test-cluster";
const SECRET: &[u8] = b"s3cret";

fn addr(i: u64) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8), 7000))
}

fn member(i: u64, incarnation: u32, health: Health) -> Member {
    Member {
        id: NodeId::new(i),
        addr: addr(i),
        incarnation,
        status: Status::Normal,
        health,
        flush_hlc: 0,
    }
}

fn node(i: u64) -> Membership {
    Membership::new(
        member(i, 0, Health::Alive),
        CLUSTER,
        SECRET,
        Config::lan(),
        i,
    )
}

fn datagrams(outputs: &[Output]) -> Vec<(SocketAddr, Vec<u8>)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Datagram { to, bytes } => Some((*to, bytes.clone())),
            _ => None,
        })
        .collect()
}

/// A datagram from node `from` carrying `updates`, as another node would send it.
fn gossip_from(from: u64, updates: &[Member], cluster: &str, secret: &[u8]) -> Vec<u8> {
    let header = Header {
        kind: Kind::Gossip,
        seq: 0,
        from: NodeId::new(from),
        from_addr: addr(from),
    };
    let hash = twox_hash::XxHash3_64::oneshot(cluster.as_bytes());
    let mut w = DatagramWriter::new(hash, &header, 1400);
    for m in updates {
        assert!(w.push(
            m,
            (m.health == Health::Suspect).then_some(NodeId::new(from))
        ));
    }
    w.finish(&wire::keyed_mac(secret))
}

#[test]
fn a_higher_incarnation_wins_and_a_lower_one_is_ignored() {
    let mut m = node(1);
    m.merge_state(vec![member(2, 5, Health::Alive)], 0);
    m.merge_state(vec![member(2, 4, Health::Dead)], 0);
    assert_eq!(m.member(NodeId::new(2)).unwrap().health, Health::Alive);
    let mut newer = member(2, 6, Health::Alive);
    newer.status = Status::Leaving;
    newer.flush_hlc = 9;
    m.merge_state(vec![newer.clone()], 0);
    assert_eq!(m.member(NodeId::new(2)), Some(&newer));
}

#[test]
fn at_equal_incarnation_dead_beats_suspect_beats_alive() {
    let mut m = node(1);
    m.merge_state(vec![member(2, 3, Health::Alive)], 0);
    m.merge_state(vec![member(2, 3, Health::Suspect)], 0);
    assert_eq!(m.member(NodeId::new(2)).unwrap().health, Health::Suspect);
    m.merge_state(vec![member(2, 3, Health::Alive)], 0);
    assert_eq!(m.member(NodeId::new(2)).unwrap().health, Health::Suspect);
    m.merge_state(vec![member(2, 3, Health::Dead)], 0);
    assert_eq!(m.member(NodeId::new(2)).unwrap().health, Health::Dead);
    m.merge_state(vec![member(2, 3, Health::Suspect)], 0);
    assert_eq!(m.member(NodeId::new(2)).unwrap().health, Health::Dead);
    // Dead is not final: the member itself comes back with a higher incarnation.
    m.merge_state(vec![member(2, 4, Health::Alive)], 0);
    assert_eq!(m.member(NodeId::new(2)).unwrap().health, Health::Alive);
}

#[test]
fn left_is_sticky_at_its_incarnation() {
    let mut m = node(1);
    let mut left = member(2, 3, Health::Alive);
    left.status = Status::Left;
    m.merge_state(vec![left.clone()], 0);
    m.merge_state(
        vec![member(2, 3, Health::Dead), member(2, 2, Health::Alive)],
        0,
    );
    assert_eq!(m.member(NodeId::new(2)), Some(&left));
    assert_eq!(m.len_alive(), 1);
    m.merge_state(vec![member(2, 4, Health::Alive)], 0);
    assert_eq!(m.member(NodeId::new(2)).unwrap().status, Status::Normal);
    assert_eq!(m.len_alive(), 2);
}

#[test]
fn a_suspected_node_refutes_with_a_higher_incarnation() {
    let mut m = node(1);
    let own = m.local().incarnation;
    m.merge_state(vec![member(2, 1, Health::Alive)], 0);
    let bytes = gossip_from(2, &[member(1, own, Health::Suspect)], CLUSTER, SECRET);
    m.on_datagram(&bytes, 10).unwrap();
    assert_eq!(m.local().incarnation, own + 1);
    assert_eq!(m.local().health, Health::Alive);
    assert_eq!(m.stats().refutations, 1);
    assert_eq!(m.stats().false_deaths, 0);
    assert_eq!(m.local_health(), 1);
    let bytes = gossip_from(2, &[member(1, own + 1, Health::Dead)], CLUSTER, SECRET);
    m.on_datagram(&bytes, 20).unwrap();
    assert_eq!(m.local().incarnation, own + 2);
    assert_eq!(m.stats().false_deaths, 1);
    // The refutation goes out on the next datagram.
    m.tick(30);
    m.tick(m.next_deadline_ms().max(30));
    let sent = datagrams(&m.drain_outputs());
    assert!(!sent.is_empty());
    let other = &mut node(2);
    other.merge_state(vec![member(1, own + 1, Health::Dead)], 0);
    other.on_datagram(&sent[0].1, 40).unwrap();
    assert_eq!(other.member(NodeId::new(1)).unwrap().health, Health::Alive);
    assert_eq!(other.member(NodeId::new(1)).unwrap().incarnation, own + 2);
}

#[test]
fn a_forgotten_node_that_is_running_reannounces_itself_above_the_left_record() {
    let mut m = node(1);
    m.set_status(Status::Normal, 0);
    let inc = m.local().incarnation;
    let mut left = member(1, inc + 1, Health::Dead);
    left.status = Status::Left;
    assert!(!m.take_forgotten());
    m.merge_state(vec![left], 0);
    assert_eq!(m.local().incarnation, inc + 2);
    assert_eq!(m.local().status, Status::Normal);
    // The runtime learns it once, and joins again.
    assert!(m.take_forgotten());
    assert!(!m.take_forgotten());
}

#[test]
fn a_record_about_self_at_a_lower_incarnation_is_ignored() {
    let mut m = node(1);
    let inc = m.local().incarnation;
    m.merge_state(vec![member(1, inc - 1, Health::Dead)], 0);
    assert_eq!(m.local().incarnation, inc);
    assert_eq!(m.stats().refutations, 0);
}

#[test]
fn new_starts_a_new_incarnation_and_set_status_bumps_it() {
    let mut m = Membership::new(
        member(1, 7, Health::Dead),
        CLUSTER,
        SECRET,
        Config::lan(),
        1,
    );
    assert_eq!(m.local().incarnation, 8);
    assert_eq!(m.local().health, Health::Alive);
    m.set_status(Status::Leaving, 0);
    assert_eq!(m.local().incarnation, 9);
    m.set_flush_hlc(5, 0);
    assert_eq!(m.local().incarnation, 10);
    m.set_flush_hlc(4, 0);
    assert_eq!(m.local().incarnation, 10);
    assert_eq!(m.local().flush_hlc, 5);
    assert_eq!(m.drain_outputs(), vec![Output::ViewChanged]);
}

#[test]
fn forget_refuses_self_unknown_and_live_members() {
    let mut m = node(1);
    m.merge_state(
        vec![member(2, 1, Health::Alive), member(3, 1, Health::Suspect)],
        0,
    );
    assert_eq!(
        m.forget(NodeId::new(1), 0),
        Err(ForgetError::IsSelf(NodeId::new(1)))
    );
    assert_eq!(
        m.forget(NodeId::new(9), 0),
        Err(ForgetError::Unknown(NodeId::new(9)))
    );
    assert_eq!(
        m.forget(NodeId::new(2), 0),
        Err(ForgetError::Alive(NodeId::new(2)))
    );
    assert_eq!(
        m.forget(NodeId::new(3), 0),
        Err(ForgetError::Alive(NodeId::new(3)))
    );
    let err = m.forget(NodeId::new(2), 0).unwrap_err().to_string();
    assert!(
        err.contains("is alive; only a dead member can be forgotten"),
        "{err}"
    );
}

#[test]
fn forget_makes_a_dead_member_left_at_the_next_incarnation() {
    let mut m = node(1);
    m.merge_state(vec![member(2, 4, Health::Dead)], 0);
    m.drain_outputs();
    m.forget(NodeId::new(2), 5).unwrap();
    let rec = m.member(NodeId::new(2)).unwrap();
    assert_eq!((rec.status, rec.incarnation), (Status::Left, 5));
    assert_eq!(m.drain_outputs(), vec![Output::ViewChanged]);
    // Again: nothing changes.
    m.forget(NodeId::new(2), 6).unwrap();
    assert_eq!(m.member(NodeId::new(2)).unwrap().incarnation, 5);
    assert_eq!(m.len_alive(), 1);
}

#[test]
fn members_are_sorted_and_include_self_and_tombstones() {
    let mut m = node(5);
    let mut left = member(9, 1, Health::Dead);
    left.status = Status::Left;
    m.merge_state(
        vec![
            member(7, 1, Health::Alive),
            left,
            member(2, 1, Health::Alive),
        ],
        0,
    );
    let ids: Vec<u64> = m.members().map(|x| x.id.get()).collect();
    assert_eq!(ids, vec![2, 5, 7, 9]);
    assert_eq!(m.len_alive(), 3);
}

#[test]
fn a_datagram_round_trips_with_v4_and_v6_addresses() {
    let mut a = node(1);
    let mut b = node(2);
    let mut v6 = member(3, 2, Health::Suspect);
    v6.addr = SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3), 7001));
    v6.flush_hlc = u64::MAX;
    a.merge_state(vec![member(2, 1, Health::Alive), v6.clone()], 0);
    a.tick(0);
    a.tick(a.next_deadline_ms());
    let sent = datagrams(&a.drain_outputs());
    assert!(!sent.is_empty());
    for (_, bytes) in &sent {
        b.on_datagram(bytes, 1).unwrap();
    }
    assert_eq!(b.member(NodeId::new(3)), Some(&v6));
    assert_eq!(b.member(NodeId::new(1)), Some(a.local()));
}

#[test]
fn a_ping_is_acked_and_the_ack_completes_the_probe() {
    let mut a = node(1);
    let mut b = node(2);
    a.merge_state(vec![b.local().clone()], 0);
    a.tick(0);
    let mut now = 0;
    let ping = loop {
        now = a.next_deadline_ms().max(now);
        a.tick(now);
        let out = datagrams(&a.drain_outputs());
        let is_ping = |b: &Vec<u8>| b[wire::PREFIX_BYTES] == 1;
        if let Some(p) = out.into_iter().find(|(to, b)| *to == addr(2) && is_ping(b)) {
            break p.1;
        }
        assert!(now < 10_000);
    };
    assert_eq!(a.stats().probes, 1);
    b.on_datagram(&ping, now + 1).unwrap();
    let ack = datagrams(&b.drain_outputs());
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].0, addr(1));
    a.on_datagram(&ack[0].1, now + 2).unwrap();
    // The period ends without a suspicion.
    a.tick(now + 600);
    assert_eq!(a.stats().suspicions, 0);
    assert_eq!(a.member(NodeId::new(2)).unwrap().health, Health::Alive);
}

#[test]
fn an_unanswered_member_becomes_suspect_then_dead() {
    let mut a = node(1);
    a.merge_state(vec![member(2, 1, Health::Alive)], 0);
    let mut now = 0;
    while a.member(NodeId::new(2)).unwrap().health != Health::Dead {
        a.tick(now);
        a.drain_outputs();
        now = a.next_deadline_ms().max(now + 1);
        assert!(now < 60_000, "never declared dead");
    }
    assert_eq!(a.stats().suspicions, 1);
    assert_eq!(a.stats().deaths, 1);
    // Unanswered probes with no one to ask indirectly raise local health.
    assert!(a.local_health() > 0);
}

#[test]
fn confirmations_shorten_the_suspicion_timeout() {
    let m = node(1);
    let c = Config::lan();
    let max = c.suspicion_ms * c.suspicion_max_mult;
    assert_eq!(m.suspicion_timeout_ms(1), max);
    assert!(m.suspicion_timeout_ms(2) < max);
    assert!(m.suspicion_timeout_ms(3) < m.suspicion_timeout_ms(2));
    assert_eq!(
        m.suspicion_timeout_ms(1 + c.suspicion_confirmations as usize),
        c.suspicion_ms
    );
    assert_eq!(m.suspicion_timeout_ms(16), c.suspicion_ms);
}

#[test]
fn a_wrong_mac_cluster_or_version_is_refused_and_counted() {
    let mut m = node(1);
    let wrong_secret = gossip_from(2, &[member(2, 1, Health::Alive)], CLUSTER, b"other");
    assert!(matches!(
        m.on_datagram(&wrong_secret, 0),
        Err(GossipError::Refused(_))
    ));
    let wrong_cluster = gossip_from(2, &[member(2, 1, Health::Alive)], "other", SECRET);
    assert!(matches!(
        m.on_datagram(&wrong_cluster, 0),
        Err(GossipError::Refused(_))
    ));
    let mut wrong_version = gossip_from(2, &[member(2, 1, Health::Alive)], CLUSTER, SECRET);
    wrong_version[2] = 99;
    assert!(matches!(
        m.on_datagram(&wrong_version, 0),
        Err(GossipError::Refused(_))
    ));
    let mut flipped = gossip_from(2, &[member(2, 1, Health::Alive)], CLUSTER, SECRET);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        m.on_datagram(&flipped, 0),
        Err(GossipError::Refused(_))
    ));
    assert_eq!(m.stats().datagrams_rejected, 4);
    assert!(m.member(NodeId::new(2)).is_none());
    let good = gossip_from(2, &[member(2, 1, Health::Alive)], CLUSTER, SECRET);
    m.on_datagram(&good, 0).unwrap();
    assert!(m.member(NodeId::new(2)).is_some());
}

#[test]
fn datagrams_respect_the_size_bound_with_many_updates_queued() {
    let mut config = Config::lan();
    config.datagram_bytes_max = 512;
    let mut m = Membership::new(member(1, 0, Health::Alive), CLUSTER, SECRET, config, 1);
    let mut many: Vec<Member> = (2..1000).map(|i| member(i, 1, Health::Alive)).collect();
    for x in many.iter_mut().step_by(3) {
        x.addr = SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1), 7000));
        x.health = Health::Suspect;
    }
    m.merge_state(many, 0);
    let mut now = 0;
    let mut seen = 0;
    for _ in 0..50 {
        m.tick(now);
        for (_, bytes) in datagrams(&m.drain_outputs()) {
            assert!(bytes.len() <= 512, "{} bytes", bytes.len());
            assert!(
                bytes.len() > 400,
                "a datagram not filled: {} bytes",
                bytes.len()
            );
            seen += 1;
        }
        now = m.next_deadline_ms().max(now + 1);
    }
    assert!(seen > 10);
}

#[test]
fn a_fresh_member_pushes_pulls_soon_after_its_view_grows() {
    let mut m = node(1);
    m.tick(0);
    m.merge_state(vec![member(2, 1, Health::Alive)], 10);
    let mut now = 10;
    let mut found = None;
    while now < 1_500 {
        now = m.next_deadline_ms().max(now);
        m.tick(now);
        if m.drain_outputs()
            .iter()
            .any(|o| matches!(o, Output::PushPull { .. }))
        {
            found = Some(now);
            break;
        }
        now += 1;
    }
    let at = found.expect("no join push-pull within 1.5 s");
    assert!(at <= 1_010, "join push-pull at {at}");
}

#[test]
fn the_state_round_trips() {
    let mut m = node(1);
    let mut v6 = member(3, 2, Health::Dead);
    v6.addr = SocketAddr::from((Ipv6Addr::LOCALHOST, 1));
    m.merge_state(vec![member(2, 1, Health::Suspect), v6], 0);
    let bytes = m.encode_state();
    let decoded = Membership::decode_state(&bytes).unwrap();
    let expected: Vec<Member> = m.members().cloned().collect();
    assert_eq!(decoded, expected);
    assert!(Membership::decode_state(&bytes[..bytes.len() - 1]).is_err());
    let mut huge = vec![wire::STATE_FORMAT_VERSION];
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Membership::decode_state(&huge).is_err());
}

#[test]
fn view_changed_comes_once_per_drain() {
    let mut m = node(1);
    m.merge_state((2..20).map(|i| member(i, 1, Health::Alive)).collect(), 0);
    let out = m.drain_outputs();
    assert_eq!(out.iter().filter(|o| **o == Output::ViewChanged).count(), 1);
    assert!(m.drain_outputs().is_empty());
}

#[test]
fn the_lan_config_is_valid_and_nonsense_is_named() {
    Config::lan().validate().unwrap();
    let mut c = Config::lan();
    c.probe_timeout_ms = c.probe_interval_ms;
    assert!(c.validate().unwrap_err().contains("probe_timeout_ms"));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut m = node(1);
        let _ = m.on_datagram(&bytes, 0);
        let _ = Membership::decode_state(&bytes);
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_prefix_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        // A valid MAC over random contents, so the decoder past the MAC is exercised.
        let mut bytes = gossip_from(2, &[], CLUSTER, SECRET);
        bytes.truncate(wire::PREFIX_BYTES);
        bytes.extend_from_slice(&body);
        let mut mac = wire::keyed_mac(SECRET);
        hmac::Mac::update(&mut mac, &bytes[..11]);
        hmac::Mac::update(&mut mac, &bytes[wire::PREFIX_BYTES..]);
        let tag = hmac::Mac::finalize(mac).into_bytes();
        bytes[11..wire::PREFIX_BYTES].copy_from_slice(&tag[..wire::MAC_BYTES]);
        let mut m = node(1);
        let _ = m.on_datagram(&bytes, 0);
        m.tick(1);
        let _ = m.drain_outputs();
        let mut state = vec![wire::STATE_FORMAT_VERSION];
        state.extend_from_slice(&body);
        if let Ok(members) = Membership::decode_state(&state) {
            m.merge_state(members, 2);
        }
    }
}
