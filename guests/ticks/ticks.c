/*
 * ticks: timer and serial interrupts. Programs the PIT for `hz` interrupts a
 * second and counts them; every `every` ticks prints the count, the RDTSC
 * delta since the previous line and the RTC date and time. Echoes every byte
 * received on the UART (received by the IRQ 4 handler). Exits with status 0
 * after `ticks` ticks, or at once when it receives 'q'.
 *
 * Command line words (all optional): ticks=N (default 50), every=N (10),
 * hz=N (100).
 */
#include "runtime.h"

int main(void) {
	uint32_t limit = boot_arg_uint("ticks", 50);
	uint32_t every = boot_arg_uint("every", 10);
	uint32_t hz = boot_arg_uint("hz", 100);
	if (every == 0) every = 1;

	serial_enable_irq();
	uint32_t divisor = pit_init(hz);
	printf("ticks: PIT channel 0 at %u Hz (divisor %u), a line every %u ticks, exit after %u ticks or on 'q'\n",
	       hz, divisor, every, limit);

	uint64_t last_tsc = rdtsc();
	uint32_t next_line = every;
	uint32_t echoed = 0;
	sti();
	for (;;) {
		int c;
		while ((c = serial_getc()) >= 0) {
			serial_putc(c);
			echoed++;
			if (c == 'q') {
				printf("\nticks: 'q' received at tick %u\n", pit_ticks());
				return 0;
			}
		}

		uint32_t t = pit_ticks();
		if (t >= next_line) {
			uint64_t now = rdtsc();
			struct rtc_time rt;
			printf("tick %u: tsc +%llu, ", t, now - last_tsc);
			if (rtc_read(&rt) == 0)
				printf("rtc %04u-%02u-%02u %02u:%02u:%02u\n", rt.year, rt.month, rt.day, rt.hour, rt.minute, rt.second);
			else
				printf("rtc unreadable\n");
			last_tsc = now;
			while (next_line <= t) next_line += every;
		}
		if (t >= limit) {
			printf("ticks: %u ticks, done; %u bytes echoed, %u lost\n", t, echoed, serial_rx_dropped());
			return 0;
		}

		/* Sleep until the next interrupt unless one came in meanwhile. */
		cli();
		if (pit_ticks() == t && serial_rx_pending() == 0) sti_hlt();
		else sti();
	}
}
