/*
 * tool.h -- the tool library: what every command of the mms tool
 * shares. A command is a struct tool_cmd (its name, usage, help text and
 * function); tool.c parses its options with getopt_long, prints its help,
 * reports errors (each one once, on one line), opens stores for
 * inspection and buffers output.
 *
 * Layers of tools/ (each file calls only those below it):
 *   mms.c                               dispatch: the table of commands
 *   mms_admin.c mms_tables.c mms_index.c mms_import.c   the commands
 *   mms_life.c mms_dumpall.c            drop, rename, compact, copy; dump --all, load
 *   mms_recover.c                       recover: salvage a damaged store
 *     salvage.c                         ... reading one without the library
 *   csv.c                               CSV reading and writing, JSON strings
 *   tool.c  numfmt.c                    this header; numbers as text
 * The tool uses only the public API (include/mmstore.h); salvage.c reads a
 * damaged store's files directly, as doc/FORMAT.md describes them.
 */
#ifndef MMS_TOOLLIB_H
#define MMS_TOOLLIB_H

#include <mmstore.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern const char *const tool_prog; /* "mms" */

/* One command. `mms help NAME` and `mms NAME --help` print
 * "usage: mms NAME ARGS", the summary and the help text. */
struct tool_cmd {
    const char *name;    /* "dump" */
    const char *args;    /* "DIR TABLE [--format csv|jsonl] [--limit N]" */
    const char *summary; /* one line for the list of commands */
    const char *help;    /* the rest: arguments, options, details */
    int (*run)(const struct tool_cmd *cmd, int argc, char **argv); /* exit code */
};

/* The command's help on f. */
void tool_help(const struct tool_cmd *cmd, FILE *f);

/* name (of a table or field, up to 63 bytes), printable on one line:
 * bytes that are not printable ASCII, and '\\', as \xNN. Returns out. */
const char *tool_name_shown(const char *name, char out[4 * 64 + 1]);

/* "mms: message" on stderr; returns 1 (the exit code). */
int tool_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Room for item n of the array v of *cap items of elem bytes: v, or v
 * grown (doubled; first items at first) with *cap updated, or NULL if out
 * of memory (v is then untouched). */
void *tool_room(void *v, size_t n, size_t *cap, size_t elem, size_t first);

/* The value of hex digit c (either case), or -1. */
int tool_hexval(int c);

/* Remove dir and the files in it (one level: what a store directory
 * holds); 0 or -errno. */
int tool_rm_dir(const char *dir);
/* Remove the store that a failed cmd created in dir (its lock, journal and
 * region files; dir too unless dir_existed). */
void tool_remove_store(const char *dir, bool dir_existed, const char *cmd);

/* "mms: WHAT DIR: why" on stderr, one line: the message of err, and
 * mms_errdetail() when it says more than the message (not both when the
 * detail repeats it). Returns 1. */
int tool_fail(const char *what, const char *dir, int err);

/* "mms CMD: message", then cmd's usage line and where its help is, on
 * stderr; returns 2 (the exit code of a usage error). */
int tool_usage_err(const struct tool_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A long option of a command: --name VALUE, --name=VALUE or a flag. */
struct tool_opt {
    const char *name;   /* "limit", without the dashes */
    bool takes_value;
    const char **value; /* takes_value: receives the value (with count: the
                           values, in order, into value[0..max)) */
    bool *flag;         /* !takes_value: set to true */
    int *count;         /* NULL, or the option may be repeated: how many */
    int max;            /* ... at most this many times */
};

/* Parse argv[1..argc) of cmd (argv[0] is the command's name) with
 * getopt_long: options anywhere ("--" ends them), --help and -h, and
 * exactly npos positional arguments into pos. Returns -1 when the command
 * should go on; otherwise its exit code: 0 after printing the help on
 * stdout, 2 after a usage error. */
int tool_args(const struct tool_cmd *cmd, int argc, char **argv, const struct tool_opt *opts,
              int nopts, const char **pos, int npos);
/* The same with min to max positional arguments; *got gets how many. */
int tool_args_range(const struct tool_cmd *cmd, int argc, char **argv,
                    const struct tool_opt *opts, int nopts, const char **pos, int min, int max,
                    int *got);

/* mms_txn_begin on s (the store in dir). When another process writes,
 * says so on stderr first -- naming its pid -- and then waits for it as
 * the library does, so that a command never waits without a word. */
int tool_txn_begin(mms_store *s, const char *dir);
/* The same word before a call that takes the writer lock inside the
 * library (mms_verify, mms_checkpoint): said when another process holds
 * it now. */
void tool_note_writer(mms_store *s, const char *dir);
/* Before an open: say on stderr if a reader holds commits back, since a
 * writer waiting for it at its backlog bound makes every open wait too
 * (mmstore.h, read transactions) -- rather than hang silently. */
void tool_note_readers(const char *dir);
/* Before an apply that waits for the readers inside (mms verify): say
 * how many hold commits back, if any. */
void tool_note_held_back(mms_store *s, const char *dir);

/* Open for inspection: read-only, or read-write once if the store needs
 * recovery (which a read-only handle cannot do). */
int tool_open_inspect(const char *dir, mms_store **s);

/* The tables of s: *out (malloc'd, NULL when there is none) and *n.
 * Returns 0 or an error code of mms_tables(). */
int tool_tables(mms_store *s, mms_table_info **out, size_t *n);

/* A byte count as a person reads it: "512 B", "1.5 KB", "21.5 MB",
 * "1.02 GB" (powers of 1024, three significant digits). buf: 16 bytes. */
const char *tool_bytes(uint64_t n, char *buf);

/* Buffered output to a FILE with a sticky error. */
struct obuf {
    FILE *f;
    char *buf;
    size_t n, cap;
    int err; /* errno of the first failed write, 0 if none */
};

int obuf_init(struct obuf *o, FILE *f, size_t cap);
void obuf_flush(struct obuf *o);
void obuf_free(struct obuf *o);
void obuf_write(struct obuf *o, const void *p, size_t n);

static inline void obuf_putc(struct obuf *o, char c)
{
    if (o->n == o->cap)
        obuf_flush(o);
    o->buf[o->n++] = c;
}

static inline void obuf_puts(struct obuf *o, const char *s)
{
    while (*s)
        obuf_putc(o, *s++);
}

/* Flush o (NULL: only stdout) and stdout; a write error (a full disk, a
 * closed pipe) becomes a message and exit code 1. */
int tool_finish_output(struct obuf *o);
/* The end of a command that changed a store (made, imported into, dropped
 * a table, ...): a report that cannot be written (a closed stdout, a full
 * disk) is a warning on stderr, not a failure -- the exit status says
 * whether the change was made, and a retry after a failure would make it
 * twice (`mms import ... || mms import ...`). Returns 0. */
int tool_finish_change(void);

/* The whole store as JSON lines, and back (mms_dumpall.c): exit codes. */
int tool_dump_all(const char *dir, const char *out);
int tool_load(const char *file, const char *dir);

#endif
