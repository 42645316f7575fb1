// sys_boost -- the benchmark harness for Boost.Interprocess (see bench/README.md).
//
// The store is a boost::interprocess::managed_mapped_file DIR/boost.seg (default
// template arguments: rbtree_best_fit allocator with a process-shared mutex,
// iset index for named objects). Boost.Interprocess has no transactions and no
// durability protocol: its only persistence call is flush(), which in this
// Boost (1.74, boost/interprocess/mapped_region.hpp) is
// mapped_region::flush(0, 0, async = true), i.e. msync(MS_ASYNC): it returns
// before anything reaches the disk. A crash in the middle of an update leaves
// the segment as it is, with no recovery.
//
// Workloads:
//   load   variant "vector" (the driver's): timed: create the segment file
//          (managed_mapped_file(create_only, path, size); the file is
//          ftruncate'd, sparse), construct a named
//          boost::interprocess::vector<bench_rec> ("rec") in it, reserve(N),
//          push_back N records, flush(). Since flush() is MS_ASYNC, and the
//          workload asks for a durable commit, we then msync(MS_SYNC) the
//          whole mapping (what mapped_region::flush(0, 0, false) does;
//          managed_mapped_file exposes no such overload) and fsync DIR so the
//          new file's name is durable too (mmstore fsyncs its directory).
//          Variant "vector_async" stops after flush(): not durable, for
//          comparison only (the driver does not run it).
//          Segment size: N * 64 * 1.0625 + 16 MiB (a managed_mapped_file only
//          grows while unmapped, with managed_mapped_file::grow).
//          Answer: sum of `a` after reopening (open_only, find<vector>("rec")).
//   alloc  variant "managed": the Hoard threadtest shape of sys_mmstore.c:
//          1000 rounds of 1000 segment_manager::allocate(16 + x % 241), each
//          written with its x, then 1000 segment_manager::deallocate. Nothing
//          is flushed (there is nothing to commit). 64 MiB segment, created
//          untimed. Answer: the number of allocations.
//   commit unsupported: no transactions (no atomic commit, no rollback, no
//          recovery); durability is only flush()/msync of the whole mapping.
//   open, get, scan: unsupported (not benchmarked for Boost.Interprocess; it
//          has no transactions or durability beyond flush, and reading its
//          vector in place is the array/malloc loop).
//   commit_size, ipc: unsupported (mmstore only).
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/containers/vector.hpp>
#include <boost/interprocess/managed_mapped_file.hpp>

#include <cerrno>
#include <cstring>
#include <exception>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

namespace bip = boost::interprocess;
using segment = bip::managed_mapped_file;
using rec_allocator = bip::allocator<bench_rec, segment::segment_manager>;
using rec_vector = bip::vector<bench_rec, rec_allocator>;

static std::string variant = "vector";

static void rmrf(const char *dir)
{
    std::string cmd = std::string("rm -rf '") + dir + "'";
    if (system(cmd.c_str()) != 0)
        BENCH_DIE("cannot remove %s", dir);
}

static std::string seg_path(const char *dir)
{
    return std::string(dir) + "/boost.seg";
}

static void make_dir(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        BENCH_DIE("boost: cannot make %s", dir);
}

static void answer_u64(char *buf, uint64_t v)
{
    snprintf(buf, 32, "%llu", (unsigned long long)v);
}

// Workload load: returns the time from create to (durable) flush.
static double load(const char *dir, uint64_t n, bool durable)
{
    size_t bytes = (size_t)n * sizeof(bench_rec);
    rmrf(dir);
    double t = bench_now();
    make_dir(dir);
    {
        segment seg(bip::create_only, seg_path(dir).c_str(), bytes + bytes / 16 + (16u << 20));
        rec_vector *v = seg.construct<rec_vector>("rec")(seg.get_segment_manager());
        v->reserve(n);
        bench_rec r;
        for (uint64_t i = 0; i < n; i++) {
            bench_make(&r, i);
            v->push_back(r);
        }
        if (!seg.flush())
            BENCH_DIE("boost: flush failed");
        if (durable) {
            if (msync(seg.get_address(), seg.get_size(), MS_SYNC) != 0)
                BENCH_DIE("boost: msync: %s", strerror(errno));
            int fd = open(dir, O_RDONLY | O_DIRECTORY);
            if (fd < 0 || fsync(fd) != 0)
                BENCH_DIE("boost: fsync %s: %s", dir, strerror(errno));
            close(fd);
        }
        t = bench_now() - t;
    }
    return t;
}

static uint64_t checksum_a(const char *dir, uint64_t n)
{
    segment seg(bip::open_only, seg_path(dir).c_str());
    std::pair<rec_vector *, segment::size_type> found = seg.find<rec_vector>("rec");
    if (!found.first || found.first->size() != n)
        BENCH_DIE("boost: the segment does not hold %llu records", (unsigned long long)n);
    uint64_t sum = 0;
    for (const bench_rec &r : *found.first)
        sum += r.a;
    return sum;
}

static uint64_t alloc(const char *dir, uint64_t n, double *seconds)
{
    rmrf(dir);
    make_dir(dir);
    segment seg(bip::create_only, seg_path(dir).c_str(), 64u << 20);
    segment::segment_manager *sm = seg.get_segment_manager();
    enum { OBJS = 1000 };
    const int rounds = bench_alloc_rounds(n);
    static void *p[OBJS];
    uint64_t x = BENCH_SEED, allocs = 0;
    double t = bench_now();
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < OBJS; i++) {
            x = bench_mix(x);
            p[i] = sm->allocate(16 + x % 241);  // throws bad_alloc when full
            *(uint64_t *)p[i] = x;
            allocs++;
        }
        for (int i = 0; i < OBJS; i++)
            sm->deallocate(p[i]);
    }
    *seconds = bench_now() - t;
    return allocs;
}

static int run(int argc, char **argv)
{
    if (argc < 5)
        BENCH_DIE("usage: bench_boost prepare|run WORKLOAD N DIR [VARIANT]");
    const char *phase = argv[1], *w = argv[2], *dir = argv[4];
    uint64_t n = strtoull(argv[3], NULL, 10);
    if (argc > 5)
        variant = argv[5];
    bool prep = strcmp(phase, "prepare") == 0;
    char ans[64] = "-";

    if (strcmp(w, "load") == 0) {
        if (variant != "vector" && variant != "vector_async")
            bench_unsupported("load: variants vector (msync MS_SYNC) and vector_async (flush only)");
        if (prep)
            return 0;
        double t = load(dir, n, variant == "vector");
        answer_u64(ans, checksum_a(dir, n));
        bench_result("boost", variant.c_str(), w, n, n, t, ans);
        rmrf(dir);
        return 0;
    }
    if (strcmp(w, "alloc") == 0) {
        if (variant != "managed")
            bench_unsupported("alloc: variant managed");
        if (prep)
            return 0;
        double t;
        uint64_t allocs = alloc(dir, n, &t);
        answer_u64(ans, allocs);
        bench_result("boost", variant.c_str(), w, n, allocs, t, ans);
        rmrf(dir);
        return 0;
    }
    if (strcmp(w, "commit") == 0)
        bench_unsupported("Boost.Interprocess has no transactions (no atomic commit, rollback or "
                          "recovery); its only durability is flush(), an msync of the mapping");
    if (strcmp(w, "open") == 0 || strcmp(w, "get") == 0 || strcmp(w, "scan") == 0)
        bench_unsupported("not benchmarked: Boost.Interprocess has no transactions or durability "
                          "beyond flush, and reading its vector in place is the array loop");
    if (strcmp(w, "commit_size") == 0 || strcmp(w, "ipc") == 0)
        bench_unsupported("mmstore only");
    bench_unsupported("unknown workload");
    return 3;
}

int main(int argc, char **argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        BENCH_DIE("boost: %s", e.what());
    }
}
