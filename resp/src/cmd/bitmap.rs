//! Bitmap commands: `SETBIT`, `GETBIT`, `BITCOUNT`, `BITPOS`, `BITOP`, `BITFIELD`,
//! `BITFIELD_RO`. A bitmap is a string value; bit 0 is the most significant bit of the first
//! byte. The executor (`src/exec/bitmap.rs`) reads and writes it.
//!
//! # Format
//! ```text
//! SETBIT key offset 0|1        GETBIT key offset
//! BITCOUNT key [start end [BYTE|BIT]]
//! BITPOS key 0|1 [start [end [BYTE|BIT]]]
//! BITOP AND|OR|XOR|NOT destkey key [key ...]
//! BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
//!              [OVERFLOW WRAP|SAT|FAIL] ...
//! BITFIELD_RO key [GET type offset ...]
//! ```
//!
//! Redis 7.0 looks `BITCOUNT`'s key up before it reads the range (a missing key answers 0
//! whatever follows), and `BITPOS`'s after the bit but before the range; so those range
//! errors are kept in the command ([`BitmapCommand::BitCount`]'s `range`) for the executor
//! to answer only once it found a string.

use bytes::Bytes;

use super::Command;
use super::args::{ArgCursor, CommandError, STRING_BYTES_MAX, is, parse_i64};

/// A bitmap command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BitmapCommand {
    /// `SETBIT key offset 0|1`: answers the bit's old value.
    SetBit {
        /// The key.
        key: Bytes,
        /// The bit, below 2^32 (the default `proto-max-bulk-len` in bits).
        offset: u64,
        /// The value written.
        bit: bool,
    },
    /// `GETBIT key offset`
    GetBit {
        /// The key.
        key: Bytes,
        /// The bit, below 2^32.
        offset: u64,
    },
    /// `BITCOUNT key [start end [BYTE|BIT]]`
    BitCount {
        /// The key.
        key: Bytes,
        /// The range (`None`: the whole string), or the error Redis answers for it once the
        /// key holds a string.
        range: Result<Option<BitRange>, CommandError>,
    },
    /// `BITPOS key 0|1 [start [end [BYTE|BIT]]]`
    BitPos {
        /// The key.
        key: Bytes,
        /// The bit looked for.
        bit: bool,
        /// The range, or the error Redis answers for it once the key holds a string.
        range: Result<BitPosRange, CommandError>,
    },
    /// `BITOP op destkey key [key ...]`: answers the length stored.
    BitOp {
        /// The operation.
        op: BitOp,
        /// Where the result goes (replacing a value of any type).
        dest: Bytes,
        /// The operands, missing ones read as empty strings; exactly one for `NOT`.
        sources: Vec<Bytes>,
    },
    /// `BITFIELD key ...` and `BITFIELD_RO key GET ...`.
    BitField {
        /// The key.
        key: Bytes,
        /// The operations, in order; only `GET`s for `BITFIELD_RO`.
        ops: Vec<BitFieldOp>,
    },
}

/// Whether a range counts bytes or bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitUnit {
    /// `BYTE`, the default.
    Byte,
    /// `BIT`
    Bit,
}

/// A `BITCOUNT` range as given: inclusive, negative counts from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitRange {
    /// First byte or bit.
    pub start: i64,
    /// Last byte or bit.
    pub end: i64,
    /// What `start` and `end` count.
    pub unit: BitUnit,
}

/// A `BITPOS` range as given. Without an end, a search for a 0 bit past the last byte
/// finds the first bit after the string (a string is followed by zeros); with one, it finds
/// nothing (-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitPosRange {
    /// First byte or bit (0 when not given).
    pub start: i64,
    /// Last byte or bit; `None` for the end of the string.
    pub end: Option<i64>,
    /// What `start` and `end` count.
    pub unit: BitUnit,
}

impl BitPosRange {
    /// The whole string.
    pub const WHOLE: BitPosRange = BitPosRange {
        start: 0,
        end: None,
        unit: BitUnit::Byte,
    };
}

/// `BITOP`'s operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `XOR`
    Xor,
    /// `NOT`
    Not,
}

/// What `BITFIELD` does when a `SET` or `INCRBY` leaves the type's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// `WRAP` (the default): modulo 2^bits, two's complement for signed types.
    Wrap,
    /// `SAT`: the type's minimum or maximum.
    Sat,
    /// `FAIL`: nothing is written and the operation answers nil.
    Fail,
}

/// A `BITFIELD` integer type: `i1`..`i64` or `u1`..`u63`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitFieldType {
    /// `i` (two's complement) or `u`.
    pub signed: bool,
    /// Width: 1..=64 signed, 1..=63 unsigned (a `u64` could not be answered as a RESP
    /// integer).
    pub bits: u8,
}

/// Widest signed `BITFIELD` type.
pub const BITFIELD_SIGNED_BITS_MAX: i64 = 64;
/// Widest unsigned `BITFIELD` type.
pub const BITFIELD_UNSIGNED_BITS_MAX: i64 = 63;

/// What one `BITFIELD` operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitFieldAction {
    /// `GET`: answers the value.
    Get,
    /// `SET value`: answers the old value.
    Set(i64),
    /// `INCRBY increment`: answers the new value.
    IncrBy(i64),
}

/// One `BITFIELD` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitFieldOp {
    /// `GET`, `SET` or `INCRBY`.
    pub action: BitFieldAction,
    /// The integer type.
    pub kind: BitFieldType,
    /// The first bit (a `#n` offset already multiplied by the width).
    pub offset: u64,
    /// The `OVERFLOW` in force when the operation was given.
    pub overflow: Overflow,
}

impl BitFieldOp {
    /// Whether the operation writes (`SET`, `INCRBY`).
    pub fn writes(&self) -> bool {
        !matches!(self.action, BitFieldAction::Get)
    }

    /// The last bit the operation touches.
    pub fn last_bit(&self) -> u64 {
        self.offset + u64::from(self.kind.bits) - 1
    }
}

/// The last bit an offset may name: Redis refuses an offset whose byte is at or past
/// `proto-max-bulk-len` (512 MiB by default), so 2^32 - 1.
pub const BIT_OFFSET_MAX: u64 = STRING_BYTES_MAX * 8 - 1;

/// A bit offset, as Redis's `getBitOffsetFromArgument`: a non-negative integer whose byte is
/// below 512 MiB. With `hash_bits` (`BITFIELD`), `#n` means `n` times the type's width; the
/// product wraps as Redis's C multiplication does, so `#2305843009213693953` with a `u8` is
/// offset 8 there and here.
fn bit_offset(raw: &[u8], hash_bits: Option<u8>) -> Result<u64, CommandError> {
    let (digits, factor) = match (raw.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&raw[1..], i64::from(bits)),
        _ => (raw, 1),
    };
    let offset = parse_i64(digits)
        .map_err(|_| CommandError::BitOffset)?
        .wrapping_mul(factor);
    u64::try_from(offset)
        .ok()
        .filter(|&offset| offset <= BIT_OFFSET_MAX)
        .ok_or(CommandError::BitOffset)
}

/// `BYTE` or `BIT`, any case.
fn bit_unit(raw: &[u8]) -> Result<BitUnit, CommandError> {
    if is(raw, "BYTE") {
        Ok(BitUnit::Byte)
    } else if is(raw, "BIT") {
        Ok(BitUnit::Bit)
    } else {
        Err(CommandError::Syntax)
    }
}

/// # Format
/// `SETBIT key offset 0|1`: `ERR bit offset is not an integer or out of range`, then `ERR
/// bit is not an integer or out of range`.
pub(super) fn setbit(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let offset = bit_offset(&cur.required()?, None)?;
    let bit = match parse_i64(&cur.required()?) {
        Ok(0) => false,
        Ok(1) => true,
        _ => return Err(CommandError::BitValue),
    };
    Ok(Command::Bitmap(BitmapCommand::SetBit { key, offset, bit }))
}

/// # Format
/// `GETBIT key offset`
pub(super) fn getbit(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let offset = bit_offset(&cur.required()?, None)?;
    Ok(Command::Bitmap(BitmapCommand::GetBit { key, offset }))
}

/// # Format
/// `BITCOUNT key [start end [BYTE|BIT]]`: every range error waits for the key (see the
/// module docs).
pub(super) fn bitcount(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let range = bitcount_range(&cur.rest());
    Ok(Command::Bitmap(BitmapCommand::BitCount { key, range }))
}

/// Redis 7.0's order: start, end, then (unless the range is empty from both ends) the unit.
fn bitcount_range(args: &[Bytes]) -> Result<Option<BitRange>, CommandError> {
    let (start, end, unit) = match args {
        [] => return Ok(None),
        [start, end] => (start, end, None),
        [start, end, unit] => (start, end, Some(unit)),
        _ => return Err(CommandError::Syntax),
    };
    let start = parse_i64(start)?;
    let end = parse_i64(end)?;
    // Redis answers 0 for `-1 -2` before it looks at the unit, even a bad one; the range is
    // empty in either unit.
    let unit = match unit {
        Some(unit) if !(start < 0 && end < 0 && start > end) => bit_unit(unit)?,
        _ => BitUnit::Byte,
    };
    Ok(Some(BitRange { start, end, unit }))
}

/// # Format
/// `BITPOS key 0|1 [start [end [BYTE|BIT]]]`: `ERR value is not an integer or out of range`
/// or `ERR The bit argument must be 1 or 0.` at once; range errors wait for the key.
pub(super) fn bitpos(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let bit = match parse_i64(&cur.required()?)? {
        0 => false,
        1 => true,
        _ => return Err(CommandError::BitArgument),
    };
    let range = bitpos_range(&cur.rest());
    Ok(Command::Bitmap(BitmapCommand::BitPos { key, bit, range }))
}

/// Redis 7.0's order: start, the unit, then the end.
fn bitpos_range(args: &[Bytes]) -> Result<BitPosRange, CommandError> {
    let (start, end, unit) = match args {
        [] => return Ok(BitPosRange::WHOLE),
        [start] => (start, None, None),
        [start, end] => (start, Some(end), None),
        [start, end, unit] => (start, Some(end), Some(unit)),
        _ => return Err(CommandError::Syntax),
    };
    let start = parse_i64(start)?;
    let unit = unit.map_or(Ok(BitUnit::Byte), |u| bit_unit(u))?;
    let end = end.map(|e| parse_i64(e)).transpose()?;
    Ok(BitPosRange { start, end, unit })
}

/// # Format
/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: `ERR syntax error` for another operation,
/// `ERR BITOP NOT must be called with a single source key.`
pub(super) fn bitop(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let name = cur.required()?;
    let op = [
        ("AND", BitOp::And),
        ("OR", BitOp::Or),
        ("XOR", BitOp::Xor),
        ("NOT", BitOp::Not),
    ]
    .into_iter()
    .find(|(word, _)| is(&name, word))
    .map(|(_, op)| op)
    .ok_or(CommandError::Syntax)?;
    let dest = cur.required()?;
    let sources = cur.rest();
    if op == BitOp::Not && sources.len() != 1 {
        return Err(CommandError::BitopNotSingleSource);
    }
    Ok(Command::Bitmap(BitmapCommand::BitOp { op, dest, sources }))
}

/// # Format
/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...`: every operation is checked, in order, before the key is
/// read.
pub(super) fn bitfield(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let ops = bitfield_ops(&cur.rest())?;
    Ok(Command::Bitmap(BitmapCommand::BitField { key, ops }))
}

/// # Format
/// `BITFIELD_RO key [GET type offset ...]`: a `SET` or `INCRBY` is refused with `ERR
/// BITFIELD_RO only supports the GET subcommand` once all operations parsed.
pub(super) fn bitfield_ro(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let ops = bitfield_ops(&cur.rest())?;
    if ops.iter().any(BitFieldOp::writes) {
        return Err(CommandError::BitfieldReadOnly);
    }
    Ok(Command::Bitmap(BitmapCommand::BitField { key, ops }))
}

/// `BITFIELD`'s operations, as Redis's loop reads them: an operation missing arguments is
/// a syntax error; the type, then the offset, then the value are checked. The number of
/// operations is bounded by the request's arguments (the parser's limit).
fn bitfield_ops(args: &[Bytes]) -> Result<Vec<BitFieldOp>, CommandError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut at = 0;
    while at < args.len() {
        let (name, rest) = (&args[at], &args[at + 1..]);
        if is(name, "OVERFLOW") && !rest.is_empty() {
            overflow = overflow_kind(&rest[0])?;
            at += 2;
            continue;
        }
        let (value_args, value) = if is(name, "GET") && rest.len() >= 2 {
            (0, None)
        } else if is(name, "SET") && rest.len() >= 3 {
            (1, Some(false))
        } else if is(name, "INCRBY") && rest.len() >= 3 {
            (1, Some(true))
        } else {
            return Err(CommandError::Syntax);
        };
        let kind = bitfield_type(&rest[0])?;
        let offset = bit_offset(&rest[1], Some(kind.bits))?;
        let action = match value {
            None => BitFieldAction::Get,
            Some(false) => BitFieldAction::Set(parse_i64(&rest[2])?),
            Some(true) => BitFieldAction::IncrBy(parse_i64(&rest[2])?),
        };
        ops.push(BitFieldOp {
            action,
            kind,
            offset,
            overflow,
        });
        at += 3 + value_args;
    }
    Ok(ops)
}

/// `WRAP`, `SAT` or `FAIL`, any case.
fn overflow_kind(raw: &[u8]) -> Result<Overflow, CommandError> {
    [
        ("WRAP", Overflow::Wrap),
        ("SAT", Overflow::Sat),
        ("FAIL", Overflow::Fail),
    ]
    .into_iter()
    .find(|(word, _)| is(raw, word))
    .map(|(_, kind)| kind)
    .ok_or(CommandError::BitfieldOverflowType)
}

/// A type `i<bits>` or `u<bits>` (lowercase only, as Redis). Redis reads the width with C's
/// `strlen`, so it ends at a NUL byte: `u8\0x` is a `u8` there and here.
fn bitfield_type(raw: &[u8]) -> Result<BitFieldType, CommandError> {
    let (signed, max) = match raw.first() {
        Some(b'i') => (true, BITFIELD_SIGNED_BITS_MAX),
        Some(b'u') => (false, BITFIELD_UNSIGNED_BITS_MAX),
        _ => return Err(CommandError::BitfieldType),
    };
    let digits = &raw[1..];
    let digits = &digits[..memchr::memchr(0, digits).unwrap_or(digits.len())];
    match parse_i64(digits) {
        Ok(bits) if (1..=max).contains(&bits) => Ok(BitFieldType {
            signed,
            bits: bits as u8,
        }),
        _ => Err(CommandError::BitfieldType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').filter(|w| !w.is_empty()).map(b).collect()
    }

    #[test]
    fn bit_offsets_stop_at_the_last_bit_of_512_mib() {
        assert_eq!(bit_offset(b"4294967295", None), Ok(BIT_OFFSET_MAX));
        assert_eq!(
            bit_offset(b"4294967296", None),
            Err(CommandError::BitOffset)
        );
        assert_eq!(bit_offset(b"-1", None), Err(CommandError::BitOffset));
        assert_eq!(bit_offset(b"#1", None), Err(CommandError::BitOffset));
        assert_eq!(bit_offset(b"#3", Some(8)), Ok(24));
        assert_eq!(
            bit_offset(b"#536870912", Some(8)),
            Err(CommandError::BitOffset)
        );
    }

    #[test]
    fn a_hash_offset_wraps_as_redis_multiplies() {
        assert_eq!(bit_offset(b"#2305843009213693953", Some(8)), Ok(8));
        assert_eq!(bit_offset(b"#", Some(8)), Err(CommandError::BitOffset));
    }

    #[test]
    fn bitfield_types_are_lowercase_and_end_at_a_nul() {
        let t = |s: &[u8]| bitfield_type(s);
        assert_eq!(
            t(b"i64"),
            Ok(BitFieldType {
                signed: true,
                bits: 64
            })
        );
        assert_eq!(
            t(b"u8\0x"),
            Ok(BitFieldType {
                signed: false,
                bits: 8
            })
        );
        for bad in [&b"u64"[..], b"i65", b"u0", b"I8", b"i", b"x8", b""] {
            assert_eq!(t(bad), Err(CommandError::BitfieldType), "{bad:?}");
        }
    }

    #[test]
    fn bitcount_ranges_check_the_unit_only_for_a_range_that_may_be_empty_otherwise() {
        assert_eq!(bitcount_range(&args("")), Ok(None));
        assert_eq!(bitcount_range(&args("1")), Err(CommandError::Syntax));
        assert_eq!(
            bitcount_range(&args("1 x foo")),
            Err(CommandError::NotInteger)
        );
        assert_eq!(bitcount_range(&args("1 2 foo")), Err(CommandError::Syntax));
        assert_eq!(
            bitcount_range(&args("-1 -2 foo")).map(|r| r.map(|r| r.unit)),
            Ok(Some(BitUnit::Byte))
        );
        assert_eq!(
            bitcount_range(&args("0 -1 bit")).map(|r| r.map(|r| r.unit)),
            Ok(Some(BitUnit::Bit))
        );
    }

    #[test]
    fn bitpos_reads_the_unit_before_the_end() {
        assert_eq!(bitpos_range(&args("1 b c")), Err(CommandError::Syntax));
        assert_eq!(
            bitpos_range(&args("1 b bit")),
            Err(CommandError::NotInteger)
        );
        assert_eq!(bitpos_range(&args("a 2 c")), Err(CommandError::NotInteger));
        assert_eq!(
            bitpos_range(&args("7 15 BIT")),
            Ok(BitPosRange {
                start: 7,
                end: Some(15),
                unit: BitUnit::Bit
            })
        );
    }

    #[test]
    fn bitfield_operations_keep_the_overflow_in_force_when_given() {
        let ops = bitfield_ops(&args("INCRBY u2 0 1 OVERFLOW sat SET i8 #1 -3 GET u4 2")).unwrap();
        let overflows: Vec<Overflow> = ops.iter().map(|op| op.overflow).collect();
        assert_eq!(overflows, [Overflow::Wrap, Overflow::Sat, Overflow::Sat]);
        assert_eq!(ops[1].offset, 8);
        assert_eq!(ops[1].action, BitFieldAction::Set(-3));
        assert_eq!(
            bitfield_ops(&args("INCRBY u8 0 1 GET")),
            Err(CommandError::Syntax)
        );
        assert_eq!(
            bitfield_ops(&args("OVERFLOW foo GET u8 0")),
            Err(CommandError::BitfieldOverflowType)
        );
        assert_eq!(bitfield_ops(&args("OVERFLOW")), Err(CommandError::Syntax));
    }
}
