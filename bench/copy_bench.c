/*
 * copy_bench -- what a hot copy costs, and what the writer sees meanwhile.
 * Uses only the public API.
 *
 *     copy_bench make DIR NRECORDS   a store of one table of 64-byte records
 *                                    (16000000: about 1 GB), in one commit
 *     copy_bench write DIR           5 s of small durable commits: how many,
 *                                    and the longest (the baseline)
 *     copy_bench copy DIR DEST       the same commits in a child process while
 *                                    this one runs mms_copy(DIR, DEST): the
 *                                    copy's time and the child's longest commit
 *     copy_bench delete DIR tail|every
 *                                    delete half the records in one commit:
 *                                    the second half (the table's end) or
 *                                    every other one (before mms compact DIR)
 *
 * Compare with `cp -r DIR X` of the closed store (and `sync -f X/region-1-0`:
 * mms_copy syncs what it wrote). bench/copy.sh runs it all (make bench);
 * README.md, "A store's life", has the numbers.
 */
#define _GNU_SOURCE
#include <mmstore.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct rec {
    int64_t k;
    char v[56];
};
static const mms_field rec_fields[] = {MMS_F_I64(struct rec, k), MMS_F_CHARS(struct rec, v)};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define CK(x)                                                                              \
    do {                                                                                   \
        int r_ = (x);                                                                      \
        if (r_) {                                                                          \
            fprintf(stderr, "%s: %s (%s)\n", #x, mms_strerror(r_), mms_errdetail());       \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* Small durable commits until *stop (or for secs): count and longest. */
static void commits(const char *dir, double secs, volatile int *stop, double *worst,
                    uint64_t *n)
{
    mms_store *s;
    mms_table *t;
    CK(mms_open(dir, NULL, &s));
    CK(mms_table_find(s, "r", &t));
    double end = now() + secs;
    while (!*stop && now() < end) {
        double a = now();
        CK(mms_txn_begin(s, 0));
        struct rec *p = mms_table_get(t, *n % 1000);
        p->v[0]++;
        CK(mms_txn_commit(s));
        double d = now() - a;
        if (d > *worst)
            *worst = d;
        ++*n;
    }
    CK(mms_close(s));
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "make") == 0) {
        mms_options o;
        mms_options_init(&o);
        o.flags = MMS_CREATE | MMS_EXCL;
        mms_store *s;
        mms_table *t;
        uint64_t n = strtoull(argv[3], NULL, 10), first;
        void *w;
        CK(mms_open(argv[2], &o, &s));
        CK(mms_txn_begin(s, 0));
        CK(mms_table_open(s, "r", &rec_schema, MMS_TABLE_CREATE, &t));
        CK(mms_table_append_many(t, n, &first, &w));
        struct rec *r = w;
        for (uint64_t i = 0; i < n; i++) {
            r[i].k = (int64_t)i;
            memset(r[i].v, (int)(i & 0xff), sizeof r[i].v);
        }
        CK(mms_txn_commit(s));
        CK(mms_close(s));
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        int stop = 0;
        double worst = 0;
        uint64_t n = 0;
        commits(argv[2], 5, &stop, &worst, &n);
        printf("alone: %llu commits in 5 s, longest %.3f ms\n", (unsigned long long)n,
               worst * 1e3);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "copy") == 0) {
        /* The child's results, and the stop flag, in shared memory. */
        struct shared {
            int stop, started;
            double worst;
            uint64_t n;
        } *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                     0);
        if (sh == MAP_FAILED)
            return 1;
        memset(sh, 0, sizeof *sh);
        pid_t pid = fork();
        if (pid == 0) {
            sh->started = 1;
            commits(argv[2], 1e9, &sh->stop, &sh->worst, &sh->n);
            _exit(0);
        }
        while (!__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) || sh->n < 100)
            usleep(1000);
        mms_store *s;
        CK(mms_open(argv[2], NULL, &s));
        mms_copy_stats st;
        double a = now();
        CK(mms_copy(s, argv[3], 0, &st));
        double d = now() - a;
        uint64_t during = sh->n;
        double worst = sh->worst;
        __atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
        waitpid(pid, NULL, 0);
        CK(mms_close(s));
        printf("mms_copy: %.2f s (%.1f MB of data, %.2f s pinned, txn %llu); the writer: "
               "%llu commits by the end, longest %.3f ms\n",
               d, (double)st.bytes_copied / 1e6, (double)st.read_ns / 1e9,
               (unsigned long long)st.txn, (unsigned long long)during, worst * 1e3);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "delete") == 0 &&
        (strcmp(argv[3], "tail") == 0 || strcmp(argv[3], "every") == 0)) {
        mms_store *s;
        mms_table *t;
        CK(mms_open(argv[2], NULL, &s));
        CK(mms_txn_begin(s, 0));
        CK(mms_table_find(s, "r", &t));
        uint64_t n = mms_table_slots(t), gone = 0;
        bool tail = strcmp(argv[3], "tail") == 0;
        double a = now();
        for (uint64_t i = tail ? n / 2 : 1; i < n; i += tail ? 1 : 2, gone++)
            CK(mms_table_delete(t, i));
        CK(mms_txn_commit(s));
        CK(mms_close(s));
        printf("deleted %llu of %llu records (%s) in %.2f s\n", (unsigned long long)gone,
               (unsigned long long)n, tail ? "the second half" : "every other one",
               now() - a);
        return 0;
    }
    fprintf(stderr, "usage: copy_bench make DIR NRECORDS | write DIR | copy DIR DEST | "
                    "delete DIR tail|every\n");
    return 2;
}
