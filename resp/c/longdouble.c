/*
 * INCRBYFLOAT as Redis 7.0 computes it: in C `long double` (x87 80-bit on x86-64),
 * read with `strtold` and printed with `%.17Lf`. Ported from Redis 7.0's util.c
 * (string2ld, ld2string with LD_STR_HUMAN) and t_string.c (incrbyfloatCommand,
 * getLongDoubleFromObject, createStringObjectFromLongDouble). Also C's `strtod`, which
 * Redis reads sorted set scores and ranges with.
 *
 * Called from resp/src/float.rs; no allocation, no global state besides errno.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redis's MAX_LONG_DOUBLE_CHARS (util.h). */
#define RC_MAX_LONG_DOUBLE_CHARS (5 * 1024)

/* Redis 7.0 util.c string2ld: 1 and *dp set when s[0..slen) is a valid float, else 0. */
static int rc_string2ld(const char *s, size_t slen, long double *dp) {
    char buf[RC_MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;

    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';

    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' ||
        (size_t)(eptr - buf) != slen ||
        (errno == ERANGE &&
         (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL ||
        isnan(value))
        return 0;

    if (dp) *dp = value;
    return 1;
}

/* Redis 7.0 util.c ld2string(.., LD_STR_HUMAN): the length written (without the NUL),
 * or 0 when `len` bytes are not enough. */
static size_t rc_ld2string_human(char *buf, size_t len, long double value) {
    size_t l = 0;

    if (isinf(value)) {
        if (len < 5) return 0; /* "-inf\0" */
        if (value > 0) {
            memcpy(buf, "inf", 3);
            l = 3;
        } else {
            memcpy(buf, "-inf", 4);
            l = 4;
        }
    } else {
        int n = snprintf(buf, len, "%.17Lf", value);
        if (n < 0) return 0;
        l = (size_t)n;
        if (l + 1 > len) return 0;
        /* Remove trailing zeroes after the '.', then the '.' itself. */
        if (strchr(buf, '.') != NULL) {
            char *p = buf + l - 1;
            while (*p == '0') {
                p--;
                l--;
            }
            if (*p == '.') l--;
        }
        if (l == 2 && buf[0] == '-' && buf[1] == '0') {
            buf[0] = '0';
            l = 1;
        }
    }
    buf[l] = '\0';
    return l;
}

/* 1 when s[0..len) is a float Redis accepts (string2ld), else 0. */
int ringcache_is_long_double(const char *s, size_t len) {
    return rc_string2ld(s, len, NULL);
}

/* Redis 7.0 timeout.c getTimeoutFromObjectOrReply(.., UNIT_SECONDS) up to, not including,
 * adding the current time: the timeout in milliseconds, ceil(seconds * 1000) in long double.
 * Returns 0 ok (*ms set; 0 means no timeout), 1 not a float, 2 negative.
 *
 * Redis casts the product to long long without a range check: out of range the cast is
 * undefined in C, and x86-64 yields LLONG_MIN (the "integer indefinite" value), so `inf` and
 * `1e400` are "negative" there. The same outcome is written here without the undefined cast.
 * A product in (-1, 0] rounds up to 0: no timeout, as in Redis (`-0.0005` blocks forever). */
int ringcache_timeout_ms(const char *s, size_t len, long long *ms) {
    long double seconds, scaled;

    if (!rc_string2ld(s, len, &seconds)) return 1;
    scaled = ceill(seconds * 1000.0L);
    if (!(scaled >= -9223372036854775808.0L && scaled < 9223372036854775808.0L)) return 2;
    if (scaled < 0) return 2;
    *ms = (long long)scaled;
    return 0;
}

/* ld2string(.., LD_STR_HUMAN) of a double widened to long double.
 * 0 ok (*out_len set, out NUL-terminated); 3 when out_cap is too small. */
int ringcache_format_double_human(double value, char *out, size_t out_cap, size_t *out_len) {
    size_t l = rc_ld2string_human(out, out_cap, (long double)value);
    if (l == 0) return 3;
    *out_len = l;
    return 0;
}

/* Redis 7.0 incrbyfloatCommand after the type check.
 * `cur` NULL means the key does not exist (the value is 0); otherwise cur[0..cur_len)
 * is the current value (which may be empty, and then is not a float).
 * Returns 0 ok (out[0..*out_len) is the new value's text, NUL-terminated),
 * 1 a value is not a valid float (the current one is checked first, then the increment),
 * 2 the sum is NaN or infinite, 3 out_cap is too small for the text. */
int ringcache_incrbyfloat(const char *cur, size_t cur_len, const char *incr, size_t incr_len,
                          char *out, size_t out_cap, size_t *out_len) {
    long double value = 0, delta;
    size_t l;

    if (cur != NULL && !rc_string2ld(cur, cur_len, &value)) return 1;
    if (!rc_string2ld(incr, incr_len, &delta)) return 1;

    value += delta;
    if (isnan(value) || isinf(value)) return 2;

    l = rc_ld2string_human(out, out_cap, value);
    if (l == 0) return 3;
    *out_len = l;
    return 0;
}

/* C's strtod of the NUL-terminated `s`, as Redis 7.0 reads a double (util.c string2d,
 * t_zset.c zslParseRange): the value, the bytes it used in *used, and in *erange whether
 * errno was ERANGE (overflow, or underflow). The caller applies Redis's checks. */
double ringcache_strtod(const char *s, size_t *used, int *erange) {
    char *eptr;
    double value;

    errno = 0;
    value = strtod(s, &eptr);
    *used = (size_t)(eptr - s);
    *erange = errno == ERANGE;
    return value;
}
