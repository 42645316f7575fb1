/*
 * copy_lmdb -- the peer of copy_bench: an LMDB environment of the same
 * records (8-byte keys, 56-byte values: 64 bytes a record), copied with
 * mdb_env_copy2 -- what mdb_copy does -- while a writer child commits small
 * durable transactions. README.md, "A store's life", has the numbers.
 *
 *     copy_lmdb make DIR NRECORDS
 *     copy_lmdb copy DIR DEST        DEST: a new, empty directory
 */
#define _GNU_SOURCE
#include <lmdb.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
            fprintf(stderr, "%s: %s\n", #x, mdb_strerror(r_));                             \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

static MDB_env *env_open(const char *dir)
{
    MDB_env *e;
    CK(mdb_env_create(&e));
    CK(mdb_env_set_mapsize(e, (size_t)8 << 30));
    CK(mdb_env_open(e, dir, 0, 0664));
    return e;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "make") == 0) {
        mkdir(argv[2], 0777);
        MDB_env *e = env_open(argv[2]);
        MDB_txn *t;
        MDB_dbi db;
        uint64_t n = strtoull(argv[3], NULL, 10);
        CK(mdb_txn_begin(e, NULL, 0, &t));
        CK(mdb_dbi_open(t, NULL, 0, &db));
        char val[56];
        for (uint64_t i = 0; i < n; i++) {
            uint64_t k = __builtin_bswap64(i); /* big-endian: appends in key order */
            memset(val, (int)(i & 0xff), sizeof val);
            MDB_val kv = {8, &k}, vv = {sizeof val, val};
            CK(mdb_put(t, db, &kv, &vv, MDB_APPEND));
        }
        CK(mdb_txn_commit(t));
        mdb_env_close(e);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "copy") == 0) {
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
            MDB_env *e = env_open(argv[2]);
            MDB_dbi db;
            MDB_txn *t;
            CK(mdb_txn_begin(e, NULL, 0, &t));
            CK(mdb_dbi_open(t, NULL, 0, &db));
            CK(mdb_txn_commit(t));
            sh->started = 1;
            while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
                double a = now();
                uint64_t k = __builtin_bswap64(sh->n % 1000);
                char val[56] = {(char)sh->n};
                MDB_val kv = {8, &k}, vv = {sizeof val, val};
                CK(mdb_txn_begin(e, NULL, 0, &t));
                CK(mdb_put(t, db, &kv, &vv, 0));
                CK(mdb_txn_commit(t));
                double d = now() - a;
                if (d > sh->worst)
                    sh->worst = d;
                sh->n++;
            }
            mdb_env_close(e);
            _exit(0);
        }
        while (!__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) || sh->n < 100)
            usleep(1000);
        MDB_env *e = env_open(argv[2]);
        mkdir(argv[3], 0777);
        double a = now();
        CK(mdb_env_copy2(e, argv[3], 0));
        double d = now() - a;
        uint64_t during = sh->n;
        double worst = sh->worst;
        __atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
        waitpid(pid, NULL, 0);
        mdb_env_close(e);
        printf("mdb_env_copy2: %.2f s; the writer: %llu commits by the end, longest %.3f ms\n",
               d, (unsigned long long)during, worst * 1e3);
        return 0;
    }
    fprintf(stderr, "usage: copy_lmdb make DIR NRECORDS | copy DIR DEST\n");
    return 2;
}
