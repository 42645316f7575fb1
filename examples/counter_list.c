/*
 * counter_list -- a persistent counter and a linked list in an mmstore heap.
 *
 *     counter_list STORE.mms [NODES]
 *
 * Each run opens (or creates) the store, bumps the counter and prepends
 * NODES (default 100000) nodes to a list, all in one transaction, then walks
 * the list. Run it twice: the second run finds the first run's list at once,
 * because opening maps the files instead of reading them.
 */
#define _POSIX_C_SOURCE 200809L
#include <mmstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct app {        /* the root object */
    uint64_t runs;  /* the persistent counter */
    uint64_t length;
    mms_ref head;   /* first struct node; refs, never pointers, in the store */
};

struct node {
    uint64_t value;
    mms_ref next;
};

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int die(const char *what, int err)
{
    /* The detail says what went wrong, often with the message in it. */
    const char *m = mms_strerror(err), *d = mms_errdetail();
    if (!*d || strstr(d, m))
        fprintf(stderr, "counter_list: %s: %s\n", what, *d ? d : m);
    else
        fprintf(stderr, "counter_list: %s: %s (%s)\n", what, m, d);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: counter_list STORE.mms [NODES]\n");
        return 2;
    }
    char *end = NULL;
    long nodes = argc == 3 ? strtol(argv[2], &end, 10) : 100000;
    if (nodes < 0 || (end && (end == argv[2] || *end))) {
        fprintf(stderr, "counter_list: NODES is a number >= 0, not '%s'\n", argv[2]);
        return 2;
    }

    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE;
    mms_store *s;
    double t0 = now_us();
    int r = mms_open(argv[1], &o, &s);
    if (r)
        return die("open", r);
    /* The first answer: the root object and what it says. */
    mms_ref root = mms_root(s);
    uint64_t found_runs = root ? MMS_AT(s, struct app, root)->runs : 0;
    uint64_t found_len = root ? MMS_AT(s, struct app, root)->length : 0;
    double t1 = now_us();
    printf("opened %s and read its root in %.0f us: %llu earlier runs, %llu nodes\n", argv[1],
           t1 - t0, (unsigned long long)found_runs, (unsigned long long)found_len);

    if ((r = mms_txn_begin(s, 0)))
        return die("begin", r);
    if (root == MMS_REF_NULL) {
        if ((r = mms_zalloc(s, sizeof(struct app), &root)) || (r = mms_root_set(s, root)))
            return die("create root", r);
    }
    struct app *app = MMS_AT(s, struct app, root);
    app->runs++;  /* plain stores: the commit finds them */
    for (long i = 0; i < nodes; i++) {
        mms_ref n;
        if ((r = mms_alloc(s, sizeof(struct node), &n)))
            return die("alloc", r);
        struct node *p = MMS_AT(s, struct node, n);
        p->value = app->runs * 1000000u + (uint64_t)i;
        p->next = app->head;
        app->head = n;
        app->length++;
    }
    double t2 = now_us();
    if ((r = mms_txn_commit(s)))
        return die("commit", r);
    double t3 = now_us();
    printf("run %llu added %ld nodes in %.1f ms and committed them in %.1f ms\n",
           (unsigned long long)app->runs, nodes, (t2 - t1) / 1e3, (t3 - t2) / 1e3);

    uint64_t count = 0, sum = 0;
    for (mms_ref n = app->head; n; n = MMS_AT(s, struct node, n)->next) {
        sum += MMS_AT(s, struct node, n)->value;
        count++;
    }
    double t4 = now_us();
    printf("walked %llu nodes (sum of values %llu) in %.1f ms; counter is now %llu\n",
           (unsigned long long)count, (unsigned long long)sum, (t4 - t3) / 1e3,
           (unsigned long long)app->runs);
    uint64_t length = app->length; /* pointers die with the handle */
    if ((r = mms_close(s)))
        return die("close", r);
    return count == length ? 0 : 1;
}
