//! What each request is: the SET:GET draw, and the RESP encoding of the commands into a
//! reused buffer (no allocation per request).

use rand::Rng;
use rand::rngs::SmallRng;

use super::options::{Level, Ratio};

/// The operation of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `SET key value [CONSISTENCY level]`
    Set,
    /// `GET key [CONSISTENCY level]`
    Get,
}

/// Draws SET or GET with the probabilities of a [`Ratio`].
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    set: u32,
    total: u32,
}

impl Mix {
    /// The mix of `ratio` (which the options never let be 0:0).
    pub fn new(ratio: Ratio) -> Mix {
        assert!(ratio.set + ratio.get > 0, "an empty ratio");
        Mix {
            set: ratio.set,
            total: ratio.set + ratio.get,
        }
    }

    /// One operation; 1:0 and 0:1 draw nothing from `rng`.
    pub fn draw(&self, rng: &mut SmallRng) -> Op {
        if self.set == self.total {
            Op::Set
        } else if self.set == 0 || rng.random_range(0..self.total) >= self.set {
            Op::Get
        } else {
            Op::Set
        }
    }
}

/// Encodes the commands of a run: key names are the prefix followed by the key index in
/// decimal; the level suffixes are encoded once.
#[derive(Debug, Clone)]
pub struct Encoder {
    prefix: Vec<u8>,
    read_suffix: Vec<u8>,
    write_suffix: Vec<u8>,
}

impl Encoder {
    /// An encoder for keys `prefix<index>` and the given levels (absent: no suffix).
    pub fn new(prefix: &str, read_level: Option<Level>, write_level: Option<Level>) -> Encoder {
        let suffix = |level: Option<Level>| {
            let mut out = Vec::new();
            if let Some(level) = level {
                push_bulk(&mut out, b"CONSISTENCY");
                push_bulk(&mut out, level.name().as_bytes());
            }
            out
        };
        Encoder {
            prefix: prefix.as_bytes().to_vec(),
            read_suffix: suffix(read_level),
            write_suffix: suffix(write_level),
        }
    }

    /// Appends `GET <key> [CONSISTENCY <level>]` to `out`.
    pub fn push_get(&self, out: &mut Vec<u8>, key: u64) {
        let args = if self.read_suffix.is_empty() { 2 } else { 4 };
        push_header(out, b'*', args);
        push_bulk(out, b"GET");
        self.push_key(out, key);
        out.extend_from_slice(&self.read_suffix);
    }

    /// Appends `SET <key> <value> [CONSISTENCY <level>]` to `out`.
    pub fn push_set(&self, out: &mut Vec<u8>, key: u64, value: &[u8]) {
        let args = if self.write_suffix.is_empty() { 3 } else { 5 };
        push_header(out, b'*', args);
        push_bulk(out, b"SET");
        self.push_key(out, key);
        push_bulk(out, value);
        out.extend_from_slice(&self.write_suffix);
    }

    /// The name of key `key`, for messages.
    pub fn key_name(&self, key: u64) -> String {
        format!("{}{key}", String::from_utf8_lossy(&self.prefix))
    }

    fn push_key(&self, out: &mut Vec<u8>, key: u64) {
        let mut digits = [0u8; 20];
        let digits = decimal(key, &mut digits);
        push_header(out, b'$', (self.prefix.len() + digits.len()) as u64);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(digits);
        out.extend_from_slice(b"\r\n");
    }
}

/// `$<len>\r\n<bytes>\r\n`
fn push_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    push_header(out, b'$', bytes.len() as u64);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `<kind><n>\r\n`
fn push_header(out: &mut Vec<u8>, kind: u8, n: u64) {
    let mut digits = [0u8; 20];
    out.push(kind);
    out.extend_from_slice(decimal(n, &mut digits));
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, written at the end of `buf` (20 digits hold any u64).
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[start..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn set_share(ratio: Ratio, draws: u32) -> f64 {
        let mix = Mix::new(ratio);
        let mut rng = SmallRng::seed_from_u64(1);
        let sets = (0..draws).filter(|_| mix.draw(&mut rng) == Op::Set).count();
        sets as f64 / f64::from(draws)
    }

    #[test]
    fn one_to_ten_draws_a_set_one_time_in_eleven() {
        let share = set_share(Ratio { set: 1, get: 10 }, 110_000);
        // 10,000 SETs expected, standard deviation 95 (0.09 percentage points): allow 0.5.
        assert!((share - 1.0 / 11.0).abs() < 0.005, "SET share {share}");
    }

    #[test]
    fn one_to_zero_and_zero_to_one_are_exact() {
        assert_eq!(set_share(Ratio { set: 1, get: 0 }, 10_000), 1.0);
        assert_eq!(set_share(Ratio { set: 0, get: 1 }, 10_000), 0.0);
        assert_eq!(set_share(Ratio { set: 5, get: 0 }, 10_000), 1.0);
    }

    #[test]
    fn commands_are_encoded_as_resp_arrays_of_bulk_strings() {
        let plain = Encoder::new("key:", None, None);
        let mut out = Vec::new();
        plain.push_get(&mut out, 0);
        plain.push_set(&mut out, 12345, b"abc");
        assert_eq!(
            out,
            b"*2\r\n$3\r\nGET\r\n$5\r\nkey:0\r\n*3\r\n$3\r\nSET\r\n$9\r\nkey:12345\r\n$3\r\nabc\r\n"
        );
        let levels = Encoder::new("", Some(Level::One), Some(Level::Quorum));
        out.clear();
        levels.push_get(&mut out, u64::MAX);
        levels.push_set(&mut out, 7, b"");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "*4\r\n$3\r\nGET\r\n$20\r\n18446744073709551615\r\n$11\r\nCONSISTENCY\r\n$3\r\nONE\r\n\
             *5\r\n$3\r\nSET\r\n$1\r\n7\r\n$0\r\n\r\n$11\r\nCONSISTENCY\r\n$6\r\nQUORUM\r\n"
        );
        assert_eq!(plain.key_name(42), "key:42");
    }
}
