/* The `make demo` program end to end on the real data: examples/ucd builds
 * a store from the Unicode Character Database that Debian's unicode-data
 * package installs, a second process queries it, and the answers are
 * checked against counts this test computes from UnicodeData.txt itself.
 * The data is required: CI installs unicode-data, so its absence is a
 * failure, not a skip. */
#include "test.h"

#include <libgen.h>

#define UCD_DIR "/usr/share/unicode"

static char ucd_bin[1024];

/* Run a shell command; its stdout and stderr go to out. Returns the exit
 * status. */
static int run_cmd(const char *cmd, char *out, size_t cap)
{
    char full[2400];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *f = popen(full, "r");
    if (!f)
        FAILF("popen %s", full);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof sink, f) > 0)
        ;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

#define HAS(out, text)                                                         \
    do {                                                                       \
        if (!strstr((out), (text)))                                            \
            FAILF("output lacks \"%s\":\n%s", (text), (out));                  \
    } while (0)

/* What UnicodeData.txt says, counted here without the program under test. */
struct expect {
    uint64_t lu, lo;       /* code points of category Lu, Lo */
    uint64_t co, cs;       /* code points in private-use and surrogate ranges */
    uint64_t chars;        /* all others: the char table */
};

static void count_file(struct expect *e)
{
    FILE *f = fopen(UCD_DIR "/UnicodeData.txt", "r");
    if (!f)
        FAILF("cannot open " UCD_DIR "/UnicodeData.txt: %s\n"
              "  the test needs the Unicode Character Database: apt-get install unicode-data",
              strerror(errno));
    memset(e, 0, sizeof *e);
    char line[512];
    unsigned long first = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long cp = strtoul(line, NULL, 16);
        char *name = strchr(line, ';');
        char *cat = name ? strchr(name + 1, ';') : NULL;
        if (!cat)
            continue;
        cat++;
        uint64_t n = 1;
        if (strstr(name, ", First>;")) {
            first = cp;
            continue;
        }
        if (strstr(name, ", Last>;"))
            n = cp - first + 1;
        /* ucd keeps the private-use and surrogate ranges as ranges and
         * expands the others (ideographs, Hangul syllables). */
        if (n > 1 && strncmp(cat, "Co;", 3) == 0)
            e->co += n;
        else if (n > 1 && strncmp(cat, "Cs;", 3) == 0)
            e->cs += n;
        else
            e->chars += n;
        if (strncmp(cat, "Lu;", 3) == 0)
            e->lu += n;
        if (strncmp(cat, "Lo;", 3) == 0)
            e->lo += n;
    }
    fclose(f);
}

/* The number after the "    XX Long_Name" line of `categories`. */
static uint64_t category_count(const char *out, const char *code_and_name)
{
    char key[64];
    snprintf(key, sizeof key, "\n    %s ", code_and_name);
    const char *p = strstr(out, key);
    if (!p)
        FAILF("no category line \"%s\" in:\n%s", code_and_name, out);
    return strtoull(p + strlen(key), NULL, 10);
}

int main(void)
{
    if (access(UCD_DIR "/UnicodeData.txt", R_OK) != 0)
        FAILF(UCD_DIR "/UnicodeData.txt is missing: install the Unicode Character Database "
              "(apt-get install unicode-data); CI installs it");
    const char *tool = getenv("MMS_TOOL");
    if (!tool)
        FAILF("MMS_TOOL is not set (run under ctest)");
    /* ucd is built next to the mms tool, in the build root. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tool);
    snprintf(ucd_bin, sizeof ucd_bin, "%s/ucd", dirname(dir));
    if (access(ucd_bin, X_OK) != 0)
        FAILF("cannot run %s: %s", ucd_bin, strerror(errno));

    struct expect e;
    count_file(&e);
    ASSERT_GE(e.lu, 1000);
    ASSERT_GE(e.chars, 100000);

    const char *p = tpath("ucd");
    static char out[1 << 16];
    char cmd[2400];

    /* Missing input: an error that says what to install; no store. */
    snprintf(cmd, sizeof cmd, "'%s' build '%s' /nonexistent-ucd", ucd_bin, p);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 1);
    HAS(out, "unicode-data");
    ASSERT(access(p, F_OK) != 0);

    /* Parse once. */
    snprintf(cmd, sizeof cmd, "'%s' build '%s' " UCD_DIR, ucd_bin, p);
    double t0 = now_us();
    int st = run_cmd(cmd, out, sizeof out);
    if (st != 0)
        FAILF("%s exited %d:\n%s", cmd, st, out);
    fprintf(stderr, "build (%.0f ms):\n%s", (now_us() - t0) / 1e3, out);
    HAS(out, "committed in");
    /* A second build into the same store is refused. */
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 1);
    HAS(out, "exists");

    /* The store as the public API sees it: the tables and their sizes. */
    mms_store *s = open_flags(p, MMS_RDONLY);
    mms_table_info ti[16];
    size_t nt;
    OK(mms_tables(s, ti, 16, &nt));
    ASSERT_EQ(nt, 5);
    mms_table *chr, *rng;
    OK(mms_table_find(s, "char", &chr));
    OK(mms_table_find(s, "range", &rng));
    ASSERT_EQ(mms_table_count(chr), e.chars);
    ASSERT_EQ(mms_table_slots(chr), e.chars);
    ASSERT_EQ(mms_table_count(rng), 6); /* 3 surrogate + 3 private-use ranges */
    ASSERT(strcmp(mms_str_get(s, mms_root(s), NULL), "unknown") != 0);
    verify_ok(s);
    OK(mms_close(s));

    /* Query from a fresh process. */
    snprintf(cmd, sizeof cmd,
             "'%s' query '%s' U+0041 categories scripts U+1F600 word:cat block:basic_latin "
             "U+E000 U+0378 U+AC01 U+4E00 'é' U+1F431",
             ucd_bin, p);
    t0 = now_us();
    st = run_cmd(cmd, out, sizeof out);
    if (st != 0)
        FAILF("%s exited %d:\n%s", cmd, st, out);
    fprintf(stderr, "query (%.0f ms):\n%s", (now_us() - t0) / 1e3, out);
    HAS(out, "open + first answer: ");
    HAS(out, "U+0041 A LATIN CAPITAL LETTER A\n"
             "    category Lu Uppercase_Letter, block Basic Latin, script Latin (Latn), bidi L, "
             "lowercase U+0061\n");
    ASSERT_EQ(category_count(out, "Lu Uppercase_Letter"), e.lu);
    ASSERT_EQ(category_count(out, "Lo Other_Letter"), e.lo); /* expanded ranges included */
    HAS(out, "script with the most characters: Han (Hani)");
    HAS(out, "U+1F600 \xF0\x9F\x98\x80 GRINNING FACE\n"
             "    category So Other_Symbol, block Emoticons, script Common (Zyyy)");
    const char *w = strstr(out, "word CAT: ");
    if (!w)
        FAILF("no answer to word:cat in:\n%s", out);
    ASSERT_GE(strtoull(w + 10, NULL, 10), 5); /* 14 in Unicode 15.0 */
    HAS(out, "U+1F431 \xF0\x9F\x90\xB1 CAT FACE\n"
             "    category So Other_Symbol, block Miscellaneous Symbols and Pictographs, "
             "script Common (Zyyy)");
    HAS(out, "block Basic Latin U+0000..U+007F: 128 characters\n");
    HAS(out, "U+E000 <Private Use> (range U+E000..U+F8FF)\n"
             "    category Co Private_Use, block Private Use Area\n");
    HAS(out, "U+0378 is not assigned");
    HAS(out, "HANGUL SYLLABLE GAG\n");                         /* rule NR1 */
    HAS(out, "CJK UNIFIED IDEOGRAPH-4E00\n");                   /* rule NR2 */
    HAS(out, "U+00E9 \xC3\xA9 LATIN SMALL LETTER E WITH ACUTE"); /* lookup by character */
    char ranges[128];
    snprintf(ranges, sizeof ranges, "Co %llu, Cs %llu\n", (unsigned long long)e.co,
             (unsigned long long)e.cs);
    HAS(out, ranges);

    /* A bad query is refused before the store is opened. */
    snprintf(cmd, sizeof cmd, "'%s' query '%s' nonsense", ucd_bin, p);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 2);
    HAS(out, "unknown query");

    /* The mms tool agrees that the store is sound. */
    char vargs[1100];
    snprintf(vargs, sizeof vargs, "verify '%s'", p);
    st = run_tool(vargs, out, sizeof out);
    if (st != 0)
        FAILF("mms verify exited %d:\n%s", st, out);
    rmrf(p);
    printf("ucd ok\n");
    return 0;
}
