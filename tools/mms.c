/*
 * mms -- the mmstore command-line tool: the table of commands and the
 * dispatch to them, nothing else. The commands live in mms_admin.c,
 * mms_tables.c, mms_index.c, mms_import.c, mms_life.c and mms_dumpall.c; what they share in
 * tool.c (tool.h).
 *
 *   mms                      a short usage (stderr, exit 2)
 *   mms help | --help | -h   the commands (stdout, exit 0)
 *   mms help CMD             that command's help (stdout, exit 0); mms help help
 *                            (or --help, -h) is the list
 *   mms CMD --help           the same
 *   mms version | --version  the library's version (mms_version())
 *
 * Every failure prints one line on stderr and exits non-zero (2 for a
 * usage error, 1 otherwise), never by a signal: SIGPIPE is ignored, so a
 * closed pipe is a write error like any other. Closed standard descriptors
 * are held first (std_fds_hold), so the store's files never get them.
 */
#define _POSIX_C_SOURCE 200809L
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>

extern const struct tool_cmd tool_cmd_create, tool_cmd_info, tool_cmd_verify,
    tool_cmd_checkpoint, tool_cmd_readers, tool_cmd_tables, tool_cmd_schema, tool_cmd_dump,
    tool_cmd_import, tool_cmd_drop, tool_cmd_rename, tool_cmd_compact, tool_cmd_copy, tool_cmd_load,
    tool_cmd_index, tool_cmd_indexes, tool_cmd_get, tool_cmd_recover;

static const struct tool_cmd *const commands[] = {
    &tool_cmd_create, &tool_cmd_info,   &tool_cmd_verify, &tool_cmd_checkpoint,
    &tool_cmd_readers, &tool_cmd_tables, &tool_cmd_schema, &tool_cmd_import,
    &tool_cmd_dump,   &tool_cmd_drop,   &tool_cmd_rename, &tool_cmd_compact,
    &tool_cmd_copy,   &tool_cmd_load,   &tool_cmd_get,    &tool_cmd_index,
    &tool_cmd_indexes, &tool_cmd_recover,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct tool_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

/* One line per command: its arguments and the first line of its summary. */
static void list_commands(FILE *f)
{
    fprintf(f, "usage: %s COMMAND ARGS...   (%s help COMMAND tells more)\n\n", tool_prog,
            tool_prog);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct tool_cmd *c = commands[i];
        const char *nl = strchr(c->summary, '\n');
        int len = nl ? (int)(nl - c->summary) : (int)strlen(c->summary);
        fprintf(f, "  %-10s %.*s\n", c->name, len, c->summary);
    }
    fprintf(f, "  %-10s Print the version of the mmstore library.\n", "version");
}

static int version(void)
{
    /* The library linked, which may differ from the header built against. */
    printf("mms %s (mmstore library %s, on-disk format %d)\n", MMS_VERSION_STRING,
           mms_version(), MMS_FORMAT_VERSION);
    return tool_finish_output(NULL);
}

static bool is_help(const char *a)
{
    return strcmp(a, "help") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

static int help(int argc, char **argv)
{
    if (argc > 3) {
        tool_err("help takes one command name (from '%s' on); usage: %s help [COMMAND]",
                 argv[3], tool_prog);
        return 2;
    }
    /* `mms help help` and `mms help --help`: help's own help is the list. */
    if (argc < 3 || is_help(argv[2])) {
        list_commands(stdout);
        return tool_finish_output(NULL);
    }
    const struct tool_cmd *c = find_command(argv[2]);
    if (!c) {
        if (strcmp(argv[2], "version") == 0) {
            printf("usage: %s version\n\nPrint the version of the mmstore library.\n",
                   tool_prog);
            return tool_finish_output(NULL);
        }
        tool_err("no command called '%s'", argv[2]);
        list_commands(stderr);
        return 2;
    }
    tool_help(c, stdout);
    return tool_finish_output(NULL);
}

/* Started with fd 0, 1 or 2 closed, the store's files would get them, and a
 * message to stderr would land in one (`mms drop DIR x >&- 2>&-` wrote its
 * error over region 0's header). Each closed one is held by /dev/null
 * opened the wrong way round, so that writing to a closed stdout or stderr
 * and reading a closed stdin still fail (EBADF) as before. */
static bool std_fds_hold(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int held = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
        if (held != fd) /* the lowest free number: fd, unless /dev/null is missing */
            return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    if (!std_fds_hold())
        return 1; /* with nowhere safe to say so */
    /* A closed pipe is a write error (exit 1), not a death by signal. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || !*argv[1]) {
        list_commands(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (is_help(name))
        return help(argc, argv);
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        /* `mms version --help` is help, as for every command. */
        if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0))
            return help(3, (char *[]){argv[0], "help", "version", NULL});
        if (argc > 2) {
            tool_err("version takes no arguments (from '%s' on); usage: %s version", argv[2],
                     tool_prog);
            return 2;
        }
        return version();
    }
    const struct tool_cmd *c = find_command(name);
    if (!c) {
        tool_err("unknown command '%s'", name);
        list_commands(stderr);
        return 2;
    }
    return c->run(c, argc - 1, argv + 1);
}
