/*
 * mms_import.c -- `mms import DIR TABLE FILE [--schema SPEC] [--skip-bad]
 * [--keep-text]`: a CSV file into a table, in one write transaction.
 *
 * How it runs:
 *  1. The input is mapped: a regular file, or a pipe's bytes written to a
 *     spool file beside the store first (input_spool); the header row
 *     names the columns. The store is opened, created if
 *     needed (then a failed import removes it, and so does a signal that
 *     ends it before the commit: undo_store_now()).
 *  2. The write transaction begins before anything about the table is
 *     decided, so the layout read and the rows appended belong to one
 *     state of the store.
 *  3. Pass 1 reads every row: malformed rows, rows with more fields than
 *     the header, invalid UTF-8 and (for declared kinds) values that do
 *     not parse are bad rows, reported with their line. A shorter row is
 *     good: its last columns are missing values. For a new table without
 *     --schema it infers each column's kind from the good rows' non-empty
 *     values (infer()), and counts each column's empty and absent cells.
 *  4. Any bad row without --skip-bad: abort, exit 1, nothing imported.
 *  5. The table is created if needed.
 *  6. Pass 2 reads the rows again, appends the good ones at the end of the
 *     table in chunks of about 4 MB (mms_table_append_many(): fresh space,
 *     not journaled; never a reused slot, so the chunks are contiguous) and
 *     fills the records in place, skipping the rows pass 1 found bad (by
 *     their ordinal, so the two passes cannot disagree); strings go to the
 *     heap with mms_str_new().
 *
 * Memory does not grow with the file (MEMORY below): both passes give back
 * the input pages behind them, and pass 2 the store's fresh pages it filled
 * (mms_release_memory()), every RELEASE_BYTES of input. Input from a pipe
 * too: it is spooled to a file and mapped, never held in memory whole.
 *  7. Commit. A crash (SIGKILL included) at any point before the commit
 *     record is durable leaves the store as it was; after, all rows. A
 *     request to stop (SIGINT: Ctrl-C, Python's import_csv; SIGTERM,
 *     SIGHUP) kills the tool before the commit begins, waits while it
 *     runs, and after it ends the tool at once with exit status 0. So the
 *     exit status says what happened: 0 all rows, death by one of those
 *     signals or another status nothing (stop_signals(); a close that
 *     fails after the commit is a warning).
 *
 * Never: a second transaction, a commit of part of the rows, a write to
 * the store outside the transaction.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise(MADV_DONTNEED): posix_madvise's does nothing on Linux */
#include "csv.h"
#include "numfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPORTED 1000     /* bad rows listed one by one */
#define RELEASE_BYTES (8u << 20) /* MEMORY: input read between two releases */
#define CHUNK_BYTES (4u << 20)   /* records appended at a time in pass 2 */
#define MAX_CHARS (16u << 20) /* chars:N: at most this N */
#define INDEX_SPEC "FIELD[:hash][:unique][:cover=F2]" /* an --index argument */
#define MAX_COLUMNS 65535u    /* the catalog counts fields in 16 bits; the
                                 library may allow fewer (it says so) */

/* ------------------------------------------------------------------------
 * Input
 * ------------------------------------------------------------------------ */
struct input {
    const char *name; /* for messages */
    const char *buf;  /* the whole input */
    size_t len;
    void *map;        /* mapping of a regular file (or of a pipe's spool), or NULL */
    size_t maplen;
};

/* Removing, from a signal handler, the store this import created (step
 * 1): a SIGBUS from the input, a request to stop before the commit. Only
 * async-signal-safe calls on names made beforehand: the files of a new
 * store (doc/FORMAT.md 1) -- lock, journal, region-0-0 (.tmp) and the
 * regions its table and indexes take (ids 1 to UNDO_REGIONS, generation
 * 0) -- and the directory unless it was there before. */
#define UNDO_REGIONS 16 /* the table and its at most 8 --index regions, and room */
static struct {
    volatile sig_atomic_t armed;
    int dirfd;
    bool dir_existed;
    char path[4096];
    char region[UNDO_REGIONS][24];
} undo = {.dirfd = -1};

static void undo_arm(const char *dir, bool dir_existed)
{
    if (strlen(dir) >= sizeof undo.path)
        return;
    undo.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (undo.dirfd < 0)
        return;
    memcpy(undo.path, dir, strlen(dir) + 1);
    undo.dir_existed = dir_existed;
    for (int i = 0; i < UNDO_REGIONS; i++)
        snprintf(undo.region[i], sizeof undo.region[i], "region-%d-0", i + 1);
    undo.armed = 1;
}

static void undo_store_now(void)
{
    static const char *const files[] = {"lock", "journal", "region-0-0", "region-0-0.tmp"};
    if (!undo.armed)
        return;
    undo.armed = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlinkat(undo.dirfd, files[i], 0);
    for (int i = 0; i < UNDO_REGIONS; i++)
        unlinkat(undo.dirfd, undo.region[i], 0);
    if (!undo.dir_existed)
        rmdir(undo.path);
}

/* A mapped input file that cannot be read where it is mapped (truncated by
 * someone else while it is read; a hole on a full file system; an I/O
 * error) faults (SIGBUS). The transaction is not committed, so the store is
 * as a crash leaves it: untouched; one this import created goes, as after
 * any failure. Say so and exit 1 instead of dying by the signal. */
static void on_sigbus(int sig)
{
    static const char msg[] = "mms: import: the input file could not be read while it was "
                              "imported (a bus error: it shrank, or its file system failed); "
                              "nothing imported\n";
    (void)sig;
    ssize_t k = write(2, msg, sizeof msg - 1);
    (void)k;
    undo_store_now();
    _exit(1);
}

/* Step 7's rule for SIGINT, SIGTERM and SIGHUP: before the commit, death,
 * nothing imported (and a store this import created removed first); ignored
 * while it runs (a death then could leave it durable with a status that
 * says "killed"); after a commit that succeeded, a quick exit 0 (the rows
 * are durable: the checkpoint of mms_close is the next opener's). */
static void on_stop_before_commit(int sig)
{
    undo_store_now();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_stop_after_commit(int sig)
{
    static const char msg[] = "mms: import: stopped after the commit: every row is imported\n";
    (void)sig;
    ssize_t k = write(2, msg, sizeof msg - 1);
    (void)k;
    _exit(0);
}

static void stop_signals(void (*handler)(int))
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* Map [0, size) of the regular file fd as the input (fd stays the
 * caller's to close). */
static int input_map(struct input *in, int fd, size_t size)
{
    in->maplen = size;
    in->map = mmap(NULL, in->maplen, PROT_READ, MAP_PRIVATE, fd, 0);
    if (in->map == MAP_FAILED) {
        in->map = NULL;
        return tool_err("cannot map %s: %s", in->name, strerror(errno));
    }
    posix_madvise(in->map, in->maplen, POSIX_MADV_SEQUENTIAL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    in->buf = in->map;
    in->len = in->maplen;
    return 0;
}

/* A new file for the spool of a pipe: DIR.mms-import-PID beside the store
 * (on the file system the rows go to, not /tmp, which may be memory), or
 * where that cannot be made (a parent the user cannot write), in $TMPDIR.
 * Unlinked at once: it goes when the import ends, however it ends; one
 * that a kill left between the two calls goes at the next import beside
 * DIR (mms_leftovers_remove). -1 and a message if neither can be made. */
static int spool_open(const char *dir, char *where, size_t cap)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    char name[4200];
    snprintf(name, sizeof name, "%.*s", (int)n, dir);
    mms_leftovers_remove(name, ".mms-import-", NULL); /* imports beside DIR that were killed */
    snprintf(name + strlen(name), sizeof name - strlen(name), ".mms-import-%d", (int)getpid());
    int fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        unlink(name);
        snprintf(where, cap, "beside %.*s", (int)n, dir);
        return fd;
    }
    int e = errno;
    const char *t = getenv("TMPDIR");
    char tmpl[4200];
    snprintf(tmpl, sizeof tmpl, "%s/mms-import-XXXXXX", t && *t ? t : "/tmp");
    fd = mkstemp(tmpl);
    if (fd >= 0) {
        unlink(tmpl);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        snprintf(where, cap, "in %s", t && *t ? t : "/tmp");
        return fd;
    }
    tool_err("cannot make a file for the input beside %.*s (%s) nor in %s (%s)", (int)n, dir,
             strerror(e), t && *t ? t : "/tmp", strerror(errno));
    return -1;
}

/* A pipe or a device: its bytes are written to a spool file, which is
 * then mapped as a regular input is (MEMORY: both passes read it, and
 * memory stays bounded whatever the input's size; the disk holds one copy
 * of the input until the import ends). */
static int input_spool(struct input *in, int fd, const char *dir)
{
    char where[4300];
    int sfd = spool_open(dir, where, sizeof where);
    if (sfd < 0)
        return 1;
    static char chunk[1 << 20];
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t k = read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = tool_err("cannot read %s: %s", in->name, strerror(errno));
            break;
        }
        if (k == 0)
            break;
        for (ssize_t done = 0; done < k && !rc;) {
            ssize_t w = write(sfd, chunk + done, (size_t)(k - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                rc = tool_err("cannot keep %s %s while it is imported: %s", in->name, where,
                              strerror(errno));
            else
                done += w;
        }
        if (rc)
            break;
        total += (uint64_t)k;
    }
    if (!rc && total > SIZE_MAX)
        rc = tool_err("%s: too large", in->name);
    if (!rc && total > 0)
        rc = input_map(in, sfd, (size_t)total);
    else if (!rc)
        in->buf = ""; /* empty: no header, said by read_header */
    close(sfd);
    return rc;
}

static int input_load(struct input *in, const char *path, const char *dir)
{
    memset(in, 0, sizeof *in);
    in->name = path;
    bool std = strcmp(path, "-") == 0;
    if (std)
        in->name = "(stdin)";
    int fd = std ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tool_err("cannot open %s: %s", path, strerror(errno));
    struct stat st;
    int rc;
    if (fstat(fd, &st) != 0)
        rc = tool_err("cannot stat %s: %s", in->name, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = tool_err("%s is a directory, not a CSV file", in->name);
    else if (S_ISREG(st.st_mode) && st.st_size > 0)
        rc = input_map(in, fd, (size_t)st.st_size);
    else /* a pipe or a device (or a file that claims to be empty): spooled */
        rc = input_spool(in, fd, dir);
    if (!std)
        close(fd);
    return rc;
}

/* MEMORY. A page of the mapped input counts in the process's resident
 * memory until it is unmapped, so a pass over a 144 MB file held 144 MB.
 * The bytes before upto (a row boundary: no field of the current row
 * points there) are not read again in this pass: their page-table entries
 * go (MADV_DONTNEED on a private read-only file mapping never written:
 * the pages stay in the page cache, a later read maps them again). */
static void input_release(struct input *in, size_t upto)
{
    if (!in->map)
        return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    upto -= upto % page;
    if (upto)
        madvise(in->map, upto, MADV_DONTNEED);
}

static void input_free(struct input *in)
{
    if (in->map)
        munmap(in->map, in->maplen);
}

/* ------------------------------------------------------------------------
 * Columns and layouts
 * ------------------------------------------------------------------------ */
struct col {
    char name[48];
    unsigned kind;
    uint32_t size, offset;
    char target[64];      /* REF: the table the index is into */
    mms_table *target_t;  /* REF: its handle (this table: set once it exists) */
    bool self;            /* REF into the table being imported */
    bool maybe_int, maybe_float; /* inference: every value so far could be one */
    bool negative, past_i64; /* inference: an integer < 0; one > INT64_MAX (a u64) */
    uint64_t empty;       /* good rows with an empty cell here */
    uint64_t absent;      /* good rows too short to reach this column */
};

/* A missing value: a cell of a short row, or an empty cell of a column
 * whose kind has no empty value (numbers and bool). An empty str, chars or
 * blob is an empty value, and an empty ref means "no record". */
static bool kind_has_empty(unsigned kind)
{
    int cls = mms_kind_class(kind);
    return cls != 'i' && cls != 'u' && cls != 'f' && cls != 'b';
}

static uint64_t col_missing(const struct col *c)
{
    return c->absent + (kind_has_empty(c->kind) ? 0 : c->empty);
}

/* One entry of --schema. */
struct decl {
    char name[48];
    unsigned kind;
    uint32_t size;
    char target[64];
    bool used;
};

extern const struct tool_cmd tool_cmd_import;
#define CMD (&tool_cmd_import)

/* "name:kind,...": fills *out (malloc'd) and *n; returns 0, or 2 after a
 * usage error. */
static int spec_parse(const char *spec, struct decl **out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = spec; *p; p++)
        cap += *p == ',';
    struct decl *d = calloc(cap, sizeof *d);
    if (!d)
        return tool_err("out of memory");
    size_t k = 0;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (!colon || colon == p || colon - p > 47) {
            free(d);
            return tool_usage_err(CMD, "--schema: '%.*s' is not NAME:KIND with a name of 1 "
                                  "to 47 bytes", (int)len, p);
        }
        struct decl *e = &d[k];
        memcpy(e->name, p, (size_t)(colon - p));
        const char *kind = colon + 1;
        size_t klen = len - (size_t)(colon - p) - 1;
        bool ok = false;
        char kname[16];
        if (klen < sizeof kname) {
            memcpy(kname, kind, klen);
            kname[klen] = 0;
            unsigned kd = mms_kind_from_name(kname);
            /* chars and ref need their argument (chars:N, ref:TABLE). */
            if (kd && kd != MMS_KIND_CHARS && kd != MMS_KIND_REF) {
                e->kind = kd;
                e->size = mms_kind_size(kd);
                ok = true;
            }
        }
        if (!ok && klen > 6 && memcmp(kind, "chars:", 6) == 0) {
            uint64_t v;
            if (parse_u64(kind + 6, klen - 6, &v) && kind[6] != '+' && v >= 1 && v <= MAX_CHARS) {
                e->kind = MMS_KIND_CHARS;
                e->size = (uint32_t)v;
                ok = true;
            }
        }
        if (!ok && klen > 4 && klen - 4 < 64 && memcmp(kind, "ref:", 4) == 0) {
            e->kind = MMS_KIND_REF;
            e->size = 8;
            memcpy(e->target, kind + 4, klen - 4);
            ok = true;
        }
        if (!ok) {
            int rc = tool_usage_err(CMD, "--schema: field %s: unknown kind '%.*s' (i8 i16 "
                                    "i32 i64 u8 u16 u32 u64 f32 f64 bool str blob chars:N with N "
                                    "from 1 to %u, ref:TABLE)", e->name, (int)klen, kind,
                                    MAX_CHARS);
            free(d);
            return rc;
        }
        for (size_t j = 0; j < k; j++)
            if (strcmp(d[j].name, e->name) == 0) {
                int rc = tool_usage_err(CMD, "--schema names field %s twice", e->name);
                free(d);
                return rc;
            }
        k++;
        if (!end)
            break;
        p = end + 1;
    }
    *out = d;
    *n = k;
    return 0;
}

/* Text of a column's kind as --schema spells it. */
static void kind_text(unsigned kind, uint32_t size, const char *target, char *buf, size_t cap)
{
    if (kind == MMS_KIND_CHARS)
        snprintf(buf, cap, "chars:%u", size);
    else if (kind == MMS_KIND_REF)
        snprintf(buf, cap, "ref:%s", target ? target : "?");
    else
        snprintf(buf, cap, "%s", mms_kind_name(kind) ? mms_kind_name(kind) : "?");
}

/* Offsets in column order, each aligned to the field's size (chars: 1);
 * the record rounded up to the largest alignment: a C struct's layout. */
static int layout_columns(struct col *c, size_t n, uint32_t *record_size)
{
    uint64_t off = 0, maxal = 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t al = c[i].kind == MMS_KIND_CHARS ? 1 : c[i].size;
        off = (off + al - 1) / al * al;
        c[i].offset = (uint32_t)off;
        off += c[i].size;
        if (al > maxal)
            maxal = al;
        if (off > UINT32_MAX)
            return tool_err("the records would be larger than 4 GiB");
    }
    off = (off + maxal - 1) / maxal * maxal;
    if (off > UINT32_MAX)
        return tool_err("the records would be larger than 4 GiB");
    *record_size = (uint32_t)off;
    return 0;
}

static void describe_schema(const mms_schema *sc, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < sc->nfields && k + 1 < cap; i++) {
        const mms_field *f = &sc->fields[i];
        char kt[80];
        kind_text(f->kind, f->size, f->target, kt, sizeof kt);
        k += (size_t)snprintf(buf + k, cap - k, "%s%s:%s@%u", i ? "," : "", f->name, kt,
                              f->offset);
    }
    if (k + 1 < cap)
        snprintf(buf + k, cap - k, " (%u-byte records)", sc->record_size);
}

/* ------------------------------------------------------------------------
 * Progress on a terminal
 * ------------------------------------------------------------------------ */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct progress {
    bool on;
    bool shown;
    double t0, next;
    uint64_t total;
};

static void progress_init(struct progress *pg, uint64_t total)
{
    const char *env = getenv("MMS_PROGRESS");
    pg->on = env && *env ? strcmp(env, "0") != 0 : isatty(2) == 1;
    pg->shown = false;
    pg->total = total;
    pg->t0 = now_s();
    pg->next = pg->t0 + 0.5;
}

static void progress_phase(struct progress *pg)
{
    pg->t0 = now_s();
}

static void progress_show(struct progress *pg, const char *phase, uint64_t done, uint64_t rows,
                          bool force)
{
    if (!pg->on)
        return;
    double t = now_s();
    if (!force && t < pg->next)
        return;
    pg->next = t + 0.5;
    double el = t - pg->t0;
    fprintf(stderr, "\r%s import: %s %.1f of %.1f MB (%.0f%%), %llu rows, %.2f M rows/s\033[K",
            tool_prog, phase, done / 1e6, pg->total / 1e6,
            pg->total ? 100.0 * (double)done / (double)pg->total : 100.0,
            (unsigned long long)rows, el > 0 ? rows / el / 1e6 : 0.0);
    fflush(stderr);
    pg->shown = true;
}

static void progress_text(struct progress *pg, const char *text)
{
    if (!pg->on)
        return;
    fprintf(stderr, "\r%s import: %s\033[K", tool_prog, text);
    fflush(stderr);
    pg->shown = true;
}

static void progress_clear(struct progress *pg)
{
    if (pg->shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        pg->shown = false;
    }
}

/* ------------------------------------------------------------------------
 * The import
 * ------------------------------------------------------------------------ */
/* An --index argument, INDEX_SPEC. */
struct ixspec {
    char field[64], cover[64]; /* cover "": none */
    unsigned flags;            /* MMS_INDEX_* */
};

struct imp {
    const char *dir, *table;
    struct input in;
    struct csv_reader rd;
    size_t data_start;      /* first byte after the header row */
    uint64_t data_line;     /* its line */
    struct col *cols;
    size_t ncols;
    bool declared;          /* kinds given (--schema or the stored layout) */
    bool skip_bad;
    bool keep_text;         /* infer numbers only from their canonical text */
    bool created_store;     /* this import created the store: remove it on failure */
    bool dir_existed;       /* DIR was there before (maybe empty) */
    mms_store *s;
    mms_table *t;           /* NULL until the table exists */
    const struct ixspec *ix; /* --index specs, parsed */
    int nix;
    uint64_t old_slots;     /* slots of the table before this import */
    uint32_t record_size;
    char *rec;              /* a scratch record for pass 1 */
    char *bytes;            /* decoded blob */
    size_t bytes_cap;
    uint64_t *bad;          /* --skip-bad: bit i set: row ordinal i is bad */
    size_t bad_words;
    size_t nbad;
    uint64_t good;
    uint64_t index;         /* pass 2: index of the record being filled */
    uint64_t self_max;      /* largest ref into this table past old_slots, +1 */
    uint64_t self_line;     /* its line */
    uint64_t bad_at;        /* good rows before the first bad one, and its line */
    uint64_t bad_line;
    struct progress pg;
};

/* A short, printable excerpt of a value for a message. */
static void excerpt(const char *p, size_t n, char *out, size_t cap)
{
    size_t k = 0, max = cap - 4;
    size_t i = 0;
    for (; i < n && k < max; i++) {
        unsigned char c = (unsigned char)p[i];
        out[k++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (i < n) {
        /* Do not cut a UTF-8 sequence. */
        while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
            k--;
        if (k > 0 && (unsigned char)out[k - 1] >= 0xc0)
            k--;
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = 0;
}

/* Reasons a value is bad; written into why. */
static bool bad_value(const struct col *c, const char *p, size_t n, const char *what, char *why,
                      size_t cap)
{
    char ex[48], kt[80];
    excerpt(p, n, ex, sizeof ex);
    kind_text(c->kind, c->size, c->target, kt, sizeof kt);
    snprintf(why, cap, "field %s: \"%s\" %s%s", c->name, ex, what ? what : "is not a valid ",
             what ? "" : kt);
    return false;
}

/* A missing value of column c in rec: zero bytes, until the library
 * stores nulls. NULL STORAGE: every missing value of the import passes
 * here (store: in pass 2, record im->index), so the null API's call goes
 * here and nowhere else:
 *     if (store)
 *         mms_table_null_set(im->t, im->index, (unsigned)(c - im->cols), 1);
 */
/* A missing value: zero bytes, and (pass 2, the record exists) the field
 * marked missing in the store (mms_table_null_set), so that dump writes it
 * back as an empty cell. */
static int missing_to_field(const struct imp *im, const struct col *c, char *rec, bool store)
{
    memset(rec + c->offset, 0, c->size);
    if (!store || !im->t)
        return 0;
    const mms_schema *sc = mms_table_schema(im->t);
    for (uint32_t k = 0; sc && k < sc->nfields; k++)
        if (strcmp(sc->fields[k].name, c->name) == 0)
            return mms_table_null_set(im->t, im->index, k, 1);
    return 0;
}

/* Parse the text of one value as the column's kind into rec + offset.
 * store: allocate strings and blobs (pass 2); otherwise only check them.
 * An empty cell of a number or bool column is a missing value.
 * Returns true, or false with the reason in why. */
static bool text_to_field(struct imp *im, struct col *c, const char *p, size_t n, char *rec,
                          bool store, uint64_t line, char *why, size_t cap)
{
    char *d = rec + c->offset;
    if (n == 0 && !kind_has_empty(c->kind)) {
        int r = missing_to_field(im, c, rec, store);
        if (r)
            snprintf(why, cap, "cannot mark a missing value: %s", mms_strerror(r));
        return r == 0;
    }
    switch (c->kind) {
    case MMS_KIND_I8: case MMS_KIND_I16: case MMS_KIND_I32: case MMS_KIND_I64: {
        int64_t v;
        int64_t lim = c->size == 8 ? INT64_MAX : (INT64_C(1) << (c->size * 8 - 1)) - 1;
        if (!parse_i64(p, n, &v) || v > lim || v < -lim - 1)
            return bad_value(c, p, n, NULL, why, cap);
        if (c->size == 1) { int8_t x = (int8_t)v; memcpy(d, &x, 1); }
        else if (c->size == 2) { int16_t x = (int16_t)v; memcpy(d, &x, 2); }
        else if (c->size == 4) { int32_t x = (int32_t)v; memcpy(d, &x, 4); }
        else memcpy(d, &v, 8);
        return true;
    }
    case MMS_KIND_U8: case MMS_KIND_U16: case MMS_KIND_U32: case MMS_KIND_U64: {
        uint64_t v;
        uint64_t lim = c->size == 8 ? UINT64_MAX : (UINT64_C(1) << (c->size * 8)) - 1;
        bool neg_zero = n >= 2 && p[0] == '-' && parse_u64(p + 1, n - 1, &v) && v == 0 &&
                        p[1] != '+';
        if (!neg_zero && (!parse_u64(p, n, &v) || v > lim))
            return bad_value(c, p, n, NULL, why, cap);
        if (c->size == 1) { uint8_t x = (uint8_t)v; memcpy(d, &x, 1); }
        else if (c->size == 2) { uint16_t x = (uint16_t)v; memcpy(d, &x, 2); }
        else if (c->size == 4) { uint32_t x = (uint32_t)v; memcpy(d, &x, 4); }
        else memcpy(d, &v, 8);
        return true;
    }
    case MMS_KIND_F32: {
        float v;
        if (!parse_f32(p, n, &v))
            return bad_value(c, p, n, NULL, why, cap);
        memcpy(d, &v, 4);
        return true;
    }
    case MMS_KIND_F64: {
        double v;
        if (!parse_f64(p, n, &v))
            return bad_value(c, p, n, NULL, why, cap);
        memcpy(d, &v, 8);
        return true;
    }
    case MMS_KIND_BOOL:
        if (n == 4 && memcmp(p, "true", 4) == 0)
            *d = 1;
        else if (n == 5 && memcmp(p, "false", 5) == 0)
            *d = 0;
        else
            return bad_value(c, p, n, "is not true or false", why, cap);
        return true;
    case MMS_KIND_CHARS:
        if (n > c->size) {
            char m[64];
            snprintf(m, sizeof m, "is longer than %u bytes", c->size);
            return bad_value(c, p, n, m, why, cap);
        }
        if (memchr(p, 0, n))
            return bad_value(c, p, n, "holds a NUL byte", why, cap);
        memcpy(d, p, n);
        memset(d + n, 0, c->size - n);
        return true;
    case MMS_KIND_STR: {
        if (!store)
            return true;
        mms_ref ref;
        int r = mms_str_new(im->s, p, n, &ref);
        if (r) {
            snprintf(why, cap, "cannot store a string of %zu bytes: %s", n, mms_strerror(r));
            return false;
        }
        memcpy(d, &ref, 8);
        return true;
    }
    case MMS_KIND_BLOB: {
        if (n % 2)
            return bad_value(c, p, n, "is not hex (an odd number of digits)", why, cap);
        if (store && n / 2 > im->bytes_cap) {
            char *b = realloc(im->bytes, n / 2);
            if (!b) {
                snprintf(why, cap, "out of memory");
                return false;
            }
            im->bytes = b;
            im->bytes_cap = n / 2;
        }
        for (size_t i = 0; i < n; i += 2) {
            int hi = tool_hexval(p[i]), lo = tool_hexval(p[i + 1]);
            if (hi < 0 || lo < 0)
                return bad_value(c, p, n, "is not hex", why, cap);
            if (store)
                im->bytes[i / 2] = (char)(hi << 4 | lo);
        }
        if (!store)
            return true;
        mms_ref ref;
        int r = mms_str_new(im->s, im->bytes, n / 2, &ref);
        if (r) {
            snprintf(why, cap, "cannot store a blob of %zu bytes: %s", n / 2, mms_strerror(r));
            return false;
        }
        memcpy(d, &ref, 8);
        return true;
    }
    case MMS_KIND_REF: {
        mms_ref ref = MMS_REF_NULL;
        if (n) {
            uint64_t idx;
            if (!parse_u64(p, n, &idx) || idx > MMS_SLOT_MASK)
                return bad_value(c, p, n, "is not a record index", why, cap);
            if (c->self && idx >= im->old_slots && !store) {
                /* A record of this import: checked once the count is known. */
                if (idx + 1 > im->self_max) {
                    im->self_max = idx + 1;
                    im->self_line = line;
                }
            } else {
                mms_table *tt = c->self ? im->t : c->target_t;
                if (!mms_table_live(tt, idx)) {
                    char m[96];
                    snprintf(m, sizeof m, "is not a live record of table %s", c->target);
                    return bad_value(c, p, n, m, why, cap);
                }
            }
            ref = c->self && !im->t ? MMS_REF_NULL : mms_table_ref(c->self ? im->t : c->target_t,
                                                                    idx);
        }
        memcpy(d, &ref, 8);
        return true;
    }
    default:
        snprintf(why, cap, "field %s: kind %u cannot be imported", c->name, c->kind);
        return false;
    }
}

/* A number as people write it: [+-]digits[.digits][e[+-]digits] (also .5
 * and 5.), or nan, inf, infinity in any case, with a sign. *integer: no
 * point and no exponent. */
static bool number_syntax(const char *p, size_t n, bool *integer)
{
    size_t i = n && (p[0] == '+' || p[0] == '-');
    *integer = false;
    if (n - i >= 3 && n - i <= 8) {
        char w[9];
        for (size_t k = i; k < n; k++)
            w[k - i] = (char)(p[k] | 0x20);
        w[n - i] = 0;
        if (!strcmp(w, "nan") || !strcmp(w, "inf") || !strcmp(w, "infinity"))
            return true;
    }
    size_t digits = 0;
    bool point = false;
    for (; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '9')
            digits++;
        else if (p[i] == '.' && !point)
            point = true;
        else
            break;
    }
    if (!digits)
        return false;
    if (i == n) {
        *integer = !point;
        return true;
    }
    if (p[i] != 'e' && p[i] != 'E')
        return false;
    i++;
    i += i < n && (p[i] == '+' || p[i] == '-');
    if (i == n)
        return false;
    for (; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

static bool exact_in_double(int64_t v)
{
    double d = (double)v;
    return d < 9223372036854775808.0 && d >= -9223372036854775808.0 && (int64_t)d == v;
}

/* The kind of a new table's column: i64 if every value is an integer
 * of i64, u64 if every value is an integer of u64 and one is past
 * INT64_MAX, else f64 if every value is a number (and its integers are
 * exact in a double), else str. An integer that fits neither the column's
 * integer kind nor a double exactly makes the column str: one past
 * UINT64_MAX, or past INT64_MAX beside a negative value or a float, as
 * one past 2^53 that a double would round. Empty cells are missing
 * values: they do not count. keep_text: only the text dump prints back
 * (canon_*, fmt_u64) is a number, so "1.50", "+7" and "007" keep the
 * column text. */
static void infer(struct col *c, const char *p, size_t n, bool keep_text)
{
    if (n == 0 || (!c->maybe_int && !c->maybe_float))
        return;
    int64_t v;
    uint64_t u;
    double d;
    bool is_int, is_u64 = false, is_num;
    if (keep_text) {
        is_int = canon_i64(p, n, &v);
        if (!is_int && parse_u64(p, n, &u) && u > (uint64_t)INT64_MAX) {
            char t[NUMFMT_MAX];
            is_u64 = fmt_u64(u, t) == n && memcmp(t, p, n) == 0;
        }
        is_num = is_int || is_u64 || canon_f64(p, n, &d);
    } else {
        bool integer;
        is_num = number_syntax(p, n, &integer);
        bool fits = is_num && integer && parse_i64(p, n, &v);
        is_int = fits && !(v == 0 && p[0] == '-'); /* "-0" is a float: it keeps its sign */
        is_u64 = is_num && integer && !fits && parse_u64(p, n, &u); /* > INT64_MAX */
        if (is_num && integer && !fits && !is_u64)
            is_num = false; /* past u64 or below i64: text, which a double would round */
        else if (is_num && !is_int && !parse_f64(p, n, &d))
            is_num = false; /* past the range of a double */
    }
    if (is_int && v < 0)
        c->negative = true;
    if (is_u64) {
        c->past_i64 = true;
        c->maybe_float = false; /* no float: beside one, text (a double rounds most) */
    }
    if (!(is_int || is_u64) || (c->negative && c->past_i64))
        c->maybe_int = false;
    if (!is_num)
        c->maybe_float = false;
    /* |v| <= 2^53 is exact in a double; larger integers among floats only
     * if the double holds them exactly. */
    if (is_int && c->maybe_float && (v > (INT64_C(1) << 53) || v < -(INT64_C(1) << 53)) &&
        (keep_text ? !canon_f64(p, n, &d) : !exact_in_double(v)))
        c->maybe_float = false;
}

static void report_bad(struct imp *im, uint64_t line, const char *why)
{
    if (im->nbad < MAX_REPORTED) {
        progress_clear(&im->pg);
        fprintf(stderr, "%s: %s:%llu: bad row: %s\n", tool_prog, im->in.name,
                (unsigned long long)line, why);
    } else if (im->nbad == MAX_REPORTED) {
        progress_clear(&im->pg);
        fprintf(stderr, "%s: %s: more bad rows; only the first %d are listed\n", tool_prog,
                im->in.name, MAX_REPORTED);
    }
}

/* Remember a bad row for pass 2: a bit per row ordinal (at most one bit
 * per byte of input), only when pass 2 will run with bad rows in it. */
static int add_bad(struct imp *im, uint64_t ordinal)
{
    im->nbad++;
    if (!im->skip_bad)
        return 0;
    size_t w = (size_t)(ordinal / 64);
    if (w >= im->bad_words) {
        size_t words = im->bad_words ? im->bad_words : 64;
        while (words <= w)
            words *= 2;
        uint64_t *b = realloc(im->bad, words * sizeof *b);
        if (!b)
            return tool_err("out of memory");
        memset(b + im->bad_words, 0, (words - im->bad_words) * sizeof *b);
        im->bad = b;
        im->bad_words = words;
    }
    im->bad[w] |= UINT64_C(1) << (ordinal % 64);
    return 0;
}

static bool is_bad(const struct imp *im, uint64_t ordinal)
{
    size_t w = (size_t)(ordinal / 64);
    return w < im->bad_words && (im->bad[w] >> (ordinal % 64) & 1);
}

/* Structural checks of the row just read: NULL if it is a data row with
 * the right number of fields in valid UTF-8. */
static const char *row_problem(struct imp *im, char *why, size_t cap)
{
    struct csv_reader *rd = &im->rd;
    if (rd->err)
        return rd->err;
    if (rd->nf > im->ncols) {
        /* Fewer fields are missing values; more have no column to go to. */
        snprintf(why, cap, "%zu fields, the header has %zu", rd->nf, im->ncols);
        return why;
    }
    if (!utf8_valid(rd->buf + rd->row_start, rd->row_end - rd->row_start))
        return "invalid UTF-8";
    return NULL;
}

/* Position the reader on the first data row. */
static void rewind_reader(struct imp *im)
{
    struct csv_reader *rd = &im->rd;
    csv_reader_free(rd);
    csv_reader_init(rd, im->in.buf, im->in.len);
    rd->pos = im->data_start;
    rd->line = im->data_line;
    rd->max_fields = im->ncols + 1; /* enough to tell "too many" */
}

static int pass1(struct imp *im)
{
    struct csv_reader *rd = &im->rd;
    rewind_reader(im);
    char why[256];
    uint64_t ordinal = 0;
    int r;
    size_t released = 0;
    progress_phase(&im->pg);
    while ((r = csv_next(rd)) == 1) {
        uint64_t o = ordinal++;
        if ((o & 4095) == 0)
            progress_show(&im->pg, "checking", rd->pos, o, false);
        if (rd->row_start - released >= RELEASE_BYTES) {
            input_release(&im->in, rd->row_start);
            released = rd->row_start;
        }
        if (rd->blank && im->ncols > 1)
            continue;
        const char *bad = row_problem(im, why, sizeof why);
        if (!bad && im->declared) {
            for (size_t i = 0; i < rd->nf && !bad; i++)
                if (!text_to_field(im, &im->cols[i], rd->f[i].p, rd->f[i].n, im->rec, false,
                                   rd->row_line, why, sizeof why))
                    bad = why;
        } else if (!bad) {
            for (size_t i = 0; i < rd->nf; i++)
                infer(&im->cols[i], rd->f[i].p, rd->f[i].n, im->keep_text);
        }
        if (bad) {
            report_bad(im, rd->row_line, bad);
            if (!im->nbad) {
                im->bad_at = im->good;
                im->bad_line = rd->row_line;
            }
            if (add_bad(im, o))
                return 1;
            continue;
        }
        im->good++;
        for (size_t i = 0; i < im->ncols; i++) {
            if (i >= rd->nf)
                im->cols[i].absent++;
            else if (rd->f[i].n == 0)
                im->cols[i].empty++;
        }
    }
    if (r < 0)
        return tool_err("%s: out of memory", im->in.name);
    progress_show(&im->pg, "checking", rd->pos, ordinal, true);
    input_release(&im->in, im->in.len);
    return 0;
}

/* The record of good row k (MEMORY: appended a chunk at a time; the
 * chunks follow each other, append_many never reuses a slot). */
static int record_for(struct imp *im, uint64_t k, uint64_t *first, char **where,
                      uint64_t *left, char **rec)
{
    if (*left == 0) {
        uint64_t n = CHUNK_BYTES / im->record_size ? CHUNK_BYTES / im->record_size : 1;
        if (n > im->good - k)
            n = im->good - k;
        uint64_t at;
        void *w;
        int r = mms_table_append_many(im->t, n, &at, &w);
        if (r)
            return tool_fail("cannot append to a table of", im->dir, r);
        if (k == 0)
            *first = at;
        else if (at != *first + k)
            return tool_err("the table in %s grew elsewhere during the import", im->dir);
        *where = w;
        *left = n;
    }
    *rec = *where;
    *where += im->record_size;
    (*left)--;
    return 0;
}

static int pass2(struct imp *im)
{
    struct csv_reader *rd = &im->rd;
    rewind_reader(im);
    char why[256];
    uint64_t ordinal = 0, k = 0, first = 0, left = 0;
    char *where = NULL;
    size_t released = 0;
    int r;
    progress_phase(&im->pg);
    while ((r = csv_next(rd)) == 1) {
        uint64_t o = ordinal++;
        if ((o & 4095) == 0)
            progress_show(&im->pg, "importing", rd->pos, k, false);
        if (rd->row_start - released >= RELEASE_BYTES) {
            input_release(&im->in, rd->row_start);
            mms_release_memory(im->s); /* the records and strings filled so far */
            released = rd->row_start;
        }
        if (is_bad(im, o))
            continue;
        if (rd->blank && im->ncols > 1)
            continue;
        if (k == im->good || rd->err || rd->nf > im->ncols)
            return tool_err("%s:%llu: the file changed while it was imported", im->in.name,
                            (unsigned long long)rd->row_line);
        char *rec = NULL;
        int rc = record_for(im, k, &first, &where, &left, &rec);
        if (rc)
            return rc;
        im->index = first + k;
        for (size_t i = 0; i < im->ncols; i++) {
            if (i >= rd->nf) { /* a short row */
                int mr = missing_to_field(im, &im->cols[i], rec, true);
                if (mr)
                    return tool_fail("cannot mark a missing value", im->in.name, mr);
                continue;
            }
            if (!text_to_field(im, &im->cols[i], rd->f[i].p, rd->f[i].n, rec, true,
                               rd->row_line, why, sizeof why))
                return tool_err("%s:%llu: %s", im->in.name, (unsigned long long)rd->row_line,
                                why);
        }
        k++;
    }
    if (r < 0)
        return tool_err("%s: out of memory", im->in.name);
    if (k != im->good)
        return tool_err("%s: the file changed while it was imported", im->in.name);
    progress_show(&im->pg, "importing", rd->pos, k, true);
    input_release(&im->in, im->in.len);
    mms_release_memory(im->s);
    return 0;
}

/* Header row: names of 1 to 47 bytes of UTF-8 without NUL, unique. */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct col *)a)->name, ((const struct col *)b)->name);
}

static int read_header(struct imp *im)
{
    struct input *in = &im->in;
    size_t start = 0;
    if (in->len >= 3 && memcmp(in->buf, "\xef\xbb\xbf", 3) == 0)
        start = 3; /* a UTF-8 byte-order mark */
    if (in->len == start)
        return tool_err("%s is empty: it needs a header row naming the fields", in->name);
    struct csv_reader *rd = &im->rd;
    csv_reader_init(rd, in->buf, in->len);
    rd->pos = start;
    rd->max_fields = MAX_COLUMNS + 1;
    int r = csv_next(rd);
    if (r < 0)
        return tool_err("%s: out of memory", in->name);
    if (rd->err)
        return tool_err("%s:1: header row: %s", in->name, rd->err);
    if (!utf8_valid(in->buf + rd->row_start, rd->row_end - rd->row_start))
        return tool_err("%s:1: header row: invalid UTF-8", in->name);
    if (rd->nf > MAX_COLUMNS)
        return tool_err("%s:1: header row: more than %u fields", in->name, MAX_COLUMNS);
    im->ncols = rd->nf;
    im->cols = calloc(rd->nf, sizeof *im->cols);
    if (!im->cols)
        return tool_err("out of memory");
    for (size_t i = 0; i < rd->nf; i++) {
        const struct csv_field *f = &rd->f[i];
        char ex[48];
        excerpt(f->p, f->n, ex, sizeof ex);
        if (f->n == 0 || f->n > 47)
            return tool_err("%s:1: header row: field %zu (\"%s\"): a name is 1 to 47 bytes",
                            in->name, i + 1, ex);
        if (memchr(f->p, 0, f->n))
            return tool_err("%s:1: header row: field %zu: a name cannot hold a NUL byte",
                            in->name, i + 1);
        memcpy(im->cols[i].name, f->p, f->n);
    }
    struct col *sorted = malloc(rd->nf * sizeof *sorted);
    if (!sorted)
        return tool_err("out of memory");
    memcpy(sorted, im->cols, rd->nf * sizeof *sorted);
    qsort(sorted, rd->nf, sizeof *sorted, name_cmp);
    for (size_t i = 1; i < rd->nf; i++)
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0) {
            int rc = tool_err("%s:1: header row: two fields are called %s", in->name,
                              sorted[i].name);
            free(sorted);
            return rc;
        }
    free(sorted);
    im->data_start = rd->pos;
    im->data_line = rd->line;
    csv_reader_free(rd);
    return 0;
}

/* Kinds and offsets of the columns, and the handles of REF targets.
 * stored: the existing table's layout, or NULL. */
static int setup_columns(struct imp *im, const mms_schema *stored, const struct decl *decl,
                         size_t ndecl)
{
    if (decl) {
        for (size_t i = 0; i < im->ncols; i++) {
            struct col *c = &im->cols[i];
            size_t j = 0;
            while (j < ndecl && strcmp(decl[j].name, c->name) != 0)
                j++;
            if (j == ndecl)
                return tool_err("--schema does not give the kind of column %s", c->name);
            c->kind = decl[j].kind;
            c->size = decl[j].size;
            memcpy(c->target, decl[j].target, sizeof c->target);
        }
        if (ndecl != im->ncols)
            for (size_t j = 0; j < ndecl; j++) {
                size_t i = 0;
                while (i < im->ncols && strcmp(decl[j].name, im->cols[i].name) != 0)
                    i++;
                if (i == im->ncols)
                    return tool_err("--schema names field %s, which %s has no column for",
                                    decl[j].name, im->in.name);
            }
        im->declared = true;
    } else if (stored) {
        for (size_t i = 0; i < im->ncols; i++) {
            struct col *c = &im->cols[i];
            const mms_field *f = NULL;
            for (uint32_t j = 0; j < stored->nfields && !f; j++)
                if (strcmp(stored->fields[j].name, c->name) == 0)
                    f = &stored->fields[j];
            if (!f)
                return tool_err("table %s has no field %s (a column of %s)", im->table, c->name,
                                im->in.name);
            c->kind = f->kind;
            c->size = f->size;
            c->offset = f->offset;
            if (f->kind == MMS_KIND_REF)
                snprintf(c->target, sizeof c->target, "%s", f->target ? f->target : "");
        }
        for (uint32_t j = 0; j < stored->nfields; j++) {
            size_t i = 0;
            while (i < im->ncols && strcmp(stored->fields[j].name, im->cols[i].name) != 0)
                i++;
            if (i == im->ncols)
                return tool_err("table %s has a field %s, for which %s has no column", im->table,
                                stored->fields[j].name, im->in.name);
        }
        im->record_size = stored->record_size;
        im->declared = true;
    } else {
        for (size_t i = 0; i < im->ncols; i++)
            im->cols[i].maybe_int = im->cols[i].maybe_float = true;
    }
    for (size_t i = 0; i < im->ncols; i++) {
        struct col *c = &im->cols[i];
        if (c->kind != MMS_KIND_REF)
            continue;
        c->self = strcmp(c->target, im->table) == 0;
        if (c->self)
            continue;
        int r = mms_table_find(im->s, c->target, &c->target_t);
        if (r == MMS_ENOENT)
            return tool_err("field %s refers to table %s, which does not exist", c->name,
                            c->target);
        if (r)
            return tool_fail("cannot open a table of", im->dir, r);
    }
    return 0;
}

static int build_schema(struct imp *im, mms_schema *sc, mms_field **fields)
{
    mms_field *f = calloc(im->ncols, sizeof *f);
    if (!f)
        return tool_err("out of memory");
    for (size_t i = 0; i < im->ncols; i++) {
        const struct col *c = &im->cols[i];
        f[i] = (mms_field){c->name, c->kind, c->offset, c->size,
                           c->kind == MMS_KIND_REF ? c->target : NULL, NULL};
    }
    sc->record_size = im->record_size;
    sc->nfields = (uint32_t)im->ncols;
    sc->fields = f;
    *fields = f;
    return 0;
}

static int run(struct imp *im, const struct decl *decl, size_t ndecl, uint64_t *imported)
{
    int rc, r;
    /* 2. The transaction first: the layout read below is the one the rows
     * are appended to. */
    if ((r = tool_txn_begin(im->s, im->dir)))
        return tool_fail("cannot begin a transaction on", im->dir, r);
    mms_table *t = NULL;
    const mms_schema *stored = NULL;
    r = mms_table_find(im->s, im->table, &t);
    if (r && r != MMS_ENOENT)
        return tool_fail("cannot open a table of", im->dir, r);
    if (!r) {
        stored = mms_table_schema(t);
        if (!stored)
            return tool_err("%s: cannot read the layout of table %s", im->dir, im->table);
        im->t = t;
        im->old_slots = mms_table_slots(t);
    }
    if ((rc = setup_columns(im, stored, decl, ndecl)))
        return rc;
    mms_field *fields = NULL;
    mms_schema sc;
    if (decl) {
        if ((rc = layout_columns(im->cols, im->ncols, &im->record_size)) ||
            (rc = build_schema(im, &sc, &fields)))
            return rc;
        char why[256];
        if (stored && mms_schema_same(&sc, stored, why, sizeof why) != 1) {
            char a[1024], b[1024];
            describe_schema(stored, a, sizeof a);
            describe_schema(&sc, b, sizeof b);
            free(fields);
            return tool_err("table %s exists with another layout (%s); nothing imported\n"
                            "  stored:   %s\n  --schema: %s", im->table, why, a, b);
        }
    }
    if (im->declared) {
        im->rec = calloc(1, im->record_size ? im->record_size : 1);
        if (!im->rec) {
            free(fields);
            return tool_err("out of memory");
        }
    }
    /* 3. */
    if ((rc = pass1(im))) {
        free(fields);
        return rc;
    }
    /* 4. */
    if (im->nbad && !im->skip_bad) {
        free(fields);
        progress_clear(&im->pg);
        return tool_err("%s: %zu bad row%s; nothing imported (--skip-bad skips them)",
                        im->in.name, im->nbad, im->nbad == 1 ? "" : "s");
    }
    /* A ref into this import's own rows names a record index: a skipped
     * row moves the rows after it up, and such a ref would name another
     * record than the file's row. */
    if (im->nbad && im->self_max > im->old_slots + im->bad_at) {
        free(fields);
        progress_clear(&im->pg);
        return tool_err("%s:%llu: a ref to record %llu of table %s, at or past the bad row of "
                        "line %llu: skipping it would move that record; nothing imported",
                        im->in.name, (unsigned long long)im->self_line,
                        (unsigned long long)(im->self_max - 1), im->table,
                        (unsigned long long)im->bad_line);
    }
    if (im->self_max > im->old_slots + im->good) {
        free(fields);
        progress_clear(&im->pg);
        return tool_err("%s:%llu: a ref to record %llu of table %s, which will have %llu "
                        "records; nothing imported",
                        im->in.name, (unsigned long long)im->self_line,
                        (unsigned long long)(im->self_max - 1), im->table,
                        (unsigned long long)(im->old_slots + im->good));
    }
    /* 5. */
    if (!im->declared) {
        for (size_t i = 0; i < im->ncols; i++) {
            struct col *c = &im->cols[i];
            bool any = im->good > c->empty + c->absent; /* a value to infer from */
            c->kind = any && c->maybe_int ? (c->past_i64 ? MMS_KIND_U64 : MMS_KIND_I64)
                      : any && c->maybe_float ? MMS_KIND_F64
                                              : MMS_KIND_STR;
            c->size = 8;
        }
        if ((rc = layout_columns(im->cols, im->ncols, &im->record_size)) ||
            (rc = build_schema(im, &sc, &fields)))
            return rc;
    }
    if (!im->t) {
        r = mms_table_open(im->s, im->table, &sc, MMS_TABLE_CREATE, &t);
        free(fields);
        fields = NULL;
        if (r)
            return tool_fail("cannot create a table in", im->dir, r);
        im->t = t;
    }
    free(fields);
    /* 6. */
    if (im->good && (rc = pass2(im)))
        return rc;
    /* The indexes, in the same transaction: the rows and their indexes
     * commit together, or neither. */
    for (int i = 0; i < im->nix; i++) {
        const struct ixspec *x = &im->ix[i];
        progress_text(&im->pg, "indexing");
        if ((r = mms_index_create_covering(im->t, x->field, x->flags,
                                           x->cover[0] ? x->cover : NULL)))
            return tool_fail("cannot index the table in", im->dir, r);
    }
    /* 7. */
    progress_text(&im->pg, "committing");
    stop_signals(SIG_IGN);
    undo.armed = 0; /* the store is the commit's now; a failure below removes it as usual */
    if ((r = mms_txn_commit(im->s)))
        return tool_fail("cannot commit the import into", im->dir, r);
    stop_signals(on_stop_after_commit);
    progress_clear(&im->pg);
    *imported = im->good;
    return 0;
}

/* Open DIR, creating it if needed (and remembering that it did). */
static int open_store(struct imp *im)
{
    struct stat st;
    im->dir_existed = stat(im->dir, &st) == 0;
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE | MMS_EXCL;
    int r = mms_open(im->dir, &o, &im->s);
    im->created_store = r == 0;
    if (im->created_store) {
        undo_arm(im->dir, im->dir_existed);
        stop_signals(on_stop_before_commit);
    }
    if (r == -EEXIST) {
        o.flags = 0;
        r = mms_open(im->dir, &o, &im->s);
    } else if (r && !im->dir_existed) { /* it left nothing it made (mmstore.h) */
        return tool_fail("cannot create", im->dir, r);
    }
    return r ? tool_fail("cannot open", im->dir, r) : 0;
}

/* "imported N rows into T, ...", then a line per column: its kind and
 * how many of its values were missing. */
static void summary(const struct imp *im, uint64_t imported, double seconds)
{
    printf("imported %llu row%s into %s, skipped %zu bad row%s, in %.3f s (%.0f rows/s)\n",
           (unsigned long long)imported, imported == 1 ? "" : "s", im->table, im->nbad,
           im->nbad == 1 ? "" : "s", seconds, seconds > 0 ? (double)imported / seconds : 0.0);
    int w = 6;
    for (size_t i = 0; i < im->ncols; i++)
        if ((int)strlen(im->cols[i].name) > w)
            w = (int)strlen(im->cols[i].name);
    printf("  %-*s %-10s %s\n", w, "column", "kind", "missing");
    for (size_t i = 0; i < im->ncols; i++) {
        const struct col *c = &im->cols[i];
        char kt[80];
        kind_text(c->kind, c->size, c->target, kt, sizeof kt);
        printf("  %-*s %-10s %llu\n", w, c->name, kt, (unsigned long long)col_missing(c));
    }
}

/* spec (INDEX_SPEC) into *x; a malformed one is a usage error (exit 2),
 * found before the store is opened. */
static int ixspec_parse(const struct tool_cmd *cmd, const char *spec, struct ixspec *x)
{
    const char *colon = strchr(spec, ':');
    size_t fl = colon ? (size_t)(colon - spec) : strlen(spec);
    memset(x, 0, sizeof *x);
    x->flags = MMS_INDEX_ORDERED;
    if (fl == 0 || fl >= sizeof x->field)
        return tool_usage_err(cmd, "--index '%s': expected " INDEX_SPEC, spec);
    memcpy(x->field, spec, fl);
    for (const char *o = colon; o && *o;) {
        const char *next = strchr(o + 1, ':');
        size_t ol = next ? (size_t)(next - o - 1) : strlen(o + 1);
        if (ol == 4 && strncmp(o + 1, "hash", 4) == 0)
            x->flags &= ~MMS_INDEX_ORDERED;
        else if (ol == 6 && strncmp(o + 1, "unique", 6) == 0)
            x->flags |= MMS_INDEX_UNIQUE;
        else if (ol > 6 && ol - 6 < sizeof x->cover && strncmp(o + 1, "cover=", 6) == 0)
            snprintf(x->cover, sizeof x->cover, "%.*s", (int)(ol - 6), o + 7);
        else
            return tool_usage_err(cmd, "--index '%s': expected " INDEX_SPEC, spec);
        o = next;
    }
    return -1;
}

static int run_import(const struct tool_cmd *cmd, int argc, char **argv)
{
    const char *pos[3], *spec = NULL, *ix[8];
    int nix = 0;
    bool skip_bad = false, keep_text = false;
    const struct tool_opt opts[] = {{"schema", true, &spec, NULL, NULL, 0},
                                    {"skip-bad", false, NULL, &skip_bad, NULL, 0},
                                    {"keep-text", false, NULL, &keep_text, NULL, 0},
                                    {"index", true, ix, NULL, &nix, 8}};
    int rc = tool_args(cmd, argc, argv, opts, 4, pos, 3);
    if (rc >= 0)
        return rc;
    size_t tl = strlen(pos[1]);
    if (tl == 0 || tl > 63)
        return tool_usage_err(cmd, "a table name is 1 to 63 bytes");
    struct ixspec ixs[8];
    for (int i = 0; i < nix; i++)
        if ((rc = ixspec_parse(cmd, ix[i], &ixs[i])) >= 0)
            return rc;
    struct decl *decl = NULL;
    size_t ndecl = 0;
    if (spec && (rc = spec_parse(spec, &decl, &ndecl)))
        return rc;
    double t0 = now_s();
    struct imp im;
    memset(&im, 0, sizeof im);
    im.dir = pos[0];
    im.table = pos[1];
    im.skip_bad = skip_bad;
    im.keep_text = keep_text;
    im.ix = ixs;
    im.nix = nix;
    if ((rc = input_load(&im.in, pos[2], im.dir))) {
        free(decl);
        return rc;
    }
    if ((rc = read_header(&im)) || (rc = open_store(&im)))
        goto out;
    progress_init(&im.pg, im.in.len);
    uint64_t imported = 0;
    rc = run(&im, decl, ndecl, &imported);
    progress_clear(&im.pg);
    if (rc)
        mms_txn_abort(im.s); /* MMS_ENOTXN if it never began or committed */
    int r = mms_close(im.s);
    /* After the commit the rows are in, durable: a close that fails (its
     * checkpoint) leaves the journal to the next opener, and is said as a
     * warning, exit 0 (step 7: the exit status says whether they are in;
     * a failure here removed a store this import had just made whole). */
    if (r && !rc)
        tool_fail("warning: every row is imported, but could not close", im.dir, r);
    if (rc && im.created_store)
        tool_remove_store(im.dir, im.dir_existed, "import");
    if (!rc) {
        summary(&im, imported, now_s() - t0);
        rc = tool_finish_change();
    }
out:
    csv_reader_free(&im.rd);
    input_free(&im.in);
    free(im.cols);
    free(im.rec);
    free(im.bytes);
    free(im.bad);
    free(decl);
    return rc;
}

const struct tool_cmd tool_cmd_import = {
    "import", "DIR TABLE FILE [--schema SPEC] [--skip-bad] [--keep-text] [--index F]...",
    "Import a CSV file ('-': standard input) into a table, in one transaction.",
    "The rows are appended to TABLE; the store and the table are created if needed.\n"
    "\n"
    "  --schema SPEC   the kinds of the columns, by name, instead of inferring them,\n"
    "                  e.g. \"name:str,age:i32,score:f64,ok:bool\"\n"
    "  --skip-bad      skip the bad rows instead of importing nothing\n"
    "  --keep-text     infer a number only from the text dump prints back (so a\n"
    "                  column with 1.50, 1e3, +7 or 007 stays text)\n"
    "  --index " INDEX_SPEC "\n"
    "                  build an index on FIELD (ordered unless :hash; see mms index)\n"
    "                  in the same transaction; up to 8. :cover=F2 copies field F2\n"
    "                  into the index (mms index --cover). Str fields cannot be\n"
    "                  indexed yet: give the column a chars:N kind with --schema.\n"
    "\n"
    "The file is CSV (RFC 4180) in UTF-8. Its first row names the fields (1 to 47\n"
    "bytes, unique). Quoted values may hold commas, line breaks and \"\" for a\n"
    "quote; lines end with LF or CR LF; a leading UTF-8 byte-order mark is skipped.\n"
    "With more than one field, empty lines are skipped.\n"
    "\n"
    "Kinds. A new table's kinds are inferred per column: i64 if every value is an\n"
    "integer, u64 if none is negative and one is past the range of i64, else f64 if\n"
    "every value is a number (1e3, 1.50, -0.5, 5.2e-05, nan, inf; integers past\n"
    "2^53 only if a double holds them exactly), else str. An integer past the range\n"
    "of u64, or past that of i64 beside a negative value or a float, makes its\n"
    "column str. Numbers dump in canonical form (1e3 as 1000, 1.50 as 1.5, 007 as\n"
    "7); --keep-text keeps such a column as text. --schema kinds: i8 i16 i32 i64 u8\n"
    "u16 u32 u64 f32 f64 bool (true/false) str chars:N (at most N bytes, no NUL)\n"
    "blob (hex) ref:TABLE (a record index of TABLE; empty for none; into TABLE's\n"
    "own new rows, none at or past a row --skip-bad skips, which would move them).\n"
    "Fields are laid out in column order, each at an offset aligned to its size, as\n"
    "in a C struct. An existing table gets the rows appended: its stored layout\n"
    "gives the kinds (columns matched to fields by name, all of them present); a\n"
    "--schema must equal it.\n"
    "\n"
    "Missing values. A row with fewer fields than the header has missing values\n"
    "in the columns it does not reach; an empty cell of a number or bool column is\n"
    "missing too (an empty str, chars or blob is an empty value; an empty ref is\n"
    "no record). Empty cells do not decide a column's kind. The summary gives each\n"
    "column's kind and how many of its values were missing. A missing value is\n"
    "stored as missing (mms_table_null): dump writes an empty CSV cell, or null in\n"
    "JSON lines.\n"
    "\n"
    "Bad rows: malformed quoting, more fields than the header, invalid UTF-8, a\n"
    "value that does not parse as its declared kind. Each is reported with the\n"
    "line it starts on (the first 1000 are listed); then nothing is imported\n"
    "(exit 1), or with --skip-bad the bad rows are skipped. The import is one\n"
    "transaction: a crash or an error leaves all of the rows or none, and a\n"
    "failed import into a store it created removes that store (so does one\n"
    "stopped by SIGINT, SIGTERM or SIGHUP before its commit, or whose input\n"
    "file cannot be read: it shrank, or its file system failed).\n"
    "Standard input that is not a regular file (a pipe) is first written to a\n"
    "file beside DIR (DIR.mms-import-PID, unlinked at once; $TMPDIR if none can be\n"
    "made there): the disk holds a copy of the input while it is imported, memory\n"
    "does not grow with it.\n"
    "On a terminal, progress is shown on stderr (MMS_PROGRESS=0|1 overrides).\n",
    run_import};
