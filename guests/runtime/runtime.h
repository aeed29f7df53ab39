/* The lockstep guest runtime: console output and the string functions. */
#ifndef LOCKSTEP_RUNTIME_H
#define LOCKSTEP_RUNTIME_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Set by crt0 from EAX and EBX at entry. */
extern uint32_t boot_magic;
extern uint32_t boot_info;

void console_putc(int c);
void console_puts(const char *s);   /* no newline added */
int vprintf(const char *fmt, va_list ap);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
