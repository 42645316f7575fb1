/*
 * pmap.c -- a hash map of plain C pointers (pmap.h) kept in a store opened
 * in fixed-address mode: it survives restarts and kill -9, and each
 * command is one atomic transaction.
 *
 *     pmap STORE put KEY [N]   add N (default 1) to KEY's counter
 *     pmap STORE get KEY       print KEY's counter
 *     pmap STORE del KEY       remove KEY
 *     pmap STORE count FILE    count the words of FILE (- for stdin)
 *     pmap STORE fill [N]      N (default 100000) random keys, a commit every
 *                              1000 (kill it at any moment: the map is the
 *                              last commit's)
 *     pmap STORE check         check the map, print its size
 *     pmap STORE top [K]       the K (default 10) largest counters
 *
 * pmap.h is ordinary C code: the map's pointers are stored as they are, and
 * all this file does is point its allocator at mms_pmalloc, mms_pcalloc
 * and mms_pfree, keep the map's header at the store's root and wrap each
 * command in a transaction. The store is created on first use.
 */
#include <mmstore.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmap.h"

/* The allocator pmap.h is given: the store's heap. */
static void *store_alloc(void *s, size_t size)
{
    return mms_pmalloc(s, size);
}
static void *store_calloc(void *s, size_t n, size_t size)
{
    return mms_pcalloc(s, n, size);
}
static void store_free(void *s, void *p)
{
    mms_pfree(s, p);
}

static int die(const char *what, int err)
{
    /* The detail says what went wrong, often with the message in it. */
    const char *m = mms_strerror(err), *d = mms_errdetail();
    if (!*d || strstr(d, m))
        fprintf(stderr, "pmap: %s: %s\n", what, *d ? d : m);
    else
        fprintf(stderr, "pmap: %s: %s (%s)\n", what, m, d);
    exit(1);
}

/* The map at the root, made by the first transaction that needs it. */
static struct pmap *the_map(mms_store *s, const struct pmap_mem *mem, int create)
{
    struct pmap *m = mms_root_ptr(s);
    if (m || !create)
        return m;
    m = mms_pmalloc(s, sizeof *m);
    if (!m || pmap_init(m, mem, 1024) != 0)
        die("cannot make the map", mms_last_error());
    mms_root_ptr_set(s, m);
    return m;
}

static void add(struct pmap *m, const struct pmap_mem *mem, const char *key, size_t len,
                uint64_t by)
{
    uint64_t *v = pmap_put(m, mem, key, len);
    if (!v)
        die("cannot add a key", mms_last_error());
    *v += by;
}

static void count_words(struct pmap *m, const struct pmap_mem *mem, FILE *f)
{
    char word[256];
    size_t n = 0;
    for (int c; (c = getc(f)) != EOF;) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '\'' || c >= 0x80) {
            if (n < sizeof word)
                word[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        } else if (n) {
            add(m, mem, word, n, 1);
            n = 0;
        }
    }
    if (n)
        add(m, mem, word, n, 1);
}

/* N random keys, "k" and 12 hex digits, committing every 1000. */
static void fill(mms_store *s, const struct pmap_mem *mem, uint64_t n)
{
    uint64_t x = (uint64_t)mms_txn_id(s) * 0x9e3779b97f4a7c15u + 1;
    for (uint64_t done = 0; done < n;) {
        int r = mms_txn_begin(s, 0);
        if (r)
            die("begin", r);
        struct pmap *m = the_map(s, mem, 1);
        for (int i = 0; i < 1000 && done < n; i++, done++) {
            char key[16];
            x = x * 6364136223846793005u + 1442695040888963407u;
            snprintf(key, sizeof key, "k%012" PRIx64, x >> 16);
            add(m, mem, key, 13, 1);
        }
        if ((r = mms_txn_commit(s)))
            die("commit", r);
        printf("%" PRIu64 " keys\n", m->count);
    }
}

static int cmp_value(const void *a, const void *b)
{
    uint64_t x = (*(struct pmap_entry *const *)a)->value, y = (*(struct pmap_entry *const *)b)->value;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void top(const struct pmap *m, uint64_t k)
{
    struct pmap_entry **all = malloc((m->count + 1) * sizeof *all);
    uint64_t n = 0;
    for (uint64_t i = 0; i < m->nbuckets && all; i++)
        for (struct pmap_entry *e = m->bucket[i]; e; e = e->next)
            all[n++] = e;
    if (!all)
        die("top", -ENOMEM);
    qsort(all, n, sizeof *all, cmp_value);
    for (uint64_t i = 0; i < n && i < k; i++)
        printf("%s %" PRIu64 "\n", all[i]->key, all[i]->value);
    free(all);
}

/* The commands: name, arguments (required, at most), and whether the
 * optional last one is a number. */
static const struct {
    const char *name;
    int min, max, number;
} commands[] = {{"put", 1, 2, 1},   {"get", 1, 1, 0},  {"del", 1, 1, 0}, {"count", 1, 1, 0},
                {"fill", 0, 1, 1},  {"check", 0, 0, 0}, {"top", 0, 1, 1}};

static int usage(const char *why, const char *what)
{
    if (why)
        fprintf(stderr, "pmap: %s%s\n", why, what);
    fprintf(stderr, "usage: pmap STORE put KEY [N] | get KEY | del KEY | count FILE | "
                    "fill [N] | check | top [K]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage(NULL, NULL);
    const char *cmd = argv[2], *arg = argc > 3 ? argv[3] : NULL;
    /* Checked before the store is opened (a write command creates it). */
    size_t c = 0, nc = sizeof commands / sizeof commands[0];
    while (c < nc && strcmp(commands[c].name, cmd) != 0)
        c++;
    if (c == nc)
        return usage("unknown command ", cmd);
    if (argc - 3 < commands[c].min)
        return usage("missing argument of ", cmd);
    if (argc - 3 > commands[c].max)
        return usage("too many arguments for ", cmd);
    uint64_t num = 0; /* the number, if given */
    if (commands[c].number && argc - 3 == commands[c].max) {
        char *end;
        const char *t = argv[argc - 1];
        num = strtoull(t, &end, 10);
        if (end == t || *end || *t == '-')
            return usage("not a number: ", t);
    }
    int writes = strcmp(cmd, "get") != 0 && strcmp(cmd, "check") != 0 && strcmp(cmd, "top") != 0;
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_FIXED | (writes ? MMS_CREATE : MMS_RDONLY);
    mms_store *s;
    int r = mms_open(argv[1], &o, &s);
    if (r)
        die("cannot open the store", r);
    struct pmap_mem mem = {store_alloc, store_calloc, store_free, s};
    if (strcmp(cmd, "fill") == 0) {
        fill(s, &mem, arg ? num : 100000);
    } else if (writes) {
        if ((r = mms_txn_begin(s, 0)))
            die("begin", r);
        struct pmap *m = the_map(s, &mem, 1);
        if (strcmp(cmd, "put") == 0) {
            add(m, &mem, arg, strlen(arg), argc > 4 ? num : 1);
        } else if (strcmp(cmd, "del") == 0) {
            printf("%s\n", pmap_del(m, &mem, arg, strlen(arg)) ? "deleted" : "not there");
        } else { /* count */
            FILE *f = strcmp(arg, "-") == 0 ? stdin : fopen(arg, "r");
            if (!f)
                die(arg, -errno);
            count_words(m, &mem, f);
        }
        if ((r = mms_txn_commit(s)))
            die("commit", r);
        if (strcmp(cmd, "put") == 0)
            printf("%s %" PRIu64 "\n", arg, *pmap_get(m, arg, strlen(arg)));
    } else {
        if ((r = mms_read_begin(s))) /* one committed state, whole */
            die("read", r);
        const struct pmap *m = the_map(s, &mem, 0);
        uint64_t bad;
        if (!m) {
            printf("empty\n");
        } else if (strcmp(cmd, "get") == 0) {
            const uint64_t *v = pmap_get(m, arg, strlen(arg));
            if (v)
                printf("%s %" PRIu64 "\n", arg, *v);
            else
                printf("%s: not there\n", arg);
        } else if (strcmp(cmd, "check") == 0) {
            if (pmap_check(m, &bad) != 0) {
                printf("damaged at bucket %" PRIu64 "\n", bad);
                return 1;
            }
            printf("ok: %" PRIu64 " keys in %" PRIu64 " buckets, txn %" PRIu64 "\n", m->count,
                   m->nbuckets, mms_txn_id(s));
        } else { /* top */
            top(m, arg ? num : 10);
        }
        mms_read_end(s);
    }
    r = mms_close(s);
    if (r)
        die("close", r);
    return 0;
}
