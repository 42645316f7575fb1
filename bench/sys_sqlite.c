/*
 * sys_sqlite -- the benchmark harness for SQLite (see bench/README.md).
 *
 * One database file DIR/rec.db in WAL mode (PRAGMA journal_mode=WAL, which
 * is persistent: set once when the store is built), one table
 *     rec(key INTEGER PRIMARY KEY, a INTEGER, v REAL, b INTEGER, c INTEGER, tag TEXT)
 * keyed by the rowid (key = record index). SQLite integers are signed
 * 64-bit, so a is stored as the int64 with the bit pattern of the uint64 and
 * converted back when read; answers are summed in C, mod 2^64.
 *
 * Flags, per workload (documentation: sqlite.org/pragma.html#pragma_synchronous,
 * sqlite.org/wal.html, sqlite.org/faq.html#q19, sqlite.org/lang_transaction.html,
 * sqlite.org/mmap.html; Debian's libsqlite3 3.40):
 *   load     variant wal: journal_mode=WAL, synchronous=FULL. The workload asks
 *            for a durable commit, and in WAL mode only FULL gives one: "With
 *            synchronous=FULL in WAL mode, an additional sync operation of the
 *            WAL file happens after each transaction commit. The extra WAL
 *            sync following each transaction helps ensure that transactions
 *            are durable across a power loss"; with NORMAL "a transaction
 *            committed in WAL mode ... might roll back following a power loss
 *            or system crash". (NORMAL is what pragma.html calls "a good
 *            choice for most applications running in WAL mode", for those
 *            that can give up durability.) The whole load is ONE transaction
 *            (BEGIN ... COMMIT, as faq.html#q19 recommends for bulk inserts:
 *            otherwise each INSERT is a transaction of its own) with one
 *            prepared INSERT reused through sqlite3_bind_* / sqlite3_reset,
 *            keys in increasing rowid order. The timed part includes opening
 *            (creating) the database, the pragmas, CREATE TABLE, and whatever
 *            automatic checkpoint SQLite runs at that commit (default
 *            wal_autocheckpoint=1000 pages).
 *   open, get, scan  variant wal: the database opened SQLITE_OPEN_READONLY,
 *            defaults otherwise (page cache cache_size=-2000, i.e. 2 MB; no
 *            memory-mapped I/O, mmap_size=0, SQLite's default).
 *            get: one read transaction (BEGIN ... COMMIT, outside the timing,
 *            like mmstore's read transaction) around 10^7 executions of the
 *            prepared "SELECT a FROM rec WHERE key=?" (bind, step, reset);
 *            scan: "SELECT sum(b) FROM rec" (sum() of integers is exact, and
 *            the sum of 10^7 32-bit b fits in an int64);
 *            open: sqlite3_open_v2 and that one SELECT, in a fresh process.
 *            Variant mmap (not run by bench/run.py): the same with
 *            PRAGMA mmap_size=2147418112 (the build's SQLITE_MAX_MMAP_SIZE), the
 *            memory-mapped I/O that mmap.html describes as an option with
 *            trade-offs, not as a default.
 *   commit   10^4 executions of one prepared
 *                UPDATE rec SET a = <a + 1, wrapping like a uint64> WHERE key = ?
 *            in autocommit mode: each is its own transaction ("Any command
 *            that accesses the database ... will automatically start a
 *            transaction if one is not already in effect. Automatically
 *            started transactions are committed when the last SQL statement
 *            finishes", lang_transaction.html).
 *            variant full: synchronous=FULL, durable at every commit (the
 *            analogue of mmstore durable and LMDB default).
 *            variant off: synchronous=OFF ("SQLite continues without syncing
 *            as soon as it has handed data off to the operating system";
 *            survives an application crash, but "the database might become
 *            corrupted if the operating system crashes or the computer loses
 *            power").
 *            variant normal (not run by bench/run.py): synchronous=NORMAL, the
 *            closest analogue of mmstore/LMDB nosync: consistent after a power
 *            loss, the last commits may be lost.
 * alloc, commit_size and ipc are unsupported (no allocator / mmstore-only).
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdbool.h>

#include <sys/stat.h>
#include <sys/types.h>

#include "common.h"

static const char *variant = "wal";
static char db_path[4200];

static void rmrf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        BENCH_DIE("cannot remove %s", dir);
}

static void die_db(sqlite3 *db, const char *what)
{
    BENCH_DIE("sqlite: %s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        BENCH_DIE("sqlite: %s: %s", sql, err ? err : sqlite3_errmsg(db));
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die_db(db, sql);
    return st;
}

static const char *sync_pragma(void)
{
    if (strcmp(variant, "off") == 0)
        return "PRAGMA synchronous=OFF";
    if (strcmp(variant, "normal") == 0)
        return "PRAGMA synchronous=NORMAL";
    return "PRAGMA synchronous=FULL";
}

static sqlite3 *open_db(int flags)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, flags, NULL) != SQLITE_OK)
        die_db(db, db_path);
    if (flags & SQLITE_OPEN_READONLY) {
        if (strcmp(variant, "mmap") == 0)
            exec(db, "PRAGMA mmap_size=2147418112");
    } else {
        exec(db, sync_pragma());
    }
    return db;
}

/* A store of n records: WAL mode, one transaction, prepared INSERT. */
static double build(const char *dir, uint64_t n)
{
    rmrf(dir);
    if (mkdir(dir, 0755) != 0)
        BENCH_DIE("cannot make %s", dir);
    double t = bench_now();
    sqlite3 *db = open_db(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    sqlite3_stmt *st = prepare(db, "PRAGMA journal_mode=WAL");
    if (sqlite3_step(st) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
        BENCH_DIE("sqlite: cannot set journal_mode=WAL");
    sqlite3_finalize(st);
    exec(db, "CREATE TABLE rec(key INTEGER PRIMARY KEY, a INTEGER, v REAL, b INTEGER, "
             "c INTEGER, tag TEXT)");
    exec(db, "BEGIN");
    st = prepare(db, "INSERT INTO rec(key, a, v, b, c, tag) VALUES (?, ?, ?, ?, ?, ?)");
    struct bench_rec r;
    for (uint64_t i = 0; i < n; i++) {
        bench_make(&r, i);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r.key);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)r.a);
        sqlite3_bind_double(st, 3, r.v);
        sqlite3_bind_int64(st, 4, r.b);
        sqlite3_bind_int64(st, 5, r.c);
        sqlite3_bind_text(st, 6, r.tag, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            die_db(db, "INSERT");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec(db, "COMMIT");
    t = bench_now() - t;
    if (sqlite3_close(db) != SQLITE_OK)
        die_db(db, "close");
    return t;
}

/* The sum of a over all records (mod 2^64). */
static uint64_t checksum_a(sqlite3 *db)
{
    sqlite3_stmt *st = prepare(db, "SELECT a FROM rec");
    uint64_t sum = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        sum += (uint64_t)sqlite3_column_int64(st, 0);
    if (rc != SQLITE_DONE)
        die_db(db, "SELECT a FROM rec");
    sqlite3_finalize(st);
    return sum;
}

static void answer_u64(char *buf, uint64_t v)
{
    snprintf(buf, 32, "%llu", (unsigned long long)v);
}

/* The a of record key, with the statement "SELECT a FROM rec WHERE key=?". */
static inline uint64_t get_a(sqlite3 *db, sqlite3_stmt *st, uint64_t key)
{
    sqlite3_bind_int64(st, 1, (sqlite3_int64)key);
    if (sqlite3_step(st) != SQLITE_ROW)
        die_db(db, "SELECT a FROM rec WHERE key=?");
    uint64_t a = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return a;
}

/* Keyed workloads. pk: a table keyed by a (INTEGER PRIMARY KEY, a as a
 * signed 64-bit integer), loaded in key order; secondary: the table of the
 * other workloads (keyed by position) with an index on a. */
static void build_pk(const char *dir, uint64_t n)
{
    rmrf(dir);
    if (mkdir(dir, 0755) != 0)
        BENCH_DIE("cannot make %s", dir);
    uint64_t (*ka)[2] = malloc(n * sizeof *ka);
    if (!ka)
        BENCH_DIE("out of memory");
    for (uint64_t i = 0; i < n; i++) {
        ka[i][0] = bench_a(i) ^ (UINT64_C(1) << 63); /* signed order */
        ka[i][1] = i;
    }
    qsort(ka, n, sizeof *ka, bench_cmp_u64);
    sqlite3 *db = open_db(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    exec(db, "PRAGMA journal_mode=WAL");
    exec(db, "CREATE TABLE rec(a INTEGER PRIMARY KEY, key INTEGER, v REAL, b INTEGER, "
             "c INTEGER, tag TEXT)");
    exec(db, "BEGIN");
    sqlite3_stmt *st = prepare(db, "INSERT INTO rec(key, a, v, b, c, tag) VALUES (?, ?, ?, ?, ?, ?)");
    struct bench_rec r;
    for (uint64_t j = 0; j < n; j++) {
        bench_make(&r, ka[j][1]);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r.key);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)r.a);
        sqlite3_bind_double(st, 3, r.v);
        sqlite3_bind_int64(st, 4, r.b);
        sqlite3_bind_int64(st, 5, r.c);
        sqlite3_bind_text(st, 6, r.tag, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            die_db(db, "INSERT");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec(db, "COMMIT");
    sqlite3_close(db);
    free(ka);
}

static int keyed(int prep, const char *w, uint64_t n, const char *dir)
{
    bool pk = strcmp(variant, "pk") == 0;
    if (!pk && strcmp(variant, "secondary") != 0)
        BENCH_DIE("sqlite: unknown variant %s for a keyed workload (pk, secondary)", variant);
    char ans[32];
    if (strcmp(w, "ixbuild") == 0) {
        if (pk)
            bench_unsupported("a primary key is not built apart from its table");
        if (prep) {
            build(dir, n);
            return 0;
        }
        sqlite3 *db = open_db(SQLITE_OPEN_READWRITE);
        double t = bench_now();
        exec(db, "CREATE INDEX rec_a ON rec(a)");
        t = bench_now() - t;
        exec(db, "DROP INDEX rec_a");
        sqlite3_close(db);
        answer_u64(ans, n);
        bench_result("sqlite", variant, w, n, n, t, ans);
        return 0;
    }
    if (strcmp(w, "keyget") != 0 && strcmp(w, "range") != 0)
        bench_unsupported("not measured for SQLite");
    if (prep) {
        if (pk) {
            build_pk(dir, n);
        } else {
            build(dir, n);
            sqlite3 *db = open_db(SQLITE_OPEN_READWRITE);
            exec(db, "CREATE INDEX rec_a ON rec(a)");
            sqlite3_close(db);
        }
        return 0;
    }
    sqlite3 *db = open_db(SQLITE_OPEN_READONLY);
    exec(db, "BEGIN");
    uint64_t sum = 0, ops;
    double t;
    if (strcmp(w, "keyget") == 0) {
        sqlite3_stmt *st = prepare(db, "SELECT b FROM rec WHERE a = ?");
        ops = BENCH_KEYGETS;
        t = bench_now();
        for (uint64_t k = 0; k < ops; k++) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)bench_lookup_key(k, n));
            if (sqlite3_step(st) != SQLITE_ROW)
                die_db(db, "SELECT b FROM rec WHERE a = ?");
            sum += (uint64_t)sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
        }
        t = bench_now() - t;
        sqlite3_finalize(st);
    } else {
        sqlite3_stmt *st = prepare(db, "SELECT b FROM rec WHERE a >= ? ORDER BY a LIMIT 1000");
        ops = BENCH_RANGES;
        t = bench_now();
        for (uint64_t j = 0; j < ops; j++) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)bench_range_start(j, n));
            int rc;
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                sum += (uint64_t)sqlite3_column_int64(st, 0);
            if (rc != SQLITE_DONE)
                die_db(db, "range");
            sqlite3_reset(st);
        }
        t = bench_now() - t;
        sqlite3_finalize(st);
    }
    exec(db, "COMMIT");
    sqlite3_close(db);
    answer_u64(ans, sum);
    bench_result("sqlite", variant, w, n, ops, t, ans);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        BENCH_DIE("usage: bench_sqlite prepare|run WORKLOAD N DIR [wal|full|off|normal|mmap]");
    const char *phase = argv[1], *w = argv[2], *dir = argv[4];
    uint64_t n = strtoull(argv[3], NULL, 10);
    if (argc > 5)
        variant = argv[5];
    if (strcmp(w, "keyget") == 0 || strcmp(w, "range") == 0 || strcmp(w, "ixbuild") == 0 ||
        strcmp(w, "keycommit") == 0) {
        if (strcmp(phase, "prepare") != 0 && strcmp(phase, "run") != 0)
            BENCH_DIE("sqlite: unknown phase %s", phase);
        snprintf(db_path, sizeof db_path, "%s/rec.db", dir);
        return keyed(strcmp(phase, "prepare") == 0, w, n, dir);
    }
    if (strcmp(variant, "wal") != 0 && strcmp(variant, "full") != 0 &&
        strcmp(variant, "off") != 0 && strcmp(variant, "normal") != 0 &&
        strcmp(variant, "mmap") != 0)
        BENCH_DIE("sqlite: unknown variant %s (wal, full, off, normal, mmap)", variant);
    int prep = strcmp(phase, "prepare") == 0;
    if (!prep && strcmp(phase, "run") != 0)
        BENCH_DIE("sqlite: unknown phase %s", phase);
    snprintf(db_path, sizeof db_path, "%s/rec.db", dir);
    char ans[64] = "-";

    if (strcmp(w, "open") == 0 || strcmp(w, "get") == 0 || strcmp(w, "scan") == 0 ||
        strcmp(w, "openscan") == 0) {
        if (prep) {
            build(dir, n);
            return 0;
        }
        uint64_t ops = 1;
        double t = bench_now();
        sqlite3 *db = open_db(SQLITE_OPEN_READONLY);
        if (strcmp(w, "open") == 0) {
            sqlite3_stmt *st = prepare(db, "SELECT a FROM rec WHERE key=?");
            answer_u64(ans, get_a(db, st, bench_key(0, n)));
            t = bench_now() - t;
            sqlite3_finalize(st);
        } else if (strcmp(w, "get") == 0) {
            ops = 10000000;
            sqlite3_stmt *st = prepare(db, "SELECT a FROM rec WHERE key=?");
            exec(db, "BEGIN");
            uint64_t sum = 0;
            t = bench_now();
            for (uint64_t k = 0; k < ops; k++)
                sum += get_a(db, st, bench_key(k, n));
            t = bench_now() - t;
            exec(db, "COMMIT");
            sqlite3_finalize(st);
            answer_u64(ans, sum);
        } else {
            ops = n;
            if (strcmp(w, "scan") == 0) /* openscan: timed from before the open */
                t = bench_now();
            sqlite3_stmt *st = prepare(db, "SELECT sum(b) FROM rec");
            if (sqlite3_step(st) != SQLITE_ROW)
                die_db(db, "SELECT sum(b) FROM rec");
            uint64_t sum = (uint64_t)sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
            t = bench_now() - t;
            answer_u64(ans, sum);
        }
        if (sqlite3_close(db) != SQLITE_OK)
            die_db(db, "close");
        bench_result("sqlite", variant, w, n, ops, t, ans);
        return 0;
    }
    if (strcmp(w, "load") == 0) {
        if (prep)
            return 0;
        double t = build(dir, n);
        sqlite3 *db = open_db(SQLITE_OPEN_READONLY);
        answer_u64(ans, checksum_a(db));
        if (sqlite3_close(db) != SQLITE_OK)
            die_db(db, "close");
        bench_result("sqlite", variant, w, n, n, t, ans);
        rmrf(dir);
        return 0;
    }
    if (strcmp(w, "commit") == 0) {
        if (prep) {
            build(dir, n);
            return 0;
        }
        sqlite3 *db = open_db(SQLITE_OPEN_READWRITE);
        /* a + 1 on the uint64 bit pattern: SQLite turns an int64 overflow
         * into a REAL, so wrap INT64_MAX by hand. */
        sqlite3_stmt *st = prepare(db, "UPDATE rec SET a = CASE WHEN a = 9223372036854775807 "
                                       "THEN -9223372036854775807 - 1 ELSE a + 1 END "
                                       "WHERE key = ?");
        enum { TXNS = 10000 };
        double t = bench_now();
        for (uint64_t j = 0; j < TXNS; j++) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)bench_key(j, n));
            if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(db) != 1)
                die_db(db, "UPDATE");
            sqlite3_reset(st);
        }
        t = bench_now() - t;
        sqlite3_finalize(st);
        answer_u64(ans, checksum_a(db));
        if (sqlite3_close(db) != SQLITE_OK)
            die_db(db, "close");
        bench_result("sqlite", variant, w, n, TXNS, t, ans);
        /* The next run starts from the prepared state again. */
        build(dir, n);
        return 0;
    }
    if (strcmp(w, "alloc") == 0)
        bench_unsupported("SQLite is a relational database with no object allocator");
    if (strcmp(w, "commit_size") == 0 || strcmp(w, "ipc") == 0)
        bench_unsupported("mmstore-only workload");
    bench_unsupported("unknown workload");
    return 3;
}
