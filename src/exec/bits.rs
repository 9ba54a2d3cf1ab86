//! Bit arithmetic over string values, with Redis 7.0's semantics: bit 0 is the most
//! significant bit of the first byte, and a string reads as followed by zero bits forever.
//! Pure functions, so the subtle parts (ranges, `BITPOS`'s answer when nothing is found,
//! `BITFIELD`'s overflow) are tested without a store.

use ringcache_resp::cmd::bitmap::{
    BitFieldAction, BitFieldOp, BitFieldType, BitOp, BitPosRange, BitRange, BitUnit, Overflow,
};

/// The bit at `offset` (0 past the end).
pub fn get_bit(value: &[u8], offset: u64) -> bool {
    let Some(&byte) = usize::try_from(offset / 8).ok().and_then(|i| value.get(i)) else {
        return false;
    };
    byte & (0x80 >> (offset % 8)) != 0
}

/// Sets the bit at `offset`, which must be within `value`.
///
/// # Panics
/// When `offset` is past the end of `value` (callers grow the value first).
pub fn set_bit(value: &mut [u8], offset: u64, bit: bool) {
    let mask = 0x80 >> (offset % 8);
    let byte = &mut value[(offset / 8) as usize];
    if bit {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
}

/// Redis's range clamping: `start` and `end` (inclusive, negative from the end) within
/// `len` units; `None` when the range is empty.
fn clamp(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
    let from_end = |i: i64| if i < 0 { i + len } else { i };
    let start = from_end(start).max(0);
    let end = from_end(end).max(0).min(len - 1);
    (start <= end).then_some((start, end))
}

/// A range in the given unit as an inclusive range of bits.
fn bit_span(start: i64, end: i64, unit: BitUnit) -> (u64, u64) {
    match unit {
        BitUnit::Byte => (start as u64 * 8, end as u64 * 8 + 7),
        BitUnit::Bit => (start as u64, end as u64),
    }
}

/// The length of `value` in `unit`s.
fn units(value: &[u8], unit: BitUnit) -> i64 {
    let bytes = value.len() as i64;
    match unit {
        BitUnit::Byte => bytes,
        BitUnit::Bit => bytes * 8,
    }
}

/// Of byte `index`, the bits that lie within the inclusive bit range `from..=to`.
fn byte_mask(index: u64, from: u64, to: u64) -> u8 {
    let mut mask = 0xffu8;
    if index == from / 8 {
        mask &= 0xff >> (from % 8);
    }
    if index == to / 8 {
        mask &= !(0xff_u8.checked_shr((to % 8 + 1) as u32).unwrap_or(0));
    }
    mask
}

/// `BITCOUNT`: the set bits of `value` within `range` (`None`: all of it).
pub fn count_ones(value: &[u8], range: Option<BitRange>) -> i64 {
    let Some(BitRange { start, end, unit }) = range else {
        return popcount(value);
    };
    // Redis answers 0 here before converting either end.
    if start < 0 && end < 0 && start > end {
        return 0;
    }
    let Some((start, end)) = clamp(start, end, units(value, unit)) else {
        return 0;
    };
    let (from, to) = bit_span(start, end, unit);
    let (first, last) = (from / 8, to / 8);
    let inner = popcount(&value[first as usize..=last as usize]);
    let outside = |i: u64| (value[i as usize] & !byte_mask(i, from, to)).count_ones() as i64;
    match first == last {
        true => inner - outside(first),
        false => inner - outside(first) - outside(last),
    }
}

/// The set bits of `bytes`, eight bytes at a time.
fn popcount(bytes: &[u8]) -> i64 {
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    let in_words: u64 = words
        .map(|w| u64::from(u64::from_ne_bytes(w.try_into().expect("eight bytes")).count_ones()))
        .sum();
    let in_tail: u64 = tail.iter().map(|b| u64::from(b.count_ones())).sum();
    (in_words + in_tail) as i64
}

/// `BITPOS`: the first bit equal to `bit` within `range`, or -1. A string is followed by
/// zeros, so a 0 not found before the end is the first bit after it, unless the range named
/// an end: then nothing is found. An empty range finds nothing.
pub fn first_bit(value: &[u8], bit: bool, range: BitPosRange) -> i64 {
    let BitPosRange { start, end, unit } = range;
    let end_or_last = end.unwrap_or(units(value, unit) - 1);
    let Some((start, end_clamped)) = clamp(start, end_or_last, units(value, unit)) else {
        return -1;
    };
    let (from, to) = bit_span(start, end_clamped, unit);
    match find_bit(value, bit, from, to) {
        Some(at) => at as i64,
        None if bit || end.is_some() => -1,
        None => to as i64 + 1,
    }
}

/// The first bit equal to `bit` in `from..=to` (within `value`), a byte at a time.
fn find_bit(value: &[u8], bit: bool, from: u64, to: u64) -> Option<u64> {
    (from / 8..=to / 8).find_map(|i| {
        let byte = value[i as usize];
        let wanted = if bit { byte } else { !byte } & byte_mask(i, from, to);
        (wanted != 0).then(|| i * 8 + u64::from(wanted.leading_zeros()))
    })
}

/// `BITOP`: the result of `op` over `sources` (a missing key is an empty string), as long
/// as the longest source, shorter ones padded with zeros. `NOT` takes exactly one source.
pub fn bit_op(op: BitOp, sources: &[&[u8]]) -> Vec<u8> {
    let len = sources.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut result = vec![0u8; len];
    let Some((first, rest)) = sources.split_first() else {
        return result;
    };
    result[..first.len()].copy_from_slice(first);
    if op == BitOp::Not {
        result.iter_mut().for_each(|b| *b = !*b);
        return result;
    }
    for source in rest {
        let pairs = result.iter_mut().zip(source.iter());
        match op {
            BitOp::And => pairs.for_each(|(r, s)| *r &= s),
            BitOp::Or => pairs.for_each(|(r, s)| *r |= s),
            BitOp::Xor => pairs.for_each(|(r, s)| *r ^= s),
            BitOp::Not => unreachable!("NOT returned above"),
        }
        if op == BitOp::And {
            result[source.len()..].fill(0);
        }
    }
    result
}

/// The `bits` bits at `offset` as an unsigned integer (zeros past the end).
fn get_unsigned(value: &[u8], offset: u64, bits: u8) -> u64 {
    (0..u64::from(bits)).fold(0, |n, i| (n << 1) | u64::from(get_bit(value, offset + i)))
}

/// Writes the low `bits` bits of `n` at `offset`, which must be within `value`.
fn set_unsigned(value: &mut [u8], offset: u64, bits: u8, n: u64) {
    for i in 0..u64::from(bits) {
        set_bit(value, offset + i, (n >> (u64::from(bits) - 1 - i)) & 1 == 1);
    }
}

/// The field's value as an integer of its type: two's complement for signed types.
fn field_value(kind: BitFieldType, raw: u64) -> i128 {
    let bits = u32::from(kind.bits);
    if kind.signed && bits < 64 && raw & (1 << (bits - 1)) != 0 {
        i128::from(raw) - (1i128 << bits)
    } else if kind.signed {
        i128::from(raw as i64)
    } else {
        i128::from(raw)
    }
}

/// The smallest and largest values of a type.
fn type_bounds(kind: BitFieldType) -> (i128, i128) {
    let bits = u32::from(kind.bits);
    match kind.signed {
        true => (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1),
        false => (0, (1i128 << bits) - 1),
    }
}

/// What an out-of-range `target` becomes under `overflow`; `None` under `FAIL`.
fn overflowed(kind: BitFieldType, target: i128, overflow: Overflow) -> Option<i128> {
    let (min, max) = type_bounds(kind);
    if (min..=max).contains(&target) {
        return Some(target);
    }
    match overflow {
        Overflow::Sat => Some(target.clamp(min, max)),
        Overflow::Fail => None,
        Overflow::Wrap => {
            let modulus = 1i128 << kind.bits;
            let wrapped = target.rem_euclid(modulus);
            Some(if wrapped > max {
                wrapped - modulus
            } else {
                wrapped
            })
        }
    }
}

/// `BITFIELD ... GET`: the field's value.
pub fn bitfield_get(value: &[u8], op: &BitFieldOp) -> i64 {
    field_value(op.kind, get_unsigned(value, op.offset, op.kind.bits)) as i64
}

/// `BITFIELD ... SET|INCRBY` on `value` (already long enough for the field): the reply
/// (`SET`: the old value; `INCRBY`: the new one), or `None` when it overflows under `FAIL`
/// and nothing was written. A `SET` value is first read as Redis casts it: as an `i64` for
/// a signed type, as a `u64` for an unsigned one (so -1 overflows a `u8`).
pub fn bitfield_write(value: &mut [u8], op: &BitFieldOp) -> Option<i64> {
    let old = field_value(op.kind, get_unsigned(value, op.offset, op.kind.bits));
    let target = match op.action {
        BitFieldAction::Set(n) if op.kind.signed => i128::from(n),
        BitFieldAction::Set(n) => i128::from(n as u64),
        BitFieldAction::IncrBy(delta) => old + i128::from(delta),
        BitFieldAction::Get => return Some(old as i64),
    };
    let stored = overflowed(op.kind, target, op.overflow)?;
    set_unsigned(value, op.offset, op.kind.bits, stored as u64);
    Some(match op.action {
        BitFieldAction::Set(_) => old as i64,
        _ => stored as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(spec: &str, offset: u64, action: BitFieldAction, overflow: Overflow) -> BitFieldOp {
        let (signed, bits) = spec.split_at(1);
        BitFieldOp {
            action,
            kind: BitFieldType {
                signed: signed == "i",
                bits: bits.parse().unwrap(),
            },
            offset,
            overflow,
        }
    }

    fn incr(spec: &str, old: i64, delta: i64, overflow: Overflow) -> Option<i64> {
        let mut value = vec![0u8; 9];
        let set = field(spec, 3, BitFieldAction::Set(old), Overflow::Wrap);
        bitfield_write(&mut value, &set);
        let result = bitfield_write(
            &mut value,
            &field(spec, 3, BitFieldAction::IncrBy(delta), overflow),
        );
        let get = field(spec, 3, BitFieldAction::Get, Overflow::Wrap);
        // What is stored afterwards: the new value, or the old one when FAIL wrote nothing.
        assert_eq!(bitfield_get(&value, &get), result.unwrap_or(old));
        result
    }

    #[test]
    fn incrby_wraps_saturates_or_fails_at_the_type_bounds() {
        use Overflow::{Fail, Sat, Wrap};
        assert_eq!(incr("u2", 3, 1, Wrap), Some(0));
        assert_eq!(incr("u2", 3, 1, Sat), Some(3));
        assert_eq!(incr("u2", 3, 1, Fail), None);
        assert_eq!(incr("u2", 0, -1, Wrap), Some(3));
        assert_eq!(incr("u2", 0, -1, Sat), Some(0));
        assert_eq!(incr("i8", 127, 1, Wrap), Some(-128));
        assert_eq!(incr("i8", -128, -1, Wrap), Some(127));
        assert_eq!(incr("i8", 100, 100, Sat), Some(127));
        assert_eq!(incr("i8", -100, -100, Sat), Some(-128));
        assert_eq!(incr("i8", 100, 27, Fail), Some(127));
        assert_eq!(incr("i64", i64::MAX, 1, Wrap), Some(i64::MIN));
        assert_eq!(incr("i64", i64::MIN, -1, Sat), Some(i64::MIN));
        assert_eq!(incr("i64", i64::MAX, i64::MAX, Fail), None);
        assert_eq!(incr("u63", i64::MAX, 1, Wrap), Some(0));
        assert_eq!(incr("u63", 5, i64::MIN, Sat), Some(0));
        assert_eq!(incr("u63", 5, i64::MIN, Wrap), Some(5));
        assert_eq!(incr("i1", 0, 1, Wrap), Some(-1));
    }

    #[test]
    fn set_answers_the_old_value_and_casts_as_redis() {
        let mut value = vec![0u8; 2];
        let set = |n, overflow| field("u8", 4, BitFieldAction::Set(n), overflow);
        assert_eq!(
            bitfield_write(&mut value, &set(-1, Overflow::Wrap)),
            Some(0)
        );
        assert_eq!(value, [0x0f, 0xf0]);
        assert_eq!(bitfield_write(&mut value, &set(-1, Overflow::Fail)), None);
        assert_eq!(
            bitfield_write(&mut value, &set(300, Overflow::Sat)),
            Some(255)
        );
        assert_eq!(
            bitfield_write(&mut value, &set(300, Overflow::Wrap)),
            Some(255)
        );
        let get = field("u8", 4, BitFieldAction::Get, Overflow::Wrap);
        assert_eq!(bitfield_get(&value, &get), 44);
        let signed = field("i8", 4, BitFieldAction::Set(-129), Overflow::Sat);
        assert_eq!(bitfield_write(&mut value, &signed), Some(44));
        assert_eq!(
            bitfield_get(&value, &field("i8", 4, BitFieldAction::Get, Overflow::Wrap)),
            -128
        );
    }

    #[test]
    fn get_reads_zeros_past_the_end_and_sign_extends() {
        let value = [0xff];
        assert_eq!(
            bitfield_get(&value, &field("i4", 6, BitFieldAction::Get, Overflow::Wrap)),
            -4
        );
        assert_eq!(
            bitfield_get(&value, &field("u4", 6, BitFieldAction::Get, Overflow::Wrap)),
            12
        );
        assert_eq!(
            bitfield_get(
                &value,
                &field("i64", 0, BitFieldAction::Get, Overflow::Wrap)
            ),
            (0xffu64 << 56) as i64
        );
    }

    fn pos(value: &[u8], bit: bool, start: i64, end: Option<i64>, unit: BitUnit) -> i64 {
        first_bit(value, bit, BitPosRange { start, end, unit })
    }

    #[test]
    fn bitpos_finds_a_zero_after_the_string_only_without_an_end() {
        let ones = [0xff, 0xff];
        assert_eq!(pos(&ones, false, 0, None, BitUnit::Byte), 16);
        assert_eq!(pos(&ones, false, 0, Some(-1), BitUnit::Byte), -1);
        assert_eq!(pos(&ones, true, 2, None, BitUnit::Byte), -1);
        assert_eq!(pos(&[], false, 0, None, BitUnit::Byte), -1);
        assert_eq!(pos(&[0x00, 0x01], true, 0, None, BitUnit::Byte), 15);
    }

    #[test]
    fn bitpos_in_bits_ignores_the_bits_outside_the_range() {
        let value = [0b1000_0001, 0b1000_0000];
        assert_eq!(pos(&value, true, 1, Some(6), BitUnit::Bit), -1);
        assert_eq!(pos(&value, true, 1, Some(7), BitUnit::Bit), 7);
        assert_eq!(pos(&value, true, 8, Some(8), BitUnit::Bit), 8);
        assert_eq!(pos(&value, false, 0, Some(0), BitUnit::Bit), -1);
        assert_eq!(pos(&value, false, -9, Some(-1), BitUnit::Bit), 9);
        assert_eq!(pos(&value, true, -3, Some(-5), BitUnit::Bit), -1);
    }

    #[test]
    fn bitcount_counts_within_byte_or_bit_ranges() {
        let value = b"foobar";
        let count = |start, end, unit| count_ones(value, Some(BitRange { start, end, unit }));
        assert_eq!(count_ones(value, None), 26);
        assert_eq!(count(1, 1, BitUnit::Byte), 6);
        assert_eq!(count(5, 30, BitUnit::Bit), 17);
        assert_eq!(count(-1, -2, BitUnit::Byte), 0);
        assert_eq!(count(0, 100, BitUnit::Bit), 26);
        assert_eq!(count(9, 9, BitUnit::Bit), 1);
        assert_eq!(
            count_ones(
                &[],
                Some(BitRange {
                    start: 0,
                    end: -1,
                    unit: BitUnit::Bit
                })
            ),
            0
        );
    }

    #[test]
    fn bitop_pads_shorter_sources_with_zeros() {
        let (a, b): (&[u8], &[u8]) = (&[0xf0, 0xff], &[0x3c]);
        assert_eq!(bit_op(BitOp::And, &[a, b]), [0x30, 0x00]);
        assert_eq!(bit_op(BitOp::Or, &[b, a]), [0xfc, 0xff]);
        assert_eq!(bit_op(BitOp::Xor, &[a, b]), [0xcc, 0xff]);
        assert_eq!(bit_op(BitOp::Not, &[a]), [0x0f, 0x00]);
        assert_eq!(bit_op(BitOp::And, &[&[], &[]]), Vec::<u8>::new());
    }
}
