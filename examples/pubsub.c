/*
 * pubsub -- one process appends records, another follows each commit and
 * reads them where they lie (zero-copy).
 *
 *     pubsub STORE.mms produce COUNT [BATCH]   append COUNT records, BATCH per commit
 *     pubsub STORE.mms consume COUNT           read until COUNT records were seen
 *
 * Start the consumer first (it creates nothing; it waits for the store to
 * appear), then the producer:
 *
 *     pubsub /tmp/q.mms consume 100000 & pubsub /tmp/q.mms produce 100000 100
 *
 * The consumer blocks in mms_wait() (a futex in the store's lock file, no
 * polling), then reads the new records inside a read transaction, which
 * guarantees it sees whole commits only. It prints how long after each
 * commit it saw it.
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct rec {
    uint64_t seq;          /* 0, 1, 2, ... */
    uint64_t committed_ns; /* CLOCK_MONOTONIC just before the commit */
    uint64_t payload[2];
};

struct log {
    uint64_t count; /* records published */
    uint64_t cap;
    mms_ref recs;   /* array of cap struct rec */
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int die(const char *what, int err)
{
    /* The detail says what went wrong, often with the message in it. */
    const char *m = mms_strerror(err), *d = mms_errdetail();
    if (!*d || strstr(d, m))
        fprintf(stderr, "pubsub: %s: %s\n", what, *d ? d : m);
    else
        fprintf(stderr, "pubsub: %s: %s (%s)\n", what, m, d);
    return 1;
}

static int produce(const char *path, uint64_t count, uint64_t batch)
{
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_NOSYNC; /* a queue between live processes */
    mms_store *s;
    int r = mms_open(path, &o, &s);
    if (r)
        return die("open", r);
    for (uint64_t done = 0; done < count;) {
        if ((r = mms_txn_begin(s, 0)))
            return die("begin", r);
        mms_ref root = mms_root(s);
        if (!root) {
            if ((r = mms_zalloc(s, sizeof(struct log), &root)) || (r = mms_root_set(s, root)))
                return die("create the log", r);
        }
        struct log *lg = MMS_AT(s, struct log, root);
        uint64_t n = count - done < batch ? count - done : batch;
        if (lg->count + n > lg->cap) {
            uint64_t cap = lg->cap ? lg->cap * 2 : 1024;
            while (cap < lg->count + n)
                cap *= 2;
            if ((r = mms_realloc(s, &lg->recs, cap * sizeof(struct rec))))
                return die("grow the log", r);
            lg->cap = cap;
        }
        struct rec *recs = MMS_AT(s, struct rec, lg->recs);
        uint64_t t = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            struct rec *x = &recs[lg->count + i];
            x->seq = lg->count + i;
            x->committed_ns = t;
            x->payload[0] = x->seq * 2654435761u;
            x->payload[1] = ~x->payload[0];
        }
        lg->count += n;
        if ((r = mms_txn_commit(s)))
            return die("commit", r);
        done += n;
    }
    printf("producer: %llu records committed\n", (unsigned long long)count);
    return mms_close(s) ? 1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int consume(const char *path, uint64_t count)
{
    mms_store *s = NULL;
    int r;
    for (int tries = 0; (r = mms_open(path, NULL, &s)) != 0; tries++) {
        if ((r != -ENOENT && r != MMS_ENOTSTORE) || tries > 3000)
            return die("open", r);
        nanosleep(&(struct timespec){0, 1000000}, NULL); /* not created yet */
    }
    uint64_t seen = 0, commits = 0, txn = mms_txn_id(s);
    uint64_t *lat = malloc(sizeof(uint64_t) * (count + 1));
    if (!lat)
        return 1;
    while (seen < count) {
        if ((r = mms_read_begin(s)))
            return die("read begin", r);
        mms_ref root = mms_root(s);
        uint64_t t = now_ns();
        if (root) {
            const struct log *lg = MMS_AT(s, struct log, root);
            const struct rec *recs = MMS_AT(s, struct rec, lg->recs);
            uint64_t last_commit = 0;
            for (; seen < lg->count; seen++) {
                const struct rec *x = &recs[seen];
                if (x->seq != seen || x->payload[1] != ~x->payload[0]) {
                    fprintf(stderr, "pubsub: record %llu is torn\n", (unsigned long long)seen);
                    return 1;
                }
                if (x->committed_ns != last_commit) { /* first record of a commit */
                    last_commit = x->committed_ns;
                    lat[commits++] = t - x->committed_ns;
                }
            }
        }
        txn = mms_txn_id(s);
        mms_read_end(s);
        if (seen < count && (r = mms_wait(s, txn, 10000, &txn)) != 0)
            return die("wait", r);
    }
    qsort(lat, commits, sizeof *lat, cmp_u64);
    printf("consumer: %llu records in %llu reads; commit to visible: median %.1f us, "
           "p99 %.1f us\n",
           (unsigned long long)seen, (unsigned long long)commits, lat[commits / 2] / 1e3,
           lat[commits * 99 / 100] / 1e3);
    free(lat);
    return mms_close(s) ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: pubsub STORE.mms produce COUNT [BATCH] | consume COUNT\n");
        return 2;
    }
    int produces = strcmp(argv[2], "produce") == 0;
    if (!produces && strcmp(argv[2], "consume") != 0) {
        fprintf(stderr, "pubsub: unknown mode '%s' (produce or consume)\n", argv[2]);
        return 2;
    }
    if (argc > (produces ? 5 : 4)) {
        fprintf(stderr, "pubsub: too many arguments (from '%s' on)\n", argv[produces ? 5 : 4]);
        return 2;
    }
    /* COUNT, and BATCH: records per commit, at least 1. */
    uint64_t n[2] = {0, 100};
    for (int i = 3; i < argc; i++) {
        char *end;
        n[i - 3] = strtoull(argv[i], &end, 10);
        if (end == argv[i] || *end || argv[i][0] == '-' || (i == 4 && n[1] == 0)) {
            fprintf(stderr, "pubsub: %s is a number%s, not '%s'\n", i == 3 ? "COUNT" : "BATCH",
                    i == 3 ? "" : " >= 1", argv[i]);
            return 2;
        }
    }
    return produces ? produce(argv[1], n[0], n[1]) : consume(argv[1], n[0]);
}
