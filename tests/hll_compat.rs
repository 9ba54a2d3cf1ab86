//! Differential test of the HyperLogLog commands: the same `PFADD`, `PFCOUNT` and `PFMERGE`
//! lines to a fresh redis-server and a fresh ringcache, over RESP2 and again over RESP3, with
//! a `GET` of the HLL's bytes after the steps that may change them, so that the sparse and
//! dense encodings, the promotion between them and the cached cardinality must be the same
//! byte for byte, not only the counts.
//!
//! The script is [`CORPUS`] (hand-written cases: errors, corrupt values, APPEND and SETRANGE
//! over an HLL) followed by generated sections: thousands of elements one command at a time
//! and in batches (through the promotion to dense), crafted sparse values with unusual but
//! valid opcode sequences, crafted dense values with every register value up to 63, random
//! bytes behind an HLL header, and merges of all of them. The generator is seeded, so a run
//! repeats exactly.

mod common;

use common::{Compare, Script, Step, run_side_by_side};

/// Hand-written cases. `\x..` escapes build HLL headers: `HYLL`, the encoding byte, 3 unused
/// bytes, the 8-byte cached cardinality (MSB of its last byte: cache invalid), registers.
const CORPUS: &str = r#"
# ---------------------------------------------------------------- PFADD basics
PFADD h:a
GET h:a
TYPE h:a
STRLEN h:a
PFADD h:a
PFCOUNT h:a
GET h:a
PFADD h:a foo
PFADD h:a foo
PFADD h:a foo bar baz
PFADD h:a bar baz
GET h:a
PFCOUNT h:a
GET h:a
PFCOUNT h:a
PFADD h:a qux foo
GET h:a
PFCOUNT h:a
PFADD h:a "" "\x00" "\xff\xfe" "a b c" 12345 -1
GET h:a
PFCOUNT h:a
EXISTS h:a
pfadd h:a FOO
PfCount h:a
# ---------------------------------------------------------------- PFCOUNT
PFCOUNT h:missing
EXISTS h:missing
PFCOUNT h:missing h:missing2
PFCOUNT h:a h:missing
PFCOUNT h:a h:a
PFADD h:b a b c d e f g h i j
PFCOUNT h:a h:b
PFCOUNT h:b h:a h:missing
GET h:a
GET h:b
# ---------------------------------------------------------------- PFMERGE
PFMERGE h:m1 h:a h:b
GET h:m1
PFCOUNT h:m1
GET h:m1
PFMERGE h:m1 h:a
GET h:m1
PFMERGE h:b h:a
GET h:b
PFCOUNT h:b
PFMERGE h:alone
GET h:alone
PFMERGE h:m2 h:missing
EXISTS h:m2
GET h:m2
PFMERGE h:m3 h:missing h:a h:missing
GET h:m3
PFMERGE h:m3 h:m3
GET h:m3
# ---------------------------------------------------------------- expiry is kept
PFADD h:ttl a
EXPIRE h:ttl 1000
PFADD h:ttl b
TTL h:ttl
PFCOUNT h:ttl
TTL h:ttl
PFMERGE h:ttl h:a
TTL h:ttl
# ---------------------------------------------------------------- not an HLL: WRONGTYPE
SET h:str hello
PFADD h:str a
PFADD h:str
PFCOUNT h:str
PFCOUNT h:a h:str
PFCOUNT h:str h:missing
PFMERGE h:str h:a
PFMERGE h:d1 h:str
EXISTS h:d1
PFMERGE h:d1 h:a h:str
EXISTS h:d1
GET h:str
SET h:int 12345
PFADD h:int a
PFCOUNT h:int
SET h:empty ""
PFADD h:empty x
SET h:magic HYLL
PFCOUNT h:magic
SET h:15 "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
PFCOUNT h:15
SET h:lower "hyll\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
PFCOUNT h:lower
SET h:enc2 "HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
PFADD h:enc2 a
PFCOUNT h:enc2
SET h:encff "HYLL\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
PFCOUNT h:encff
SET h:denseshort "HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
PFADD h:denseshort a
PFCOUNT h:denseshort
PFMERGE h:denseshort
# ---------------------------------------------------------------- corrupt sparse: INVALIDOBJ
SET h:hdr "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80"
PFCOUNT h:hdr
PFADD h:hdr a
PFADD h:hdr
PFCOUNT h:hdr h:a
PFMERGE h:hdr h:a
PFMERGE h:d2 h:hdr
EXISTS h:d2
GET h:hdr
SET h:short16383 "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xfe"
PFCOUNT h:short16383
PFCOUNT h:short16383 h:a
PFMERGE h:d3 h:short16383
PFADD h:short16383 a b c d e f g h i j k l m n o p
GET h:short16383
SET h:long "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff\x00"
PFCOUNT h:long
PFADD h:long a b c
GET h:long
PFCOUNT h:long h:a
SET h:cut "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f"
PFCOUNT h:cut
PFADD h:cut a b c
GET h:cut
SET h:cut2 "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x40\xff\x7f"
PFCOUNT h:cut2
PFADD h:cut2 a b c d e f g h
GET h:cut2
PFCOUNT h:cut2
SET h:valpast "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff\x80"
PFCOUNT h:valpast
PFCOUNT h:valpast h:a
PFMERGE h:d4 h:valpast
GET h:d4
PFADD h:valpast x y
GET h:valpast
# ---------------------------------------------------------------- the cached cardinality
SET h:cached "HYLL\x01\x00\x00\x00\x2a\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
PFCOUNT h:cached
GET h:cached
PFADD h:cached a
GET h:cached
PFCOUNT h:cached
GET h:cached
SET h:cachedbig "HYLL\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x7f\x7f\xff"
PFCOUNT h:cachedbig
PFCOUNT h:cachedbig h:missing
SET h:unused "HYLL\x01\xaa\xbb\xcc\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff"
PFADD h:unused a b c
GET h:unused
# ---------------------------------------------------------------- sparse values of 32
SET h:val32 "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\xff\x7f\xfb"
PFCOUNT h:val32
GET h:val32
PFADD h:val32 a b c
GET h:val32
PFMERGE h:d5 h:val32 h:a
GET h:d5
PFCOUNT h:d5
GET h:d5
# ---------------------------------------------------------------- APPEND / SETRANGE over an HLL
PFADD h:app a b c
APPEND h:app x
PFCOUNT h:app
PFADD h:app d
GET h:app
PFADD h:app2 a b c
APPEND h:app2 "\x00"
PFCOUNT h:app2
PFADD h:app2 z
GET h:app2
PFADD h:sr a b c
SETRANGE h:sr 4 "\x00"
PFCOUNT h:sr
SETRANGE h:sr 4 "\x01"
PFCOUNT h:sr
SETRANGE h:sr 0 "X"
PFCOUNT h:sr
# ---------------------------------------------------------------- arity
PFADD
PFCOUNT
PFMERGE
# ---------------------------------------------------------------- errorstats
@shape INFO errorstats
"#;

/// A small deterministic generator (xorshift64*), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The generated part of the script, appended to the parsed corpus.
struct Gen {
    steps: Vec<Step>,
}

impl Gen {
    /// A command compared exactly; `shown` is how a mismatch names it.
    fn cmd(&mut self, shown: String, args: Vec<Vec<u8>>) {
        self.steps.push(Step::Cmd {
            line: shown,
            args,
            compare: Compare::Exact,
        });
    }

    fn line(&mut self, words: &[&str]) {
        let args = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        self.cmd(words.join(" "), args);
    }

    /// `PFADD key` with `elements`, shown with its first element and count.
    fn pfadd(&mut self, key: &str, elements: Vec<Vec<u8>>) {
        let shown = format!(
            "PFADD {key} <{} elements from {:?}>",
            elements.len(),
            elements
                .first()
                .map(|e| String::from_utf8_lossy(e).into_owned())
        );
        let mut args = vec![b"PFADD".to_vec(), key.as_bytes().to_vec()];
        args.extend(elements);
        self.cmd(shown, args);
    }

    /// `SET key value`, shown with the value's length.
    fn set(&mut self, key: &str, value: Vec<u8>) {
        let shown = format!("SET {key} <{} bytes>", value.len());
        self.cmd(shown, vec![b"SET".to_vec(), key.as_bytes().to_vec(), value]);
    }

    /// `GET`, `PFCOUNT`, `GET`: the bytes, the count, and the cache it left.
    fn inspect(&mut self, key: &str) {
        self.line(&["GET", key]);
        self.line(&["PFCOUNT", key]);
        self.line(&["GET", key]);
    }
}

fn elements(prefix: &str, range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    range.map(|i| format!("{prefix}{i}").into_bytes()).collect()
}

/// An HLL header: encoding, cache invalid.
fn header(encoding: u8) -> Vec<u8> {
    let mut h = b"HYLL".to_vec();
    h.push(encoding);
    h.extend_from_slice(&[0; 10]);
    h.push(0x80);
    h
}

/// A dense value whose registers are drawn by `register`.
fn dense(mut register: impl FnMut(usize) -> u8) -> Vec<u8> {
    let mut value = header(0);
    let mut bits = vec![0u8; 12288 + 1];
    for i in 0..16384 {
        let r = u16::from(register(i) & 63);
        let (byte, shift) = (i * 6 / 8, i * 6 % 8);
        let both = (u16::from(bits[byte]) | (u16::from(bits[byte + 1]) << 8)) | (r << shift);
        bits[byte] = both as u8;
        bits[byte + 1] = (both >> 8) as u8;
    }
    bits.truncate(12288);
    value.extend(bits);
    value
}

/// A valid sparse value of random opcodes (not always the shortest: adjacent VALs of one
/// value and short ZERO runs are left as they fall), with `vals` VAL opcodes spread out.
fn sparse(rng: &mut Rng, vals: usize, value_max: u64) -> Vec<u8> {
    let mut value = header(1);
    let mut left = 16384usize;
    let mut vals_left = vals;
    while left > 0 {
        if vals_left > 0 && rng.below(3) == 0 {
            let len = (1 + rng.below(4) as usize).min(left);
            let v = 1 + rng.below(value_max) as u8;
            value.push(0x80 | ((v - 1) << 2) | (len as u8 - 1));
            left -= len;
            vals_left -= 1;
        } else {
            let cap = if vals_left == 0 { left } else { left.min(200) };
            let len = 1 + rng.below(cap as u64) as usize;
            if len <= 64 && rng.below(2) == 0 {
                value.push((len - 1) as u8);
            } else {
                let l = len - 1;
                value.push(0x40 | (l >> 8) as u8);
                value.push(l as u8);
            }
            left -= len;
        }
    }
    value
}

fn generated() -> Vec<Step> {
    let mut g = Gen { steps: Vec::new() };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // One element per command: every sparse update path, the reply of each, bytes every 10.
    for i in 0..300 {
        g.line(&["PFADD", "g:one", &format!("one-{i}")]);
        if i % 10 == 9 {
            g.line(&["GET", "g:one"]);
        }
        if i % 50 == 49 {
            g.inspect("g:one");
        }
    }

    // Batches of 50 up to 4000 elements: sparse growth, then promotion to dense near 3000
    // bytes, then dense updates.
    for batch in 0..80 {
        g.pfadd("g:inc", elements("inc-", batch * 50..batch * 50 + 50));
        g.line(&["GET", "g:inc"]);
        g.line(&["STRLEN", "g:inc"]);
        if batch % 8 == 7 {
            g.inspect("g:inc");
        }
    }

    // 2,000 distinct elements at once, twice (the second adds nothing).
    g.pfadd("g:big", elements("big-", 0..2000));
    g.inspect("g:big");
    g.pfadd("g:big", elements("big-", 0..2000));
    g.line(&["GET", "g:big"]);
    g.pfadd("g:big", elements("big-", 1500..2500));
    g.inspect("g:big");

    // Elements of every length 0..=40 (the hash's tail cases) and arbitrary bytes.
    let mut lengths = Vec::new();
    for len in 0..=40usize {
        lengths.push((0..len).map(|i| (i * 37 + len) as u8).collect::<Vec<u8>>());
    }
    g.pfadd("g:len", lengths);
    g.inspect("g:len");

    // Crafted sparse values: odd but valid opcode sequences, then updates over them.
    for k in 0..40 {
        let key = format!("g:sp{k}");
        let vals = 1 + rng.below(300) as usize;
        let value = sparse(&mut rng, vals, 32);
        g.set(&key, value);
        g.inspect(&key);
        let start = rng.below(100_000) as usize;
        g.pfadd(
            &key,
            elements("sp-", start..start + 1 + rng.below(400) as usize),
        );
        g.inspect(&key);
    }

    // Crafted dense values: registers up to 63 (above Q+1 = 51 too, which the estimator
    // ignores), mostly empty, mostly full, or all one value.
    let shapes: [(&str, u64); 6] = [
        ("uniform", 64),
        ("low", 8),
        ("sparse", 0),
        ("high", 52),
        ("max", 63),
        ("q1", 51),
    ];
    for (name, top) in shapes {
        let key = format!("g:dense-{name}");
        let value = match name {
            "sparse" => dense(|i| if i % 97 == 0 { (i % 20) as u8 + 1 } else { 0 }),
            "max" | "q1" => dense(|_| top as u8),
            "high" => dense(|i| if i % 3 == 0 { 40 + (i % 24) as u8 } else { 0 }),
            _ => {
                let mut r = Rng(rng.next() | 1);
                dense(move |_| r.below(top) as u8)
            }
        };
        g.set(&key, value);
        g.inspect(&key);
        g.pfadd(&key, elements("dn-", 0..100));
        g.inspect(&key);
    }

    // Merges: sparse and dense sources, into missing and existing destinations.
    g.line(&["PFMERGE", "g:mg1", "g:one", "g:sp0", "g:sp1"]);
    g.inspect("g:mg1");
    g.line(&["PFMERGE", "g:mg2", "g:one", "g:big"]);
    g.inspect("g:mg2");
    g.line(&["PFMERGE", "g:sp2", "g:sp3", "g:one"]);
    g.inspect("g:sp2");
    g.line(&["PFMERGE", "g:sp4", "g:dense-high"]);
    g.inspect("g:sp4");
    g.line(&["PFMERGE", "g:dense-low", "g:sp5", "g:one", "g:missing"]);
    g.inspect("g:dense-low");
    g.line(&[
        "PFMERGE", "g:mg3", "g:sp6", "g:sp7", "g:sp8", "g:sp9", "g:sp10", "g:sp11",
    ]);
    g.inspect("g:mg3");
    for k in 12..40 {
        g.line(&["PFMERGE", "g:mg4", &format!("g:sp{k}")]);
        g.line(&["GET", "g:mg4"]);
    }
    g.inspect("g:mg4");
    g.line(&[
        "PFCOUNT",
        "g:one",
        "g:big",
        "g:sp0",
        "g:dense-max",
        "g:missing",
    ]);
    g.line(&["PFCOUNT", "g:sp12", "g:sp13", "g:sp14"]);
    g.line(&["PFCOUNT", "g:dense-q1", "g:dense-high"]);
    g.line(&["PFCOUNT", "g:dense-sparse", "g:one"]);

    // Sparse values just over 3000 bytes, valid or with an opcode past the last register:
    // the promotion to dense checks the whole value.
    for (k, junk) in [&b""[..], b"\x80", b"\x00", b"\x7f\xff"]
        .into_iter()
        .enumerate()
    {
        let key = format!("g:promo{k}");
        let mut value = header(1);
        value.extend(std::iter::repeat_n(0x83u8, 2990));
        let rest = 16384 - 2990 * 4 - 1;
        value.extend([0x40 | (rest >> 8) as u8, rest as u8]);
        value.extend_from_slice(junk);
        g.set(&key, value);
        g.line(&["PFCOUNT", &key]);
        for i in 0..6 {
            g.line(&["PFADD", &key, &format!("promo-{i}")]);
        }
        g.line(&["GET", &key]);
    }

    // Random bytes behind a sparse header: whatever Redis answers (mostly INVALIDOBJ,
    // sometimes a count or an update), ringcache must answer and store the same.
    for k in 0..60 {
        let key = format!("g:junk{k}");
        let mut value = header(1);
        let len = rng.below(if k % 2 == 0 { 12 } else { 400 }) as usize;
        value.extend((0..len).map(|_| rng.next() as u8));
        g.set(&key, value);
        g.line(&["PFCOUNT", &key]);
        g.line(&["PFCOUNT", &key, "g:one"]);
        g.line(&["PFMERGE", &format!("g:junkdst{k}"), &key]);
        g.line(&["GET", &format!("g:junkdst{k}")]);
        g.pfadd(&key, elements("junk-", 0..1 + rng.below(30) as usize));
        g.line(&["GET", &key]);
    }
    g.steps
}

fn script() -> Script {
    let mut script = Script::parse(CORPUS);
    script.steps.extend(generated());
    script
}

#[test]
fn hyperloglog_commands_match_redis_byte_for_byte_over_resp2() {
    run_side_by_side("HLL ", &script(), 2, &[]);
}

#[test]
fn hyperloglog_commands_match_redis_byte_for_byte_over_resp3() {
    run_side_by_side("HLL ", &script(), 3, &[]);
}
