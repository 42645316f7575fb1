/*
 * tool.c -- the tool library (tool.h): option parsing, help, error
 * reporting, opening for inspection, sizes for people, buffered output.
 *
 * It knows no command: a command hands in its struct tool_cmd, so this
 * file never calls up into the commands or into mms.c.
 *
 * Conventions (those of git, sqlite3 and LMDB's tools): help asked for
 * goes to stdout with exit 0; a usage error goes to stderr with exit 2 and
 * names the command's help; any other failure is one line on stderr and
 * exit 1.
 */
#define _GNU_SOURCE /* getopt_long */
#include "tool.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *const tool_prog = "mms";

void tool_help(const struct tool_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: %s %s %s\n\n%s\n", tool_prog, cmd->name, cmd->args, cmd->summary);
    if (cmd->help && *cmd->help)
        fprintf(f, "\n%s", cmd->help);
}

int tool_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

void *tool_room(void *v, size_t n, size_t *cap, size_t elem, size_t first)
{
    if (n < *cap)
        return v;
    size_t c = *cap ? 2 * *cap : first;
    if (c < *cap || c > SIZE_MAX / elem)
        return NULL;
    void *nv = realloc(v, c * elem);
    if (nv)
        *cap = c;
    return nv;
}

int tool_hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

const char *tool_name_shown(const char *name, char out[4 * 64 + 1])
{
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)name; *p && o < out + 4 * 63; p++)
        o += *p < 0x20 || *p >= 0x7f || *p == '\\' ? sprintf(o, "\\x%02x", *p)
                                                  : sprintf(o, "%c", *p);
    *o = 0;
    return out;
}

int tool_fail(const char *what, const char *dir, int err)
{
    const char *msg = mms_strerror(err), *d = mms_errdetail();
    size_t dl = strlen(dir);
    /* The detail often starts with the path the message is about. */
    if (strncmp(d, dir, dl) == 0 && d[dl] == ':' && d[dl + 1] == ' ')
        d += dl + 2;
    if (!*d || strcmp(d, msg) == 0)
        fprintf(stderr, "%s: %s %s: %s\n", tool_prog, what, dir, msg);
    else if (strstr(d, msg))
        fprintf(stderr, "%s: %s %s: %s\n", tool_prog, what, dir, d);
    else
        fprintf(stderr, "%s: %s %s: %s: %s\n", tool_prog, what, dir, msg, d);
    return 1;
}

int tool_usage_err(const struct tool_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s %s: ", tool_prog, cmd->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "usage: %s %s %s\n", tool_prog, cmd->name, cmd->args);
    fprintf(stderr, "'%s help %s' or '%s %s --help' tells more\n", tool_prog, cmd->name,
            tool_prog, cmd->name);
    return 2;
}

#define MAX_OPTS 16

int tool_args(const struct tool_cmd *cmd, int argc, char **argv, const struct tool_opt *opts,
              int nopts, const char **pos, int npos)
{
    int got;
    return tool_args_range(cmd, argc, argv, opts, nopts, pos, npos, npos, &got);
}

/* A negative number ("-5", "-0.5", "-inf", "-nan"): a value, never an
 * option (`mms get DIR t x -5`, `--where` values). No command has a short
 * option but -h. */
static bool negative_number(const char *a)
{
    if (a[0] != '-')
        return false;
    if ((a[1] >= '0' && a[1] <= '9') || (a[1] == '.' && a[2] >= '0' && a[2] <= '9'))
        return true;
    return strcasecmp(a + 1, "inf") == 0 || strcasecmp(a + 1, "infinity") == 0 ||
           strcasecmp(a + 1, "nan") == 0;
}

/* The argument getopt_long gave (a word of words, or inside one) as the
 * user wrote it: words hides the '-' of negative numbers from getopt. */
static const char *as_written(char **words, char **argv, int argc, const char *arg)
{
    for (int i = 1; i < argc; i++)
        if (arg == words[i])
            return argv[i];
    return arg;
}

static int parse_args(const struct tool_cmd *cmd, int argc, char **argv, char **words,
                      const struct tool_opt *opts, int nopts, const char **pos, int min,
                      int npos, int *got)
{
    struct option lo[MAX_OPTS + 2];
    if (nopts > MAX_OPTS)
        return tool_usage_err(cmd, "too many options (a bug)");
    for (int i = 0; i < nopts; i++)
        lo[i] = (struct option){opts[i].name, opts[i].takes_value ? required_argument
                                                                  : no_argument, NULL, 256 + i};
    lo[nopts] = (struct option){"help", no_argument, NULL, 'h'};
    lo[nopts + 1] = (struct option){NULL, 0, NULL, 0};
    /* --help wins over everything else on the line, as in git. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            tool_help(cmd, stdout);
            return tool_finish_output(NULL);
        }
    opterr = 0; /* our messages, not getopt's */
    optind = 1;
    int c, k = 0;
    /* A leading '-' in optstring: positional arguments come back as 1, in
     * order, so options may stand anywhere. */
    while ((c = getopt_long(argc, words, "-:h", lo, NULL)) != -1) {
        if (optarg)
            optarg = (char *)as_written(words, argv, argc, optarg);
        if (c == 'h') { /* -h inside a group of short options */
            tool_help(cmd, stdout);
            return tool_finish_output(NULL);
        }
        if (c == 1) {
            if (k == npos)
                return tool_usage_err(cmd, "too many arguments (from '%s' on)", optarg);
            pos[k++] = optarg;
            continue;
        }
        if (c == ':')
            return tool_usage_err(cmd, "%s needs a value", argv[optind - 1]);
        if (c == '?') {
            const char *a = argv[optind - 1];
            if (optopt >= 256) /* --flag=VALUE */
                return tool_usage_err(cmd, "--%s takes no value", opts[optopt - 256].name);
            if (optopt == 'h' && a[1] == '-')
                return tool_usage_err(cmd, "--help takes no value");
            /* A name that starts with '-' (`mms rename DIR -- -OLD NEW`). */
            const char *hint = " (an argument that starts with '-' goes after --)";
            if (optopt && optopt != '?')
                return tool_usage_err(cmd, "unknown option -%c%s", optopt, hint);
            const char *eq = strchr(a, '=');
            return tool_usage_err(cmd, "unknown option %.*s%s",
                                  eq ? (int)(eq - a) : (int)strlen(a), a, hint);
        }
        const struct tool_opt *o = &opts[c - 256];
        if (o->takes_value && o->count) {
            if (*o->count >= o->max)
                return tool_usage_err(cmd, "--%s may be given at most %d times", o->name,
                                      o->max);
            o->value[(*o->count)++] = optarg;
        } else if (o->takes_value)
            *o->value = optarg;
        else
            *o->flag = true;
    }
    /* After "--": the rest is positional. */
    for (; optind < argc; optind++) {
        if (k == npos)
            return tool_usage_err(cmd, "too many arguments (from '%s' on)", argv[optind]);
        pos[k++] = argv[optind];
    }
    if (k < min)
        return tool_usage_err(cmd, "too few arguments");
    /* Every command's first argument but load's is DIR: an empty one is
     * known wrong from the command line alone (load checks its own). */
    if (k > 0 && !pos[0][0] && strncmp(cmd->args, "DIR", 3) == 0)
        return tool_usage_err(cmd, "DIR is empty");
    *got = k;
    return -1;
}

int tool_args_range(const struct tool_cmd *cmd, int argc, char **argv,
                    const struct tool_opt *opts, int nopts, const char **pos, int min, int npos,
                    int *got)
{
    char **words = malloc(((size_t)argc + 1) * sizeof *words);
    if (!words)
        return tool_err("out of memory");
    for (int i = 0; i <= argc; i++)
        words[i] = argv[i] && i > 0 && negative_number(argv[i]) ? argv[i] + 1 : argv[i];
    int r = parse_args(cmd, argc, argv, words, opts, nopts, pos, min, npos, got);
    free(words);
    return r;
}

/* Whether this process's handle s has a reader slot. One without (the
 * process may not write the lock file, mmstore.h MMS_RDONLY) never waits
 * for the writer: mms_verify checks the published state. */
static bool handle_slotted(mms_store *s)
{
    static mms_reader_info rd[256]; /* 12 KB: not on the stack */
    size_t n;
    if (mms_readers(s, rd, 256, &n) != 0)
        return true; /* cannot tell: say what a slotted handle would */
    for (size_t i = 0; i < n && i < 256; i++)
        if (rd[i].pid == (uint32_t)getpid() && rd[i].alive)
            return true;
    return false;
}

void tool_note_writer(mms_store *s, const char *dir)
{
    static mms_info in; /* 16 KB: not on the stack */
    if (mms_info_get(s, &in) == 0 && in.writer_pid && in.writer_pid != (uint32_t)getpid() &&
        handle_slotted(s))
        fprintf(stderr, "%s: %s: another process writes to the store (pid %u); waiting for it "
                "to end its transaction\n", tool_prog, dir, (unsigned)in.writer_pid);
}

int tool_txn_begin(mms_store *s, const char *dir)
{
    int r = mms_txn_begin(s, MMS_TXN_NOWAIT);
    if (r != MMS_EBUSY)
        return r;
    tool_note_writer(s, dir);
    return mms_txn_begin(s, 0);
}

void tool_note_readers(const char *dir)
{
    static mms_reader_info rd[256]; /* 12 KB: not on the stack */
    size_t n;
    if (mms_readers_path(dir, rd, 256, &n) != 0)
        return;
    for (size_t i = 0; i < n && i < 256; i++)
        if (rd[i].holding_back) {
            fprintf(stderr, "%s: %s: pid %u has been inside a read transaction for %.1f s, "
                    "holding %llu commits back; while a writer waits for it (its backlog is "
                    "full), opening the store waits too (mms readers %s)\n", tool_prog, dir,
                    (unsigned)rd[i].pid, rd[i].age_ns / 1e9, (unsigned long long)rd[i].behind,
                    dir);
            return;
        }
}

void tool_note_held_back(mms_store *s, const char *dir)
{
    static mms_info in; /* 16 KB: not on the stack */
    unsigned uo = 0, ui = 0;
    if (mms_info_get(s, &in) != 0 || in.committed_txn <= in.published_txn)
        return;
    if (mms_readers_unslotted_path(dir, &uo, &ui) != 0)
        ui = 0;
    unsigned n = in.active_readers + ui;
    if (n)
        fprintf(stderr, "%s: %s: %u reader%s inside a read transaction hold%s %llu commit%s "
                "back; they are applied first, which waits until %s (mms readers %s)\n",
                tool_prog, dir, n, n == 1 ? "" : "s", n == 1 ? "s" : "",
                (unsigned long long)(in.committed_txn - in.published_txn),
                in.committed_txn - in.published_txn == 1 ? "" : "s",
                n == 1 ? "it leaves" : "they leave", dir);
}

/* Open for inspection: read-only when possible; a store that needs
 * recovery is opened read-write once, which recovers it. */
int tool_open_inspect(const char *dir, mms_store **s)
{
    tool_note_readers(dir);
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_RDONLY;
    int r = mms_open(dir, &o, s);
    if (r == MMS_ERECOVER) {
        o.flags = 0;
        r = mms_open(dir, &o, s);
        /* Not allowed to write (a read-only file system, the files'
         * modes): say what the read-only open found, not only why the
         * write open failed, which would not tell why it was tried. */
        if (r == -EROFS || r == -EACCES || r == -EPERM) {
            o.flags = MMS_RDONLY;
            r = mms_open(dir, &o, s);
        }
    }
    return r;
}

int tool_tables(mms_store *s, mms_table_info **out, size_t *n)
{
    /* Ask for the count, then for that many: a table created in between
     * is left out (*n says how many were filled). */
    *out = NULL;
    *n = 0;
    size_t want = 0;
    int r = mms_tables(s, NULL, 0, &want);
    if (r || !want)
        return r;
    mms_table_info *ti = calloc(want, sizeof *ti);
    if (!ti)
        return -ENOMEM;
    size_t have = 0;
    r = mms_tables(s, ti, want, &have);
    if (r) {
        free(ti);
        return r;
    }
    *out = ti;
    *n = have < want ? have : want;
    return 0;
}

const char *tool_bytes(uint64_t n, char *buf)
{
    static const char *const unit[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
    if (n < 1024) {
        snprintf(buf, 16, "%u B", (unsigned)n);
        return buf;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    snprintf(buf, 16, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */
int obuf_init(struct obuf *o, FILE *f, size_t cap)
{
    o->f = f;
    o->n = 0;
    o->cap = cap;
    o->err = 0;
    o->buf = malloc(cap);
    return o->buf ? 0 : -ENOMEM;
}

void obuf_flush(struct obuf *o)
{
    if (o->n && !o->err && fwrite(o->buf, 1, o->n, o->f) != o->n)
        o->err = errno ? errno : EIO;
    o->n = 0;
}

void obuf_free(struct obuf *o)
{
    free(o->buf);
    o->buf = NULL;
}

void obuf_write(struct obuf *o, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        if (o->n == o->cap)
            obuf_flush(o);
        size_t k = o->cap - o->n < n ? o->cap - o->n : n;
        memcpy(o->buf + o->n, c, k);
        o->n += k;
        c += k;
        n -= k;
    }
}

int tool_finish_output(struct obuf *o)
{
    int err = 0;
    if (o) {
        obuf_flush(o);
        err = o->err;
    }
    if (!err && fflush(stdout) != 0)
        err = errno ? errno : EIO;
    if (err)
        return tool_err("cannot write the output: %s", strerror(err));
    return 0;
}

int tool_finish_change(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int err = errno ? errno : EIO;
        tool_err("warning: done, but its report cannot be written to the output: %s",
                 strerror(err));
    }
    return 0;
}

/* Remove a store a failed command created: the files a store is made of
 * (lock, journal, region-*; doc/FORMAT.md), and the directory unless it
 * was there before (an empty directory the user made stays). */
void tool_remove_store(const char *dir, bool dir_existed, const char *cmd)
{
    DIR *d = opendir(dir);
    if (!d) /* never made (no parent, a read-only file system, ...) */
        return;
    int fd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, "lock") == 0 || strcmp(e->d_name, "journal") == 0 ||
            strncmp(e->d_name, "region-", 7) == 0)
            unlinkat(fd, e->d_name, 0);
    closedir(d);
    if (!dir_existed && rmdir(dir) != 0)
        tool_err("could not remove the store %s that the failed %s created: %s", dir, cmd,
                 strerror(errno));
}

int tool_rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    char p[4200];
    for (struct dirent *de; (de = readdir(d));) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    return rmdir(dir) == 0 ? 0 : -errno;
}
