/*
 * The 8259A pair: master at ports 0x20/0x21, slave at 0xA0/0xA1 on the
 * master's IRQ 2. pic_init remaps them to vectors 0x20-0x2F (away from the
 * CPU exceptions the BIOS-era 0x08-0x0F overlaps) and masks every line but
 * the cascade; irq_install unmasks the lines it is given.
 */
#include "runtime.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1

#define ICW1_INIT 0x10   /* initialization, edge triggered, cascade mode */
#define ICW1_ICW4 0x01   /* ICW4 follows */
#define ICW4_8086 0x01   /* 8086/88 mode, normal EOI */
#define OCW2_EOI  0x20   /* non-specific EOI */
#define OCW3_ISR  0x0B   /* next command-port read returns the ISR */

/* Mask bits as last written (bit n = IRQ n; the slave's in the high byte). */
static uint16_t mask = 0xFFFF;

static void write_mask(void) {
	outb(PIC1_DATA, (uint8_t)mask);
	outb(PIC2_DATA, (uint8_t)(mask >> 8));
}

void pic_init(void) {
	outb(PIC1_CMD, ICW1_INIT | ICW1_ICW4);
	outb(PIC2_CMD, ICW1_INIT | ICW1_ICW4);
	outb(PIC1_DATA, IRQ_BASE);       /* ICW2: vector base */
	outb(PIC2_DATA, IRQ_BASE + 8);
	outb(PIC1_DATA, 1 << 2);         /* ICW3: slave on IRQ 2 */
	outb(PIC2_DATA, 2);              /* ICW3: slave identity 2 */
	outb(PIC1_DATA, ICW4_8086);
	outb(PIC2_DATA, ICW4_8086);
	mask = (uint16_t)~(1u << 2);     /* everything masked but the cascade */
	write_mask();
}

void pic_mask(int irq) {
	if (irq < 0 || irq > 15) return;
	mask |= (uint16_t)(1u << irq);
	write_mask();
}

void pic_unmask(int irq) {
	if (irq < 0 || irq > 15) return;
	mask &= (uint16_t)~(1u << irq);
	write_mask();
}

void pic_eoi(int irq) {
	if (irq >= 8) outb(PIC2_CMD, OCW2_EOI);
	outb(PIC1_CMD, OCW2_EOI);
}

uint16_t pic_read_isr(void) {
	outb(PIC1_CMD, OCW3_ISR);
	outb(PIC2_CMD, OCW3_ISR);
	return (uint16_t)(inb(PIC1_CMD) | (inb(PIC2_CMD) << 8));
}
