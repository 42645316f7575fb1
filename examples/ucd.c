/*
 * ucd -- the Unicode Character Database, parsed once into typed tables.
 *
 *     ucd build STORE.mms [UCD_DIR]    parse the UCD text files into a new store
 *     ucd query STORE.mms [QUERY...]   answer queries from the store, read-only
 *
 * UCD_DIR defaults to /usr/share/unicode (Debian's unicode-data package).
 * `build` reads UnicodeData.txt, Blocks.txt, Scripts.txt and
 * PropertyValueAliases.txt once and writes five tables in one write
 * transaction:
 *
 *     category  code chars[2], name str             Lu  Uppercase_Letter
 *     script    code chars[4], name str             Latn  Latin
 *     block     first u32, last u32, name str       U+0000..U+007F  Basic Latin
 *     char      cp, name, category -> category, block -> block,
 *               script -> script, combining class, bidi class, mirrored,
 *               upper/lower/title mappings, numeric value (text and f64),
 *               decomposition, Unicode 1.0 name
 *     range     first, last, name, category, block, script
 *
 * plus the UCD version as the root (a string). The char table has an
 * ordered unique index on cp (mms_index_create): a code point is found
 * through it, and a block's run of characters starts at the first entry
 * >= the block's first code point (a cursor seek).
 *
 * Range entries of UnicodeData.txt (<CJK Ideograph, First> ... <..., Last>):
 * those whose characters have names derived from the code point (CJK
 * unified ideographs, Tangut ideographs, Hangul syllables: Unicode rules NR1
 * and NR2) are expanded into one char record each, with its derived name,
 * so that every character with a name has a record. Private-use and
 * surrogate ranges (139,516 nameless code points) are kept as ranges in
 * the range table; so is any range kind this program does not know.
 *
 * `query` opens the store read-only in a fresh process and answers, timing
 * each answer:
 *
 *     U+1F600 or a single character    what the character is
 *     word:CAT                         names containing the word CAT
 *     block:Emoticons                  the characters of a block (loose match:
 *                                      case, spaces, '-' and '_' ignored)
 *     categories                       characters per general category, top 10
 *     scripts                          the scripts with the most characters
 *
 * With no QUERY it answers a few of each. Every query goes through the refs
 * of char records (MMS_REC) and reads strings in place (mms_str_get).
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * The records. Refs, never pointers, in the store.
 * ------------------------------------------------------------------------ */
struct ucd_category {
    char code[2];           /* "Lu" (exactly two letters, no NUL) */
    mms_ref name;           /* "Uppercase_Letter" */
};

struct ucd_script {
    char code[4];           /* ISO 15924: "Latn" (no NUL) */
    mms_ref name;           /* "Latin" */
};

struct ucd_block {
    uint32_t first, last;
    mms_ref name;           /* "Basic Latin" */
};

struct ucd_char {
    uint32_t cp;
    uint32_t upper, lower, title; /* simple case mappings; 0 = none */
    char bidi[4];           /* bidi class, NUL-padded: "L", "NSM" */
    uint8_t combining;      /* canonical combining class */
    uint8_t mirrored;
    double numval;          /* numeric value; NaN when it has none */
    mms_ref name;           /* "LATIN CAPITAL LETTER A" */
    mms_ref old_name;       /* Unicode 1.0 name, or 0 */
    mms_ref numeric;        /* numeric value as written ("1/4"), or 0 */
    mms_ref decomp;         /* decomposition mapping as written, or 0 */
    mms_ref category;       /* -> category */
    mms_ref block;          /* -> block, or 0 */
    mms_ref script;         /* -> script */
};

struct ucd_range {
    uint32_t first, last;
    mms_ref name;           /* "Private Use" */
    mms_ref category;       /* -> category */
    mms_ref block;          /* -> block, or 0 */
    mms_ref script;         /* -> script */
};

static const mms_field category_fields[] = {
    MMS_F_CHARS(struct ucd_category, code),
    MMS_F_STR(struct ucd_category, name),
};
static const mms_field script_fields[] = {
    MMS_F_CHARS(struct ucd_script, code),
    MMS_F_STR(struct ucd_script, name),
};
static const mms_field block_fields[] = {
    MMS_F_U32(struct ucd_block, first),
    MMS_F_U32(struct ucd_block, last),
    MMS_F_STR(struct ucd_block, name),
};
static const mms_field char_fields[] = {
    MMS_F_U32(struct ucd_char, cp),
    MMS_F_U32(struct ucd_char, upper),
    MMS_F_U32(struct ucd_char, lower),
    MMS_F_U32(struct ucd_char, title),
    MMS_F_CHARS(struct ucd_char, bidi),
    MMS_F_U8(struct ucd_char, combining),
    MMS_F_BOOL(struct ucd_char, mirrored),
    MMS_F_F64(struct ucd_char, numval),
    MMS_F_STR(struct ucd_char, name),
    MMS_F_STR(struct ucd_char, old_name),
    MMS_F_STR(struct ucd_char, numeric),
    MMS_F_STR(struct ucd_char, decomp),
    MMS_F_REF(struct ucd_char, category, "category"),
    MMS_F_REF(struct ucd_char, block, "block"),
    MMS_F_REF(struct ucd_char, script, "script"),
};
static const mms_field range_fields[] = {
    MMS_F_U32(struct ucd_range, first),
    MMS_F_U32(struct ucd_range, last),
    MMS_F_STR(struct ucd_range, name),
    MMS_F_REF(struct ucd_range, category, "category"),
    MMS_F_REF(struct ucd_range, block, "block"),
    MMS_F_REF(struct ucd_range, script, "script"),
};
static const mms_schema category_schema = MMS_SCHEMA(struct ucd_category, category_fields);
static const mms_schema script_schema = MMS_SCHEMA(struct ucd_script, script_fields);
static const mms_schema block_schema = MMS_SCHEMA(struct ucd_block, block_fields);
static const mms_schema char_schema = MMS_SCHEMA(struct ucd_char, char_fields);
static const mms_schema range_schema = MMS_SCHEMA(struct ucd_range, range_fields);

#define CP_LIMIT 0x110000u

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int fail_mms(const char *what, int err)
{
    const char *d = mms_errdetail();
    if (strstr(d, mms_strerror(err))) /* the detail holds the message already */
        fprintf(stderr, "ucd: %s: %s\n", what, d);
    else
        fprintf(stderr, "ucd: %s: %s (%s)\n", what, mms_strerror(err), d);
    return 1;
}

/* ------------------------------------------------------------------------
 * Text helpers
 * ------------------------------------------------------------------------ */

/* Trim spaces and tabs at both ends, in place. */
static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    char *e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = 0;
    return p;
}

/* Split p at each sep into at most max fields, in place. Returns the count. */
static int split(char *p, char sep, char **f, int max)
{
    int n = 0;
    for (;;) {
        if (n == max)
            return max + 1; /* too many */
        f[n++] = p;
        char *q = strchr(p, sep);
        if (!q)
            return n;
        *q = 0;
        p = q + 1;
    }
}

/* A hex code point, the whole string. */
static int parse_cp(const char *p, uint32_t *cp)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(p, &end, 16);
    if (end == p || *end || errno || v >= CP_LIMIT)
        return -1;
    *cp = (uint32_t)v;
    return 0;
}

/* "XXXX" or "XXXX..YYYY". */
static int parse_cp_range(char *p, uint32_t *first, uint32_t *last)
{
    char *dots = strstr(p, "..");
    if (!dots)
        return parse_cp(p, first) == 0 ? (*last = *first, 0) : -1;
    *dots = 0;
    if (parse_cp(p, first) || parse_cp(dots + 2, last) || *last < *first)
        return -1;
    return 0;
}

/* UTF-8 for cp into b (at least 5 bytes); returns the length. */
static int utf8_put(char *b, uint32_t cp)
{
    if (cp < 0x80) {
        b[0] = (char)cp;
        b[1] = 0;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        b[2] = 0;
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        b[3] = 0;
        return 3;
    }
    b[0] = (char)(0xF0 | cp >> 18);
    b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    b[4] = 0;
    return 4;
}

/* The code point of a string that is exactly one UTF-8 character, or -1. */
static long utf8_single(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int n = p[0] < 0x80 ? 1 : p[0] >= 0xF0 && p[0] < 0xF5 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || strlen(s) != (size_t)n)
        return -1;
    long cp = n == 1 ? p[0] : p[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    return cp < (long)CP_LIMIT ? cp : -1;
}

/* The whole file dir/name, NUL-terminated. NULL (and a message) on error. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ucd: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                fprintf(stderr, "ucd: out of memory reading %s\n", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "ucd: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Next line of a buffer (the newline replaced by NUL), or NULL at the end. */
static char *next_line(char **cursor)
{
    char *p = *cursor;
    if (!*p)
        return NULL;
    char *nl = strchr(p, '\n');
    if (nl) {
        *nl = 0;
        *cursor = nl + 1;
    } else {
        *cursor = p + strlen(p);
    }
    return p;
}

/* ------------------------------------------------------------------------
 * build
 * ------------------------------------------------------------------------ */

/* What the parser keeps besides the tables. */
struct parse {
    const char *dir;
    mms_store *s;
    mms_table *cat, *scr, *blk, *chr, *rng;
    int cat_of[26 * 26];     /* "Lu" -> category index, -1 = none */
    char (*script_long)[64]; /* long names, for Scripts.txt */
    uint32_t nscripts, unknown_script;
    uint16_t *script_of;     /* code point -> script index */
    uint32_t *block_first, *block_last;
    uint32_t nblocks;
    size_t bytes_read;
    char version[32];
};

static int cat_slot(const char *code)
{
    if (code[0] < 'A' || code[0] > 'Z' || code[1] < 'a' || code[1] > 'z')
        return -1;
    return (code[0] - 'A') * 26 + (code[1] - 'a');
}

/* Version from a first line like "# PropertyValueAliases-15.0.0.txt". */
static void parse_version(const char *text, char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    const char *dash = strchr(text, '-'), *txt = strstr(text, ".txt");
    const char *nl = strchr(text, '\n');
    if (dash && txt && txt > dash && (!nl || txt < nl) && (size_t)(txt - dash - 1) < cap)
        snprintf(out, cap, "%.*s", (int)(txt - dash - 1), dash + 1);
}

/* PropertyValueAliases.txt: the gc lines give the categories, the sc lines
 * the scripts. Group values (C, L, LC, ...) are not categories of a
 * character; their lines carry a comment listing the members ("# Ll | Lt |
 * Lu"), which is how they are told apart. */
static int load_aliases(struct parse *ps)
{
    size_t len;
    char *text = slurp(ps->dir, "PropertyValueAliases.txt", &len);
    if (!text)
        return 1;
    ps->bytes_read += len;
    parse_version(text, ps->version, sizeof ps->version);
    int rc = 1, r;
    size_t cap = 256;
    ps->script_long = calloc(cap, sizeof *ps->script_long);
    if (!ps->script_long)
        goto out;
    char *cur = text, *line;
    unsigned lineno = 0;
    while ((line = next_line(&cur))) {
        lineno++;
        char *hash = strchr(line, '#');
        int group = hash && strchr(hash, '|');
        if (hash)
            *hash = 0;
        char *f[8];
        int n = split(line, ';', f, 8);
        if (n < 3 || n > 8)
            continue;
        char *prop = trim(f[0]), *code = trim(f[1]), *name = trim(f[2]);
        if (strcmp(prop, "gc") == 0 && !group) {
            int slot = cat_slot(code);
            if (strlen(code) != 2 || slot < 0) {
                fprintf(stderr, "ucd: PropertyValueAliases.txt:%u: odd category %s\n", lineno, code);
                goto out;
            }
            struct ucd_category c = { { code[0], code[1] }, 0 };
            uint64_t idx;
            if ((r = mms_str_new(ps->s, name, strlen(name), &c.name)) ||
                (r = mms_table_append(ps->cat, &c, &idx))) {
                fail_mms("category", r);
                goto out;
            }
            ps->cat_of[slot] = (int)idx;
        } else if (strcmp(prop, "sc") == 0) {
            if (strlen(code) != 4 || strlen(name) >= sizeof ps->script_long[0]) {
                fprintf(stderr, "ucd: PropertyValueAliases.txt:%u: odd script %s\n", lineno, code);
                goto out;
            }
            if (ps->nscripts == cap) {
                void *nb = realloc(ps->script_long, 2 * cap * sizeof *ps->script_long);
                if (!nb)
                    goto out;
                ps->script_long = nb;
                cap *= 2;
            }
            struct ucd_script sc;
            memcpy(sc.code, code, 4);
            uint64_t idx;
            if ((r = mms_str_new(ps->s, name, strlen(name), &sc.name)) ||
                (r = mms_table_append(ps->scr, &sc, &idx))) {
                fail_mms("script", r);
                goto out;
            }
            snprintf(ps->script_long[idx], sizeof ps->script_long[idx], "%s", name);
            if (strcmp(code, "Zzzz") == 0)
                ps->unknown_script = (uint32_t)idx;
            ps->nscripts = (uint32_t)idx + 1;
        }
    }
    if (mms_table_count(ps->cat) == 0 || ps->nscripts == 0) {
        fprintf(stderr, "ucd: PropertyValueAliases.txt has no gc or sc values\n");
        goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

/* Blocks.txt: "0000..007F; Basic Latin", in code point order. */
static int load_blocks(struct parse *ps)
{
    size_t len;
    char *text = slurp(ps->dir, "Blocks.txt", &len);
    if (!text)
        return 1;
    ps->bytes_read += len;
    int rc = 1, r;
    uint32_t cap = 512;
    ps->block_first = malloc(cap * sizeof(uint32_t));
    ps->block_last = malloc(cap * sizeof(uint32_t));
    if (!ps->block_first || !ps->block_last)
        goto out;
    char *cur = text, *line;
    unsigned lineno = 0;
    while ((line = next_line(&cur))) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *f[3];
        if (split(line, ';', f, 2) != 2)
            continue;
        struct ucd_block b;
        char *name = trim(f[1]);
        if (parse_cp_range(trim(f[0]), &b.first, &b.last) || !*name ||
            (ps->nblocks && b.first <= ps->block_last[ps->nblocks - 1]) || ps->nblocks == cap) {
            fprintf(stderr, "ucd: Blocks.txt:%u: not a block in order\n", lineno);
            goto out;
        }
        if ((r = mms_str_new(ps->s, name, strlen(name), &b.name)) ||
            (r = mms_table_append(ps->blk, &b, NULL))) {
            fail_mms("block", r);
            goto out;
        }
        ps->block_first[ps->nblocks] = b.first;
        ps->block_last[ps->nblocks++] = b.last;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

/* Scripts.txt: "0041..005A    ; Latin # ...". Code points it does not list
 * are Unknown (Zzzz). */
static int load_scripts(struct parse *ps)
{
    size_t len;
    char *text = slurp(ps->dir, "Scripts.txt", &len);
    if (!text)
        return 1;
    ps->bytes_read += len;
    int rc = 1;
    ps->script_of = malloc(CP_LIMIT * sizeof(uint16_t));
    if (!ps->script_of)
        goto out;
    for (uint32_t cp = 0; cp < CP_LIMIT; cp++)
        ps->script_of[cp] = (uint16_t)ps->unknown_script;
    char *cur = text, *line;
    unsigned lineno = 0;
    while ((line = next_line(&cur))) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *f[3];
        if (split(line, ';', f, 2) != 2)
            continue;
        uint32_t first, last, k;
        char *name = trim(f[1]);
        if (parse_cp_range(trim(f[0]), &first, &last)) {
            fprintf(stderr, "ucd: Scripts.txt:%u: bad code point range\n", lineno);
            goto out;
        }
        for (k = 0; k < ps->nscripts && strcmp(ps->script_long[k], name) != 0; k++)
            ;
        if (k == ps->nscripts) {
            fprintf(stderr, "ucd: Scripts.txt:%u: script %s is not in PropertyValueAliases.txt\n",
                    lineno, name);
            goto out;
        }
        for (uint32_t cp = first; cp <= last; cp++)
            ps->script_of[cp] = (uint16_t)k;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

/* The block holding cp, or 0 (the null ref). */
static mms_ref block_ref(const struct parse *ps, uint32_t cp)
{
    uint32_t lo = 0, hi = ps->nblocks;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (ps->block_last[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ps->nblocks && ps->block_first[lo] <= cp ? mms_table_ref(ps->blk, lo) : 0;
}

/* How a range entry of UnicodeData.txt is stored: its characters' names
 * are derived from the code point (rules NR1 and NR2 of the Unicode
 * standard, section 4.8) for ideographs and Hangul syllables: those are
 * expanded into char records. Anything else (private use, surrogates) stays
 * a range. */
enum range_kind { RANGE_KEEP, RANGE_CJK, RANGE_TANGUT, RANGE_HANGUL };

static enum range_kind range_kind(const char *label)
{
    if (strncmp(label, "<CJK Ideograph", 14) == 0)
        return RANGE_CJK;
    if (strncmp(label, "<Tangut Ideograph", 17) == 0)
        return RANGE_TANGUT;
    if (strncmp(label, "<Hangul Syllable", 16) == 0)
        return RANGE_HANGUL;
    return RANGE_KEEP;
}

/* The name of a Hangul syllable (rule NR1: the short names of its jamo). */
static void hangul_name(uint32_t cp, char *out, size_t cap)
{
    static const char *const jl[19] = { "G", "GG", "N", "D", "DD", "R", "M", "B", "BB", "S",
                                        "SS", "", "J", "JJ", "C", "K", "T", "P", "H" };
    static const char *const jv[21] = { "A", "AE", "YA", "YAE", "EO", "E", "YEO", "YE", "O",
                                        "WA", "WAE", "OE", "YO", "U", "WEO", "WE", "WI", "YU",
                                        "EU", "YI", "I" };
    static const char *const jt[28] = { "", "G", "GG", "GS", "N", "NJ", "NH", "D", "L", "LG",
                                        "LM", "LB", "LS", "LT", "LP", "LH", "M", "B", "BS", "S",
                                        "SS", "NG", "J", "C", "K", "T", "P", "H" };
    uint32_t s = cp - 0xAC00;
    snprintf(out, cap, "HANGUL SYLLABLE %s%s%s", jl[s / (21 * 28)], jv[s % (21 * 28) / 28],
             jt[s % 28]);
}

static int is_range_first(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '<' && n > 8 && strcmp(name + n - 8, ", First>") == 0;
}

/* One line of UnicodeData.txt, split into its 15 fields. */
struct ud_line {
    char *f[15];
    uint32_t cp, last; /* last > cp for a range */
};

static int str_or_null(mms_store *s, const char *text, mms_ref *out)
{
    *out = 0;
    return *text ? mms_str_new(s, text, strlen(text), out) : 0;
}

/* Fill one char record from a line (and, for an expanded range, the code
 * point and derived name). */
static int fill_char(struct parse *ps, struct ucd_char *c, const struct ud_line *l, uint32_t cp,
                     const char *name)
{
    char *const *f = l->f;
    int r, slot = strlen(f[2]) == 2 ? cat_slot(f[2]) : -1;
    if (slot < 0 || ps->cat_of[slot] < 0 || strlen(f[4]) >= sizeof c->bidi) {
        fprintf(stderr, "ucd: UnicodeData.txt: U+%04X: unknown category %s or bidi class %s\n",
                (unsigned)cp, f[2], f[4]);
        return MMS_EINVAL;
    }
    c->cp = cp;
    c->category = mms_table_ref(ps->cat, (uint64_t)ps->cat_of[slot]);
    c->block = block_ref(ps, cp);
    c->script = mms_table_ref(ps->scr, ps->script_of[cp]);
    c->combining = (uint8_t)strtoul(f[3], NULL, 10);
    memcpy(c->bidi, f[4], strlen(f[4]));
    c->mirrored = f[9][0] == 'Y';
    c->upper = c->lower = c->title = 0;
    if ((*f[12] && parse_cp(f[12], &c->upper)) || (*f[13] && parse_cp(f[13], &c->lower)) ||
        (*f[14] && parse_cp(f[14], &c->title))) {
        fprintf(stderr, "ucd: UnicodeData.txt: U+%04X: bad case mapping\n", (unsigned)cp);
        return MMS_EINVAL;
    }
    c->numval = NAN;
    if (*f[8]) {
        char *slash;
        c->numval = strtod(f[8], &slash);
        if (*slash == '/')
            c->numval /= strtod(slash + 1, NULL);
    }
    if ((r = mms_str_new(ps->s, name, strlen(name), &c->name)) ||
        (r = str_or_null(ps->s, f[10], &c->old_name)) ||
        (r = str_or_null(ps->s, f[8], &c->numeric)) ||
        (r = str_or_null(ps->s, f[5], &c->decomp))) {
        fail_mms("string", r);
        return r;
    }
    return 0;
}

/* UnicodeData.txt: split every line first, count the records the char and
 * range tables need, append them with append_many, then fill them in place. */
static int load_chars(struct parse *ps, uint64_t *expanded, uint64_t *expanded_ranges)
{
    size_t len;
    char *text = slurp(ps->dir, "UnicodeData.txt", &len);
    if (!text)
        return 1;
    ps->bytes_read += len;
    int rc = 1, r;
    size_t nlines = 0, cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == '\n';
    struct ud_line *lines = calloc(cap, sizeof *lines);
    if (!lines)
        goto out;

    /* Pass 1: split, pair up ranges, count. */
    uint64_t nchars = 0, nranges = 0;
    char *cur = text, *line;
    unsigned lineno = 0;
    while ((line = next_line(&cur))) {
        lineno++;
        if (!*trim(line))
            continue;
        struct ud_line *l = &lines[nlines];
        if (split(line, ';', l->f, 15) != 15 || parse_cp(l->f[0], &l->cp) ||
            (nlines && l->cp <= lines[nlines - 1].last)) {
            fprintf(stderr, "ucd: UnicodeData.txt:%u: not 15 fields, or out of order\n", lineno);
            goto out;
        }
        l->last = l->cp;
        if (is_range_first(l->f[1])) {
            /* The next line is <..., Last>; only its code point matters. */
            char *f2[15];
            line = next_line(&cur);
            lineno++;
            size_t plen = strlen(l->f[1]) - 6; /* "<Name, " */
            if (!line || split(line, ';', f2, 15) != 15 || parse_cp(f2[0], &l->last) ||
                l->last <= l->cp || strncmp(f2[1], l->f[1], plen) != 0 ||
                strcmp(f2[1] + plen, "Last>") != 0) {
                fprintf(stderr, "ucd: UnicodeData.txt:%u: range without its Last line\n", lineno);
                goto out;
            }
            if (range_kind(l->f[1]) == RANGE_KEEP) {
                nranges++;
            } else {
                nchars += (uint64_t)l->last - l->cp + 1;
                (*expanded)++;
                *expanded_ranges += (uint64_t)l->last - l->cp + 1;
            }
        } else {
            nchars++;
        }
        nlines++;
    }

    /* Pass 2: fill the records in place. The table arrays do not move when
     * the heap grows (mappings never move), so the pointers stay good. */
    uint64_t first;
    void *char_at, *range_at = NULL;
    if ((r = mms_table_append_many(ps->chr, nchars, &first, &char_at)) ||
        (nranges && (r = mms_table_append_many(ps->rng, nranges, &first, &range_at)))) {
        fail_mms("append", r);
        goto out;
    }
    struct ucd_char *c = char_at;
    struct ucd_range *ranges = range_at;
    char name[96];
    for (size_t i = 0; i < nlines; i++) {
        const struct ud_line *l = &lines[i];
        if (l->last == l->cp) {
            if (fill_char(ps, c++, l, l->cp, l->f[1]))
                goto out;
            continue;
        }
        enum range_kind k = range_kind(l->f[1]);
        if (k == RANGE_KEEP) {
            int slot = strlen(l->f[2]) == 2 ? cat_slot(l->f[2]) : -1;
            if (slot < 0 || ps->cat_of[slot] < 0) {
                fprintf(stderr, "ucd: UnicodeData.txt: range U+%04X: unknown category %s\n",
                        (unsigned)l->cp, l->f[2]);
                goto out;
            }
            ranges->first = l->cp;
            ranges->last = l->last;
            ranges->category = mms_table_ref(ps->cat, (uint64_t)ps->cat_of[slot]);
            ranges->block = block_ref(ps, l->cp);
            ranges->script = mms_table_ref(ps->scr, ps->script_of[l->cp]);
            /* "<Private Use, First>" -> "Private Use" */
            size_t n = strlen(l->f[1]) - 9;
            if ((r = mms_str_new(ps->s, l->f[1] + 1, n, &ranges->name))) {
                fail_mms("string", r);
                goto out;
            }
            ranges++;
            continue;
        }
        for (uint32_t cp = l->cp; cp <= l->last; cp++) {
            if (k == RANGE_HANGUL)
                hangul_name(cp, name, sizeof name);
            else
                snprintf(name, sizeof name, "%s-%04X",
                         k == RANGE_CJK ? "CJK UNIFIED IDEOGRAPH" : "TANGUT IDEOGRAPH",
                         (unsigned)cp);
            if (fill_char(ps, c++, l, cp, name))
                goto out;
        }
    }
    rc = 0;
out:
    free(lines);
    free(text);
    return rc;
}

static int cmd_build(const char *path, const char *dir)
{
    struct parse ps;
    memset(&ps, 0, sizeof ps);
    ps.dir = dir;
    for (int i = 0; i < 26 * 26; i++)
        ps.cat_of[i] = -1;

    /* Missing input is the common mistake: find it before creating the
     * store. */
    static const char *const inputs[] = { "PropertyValueAliases.txt", "Blocks.txt",
                                          "Scripts.txt", "UnicodeData.txt" };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char in[4096];
        snprintf(in, sizeof in, "%s/%s", dir, inputs[i]);
        if (access(in, R_OK) != 0) {
            fprintf(stderr, "ucd: cannot read %s: %s\n", in, strerror(errno));
            fprintf(stderr, "ucd: install the Unicode Character Database (Debian: "
                            "apt-get install unicode-data) or pass its directory\n");
            return 1;
        }
    }

    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_EXCL;
    int rc = 1, r;
    double t0 = now_us();
    if ((r = mms_open(path, &o, &ps.s))) {
        if (r == -EEXIST)
            fprintf(stderr, "ucd: %s exists; remove it to build it again\n", path);
        else
            fail_mms("cannot open the store", r);
        return 1;
    }
    if ((r = mms_txn_begin(ps.s, 0))) {
        fail_mms("begin", r);
        goto out;
    }
    /* Targets first: a REF field's table must exist. */
    if ((r = mms_table_open(ps.s, "category", &category_schema, MMS_TABLE_CREATE, &ps.cat)) ||
        (r = mms_table_open(ps.s, "script", &script_schema, MMS_TABLE_CREATE, &ps.scr)) ||
        (r = mms_table_open(ps.s, "block", &block_schema, MMS_TABLE_CREATE, &ps.blk)) ||
        (r = mms_table_open(ps.s, "char", &char_schema, MMS_TABLE_CREATE, &ps.chr)) ||
        (r = mms_table_open(ps.s, "range", &range_schema, MMS_TABLE_CREATE, &ps.rng))) {
        fail_mms("create tables", r);
        goto out;
    }
    uint64_t expanded = 0, expanded_cps = 0;
    if (load_aliases(&ps) || load_blocks(&ps) || load_scripts(&ps) ||
        load_chars(&ps, &expanded, &expanded_cps))
        goto out;
    mms_ref version;
    if ((r = mms_str_new(ps.s, ps.version, strlen(ps.version), &version)) ||
        (r = mms_root_set(ps.s, version))) {
        fail_mms("root", r);
        goto out;
    }
    /* Code points are found through an index (a bulk build, in this
     * transaction), not by a search of our own. */
    if ((r = mms_index_create(ps.chr, "cp", MMS_INDEX_ORDERED | MMS_INDEX_UNIQUE))) {
        fail_mms("index char.cp", r);
        goto out;
    }
    double t1 = now_us();
    if ((r = mms_txn_commit(ps.s))) {
        fail_mms("commit", r);
        goto out;
    }
    double t2 = now_us();
    mms_info info;
    uint64_t bytes = 0;
    if (mms_info_get(ps.s, &info) == 0)
        for (uint32_t i = 0; i < info.nregions; i++)
            bytes += info.region_size[i];
    uint64_t nchars = mms_table_count(ps.chr), nranges = mms_table_count(ps.rng);
    uint64_t ncats = mms_table_count(ps.cat), nblocks = mms_table_count(ps.blk);
    r = mms_close(ps.s);
    ps.s = NULL;
    double t3 = now_us();
    if (r) {
        fail_mms("close", r);
        goto out;
    }
    printf("read %.1f MB of UCD %s text from %s\n", ps.bytes_read / 1e6, ps.version, dir);
    printf("parsed it into %s in %.0f us, in one write transaction:\n", path, t1 - t0);
    printf("    %llu chars (%llu of them expanded from %llu ranges: ideographs, Hangul "
           "syllables)\n",
           (unsigned long long)nchars, (unsigned long long)expanded_cps,
           (unsigned long long)expanded);
    printf("    %llu ranges kept as ranges (private use, surrogates), %llu categories, "
           "%llu blocks, %u scripts\n",
           (unsigned long long)nranges, (unsigned long long)ncats, (unsigned long long)nblocks,
           ps.nscripts);
    printf("committed in %.0f us, closed (checkpoint) in %.0f us: %.1f MB in the store\n",
           t2 - t1, t3 - t2, bytes / 1e6);
    printf("parse once: %.0f us in all\n", t3 - t0);
    rc = 0;
out:
    if (ps.s) {
        mms_close(ps.s); /* aborts the transaction: the store stays empty */
        fprintf(stderr, "ucd: nothing was stored; remove %s before building again\n", path);
    }
    free(ps.script_long);
    free(ps.script_of);
    free(ps.block_first);
    free(ps.block_last);
    return rc;
}

/* ------------------------------------------------------------------------
 * query
 * ------------------------------------------------------------------------ */

struct db {
    mms_store *s;
    mms_table *cat, *scr, *blk, *chr, *rng;
    mms_index *cp;   /* the ordered index on char.cp */
    mms_cursor *cur; /* a cursor of it */
    const struct ucd_char *chars;
    const struct ucd_range *ranges;
    const struct ucd_block *blocks;
    uint64_t nchars, nranges, nblocks, ncats, nscripts;
};

/* The string a ref names, "?" for a null or bad one. */
static const char *str(const struct db *db, mms_ref r)
{
    const char *p = mms_str_get(db->s, r, NULL);
    return p ? p : "?";
}

/* The char record of cp, or NULL: through the index on char.cp. */
static const struct ucd_char *char_find(const struct db *db, uint32_t cp)
{
    uint64_t i;
    return mms_index_find(db->cp, &cp, &i) == 0 && i < db->nchars ? &db->chars[i] : NULL;
}

/* How to show a character: the glyph for letters, numbers, punctuation and
 * symbols, on a dotted circle for marks, nothing for the rest. */
static const char *glyph(char *b, uint32_t cp, const struct ucd_category *cat)
{
    switch (cat->code[0]) {
    case 'L': case 'N': case 'P': case 'S':
        utf8_put(b, cp);
        return b;
    case 'M':
        utf8_put(b, 0x25CC);
        utf8_put(b + 3, cp);
        return b;
    default:
        return "";
    }
}

/* glyph() followed by a space, or nothing. */
static const char *glyph_sp(char *b, uint32_t cp, const struct ucd_category *cat)
{
    if (!*glyph(b, cp, cat))
        return "";
    strcat(b, " ");
    return b;
}

static const char *block_name(const struct db *db, mms_ref b)
{
    return b ? str(db, MMS_REC(db->s, struct ucd_block, b)->name) : "No_Block";
}

static void q_lookup(const struct db *db, uint32_t cp)
{
    char g[16];
    const struct ucd_char *c = char_find(db, cp);
    if (c) {
        const struct ucd_category *cat = MMS_REC(db->s, struct ucd_category, c->category);
        const struct ucd_script *sc = MMS_REC(db->s, struct ucd_script, c->script);
        printf("U+%04X %s%s", (unsigned)cp, glyph_sp(g, cp, cat), str(db, c->name));
        if (c->old_name)
            printf(" (1.0: %s)", str(db, c->old_name));
        printf("\n    category %.2s %s, block %s, script %s (%.4s), bidi %.4s", cat->code,
               str(db, cat->name), block_name(db, c->block), str(db, sc->name), sc->code,
               c->bidi);
        if (c->lower)
            printf(", lowercase U+%04X", (unsigned)c->lower);
        if (c->upper)
            printf(", uppercase U+%04X", (unsigned)c->upper);
        if (c->numeric)
            printf(", numeric %s = %g", str(db, c->numeric), c->numval);
        if (c->decomp)
            printf(", decomposition %s", str(db, c->decomp));
        printf("\n");
        return;
    }
    for (uint64_t i = 0; i < db->nranges; i++) {
        const struct ucd_range *rg = &db->ranges[i];
        if (rg->first <= cp && cp <= rg->last) {
            const struct ucd_category *cat = MMS_REC(db->s, struct ucd_category, rg->category);
            printf("U+%04X <%s> (range U+%04X..U+%04X)\n    category %.2s %s, block %s\n",
                   (unsigned)cp, str(db, rg->name), (unsigned)rg->first, (unsigned)rg->last,
                   cat->code, str(db, cat->name), block_name(db, rg->block));
            return;
        }
    }
    const char *bn = "No_Block";
    for (uint64_t i = 0; i < db->nblocks; i++)
        if (db->blocks[i].first <= cp && cp <= db->blocks[i].last)
            bn = str(db, db->blocks[i].name);
    printf("U+%04X is not assigned (Cn Unassigned), block %s\n", (unsigned)cp, bn);
}

/* Does name contain word as a whole word (words are separated by spaces
 * and hyphens)? word is in upper case, as names are. */
static int has_word(const char *name, const char *word, size_t wlen)
{
    for (const char *p = name; (p = strstr(p, word)); p++)
        if ((p == name || p[-1] == ' ' || p[-1] == '-') &&
            (p[wlen] == 0 || p[wlen] == ' ' || p[wlen] == '-'))
            return 1;
    return 0;
}

static void q_word(const struct db *db, const char *arg)
{
    char word[128];
    size_t n = 0;
    for (; arg[n] && n < sizeof word - 1; n++)
        word[n] = (char)toupper((unsigned char)arg[n]);
    word[n] = 0;
    enum { SHOW = 5 };
    const struct ucd_char *hit[SHOW];
    uint64_t count = 0;
    for (uint64_t i = 0; i < db->nchars; i++) {
        if (has_word(str(db, db->chars[i].name), word, n)) {
            if (count < SHOW)
                hit[count] = &db->chars[i];
            count++;
        }
    }
    printf("word %s: %llu names contain it%s\n", word, (unsigned long long)count,
           count > SHOW ? ", the first 5:" : "");
    char g[16];
    for (uint64_t i = 0; i < count && i < SHOW; i++) {
        const struct ucd_category *cat = MMS_REC(db->s, struct ucd_category, hit[i]->category);
        printf("    U+%04X %s%s (%.2s, %s)\n", (unsigned)hit[i]->cp, glyph_sp(g, hit[i]->cp, cat),
               str(db, hit[i]->name), cat->code, block_name(db, hit[i]->block));
    }
}

/* Block names compare loosely (UAX #44 LM3): case, spaces, '-' and '_' do
 * not matter. */
static int loose_eq(const char *a, const char *b)
{
    for (;;) {
        while (*a == ' ' || *a == '-' || *a == '_')
            a++;
        while (*b == ' ' || *b == '-' || *b == '_')
            b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
        if (!*a)
            return 1;
        a++, b++;
    }
}

static void q_block(const struct db *db, const char *arg)
{
    uint64_t b;
    for (b = 0; b < db->nblocks && !loose_eq(str(db, db->blocks[b].name), arg); b++)
        ;
    if (b == db->nblocks) {
        printf("block %s: no such block\n", arg);
        return;
    }
    const struct ucd_block *blk = &db->blocks[b];
    mms_ref bref = mms_table_ref(db->blk, b);
    /* The block's characters are one run of the char table: find its
     * start, then follow the records whose block ref is this block. */
    uint32_t first = blk->first;
    uint64_t lo;
    if (mms_cursor_seek(db->cur, MMS_SEEK_GE, &first, &lo, NULL) != 0 || lo > db->nchars)
        lo = db->nchars;
    uint64_t end = lo;
    while (end < db->nchars && db->chars[end].block == bref)
        end++;
    uint64_t in_ranges = 0;
    for (uint64_t i = 0; i < db->nranges; i++)
        if (db->ranges[i].block == bref)
            in_ranges += db->ranges[i].last - db->ranges[i].first + 1;
    printf("block %s U+%04X..U+%04X: %llu characters", str(db, blk->name), (unsigned)blk->first,
           (unsigned)blk->last, (unsigned long long)(end - lo));
    if (in_ranges)
        printf(" and %llu code points in ranges", (unsigned long long)in_ranges);
    printf("\n");
    enum { PER_LINE = 32, MAX_SHOWN = 128 };
    char g[16];
    uint64_t shown = 0;
    for (uint64_t i = lo; i < end && shown < MAX_SHOWN; i++) {
        const struct ucd_char *c = &db->chars[i];
        const char *s = glyph(g, c->cp, MMS_REC(db->s, struct ucd_category, c->category));
        if (!*s)
            continue;
        printf("%s%s", shown % PER_LINE ? "" : "    ", s);
        if (++shown % PER_LINE == 0)
            printf("\n");
    }
    if (shown % PER_LINE)
        printf("\n");
    if (end - lo > shown)
        printf("    (%llu more not shown: controls, spaces, or past the first %d)\n",
               (unsigned long long)(end - lo - shown), MAX_SHOWN);
}

struct tally {
    uint64_t n, idx;
};

static int tally_desc(const void *a, const void *b)
{
    const struct tally *x = a, *y = b;
    return x->n < y->n ? 1 : x->n > y->n ? -1 : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Counts by the index of a ref field's record (a ref's slot is the
 * record's index). */
static struct tally *count_by(const struct db *db, size_t field, uint64_t nvalues)
{
    struct tally *t = calloc(nvalues ? nvalues : 1, sizeof *t);
    if (!t)
        return NULL;
    for (uint64_t i = 0; i < nvalues; i++)
        t[i].idx = i;
    for (uint64_t i = 0; i < db->nchars; i++) {
        mms_ref r;
        memcpy(&r, (const char *)&db->chars[i] + field, sizeof r);
        uint64_t k = MMS_REF_SLOT(r);
        if (k < nvalues)
            t[k].n++;
    }
    qsort(t, nvalues, sizeof *t, tally_desc);
    return t;
}

static void q_categories(const struct db *db)
{
    struct tally *t = count_by(db, offsetof(struct ucd_char, category), db->ncats);
    if (!t) {
        printf("categories: out of memory\n");
        return;
    }
    printf("characters per general category, top 10 of %llu:\n", (unsigned long long)db->ncats);
    for (uint64_t i = 0; i < 10 && i < db->ncats; i++) {
        const struct ucd_category *c = mms_table_get(db->cat, t[i].idx);
        printf("    %.2s %-22s %7llu\n", c->code, str(db, c->name), (unsigned long long)t[i].n);
    }
    /* The ranges kept as ranges, by category. */
    uint64_t *in_ranges = calloc(db->ncats ? db->ncats : 1, sizeof *in_ranges);
    for (uint64_t i = 0; in_ranges && i < db->nranges; i++) {
        uint64_t k = MMS_REF_SLOT(db->ranges[i].category);
        if (k < db->ncats)
            in_ranges[k] += db->ranges[i].last - db->ranges[i].first + 1;
    }
    const char *sep = "    and code points in ranges (private use, surrogates): ";
    for (uint64_t k = 0; in_ranges && k < db->ncats; k++) {
        if (in_ranges[k]) {
            const struct ucd_category *c = mms_table_get(db->cat, k);
            printf("%s%.2s %llu", sep, c->code, (unsigned long long)in_ranges[k]);
            sep = ", ";
        }
    }
    if (in_ranges && db->nranges)
        printf("\n");
    free(in_ranges);
    free(t);
}

static void q_scripts(const struct db *db)
{
    struct tally *t = count_by(db, offsetof(struct ucd_char, script), db->nscripts);
    if (!t) {
        printf("scripts: out of memory\n");
        return;
    }
    const struct ucd_script *top = mms_table_get(db->scr, t[0].idx);
    printf("script with the most characters: %s (%.4s), %llu of %llu; then", str(db, top->name),
           top->code, (unsigned long long)t[0].n, (unsigned long long)db->nchars);
    for (uint64_t i = 1; i < 6 && i < db->nscripts; i++) {
        const struct ucd_script *sc = mms_table_get(db->scr, t[i].idx);
        printf("%s %s %llu", i > 1 ? "," : "", str(db, sc->name), (unsigned long long)t[i].n);
    }
    printf("\n");
    free(t);
}

enum qkind { Q_LOOKUP, Q_WORD, Q_BLOCK, Q_CATEGORIES, Q_SCRIPTS };
struct query {
    enum qkind kind;
    uint32_t cp;
    const char *arg;
};

static int parse_query(const char *a, struct query *q)
{
    long cp;
    q->arg = a;
    if ((a[0] == 'U' || a[0] == 'u') && a[1] == '+')
        return q->kind = Q_LOOKUP, parse_cp(a + 2, &q->cp);
    if (strncmp(a, "word:", 5) == 0 && a[5])
        return q->kind = Q_WORD, q->arg = a + 5, 0;
    if (strncmp(a, "block:", 6) == 0 && a[6])
        return q->kind = Q_BLOCK, q->arg = a + 6, 0;
    if (strcmp(a, "categories") == 0)
        return q->kind = Q_CATEGORIES, 0;
    if (strcmp(a, "scripts") == 0)
        return q->kind = Q_SCRIPTS, 0;
    if ((cp = utf8_single(a)) >= 0)
        return q->kind = Q_LOOKUP, q->cp = (uint32_t)cp, 0;
    return -1;
}

static void run_query(const struct db *db, const struct query *q)
{
    switch (q->kind) {
    case Q_LOOKUP: q_lookup(db, q->cp); break;
    case Q_WORD: q_word(db, q->arg); break;
    case Q_BLOCK: q_block(db, q->arg); break;
    case Q_CATEGORIES: q_categories(db); break;
    case Q_SCRIPTS: q_scripts(db); break;
    }
}

static int cmd_query(const char *path, int nargs, char **args)
{
    static char *const defaults[] = { "U+1F600", "word:CAT", "block:Emoticons", "categories",
                                      "scripts" };
    char *const *qa = nargs ? args : defaults;
    int nq = nargs ? nargs : (int)(sizeof defaults / sizeof defaults[0]);
    struct query *qs = calloc((size_t)nq, sizeof *qs);
    if (!qs)
        return 1;
    for (int i = 0; i < nq; i++) {
        if (parse_query(qa[i], &qs[i])) {
            fprintf(stderr, "ucd: unknown query %s (U+XXXX, a character, word:WORD, "
                            "block:NAME, categories, scripts)\n", qa[i]);
            free(qs);
            return 2;
        }
    }
    /* Print into one buffer, written at exit, so that the times measure the
     * queries rather than the terminal. */
    static char outbuf[1 << 17];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

    struct db db;
    memset(&db, 0, sizeof db);
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    int rc = 1, r;
    double t0 = now_us();
    if ((r = mms_open(path, &o, &db.s))) {
        fail_mms("cannot open the store", r);
        if (r == -ENOENT)
            fprintf(stderr, "ucd: build it first: ucd build %s\n", path);
        goto out;
    }
    if ((r = mms_table_open(db.s, "category", &category_schema, 0, &db.cat)) ||
        (r = mms_table_open(db.s, "script", &script_schema, 0, &db.scr)) ||
        (r = mms_table_open(db.s, "block", &block_schema, 0, &db.blk)) ||
        (r = mms_table_open(db.s, "char", &char_schema, 0, &db.chr)) ||
        (r = mms_table_open(db.s, "range", &range_schema, 0, &db.rng))) {
        fail_mms("open tables", r);
        goto out;
    }
    /* One read transaction: the queries see one committed state. */
    if ((r = mms_read_begin(db.s))) {
        fail_mms("read", r);
        goto out;
    }
    if ((r = mms_index_open(db.chr, "cp", &db.cp)) || (r = mms_cursor_open(db.cp, &db.cur))) {
        fprintf(stderr, "ucd: the store has no index on char.cp; rebuild it: ucd build %s\n", path);
        fail_mms("index char.cp", r);
        goto out;
    }
    /* ucd build never deletes, so every slot is live and the arrays are
     * dense; a store changed by something else is refused. */
    mms_table *all[] = { db.cat, db.scr, db.blk, db.chr, db.rng };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (mms_table_count(all[i]) != mms_table_slots(all[i])) {
            fprintf(stderr, "ucd: table %s has deleted records; rebuild the store\n",
                    mms_table_name(all[i]));
            mms_read_end(db.s);
            goto out;
        }
    }
    db.chars = mms_table_array(db.chr);
    db.ranges = mms_table_array(db.rng);
    db.blocks = mms_table_array(db.blk);
    db.nchars = mms_table_count(db.chr);
    db.nranges = mms_table_count(db.rng);
    db.nblocks = mms_table_count(db.blk);
    db.ncats = mms_table_count(db.cat);
    db.nscripts = mms_table_count(db.scr);
    double t1 = now_us();
    printf("opened %s read-only: UCD %s, %llu chars, %llu ranges, %llu blocks, %llu scripts "
           "(%.0f us)\n",
           path, str(&db, mms_root(db.s)), (unsigned long long)db.nchars,
           (unsigned long long)db.nranges, (unsigned long long)db.nblocks,
           (unsigned long long)db.nscripts, t1 - t0);
    for (int i = 0; i < nq; i++) {
        double a = now_us();
        run_query(&db, &qs[i]);
        double b = now_us();
        printf("    (%.0f us)\n", b - a);
        if (i == 0)
            printf("open + first answer: %.0f us\n", b - t0);
    }
    mms_read_end(db.s);
    rc = 0;
out:
    fflush(stdout);
    mms_cursor_close(db.cur);
    if ((r = mms_close(db.s)) && rc == 0)
        rc = fail_mms("close", r);
    free(qs);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "build") == 0 && argc <= 4)
        return cmd_build(argv[2], argc == 4 ? argv[3] : "/usr/share/unicode");
    if (argc >= 3 && strcmp(argv[1], "query") == 0)
        return cmd_query(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: ucd build STORE.mms [UCD_DIR]   (default /usr/share/unicode)\n"
                    "       ucd query STORE.mms [QUERY...]\n"
                    "queries: U+XXXX or a character, word:WORD, block:NAME, categories, scripts\n");
    return 2;
}
