/*
 * diskregs: a register-level probe of the ATA disk on the primary channel.
 * It drives the device directly through its ports (no driver) through a
 * fixed sequence of commands and prints the task-file registers after each
 * step, once BSY has cleared. The output depends only on how the device
 * responds, not on how long it takes, so the same image run on QEMU and on
 * lockstep must print the same lines: tests/system/disk.test.ts compares
 * them. Run it with a 1M (2048-sector) disk image. Exit status 0.
 *
 * Only behaviour the lockstep disk means to share with QEMU's IDE disk is
 * probed; docs/disk.md lists where they differ (CHS addressing, the absent
 * slave's error and LBA registers, 32-bit accesses to 8-bit registers,
 * transfers that run off the end of the disk).
 */
#include "runtime.h"

RUNTIME_BARE;

#define DATA    0x1F0
#define ERROR   0x1F1
#define COUNT   0x1F2
#define LBA0    0x1F3
#define LBA1    0x1F4
#define LBA2    0x1F5
#define DEVICE  0x1F6
#define STATUS  0x1F7
#define ALT     0x3F6
#define CONTROL 0x3F6

static void dump(const char *what) {
	uint8_t alt = inb(ALT), err = inb(ERROR), cnt = inb(COUNT), l0 = inb(LBA0), l1 = inb(LBA1), l2 = inb(LBA2), dev = inb(DEVICE);
	uint8_t st = inb(STATUS);
	printf("%-28s st=%02x alt=%02x err=%02x cnt=%02x lba=%02x %02x %02x dev=%02x\n", what, st, alt, err, cnt, l0, l1, l2, dev);
}

static void wait_not_busy(void) {
	for (uint32_t n = 0; n < 50000000u; n++)
		if (!(inb(ALT) & 0x80)) return;
	printf("BSY stuck\n");
}

static void issue(uint8_t dev, uint8_t count, uint32_t lba, uint8_t cmd) {
	outb(DEVICE, dev | ((lba >> 24) & 0x0F));
	outb(COUNT, count);
	outb(LBA0, (uint8_t)lba);
	outb(LBA1, (uint8_t)(lba >> 8));
	outb(LBA2, (uint8_t)(lba >> 16));
	outb(CONTROL, 0x02);  /* nIEN: polled */
	outb(STATUS, cmd);
	wait_not_busy();
}

static uint32_t fnv1a(uint32_t h, uint8_t b) { return (h ^ b) * 16777619u; }

/* Reads one sector's worth of data-port accesses of `size` bytes, hashing what comes back. */
static uint32_t read_sector(int size) {
	uint32_t h = 0x811c9dc5u;
	for (int i = 0; i < 512; i += size == 1 ? 2 : size) {
		uint32_t v = size == 4 ? inl(DATA) : size == 2 ? inw(DATA) : inb(DATA);
		for (int k = 0; k < (size == 4 ? 4 : 2); k++) h = fnv1a(h, (uint8_t)(v >> (8 * k)));
	}
	return h;
}

static void write_sector(int size, uint32_t seed) {
	for (int i = 0; i < 512; i += size) {
		seed = seed * 1664525u + 1013904223u;
		if (size == 4) outl(DATA, seed);
		else outw(DATA, (uint16_t)(seed >> 8));
	}
}

int main(void) {
	if (boot_arg("console", 0, 0) < 0) console_set_sink(console_sink() | CONSOLE_DEBUGCON);
	printf("diskregs: ATA register probe\n");

	outb(DEVICE, 0xA0);
	outb(CONTROL, 0x06);
	for (int i = 0; i < 20; i++) (void)inb(ALT);
	outb(CONTROL, 0x02);
	wait_not_busy();
	dump("after reset");

	outb(DEVICE, 0xB0);
	printf("%-28s st=%02x alt=%02x\n", "slave selected", inb(STATUS), inb(ALT));
	outb(COUNT, 0x55);
	outb(LBA0, 0xAA);
	outb(STATUS, 0xEC);  /* no device 1: ignored */
	printf("%-28s st=%02x cnt=%02x lba0=%02x dev=%02x\n", "slave, after writes", inb(STATUS), inb(COUNT), inb(LBA0), inb(DEVICE));
	outb(DEVICE, 0x12);
	printf("%-28s dev=%02x\n", "device register 12h", inb(DEVICE));
	outb(DEVICE, 0xE0);
	dump("master selected");

	printf("%-28s w=%04x l=%08x b=%02x\n", "data port without DRQ", inw(DATA), inl(DATA), inb(DATA));
	outw(COUNT, 0x3456);
	printf("%-28s cnt=%02x lba0=%02x w=%04x st16=%04x\n", "16-bit register access", inb(COUNT), inb(LBA0), inw(COUNT), inw(STATUS));

	issue(0xE0, 0, 0, 0xEC);
	dump("identify: data ready");
	uint16_t id[256];
	for (int i = 0; i < 256; i++) id[i] = inw(DATA);
	dump("identify: data read");
	printf("identify: word0=%04x lba=%u sectors=%u\n", id[0], (id[49] >> 9) & 1, id[60] | ((uint32_t)id[61] << 16));

	issue(0xE0, 3, 10, 0x30);
	dump("write 3 at 10: DRQ");
	for (int s = 0; s < 3; s++) {
		write_sector(s == 1 ? 4 : 2, 1000u + (uint32_t)s);
		wait_not_busy();
		dump(s < 2 ? "write: sector done, DRQ" : "write: last sector done");
	}

	issue(0xE0, 3, 10, 0x20);
	dump("read 3 at 10: sector 0");
	printf("  data %08x (16-bit)\n", read_sector(2));
	wait_not_busy();
	dump("read: sector 1");
	outb(COUNT, 0x77);     /* ignored: DRQ */
	outb(STATUS, 0xEC);    /* ignored: DRQ */
	printf("  data %08x (8-bit reads)\n", read_sector(1));
	wait_not_busy();
	dump("read: sector 2");
	printf("  data %08x (32-bit)\n", read_sector(4));
	dump("read: done");

	issue(0xE0, 0, 5, 0x20);
	uint32_t h = 0;
	for (int s = 0; s < 256; s++) {
		wait_not_busy();
		if (!(inb(ALT) & 0x08)) {
			printf("no DRQ at sector %d\n", s);
			break;
		}
		h ^= read_sector(4) + (uint32_t)s;
	}
	wait_not_busy();
	dump("read 256 (count 0) at 5");
	printf("  data %08x\n", h);

	static const uint8_t bad[] = {0xFF, 0x00, 0xA1};
	for (unsigned i = 0; i < sizeof bad; i++) {
		char what[32] = "command xx: aborted";
		const char *hex = "0123456789abcdef";
		what[8] = hex[bad[i] >> 4];
		what[9] = hex[bad[i] & 15];
		issue(0xE0, 1, 0, bad[i]);
		dump(what);
	}
	issue(0xE0, 1, 0, 0xE7);
	dump("flush after an abort");
	issue(0xE0, 1, 2048, 0x20);
	dump("read at 2048 (the end)");
	issue(0xE0, 1, 0x0FFFFFFF, 0x20);
	dump("read at 0FFFFFFFh");
	issue(0xE0, 1, 2047, 0x20);
	dump("read at 2047 (last sector)");
	printf("  data %08x\n", read_sector(2));

	issue(0xE0, 1, 20, 0x30);
	for (int i = 0; i < 64; i++) outb(DATA, (uint8_t)i);  /* byte writes: ignored */
	dump("write: after byte writes");
	write_sector(2, 7);
	wait_not_busy();
	dump("write: after 256 words");
	issue(0xE0, 1, 20, 0x20);
	printf("  data %08x\n", read_sector(2));

	issue(0xE0, 2, 30, 0x20);
	for (int i = 0; i < 100; i++) (void)inw(DATA);
	outb(CONTROL, 0x06);
	for (int i = 0; i < 20; i++) (void)inb(ALT);
	outb(CONTROL, 0x02);
	wait_not_busy();
	dump("reset during a read");
	printf("%-28s w=%04x\n", "data port after the reset", inw(DATA));
	printf("done\n");
	return 0;
}
