/*
 * replay.c -- run fuzz inputs through the fuzz target without libFuzzer:
 * the corpus replay that ctest runs (in the normal and the sanitizer
 * build), and a way to rerun one input under a debugger.
 *
 *     fuzz_replay FILE_OR_DIR...
 *
 * Each file (each file of a directory, in name order) is one input. A
 * crash or sanitizer report ends the program, naming the input first.
 * (The catalog damage the fuzzer found crashing the library is tested by
 * tests/test_catalog_damage.c.)
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long ran;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                fclose(f);
                free(buf);
                fprintf(stderr, "%s: out of memory\n", path);
                return 1;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    /* Named first, so that a crash report says which input it was. */
    fprintf(stderr, "fuzz_replay: %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    ran++;
    return 0;
}

static int only_files(const struct dirent *de)
{
    return de->d_name[0] != '.';
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    struct dirent **list;
    int n = scandir(path, &list, only_files, alphasort);
    if (n < 0) {
        perror(path);
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, list[i]->d_name);
        struct stat fs;
        if (stat(p, &fs) == 0 && S_ISREG(fs.st_mode) && strcmp(list[i]->d_name, "README") != 0)
            bad |= run_file(p);
        free(list[i]);
    }
    free(list);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    int bad = 0;
    for (int i = 1; i < argc; i++)
        bad |= run_path(argv[i]);
    fprintf(stderr, "fuzz_replay: %lu inputs, no crash\n", ran);
    if (ran == 0) {
        fprintf(stderr, "fuzz_replay: no input found\n");
        return 1;
    }
    return bad;
}
