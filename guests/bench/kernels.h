/*
 * The CPU benchmark's kernels. This file and kernels.c are compiled twice:
 * into the i386 guest, and natively on the build machine (gen-expected.c),
 * which computes the checksums the guest must reproduce. So the kernels use
 * fixed-width unsigned arithmetic only, and nothing they compute depends on
 * pointer values or sizes.
 */
#ifndef BENCH_KERNELS_H
#define BENCH_KERNELS_H

#include <stdint.h>

/* Problem sizes and repetition counts (tuned for ~400 million i386 instructions). */
#define CRC_BUF_BYTES   (64 * 1024)
#define CRC_REPS        150
#define SORT_N          20000
#define SORT_REPS       24
#define MAT_N           48
#define MAT_REPS        100
#define HASH_BITS       14
#define HASH_KEYS       11000
#define HASH_REPS       48
#define LIST_N          20000
#define LIST_REPS       84

typedef uint32_t (*kernel_fn)(uint32_t seed);

struct kernel {
	const char *name;
	kernel_fn run;
	uint32_t seed;
};

#define BENCH_KERNELS 5
extern const struct kernel bench_kernels[BENCH_KERNELS];

/* Folds a value into a running checksum. */
static inline uint32_t mix32(uint32_t h, uint32_t v) {
	h ^= v;
	h *= 0x9E3779B1u;
	return (h << 13) | (h >> 19);
}

/* The checksum over all kernel results, in table order. */
uint32_t bench_total(const uint32_t results[BENCH_KERNELS]);

/* CRC-32 (IEEE 802.3, reflected) of a buffer; crc32_update(0, "123456789", 9) == 0xCBF43926. */
uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n);

#endif
