#!/bin/sh
# test_header.sh SRC BUILD CC CXX [LINKFLAGS] -- mmstore as a user gets it.
#
#  1. include/mmstore.h in a program that uses every macro, compiled as C99
#     and C11 (gcc and clang) and as C++11 and C++17 (g++ and clang++) with
#     -pedantic -Werror and the strict warnings projects turn on
#     (-Wconversion, -Wcast-qual; in C++ -Wold-style-cast and
#     -Wzero-as-null-pointer-constant: the header's casts were C casts and
#     its null pointers 0 and NULL, which failed those), also inside
#     extern "C" { } (its templates then had C linkage: an error); the public
#     structs have one layout in C and in C++;
#  2. `cmake --install BUILD --prefix P`: the installed mmstore.pc names P
#     (it named the prefix configured before, so pkg-config pointed at
#     files that were not there), and with DESTDIR the final prefix; the
#     program built with `pkg-config --cflags --libs mmstore` against the
#     shared library and against the static one runs;
#  3. the shared library's soname is libmmstore.so.0 and it exports the
#     public functions (mms_...) only, none of the internal mms__ ones.
# LINKFLAGS: what a program linked with the library needs (the sanitizer
# build's -fsanitize=...). Compilers that are not installed are skipped.
set -eu
src=$(cd "${1:?usage: test_header.sh SRC BUILD CC CXX [LINKFLAGS]}" && pwd)
build=$(cd "${2:?}" && pwd)
cc=${3:?}
cxx=${4:?}
linkflags=${5:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_header: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

cat >"$tmp/use.c" <<'EOF'
/* Every macro of mmstore.h, in a program that also runs. MMS_WRAP: C++
 * that includes it inside extern "C" { }, as C headers often are. */
#ifdef MMS_WRAP
extern "C" {
#endif
#include <mmstore.h>
#ifdef MMS_WRAP
}
#endif
#include <stdio.h>
#include <string.h>
#ifdef __cplusplus
#define NIL nullptr
#else
#include <stdbool.h>
#define NIL NULL
#endif

struct rec {
    int8_t i8; int16_t i16; int32_t i32; int64_t i64;
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
    float f32; double f64; uint8_t ok; bool flag; char tag[12];
    mms_ref next; mms_ref name; mms_ref blob; int32_t added;
};
static const int32_t added_default = 18;
static const mms_field rec_fields[] = {
    MMS_F_I8(struct rec, i8),   MMS_F_I16(struct rec, i16), MMS_F_I32(struct rec, i32),
    MMS_F_I64(struct rec, i64), MMS_F_U8(struct rec, u8),   MMS_F_U16(struct rec, u16),
    MMS_F_U32(struct rec, u32), MMS_F_U64(struct rec, u64), MMS_F_F32(struct rec, f32),
    MMS_F_F64(struct rec, f64), MMS_F_BOOL(struct rec, ok), MMS_F_BOOL(struct rec, flag),
    MMS_F_CHARS(struct rec, tag),
    MMS_F_REF(struct rec, next, "rec"), MMS_F_STR(struct rec, name), MMS_F_BLOB(struct rec, blob),
    MMS_F_WITH_DEFAULT(struct rec, added, MMS_KIND_I32, &added_default),
};
static const mms_schema rec_schema = MMS_SCHEMA(struct rec, rec_fields);

#define ERR_NAME(name, code, msg) +(name != 0)
#define KIND_ONE(a, N, v, name, size, cls) +(MMS_KIND_##N > 0)
enum { NERRORS = 0 MMS_ERRORS(ERR_NAME), NKINDS = 0 MMS_KINDS(KIND_ONE, 0) };

int main(int argc, char **argv)
{
    mms_options o;
    mms_store *s = NIL;
    mms_table *t = NIL;
    mms_ref r = MMS_REF_NULL, heap = MMS_REF_NULL;
    uint64_t i = 0;
    if (argc < 2)
        return 2;
    mms_options_init(&o);
    o.flags = MMS_CREATE;
    if (mms_open(argv[1], &o, &s) != 0 || mms_txn_begin(s, 0) != 0 ||
        mms_table_open(s, "rec", &rec_schema, MMS_TABLE_CREATE, &t) != 0 ||
        mms_table_append(t, NIL, &i) != 0 || mms_zalloc(s, 16, &heap) != 0)
        return 3;
    r = MMS_REF_MAKE(MMS_REF_REGION(mms_table_ref(t, i)), MMS_REF_SLOT(mms_table_ref(t, i)));
    MMS_TABLE_GET(t, struct rec, i)->i64 = 42;
    MMS_REC(s, struct rec, r)->next = r;
    *MMS_AT(s, int64_t, heap) = 7;
    if (mms_txn_commit(s) != 0 || MMS_REC(s, struct rec, r)->i64 != 42 || NERRORS < 20 ||
        NKINDS + 0 != MMS_KIND_LAST + 0 || *MMS_AT(s, int64_t, heap) != 7 ||
        strcmp(mms_version(), MMS_VERSION_STRING) != 0)
        return 4;
    printf("ok %s\n", mms_version());
    return mms_close(s);
}
EOF
cp "$tmp/use.c" "$tmp/use.cpp"

# 1. The header, strict, in every language and standard.
cwarn="-pedantic -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wconversion -Wsign-conversion -Wcast-qual -Wundef"
cxxwarn="-pedantic -Wall -Wextra -Werror -Wshadow -Wconversion -Wsign-conversion -Wcast-qual -Wundef -Wold-style-cast -Wzero-as-null-pointer-constant"
compiled=0
for c in "$cc" gcc clang; do
    have "$c" || continue
    for std in c99 c11; do
        # shellcheck disable=SC2086
        "$c" -std=$std $cwarn -I"$src/include" -fsyntax-only "$tmp/use.c" ||
            fail "$c -std=$std: the header or its macros do not compile cleanly"
        compiled=$((compiled + 1))
    done
done
for c in "$cxx" g++ clang++; do
    have "$c" || continue
    for std in c++11 c++17; do
        for wrap in "" -DMMS_WRAP; do
            # shellcheck disable=SC2086
            "$c" -std=$std $cxxwarn $wrap -I"$src/include" -fsyntax-only "$tmp/use.cpp" ||
                fail "$c -std=$std $wrap: the header or its macros do not compile cleanly"
            compiled=$((compiled + 1))
        done
    done
done
[ "$compiled" -ge 4 ] || fail "only $compiled compilations ran"

# The public structs have one layout in C and in C++ (a library built in C
# fills what a C++ program reads): their sizes and the offsets of their
# last members, printed by both.
cat >"$tmp/layout.c" <<'EOF'
#include <mmstore.h>
#include <stdio.h>
#define L(T, m) printf("%s %zu %s %zu\n", #T, sizeof(T), #m, offsetof(T, m));
int main(void)
{
    L(mms_options, base) L(mms_reader_info, holding_back) L(mms_heap_obj, slab)
    L(mms_heap_check, first_shared) L(mms_info, guard_kind) L(mms_info, last_commit)
    L(mms_compact_stats, truncated) L(mms_copy_stats, read_ns) L(mms_field, dflt)
    L(mms_schema, fields) L(mms_table_info, layout_gen) L(mms_index_info, cover_size)
    L(struct mms__view, unit)
    return 0;
}
EOF
cp "$tmp/layout.c" "$tmp/layout.cpp"
"$cc" -std=c99 -I"$src/include" -o "$tmp/layout_c" "$tmp/layout.c" || fail "layout.c"
"$cxx" -std=c++11 -I"$src/include" -o "$tmp/layout_cxx" "$tmp/layout.cpp" || fail "layout.cpp"
"$tmp/layout_c" >"$tmp/layout_c.txt"
"$tmp/layout_cxx" >"$tmp/layout_cxx.txt"
cmp -s "$tmp/layout_c.txt" "$tmp/layout_cxx.txt" ||
    fail "a public struct is laid out differently in C and C++: $(diff "$tmp/layout_c.txt" "$tmp/layout_cxx.txt" | head -4)"

# 2. Installed under a prefix given at install time, and into a DESTDIR.
cmake --install "$build" --prefix "$tmp/p" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "cmake --install failed"; }
pc=$(find "$tmp/p" -name mmstore.pc)
[ -n "$pc" ] || fail "no mmstore.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc")"
prefix=$(pkg-config --variable=prefix mmstore)
[ "$prefix" = "$tmp/p" ] || fail "the installed mmstore.pc names prefix $prefix, not $tmp/p"
libdir=$(pkg-config --variable=libdir mmstore)
[ -f "$libdir/libmmstore.a" ] && [ -f "$(pkg-config --variable=includedir mmstore)/mmstore.h" ] ||
    fail "mmstore.pc's libdir or includedir holds no library or header"
DESTDIR="$tmp/d" cmake --install "$build" --prefix /opt/mms >/dev/null 2>&1 ||
    fail "cmake --install with DESTDIR failed"
grep -qx 'prefix=/opt/mms' "$(find "$tmp/d" -name mmstore.pc)" ||
    fail "a DESTDIR install's mmstore.pc does not name the final prefix /opt/mms"

# shellcheck disable=SC2046,SC2086
"$cc" -std=c99 -o "$tmp/use_shared" "$tmp/use.c" $(pkg-config --cflags --libs mmstore) \
    -Wl,-rpath,"$libdir" $linkflags || fail "cannot link against the shared library"
readelf -d "$tmp/use_shared" | grep -q 'NEEDED.*\[libmmstore\.so\.0\]' ||
    fail "the program does not need libmmstore.so.0"
"$tmp/use_shared" "$tmp/a.mms" | grep -qx "ok 0.1.0" || fail "the shared build does not run"
# Static: the archive, and what mmstore.pc says it needs (Libs.private).
# shellcheck disable=SC2046,SC2086
"$cc" -std=c99 -o "$tmp/use_static" "$tmp/use.c" $(pkg-config --cflags mmstore) \
    -L"$libdir" -Wl,-Bstatic -lmmstore -Wl,-Bdynamic \
    $(pkg-config --static --libs-only-l mmstore | sed 's/-lmmstore//') $linkflags ||
    fail "cannot link against the static library"
! readelf -d "$tmp/use_static" | grep -q 'libmmstore' || fail "the static build needs libmmstore.so"
"$tmp/use_static" "$tmp/b.mms" | grep -qx "ok 0.1.0" || fail "the static build does not run"

# 3. The soname and the exports.
readelf -d "$libdir/libmmstore.so" | grep -q 'SONAME.*\[libmmstore\.so\.0\]' ||
    fail "libmmstore.so's soname is not libmmstore.so.0"
extra=$(nm -D --defined-only "$libdir/libmmstore.so" | awk '{print $3}' | grep -v '^mms_[a-z0-9]' || true)
[ -z "$extra" ] || fail "libmmstore.so exports more than the public API: $(echo $extra | head -c 300)"
nm -D --defined-only "$libdir/libmmstore.so" | grep -q ' T mms_open$' || fail "mms_open is not exported"
echo "test_header: ok ($compiled compilations, shared and static builds run)"
