/*
 * numfmt.c -- the canonical text of numbers, as `mms dump` prints them,
 * and the parsing `mms import` does.
 *
 * The round trip (import a canonical CSV, dump it, get the same bytes)
 * rests on one rule: import infers int64 for a column only when every
 * value is exactly fmt_i64() of its value, float64 only when every value
 * is exactly fmt_f64() of what strtod reads from it. So fmt_* and canon_*
 * must agree; both live here.
 *
 * Shortest float text. If a double has a decimal form of at most 15
 * significant digits that reads back as it (DBL_DIG = 15), that form is
 * the double rounded to 15 digits, with its trailing zeros dropped: the
 * double lies within half an ulp (< 1.2e-16 relative) of the decimal, much
 * less than half a unit of the 15th digit (>= 5e-16 relative), so rounding
 * to 15 digits lands on it, and no other 15-digit decimal can read back as
 * the same double. Otherwise 16, then 17 digits (17 always read back),
 * correctly rounded by printf. This gives what "try %.{1..17}g until
 * strtod gives the same double" gives, in at most three tries. The same
 * holds for floats with 6..9 digits (FLT_DIG = 6). Subnormals have fewer
 * significant bits, so the argument fails for them: they get the full
 * search from one digit. The test compares all this with the brute-force
 * loop on random values.
 */
#define _POSIX_C_SOURCE 200809L
#include "numfmt.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t fmt_u64(uint64_t v, char *buf)
{
    char t[24];
    size_t k = 0;
    do {
        t[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < k; i++)
        buf[i] = t[k - 1 - i];
    buf[k] = 0;
    return k;
}

size_t fmt_i64(int64_t v, char *buf)
{
    if (v >= 0)
        return fmt_u64((uint64_t)v, buf);
    buf[0] = '-';
    return 1 + fmt_u64((uint64_t)0 - (uint64_t)v, buf + 1);
}

/* Lay out the significant digits d[0..k) (no trailing zeros, d[0] != '0')
 * of a number 0.d * 10^n, as ECMAScript's Number::toString does. */
static size_t layout(bool neg, const char *d, int k, int n, char *out)
{
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (k <= n && n <= 21) {
        memcpy(out + o, d, (size_t)k);
        o += (size_t)k;
        for (int i = k; i < n; i++)
            out[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(out + o, d, (size_t)n);
        o += (size_t)n;
        out[o++] = '.';
        memcpy(out + o, d + n, (size_t)(k - n));
        o += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -n; i++)
            out[o++] = '0';
        memcpy(out + o, d, (size_t)k);
        o += (size_t)k;
    } else {
        out[o++] = d[0];
        if (k > 1) {
            out[o++] = '.';
            memcpy(out + o, d + 1, (size_t)(k - 1));
            o += (size_t)(k - 1);
        }
        out[o++] = 'e';
        int e = n - 1;
        if (e < 0) {
            out[o++] = '-';
            e = -e;
        }
        o += fmt_u64((uint64_t)e, out + o);
    }
    out[o] = 0;
    return o;
}

/* Digits and exponent of "%.*e" output: [-]d[.ddd]e[+-]XX. */
static size_t layout_e(const char *e, char *out)
{
    bool neg = *e == '-';
    if (neg)
        e++;
    char d[24];
    int k = 0;
    for (; *e && *e != 'e'; e++)
        if (*e != '.' && k < (int)sizeof d)
            d[k++] = *e;
    int x = atoi(e + 1);
    while (k > 1 && d[k - 1] == '0')
        k--;
    return layout(neg, d, k, x + 1, out);
}

static size_t special(double v, char *buf)
{
    const char *t = isnan(v) ? "nan" : isinf(v) ? (v < 0 ? "-inf" : "inf")
                                                : (signbit(v) ? "-0" : "0");
    size_t n = strlen(t);
    memcpy(buf, t, n + 1);
    return n;
}

size_t fmt_f64(double v, char *buf)
{
    if (!isfinite(v) || v == 0)
        return special(v, buf);
    char e[40];
    /* Subnormals have fewer significant bits: search from one digit. */
    for (int prec = fabs(v) < DBL_MIN ? 0 : 14; prec < 16; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            return layout_e(e, buf);
    }
    snprintf(e, sizeof e, "%.16e", v);
    return layout_e(e, buf);
}

size_t fmt_f32(float v, char *buf)
{
    if (!isfinite(v) || v == 0)
        return special(v, buf);
    char e[40];
    for (int prec = fabsf(v) < FLT_MIN ? 0 : 5; prec < 8; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, (double)v);
        if (strtof(e, NULL) == v)
            return layout_e(e, buf);
    }
    snprintf(e, sizeof e, "%.8e", (double)v);
    return layout_e(e, buf);
}

bool canon_i64(const char *p, size_t n, int64_t *v)
{
    bool neg = n > 0 && p[0] == '-';
    size_t i = neg;
    if (n - i < 1 || n - i > 19 || p[i] < '0' || p[i] > '9')
        return false;
    if (p[i] == '0' && (n - i > 1 || neg))
        return false; /* leading zero, "-0" */
    uint64_t u = 0;
    for (; i < n; i++) {
        unsigned c = (unsigned char)p[i] - '0';
        if (c > 9 || u > (UINT64_MAX - c) / 10)
            return false;
        u = u * 10 + c;
    }
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
        return false;
    *v = neg ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

/* strtod on a copy of p[0..n) that must be used completely, without
 * leading space (strtod would skip it). */
static bool to_double(const char *p, size_t n, double *v, bool *overflow)
{
    char b[512];
    if (n == 0 || n >= sizeof b || p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r'))
        return false;
    memcpy(b, p, n);
    b[n] = 0;
    char *end;
    errno = 0;
    *v = strtod(b, &end);
    *overflow = errno == ERANGE && isinf(*v);
    return end == b + n;
}

/* The significant digits of a decimal text [-]ddd[.ddd][e[-]ddd] (no
 * leading or trailing zeros) and its point position n (value 0.d * 10^n).
 * Returns the number of digits, 0 for a zero, -1 if p is not of that form. */
static int decimal_digits(const char *p, size_t len, char *d, int cap, int *n)
{
    size_t i = p[0] == '-';
    int k = 0, point = 0;
    bool seen_point = false, any = false;
    for (; i < len; i++) {
        char c = p[i];
        if (c == '.' && !seen_point) {
            seen_point = true;
            continue;
        }
        if (c < '0' || c > '9')
            break;
        any = true;
        if (c == '0' && k == 0) {
            if (seen_point)
                point--;
            continue;
        }
        if (k == cap)
            return -1;
        d[k++] = c;
        if (!seen_point)
            point++;
    }
    if (!any)
        return -1;
    if (i < len) {
        if (p[i] != 'e')
            return -1;
        bool neg = ++i < len && p[i] == '-';
        i += neg;
        if (i == len || len - i > 5)
            return -1;
        int e = 0;
        for (; i < len; i++) {
            if (p[i] < '0' || p[i] > '9')
                return -1;
            e = e * 10 + (p[i] - '0');
        }
        point += neg ? -e : e;
    }
    while (k > 0 && d[k - 1] == '0')
        k--;
    *n = point;
    return k;
}

bool canon_f64(const char *p, size_t n, double *v)
{
    /* What fmt_f64 prints starts with a digit, '-', 'n' or 'i' and is
     * short: reject the rest before paying for strtod and printf. */
    if (n == 0 || n > 32 || !((p[0] >= '0' && p[0] <= '9') || p[0] == '-' || p[0] == 'n' ||
                              p[0] == 'i'))
        return false;
    bool ovf;
    char t[NUMFMT_MAX];
    char d[24];
    int pt, k = -1;
    if (p[0] != 'n' && p[0] != 'i' && !(p[0] == '-' && n > 1 && (p[1] == 'n' || p[1] == 'i'))) {
        /* Only fmt_f64's layout of the text's own digits can be canonical. */
        k = decimal_digits(p, n, d, (int)sizeof d, &pt);
        if (k < 0)
            return false;
        if (k > 0 && (layout(p[0] == '-', d, k, pt, t) != n || memcmp(t, p, n) != 0))
            return false;
    }
    if (!to_double(p, n, v, &ovf))
        return false;
    /* Up to 15 digits (DBL_DIG) that read back as a normal double are the
     * shortest form of it (see the top of this file). */
    if (k > 0 && k <= 15 && isfinite(*v) && fabs(*v) >= DBL_MIN)
        return true;
    size_t m = fmt_f64(*v, t);
    return m == n && memcmp(t, p, n) == 0;
}

bool parse_u64(const char *p, size_t n, uint64_t *v)
{
    size_t i = n > 0 && p[0] == '+';
    if (i == n)
        return false;
    uint64_t u = 0;
    for (; i < n; i++) {
        unsigned c = (unsigned char)p[i] - '0';
        if (c > 9 || u > (UINT64_MAX - c) / 10)
            return false;
        u = u * 10 + c;
    }
    *v = u;
    return true;
}

bool parse_i64(const char *p, size_t n, int64_t *v)
{
    bool neg = n > 0 && p[0] == '-';
    uint64_t u;
    if (neg ? (n < 2 || p[1] == '+' || !parse_u64(p + 1, n - 1, &u)) : !parse_u64(p, n, &u))
        return false;
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
        return false;
    *v = neg ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

bool parse_f64(const char *p, size_t n, double *v)
{
    bool ovf;
    return to_double(p, n, v, &ovf) && !ovf;
}

bool parse_f32(const char *p, size_t n, float *v)
{
    char b[512];
    if (n == 0 || n >= sizeof b || p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r'))
        return false;
    memcpy(b, p, n);
    b[n] = 0;
    char *end;
    errno = 0;
    *v = strtof(b, &end);
    if (end != b + n)
        return false;
    return !(errno == ERANGE && isinf(*v));
}
