/*
 * The CPU benchmark's kernels: CRC-32, quicksort, integer matrix multiply,
 * an open-addressing hash table and a linked list. Each returns a checksum
 * of everything it computed. See kernels.h for the rules this code keeps so
 * that the native build computes the same values as the guest.
 */
#include "kernels.h"

static uint32_t lcg_next(uint32_t *s) {
	*s = *s * 1664525u + 1013904223u;
	return *s;
}

/* ---- CRC-32, table driven */

static uint32_t crc_table[256];
static uint8_t crc_buf[CRC_BUF_BYTES];

static void crc_init_table(void) {
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n) {
	if (crc_table[1] == 0) crc_init_table();
	crc = ~crc;
	while (n-- > 0) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint32_t kernel_crc32(uint32_t seed) {
	uint32_t s = seed;
	for (uint32_t i = 0; i < CRC_BUF_BYTES; i++) crc_buf[i] = (uint8_t)(lcg_next(&s) >> 24);
	uint32_t sum = 0, crc = 0;
	for (uint32_t r = 0; r < CRC_REPS; r++) {
		crc = crc32_update(crc, crc_buf, CRC_BUF_BYTES);
		crc_buf[(r * 7919u) % CRC_BUF_BYTES] ^= (uint8_t)crc; /* every pass sees new data */
		sum = mix32(sum, crc);
	}
	return sum;
}

/* ---- Quicksort of signed 32-bit integers */

static int32_t sort_buf[SORT_N];

static void insertion_sort(int32_t *a, int32_t n) {
	for (int32_t i = 1; i < n; i++) {
		int32_t v = a[i], j = i - 1;
		while (j >= 0 && a[j] > v) {
			a[j + 1] = a[j];
			j--;
		}
		a[j + 1] = v;
	}
}

static void quicksort(int32_t *a, int32_t n) {
	while (n > 16) {
		/* Median of three as the pivot. */
		int32_t x = a[0], y = a[n / 2], z = a[n - 1];
		int32_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
		int32_t i = 0, j = n - 1;
		for (;;) {
			while (a[i] < pivot) i++;
			while (a[j] > pivot) j--;
			if (i >= j) break;
			int32_t t = a[i];
			a[i] = a[j];
			a[j] = t;
			i++;
			j--;
		}
		/* Recurse into the smaller part, loop on the larger: O(log n) stack. */
		int32_t left = j + 1;
		if (left < n - left) {
			quicksort(a, left);
			a += left;
			n -= left;
		} else {
			quicksort(a + left, n - left);
			n = left;
		}
	}
	insertion_sort(a, n);
}

static uint32_t kernel_qsort(uint32_t seed) {
	uint32_t s = seed, sum = 0;
	for (uint32_t r = 0; r < SORT_REPS; r++) {
		for (uint32_t i = 0; i < SORT_N; i++) sort_buf[i] = (int32_t)lcg_next(&s);
		quicksort(sort_buf, SORT_N);
		uint32_t unsorted = 0, h = 0;
		for (uint32_t i = 0; i < SORT_N; i++) {
			if (i > 0 && sort_buf[i - 1] > sort_buf[i]) unsorted++;
			h = h * 31u + (uint32_t)sort_buf[i];
		}
		sum = mix32(sum, h);
		sum = mix32(sum, unsorted);
	}
	return sum;
}

/* ---- Integer matrix multiply (wrapping 32-bit) */

static uint32_t mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N], mat_c[MAT_N][MAT_N];

static uint32_t kernel_matmul(uint32_t seed) {
	uint32_t s = seed, sum = 0;
	for (uint32_t i = 0; i < MAT_N; i++) {
		for (uint32_t j = 0; j < MAT_N; j++) {
			mat_a[i][j] = (lcg_next(&s) >> 20) - 2048u;
			mat_b[i][j] = (lcg_next(&s) >> 20) - 2048u;
		}
	}
	for (uint32_t r = 0; r < MAT_REPS; r++) {
		for (uint32_t i = 0; i < MAT_N; i++) {
			for (uint32_t j = 0; j < MAT_N; j++) {
				uint32_t acc = 0;
				for (uint32_t k = 0; k < MAT_N; k++) acc += mat_a[i][k] * mat_b[k][j];
				mat_c[i][j] = acc;
			}
		}
		uint32_t h = 0;
		for (uint32_t i = 0; i < MAT_N; i++)
			for (uint32_t j = 0; j < MAT_N; j++) h = h * 33u + mat_c[i][j];
		sum = mix32(sum, h);
		/* Feed part of the product back so each pass differs. */
		mat_a[r % MAT_N][(r * 7u) % MAT_N] ^= h;
		mat_b[(r * 5u) % MAT_N][r % MAT_N] += mat_c[r % MAT_N][(r * 3u) % MAT_N] >> 7;
	}
	return sum;
}

/* ---- Open-addressing hash table (linear probing, key 0 = empty) */

#define HASH_SLOTS (1u << HASH_BITS)
static uint32_t hash_keys[HASH_SLOTS], hash_vals[HASH_SLOTS];

static uint32_t hash_slot(uint32_t key) { return (key * 0x9E3779B1u) >> (32 - HASH_BITS); }

static void hash_put(uint32_t key, uint32_t val) {
	uint32_t i = hash_slot(key);
	while (hash_keys[i] != 0 && hash_keys[i] != key) i = (i + 1) & (HASH_SLOTS - 1);
	hash_keys[i] = key;
	hash_vals[i] += val;
}

/* Returns the slot holding key, or -1. */
static int32_t hash_find(uint32_t key) {
	uint32_t i = hash_slot(key);
	while (hash_keys[i] != 0) {
		if (hash_keys[i] == key) return (int32_t)i;
		i = (i + 1) & (HASH_SLOTS - 1);
	}
	return -1;
}

static uint32_t kernel_hash(uint32_t seed) {
	uint32_t s = seed, sum = 0;
	for (uint32_t r = 0; r < HASH_REPS; r++) {
		for (uint32_t i = 0; i < HASH_SLOTS; i++) hash_keys[i] = hash_vals[i] = 0;
		uint32_t start = s;
		/* Keys drawn from a small range so some repeat (an update, not an insert). */
		for (uint32_t i = 0; i < HASH_KEYS; i++) hash_put((lcg_next(&s) >> 8) | 1u, i);
		uint32_t hits = 0, vsum = 0;
		uint32_t again = start;
		for (uint32_t i = 0; i < HASH_KEYS; i++) {
			int32_t at = hash_find((lcg_next(&again) >> 8) | 1u);
			if (at >= 0) hits++, vsum += hash_vals[at] ^ (uint32_t)at;
		}
		for (uint32_t i = 0; i < HASH_KEYS; i++) { /* even keys are never inserted */
			if (hash_find((lcg_next(&s) >> 8) & ~1u) >= 0) hits += 1000;
		}
		sum = mix32(sum, hits);
		sum = mix32(sum, vsum);
	}
	return sum;
}

/* ---- Linked list: build in shuffled memory order, traverse, reverse, traverse */

struct node {
	struct node *next;
	uint32_t value;
};
static struct node list_pool[LIST_N];
static uint32_t list_order[LIST_N];

static uint32_t list_walk(const struct node *n) {
	uint32_t h = 0, pos = 0;
	for (; n; n = n->next) h += n->value * (++pos | 1u);
	return h ^ pos;
}

static uint32_t kernel_list(uint32_t seed) {
	uint32_t s = seed, sum = 0;
	for (uint32_t i = 0; i < LIST_N; i++) list_order[i] = i;
	for (uint32_t r = 0; r < LIST_REPS; r++) {
		/* A few swaps per pass keep the memory order changing. */
		for (uint32_t k = 0; k < LIST_N / 8; k++) {
			uint32_t i = lcg_next(&s) % LIST_N, j = lcg_next(&s) % LIST_N;
			uint32_t t = list_order[i];
			list_order[i] = list_order[j];
			list_order[j] = t;
		}
		struct node *head = 0;
		for (uint32_t i = 0; i < LIST_N; i++) {
			struct node *n = &list_pool[list_order[i]];
			n->value = lcg_next(&s) >> 16;
			n->next = head;
			head = n;
		}
		uint32_t forward = list_walk(head);
		struct node *prev = 0;
		while (head) {
			struct node *next = head->next;
			head->next = prev;
			prev = head;
			head = next;
		}
		uint32_t backward = list_walk(prev);
		sum = mix32(sum, forward);
		sum = mix32(sum, backward);
	}
	return sum;
}

const struct kernel bench_kernels[BENCH_KERNELS] = {
	{"crc32", kernel_crc32, 0x12345678u},
	{"qsort", kernel_qsort, 0x0BADC0DEu},
	{"matmul", kernel_matmul, 0xC0FFEE11u},
	{"hash", kernel_hash, 0xFEEDFACEu},
	{"list", kernel_list, 0x5EED1234u},
};

uint32_t bench_total(const uint32_t results[BENCH_KERNELS]) {
	uint32_t h = 0;
	for (int i = 0; i < BENCH_KERNELS; i++) h = mix32(h, results[i]);
	return h;
}
