/*
 * mms -- the mmstore command-line tool. Uses only the public API.
 *
 *   mms create DIR        create an empty store
 *   mms info DIR          key: value lines describing the store
 *   mms verify DIR        check everything; exit 0 if sound, 1 if not
 *   mms checkpoint DIR    sync the regions and empty the journal
 *   mms readers DIR [--clear-stale]   the handles open on the store
 *
 * Every failure prints one line on stderr and exits non-zero (2 for a usage
 * error, 1 otherwise).
 */
#include <mmstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "mms";

static int usage(FILE *f)
{
    fprintf(f,
            "usage: %s COMMAND DIR\n"
            "commands:\n"
            "  create DIR       create an empty store in DIR\n"
            "  info DIR         print the store's state as key: value lines\n"
            "  verify DIR       check header, journal and heap; exit 0 if sound\n"
            "  checkpoint DIR   sync the region files and empty the journal\n"
            "  readers DIR [--clear-stale]\n"
            "                   list the handles open on the store (pid, txn, age);\n"
            "                   --clear-stale frees those of dead processes\n"
            "  version          print the library version\n",
            prog);
    return f == stderr ? 2 : 0;
}

static int fail(const char *what, const char *dir, int err)
{
    const char *d = mms_errdetail();
    fprintf(stderr, "%s: %s %s: %s%s%s\n", prog, what, dir, mms_strerror(err), *d ? ": " : "", d);
    return 1;
}

/* Open for inspection: read-only when possible; a store that needs
 * recovery is opened read-write once, which recovers it. */
static int open_inspect(const char *dir, mms_store **s)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    int r = mms_open(dir, &o, s);
    if (r == MMS_ERECOVER) {
        o.flags = 0;
        r = mms_open(dir, &o, s);
    }
    return r;
}

static int cmd_create(const char *dir)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_EXCL;
    mms_store *s;
    int r = mms_open(dir, &o, &s);
    if (r)
        return fail("cannot create", dir, r);
    r = mms_close(s);
    if (r)
        return fail("cannot close", dir, r);
    printf("created %s\n", dir);
    return 0;
}

static int cmd_info(const char *dir)
{
    mms_store *s;
    int r = open_inspect(dir, &s);
    if (r)
        return fail("cannot open", dir, r);
    mms_info *in = malloc(sizeof *in);
    if (!in) {
        mms_close(s);
        return fail("cannot inspect", dir, -12);
    }
    r = mms_info_get(s, in);
    if (r) {
        free(in);
        mms_close(s);
        return fail("cannot inspect", dir, r);
    }
    printf("format_version: %u\n", in->format_version);
    printf("txn_id: %llu\n", (unsigned long long)in->txn_id);
    printf("regions: %u\n", in->nregions);
    for (unsigned i = 0; i < in->nregions; i++) {
        printf("region_%u_size: %llu\n", i, (unsigned long long)in->region_size[i]);
        printf("region_%u_file_bytes: %llu\n", i, (unsigned long long)in->region_file[i]);
    }
    printf("journal_bytes: %llu\n", (unsigned long long)in->journal_bytes);
    printf("heap_used: %llu\n", (unsigned long long)in->heap_used);
    printf("heap_free: %llu\n", (unsigned long long)in->heap_free);
    printf("heap_objects: %llu\n", (unsigned long long)in->heap_objects);
    printf("root: 0x%llx\n", (unsigned long long)mms_root(s));
    printf("published_txn: %llu\n", (unsigned long long)in->published_txn);
    if (in->writer_pid)
        printf("writer: %u\n", in->writer_pid);
    else
        printf("writer: none\n");
    printf("handles: %u\n", in->handles);
    printf("active_readers: %u\n", in->active_readers);
    free(in);
    r = mms_close(s);
    return r ? fail("cannot close", dir, r) : 0;
}

static int cmd_verify(const char *dir)
{
    mms_store *s;
    int r = open_inspect(dir, &s);
    if (r)
        return fail("cannot open", dir, r);
    char msg[512];
    r = mms_verify(s, msg, sizeof msg);
    if (r) {
        fprintf(stderr, "%s: %s is not sound: %s\n", prog, dir, msg[0] ? msg : mms_strerror(r));
        mms_close(s);
        return 1;
    }
    r = mms_close(s);
    if (r)
        return fail("cannot close", dir, r);
    printf("%s: ok\n", dir);
    return 0;
}

static int cmd_checkpoint(const char *dir)
{
    mms_store *s;
    int r = mms_open(dir, NULL, &s);
    if (r)
        return fail("cannot open", dir, r);
    r = mms_checkpoint(s);
    int r2 = mms_close(s);
    if (r || r2)
        return fail("cannot checkpoint", dir, r ? r : r2);
    printf("%s: checkpointed\n", dir);
    return 0;
}

static int cmd_readers(const char *dir, int clear)
{
    mms_store *s;
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    int r = mms_open(dir, &o, &s);
    if (r)
        return fail("cannot open", dir, r);
    if (clear) {
        unsigned n;
        r = mms_readers_clear_stale(s, &n);
        if (r) {
            mms_close(s);
            return fail("cannot clear stale readers of", dir, r);
        }
        printf("cleared: %u\n", n);
    }
    mms_reader_info rd[256];
    size_t n;
    r = mms_readers(s, rd, sizeof rd / sizeof rd[0], &n);
    if (r) {
        mms_close(s);
        return fail("cannot list readers of", dir, r);
    }
    /* This command's own handle is one of them. */
    printf("%-8s %-6s %-7s %-10s %s\n", "pid", "alive", "reading", "txn", "age_ms");
    for (size_t i = 0; i < n && i < sizeof rd / sizeof rd[0]; i++)
        printf("%-8u %-6s %-7s %-10llu %.3f%s\n", rd[i].pid, rd[i].alive ? "yes" : "no",
               rd[i].active ? "yes" : "no", (unsigned long long)rd[i].txn,
               rd[i].age_ns / 1e6, rd[i].pid == (uint32_t)getpid() ? "  (this command)" : "");
    r = mms_close(s);
    return r ? fail("cannot close", dir, r) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return usage(stdout);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mms %s (format %d)\n", MMS_VERSION_STRING, MMS_FORMAT_VERSION);
        return 0;
    }
    if (strcmp(cmd, "readers") == 0 && argc == 4 && strcmp(argv[3], "--clear-stale") == 0)
        return cmd_readers(argv[2], 1);
    if (argc != 3) {
        fprintf(stderr, "%s: %s needs exactly one DIR argument\n", prog, cmd);
        return usage(stderr);
    }
    if (strcmp(cmd, "readers") == 0)
        return cmd_readers(argv[2], 0);
    if (strcmp(cmd, "create") == 0)
        return cmd_create(argv[2]);
    if (strcmp(cmd, "info") == 0)
        return cmd_info(argv[2]);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(argv[2]);
    if (strcmp(cmd, "checkpoint") == 0)
        return cmd_checkpoint(argv[2]);
    fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
    return usage(stderr);
}
