/*
 * Console output for lockstep guests: each byte goes to the selected sinks,
 * the debug console port (0xE9) and/or the UART (serial.c). printf
 * understands %d %i %u %x %X %p %s %c %% with an optional '-' (left-justify)
 * or '0' (zero-pad) flag, a field width, an ignored 'l' length modifier (int
 * and long are both 32 bits here) and 'll' for 64-bit integers.
 */
#include "runtime.h"

static unsigned sinks = CONSOLE_DEBUGCON;

void console_set_sink(unsigned s) { sinks = s & (CONSOLE_DEBUGCON | CONSOLE_SERIAL); }
unsigned console_sink(void) { return sinks; }

void console_putc(int c) {
	if (sinks & CONSOLE_DEBUGCON) outb(DEBUGCON_PORT, (uint8_t)c);
	if (sinks & CONSOLE_SERIAL) serial_putc(c);
}

void console_puts(const char *s) {
	while (*s) console_putc(*s++);
}

/* Writes `len` bytes of s in a field of `width`, padded with `pad`. */
static int emit_field(const char *s, int len, int width, int left, char pad) {
	int n = 0;
	int fill = width > len ? width - len : 0;
	/* Zero padding goes after a sign: "-0042", not "00-42". */
	if (!left && pad == '0' && len > 0 && s[0] == '-') {
		console_putc('-');
		s++, len--, n++;
	}
	if (!left) for (; fill > 0; fill--, n++) console_putc(pad);
	for (int i = 0; i < len; i++, n++) console_putc(s[i]);
	for (; fill > 0; fill--, n++) console_putc(' ');
	return n;
}

/* Formats v in base 10 or 16 into the end of buf; returns the first digit. */
static char *format_uint(char *end, uint32_t v, unsigned base, int upper) {
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;
	do {
		*--p = digits[v % base];
		v /= base;
	} while (v != 0);
	return p;
}

/* The same for 64-bit values (kept apart so 32-bit printing stays cheap). */
static char *format_uint64(char *end, uint64_t v, unsigned base, int upper) {
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;
	do {
		*--p = digits[v % base];
		v /= base;
	} while (v != 0);
	return p;
}

int vprintf(const char *fmt, va_list ap) {
	int n = 0;
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			console_putc(*fmt);
			n++;
			continue;
		}
		fmt++;
		int left = 0;
		char pad = ' ';
		for (;; fmt++) {
			if (*fmt == '-') left = 1;
			else if (*fmt == '0') pad = '0';
			else break;
		}
		if (left) pad = ' ';
		int width = 0;
		while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
		int longs = 0;
		while (*fmt == 'l') fmt++, longs++;

		char buf[24];
		char *end = buf + sizeof buf;
		char *p;
		switch (*fmt) {
		case 'd':
		case 'i': {
			if (longs >= 2) {
				int64_t v = va_arg(ap, int64_t);
				p = format_uint64(end, v < 0 ? 0u - (uint64_t)v : (uint64_t)v, 10, 0);
				if (v < 0) *--p = '-';
				n += emit_field(p, (int)(end - p), width, left, pad);
				break;
			}
			int32_t v = va_arg(ap, int32_t);
			p = format_uint(end, v < 0 ? 0u - (uint32_t)v : (uint32_t)v, 10, 0);
			if (v < 0) *--p = '-';
			n += emit_field(p, (int)(end - p), width, left, pad);
			break;
		}
		case 'u':
			if (longs >= 2) p = format_uint64(end, va_arg(ap, uint64_t), 10, 0);
			else p = format_uint(end, va_arg(ap, uint32_t), 10, 0);
			n += emit_field(p, (int)(end - p), width, left, pad);
			break;
		case 'x':
		case 'X':
			if (longs >= 2) p = format_uint64(end, va_arg(ap, uint64_t), 16, *fmt == 'X');
			else p = format_uint(end, va_arg(ap, uint32_t), 16, *fmt == 'X');
			n += emit_field(p, (int)(end - p), width, left, pad);
			break;
		case 'p':
			console_puts("0x");
			p = format_uint(end, (uint32_t)(uintptr_t)va_arg(ap, void *), 16, 0);
			n += 2 + emit_field(p, (int)(end - p), 8, 0, '0');
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s) s = "(null)";
			n += emit_field(s, (int)strlen(s), width, left, ' ');
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);
			n += emit_field(&c, 1, width, left, ' ');
			break;
		}
		case '%':
			console_putc('%');
			n++;
			break;
		case '\0':
			return n; /* a lone '%' at the end */
		default: /* unknown conversion: print it as written */
			console_putc('%');
			console_putc(*fmt);
			n += 2;
			break;
		}
	}
	return n;
}

int printf(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
