//! `--verify`: stamped SET values, and the check of every GET reply against what was issued.
//!
//! # Value format
//! ```text
//! offset  bytes  field
//!      0      4  magic "rcb1"
//!      4      8  key index, u64 little-endian
//!     12      4  writer (client index), u32 little-endian
//!     16      8  seq, u64 little-endian: the key's issue number, 1, 2, ...
//!     24      8  checksum: FNV-1a 64 of bytes 0..24 and 32..len
//!     32    ...  padding up to --data-size, derived from seq
//! ```
//! The checksum covers the padding, so any corrupted byte is caught; the length must be the
//! run's value size.
//!
//! # What is checked
//! Each key has an issue counter: a SET takes the next number (`fetch_add`) before it is
//! written, so every seq in `1 ..= counter` was issued for that key, by exactly one SET, and
//! no other. A GET's value is **wrong** if it is corrupt, stamped for another key, or carries a
//! seq above the key's counter as read after the reply arrived (never issued), or a writer
//! that does not exist. The writer is not cross-checked against which client drew that seq,
//! which would need per-key history; the checksum binds it to the seq, so only a server that
//! forged our checksum could swap it.
//!
//! A GET's nil is **missing** if the key had an acknowledged SET before the GET was sent and
//! the levels overlap (R + W > N): such a read must see that write or a newer one, and nothing
//! here deletes keys or sets expiries.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The magic at the start of every stamped value.
pub const MAGIC: [u8; 4] = *b"rcb1";
/// The size of the stamp, and so the smallest value `--verify` writes.
pub const VALUE_BYTES_MIN: usize = 32;
/// Offending GETs kept with their details for the report (all are counted).
pub const OFFENCES_MAX: usize = 10;

const KEY_AT: usize = 4;
const WRITER_AT: usize = 12;
const SEQ_AT: usize = 16;
const CHECKSUM_AT: usize = 24;
const _: () = assert!(CHECKSUM_AT + 8 == VALUE_BYTES_MIN);

/// What a stamp says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The key index the value was written for.
    pub key: u64,
    /// The client that wrote it.
    pub writer: u32,
    /// The key's issue number.
    pub seq: u64,
}

/// Writes the value of `stamp` into `out`, which has the run's value size (at least
/// [`VALUE_BYTES_MIN`]).
pub fn encode(stamp: Stamp, out: &mut [u8]) {
    assert!(
        out.len() >= VALUE_BYTES_MIN,
        "a verify value of {} bytes",
        out.len()
    );
    out[..KEY_AT].copy_from_slice(&MAGIC);
    out[KEY_AT..WRITER_AT].copy_from_slice(&stamp.key.to_le_bytes());
    out[WRITER_AT..SEQ_AT].copy_from_slice(&stamp.writer.to_le_bytes());
    out[SEQ_AT..CHECKSUM_AT].copy_from_slice(&stamp.seq.to_le_bytes());
    for (i, byte) in out[VALUE_BYTES_MIN..].iter_mut().enumerate() {
        *byte = b'a' + ((stamp.seq as usize + i) % 26) as u8;
    }
    let sum = checksum(out);
    out[CHECKSUM_AT..VALUE_BYTES_MIN].copy_from_slice(&sum.to_le_bytes());
}

/// Why a value is not one this run wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrong {
    /// Bad length, magic or checksum.
    Corrupt,
    /// A well-formed value of another key.
    ForeignKey(Stamp),
    /// A well-formed value of this key with a seq or writer never issued.
    NeverIssued(Stamp),
    /// Not a bulk string or nil (an integer, an array, a simple string).
    NotAValue,
}

/// Reads the stamp of `value`, which should be `value_bytes` long.
///
/// # Errors
/// [`Wrong::Corrupt`] when the length, magic or checksum do not match.
pub fn decode(value: &[u8], value_bytes: usize) -> Result<Stamp, Wrong> {
    if value.len() != value_bytes || value.len() < VALUE_BYTES_MIN || value[..KEY_AT] != MAGIC {
        return Err(Wrong::Corrupt);
    }
    let u64_at = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&value[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    if u64_at(CHECKSUM_AT) != checksum(value) {
        return Err(Wrong::Corrupt);
    }
    let mut writer = [0u8; 4];
    writer.copy_from_slice(&value[WRITER_AT..SEQ_AT]);
    Ok(Stamp {
        key: u64_at(KEY_AT),
        writer: u32::from_le_bytes(writer),
        seq: u64_at(SEQ_AT),
    })
}

/// FNV-1a 64 over the value without its checksum field.
fn checksum(value: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    value[..CHECKSUM_AT]
        .iter()
        .chain(&value[VALUE_BYTES_MIN..])
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The verdict on one GET reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A value this run wrote for the key, or an allowed nil.
    Good,
    /// See [`Wrong`].
    Wrong(Wrong),
    /// A nil although an acknowledged SET came before the GET and the levels overlap.
    Missing,
}

/// The per-key state shared by every client of a `--verify` run.
#[derive(Debug)]
pub struct VerifyState {
    /// Per key: the last seq issued.
    issued: Vec<AtomicU64>,
    /// Per key: whether a SET of it was acknowledged.
    acked: Vec<AtomicBool>,
    value_bytes: usize,
    writers: u32,
    overlapping: bool,
}

impl VerifyState {
    /// The state for `key_space` keys, values of `value_bytes`, clients `0 .. writers`, and
    /// whether the levels overlap.
    pub fn new(key_space: u64, value_bytes: usize, writers: u32, overlapping: bool) -> Self {
        let keys = usize::try_from(key_space).expect("the options bound the verify key space");
        VerifyState {
            issued: (0..keys).map(|_| AtomicU64::new(0)).collect(),
            acked: (0..keys).map(|_| AtomicBool::new(false)).collect(),
            value_bytes: value_bytes.max(VALUE_BYTES_MIN),
            writers,
            overlapping,
        }
    }

    /// The size of every value.
    pub fn value_bytes(&self) -> usize {
        self.value_bytes
    }

    /// Takes the next seq of `key` and stamps `out` with it; call before the SET is written.
    pub fn issue(&self, key: u64, writer: u32, out: &mut [u8]) {
        let seq = self.issued[key as usize].fetch_add(1, Ordering::SeqCst) + 1;
        encode(Stamp { key, writer, seq }, out);
    }

    /// Records that a SET of `key` was acknowledged.
    pub fn ack(&self, key: u64) {
        self.acked[key as usize].store(true, Ordering::SeqCst);
    }

    /// Whether a SET of `key` was acknowledged; read just before a GET is written.
    pub fn acked(&self, key: u64) -> bool {
        self.acked[key as usize].load(Ordering::SeqCst)
    }

    /// Checks the bulk reply `value` (`None`: nil) of a GET of `key`, read after the reply
    /// arrived; `acked_before` is [`VerifyState::acked`] as it was when the GET was written.
    pub fn check(&self, key: u64, value: Option<&[u8]>, acked_before: bool) -> Verdict {
        let Some(value) = value else {
            return if acked_before && self.overlapping {
                Verdict::Missing
            } else {
                Verdict::Good
            };
        };
        let stamp = match decode(value, self.value_bytes) {
            Ok(stamp) => stamp,
            Err(wrong) => return Verdict::Wrong(wrong),
        };
        if stamp.key != key {
            return Verdict::Wrong(Wrong::ForeignKey(stamp));
        }
        let issued = self.issued[key as usize].load(Ordering::SeqCst);
        if stamp.seq == 0 || stamp.seq > issued || stamp.writer >= self.writers {
            return Verdict::Wrong(Wrong::NeverIssued(stamp));
        }
        Verdict::Good
    }
}

/// One offending GET, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offence {
    /// The key index asked for.
    pub key: u64,
    /// What was wrong.
    pub verdict: Verdict,
}

/// What one client (or, merged, the run) found.
#[derive(Debug, Clone, Default)]
pub struct VerifyCounts {
    /// GET replies checked (values and nils).
    pub checked: u64,
    /// See [`Verdict::Wrong`].
    pub wrong: u64,
    /// See [`Verdict::Missing`].
    pub missing: u64,
    /// The first [`OFFENCES_MAX`] offences.
    pub offences: Vec<Offence>,
}

impl VerifyCounts {
    /// Counts one verdict on a GET of `key`.
    pub fn count(&mut self, key: u64, verdict: Verdict) {
        self.checked += 1;
        match verdict {
            Verdict::Good => return,
            Verdict::Wrong(_) => self.wrong += 1,
            Verdict::Missing => self.missing += 1,
        }
        if self.offences.len() < OFFENCES_MAX {
            self.offences.push(Offence { key, verdict });
        }
    }

    /// Adds `other`'s counts, keeping at most [`OFFENCES_MAX`] offences.
    pub fn merge(&mut self, other: &VerifyCounts) {
        self.checked += other.checked;
        self.wrong += other.wrong;
        self.missing += other.missing;
        let room = OFFENCES_MAX.saturating_sub(self.offences.len());
        self.offences
            .extend(other.offences.iter().take(room).cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIZE: usize = 100;

    fn stamped(state: &VerifyState, key: u64, writer: u32) -> Vec<u8> {
        let mut value = vec![0u8; state.value_bytes()];
        state.issue(key, writer, &mut value);
        value
    }

    #[test]
    fn a_stamp_round_trips_at_every_size() {
        for size in [VALUE_BYTES_MIN, 33, SIZE, 4096] {
            let stamp = Stamp {
                key: 123_456,
                writer: 7,
                seq: 99,
            };
            let mut value = vec![0u8; size];
            encode(stamp, &mut value);
            assert_eq!(decode(&value, size), Ok(stamp));
            assert_eq!(decode(&value, size + 1), Err(Wrong::Corrupt));
        }
    }

    #[test]
    fn an_issued_value_of_the_key_is_good() {
        let state = VerifyState::new(10, SIZE, 4, true);
        let value = stamped(&state, 3, 2);
        assert_eq!(state.check(3, Some(&value), false), Verdict::Good);
        let newer = stamped(&state, 3, 1);
        assert_eq!(state.check(3, Some(&value), true), Verdict::Good);
        assert_eq!(state.check(3, Some(&newer), true), Verdict::Good);
    }

    #[test]
    fn any_flipped_byte_is_corrupt() {
        let state = VerifyState::new(10, SIZE, 4, true);
        let value = stamped(&state, 3, 2);
        for i in 0..value.len() {
            let mut bad = value.clone();
            bad[i] ^= 0x20;
            assert_eq!(
                state.check(3, Some(&bad), false),
                Verdict::Wrong(Wrong::Corrupt),
                "byte {i}"
            );
        }
        assert_eq!(
            state.check(3, Some(&value[..SIZE - 1]), false),
            Verdict::Wrong(Wrong::Corrupt)
        );
        assert_eq!(
            state.check(3, Some(b"x".repeat(SIZE).as_slice()), false),
            Verdict::Wrong(Wrong::Corrupt)
        );
    }

    #[test]
    fn a_value_of_another_key_is_foreign() {
        let state = VerifyState::new(10, SIZE, 4, true);
        let value = stamped(&state, 4, 0);
        assert!(matches!(
            state.check(5, Some(&value), true),
            Verdict::Wrong(Wrong::ForeignKey(Stamp { key: 4, .. }))
        ));
    }

    #[test]
    fn a_well_formed_value_never_issued_is_wrong() {
        let state = VerifyState::new(10, SIZE, 4, true);
        let _first = stamped(&state, 6, 0);
        let mut ahead = vec![0u8; SIZE];
        encode(
            Stamp {
                key: 6,
                writer: 0,
                seq: 2,
            },
            &mut ahead,
        );
        let mut zero = vec![0u8; SIZE];
        encode(
            Stamp {
                key: 6,
                writer: 0,
                seq: 0,
            },
            &mut zero,
        );
        let mut stranger = vec![0u8; SIZE];
        encode(
            Stamp {
                key: 6,
                writer: 4,
                seq: 1,
            },
            &mut stranger,
        );
        for value in [&ahead, &zero, &stranger] {
            assert!(matches!(
                state.check(6, Some(value), true),
                Verdict::Wrong(Wrong::NeverIssued(_))
            ));
        }
        // Once seq 2 is issued, the same value is good.
        let _second = stamped(&state, 6, 3);
        assert_eq!(state.check(6, Some(&ahead), true), Verdict::Good);
    }

    #[test]
    fn nil_is_missing_only_after_an_ack_and_with_overlapping_levels() {
        let overlapping = VerifyState::new(10, SIZE, 4, true);
        assert!(!overlapping.acked(1));
        assert_eq!(overlapping.check(1, None, false), Verdict::Good);
        overlapping.ack(1);
        assert!(overlapping.acked(1));
        assert_eq!(overlapping.check(1, None, true), Verdict::Missing);
        let disjoint = VerifyState::new(10, SIZE, 4, false);
        assert_eq!(disjoint.check(1, None, true), Verdict::Good);
    }

    #[test]
    fn counts_keep_the_first_offences_only() {
        let mut counts = VerifyCounts::default();
        for key in 0..30 {
            counts.count(key, Verdict::Missing);
            counts.count(key, Verdict::Good);
        }
        let mut total = VerifyCounts::default();
        total.merge(&counts);
        total.merge(&counts);
        assert_eq!((total.checked, total.wrong, total.missing), (120, 0, 60));
        assert_eq!(total.offences.len(), OFFENCES_MAX);
        assert_eq!(total.offences[0].key, 0);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode(&bytes, bytes.len());
        }

        #[test]
        fn stamps_round_trip(key: u64, writer: u32, seq: u64, extra in 0usize..64) {
            let stamp = Stamp { key, writer, seq };
            let mut value = vec![0u8; VALUE_BYTES_MIN + extra];
            encode(stamp, &mut value);
            prop_assert_eq!(decode(&value, value.len()), Ok(stamp));
        }
    }
}
