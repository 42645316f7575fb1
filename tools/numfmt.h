/*
 * numfmt.h -- the canonical text of numbers (what `mms dump` prints) and
 * the parsing `mms import` does. No dependency but the C library.
 *
 * Floats print as the shortest decimal that reads back as the same value,
 * laid out as ECMAScript's Number.prototype.toString does (fixed notation
 * for decimal exponents -7 < e < 21, otherwise d.ddde-X), except that a
 * positive exponent has no '+' ("1e300") and negative zero keeps its sign
 * ("-0"). NaN is "nan", infinities "inf" and "-inf".
 */
#ifndef MMS_NUMFMT_H
#define MMS_NUMFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NUMFMT_MAX 48 /* enough for every text below, with the NUL */

size_t fmt_i64(int64_t v, char *buf);
size_t fmt_u64(uint64_t v, char *buf);
size_t fmt_f64(double v, char *buf);
size_t fmt_f32(float v, char *buf);

/* True if p[0..n) is exactly what fmt_i64 / fmt_f64 prints for some value
 * (stored in *v). */
bool canon_i64(const char *p, size_t n, int64_t *v);
bool canon_f64(const char *p, size_t n, double *v);

/* Lenient parsing for declared kinds: [+-]?digits (leading zeros allowed);
 * a float is anything strtod/strtof reads completely, without surrounding
 * space; an overflow to infinity is an error. */
bool parse_i64(const char *p, size_t n, int64_t *v);
bool parse_u64(const char *p, size_t n, uint64_t *v);
bool parse_f64(const char *p, size_t n, double *v);
bool parse_f32(const char *p, size_t n, float *v);

#endif
