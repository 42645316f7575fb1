/*
 * test_c99.c -- a table program in C99 with -pedantic -Werror (issue 15,
 * item 7): the header has no C11 construct left for C99 to warn about
 * (with GCC or Clang the MMS_F_* type checks use __builtin_types_compatible_p
 * instead of _Generic), and the program runs.
 *
 * With MMS_CC set (ctest sets it to the C compiler), this file is compiled
 * again as C99 once per MMS_BAD case, each a field that does not match its
 * macro, and each must fail. Standalone: test.h is C11 and GNU.
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MMS_BAD
#define MMS_BAD 0
#endif

struct point {
    int32_t x, y;
    double w;
    float f;
    uint8_t ok;
    mms_ref label;
};

static const mms_field point_fields[] = {
    MMS_F_I32(struct point, x), MMS_F_I32(struct point, y), MMS_F_F64(struct point, w),
    MMS_F_F32(struct point, f), MMS_F_BOOL(struct point, ok), MMS_F_STR(struct point, label),
#if MMS_BAD == 1
    MMS_F_U32(struct point, x), /* signed field, unsigned kind */
#elif MMS_BAD == 2
    MMS_F_I64(struct point, x), /* 4 bytes, 8-byte kind */
#elif MMS_BAD == 3
    MMS_F_F32(struct point, w), /* double, not float */
#elif MMS_BAD == 4
    MMS_F_F32(struct point, x), /* an integer as a float */
#elif MMS_BAD == 5
    MMS_F_STR(struct point, w), /* a double as a string ref */
#endif
};
static const mms_schema point_schema = MMS_SCHEMA(struct point, point_fields);

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "%s:%d: %s failed (%s)\n", __FILE__, __LINE__, #c, \
                    mms_errdetail());                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

static void bad_fields_do_not_compile(void)
{
    const char *cc = getenv("MMS_CC"), *inc = getenv("MMS_INCLUDE");
    if (!cc || !inc) {
        fprintf(stderr, "   MMS_CC or MMS_INCLUDE not set: compile checks skipped\n");
        return;
    }
    for (int k = 0; k <= 5; k++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' -std=c99 -pedantic -Wall -Wextra -Werror "
                 "-fsyntax-only -I'%s' -DMMS_BAD=%d '%s' 2>/dev/null", cc, inc, k, __FILE__);
        int st = system(cmd);
        int ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (ok != (k == 0)) {
            fprintf(stderr, "MMS_BAD=%d %s:\n  %s\n", k,
                    k ? "compiled, but the field does not match its kind" : "fails", cmd);
            abort();
        }
    }
    fprintf(stderr, "   5 mismatched fields refused by the C99 compiler\n");
}

int main(void)
{
    const char *base = getenv("MMS_TEST_TMP");
    char dir[600], cmd[700];
    snprintf(dir, sizeof dir, "%s", base ? base : "/tmp/mms-test");
    mkdir(dir, 0777);
    snprintf(dir, sizeof dir, "%s/c99.%d.mms", base ? base : "/tmp/mms-test", (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);

    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE;
    mms_store *s;
    CHECK(mms_open(dir, &o, &s) == 0);
    mms_table *t;
    CHECK(mms_txn_begin(s, 0) == 0);
    CHECK(mms_table_open(s, "points", &point_schema, MMS_TABLE_CREATE, &t) == 0);
    for (int i = 0; i < 100; i++) {
        struct point p = {i, -i, i / 4.0, 0.5f, 1, 0};
        CHECK(mms_str_new(s, "p", 1, &p.label) == 0);
        CHECK(mms_table_append(t, &p, NULL) == 0);
    }
    CHECK(mms_txn_commit(s) == 0);
    struct point *p = MMS_TABLE_GET(t, struct point, 42);
    CHECK(p && p->x == 42 && p->y == -42 && p->w == 10.5);
    CHECK(strcmp(mms_str_get(s, p->label, NULL), "p") == 0);
    char msg[256];
    CHECK(mms_verify(s, msg, sizeof msg) == 0);
    CHECK(mms_close(s) == 0);
    CHECK(system(cmd) == 0);
    bad_fields_do_not_compile();
    printf("c99 ok\n");
    return 0;
}
