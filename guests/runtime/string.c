/*
 * The memory and string functions gcc may call even in freestanding code
 * (structure copies and zeroing loops become memcpy/memset calls).
 *
 * memcpy, memmove and memset use the x86 string instructions: written as C
 * loops, gcc -O2 would recognise them as the very idioms it replaces with
 * calls to memcpy/memset, and they would call themselves.
 */
#include "runtime.h"

void *memcpy(void *dst, const void *src, size_t n) {
	void *d = dst;
	const void *s = src;
	size_t words = n >> 2;
	__asm__ volatile("rep movsl" : "+D"(d), "+S"(s), "+c"(words) : : "memory");
	size_t bytes = n & 3;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(bytes) : : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
	if ((uintptr_t)dst - (uintptr_t)src >= n) return memcpy(dst, src, n); /* no harmful overlap */
	/* dst lies inside [src, src+n): copy from the top down. */
	void *d = (unsigned char *)dst + n - 1;
	const void *s = (const unsigned char *)src + n - 1;
	__asm__ volatile("std; rep movsb; cld" : "+D"(d), "+S"(s), "+c"(n) : : "memory", "cc");
	return dst;
}

void *memset(void *dst, int c, size_t n) {
	void *d = dst;
	uint32_t w = (unsigned char)c * 0x01010101u;
	size_t words = n >> 2;
	__asm__ volatile("rep stosl" : "+D"(d), "+c"(words) : "a"(w) : "memory");
	size_t bytes = n & 3;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(bytes) : "a"(w) : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
	const unsigned char *p = a, *q = b;
	for (; n > 0; n--, p++, q++) {
		if (*p != *q) return *p < *q ? -1 : 1;
	}
	return 0;
}

size_t strlen(const char *s) {
	const char *p = s;
	while (*p) p++;
	return (size_t)(p - s);
}

int strcmp(const char *a, const char *b) {
	const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
	for (; *p && *p == *q; p++, q++) continue;
	return *p < *q ? -1 : *p > *q;
}

int strncmp(const char *a, const char *b, size_t n) {
	const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
	for (; n > 0; n--, p++, q++) {
		if (*p != *q) return *p < *q ? -1 : 1;
		if (!*p) break;
	}
	return 0;
}
