/*
 * The lockstep guest runtime. docs/guests.md describes it in full.
 *
 * crt0 (crt0.S) enters in flat 32-bit protected mode from a Multiboot loader,
 * then runtime_start() (boot.c) loads our GDT and IDT, remaps and masks the
 * PICs, probes the UART and picks the console, and main() runs with
 * interrupts off. main's return value is the exit status (exit()).
 */
#ifndef LOCKSTEP_RUNTIME_H
#define LOCKSTEP_RUNTIME_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "io.h"
#include "multiboot.h"

/* ---- Boot information (boot.c) */

/* EAX and EBX at entry, saved by crt0. */
extern uint32_t boot_magic;
extern uint32_t boot_info;

/* The Multiboot information structure, or NULL when the loader passed none
 * (EAX was not 0x2BADB002 or EBX was 0). */
const struct multiboot_info *multiboot_info(void);
/* mem_lower and mem_upper in KiB; returns 0 (and leaves them) if not reported. */
int boot_memory(uint32_t *lower_kib, uint32_t *upper_kib);
/* The command line, copied at start-up (at most BOOT_CMDLINE_MAX - 1 bytes);
 * "" when there is none. */
#define BOOT_CMDLINE_MAX 512
const char *boot_cmdline(void);
/* The value of the first "key=value" word of the command line, copied into
 * buf (NUL-terminated, truncated to size - 1). Returns its full length, or -1
 * if the key is absent. Words are separated by spaces. */
int boot_arg(const char *key, char *buf, size_t size);
/* key=N as a number (decimal, or hex with 0x); dflt if absent or malformed. */
uint32_t boot_arg_uint(const char *key, uint32_t dflt);

/*
 * A guest that defines RUNTIME_BARE (at file scope, once) keeps the loader's
 * segments and gets no IDT and no PIC set-up: it runs on a CPU that has no
 * descriptor tables or interrupts, and must not use irq_install, the PIT or
 * serial_enable_irq. The benchmark guest does this.
 */
#define RUNTIME_BARE const int runtime_bare = 1
extern const int runtime_bare __attribute__((weak));
/* Whether our GDT and IDT are loaded (0 in a bare guest). */
int cpu_tables_loaded(void);

/* ---- Exit (boot.c) */

/* Flushes the UART and writes `status` to port 0xF4. Never returns: without an
 * exit device it halts with interrupts off. QEMU's isa-debug-exit turns
 * status into the process exit code (status << 1) | 1. */
void exit(int status) __attribute__((noreturn));
/* Prints "panic: ..." and exits with EXIT_PANIC. */
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Exit statuses the runtime itself uses (guests' own statuses stay below 0x40). */
#define EXIT_EXCEPTION_BASE     0x40   /* + vector: CPU exception 0-31 */
#define EXIT_UNEXPECTED_VECTOR  0x60   /* an interrupt on a vector nothing handles */
#define EXIT_PANIC              0x61

/* ---- Descriptor tables and interrupts (cpu.c, isr.S) */

#define GDT_CODE_SEL 0x08   /* flat 4 GiB ring-0 code */
#define GDT_DATA_SEL 0x10   /* flat 4 GiB ring-0 data */
#define IRQ_BASE     0x20   /* IRQ n arrives on vector IRQ_BASE + n */

/* What the interrupt stubs push, lowest address first: PUSHA's registers, the
 * vector, the error code (0 when the CPU pushes none), then the CPU's frame. */
struct isr_frame {
	uint32_t edi, esi, ebp, esp_at_pusha, ebx, edx, ecx, eax;
	uint32_t vector, error_code;
	uint32_t eip, cs, eflags;
};

/* Loads the GDT (reloading every segment register) and the IDT. Called by
 * runtime_start unless the guest is bare. */
void cpu_init(void);

typedef void (*irq_handler_t)(int irq);
/* Calls handler(irq) on every interrupt of IRQ line irq (0-15) and unmasks
 * the line. Handlers run with interrupts off; the runtime sends the EOI after
 * the handler returns. Returns 0, or -1 for a bad line. */
int irq_install(int irq, irq_handler_t handler);
/* Masks the line and forgets its handler. */
void irq_uninstall(int irq);
/* Interrupts counted per line (spurious IRQ 7/15 not included), and spurious ones. */
uint32_t irq_count(int irq);
uint32_t irq_spurious_count(void);

/* ---- 8259A PIC pair (pic.c) */

/* ICW1-4: master at vectors 0x20-0x27, slave at 0x28-0x2F, cascade on IRQ 2,
 * 8086 mode, normal EOI. Every line masked except the cascade. */
void pic_init(void);
void pic_mask(int irq);
void pic_unmask(int irq);
/* Non-specific EOI to the slave (for IRQ 8-15) and the master. */
void pic_eoi(int irq);
/* In-service register of both PICs (slave in the high byte), via OCW3. */
uint16_t pic_read_isr(void);

/* ---- 8254 PIT (pit.c) */

#define PIT_INPUT_HZ 1193182u
/* Programs channel 0 in mode 2 (rate generator) for `hz` interrupts per second
 * (the divisor is rounded to the nearest, clamped to 1..65536), installs the
 * IRQ 0 handler that counts ticks, and returns the divisor. */
uint32_t pit_init(uint32_t hz);
/* Timer interrupts since pit_init. */
uint32_t pit_ticks(void);
/* Called from the IRQ 0 handler after each tick, with the new count (NULL: none). */
void pit_set_hook(void (*hook)(uint32_t ticks));

/* ---- 16550A UART, COM1 (serial.c) */

#define COM1_PORT 0x3F8
#define COM1_IRQ  4
/* Probes COM1 (its scratch register must read back) and sets it to 115200
 * baud, 8N1, FIFOs on, no interrupts. Returns whether it is present; when it
 * is not, output is dropped and input reads as empty. runtime_start calls it. */
int serial_init(void);
int serial_present(void);
/* Switches to interrupt-driven I/O on IRQ 4: received bytes go into a 256-byte
 * ring, transmitted bytes through a 1 KiB ring refilled from the THRE
 * interrupt. Needs the IDT (not in bare guests). With interrupts off, output
 * falls back to polling, so printing from a handler or with cli is safe. */
void serial_enable_irq(void);
void serial_putc(int c);
/* The next received byte, or -1 if none is waiting (never blocks). */
int serial_getc(void);
/* Bytes waiting to be read by serial_getc. */
int serial_rx_pending(void);
/* Bytes lost because the RX ring was full, and overrun errors the UART reported. */
uint32_t serial_rx_dropped(void);
/* Waits until every queued byte has left the transmitter. */
void serial_flush(void);

/* ---- CMOS RTC (rtc.c) */

struct rtc_time {
	uint16_t year;   /* 4 digits: 2000 + yy for yy < 70, 1900 + yy otherwise */
	uint8_t month, day, hour, minute, second;   /* hour 0-23 */
};
/* Reads the date and time: waits for no update in progress, reads twice until
 * two reads agree, decodes BCD or binary and 12- or 24-hour per status
 * register B. Returns 0, or -1 if the RTC never left update-in-progress. */
int rtc_read(struct rtc_time *t);

/* ---- Console (console.c) */

#define CONSOLE_DEBUGCON 1u   /* port 0xE9 */
#define CONSOLE_SERIAL   2u   /* COM1 (dropped if there is no UART) */
/* Where console output goes: a set of CONSOLE_* bits. runtime_start picks
 * CONSOLE_SERIAL if the UART is present, else CONSOLE_DEBUGCON; the command
 * line word console=serial|debugcon|both overrides that. */
void console_set_sink(unsigned sinks);
unsigned console_sink(void);
void console_putc(int c);
void console_puts(const char *s);   /* no newline added */
/* %d %i %u %x %X %p %s %c %%, flags '-' and '0', a field width, 'l' ignored
 * and 'll' for 64-bit d/i/u/x/X. */
int vprintf(const char *fmt, va_list ap);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- Memory and strings (string.c) */

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
