/*
 * Polling ATA PIO driver: see ata.h. The protocol, per command:
 *
 *   wait until BSY is clear (and DRQ too: no transfer left half done)
 *   write the device register (LBA mode, master, LBA bits 27-24), the
 *   sector count and the LBA bytes, then the command
 *   data-in (IDENTIFY, READ): per sector, wait for BSY clear, check ERR/DF,
 *     expect DRQ, read 256 words
 *   data-out (WRITE): per sector, wait for BSY clear, check ERR/DF, expect
 *     DRQ, write 256 words; after the last, wait for BSY clear
 *   no data (FLUSH): wait for BSY clear, check ERR/DF
 *
 * Waits read the alternate status register (no side effects) and the final
 * check reads the status register, which also acknowledges the interrupt
 * the device would raise if nIEN were clear.
 */
#include "ata.h"
#include "io.h"

#define ATA_BASE      0x1F0
#define ATA_DATA      (ATA_BASE + 0)
#define ATA_ERROR     (ATA_BASE + 1)
#define ATA_COUNT     (ATA_BASE + 2)
#define ATA_LBA_LOW   (ATA_BASE + 3)
#define ATA_LBA_MID   (ATA_BASE + 4)
#define ATA_LBA_HIGH  (ATA_BASE + 5)
#define ATA_DEVICE    (ATA_BASE + 6)
#define ATA_STATUS    (ATA_BASE + 7)
#define ATA_COMMAND   (ATA_BASE + 7)
#define ATA_ALTSTATUS 0x3F6
#define ATA_CONTROL   0x3F6

#define ST_BSY  0x80
#define ST_DRDY 0x40
#define ST_DF   0x20
#define ST_DRQ  0x08
#define ST_ERR  0x01

#define CTL_NIEN 0x02
#define CTL_SRST 0x04

#define DEV_LBA    0x40
#define DEV_OBS    0xA0   /* bits 7 and 5: set, as older devices require */

#define CMD_READ_SECTORS  0x20
#define CMD_WRITE_SECTORS 0x30
#define CMD_CACHE_FLUSH   0xE7
#define CMD_IDENTIFY      0xEC

static int pio32;
static uint8_t last_status, last_error;

void ata_set_pio32(int on) { pio32 = on != 0; }
uint8_t ata_last_status(void) { return last_status; }
uint8_t ata_last_error(void) { return last_error; }

const char *ata_strerror(int err) {
	switch (err) {
	case ATA_OK: return "ok";
	case ATA_ENODEV: return "no ATA disk";
	case ATA_ETIMEOUT: return "timed out";
	case ATA_EDEVICE: return "device error";
	case ATA_EINVAL: return "invalid arguments";
	case ATA_EPROTO: return "protocol error";
	default: return "unknown error";
	}
}

/* About 400 ns: the time a device may take to show a new status after a
 * command or a device selection. Four reads of the alternate status. */
static void settle(void) {
	for (int i = 0; i < 4; i++) (void)inb(ATA_ALTSTATUS);
}

/* Waits until BSY is clear; returns the status, or -1 on timeout. */
static int wait_not_busy(void) {
	for (uint32_t n = 0; n < ATA_POLL_LIMIT; n++) {
		uint8_t st = inb(ATA_ALTSTATUS);
		if (!(st & ST_BSY)) return st;
	}
	return -1;
}

/* Waits for the next DRQ block of a data command. */
static int wait_data(void) {
	int st = wait_not_busy();
	if (st < 0) return ATA_ETIMEOUT;
	last_status = (uint8_t)st;
	if (st & (ST_ERR | ST_DF)) {
		last_status = inb(ATA_STATUS);
		last_error = inb(ATA_ERROR);
		return ATA_EDEVICE;
	}
	return (st & ST_DRQ) ? ATA_OK : ATA_EPROTO;
}

/* Waits for the end of a command: BSY clear, then the status register
 * (acknowledging the interrupt) must show neither an error nor DRQ. */
static int finish(void) {
	if (wait_not_busy() < 0) return ATA_ETIMEOUT;
	last_status = inb(ATA_STATUS);
	last_error = inb(ATA_ERROR);
	if (last_status & (ST_ERR | ST_DF)) return ATA_EDEVICE;
	return (last_status & ST_DRQ) ? ATA_EPROTO : ATA_OK;
}

static void read_block(void *buf) {
	void *p = buf;
	uint32_t n = pio32 ? ATA_SECTOR_SIZE / 4 : ATA_SECTOR_SIZE / 2;
	if (pio32) __asm__ volatile("rep insl" : "+D"(p), "+c"(n) : "d"(ATA_DATA) : "memory");
	else __asm__ volatile("rep insw" : "+D"(p), "+c"(n) : "d"(ATA_DATA) : "memory");
}

static void write_block(const void *buf) {
	const void *p = buf;
	uint32_t n = pio32 ? ATA_SECTOR_SIZE / 4 : ATA_SECTOR_SIZE / 2;
	if (pio32) __asm__ volatile("rep outsl" : "+S"(p), "+c"(n) : "d"(ATA_DATA) : "memory");
	else __asm__ volatile("rep outsw" : "+S"(p), "+c"(n) : "d"(ATA_DATA) : "memory");
}

/* Sets up the task file and writes the command. The device must be idle. */
static int issue(uint8_t cmd, uint32_t lba, unsigned count) {
	int st = wait_not_busy();
	if (st < 0) return ATA_ETIMEOUT;
	if (st & ST_DRQ) return ATA_EPROTO;   /* a transfer left half done */
	outb(ATA_DEVICE, DEV_OBS | DEV_LBA | ((lba >> 24) & 0x0F));
	settle();
	outb(ATA_COUNT, (uint8_t)count);      /* 256 is written as 0 */
	outb(ATA_LBA_LOW, (uint8_t)lba);
	outb(ATA_LBA_MID, (uint8_t)(lba >> 8));
	outb(ATA_LBA_HIGH, (uint8_t)(lba >> 16));
	outb(ATA_COMMAND, cmd);
	settle();
	return ATA_OK;
}

int ata_init(void) {
	if (inb(ATA_STATUS) == 0xFF && inb(ATA_LBA_MID) == 0xFF) return ATA_ENODEV;   /* floating bus */
	outb(ATA_DEVICE, DEV_OBS);   /* master */
	settle();
	/* Software reset of both devices; interrupts off (we poll). */
	outb(ATA_CONTROL, CTL_SRST | CTL_NIEN);
	for (int i = 0; i < 20; i++) (void)inb(ATA_ALTSTATUS);   /* SRST must be held at least 5 us */
	outb(ATA_CONTROL, CTL_NIEN);
	settle();
	int st = wait_not_busy();
	if (st < 0) return ATA_ETIMEOUT;
	outb(ATA_DEVICE, DEV_OBS);
	settle();
	last_status = inb(ATA_STATUS);
	last_error = inb(ATA_ERROR);
	if (last_status == 0 || last_status == 0xFF) return ATA_ENODEV;
	/* The signature of an ATA (not ATAPI) device: LBA mid and high 0. */
	if (inb(ATA_LBA_MID) != 0 || inb(ATA_LBA_HIGH) != 0) return ATA_ENODEV;
	if (!(last_status & ST_DRDY)) return ATA_ENODEV;
	return ATA_OK;
}

/* Copies an identify string (first character of each pair in the high byte),
 * dropping trailing spaces. */
static void id_string(char *out, const uint16_t *w, int words) {
	for (int i = 0; i < words; i++) {
		out[2 * i] = (char)(w[i] >> 8);
		out[2 * i + 1] = (char)(w[i] & 0xFF);
	}
	int n = 2 * words;
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == 0)) n--;
	out[n] = 0;
}

int ata_identify(struct ata_identity *id) {
	int r = issue(CMD_IDENTIFY, 0, 0);
	if (r) return r;
	if ((r = wait_data())) return r;
	read_block(id->words);
	settle();
	if ((r = finish())) return r;
	const uint16_t *w = id->words;
	id_string(id->serial, w + 10, 10);
	id_string(id->firmware, w + 23, 4);
	id_string(id->model, w + 27, 20);
	id->sectors = w[60] | ((uint32_t)w[61] << 16);
	id->lba = (w[49] & 0x0200) != 0;
	if ((w[255] & 0xFF) != 0xA5) {
		id->checksum = 0;
	} else {
		const uint8_t *b = (const uint8_t *)w;
		uint8_t sum = 0;
		for (int i = 0; i < ATA_SECTOR_SIZE; i++) sum += b[i];
		id->checksum = sum == 0 ? 1 : -1;
	}
	return ATA_OK;
}

static int check_range(uint32_t lba, unsigned count) {
	if (count == 0 || count > ATA_MAX_COUNT) return ATA_EINVAL;
	if (lba >= ATA_LBA28_LIMIT || count > ATA_LBA28_LIMIT - lba) return ATA_EINVAL;
	return ATA_OK;
}

int ata_read(uint32_t lba, unsigned count, void *buf) {
	int r = check_range(lba, count);
	if (r) return r;
	if ((r = issue(CMD_READ_SECTORS, lba, count))) return r;
	uint8_t *p = buf;
	for (unsigned s = 0; s < count; s++, p += ATA_SECTOR_SIZE) {
		if ((r = wait_data())) return r;
		read_block(p);
		settle();   /* the device drops DRQ (or shows BSY for the next sector) within 400 ns */
	}
	return finish();
}

int ata_write(uint32_t lba, unsigned count, const void *buf) {
	int r = check_range(lba, count);
	if (r) return r;
	if ((r = issue(CMD_WRITE_SECTORS, lba, count))) return r;
	const uint8_t *p = buf;
	for (unsigned s = 0; s < count; s++, p += ATA_SECTOR_SIZE) {
		if ((r = wait_data())) return r;
		write_block(p);
		settle();   /* the device shows BSY (committing the sector) within 400 ns */
	}
	return finish();
}

int ata_flush(void) {
	int r = issue(CMD_CACHE_FLUSH, 0, 0);
	if (r) return r;
	return finish();
}
