/*
 * table_world.h -- what the table test programs share (table_world.c):
 * their start and end, helpers for tables and region files, and the
 * logical model of a "world" of tables that migrations are checked against.
 *
 * Programs: test_table_unit (bad input, limits), test_table_model (the
 * random model of deletes, slot reuse and strings), test_table_migrate
 * (schema evolution), test_crash_migrate (SIGKILL during a migration),
 * test_multi_table (readers in other processes).
 *
 * THE LOGICAL MODEL. A record's values are kept per field *name*, as
 * logical values (an integer, a float, chars, a string, a ref); a widening
 * keeps the value, so the expected bytes of a record in any layout are its
 * logical values encoded by that layout's kinds. Bytes that no field covers
 * are zero. A world is three tables: dept, emp (whose layout changes) and
 * proj (whose REF points into emp).
 *
 * Wrong answers of a kind the library is known to give (a stale layout from
 * mms_table_schema(), a record pointer outside the store) are reported as
 * LIBRARY BUG, counted, and make the program exit 1 at the end, so that the
 * checks after them still run.
 */
#ifndef MMS_TABLE_WORLD_H
#define MMS_TABLE_WORLD_H

#include "test.h"

#include <stdbool.h>

/* ------------------------------------------------------------------------
 * A program's start and end
 * ------------------------------------------------------------------------ */
extern uint64_t seed0; /* MMS_SEED: each part derives its own stream from it */
extern unsigned soak;  /* MMS_SOAK */
extern char context[512]; /* where the program is: printed when it aborts */
extern char *strbuf;      /* string contents, STRBUF bytes */
#define STRBUF 16384

#define CTX(...) snprintf(context, sizeof context, __VA_ARGS__)

/* A wrong answer that is a known kind of library bug: reported, counted,
 * and the program exits non-zero at the end; the checks after it still
 * run (they do not depend on the wrong answer). */
extern unsigned long bugs;
#define BUG(...)                                                               \
    do {                                                                       \
        bugs++;                                                                \
        fprintf(stderr, "%s:%d: LIBRARY BUG: ", __FILE__, __LINE__);           \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n  context: %s\n", context);                         \
    } while (0)

/* In main(): the buffers, the seed (printed under prog's name), and the
 * context and the seed printed if the program aborts. */
void table_test_begin(const char *prog);
/* main()'s exit status: 1 if a LIBRARY BUG was reported. */
int table_test_end(void);

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */
mms_store *sopen(const char *path, unsigned flags); /* small grow steps */
uint64_t heap_objects(mms_store *s);
uint32_t region_gen(mms_store *s, uint32_t id); /* the file generation of a region */
uint32_t table_region(const mms_table *t);
/* The generations of region id that have a file in the store directory. */
int region_files(const char *path, uint32_t id, uint32_t *gens, int cap);
int has_region_file(const char *path, uint32_t id, uint32_t gen);
/* Only the current generation's file is left (after a checkpoint). */
void only_region_file(const char *path, uint32_t id, uint32_t gen);
/* Every region file belongs to a table of the store, in its generation. */
void files_match_tables(const char *path, mms_store *s);
/* word appears in text, not as part of a longer name. */
int mentions(const char *text, const char *word);
/* String contents: a pure function of (seed, len). */
void str_fill(char *buf, uint64_t seed, uint32_t len);
uint32_t pick_len(uint64_t *x);
void str_check(mms_store *s, mms_ref ref, uint64_t seed, uint32_t len, const char *what,
               uint64_t i);
const mms_field *field_named(const mms_schema *sc, const char *name);
/* The stored layout (mms_table_schema) is sc. A mismatch is reported as a
 * bug and counted; the data checks that follow use the model's layout. */
void schema_same(const mms_schema *st, const mms_schema *sc, const char *table);
int schema_eq(const mms_schema *st, const mms_schema *sc);

/* ------------------------------------------------------------------------
 * Schemas more than one program uses
 * ------------------------------------------------------------------------ */
struct r2 {
    uint8_t a;
    char b[2];
};
_Static_assert(sizeof(struct r2) == 3, "an odd record size");
static const mms_field r2_fields[] = {MMS_F_U8(struct r2, a), MMS_F_CHARS(struct r2, b)};
static const mms_schema r2_schema = MMS_SCHEMA(struct r2, r2_fields);

struct g1 {
    int64_t a;
    mms_ref s;
};
static const mms_field g1_fields[] = {MMS_F_I64(struct g1, a), MMS_F_STR(struct g1, s)};
static const mms_schema g1_schema = MMS_SCHEMA(struct g1, g1_fields);

/* The world's tables in their first layouts. */
struct dept {
    int64_t id;
    mms_ref title;
};
static const mms_field dept_fields[] = {MMS_F_I64(struct dept, id), MMS_F_STR(struct dept, title)};
static const mms_schema dept_schema = MMS_SCHEMA(struct dept, dept_fields);

struct proj {
    int32_t n;
    mms_ref lead;
};
static const mms_field proj_fields[] = {MMS_F_I32(struct proj, n),
                                        MMS_F_REF(struct proj, lead, "emp")};
static const mms_schema proj_schema = MMS_SCHEMA(struct proj, proj_fields);

/* emp V1: fields of every kind; a REF to itself and one to dept. */
struct e1 {
    int8_t a8;
    int16_t a16;
    int32_t a32;
    int64_t a64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    uint8_t x8;
    uint16_t x16;
    uint32_t x32;
    int32_t fi;
    float ff;
    char code[4];
    int8_t g8;
    uint32_t gu;
    bool flag;
    mms_ref name;
    mms_ref extra;
    int32_t gone;
    mms_ref boss;
    mms_ref dept;
};
static const mms_field e1_fields[] = {
    MMS_F_I8(struct e1, a8),    MMS_F_I16(struct e1, a16), MMS_F_I32(struct e1, a32),
    MMS_F_I64(struct e1, a64),  MMS_F_U8(struct e1, u8),   MMS_F_U16(struct e1, u16),
    MMS_F_U32(struct e1, u32),  MMS_F_U64(struct e1, u64), MMS_F_U8(struct e1, x8),
    MMS_F_U16(struct e1, x16),  MMS_F_U32(struct e1, x32), MMS_F_I32(struct e1, fi),
    MMS_F_F32(struct e1, ff),   MMS_F_CHARS(struct e1, code), MMS_F_I8(struct e1, g8),
    MMS_F_U32(struct e1, gu),   MMS_F_BOOL(struct e1, flag), MMS_F_STR(struct e1, name),
    MMS_F_STR(struct e1, extra), MMS_F_I32(struct e1, gone), MMS_F_REF(struct e1, boss, "emp"),
    MMS_F_REF(struct e1, dept, "dept"),
};
static const mms_schema e1_schema = MMS_SCHEMA(struct e1, e1_fields);

/* The default of the i64 field newd that later layouts of emp add. */
static const int64_t dflt_newd = -5;

/* Records 0..NEXTREME-1 of emp hold one extreme each in every field
 * (minimum, maximum, -1 / max-1, ...). The random operations never change
 * or delete them (gt.keep), so what a migration made of them -- widened
 * extremes, the defaults of added fields -- can be checked through the C
 * types at any later moment, whatever the seed. */
#define NEXTREME 7

/* ------------------------------------------------------------------------
 * The logical model
 * ------------------------------------------------------------------------ */
enum { LV_NONE, LV_INT, LV_UINT, LV_FLT, LV_BOOL, LV_CHARS, LV_STR, LV_REF };
struct lv {
    uint8_t t, has; /* has: LV_STR with a string (else a null ref) */
    uint32_t len;   /* LV_STR, LV_CHARS */
    mms_ref ref;    /* LV_STR with has, LV_REF */
    union {
        int64_t i;
        uint64_t u;
        double f;
        uint64_t seed; /* LV_STR */
        char c[24];
    } v;
};

#define NLF 40
/* The index of a field name in the model's rows (one per name ever seen). */
int lid(const char *name);

struct gt {
    const char *name;
    mms_table *t;
    const mms_schema *sc;
    uint64_t slots, count, cap, layout_gen;
    uint64_t keep; /* records 0..keep-1 are never picked for a change */
    int tomb;
    uint8_t *live;
    struct lv *v; /* cap * NLF */
};
#define GV(g, i, l) (&(g)->v[(size_t)(i) * NLF + (size_t)(l)])

enum { W_DEPT, W_EMP, W_PROJ, W_N };
struct world {
    mms_store *s;
    struct gt g[W_N];
    unsigned long appends, reused, deletes, unrefs, sets;
};

void gt_init(struct gt *g, const char *name, const mms_schema *sc, uint64_t cap);
void gt_free(struct gt *g);
void world_copy(struct world *d, const struct world *src);
void world_free(struct world *w);
int world_index(const struct world *w, const char *name);
void world_handles(const struct world *w, mms_table *th[W_N]);
/* The logical value of the bytes of a field of kind f (for defaults). */
void decode_lv(const mms_field *f, const void *bytes, struct lv *l);
uint64_t gt_pick_live(const struct gt *g, uint64_t *x);
/* A live record the random operations may change or delete (not one of
 * the first g->keep); the same random draw as gt_pick_live. */
uint64_t gt_pick_some(const struct gt *g, uint64_t *x);
/* Appends a new record of random values (force >= 0: extreme number force
 * in every field); returns its slot, the lowest deleted one if any. */
uint64_t gt_append(struct world *W, struct gt *g, uint64_t *x, int force);
void gt_append_many(struct world *W, struct gt *g, uint64_t *x, uint64_t n);
/* Deletes record i, after clearing the refs to it (store and model). */
void gt_delete(struct world *W, struct gt *g, uint64_t i);
/* A new value for a random field of live record i. */
void gt_set(struct world *W, struct gt *g, uint64_t i, uint64_t *x);
/* Everything the store says about the world's tables, through handles th
 * of store s, against the model; mms_verify too if verify. */
void world_check(struct world *W, mms_store *s, mms_table *const th[W_N], int verify);
/* Strings the live records hold in fields of g that `to` drops. */
uint64_t strings_dropped(const struct gt *g, const mms_schema *to);
/* What a migration to `to` does to the model. */
void gt_migrate_model(struct gt *g, const mms_schema *to);

#endif
