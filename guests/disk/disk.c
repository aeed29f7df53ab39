/*
 * disk: checks the ATA disk through the polling PIO driver (runtime/ata.c).
 *
 * Resets and identifies the disk, writes TEST_SECTORS sectors of a
 * deterministic pattern (an LCG seeded by each sector's LBA) from TEST_LBA on
 * in commands of 1 to 256 sectors, flushes, reads them back in other
 * chunks, compares every sector and prints checksums (FNV-1a) of what was
 * written and what was read. Then reads past the end of the disk, which must
 * fail with ERR, and checks the disk still works afterwards. Writes go
 * through the 16-bit data port and reads through the 32-bit one for every
 * other command.
 *
 * Exit status: 0 all good; 1 a mismatch or a wrong error response; 2 no
 * usable disk (none, too small, no LBA, or a driver error).
 *
 * Console: the runtime's choice plus the debug console (port 0xE9), unless
 * the command line says console=...
 *
 * A bare guest (RUNTIME_BARE): the driver polls, so it needs no IDT, PIC or
 * interrupts, and runs on any CPU that does port I/O.
 */
#include "runtime.h"
#include "ata.h"

RUNTIME_BARE;

#define TEST_LBA     64u
#define TEST_SECTORS 300u

static const unsigned write_chunks[] = {1, 3, 8, 32, 256};
static const unsigned read_chunks[] = {256, 37, 7};

static uint8_t wbuf[ATA_MAX_COUNT * ATA_SECTOR_SIZE];
static uint8_t rbuf[ATA_MAX_COUNT * ATA_SECTOR_SIZE];
static uint8_t expect[ATA_SECTOR_SIZE];

/* The content of sector `lba`: 128 words of an LCG seeded from the LBA. */
static void pattern(uint32_t lba, uint8_t *out) {
	uint32_t x = lba * 2654435761u ^ 0x6c6f636bu;
	for (int i = 0; i < ATA_SECTOR_SIZE; i += 4) {
		x = x * 1664525u + 1013904223u;
		uint32_t v = x ^ (x >> 16);
		out[i] = (uint8_t)v;
		out[i + 1] = (uint8_t)(v >> 8);
		out[i + 2] = (uint8_t)(v >> 16);
		out[i + 3] = (uint8_t)(v >> 24);
	}
}

#define FNV_BASIS 0x811c9dc5u
static uint32_t fnv1a(uint32_t h, const uint8_t *p, uint32_t n) {
	for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
	return h;
}

static int driver_failed(const char *what, int r) {
	printf("%s: %s (status %02x, error %02x)\n", what, ata_strerror(r), ata_last_status(), ata_last_error());
	printf("FAIL\n");
	return 2;
}

int main(void) {
	if (boot_arg("console", 0, 0) < 0) console_set_sink(console_sink() | CONSOLE_DEBUGCON);
	printf("disk: ATA PIO test, %u sectors from LBA %u\n", TEST_SECTORS, TEST_LBA);

	int r = ata_init();
	if (r) return driver_failed("reset", r);

	static struct ata_identity id;
	if ((r = ata_identify(&id))) return driver_failed("identify", r);
	printf("identify: model \"%s\" serial \"%s\" firmware \"%s\"\n", id.model, id.serial, id.firmware);
	printf("identify: LBA %s, checksum %s\n", id.lba ? "supported" : "NOT supported",
	       id.checksum > 0 ? "ok" : id.checksum == 0 ? "not given" : "WRONG");
	printf("sectors: %u (%u KiB)\n", id.sectors, id.sectors / 2);
	if (!id.lba || id.checksum < 0) {
		printf("FAIL\n");
		return 2;
	}
	if (id.sectors < TEST_LBA + TEST_SECTORS) {
		printf("the disk is too small: %u sectors needed\nFAIL\n", TEST_LBA + TEST_SECTORS);
		return 2;
	}

	/* Write. */
	uint32_t wsum = FNV_BASIS, lba = TEST_LBA;
	for (unsigned c = 0; c < sizeof write_chunks / sizeof write_chunks[0]; c++) {
		unsigned n = write_chunks[c];
		for (unsigned s = 0; s < n; s++) pattern(lba + s, wbuf + s * ATA_SECTOR_SIZE);
		ata_set_pio32(c & 1);
		if ((r = ata_write(lba, n, wbuf))) return driver_failed("write", r);
		uint32_t sum = fnv1a(FNV_BASIS, wbuf, n * ATA_SECTOR_SIZE);
		wsum = fnv1a(wsum, wbuf, n * ATA_SECTOR_SIZE);
		printf("write %3u sectors at %3u (%s-bit): %08x\n", n, lba, (c & 1) ? "32" : "16", sum);
		lba += n;
	}
	if ((r = ata_flush())) return driver_failed("flush", r);
	printf("flush: ok\n");

	/* Read back and compare. */
	uint32_t rsum = FNV_BASIS, bad = 0;
	lba = TEST_LBA;
	for (unsigned c = 0; c < sizeof read_chunks / sizeof read_chunks[0]; c++) {
		unsigned n = read_chunks[c];
		ata_set_pio32(!(c & 1));
		memset(rbuf, 0xEE, n * ATA_SECTOR_SIZE);
		if ((r = ata_read(lba, n, rbuf))) return driver_failed("read", r);
		uint32_t sum = fnv1a(FNV_BASIS, rbuf, n * ATA_SECTOR_SIZE);
		rsum = fnv1a(rsum, rbuf, n * ATA_SECTOR_SIZE);
		unsigned chunk_bad = 0;
		for (unsigned s = 0; s < n; s++) {
			pattern(lba + s, expect);
			if (memcmp(expect, rbuf + s * ATA_SECTOR_SIZE, ATA_SECTOR_SIZE) != 0) {
				if (bad + chunk_bad < 5) printf("  sector %u differs\n", lba + s);
				chunk_bad++;
			}
		}
		printf("read  %3u sectors at %3u (%s-bit): %08x, %u bad\n", n, lba, (c & 1) ? "16" : "32", sum, chunk_bad);
		bad += chunk_bad;
		lba += n;
	}
	printf("checksum written %08x\n", wsum);
	printf("checksum read    %08x\n", rsum);

	/* Past the end: the device must refuse with ERR (ABRT or IDNF). */
	int failed = 0;
	r = ata_read(id.sectors, 1, rbuf);
	uint8_t err = ata_last_error();
	int refused = r == ATA_EDEVICE && (err & 0x14);
	printf("read past the end (LBA %u): %s, status %02x error %02x: %s\n", id.sectors,
	       ata_strerror(r), ata_last_status(), err, refused ? "refused as it should be" : "WRONG");
	if (!refused) failed = 1;
	/* And the disk works after the error. */
	ata_set_pio32(0);
	if ((r = ata_read(TEST_LBA + TEST_SECTORS - 1, 1, rbuf))) return driver_failed("read after the error", r);
	pattern(TEST_LBA + TEST_SECTORS - 1, expect);
	int again = memcmp(expect, rbuf, ATA_SECTOR_SIZE) == 0;
	printf("read after the error: %s\n", again ? "ok" : "WRONG DATA");
	if (!again) failed = 1;

	if (bad != 0 || wsum != rsum) {
		printf("%u of %u sectors differ\n", bad, TEST_SECTORS);
		failed = 1;
	}
	printf(failed ? "FAIL\n" : "PASS\n");
	return failed;
}
