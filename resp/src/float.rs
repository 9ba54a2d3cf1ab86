//! Floating point text as Redis writes and reads it.
//!
//! - [`incr_by_float_text`]: `INCRBYFLOAT` (read, add, print), exactly as Redis 7.0 does it.
//! - [`check_float`]: Redis's `strtold`-based check of a float argument.
//! - [`parse_timeout_ms`]: a blocking command's timeout in seconds (`BLPOP`), as Redis reads it.
//! - [`format_double`]: `INCRBYFLOAT`'s printing (Redis's `ld2string(.., LD_STR_HUMAN)`:
//!   `%.17Lf` with trailing zeros removed) of a double.
//! - [`format_double_g17`]: a double reply (Redis 7.0's `%.17g`, in RESP2 and RESP3).
//! - [`parse_double`], [`parse_range_double`], [`format_double_d2string`]: sorted set scores
//!   as Redis 7.0 reads them (`string2d`, `zslParseRange`, both over C's `strtod`) and keeps
//!   them as text in a small sorted set (`d2string`, what `ZSCAN` shows).
//!
//! Redis computes `INCRBYFLOAT` in C `long double` (x87 80-bit, 64-bit mantissa, on x86-64)
//! and prints 17 decimals, so `10.5 + 0.1` shows as `10.6` but `1000.1` as
//! `1000.09999999999999998`, and `1e400` (beyond `f64`) is a valid value. Rust has no such
//! type, so the reading, adding and printing are Redis's own code in C (`c/longdouble.c`,
//! built by `build.rs`), behind the safe functions here.

use bytes::Bytes;

use crate::cmd::CommandError;

/// Redis's `MAX_LONG_DOUBLE_CHARS`: the buffer `INCRBYFLOAT` prints its result into. The
/// largest finite x87 `long double` prints in 4952 bytes, so every sum fits.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// The C side (`c/longdouble.c`).
#[allow(unsafe_code)]
mod ffi {
    use std::ffi::{c_char, c_int};

    unsafe extern "C" {
        fn ringcache_is_long_double(s: *const c_char, len: usize) -> c_int;
        fn ringcache_timeout_ms(s: *const c_char, len: usize, ms: *mut i64) -> c_int;
        fn ringcache_format_double_human(
            value: f64,
            out: *mut c_char,
            out_cap: usize,
            out_len: *mut usize,
        ) -> c_int;
        fn ringcache_strtod(s: *const c_char, used: *mut usize, erange: *mut c_int) -> f64;
        fn ringcache_incrbyfloat(
            cur: *const c_char,
            cur_len: usize,
            incr: *const c_char,
            incr_len: usize,
            out: *mut c_char,
            out_cap: usize,
            out_len: *mut usize,
        ) -> c_int;
    }

    /// Whether `s` is a float Redis's `string2ld` accepts.
    pub(super) fn is_long_double(s: &[u8]) -> bool {
        // SAFETY: the C function reads exactly `s.len()` bytes from `s.as_ptr()` (copying
        // them into its own buffer, and only when the length is below that buffer's size);
        // it keeps no pointer.
        unsafe { ringcache_is_long_double(s.as_ptr().cast(), s.len()) != 0 }
    }

    /// Redis's `getTimeoutFromObjectOrReply(.., UNIT_SECONDS)` of `s`, without the current
    /// time added: `Ok(milliseconds)` or `Err(status)` (1 not a float, 2 negative).
    pub(super) fn timeout_ms(s: &[u8]) -> Result<i64, c_int> {
        let mut ms = 0i64;
        // SAFETY: the C function reads exactly `s.len()` bytes from `s.as_ptr()` (copying
        // them into its own buffer, and only when the length is below that buffer's size);
        // it writes one `long long` (an `i64` on the targets built for) to `ms`, a live
        // local, and keeps no pointer.
        match unsafe { ringcache_timeout_ms(s.as_ptr().cast(), s.len(), &mut ms) } {
            0 => Ok(ms),
            status => Err(status),
        }
    }

    /// `ld2string(.., LD_STR_HUMAN)` of `value` into `out`: the length written, or `None`
    /// when `out` is too small.
    pub(super) fn format_double_human(value: f64, out: &mut [u8]) -> Option<usize> {
        let mut len = 0usize;
        // SAFETY: the C function writes at most `out.len()` bytes to `out` (snprintf with
        // that size, or 4 bytes after checking the size is at least 5) and one `usize` to
        // `len`, a live local; it keeps no pointer.
        let status = unsafe {
            ringcache_format_double_human(value, out.as_mut_ptr().cast(), out.len(), &mut len)
        };
        (status == 0 && len < out.len()).then_some(len)
    }

    /// C's `strtod` of `s` read as a C string, so up to its first NUL byte: the value, how
    /// many bytes it used, and whether `errno` was `ERANGE` (overflow or underflow).
    pub(super) fn strtod(s: &[u8]) -> (f64, usize, bool) {
        let end = memchr::memchr(0, s).unwrap_or(s.len());
        let mut text = Vec::with_capacity(end + 1);
        text.extend_from_slice(&s[..end]);
        text.push(0);
        let mut used = 0usize;
        let mut erange: c_int = 0;
        // SAFETY: `text` is NUL-terminated and the C function reads no further than that
        // NUL; it writes one `usize` to `used` and one `int` to `erange`, live locals, and
        // keeps no pointer.
        let value = unsafe { ringcache_strtod(text.as_ptr().cast(), &mut used, &mut erange) };
        (value, used, erange != 0)
    }

    /// Redis's `INCRBYFLOAT` of `incr` on `current` (`None`: no key), its text into `out`:
    /// `Ok(length)` or `Err(status)` (1 not a float, 2 NaN or infinity, 3 `out` too small).
    pub(super) fn incrbyfloat(
        current: Option<&[u8]>,
        incr: &[u8],
        out: &mut [u8],
    ) -> Result<usize, c_int> {
        let (cur_ptr, cur_len) = match current {
            Some(cur) => (cur.as_ptr().cast::<c_char>(), cur.len()),
            None => (std::ptr::null(), 0),
        };
        let mut len = 0usize;
        // SAFETY: `cur_ptr` is null (read as "no key") or valid for `cur_len` bytes (a
        // slice's pointer is never null, even when empty); `incr` is valid for `incr.len()`
        // bytes; the C function reads only those ranges, writes at most `out.len()` bytes to
        // `out` and one `usize` to `len`, a live local, and keeps no pointer.
        let status = unsafe {
            ringcache_incrbyfloat(
                cur_ptr,
                cur_len,
                incr.as_ptr().cast(),
                incr.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut len,
            )
        };
        match status {
            0 if len < out.len() => Ok(len),
            0 => Err(3),
            other => Err(other),
        }
    }
}

/// `INCRBYFLOAT`'s text for a double, as Redis's `ld2string(.., LD_STR_HUMAN)` prints the
/// value widened to `long double`: fixed notation, at most 17 decimals, no trailing zeros or
/// point, `-0` written `0`, `inf`/`-inf` for infinities.
///
/// `3e3` gives `3000`; `1e-20` gives `0`.
pub fn format_double(f: f64) -> String {
    // A double prints in at most 309 integer digits, a sign, a point and 17 decimals.
    let mut buf = [0u8; 400];
    let len = ffi::format_double_human(f, &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// C's `%.17g`, as Redis 7.0 writes a double reply (`ZSCORE` and the like) in RESP2 and
/// RESP3 (`addReplyDouble`): 17 significant digits, exponent form below 1e-4 and from 1e17, trailing zeros removed;
/// `inf`, `-inf`, `nan`.
pub fn format_double_g17(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f.is_nan() {
        return "nan".into();
    }
    // An integral value below 1e17 prints as its digits (fixed notation, the fraction
    // trimmed): the common score, without the exact 17-digit formatting below, which falls
    // back to bignum arithmetic and cost half of a `ZRANGE ... WITHSCORES`. `-0` is "-0".
    if f.fract() == 0.0 && f.abs() < 1e17 && !(f == 0.0 && f.is_sign_negative()) {
        return itoa::Buffer::new().format(f as i64).to_string();
    }
    format_g17_exactly(f)
}

/// [`format_double_g17`] of a finite `f` through Rust's exact formatting.
fn format_g17_exactly(f: f64) -> String {
    const PRECISION: i32 = 17;
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..PRECISION).contains(&exp) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (PRECISION - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{f:.decimals$}")).to_string()
    }
}

/// Redis 7.0's `d2string`: the text a small (listpack) sorted set keeps a score as, which
/// `ZSCAN` answers: an integral value within ±2^62 (`double2ll`) as an integer (so `-0` is
/// `0` and `1e17` is `100000000000000000`), anything else as [`format_double_g17`].
pub fn format_double_d2string(f: f64) -> String {
    // (double)(LLONG_MAX / 2): 2^62.
    const INTEGRAL_MAX: f64 = (i64::MAX / 2) as f64;
    if (-INTEGRAL_MAX..=INTEGRAL_MAX).contains(&f) && (f as i64) as f64 == f {
        return itoa::Buffer::new().format(f as i64).to_string();
    }
    format_double_g17(f)
}

/// A double argument as Redis 7.0's `string2d` reads it (`ZADD` scores, `ZINCRBY`,
/// `WEIGHTS`): C's `strtod` must use the whole string, which is not empty, does not start
/// with a blank and holds no NUL; overflow to ±inf and underflow to zero are refused (a
/// subnormal result is taken), and so is NaN. `inf`, `-infinity` and hexadecimal `0x1p3`
/// are floats.
pub fn parse_double(raw: &[u8]) -> Option<f64> {
    if raw.first().is_none_or(|&b| is_c_space(b)) {
        return None;
    }
    let (value, used, erange) = ffi::strtod(raw);
    let out_of_range = erange && (value.is_infinite() || value == 0.0);
    (used == raw.len() && !out_of_range && !value.is_nan()).then_some(value)
}

/// One bound of a score range as Redis 7.0's `zslParseRange` reads it, after its `(`: C's
/// `strtod` must stop at the end of the C string (the first NUL, so `1\0junk` is 1), which
/// lets through leading blanks, the empty string (0) and overflow (±inf); NaN is refused.
pub fn parse_range_double(raw: &[u8]) -> Option<f64> {
    let end = memchr::memchr(0, raw).unwrap_or(raw.len());
    let (value, used, _) = ffi::strtod(raw);
    (used == end && !value.is_nan()).then_some(value)
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Checks a float argument as Redis's `string2ld` does: `strtold` (C `long double`, so up
/// to about `1e4932`; decimal, hexadecimal like `0x10`, `inf`, `infinity`) must use the whole
/// string, which is 1 to 5119 bytes and does not start with a blank; NaN, overflow and
/// underflow to zero are refused.
///
/// # Errors
/// [`CommandError::NotFloat`].
pub fn check_float(raw: &[u8]) -> Result<(), CommandError> {
    if ffi::is_long_double(raw) {
        Ok(())
    } else {
        Err(CommandError::NotFloat)
    }
}

/// A blocking command's timeout (`BLPOP key ... timeout`), given in seconds as a float, in
/// milliseconds as Redis 7.0 reads it: [`check_float`]'s rules, then `ceil(seconds * 1000)`
/// in `long double`; `0` means no timeout. `0.0001` is 1 ms; `-0.0005` rounds up to 0 (no
/// timeout), as in Redis.
///
/// # Errors
/// [`CommandError::TimeoutNotFloat`]; [`CommandError::TimeoutNegative`] below 0, and for
/// values beyond Redis's `long long` milliseconds (`inf`, `1e400`), which Redis reports as
/// negative too.
pub fn parse_timeout_ms(raw: &[u8]) -> Result<u64, CommandError> {
    match ffi::timeout_ms(raw) {
        Ok(ms) => u64::try_from(ms).map_err(|_| CommandError::TimeoutNegative),
        Err(1) => Err(CommandError::TimeoutNotFloat),
        Err(_) => Err(CommandError::TimeoutNegative),
    }
}

/// `INCRBYFLOAT`: the new value's text for `current` (`None` when the key does not exist,
/// counted as 0) plus `delta`, as Redis 7.0 computes it in `long double` and prints it with
/// `ld2string(.., LD_STR_HUMAN)` (see [`format_double`]). `current` is checked before `delta`.
///
/// `10.5` plus `0.1` gives `10.6`; `1000.1` plus `0` gives `1000.09999999999999998`.
///
/// # Errors
/// [`CommandError::NotFloat`] when `current` or `delta` is not a float ([`check_float`]);
/// [`CommandError::NanOrInfinity`] when the sum is NaN or infinite.
pub fn incr_by_float_text(current: Option<&[u8]>, delta: &[u8]) -> Result<Bytes, CommandError> {
    let mut buf = vec![0u8; MAX_LONG_DOUBLE_CHARS];
    match ffi::incrbyfloat(current, delta, &mut buf) {
        Ok(len) => {
            buf.truncate(len);
            Ok(Bytes::from(buf))
        }
        Err(1) => Err(CommandError::NotFloat),
        // 2: NaN or infinity. 3 (no room) cannot happen: see MAX_LONG_DOUBLE_CHARS.
        Err(_) => Err(CommandError::NanOrInfinity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `INCRBYFLOAT` with each of `steps` on a key starting at `start` (`None`: no key);
    /// a failed step leaves the value unchanged, as in Redis. The replies, as text.
    fn run(start: Option<&str>, steps: &[&str]) -> Vec<String> {
        let mut value: Option<Bytes> = start.map(|s| Bytes::copy_from_slice(s.as_bytes()));
        let mut replies = Vec::new();
        for step in steps {
            match incr_by_float_text(value.as_deref(), step.as_bytes()) {
                Ok(text) => {
                    replies.push(String::from_utf8(text.to_vec()).unwrap());
                    value = Some(text);
                }
                Err(e) => replies.push(e.to_string()),
            }
        }
        replies
    }

    const NOT_FLOAT: &str = "ERR value is not a valid float";
    const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";

    const E400: &str = "10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880";
    const DBL_MAX: &str = "179769313486231569995921046774104434048386446944329178485314420765176628523124396354701868608387085564428793419425520689308708363451136055357897278026477617073498977686288394835618163294045594434929537447290627480669417384648879122776218333598953852832103282504751611691208117720159985926376802466863339536384";
    const TWO_DBL_MAX: &str = "359538626972463139991842093548208868096772893888658356970628841530353257046248792709403737216774171128857586838851041378617416726902272110715794556052955234146997955372576789671236326588091188869859074894581254961338834769297758245552436667197907705664206565009503223382416235440319971852753604933726679072768";
    const E308: &str = "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048";
    const TWO_E308: &str = "199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096";

    // Every expected reply below was captured from redis-server 7.0.15 (x86-64).

    #[test]
    fn timeouts_read_as_redis_7_0_reads_them() {
        let ms = |raw: &str| parse_timeout_ms(raw.as_bytes());
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("1"), Ok(1000));
        assert_eq!(ms("0.2"), Ok(200));
        // Rounded up: a tiny timeout still times out rather than blocking forever.
        assert_eq!(ms("0.0001"), Ok(1));
        assert_eq!(ms("1e-320"), Ok(1));
        assert_eq!(ms("0x10"), Ok(16_000));
        // Above -1 ms the product rounds up to 0: no timeout (redis-server blocks too).
        assert_eq!(ms("-0.0005"), Ok(0));
        assert_eq!(ms("9.2e15"), Ok(9_200_000_000_000_000_000));
        for negative in ["-1", "-inf", "inf", "1e400", "9.3e15"] {
            assert_eq!(
                ms(negative),
                Err(CommandError::TimeoutNegative),
                "{negative}"
            );
        }
        for not_float in ["abc", "", " 1", "1 ", "nan", "1e5000", "1e-5000"] {
            assert_eq!(
                ms(not_float),
                Err(CommandError::TimeoutNotFloat),
                "{not_float:?}"
            );
        }
    }

    #[test]
    fn long_double_noise_is_redis_s() {
        assert_eq!(
            run(Some("10.5"), &["0.1", "5.0e3", "5.0E3", "1e-10"]),
            [
                "10.6",
                "5010.60000000000000009",
                "10010.59999999999999964",
                "10010.60000000009999965"
            ]
        );
        assert_eq!(run(None, &["3.0e3"]), ["3000"]);
        assert_eq!(run(None, &["1000.1"]), ["1000.09999999999999998"]);
        assert_eq!(
            run(None, &["3.14159265358979323846"]),
            ["3.14159265358979324"]
        );
        assert_eq!(run(None, &["1e-20"]), ["0"]);
    }

    #[test]
    fn values_beyond_f64_are_long_doubles() {
        assert_eq!(
            run(None, &["12345678901234567890"]),
            ["12345678901234567890"]
        );
        assert_eq!(run(None, &["1e400"]), [E400]);
        assert_eq!(E400.len(), 401);
        // As a current value too.
        assert_eq!(run(Some("1e400"), &["1"]), [E400]);
        // Twice DBL_MAX is still finite in long double.
        assert_eq!(
            run(None, &["1.7976931348623157e308", "1.7976931348623157e308"]),
            [DBL_MAX, TWO_DBL_MAX]
        );
        assert_eq!(run(None, &["1e308", "1e308"]), [E308, TWO_E308]);
        // strtold overflow (ERANGE with HUGE_VAL) and underflow to zero are refused; a
        // subnormal long double is taken.
        assert_eq!(run(None, &["1e5000", "1e-5000"]), [NOT_FLOAT, NOT_FLOAT]);
        assert_eq!(run(None, &["4e-4951", "0x1p-16445"]), ["0", "0"]);
        let max = run(None, &["1e4932"]);
        assert_eq!(max[0].len(), 4933);
        assert!(max[0].starts_with("10000000000000000000060189493879638913238"));
        assert!(max[0].ends_with("86538418113791886622720"));
    }

    #[test]
    fn invalid_floats_are_refused_like_redis() {
        for bad in ["abc", " 1", "1 ", "nan", "", "1.5.5", "1\0"] {
            assert_eq!(run(None, &[bad]), [NOT_FLOAT], "{bad:?}");
            assert_eq!(check_float(bad.as_bytes()), Err(CommandError::NotFloat));
        }
        assert_eq!(run(None, &["inf", "-inf"]), [NAN_OR_INF, NAN_OR_INF]);
        assert_eq!(check_float(b"inf"), Ok(()));
        assert_eq!(check_float(b"-Infinity"), Ok(()));
        assert_eq!(check_float(b"1e400"), Ok(()));
        // Redis: 5119 zeros are 0, 5120 are too long.
        let long = "0".repeat(MAX_LONG_DOUBLE_CHARS);
        assert_eq!(run(None, &[&long[1..], &long]), ["0", NOT_FLOAT]);
    }

    #[test]
    fn current_value_is_checked_first() {
        assert_eq!(run(None, &["-0"]), ["0"]);
        assert_eq!(run(Some("0x10"), &["1"]), ["17"]);
        assert_eq!(run(None, &["0x10"]), ["16"]);
        assert_eq!(run(Some(""), &["1"]), [NOT_FLOAT]);
        assert_eq!(run(Some(" 1"), &["1"]), [NOT_FLOAT]);
        // An invalid current value wins over an infinite increment.
        assert_eq!(run(Some("abc"), &["inf"]), [NOT_FLOAT]);
    }

    #[test]
    fn format_double_prints_like_ld2string() {
        assert_eq!(format_double(3000.0), "3000");
        assert_eq!(format_double(1.0e-17), "0.00000000000000001");
        assert_eq!(format_double(1.5e-18), "0");
        assert_eq!(format_double(-1.0e-18), "0");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        // Exact, as Rust prints it too.
        assert_eq!(format_double(-f64::MAX), format!("{:.0}", -f64::MAX));
    }

    #[test]
    fn g17_formatting_matches_c_printf() {
        assert_eq!(format_double_g17(0.1), "0.10000000000000001");
        assert_eq!(format_double_g17(1.5), "1.5");
        assert_eq!(format_double_g17(3000.0), "3000");
        assert_eq!(format_double_g17(1e17), "1e+17");
        assert_eq!(format_double_g17(1e16), "10000000000000000");
        assert_eq!(format_double_g17(1.0e-5), "1.0000000000000001e-05");
        assert_eq!(format_double_g17(0.0001), "0.0001");
        assert_eq!(format_double_g17(-2.5e300), "-2.5000000000000001e+300");
        assert_eq!(format_double_g17(0.0), "0");
        assert_eq!(format_double_g17(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double_g17(-0.0), "-0");
        assert_eq!(format_double_g17(-7.0), "-7");
    }

    proptest::proptest! {
        /// The integral fast path prints what the exact formatting prints.
        #[test]
        fn integral_scores_print_as_exact_formatting_does(
            n in -99_999_999_999_999_999i64..99_999_999_999_999_999i64,
            shift in 0u32..60,
        ) {
            for f in [n as f64, (n >> shift) as f64, f64::from(n as i32)] {
                proptest::prop_assert_eq!(format_double_g17(f), format_g17_exactly(f));
            }
        }
    }

    // Expected values below were captured from redis-server 7.0.15 (ZADD, ZCOUNT, ZSCAN).

    #[test]
    fn scores_are_read_like_string2d() {
        assert_eq!(parse_double(b"1.5"), Some(1.5));
        assert_eq!(parse_double(b"0x1p3"), Some(8.0));
        assert_eq!(parse_double(b"0x10"), Some(16.0));
        assert_eq!(parse_double(b"1."), Some(1.0));
        assert_eq!(parse_double(b".5"), Some(0.5));
        assert_eq!(parse_double(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_double(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_double(b"4e-320"), Some(4e-320));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"nan",
            b"1\0",
            b"abc",
            b"1e",
        ] {
            assert_eq!(parse_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn range_bounds_are_read_like_zsl_parse_range() {
        assert_eq!(parse_range_double(b""), Some(0.0));
        assert_eq!(parse_range_double(b" 1"), Some(1.0));
        assert_eq!(parse_range_double(b"1\0abc"), Some(1.0));
        assert_eq!(parse_range_double(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_range_double(b"1e-400"), Some(0.0));
        assert_eq!(parse_range_double(b"-inf"), Some(f64::NEG_INFINITY));
        for bad in [&b"1 "[..], b"nan", b"a", b"[1"] {
            assert_eq!(parse_range_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn d2string_prints_integral_scores_as_integers_up_to_two_to_the_62() {
        assert_eq!(format_double_d2string(-0.0), "0");
        assert_eq!(format_double_d2string(1.5), "1.5");
        assert_eq!(format_double_d2string(1e17), "100000000000000000");
        assert_eq!(format_double_d2string(4e18), "4000000000000000000");
        assert_eq!(format_double_d2string(-4e18), "-4000000000000000000");
        assert_eq!(format_double_d2string(5e18), "5e+18");
        assert_eq!(format_double_d2string(-5e18), "-5e+18");
        assert_eq!(format_double_d2string(f64::INFINITY), "inf");
        assert_eq!(format_double_d2string(0.1), "0.10000000000000001");
    }
}
