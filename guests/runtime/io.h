/* Port I/O and small CPU helpers for lockstep guests. */
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

/* Interrupt flag. The "memory" clobbers keep the compiler from moving memory
 * accesses across them (they bracket critical sections). */
#define EFLAGS_IF 0x200u

static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" : : : "memory"); }

/* Enables interrupts and halts until the next one, with no window between the
 * two: STI takes effect only after the following instruction, so an interrupt
 * that is already pending wakes the HLT instead of being taken before it.
 * Call it with interrupts off, after checking there is nothing to do. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }

static inline uint32_t read_eflags(void) {
	uint32_t f;
	__asm__ volatile("pushfl; popl %0" : "=r"(f) : : "memory");
	return f;
}

/* Disables interrupts and returns the previous EFLAGS for irq_restore(). */
static inline uint32_t irq_save(void) {
	uint32_t f;
	__asm__ volatile("pushfl; popl %0; cli" : "=r"(f) : : "memory");
	return f;
}
static inline void irq_restore(uint32_t flags) {
	if (flags & EFLAGS_IF) sti();
}
static inline int interrupts_enabled(void) { return (read_eflags() & EFLAGS_IF) != 0; }

/* The time stamp counter. Under lockstep it counts retired instructions;
 * under QEMU/TCG it follows the host clock. */
static inline uint64_t rdtsc(void) {
	uint64_t v;
	__asm__ volatile("rdtsc" : "=A"(v));
	return v;
}

#endif
