/*
 * A polling PIO driver for the ATA disk on the primary IDE channel
 * (command block 0x1F0-0x1F7, control block 0x3F6), master device only,
 * 28-bit LBA addressing. It never waits for an interrupt: it sets nIEN and
 * polls the status register. Optional runtime module: a guest that uses it
 * lists runtime/ata.c in its NAME_SRC (guests/Makefile).
 *
 * Every wait is bounded (ATA_POLL_LIMIT status reads), so a missing or hung
 * device gives ATA_ETIMEOUT instead of a hang.
 */
#ifndef LOCKSTEP_ATA_H
#define LOCKSTEP_ATA_H

#include <stdint.h>

#define ATA_SECTOR_SIZE 512
#define ATA_MAX_COUNT   256          /* sectors per READ/WRITE SECTORS command */
#define ATA_LBA28_LIMIT 0x10000000u  /* first sector a 28-bit LBA cannot reach */
#define ATA_POLL_LIMIT  50000000u    /* status reads before a wait gives up */

/* Results (0 is success). */
#define ATA_OK        0
#define ATA_ENODEV   -1   /* no controller (status floats 0xFF) or no ATA disk there */
#define ATA_ETIMEOUT -2   /* BSY never cleared, or DRQ never came */
#define ATA_EDEVICE  -3   /* the device reported ERR or DF: see ata_last_error() */
#define ATA_EINVAL   -4   /* bad arguments (count 0 or > 256, LBA past 2^28) */
#define ATA_EPROTO   -5   /* the device broke the PIO protocol (DRQ missing or left over) */

struct ata_identity {
	char model[41];       /* words 27-46, trailing spaces removed */
	char serial[21];      /* words 10-19 */
	char firmware[9];     /* words 23-26 */
	uint32_t sectors;     /* words 60-61: sectors reachable with 28-bit LBAs */
	int lba;              /* word 49 bit 9: LBA supported */
	int checksum;         /* word 255: 1 = signature A5h and a correct checksum, 0 = none given, -1 = wrong */
	uint16_t words[256];  /* the raw identify block */
};

/* Resets the channel (SRST), selects the master and checks it is an ATA disk
 * that is ready. Call first. */
int ata_init(void);
/* IDENTIFY DEVICE. */
int ata_identify(struct ata_identity *id);
/* READ SECTORS / WRITE SECTORS: `count` (1-256) sectors at `lba` to/from buf
 * (count * 512 bytes). */
int ata_read(uint32_t lba, unsigned count, void *buf);
int ata_write(uint32_t lba, unsigned count, const void *buf);
/* CACHE FLUSH. */
int ata_flush(void);

/* Moves data through the data port 32 bits at a time (1) or 16 (0, the default). */
void ata_set_pio32(int on);
/* The status and error registers as the last command left them. */
uint8_t ata_last_status(void);
uint8_t ata_last_error(void);
/* A short description of an ATA_* result. */
const char *ata_strerror(int err);

#endif
