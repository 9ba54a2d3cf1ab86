//! Floating point text as Redis writes and reads it.
//!
//! - [`format_double`]: `INCRBYFLOAT`'s result (Redis's `ld2string(.., LD_STR_HUMAN)`:
//!   `%.17Lf` with trailing zeros removed).
//! - [`format_double_g17`]: a double reply in RESP2 (Redis 7.0's `%.17g`).
//! - [`parse_float`]: Redis's `strtold`-based check of a float argument.
//! - [`incr_by_float`]: the `INCRBYFLOAT` addition.
//!
//! Redis computes `INCRBYFLOAT` in x87 `long double` (64-bit mantissa) and prints 17 decimals,
//! so `0.1 + 0.2` shows as `0.3` there but `1000.1` shows as `1000.09999999999999998`. Rust has
//! no such type. Here the operands are taken as the shortest decimals that round-trip their
//! `f64` (what the client typed, in practice), added exactly in decimal, and the sum is rounded
//! to an `f64`; printing uses the shortest round-trip decimal, cut to 17 decimals. So the
//! results are what a user expects (`0.3`, `10.6`, `1000.1`) and agree with Redis except
//! where Redis shows `long double` noise in the last of its 17 decimals.

use crate::cmd::CommandError;

/// `INCRBYFLOAT`'s text for a value: fixed notation, at most 17 decimals, no trailing zeros
/// or point, `-0` written `0`, `inf`/`-inf` for infinities.
///
/// `3e3` gives `3000`; `10.5 + 0.1` gives `10.6`; `1e-20` gives `0`.
pub fn format_double(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f.is_nan() {
        return "nan".into();
    }
    // Rust's Display is the shortest decimal that round-trips, never in exponent form.
    let mut text = format!("{f}");
    if let Some(point) = text.find('.') {
        let decimals = text.len() - point - 1;
        if decimals > 17 {
            text = round_decimal_string(&text, point + 18);
        }
        if text.contains('.') {
            let trimmed = text.trim_end_matches('0').trim_end_matches('.');
            text.truncate(trimmed.len());
        }
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

/// Rounds a plain decimal string (`-?digits.digits`) half-up to its first `keep` characters.
fn round_decimal_string(text: &str, keep: usize) -> String {
    let bytes = text.as_bytes();
    let round_up = bytes.get(keep).is_some_and(|&d| d >= b'5');
    let mut out: Vec<u8> = bytes[..keep].to_vec();
    if round_up {
        let mut i = out.len();
        loop {
            if i == 0 || out[i - 1] == b'-' {
                out.insert(i, b'1');
                break;
            }
            i -= 1;
            match out[i] {
                b'.' => continue,
                b'9' => out[i] = b'0',
                d => {
                    out[i] = d + 1;
                    break;
                }
            }
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// C's `%.17g`, as Redis 7.0 writes a double reply (`ZSCORE` and the like) in RESP2:
/// 17 significant digits, exponent form below 1e-4 and from 1e17, trailing zeros removed;
/// `inf`, `-inf`, `nan`.
pub fn format_double_g17(f: f64) -> String {
    const PRECISION: i32 = 17;
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f.is_nan() {
        return "nan".into();
    }
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

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Parses a float argument as Redis's `getLongDoubleFromObject` does: `strtold` must use the
/// whole string, no leading blank, not NaN; `inf` is accepted. Hexadecimal floats (`0x10`),
/// which `strtold` takes, are accepted for integers only; values beyond the `f64` range
/// (Redis's `long double` goes to 1e4932) are refused.
///
/// # Errors
/// [`CommandError::NotFloat`].
pub fn parse_float(raw: &[u8]) -> Result<f64, CommandError> {
    let text = std::str::from_utf8(raw).map_err(|_| CommandError::NotFloat)?;
    let first = text.bytes().next().ok_or(CommandError::NotFloat)?;
    if first.is_ascii_whitespace() || first == 0x0b {
        return Err(CommandError::NotFloat);
    }
    let (negative, unsigned) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let value = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        let v = u64::from_str_radix(hex, 16).map_err(|_| CommandError::NotFloat)?;
        if hex.starts_with('+') || hex.starts_with('-') {
            return Err(CommandError::NotFloat);
        }
        v as f64
    } else {
        // Rust accepts what strtold does for decimals, plus "infinity"/"inf" in any case;
        // a sign was already taken off.
        if unsigned.starts_with(['+', '-']) {
            return Err(CommandError::NotFloat);
        }
        unsigned
            .parse::<f64>()
            .map_err(|_| CommandError::NotFloat)?
    };
    let value = if negative { -value } else { value };
    if value.is_nan() {
        return Err(CommandError::NotFloat);
    }
    // strtold sets ERANGE on overflow; a literal "inf" is fine.
    let literal_inf =
        unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity");
    if value.is_infinite() && !literal_inf {
        return Err(CommandError::NotFloat);
    }
    Ok(value)
}

/// `INCRBYFLOAT`'s addition: `value + delta` computed exactly on their shortest decimals,
/// rounded once to an `f64`, as explained in the module docs.
///
/// # Errors
/// [`CommandError::NanOrInfinity`] when the sum is not finite.
pub fn incr_by_float(value: f64, delta: f64) -> Result<f64, CommandError> {
    if !value.is_finite() || !delta.is_finite() {
        return Err(CommandError::NanOrInfinity);
    }
    let (a, b) = (Decimal::of(value), Decimal::of(delta));
    let sum = a.add(&b);
    let result: f64 = sum
        .to_string()
        .parse()
        .map_err(|_| CommandError::NanOrInfinity)?;
    if result.is_finite() {
        Ok(result)
    } else {
        Err(CommandError::NanOrInfinity)
    }
}

/// A signed decimal `digits × 10^exp`, digits most significant first.
#[derive(Debug)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exp: i32,
}

impl Decimal {
    /// The shortest decimal that round-trips `f` (finite).
    fn of(f: f64) -> Decimal {
        let text = format!("{:e}", f.abs());
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        Decimal {
            negative: f.is_sign_negative() && f != 0.0,
            digits,
            exp: exp - frac.len() as i32,
        }
    }

    /// The magnitude as an integer of digits aligned to exponent `exp` (≤ self.exp).
    fn aligned(&self, exp: i32) -> Vec<u8> {
        let mut d = self.digits.clone();
        d.extend(std::iter::repeat_n(0, (self.exp - exp) as usize));
        d
    }

    fn add(&self, other: &Decimal) -> Decimal {
        let exp = self.exp.min(other.exp);
        let (a, b) = (self.aligned(exp), other.aligned(exp));
        if self.negative == other.negative {
            return Decimal {
                negative: self.negative,
                digits: add_digits(&a, &b),
                exp,
            };
        }
        // Different signs: subtract the smaller magnitude from the larger.
        if cmp_digits(&a, &b) == std::cmp::Ordering::Less {
            Decimal {
                negative: other.negative,
                digits: sub_digits(&b, &a),
                exp,
            }
        } else {
            Decimal {
                negative: self.negative,
                digits: sub_digits(&a, &b),
                exp,
            }
        }
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        let sign = if self.negative { "-" } else { "" };
        write!(
            f,
            "{sign}{}e{}",
            if digits.is_empty() { "0" } else { &digits },
            self.exp
        )
    }
}

fn strip_leading_zeros(d: &[u8]) -> &[u8] {
    let first = d.iter().position(|&x| x != 0).unwrap_or(d.len());
    &d[first..]
}

fn cmp_digits(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (a, b) = (strip_leading_zeros(a), strip_leading_zeros(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let n = a.len().max(b.len());
    let mut out = vec![0u8; n + 1];
    let mut carry = 0;
    for i in 0..n {
        let x = if i < a.len() { a[a.len() - 1 - i] } else { 0 };
        let y = if i < b.len() { b[b.len() - 1 - i] } else { 0 };
        let s = x + y + carry;
        out[n - i] = s % 10;
        carry = s / 10;
    }
    out[0] = carry;
    out
}

/// `a - b` for `a ≥ b`.
fn sub_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = 0i8;
    for i in 0..a.len() {
        let x = a[a.len() - 1 - i] as i8;
        let y = if i < b.len() {
            b[b.len() - 1 - i] as i8
        } else {
            0
        };
        let mut d = x - y - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out[a.len() - 1 - i] = d as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(steps: &[&str]) -> String {
        let mut value = 0.0;
        for s in steps {
            value = incr_by_float(value, parse_float(s.as_bytes()).unwrap()).unwrap();
        }
        format_double(value)
    }

    #[test]
    fn incrbyfloat_results_print_like_redis() {
        // Each checked against redis-server 7.0.15.
        assert_eq!(incr(&["10.5", "0.1"]), "10.6");
        assert_eq!(incr(&["0.1", "0.2"]), "0.3");
        assert_eq!(incr(&["3.0e3"]), "3000");
        assert_eq!(incr(&["3.0e3", "5.0e3"]), "8000");
        assert_eq!(incr(&["1e-20"]), "0");
        assert_eq!(incr(&["-0.0"]), "0");
        assert_eq!(incr(&["-5.5", "5.5"]), "0");
        assert_eq!(incr(&["-5.5"]), "-5.5");
        assert_eq!(incr(&["1e17"]), "100000000000000000");
        assert_eq!(incr(&["+.5", "5."]), "5.5");
        assert_eq!(incr(&["0x10"]), "16");
    }

    #[test]
    fn incrbyfloat_differs_from_redis_only_by_long_double_noise() {
        // Redis: 1000.09999999999999998 and 3.14159265358979324.
        assert_eq!(incr(&["1000.1"]), "1000.1");
        assert_eq!(incr(&["3.14159265358979323846"]), "3.141592653589793");
    }

    #[test]
    fn format_double_rounds_to_17_decimals() {
        assert_eq!(format_double(1.0e-17), "0.00000000000000001");
        assert_eq!(format_double(1.5e-18), "0");
        assert_eq!(format_double(0.999_999_999_999_999_999), "1");
        assert_eq!(format_double(-1.0e-18), "0");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
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
    }

    #[test]
    fn float_arguments_are_checked_like_strtold() {
        assert_eq!(parse_float(b"1.5"), Ok(1.5));
        assert_eq!(parse_float(b"-1e3"), Ok(-1000.0));
        assert_eq!(parse_float(b"inf"), Ok(f64::INFINITY));
        assert_eq!(parse_float(b"-Infinity"), Ok(f64::NEG_INFINITY));
        for bad in [
            "", " 1", "1 ", "nan", "abc", "1e5000", "--1", "+-1", "1,5", "0x",
        ] {
            assert_eq!(
                parse_float(bad.as_bytes()),
                Err(CommandError::NotFloat),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn incr_by_float_refuses_infinity() {
        assert_eq!(
            incr_by_float(f64::MAX, f64::MAX),
            Err(CommandError::NanOrInfinity)
        );
        assert_eq!(
            incr_by_float(0.0, f64::INFINITY),
            Err(CommandError::NanOrInfinity)
        );
    }
}
