//! Redis's glob matching (`stringmatchlen`), for `KEYS`, `SCAN MATCH` and `CONFIG GET`.
//!
//! - `*` matches any run of bytes, `?` any one byte;
//! - `[abc]`, `[a-z]` (ends in either order), `[^...]` negated, `\x` inside a class is `x`
//!   (compared case-sensitively, as Redis does); an unclosed `[` takes the rest of the pattern
//!   as its class;
//! - `\x` outside a class matches `x`; a lone `\` at the end matches a `\`.
//!
//! Redis matches by recursion on each `*`, cut short by a flag and a nesting limit of 1000.
//! This port is iterative instead: it remembers the last `*` and retries from one byte further
//! on a mismatch, which gives the same answers (every other token matches exactly one byte) in
//! O(pattern × text) time and constant stack, whatever the pattern. The one difference: Redis
//! gives up (no match) on patterns with more than 1000 separate `*` runs; this matches them.
//!
//! A Redis quirk kept: an empty text matches only the empty pattern (Redis's loop never runs),
//! so `**` does not match the key `""`. But `KEYS` and `SCAN MATCH` in Redis treat a pattern
//! of exactly `*` as "everything" before matching, so `KEYS *` does list `""`; that case is
//! built in here (`*` matches `""`), so callers need no special case.

/// Whether `text` matches the glob `pattern`; `nocase` folds ASCII letters.
pub fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    if text.is_empty() {
        return pattern.is_empty() || pattern == b"*";
    }
    let (mut p, mut s) = (0usize, 0usize);
    // Where to resume after the last `*`: the pattern position after it, and the text
    // position it was last tried at.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() && pattern[p] == b'*' {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            if p == pattern.len() {
                return true;
            }
            star = Some((p, s));
            continue;
        }
        if s == text.len() {
            // Only `*`s may be left, and they were consumed above.
            if p == pattern.len() {
                return true;
            }
        } else if p < pattern.len()
            && let Some(next) = match_one(pattern, p, text[s], nocase)
        {
            p = next;
            s += 1;
            continue;
        }
        // Mismatch: let the last `*` swallow one more byte.
        match star {
            Some((after_star, tried)) if tried < text.len() => {
                star = Some((after_star, tried + 1));
                p = after_star;
                s = tried + 1;
            }
            _ => return false,
        }
    }
}

/// Matches the single-byte token at `pattern[p]` (not a `*`) against `c`; the position after
/// the token when it matches.
fn match_one(pattern: &[u8], p: usize, c: u8, nocase: bool) -> Option<usize> {
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => {
            let (matched, next) = match_class(pattern, p + 1, c, nocase);
            matched.then_some(next)
        }
        b'\\' if p + 1 < pattern.len() => (fold(pattern[p + 1]) == fold(c)).then_some(p + 2),
        literal => (fold(literal) == fold(c)).then_some(p + 1),
    }
}

/// Redis's `[...]` loop, starting after the `[`: whether `c` is in the class, and the position
/// after the closing `]` (or the end of the pattern when it is unclosed).
fn match_class(pattern: &[u8], mut p: usize, c: u8, nocase: bool) -> (bool, usize) {
    // Past the end reads NUL, as the C string terminator does in Redis.
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let negate = at(p) == b'^';
    if negate {
        p += 1;
    }
    let mut matched = false;
    loop {
        let left = pattern.len().saturating_sub(p);
        if at(p) == b'\\' && left >= 2 {
            p += 1;
            if at(p) == c {
                matched = true;
            }
        } else if at(p) == b']' {
            break;
        } else if left == 0 {
            // Unclosed: the class ends with the pattern.
            return (matched != negate, pattern.len());
        } else if left >= 3 && at(p + 1) == b'-' {
            // Redis compares C `char`s, which are signed here: bytes ≥ 0x80 sort first.
            let (mut start, mut end) = (at(p) as i8 as i32, at(p + 2) as i8 as i32);
            let mut ch = c as i8 as i32;
            if start > end {
                std::mem::swap(&mut start, &mut end);
            }
            if nocase {
                start = lower(start);
                end = lower(end);
                ch = lower(ch);
            }
            p += 2;
            if ch >= start && ch <= end {
                matched = true;
            }
        } else if nocase {
            if at(p).eq_ignore_ascii_case(&c) {
                matched = true;
            }
        } else if at(p) == c {
            matched = true;
        }
        p += 1;
    }
    (matched != negate, p + 1)
}

/// C's `tolower` on a (signed) `char` value.
fn lower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A line-by-line port of Redis 7.0's recursive `stringmatchlen_impl`, as the oracle.
    /// With the `*` shortcut of `KEYS` and `SCAN`.
    fn redis_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
        if pattern == b"*" {
            return true;
        }
        let mut skip = false;
        redis_impl(pattern, text, nocase, &mut skip, 0)
    }

    fn redis_impl(pat: &[u8], s: &[u8], nocase: bool, skip: &mut bool, nesting: u32) -> bool {
        if nesting > 1000 {
            return false;
        }
        let at = |v: &[u8], i: usize| v.get(i).copied().unwrap_or(0);
        let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
        let (mut p, mut q) = (0usize, 0usize);
        let (mut plen, mut slen) = (pat.len(), s.len());
        while plen > 0 && slen > 0 {
            match pat[p] {
                b'*' => {
                    while plen > 0 && at(pat, p + 1) == b'*' {
                        p += 1;
                        plen -= 1;
                    }
                    if plen == 1 {
                        return true;
                    }
                    while slen > 0 {
                        if redis_impl(&pat[p + 1..], &s[q..], nocase, skip, nesting + 1) {
                            return true;
                        }
                        if *skip {
                            return false;
                        }
                        q += 1;
                        slen -= 1;
                    }
                    *skip = true;
                    return false;
                }
                b'?' => {
                    q += 1;
                    slen -= 1;
                }
                b'[' => {
                    let (m, next) = match_class(pat, p + 1, s[q], nocase);
                    if !m {
                        return false;
                    }
                    let consumed = next - 1 - p;
                    p += consumed;
                    plen -= consumed;
                    q += 1;
                    slen -= 1;
                }
                b'\\' if plen >= 2 => {
                    p += 1;
                    plen -= 1;
                    if fold(pat[p]) != fold(s[q]) {
                        return false;
                    }
                    q += 1;
                    slen -= 1;
                }
                c => {
                    if fold(c) != fold(s[q]) {
                        return false;
                    }
                    q += 1;
                    slen -= 1;
                }
            }
            p += 1;
            plen -= 1;
            if slen == 0 {
                while at(pat, p) == b'*' {
                    p += 1;
                    plen -= 1;
                }
                break;
            }
        }
        plen == 0 && slen == 0
    }

    #[test]
    fn stars_questions_and_literals_match_like_redis() {
        assert!(glob_match(b"*", b"", false), "KEYS * lists the key \"\"");
        assert!(
            !glob_match(b"**", b"", false),
            "but KEYS ** does not, in Redis"
        );
        assert!(glob_match(b"", b"", false));
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h*llo", b"heeeello", false));
        assert!(glob_match(b"h*llo", b"hllo", false));
        assert!(!glob_match(b"h?llo", b"hllo", false));
        assert!(glob_match(b"user:*:name", b"user:42:name", false));
        assert!(!glob_match(b"user:*:name", b"user:42:age", false));
        assert!(glob_match(b"a**b", b"ab", false));
        assert!(!glob_match(b"", b"a", false));
        assert!(glob_match(b"", b"", false));
    }

    #[test]
    fn classes_ranges_negation_and_escapes_match_like_redis() {
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[ae]llo", b"hillo", false));
        assert!(glob_match(b"h[^e]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"h[b-a]llo", b"hallo", false), "reversed range");
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(!glob_match(b"a\\*b", b"axb", false));
        assert!(glob_match(b"[\\]]", b"]", false));
        assert!(
            glob_match(b"ab\\", b"ab\\", false),
            "a trailing backslash is literal"
        );
        assert!(
            glob_match(b"[abc", b"b", false),
            "an unclosed class takes the rest"
        );
    }

    #[test]
    fn nocase_folds_letters_but_not_escapes_in_classes() {
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(!glob_match(b"HELLO", b"hello", false));
        assert!(glob_match(b"[A-Z]x", b"qX", true));
        assert!(!glob_match(b"[\\A]", b"a", true));
    }

    #[test]
    fn many_stars_do_not_blow_up() {
        let pattern = [b"a".as_slice(), &b"*a".repeat(5000), b"b"].concat();
        let text = vec![b'a'; 20_000];
        assert!(!glob_match(&pattern, &text, false));
        let stars = vec![b'*'; 100_000];
        assert!(glob_match(&stars, &text, false));
    }

    proptest! {
        #[test]
        fn matches_like_the_recursive_redis_port(
            pattern in proptest::collection::vec(
                prop::sample::select(b"ab*?[]^-\\A".to_vec()), 0..12),
            text in proptest::collection::vec(prop::sample::select(b"abAB*-]".to_vec()), 0..12),
            nocase in any::<bool>(),
        ) {
            prop_assert_eq!(
                glob_match(&pattern, &text, nocase),
                redis_match(&pattern, &text, nocase),
                "pattern {:?} text {:?}", String::from_utf8_lossy(&pattern),
                String::from_utf8_lossy(&text)
            );
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            pattern in proptest::collection::vec(any::<u8>(), 0..40),
            text in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let _ = glob_match(&pattern, &text, true);
            prop_assert_eq!(glob_match(&pattern, &text, false), redis_match(&pattern, &text, false));
        }
    }
}

/// Compares with answers recorded from redis-server 7.0.15's `KEYS` (file written by a script,
/// one line of hex keys, then `pattern|matches` lines in hex). Run with
/// `GLOB_CASES=/path/to/file cargo test -p ringcache-resp -- --ignored glob`.
#[cfg(test)]
#[test]
#[ignore = "needs a file recorded from redis-server"]
fn glob_agrees_with_recorded_redis_keys_answers() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let path = std::env::var("GLOB_CASES").expect("GLOB_CASES names the recorded file");
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let keys: Vec<Vec<u8>> = lines.next().unwrap().split(' ').map(hex).collect();
    let mut checked = 0;
    for line in lines {
        let (pattern, matches) = line.split_once('|').unwrap();
        let pattern = hex(pattern);
        let mut expected: Vec<Vec<u8>> = matches
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(hex)
            .collect();
        expected.sort();
        let mut got: Vec<Vec<u8>> = keys
            .iter()
            .filter(|k| glob_match(&pattern, k, false))
            .cloned()
            .collect();
        got.sort();
        assert_eq!(
            got,
            expected,
            "pattern {:?}",
            String::from_utf8_lossy(&pattern)
        );
        checked += 1;
    }
    assert!(checked > 100);
}
