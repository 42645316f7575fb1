/*
 * test_cxx.cpp -- a table program in C++17 (issue 15, item 7): the header
 * compiles as C++ without warnings, the MMS_F_* macros describe a struct
 * with the same compile-time checks as in C11 (a traits template instead
 * of _Generic), and the program runs: create, append, get, migrate.
 *
 * The checks: with MMS_CXX set (ctest sets it to the C++ compiler), this
 * file is compiled again once per MMS_BAD case, each a field whose size,
 * signedness or type does not match its macro, and each must fail.
 */
#include <mmstore.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MMS_BAD
#define MMS_BAD 0
#endif

struct person {
    int64_t id;
    char tag[8];
    double score;
    float weight;
    uint8_t ok;
    bool flag;
    uint16_t rank;
    mms_ref name;
    mms_ref boss;
    signed char tiny;
};

static const mms_field person_fields[] = {
    MMS_F_I64(person, id),           MMS_F_CHARS(person, tag),  MMS_F_F64(person, score),
    MMS_F_F32(struct person, weight), MMS_F_BOOL(person, ok),    MMS_F_BOOL(person, flag),
    MMS_F_U16(person, rank),         MMS_F_STR(person, name),   MMS_F_REF(person, boss, "person"),
    MMS_F_I8(person, tiny),
#if MMS_BAD == 1
    MMS_F_U64(person, id), /* signed field, unsigned kind */
#elif MMS_BAD == 2
    MMS_F_I32(person, id), /* 8 bytes, 4-byte kind */
#elif MMS_BAD == 3
    MMS_F_F64(person, weight), /* float, not double */
#elif MMS_BAD == 4
    MMS_F_F32(person, rank), /* an integer as a float */
#elif MMS_BAD == 5
    MMS_F_BOOL(person, tiny), /* signed char is not a bool */
#elif MMS_BAD == 6
    MMS_F_REF(person, id, "person"), /* a ref is unsigned */
#elif MMS_BAD == 7
    MMS_F_I16(person, rank), /* unsigned field, signed kind */
#endif
};
static const mms_schema person_schema = MMS_SCHEMA(person, person_fields);

struct person2 {
    int64_t id;
    double score;
    int32_t age;
};
static const int32_t adult = 18;
static const mms_field person2_fields[] = {
    MMS_F_I64(person2, id), MMS_F_F64(person2, score),
    MMS_F_WITH_DEFAULT(person2, age, MMS_KIND_I32, &adult),
};
static const mms_schema person2_schema = MMS_SCHEMA(person2, person2_fields);

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            std::fprintf(stderr, "%s:%d: %s failed (%s)\n", __FILE__, __LINE__, #c, \
                         mms_errdetail());                                     \
            std::abort();                                                      \
        }                                                                      \
    } while (0)

/* Compile this file again with MMS_BAD=k: must fail for k >= 1. */
static void bad_fields_do_not_compile()
{
    const char *cxx = std::getenv("MMS_CXX"), *inc = std::getenv("MMS_INCLUDE");
    if (!cxx || !inc) {
        std::fprintf(stderr, "   MMS_CXX or MMS_INCLUDE not set: compile checks skipped\n");
        return;
    }
    for (int k = 0; k <= 7; k++) {
        std::string cmd = std::string("'") + cxx + "' -std=c++17 -fsyntax-only -Wall -Wextra "
                          "-Werror -pedantic -I'" + inc + "' -DMMS_BAD=" + std::to_string(k) +
                          " '" + __FILE__ + "' 2>/dev/null";
        int st = std::system(cmd.c_str());
        bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (ok != (k == 0)) {
            std::fprintf(stderr, "MMS_BAD=%d %s:\n  %s\n", k,
                         k ? "compiled, but the field does not match its kind" : "fails",
                         cmd.c_str());
            std::abort();
        }
    }
    std::fprintf(stderr, "   7 mismatched fields refused by the C++ compiler\n");
}

int main()
{
    const char *base = std::getenv("MMS_TEST_TMP");
    std::string dir = std::string(base ? base : "/tmp/mms-test");
    mkdir(dir.c_str(), 0777);
    dir += "/cxx." + std::to_string(getpid()) + ".mms";
    std::system(("rm -rf '" + dir + "'").c_str());

    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE;
    mms_store *s = nullptr;
    CHECK(mms_open(dir.c_str(), &o, &s) == 0);
    mms_table *t = nullptr;
    CHECK(mms_txn_begin(s, 0) == 0);
    CHECK(mms_table_open(s, "person", &person_schema, MMS_TABLE_CREATE, &t) == 0);
    for (int i = 0; i < 1000; i++) {
        person p{};
        p.id = i;
        std::snprintf(p.tag, sizeof p.tag, "t%u", static_cast<unsigned>(i) % 1000u);
        p.score = i * 0.25;
        p.weight = 1.5f;
        p.ok = i % 2;
        p.rank = (uint16_t)i;
        CHECK(mms_str_new(s, "name", 4, &p.name) == 0);
        p.boss = i ? mms_table_ref(t, 0) : MMS_REF_NULL;
        CHECK(mms_table_append(t, &p, nullptr) == 0);
    }
    CHECK(mms_txn_commit(s) == 0);
    person *p = MMS_TABLE_GET(t, person, 999);
    CHECK(p && p->id == 999 && p->score == 999 * 0.25 && std::strcmp(p->tag, "t999") == 0);
    CHECK(MMS_REC(s, person, p->boss)->id == 0);
    CHECK(std::strcmp(mms_str_get(s, p->name, nullptr), "name") == 0);
    CHECK(MMS_TABLE_GET(t, person, 1000) == nullptr);
    const mms_schema *sc = mms_table_schema(t);
    CHECK(sc->nfields == 10 && sc->record_size == sizeof(person));

    /* A second table, migrated to gain a field with a default. */
    static const mms_field old_fields[] = {MMS_F_I64(person2, id), MMS_F_F64(person2, score)};
    static const mms_schema old_schema = MMS_SCHEMA(person2, old_fields);
    mms_table *u = nullptr;
    CHECK(mms_txn_begin(s, 0) == 0);
    CHECK(mms_table_open(s, "p2", &old_schema, MMS_TABLE_CREATE, &u) == 0);
    person2 q{7, 2.5, 0};
    CHECK(mms_table_append(u, &q, nullptr) == 0);
    CHECK(mms_txn_commit(s) == 0);
    CHECK(mms_txn_begin(s, 0) == 0);
    CHECK(mms_table_open(s, "p2", &person2_schema, 0, &u) == 0);
    CHECK(mms_txn_commit(s) == 0);
    CHECK(MMS_TABLE_GET(u, person2, 0)->age == 18 && MMS_TABLE_GET(u, person2, 0)->id == 7);

    char msg[256];
    CHECK(mms_verify(s, msg, sizeof msg) == 0);
    CHECK(mms_close(s) == 0);
    std::system(("rm -rf '" + dir + "'").c_str());
    bad_fields_do_not_compile();
    std::printf("cxx ok\n");
    return 0;
}
