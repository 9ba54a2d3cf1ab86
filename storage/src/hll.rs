//! HyperLogLog values, byte for byte as Redis 7.0 stores them (`src/hyperloglog.c`): the
//! encodings, the hash, the estimator and the merge. No I/O; the commands are in
//! the main crate's `exec::hyperloglog`.
//!
//! An HLL is an ordinary string value, so `GET`, `TYPE`, `APPEND` and replication see plain
//! bytes. Redis's representation is kept exactly so that the bytes (and so the counts) are
//! the same on both servers after the same commands, and a dump moves between them.
//!
//! # Format
//! ```text
//! offset size
//!      0    4  magic "HYLL"
//!      4    1  encoding: 0 dense, 1 sparse (anything else is not an HLL)
//!      5    3  unused (kept as found; Redis copies them on promotion)
//!      8    8  cached cardinality, little-endian; the MSB of byte 15 set = cache invalid
//!     16    .  registers: dense = 16384 6-bit registers, LSB first (12288 bytes, exactly);
//!              sparse = opcodes, until the end of the value:
//!                00xxxxxx           ZERO:  xxxxxx+1 registers (1..=64) are 0
//!                01xxxxxx yyyyyyyy  XZERO: (xxxxxx<<8 | yyyyyyyy)+1 registers (1..=16384) are 0
//!                1vvvvvxx           VAL:   xx+1 registers (1..=4) are vvvvv+1 (1..=32)
//! ```
//! A sparse HLL is valid when its opcodes cover exactly 16384 registers. It becomes dense
//! when a register needs a value above 32, or when an update would make it longer than
//! [`SPARSE_BYTES_MAX`] (Redis's `hll-sparse-max-bytes`, default 3000).
//!
//! # Bounds
//! A dense value is exactly [`DENSE_BYTES`] (12,304). A sparse value grows by at most 3 bytes
//! per update and only while it stays within [`SPARSE_BYTES_MAX`]; otherwise it is promoted.
//! A value written by `SET` may be longer; the decoders walk it once and never allocate
//! more than a dense value for it. Bad bytes are an [`HllError`], never a panic.
//!
//! Redis reads one byte past the end of a value (the sds terminator, always 0) when an XZERO
//! opcode is cut short; [`byte_at`] reads that 0 too, so such values behave the same here.

/// Bytes of the header.
pub const HEADER_BYTES: usize = 16;
/// Registers of every HLL (Redis's `HLL_REGISTERS`, 2^P).
pub const REGISTERS: usize = 1 << P;
/// Bits of the hash that choose the register (`HLL_P`).
const P: u32 = 14;
/// Bits of the hash whose run of zeros is counted (`HLL_Q`).
const Q: u32 = 64 - P;
/// Bits per dense register.
const REGISTER_BITS: usize = 6;
/// The largest value a dense register holds.
const REGISTER_MAX: u8 = (1 << REGISTER_BITS) - 1;
/// Bytes of a dense value, header included (`HLL_DENSE_SIZE`).
pub const DENSE_BYTES: usize = HEADER_BYTES + REGISTERS * REGISTER_BITS / 8;
/// Redis's default `hll-sparse-max-bytes`: a sparse value that would grow past this is
/// promoted to dense. Not configurable here (docs/redis-compatibility.md).
pub const SPARSE_BYTES_MAX: usize = 3000;
/// The largest register value a sparse VAL opcode holds.
const SPARSE_VAL_MAX_VALUE: u8 = 32;
/// The longest run of one VAL opcode.
const SPARSE_VAL_MAX_LEN: usize = 4;
/// The longest run of one ZERO opcode.
const SPARSE_ZERO_MAX_LEN: usize = 64;
/// The longest run of one XZERO opcode.
const SPARSE_XZERO_MAX_LEN: usize = 16384;
/// Encoding byte of a dense HLL.
const ENCODING_DENSE: u8 = 0;
/// Encoding byte of a sparse HLL.
const ENCODING_SPARSE: u8 = 1;
/// MurmurHash64A's seed as Redis's `hllPatLen` passes it.
const HASH_SEED: u64 = 0xadc8_3b19;
/// `HLL_ALPHA_INF`, 0.5/ln(2).
#[allow(clippy::excessive_precision)]
const ALPHA_INF: f64 = 0.721_347_520_444_481_703_680;

const _: () = assert!(DENSE_BYTES == 12_304);
const _: () = assert!(SPARSE_BYTES_MAX < DENSE_BYTES);
const _: () = assert!(REGISTERS <= SPARSE_XZERO_MAX_LEN);

/// Why a value cannot be used as an HLL; nothing was changed because of it, except what
/// [`add`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HllError {
    /// Not an HLL: too short, no magic, an unknown encoding, or a dense one of the wrong
    /// length (Redis's `WRONGTYPE`).
    #[error("not a HyperLogLog value")]
    NotHll,
    /// An HLL header over sparse opcodes that do not cover exactly 16384 registers (Redis's
    /// `INVALIDOBJ`).
    #[error("corrupted HyperLogLog")]
    Corrupt,
}

/// The two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 16384 6-bit registers.
    Dense,
    /// Run-length opcodes.
    Sparse,
}

/// One byte per register: what merges build and multi-key counts read (Redis's `HLL_RAW`).
pub type Registers = [u8; REGISTERS];

/// A fresh set of registers, all 0 (on the heap: 16 KiB).
pub fn empty_registers() -> Box<Registers> {
    Box::new([0; REGISTERS])
}

/// Redis's `isHLLObjectOrReply`: whether `value` is an HLL, and its encoding. Sparse
/// opcodes are not checked here; the commands find a bad one when they walk it.
///
/// # Errors
/// [`HllError::NotHll`].
pub fn check(value: &[u8]) -> Result<Encoding, HllError> {
    if value.len() < HEADER_BYTES || &value[..4] != b"HYLL" {
        return Err(HllError::NotHll);
    }
    match value[4] {
        ENCODING_DENSE if value.len() == DENSE_BYTES => Ok(Encoding::Dense),
        ENCODING_SPARSE => Ok(Encoding::Sparse),
        _ => Err(HllError::NotHll),
    }
}

/// Redis's `createHLLObject`: an empty sparse HLL (one XZERO of 16384), cache 0 and valid.
pub fn new_sparse() -> Vec<u8> {
    let mut hll = Vec::with_capacity(HEADER_BYTES + 2);
    hll.extend_from_slice(b"HYLL");
    hll.push(ENCODING_SPARSE);
    hll.extend_from_slice(&[0; 11]);
    push_xzero(&mut hll, REGISTERS);
    hll
}

/// The cached cardinality, when the cache is valid.
pub fn cached_count(hll: &[u8]) -> Option<u64> {
    let card: [u8; 8] = hll.get(8..HEADER_BYTES)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

/// Stores `count` as the cached cardinality (valid).
pub fn set_cached_count(hll: &mut [u8], count: u64) {
    hll[8..HEADER_BYTES].copy_from_slice(&count.to_le_bytes());
}

/// Marks the cached cardinality invalid; its other bits stay as they were, as in Redis.
pub fn invalidate_cache(hll: &mut [u8]) {
    hll[15] |= 0x80;
}

// ------------------------------------------------------------------------------------------
// Hashing

/// MurmurHash2, 64-bit version (`MurmurHash64A`), as Redis computes it on any architecture.
pub fn murmur_hash64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    // Redis passes the length as a C int; elements are at most 512 MiB, so it fits.
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Redis's `hllPatLen`: the register an element falls in, and the length of the `0...01`
/// pattern of the rest of its hash (1..=Q+1).
pub fn pattern_len(element: &[u8]) -> (usize, u8) {
    let hash = murmur_hash64a(element, HASH_SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The bit at Q ends the run, so the count is at most Q+1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ------------------------------------------------------------------------------------------
// Dense registers

fn dense_get(registers: &[u8], index: usize) -> u8 {
    let byte = index * REGISTER_BITS / 8;
    let fb = (index * REGISTER_BITS) & 7;
    let b0 = u16::from(registers[byte]);
    // The last register reads one byte past the end in Redis (the sds terminator, 0).
    let b1 = u16::from(registers.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & u16::from(REGISTER_MAX)) as u8
}

fn dense_put(registers: &mut [u8], index: usize, value: u8) {
    let byte = index * REGISTER_BITS / 8;
    let fb = (index * REGISTER_BITS) & 7;
    let v = u16::from(value);
    let max = u16::from(REGISTER_MAX);
    registers[byte] &= !((max << fb) as u8);
    registers[byte] |= (v << fb) as u8;
    if let Some(next) = registers.get_mut(byte + 1) {
        *next &= !((max >> (8 - fb)) as u8);
        *next |= (v >> (8 - fb)) as u8;
    }
}

/// Redis's `hllDenseSet`: raises register `index` to `count`; whether it changed.
fn dense_set(hll: &mut [u8], index: usize, count: u8) -> bool {
    let registers = &mut hll[HEADER_BYTES..];
    if count > dense_get(registers, index) {
        dense_put(registers, index, count);
        true
    } else {
        false
    }
}

// ------------------------------------------------------------------------------------------
// Sparse opcodes

/// One sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `len` registers at 0, in one byte.
    Zero(usize),
    /// `len` registers at 0, in two bytes.
    XZero(usize),
    /// `len` registers at `value`.
    Val { value: u8, len: usize },
}

impl Op {
    /// Registers covered.
    fn span(self) -> usize {
        match self {
            Op::Zero(len) | Op::XZero(len) | Op::Val { len, .. } => len,
        }
    }

    /// Bytes taken.
    fn bytes(self) -> usize {
        match self {
            Op::XZero(_) => 2,
            Op::Zero(_) | Op::Val { .. } => 1,
        }
    }
}

/// Byte `at` of `bytes`, or 0 past the end (Redis reads the sds terminator there).
fn byte_at(bytes: &[u8], at: usize) -> u8 {
    bytes.get(at).copied().unwrap_or(0)
}

/// The opcode at `at` (which is within `bytes`).
fn op_at(bytes: &[u8], at: usize) -> Op {
    let b = bytes[at];
    match b & 0xc0 {
        0x00 => Op::Zero(usize::from(b & 0x3f) + 1),
        0x40 => Op::XZero(((usize::from(b & 0x3f) << 8) | usize::from(byte_at(bytes, at + 1))) + 1),
        _ => Op::Val {
            value: ((b >> 2) & 0x1f) + 1,
            len: usize::from(b & 0x3) + 1,
        },
    }
}

fn val_byte(value: u8, len: usize) -> u8 {
    debug_assert!((1..=SPARSE_VAL_MAX_VALUE).contains(&value));
    debug_assert!((1..=SPARSE_VAL_MAX_LEN).contains(&len));
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    debug_assert!((1..=SPARSE_XZERO_MAX_LEN).contains(&len));
    let l = len - 1;
    out.push(0x40 | (l >> 8) as u8);
    out.push((l & 0xff) as u8);
}

/// A run of zeros as Redis writes it when it splits one: ZERO up to 64, XZERO above.
fn push_zeros(out: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        out.push((len - 1) as u8);
    }
}

/// Walks the sparse opcodes after the header, calling `each(first_register, op)` for each
/// one that ends within the 16384 registers. Returns the registers covered by all of them:
/// the value is valid when that is exactly [`REGISTERS`]. One pass over the value.
///
/// The redis-server 7.0.15 the differential test runs against refuses an opcode that runs
/// past the last register in every walk (as the CVE-2025-32023 fixes do), so a valid value
/// is one whose opcodes add up to exactly 16384.
fn walk_sparse(hll: &[u8], mut each: impl FnMut(usize, Op)) -> usize {
    let mut at = HEADER_BYTES;
    let mut covered = 0usize;
    while at < hll.len() {
        let op = op_at(hll, at);
        if covered.saturating_add(op.span()) <= REGISTERS {
            each(covered, op);
        }
        covered = covered.saturating_add(op.span());
        at += op.bytes();
    }
    covered
}

/// Redis's `hllSparseToDense`: the dense value with the same registers and header (magic,
/// unused bytes and cached cardinality are copied). A dense value is left as it is.
///
/// # Errors
/// [`HllError::Corrupt`] when the opcodes do not cover exactly 16384 registers; `hll` is
/// unchanged.
pub fn to_dense(hll: &mut Vec<u8>) -> Result<(), HllError> {
    if hll[4] == ENCODING_DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_BYTES];
    dense[..HEADER_BYTES].copy_from_slice(&hll[..HEADER_BYTES]);
    dense[4] = ENCODING_DENSE;
    let covered = walk_sparse(hll, |first, op| {
        if let Op::Val { value, len } = op {
            for index in first..first + len {
                dense_put(&mut dense[HEADER_BYTES..], index, value);
            }
        }
    });
    if covered != REGISTERS {
        return Err(HllError::Corrupt);
    }
    *hll = dense;
    Ok(())
}

/// Redis's `hllSparseSet`: raises register `index` to `count` in a sparse HLL, splitting
/// and re-merging opcodes in place, or promoting to dense (see the module docs). Returns
/// whether the register changed. An in-place update invalidates the cached cardinality; a
/// promotion does not (the caller does, as in Redis).
///
/// # Errors
/// [`HllError::Corrupt`] when no opcode covers `index` or a promotion finds the opcodes
/// bad; `hll` is unchanged.
fn sparse_set(hll: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(hll, index, count);
    }
    // Step 1: the opcode covering `index`, the one before it and the one after.
    let end = hll.len();
    let mut at = HEADER_BYTES;
    let mut first = 0usize;
    let mut prev = None;
    let mut found = None;
    while at < end {
        let op = op_at(hll, at);
        if index < first + op.span() {
            found = Some(op);
            break;
        }
        prev = Some(at);
        at += op.bytes();
        first += op.span();
    }
    let Some(op) = found else {
        return Err(HllError::Corrupt);
    };
    let next = Some(at + op.bytes()).filter(|&n| n < end);

    // Step 2: the cases that change one byte.
    match op {
        Op::Val { value, .. } if value >= count => return Ok(false),
        Op::Val { len: 1, .. } | Op::Zero(1) => {
            hll[at] = val_byte(count, 1);
            merge_vals(hll, prev.unwrap_or(HEADER_BYTES));
            invalidate_cache(hll);
            return Ok(true);
        }
        _ => {}
    }

    // The general case: split the opcode into up to three (at most 5 bytes).
    let last = first + op.span() - 1;
    let mut seq = Vec::with_capacity(5);
    match op {
        Op::Zero(_) | Op::XZero(_) => {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_byte(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }
        Op::Val { value, .. } => {
            if index != first {
                seq.push(val_byte(value, index - first));
            }
            seq.push(val_byte(count, 1));
            if index != last {
                seq.push(val_byte(value, last - index));
            }
        }
    }

    // Step 3: put the sequence in place of the opcode, or promote if it would not fit.
    let old_bytes = op.bytes();
    if seq.len() > old_bytes && end + seq.len() - old_bytes > SPARSE_BYTES_MAX {
        return promote(hll, index, count);
    }
    // An XZERO cut short by the end of the value (its second byte was Redis's terminator)
    // is replaced as if it were whole; the value's new length then drops the sequence's
    // last byte, as Redis's does.
    let new_len = end + seq.len() - old_bytes;
    let tail: Vec<u8> = match next {
        Some(next) => hll[next..end].to_vec(),
        None => Vec::new(),
    };
    hll.truncate(at);
    hll.extend_from_slice(&seq);
    hll.extend_from_slice(&tail);
    hll.resize(new_len, 0);
    merge_vals(hll, prev.unwrap_or(HEADER_BYTES));
    invalidate_cache(hll);
    Ok(true)
}

/// Step 4 of Redis's `hllSparseSet`: from `from`, over at most 5 opcodes, merges adjacent
/// VAL opcodes of the same value whose runs fit one opcode.
fn merge_vals(hll: &mut Vec<u8>, from: usize) {
    let mut at = from;
    let mut scan = 5;
    while at < hll.len() && scan > 0 {
        scan -= 1;
        let b = hll[at];
        if b & 0x80 == 0 {
            at += if b & 0xc0 == 0x40 { 2 } else { 1 };
            continue;
        }
        if at + 1 < hll.len()
            && let (Op::Val { value: v1, len: l1 }, Op::Val { value: v2, len: l2 }) =
                (op_at(hll, at), op_at(hll, at + 1))
            && v1 == v2
            && l1 + l2 <= SPARSE_VAL_MAX_LEN
        {
            hll[at + 1] = val_byte(v1, l1 + l2);
            hll.remove(at);
            // Look again from the same place: the merged opcode may merge to its right.
            continue;
        }
        at += 1;
    }
}

/// The promotion at the end of Redis's `hllSparseSet`: to dense, then the register.
fn promote(hll: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    to_dense(hll)?;
    // A promotion happens only for a register that must change, so this is true.
    Ok(dense_set(hll, index, count))
}

// ------------------------------------------------------------------------------------------
// Commands' building blocks

/// Redis's `hllAdd`: adds one element to a checked HLL; whether a register changed. The
/// caller invalidates the cached cardinality when anything changed.
///
/// # Errors
/// [`HllError::Corrupt`] for a sparse HLL whose opcodes are bad. `hll` is unchanged by this
/// element (earlier elements' changes stay, as in Redis).
pub fn add(hll: &mut Vec<u8>, element: &[u8]) -> Result<bool, HllError> {
    let (index, count) = pattern_len(element);
    set_register(hll, index, count)
}

/// Whether adding `element` would change a checked dense HLL (always `true` for a sparse
/// one, whose change this does not work out): lets PFADD answer 0 without copying the
/// 12 KB value when no register grows, as most adds to a large HLL do.
pub fn dense_would_change(hll: &[u8], element: &[u8]) -> bool {
    if !matches!(check(hll), Ok(Encoding::Dense)) {
        return true;
    }
    let (index, count) = pattern_len(element);
    count > dense_get(&hll[HEADER_BYTES..], index)
}

/// Raises register `index` of a checked HLL to `count`, in its encoding (a sparse one may
/// be promoted); whether it changed.
///
/// # Errors
/// As [`add`].
pub fn set_register(hll: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    match check(hll)? {
        Encoding::Dense => Ok(dense_set(hll, index, count)),
        Encoding::Sparse => sparse_set(hll, index, count),
    }
}

/// Redis's `hllMerge`: raises each of `max` to the checked HLL's register.
///
/// # Errors
/// [`HllError::Corrupt`] for bad sparse opcodes (`max` may then be partly raised).
pub fn merge_into(max: &mut Registers, hll: &[u8]) -> Result<(), HllError> {
    match check(hll)? {
        Encoding::Dense => {
            for (index, m) in max.iter_mut().enumerate() {
                *m = (*m).max(dense_get(&hll[HEADER_BYTES..], index));
            }
            Ok(())
        }
        Encoding::Sparse => {
            let covered = walk_sparse(hll, |first, op| {
                if let Op::Val { value, len } = op {
                    for m in &mut max[first..first + len] {
                        *m = (*m).max(value);
                    }
                }
            });
            if covered == REGISTERS {
                Ok(())
            } else {
                Err(HllError::Corrupt)
            }
        }
    }
}

/// The HLL whose registers are the maximum of `a`'s and `b`'s, in the canonical encoding
/// ([`encode_canonical`]); `None` when either is not a well-formed HLL. How replicas merge
/// two writes of one HyperLogLog (`crate::record`): commutative, associative and idempotent
/// on registers, and equal registers give equal bytes.
pub fn merge_values(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let mut max = empty_registers();
    merge_into(&mut max, a).ok()?;
    merge_into(&mut max, b).ok()?;
    Some(encode_canonical(&max))
}

/// The one encoding a merge gives `registers`, in one pass: sparse (each run of equal
/// registers as the fewest opcodes) when every register fits a sparse VAL and the result
/// fits [`SPARSE_BYTES_MAX`], else dense; the cache marked invalid. Writes of one command
/// keep Redis's own bytes; only merged values are re-encoded.
pub fn encode_canonical(registers: &Registers) -> Vec<u8> {
    let mut hll = sparse_of(registers).unwrap_or_else(|| {
        let mut dense = vec![0u8; DENSE_BYTES];
        dense[..4].copy_from_slice(b"HYLL");
        dense[4] = ENCODING_DENSE;
        for (index, &value) in registers.iter().enumerate().filter(|(_, v)| **v > 0) {
            dense_put(&mut dense[HEADER_BYTES..], index, value.min(REGISTER_MAX));
        }
        dense
    });
    invalidate_cache(&mut hll);
    hll
}

/// The sparse encoding of `registers`, `None` when a register is too large for it or it
/// would be longer than [`SPARSE_BYTES_MAX`].
fn sparse_of(registers: &Registers) -> Option<Vec<u8>> {
    if registers.iter().any(|&v| v > SPARSE_VAL_MAX_VALUE) {
        return None;
    }
    let mut out = Vec::with_capacity(HEADER_BYTES + 64);
    out.extend_from_slice(b"HYLL");
    out.push(ENCODING_SPARSE);
    out.extend_from_slice(&[0; 11]);
    let mut at = 0;
    while at < REGISTERS {
        let value = registers[at];
        let run = registers[at..].iter().take_while(|&&v| v == value).count();
        if value == 0 {
            let mut left = run;
            while left > 0 {
                let len = left.min(SPARSE_XZERO_MAX_LEN);
                push_zeros(&mut out, len);
                left -= len;
            }
        } else {
            let mut left = run;
            while left > 0 {
                let len = left.min(SPARSE_VAL_MAX_LEN);
                out.push(val_byte(value, len));
                left -= len;
            }
        }
        if out.len() > SPARSE_BYTES_MAX {
            return None;
        }
        at += run;
    }
    Some(out)
}

#[cfg(test)]
mod canonical_tests {
    use super::*;

    #[test]
    fn the_canonical_encoding_holds_the_registers_it_was_given() {
        for registers in [
            vec![(0usize, 1u8), (1, 1), (2, 1), (3, 1), (4, 1), (9000, 32)],
            vec![(16383, 5)],
            vec![(7, 40)],
            (0..2000).map(|i| (i * 8, (i % 30 + 1) as u8)).collect(),
        ] {
            let mut max = empty_registers();
            for (index, value) in registers {
                max[index] = value;
            }
            let hll = encode_canonical(&max);
            let mut back = empty_registers();
            merge_into(&mut back, &hll).unwrap();
            assert_eq!(back[..], max[..]);
            assert_eq!(cached_count(&hll), None, "cache invalid");
            assert_eq!(count(&hll).unwrap(), count_registers(&max));
        }
    }
}

/// Redis's `hllCount` of a checked HLL, ignoring the cache.
///
/// # Errors
/// [`HllError::Corrupt`] for sparse opcodes that do not cover exactly 16384 registers.
pub fn count(hll: &[u8]) -> Result<u64, HllError> {
    let mut histogram = [0u64; 64];
    match check(hll)? {
        Encoding::Dense => {
            for index in 0..REGISTERS {
                histogram[usize::from(dense_get(&hll[HEADER_BYTES..], index))] += 1;
            }
        }
        Encoding::Sparse => {
            let covered = walk_sparse(hll, |_, op| {
                let value = match op {
                    Op::Zero(_) | Op::XZero(_) => 0,
                    Op::Val { value, .. } => value,
                };
                histogram[usize::from(value)] += op.span() as u64;
            });
            if covered != REGISTERS {
                return Err(HllError::Corrupt);
            }
        }
    }
    Ok(estimate(&histogram))
}

/// Redis's `hllCount` of one-byte registers (`HLL_RAW`), for merged HLLs.
pub fn count_registers(registers: &Registers) -> u64 {
    let mut histogram = [0u64; 64];
    for &r in registers.iter() {
        histogram[usize::from(r & 63)] += 1;
    }
    estimate(&histogram)
}

/// Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
/// sketches", arXiv:1702.01284), operation for operation as Redis 7.0 computes it, so the
/// rounding is the same.
fn estimate(histogram: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - histogram[q + 1] as f64) / m);
    for j in (1..=q).rev() {
        z += histogram[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histogram[0] as f64 / m);
    llround_as_u64(ALPHA_INF * m * m / z)
}

/// Redis's `(uint64_t) E` with `E = llroundl(x)` on x86-64: half away from zero (as
/// [`f64::round`]); a result outside `i64` (an infinite estimate, when every register is
/// above Q) is `LLONG_MIN`, which the conversion to `uint64_t` leaves as 2^63. The reply
/// then shows it as a `long long`, and the cached copy has its invalid bit set, as in Redis.
fn llround_as_u64(x: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let rounded = x.round();
    if rounded.is_nan() || !(-TWO_63..TWO_63).contains(&rounded) {
        return 1 << 63;
    }
    rounded as i64 as u64
}

/// Ertl's sigma, as Redis's `hllSigma`; converges in a few dozen steps for x < 1.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

/// Ertl's tau, as Redis's `hllTau` (whose `pow(1 - x, 2)` compilers turn into a product).
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hll_of(elements: &[Vec<u8>]) -> Vec<u8> {
        let mut hll = new_sparse();
        for e in elements {
            add(&mut hll, e).unwrap();
        }
        hll
    }

    fn registers_of(hll: &[u8]) -> Box<Registers> {
        let mut max = empty_registers();
        merge_into(&mut max, hll).unwrap();
        max
    }

    #[test]
    fn an_empty_hll_is_one_xzero_of_every_register_and_counts_zero() {
        let hll = new_sparse();
        assert_eq!(hll, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert_eq!(check(&hll), Ok(Encoding::Sparse));
        assert_eq!(cached_count(&hll), Some(0));
        assert_eq!(count(&hll), Ok(0));
    }

    #[test]
    fn three_elements_give_the_bytes_redis_stores() {
        // redis-server 7.0.15: PFADD k a b c; GET k; PFCOUNT k; GET k.
        let mut hll = hll_of(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        invalidate_cache(&mut hll);
        let registers = b"`\xf3\x80P\xb1\x84K\xfb\x80BZ";
        let mut expected = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
        expected.extend_from_slice(registers);
        assert_eq!(hll, expected);
        assert_eq!(cached_count(&hll), None);
        assert_eq!(count(&hll), Ok(3));
        set_cached_count(&mut hll, 3);
        assert_eq!(&hll[8..16], b"\x03\0\0\0\0\0\0\0");
    }

    #[test]
    fn adding_an_element_twice_changes_nothing_the_second_time() {
        let mut hll = new_sparse();
        assert_eq!(add(&mut hll, b"x"), Ok(true));
        let once = hll.clone();
        assert_eq!(add(&mut hll, b"x"), Ok(false));
        assert_eq!(hll, once);
    }

    #[test]
    fn dense_would_change_agrees_with_add() {
        let mut hll = hll_of(
            &(0..4000)
                .map(|i| format!("e{i}").into_bytes())
                .collect::<Vec<_>>(),
        );
        assert_eq!(check(&hll), Ok(Encoding::Dense));
        for i in 0..20_000 {
            let element = format!("f{i}");
            let predicted = dense_would_change(&hll, element.as_bytes());
            assert_eq!(
                add(&mut hll, element.as_bytes()),
                Ok(predicted),
                "{element}"
            );
        }
        assert!(
            dense_would_change(&new_sparse(), b"x"),
            "a sparse HLL is not predicted"
        );
    }

    #[test]
    fn a_sparse_hll_becomes_dense_past_the_sparse_limit() {
        let mut hll = new_sparse();
        let mut promoted_at = None;
        for i in 0..5000 {
            add(&mut hll, format!("e{i}").as_bytes()).unwrap();
            match check(&hll).unwrap() {
                Encoding::Sparse => assert!(hll.len() <= SPARSE_BYTES_MAX),
                Encoding::Dense => {
                    promoted_at.get_or_insert(i);
                    assert_eq!(hll.len(), DENSE_BYTES);
                }
            }
        }
        assert!(promoted_at.is_some_and(|i| (1000..4000).contains(&i)));
        let estimate = count(&hll).unwrap();
        assert!((4800..5200).contains(&estimate), "{estimate}");
    }

    #[test]
    fn a_register_above_32_promotes_a_sparse_hll() {
        let mut hll = new_sparse();
        assert_eq!(set_register(&mut hll, 5, 40), Ok(true));
        assert_eq!(check(&hll), Ok(Encoding::Dense));
        assert_eq!(registers_of(&hll)[5], 40);
        assert_eq!(registers_of(&hll).iter().filter(|&&r| r != 0).count(), 1);
    }

    #[test]
    fn every_register_above_q_counts_as_redis_overflowing_llroundl() {
        let mut hll = new_sparse();
        to_dense(&mut hll).unwrap();
        for index in 0..REGISTERS {
            set_register(&mut hll, index, 63).unwrap();
        }
        assert_eq!(count(&hll), Ok(1 << 63));
    }

    #[test]
    fn values_that_are_not_hlls_are_refused_by_the_header_check() {
        assert_eq!(check(b"hello"), Err(HllError::NotHll));
        assert_eq!(
            check(b"HYLL\x01\0\0\0\0\0\0\0\0\0\0"),
            Err(HllError::NotHll)
        );
        assert_eq!(
            check(b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0\x7f\xff"),
            Err(HllError::NotHll)
        );
        assert_eq!(
            check(b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\0\x7f\xff"),
            Err(HllError::NotHll)
        );
    }

    #[test]
    fn sparse_opcodes_that_do_not_cover_every_register_are_corrupt() {
        for body in [
            &b""[..],
            b"\x7f\xfe",
            b"\x7f\xff\x80",
            b"\x7f\xff\x00",
            b"\x7f\xfe\x81",
        ] {
            let mut hll = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
            hll.extend_from_slice(body);
            assert_eq!(count(&hll), Err(HllError::Corrupt), "{body:?}");
            assert_eq!(
                merge_into(&mut empty_registers(), &hll),
                Err(HllError::Corrupt)
            );
            let before = hll.clone();
            assert_eq!(to_dense(&mut hll), Err(HllError::Corrupt));
            assert_eq!(hll, before);
        }
    }

    fn elements() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..400)
    }

    proptest! {
        #[test]
        fn sparse_and_dense_of_the_same_elements_have_the_same_registers_and_count(
            elements in elements()
        ) {
            let sparse = hll_of(&elements);
            let mut dense = new_sparse();
            to_dense(&mut dense).unwrap();
            for e in &elements {
                add(&mut dense, e).unwrap();
            }
            prop_assert_eq!(registers_of(&sparse), registers_of(&dense));
            prop_assert_eq!(count(&sparse), count(&dense));
            prop_assert_eq!(count(&sparse).unwrap(), count_registers(&registers_of(&dense)));
            let mut promoted = sparse.clone();
            to_dense(&mut promoted).unwrap();
            prop_assert_eq!(&promoted[HEADER_BYTES..], &dense[HEADER_BYTES..]);
        }

        #[test]
        fn merging_two_hlls_equals_adding_the_union(a in elements(), b in elements()) {
            let mut max = registers_of(&hll_of(&a));
            merge_into(&mut max, &hll_of(&b)).unwrap();
            let union: Vec<Vec<u8>> = a.iter().chain(&b).cloned().collect();
            let all = hll_of(&union);
            prop_assert_eq!(&max, &registers_of(&all));
            prop_assert_eq!(count_registers(&max), count(&all).unwrap());
            // Writing the merge into an empty HLL register by register, as PFMERGE does.
            let mut dest = new_sparse();
            for (index, &m) in max.iter().enumerate().filter(|(_, m)| **m != 0) {
                set_register(&mut dest, index, m).unwrap();
            }
            prop_assert_eq!(registers_of(&dest), registers_of(&all));
        }

        #[test]
        fn arbitrary_bytes_after_a_header_never_panic_nor_grow_unbounded(
            encoding in 0u8..3,
            body in prop::collection::vec(any::<u8>(), 0..600),
            index in 0..REGISTERS,
            value in 1u8..64,
        ) {
            let mut hll = b"HYLL".to_vec();
            hll.push(encoding);
            hll.extend_from_slice(&[0; 11]);
            hll.extend_from_slice(&body);
            if check(&hll).is_err() {
                return Ok(());
            }
            let _ = count(&hll);
            let _ = merge_into(&mut empty_registers(), &hll);
            let mut dense = hll.clone();
            if to_dense(&mut dense).is_ok() {
                prop_assert_eq!(dense.len(), DENSE_BYTES);
            }
            let before = hll.len();
            match set_register(&mut hll, index, value) {
                Ok(_) => prop_assert!(
                    hll.len() == DENSE_BYTES || hll.len() <= before.max(SPARSE_BYTES_MAX)
                ),
                Err(_) => prop_assert_eq!(hll.len(), before),
            }
        }
    }
}
