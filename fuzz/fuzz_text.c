/*
 * fuzz_text.c -- fuzz target: the text the `mms` tool reads, through its
 * own commands (tools/, in the same process).
 *
 * The first byte of an input says what the rest is:
 *
 *   bit 7 clear: a whole-store dump (`mms dump DIR --all`) for `mms load`.
 *       If the load succeeds, the new store must open and pass mms_verify.
 *   bit 7 set: a CSV file for `mms import DIR t FILE`, with --schema when
 *       bit 0 is set (the spec is the rest's first line), --skip-bad with
 *       bit 1, --keep-text with bit 2. If the import succeeds, the store
 *       must open and verify, and `mms dump DIR t` must succeed. With a
 *       schema and no ref field, the dump must import back under the same
 *       schema into a new store whose dump is the same, byte for byte
 *       (dump and import are each other's inverse on what import took).
 *
 * A failed load or import is fine (the input is garbage most of the time);
 * a crash, a sanitizer report, a store that does not verify or a round
 * trip that differs is a finding: the target aborts.
 *
 * Scratch files go to $MMS_TEST_TMP (else /tmp), named by the pid. The
 * commands' messages go to stderr (libFuzzer's -close_fd_mask=2 hides them);
 * their standard output to /dev/null or the dump files.
 */
#define _GNU_SOURCE 1
#include "tool.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const struct tool_cmd tool_cmd_import, tool_cmd_dump, tool_cmd_load;

#define DUMP_MAX (4u << 20) /* the round trip compares dumps up to this size */

static char dir_a[4200], dir_b[4200], input[4200], dump_a[4200], dump_b[4200];

static void paths(void)
{
    const char *tmp = getenv("MMS_TEST_TMP");
    int pid = (int)getpid();
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char dir[4096]; /* MMS_TEST_TMP may not exist yet: made as mkdir -p does */
    snprintf(dir, sizeof dir, "%s", tmp);
    for (char *q = dir + 1;; q++)
        if (*q == '/' || !*q) {
            char c = *q;
            *q = 0;
            mkdir(dir, 0755);
            if (!(*q = c))
                break;
        }
    snprintf(dir_a, sizeof dir_a, "%s/fuzz-text-%d.a", tmp, pid);
    snprintf(dir_b, sizeof dir_b, "%s/fuzz-text-%d.b", tmp, pid);
    snprintf(input, sizeof input, "%s/fuzz-text-%d.in", tmp, pid);
    snprintf(dump_a, sizeof dump_a, "%s/fuzz-text-%d.da", tmp, pid);
    snprintf(dump_b, sizeof dump_b, "%s/fuzz-text-%d.db", tmp, pid);
}

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_text: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* Run a command of the tool with its standard output to out. */
static int run(const struct tool_cmd *c, char **argv, const char *out)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(stdout);
    int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0)
        fail("cannot redirect the standard output", out);
    dup2(fd, 1);
    close(fd);
    int rc = c->run(c, argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return rc;
}

static void must_verify(const char *dir)
{
    mms_store *s;
    char msg[512];
    int r = mms_open(dir, NULL, &s);
    if (r)
        fail("the new store does not open", mms_strerror(r));
    r = mms_verify(s, msg, sizeof msg);
    mms_close(s);
    if (r)
        fail("the new store does not verify", msg);
}

/* The file at path, up to DUMP_MAX bytes (malloc'd). */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *b = malloc(DUMP_MAX);
    if (!f || !b)
        fail("cannot read", path);
    *n = fread(b, 1, DUMP_MAX, f);
    fclose(f);
    return b;
}

static void write_input(const uint8_t *d, size_t n)
{
    FILE *f = fopen(input, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0)
        fail("cannot write", input);
}

static void load(const uint8_t *d, size_t n)
{
    write_input(d, n);
    tool_rm_dir(dir_a);
    char *argv[] = {"load", input, dir_a, NULL};
    if (run(&tool_cmd_load, argv, "/dev/null") == 0)
        must_verify(dir_a);
    tool_rm_dir(dir_a);
}

static void import(unsigned flags, const uint8_t *d, size_t n)
{
    char schema[256] = "";
    if (flags & 1) {
        const uint8_t *nl = memchr(d, '\n', n);
        size_t k = nl ? (size_t)(nl - d) : 0;
        if (!nl || k >= sizeof schema || memchr(d, 0, k))
            return;
        memcpy(schema, d, k);
        schema[k] = 0;
        d += k + 1;
        n -= k + 1;
    }
    write_input(d, n);
    tool_rm_dir(dir_a);
    tool_rm_dir(dir_b);
    char *argv[12] = {"import", dir_a, "t", input};
    int k = 4;
    if (flags & 1)
        argv[k++] = "--schema", argv[k++] = schema;
    if (flags & 2)
        argv[k++] = "--skip-bad";
    if (flags & 4)
        argv[k++] = "--keep-text";
    if (run(&tool_cmd_import, argv, "/dev/null") != 0)
        return;
    must_verify(dir_a);
    char *dump[] = {"dump", dir_a, "t", NULL};
    if (run(&tool_cmd_dump, dump, dump_a) != 0)
        fail("the imported table does not dump", dir_a);
    if ((flags & 1) && !strstr(schema, "ref")) {
        char *back[] = {"import", dir_b, "t", dump_a, "--schema", schema, NULL};
        size_t na, nb;
        char *a = slurp(dump_a, &na);
        if (run(&tool_cmd_import, back, "/dev/null") != 0) {
            fprintf(stderr, "fuzz_text: schema %s, dump:\n%.*s\n", schema, (int)na, a);
            fail("the dump does not import back", NULL);
        }
        char *again[] = {"dump", dir_b, "t", NULL};
        if (run(&tool_cmd_dump, again, dump_b) != 0)
            fail("the table imported back does not dump", dir_b);
        char *b = slurp(dump_b, &nb);
        if (na != nb || memcmp(a, b, na) != 0) {
            fprintf(stderr, "fuzz_text: first dump:\n%.*s\nsecond:\n%.*s\n", (int)na, a, (int)nb, b);
            fail("dump, import, dump differs", schema);
        }
        free(a);
        free(b);
    }
    tool_rm_dir(dir_a);
    tool_rm_dir(dir_b);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (!input[0])
        paths();
    if (n == 0)
        return 0;
    if (d[0] & 0x80)
        import(d[0], d + 1, n - 1);
    else
        load(d + 1, n - 1);
    unlink(input);
    unlink(dump_a);
    unlink(dump_b);
    return 0;
}
