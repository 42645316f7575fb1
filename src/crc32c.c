/*
 * crc32c.c -- CRC-32C (Castagnoli), used for journal groups and headers.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
 * The value is the standard one: crc32c("123456789") == 0xe3069283.
 * Chaining: mms__crc32c(mms__crc32c(0, a), b) == crc of a followed by b.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c;
        c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
            table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
            table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
MMS__OPEN_PATH
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
/* Asked of glibc, which read the CPU's features once at the process's
 * start. Not __builtin_cpu_supports: it links libgcc's constructor
 * __cpu_indicator_init, which runs in every process that links this
 * library and asks the CPU itself, ~20 CPUID instructions -- each a trap
 * to the hypervisor in a virtual machine (~5 us on the benchmarks' VM:
 * 100 us added to every process's start). */
#if defined(__has_include) && __has_include(<sys/platform/x86.h>)
#include <sys/platform/x86.h>
static int have_hw(void)
{
    return CPU_FEATURE_ACTIVE(SSE4_2);
}
#else
#include <cpuid.h>
static int have_hw(void) /* one CPUID, at the first checksum */
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
}
#endif
#else
MMS__OPEN_PATH
static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
    return crc_sw(c, p, n);
}
static int have_hw(void)
{
    return 0;
}
#endif

/* 0 = not decided, 1 = hardware, 2 = table. The table is built once:
 * threads whose first calls raced wrote it at once, a data race
 * (ThreadSanitizer, test_threads first_calls). The hardware answer writes
 * nothing but the flag, the same value from every thread, so it needs no
 * pthread_once -- whose first call ends in a futex system call, one more in
 * every process's mms_open. */
static int mode;
static pthread_once_t mode_once = PTHREAD_ONCE_INIT;

static void table_decide(void)
{
    table_init();
    __atomic_store_n(&mode, 2, __ATOMIC_RELEASE);
}

/* Decided when the library is loaded, as libgcc's constructor did before
 * (have_hw): the question's first call is bound lazily by ld.so, a few us
 * that an mms_open made in the process would pay otherwise. */
__attribute__((constructor)) static void hw_decide(void)
{
    if (have_hw())
        __atomic_store_n(&mode, 1, __ATOMIC_RELEASE);
}

MMS__OPEN_PATH
uint32_t mms__crc32c(uint32_t crc, const void *buf, size_t len)
{
    int m = __atomic_load_n(&mode, __ATOMIC_ACQUIRE);
    if (m == 0) {
        if (have_hw()) {
            m = 1;
            __atomic_store_n(&mode, 1, __ATOMIC_RELEASE);
        } else {
            pthread_once(&mode_once, table_decide);
            m = __atomic_load_n(&mode, __ATOMIC_ACQUIRE);
        }
    }
    crc = ~crc;
    crc = m == 1 ? crc_hw(crc, buf, len) : crc_sw(crc, buf, len);
    return ~crc;
}
