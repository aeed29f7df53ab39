/*
 * Start-up after crt0, the Multiboot information, and exit.
 */
#include "runtime.h"

static char cmdline[BOOT_CMDLINE_MAX];

const struct multiboot_info *multiboot_info(void) {
	if (boot_magic != MULTIBOOT_BOOTLOADER_MAGIC || boot_info == 0) return 0;
	return (const struct multiboot_info *)boot_info;
}

int boot_memory(uint32_t *lower_kib, uint32_t *upper_kib) {
	const struct multiboot_info *mbi = multiboot_info();
	if (!mbi || !(mbi->flags & MULTIBOOT_INFO_MEMORY)) return 0;
	*lower_kib = mbi->mem_lower;
	*upper_kib = mbi->mem_upper;
	return 1;
}

const char *boot_cmdline(void) { return cmdline; }

/* The value of `key` in the command line, and its length; NULL if absent. */
static const char *find_arg(const char *key, size_t *len) {
	size_t klen = strlen(key);
	const char *p = cmdline;
	while (*p) {
		while (*p == ' ') p++;
		const char *word = p;
		while (*p && *p != ' ') p++;
		if ((size_t)(p - word) > klen && strncmp(word, key, klen) == 0 && word[klen] == '=') {
			*len = (size_t)(p - word) - klen - 1;
			return word + klen + 1;
		}
	}
	return 0;
}

int boot_arg(const char *key, char *buf, size_t size) {
	size_t len;
	const char *v = find_arg(key, &len);
	if (!v) return -1;
	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(buf, v, n);
		buf[n] = 0;
	}
	return (int)len;
}

uint32_t boot_arg_uint(const char *key, uint32_t dflt) {
	size_t len;
	const char *v = find_arg(key, &len);
	if (!v || len == 0) return dflt;
	uint32_t base = 10, n = 0;
	if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) base = 16, v += 2, len -= 2;
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		uint32_t d;
		if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
		else return dflt;
		n = n * base + d;
	}
	return n;
}

/* Called by crt0 with interrupts off, before main. */
void runtime_start(void) {
	const struct multiboot_info *mbi = multiboot_info();
	if (mbi && (mbi->flags & MULTIBOOT_INFO_CMDLINE) && mbi->cmdline) {
		const char *s = (const char *)mbi->cmdline;
		size_t n = 0;
		while (n < sizeof cmdline - 1 && s[n]) n++;
		memcpy(cmdline, s, n);
		cmdline[n] = 0;
	}

	if (&runtime_bare == 0) {   /* weak: defined only by RUNTIME_BARE guests */
		cpu_init();
		pic_init();
	}

	serial_init();
	unsigned sink = serial_present() ? CONSOLE_SERIAL : CONSOLE_DEBUGCON;
	char want[16];
	if (boot_arg("console", want, sizeof want) >= 0) {
		if (strcmp(want, "serial") == 0) sink = CONSOLE_SERIAL;
		else if (strcmp(want, "debugcon") == 0) sink = CONSOLE_DEBUGCON;
		else if (strcmp(want, "both") == 0) sink = CONSOLE_SERIAL | CONSOLE_DEBUGCON;
	}
	console_set_sink(sink);
}

void exit(int status) {
	serial_flush();
	cli();
	outl(EXIT_PORT, (uint32_t)status);
	for (;;) hlt();   /* no exit device: stop here, interrupts off */
}

void panic(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	console_puts("\npanic: ");
	vprintf(fmt, ap);
	console_putc('\n');
	va_end(ap);
	exit(EXIT_PANIC);
}
