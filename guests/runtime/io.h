/* Port I/O for lockstep guests. */
#ifndef LOCKSTEP_IO_H
#define LOCKSTEP_IO_H

#include <stdint.h>

#define DEBUGCON_PORT 0xE9   /* byte-wide debug console (Bochs/QEMU debugcon) */
#define EXIT_PORT     0xF4   /* isa-debug-exit: the value written is the exit status */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

static inline uint8_t inb(uint16_t port) {
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port) {
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port) {
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Ends the run with `status` (does not return). */
static inline __attribute__((noreturn)) void guest_exit(uint32_t status) {
	outl(EXIT_PORT, status);
	for (;;) __asm__ volatile("cli; hlt");
}

#endif
