/*
 * The 8254 PIT's channel 0 as the tick source: mode 2 (rate generator), so
 * IRQ 0 fires every `divisor` input clocks (1.193182 MHz).
 */
#include "runtime.h"

#define PIT_CH0  0x40
#define PIT_CMD  0x43
/* Channel 0, access lobyte then hibyte, mode 2, binary counting. */
#define PIT_CH0_MODE2 0x34

static volatile uint32_t ticks;
static void (*tick_hook)(uint32_t);

static void on_tick(int irq) {
	(void)irq;
	uint32_t t = ++ticks;
	if (tick_hook) tick_hook(t);
}

uint32_t pit_init(uint32_t hz) {
	uint32_t divisor = hz ? (PIT_INPUT_HZ + hz / 2) / hz : 65536;
	if (divisor < 1) divisor = 1;
	if (divisor > 65536) divisor = 65536;
	uint32_t fl = irq_save();
	ticks = 0;
	outb(PIT_CMD, PIT_CH0_MODE2);
	outb(PIT_CH0, (uint8_t)divisor);          /* 65536 is written as 0 */
	outb(PIT_CH0, (uint8_t)(divisor >> 8));
	irq_install(0, on_tick);
	irq_restore(fl);
	return divisor;
}

uint32_t pit_ticks(void) { return ticks; }

void pit_set_hook(void (*hook)(uint32_t ticks)) { tick_hook = hook; }
