/*
 * The kv store's disk log (docs/kv-protocol.md, "On-disk layout").
 *
 * Sectors 0 and 1 hold the superblock for even and odd generations; region
 * g mod 2 holds generation g's log: sector-aligned records, each a key change
 * and/or a client update, with a CRC. Recovery applies records in order until
 * one is not valid. When a region is full, the whole state is written as a
 * checkpoint to the other region under generation g + 1, and only then the
 * superblock that makes it current.
 */
#include "runtime.h"
#include "ata.h"
#include "kv.h"

#define SECTOR          512
#define SB_VERSION      1
#define REGION_START    64
#define REGION_SECTORS  2048
#define NREGIONS        2
#define DISK_MIN        (REGION_START + NREGIONS * REGION_SECTORS)
#define REC_HDR         40
#define REC_MAX_SECTORS 4
#define REC_MAX         (REC_MAX_SECTORS * SECTOR)

static const uint8_t SB_MAGIC[4] = { 'L', 'K', 'V', 'S' };
static const uint8_t REC_MAGIC[4] = { 'L', 'K', 'V', 'R' };

static int persistent;
static uint32_t generation;   /* current generation (0: memory only) */
static uint32_t seq;          /* sequence number of the next record */
static uint32_t pos;          /* next free sector in the current region */

static uint8_t sector[SECTOR] __attribute__((aligned(4)));
static uint8_t rec[REC_MAX] __attribute__((aligned(4)));

static uint32_t region_lba(uint32_t gen) { return REGION_START + (gen & 1) * REGION_SECTORS; }
static uint32_t sectors_for(uint32_t len) { return (len + SECTOR - 1) / SECTOR; }

uint32_t kvlog_generation(void) { return generation; }
uint32_t kvlog_records(void) { return seq; }
uint32_t kvlog_position(void) { return pos; }

/* ---- superblock */

static void sb_encode(uint8_t *b, uint32_t gen) {
	memset(b, 0, SECTOR);
	memcpy(b, SB_MAGIC, 4);
	put32(b + 4, SB_VERSION);
	put32(b + 8, gen);
	put32(b + 12, REGION_SECTORS);
	put32(b + 16, REGION_START);
	put32(b + 20, NREGIONS);
	put32(b + 28, kv_crc32(b, 28));
}

/* The generation in a superblock read from sector `which`, or 0 if it is not valid. */
static uint32_t sb_decode(const uint8_t *b, uint32_t which) {
	if (memcmp(b, SB_MAGIC, 4) != 0 || get32(b + 4) != SB_VERSION) return 0;
	if (get32(b + 12) != REGION_SECTORS || get32(b + 16) != REGION_START || get32(b + 20) != NREGIONS) return 0;
	if (get32(b + 28) != kv_crc32(b, 28)) return 0;
	uint32_t gen = get32(b + 8);
	if (gen == 0 || (gen & 1) != which) return 0;
	return gen;
}

static int write_sb(uint32_t gen) {
	sb_encode(sector, gen);
	if (ata_write(gen & 1, 1, sector) != ATA_OK) return -1;
	return ata_flush() == ATA_OK ? 0 : -1;
}

/* ---- records */

/* Encodes a record into rec (zero-padded to whole sectors); returns its length in bytes. */
static uint32_t rec_encode(uint32_t gen, uint32_t s, const struct kv_change *ch) {
	uint32_t len = REC_HDR + ch->klen + ch->vlen + ch->reply_len;
	memset(rec, 0, sectors_for(len) * SECTOR);
	memcpy(rec, REC_MAGIC, 4);
	put32(rec + 4, gen);
	put32(rec + 8, s);
	put16(rec + 12, len);
	rec[14] = (uint8_t)ch->type;
	put32(rec + 16, ch->client);
	put32(rec + 20, ch->last);
	put32(rec + 24, ch->crc);
	put16(rec + 28, ch->klen);
	put16(rec + 30, ch->vlen);
	put16(rec + 32, ch->reply_len);
	uint8_t *p = rec + REC_HDR;
	if (ch->klen) memcpy(p, ch->key, ch->klen);
	p += ch->klen;
	if (ch->vlen) memcpy(p, ch->value, ch->vlen);
	p += ch->vlen;
	if (ch->reply_len) memcpy(p, ch->reply, ch->reply_len);
	put32(rec + 36, kv_crc32(rec, len));
	return len;
}

/* Reads and checks the record at sector `at` of generation gen's region with
 * sequence number s; fills ch (pointing into rec). Returns its sector count,
 * or 0 if there is no valid record there. */
static uint32_t rec_read(uint32_t gen, uint32_t at, uint32_t s, struct kv_change *ch) {
	if (at >= REGION_SECTORS) return 0;
	if (ata_read(region_lba(gen) + at, 1, rec) != ATA_OK) return 0;
	if (memcmp(rec, REC_MAGIC, 4) != 0 || get32(rec + 4) != gen || get32(rec + 8) != s) return 0;
	uint32_t len = get16(rec + 12);
	uint32_t n = sectors_for(len);
	if (len < REC_HDR || n > REC_MAX_SECTORS || at + n > REGION_SECTORS) return 0;
	if (n > 1 && ata_read(region_lba(gen) + at + 1, n - 1, rec + SECTOR) != ATA_OK) return 0;
	uint32_t crc = get32(rec + 36);
	put32(rec + 36, 0);
	if (kv_crc32(rec, len) != crc) return 0;

	uint32_t type = rec[14], kl = get16(rec + 28), vl = get16(rec + 30), rl = get16(rec + 32);
	if (REC_HDR + kl + vl + rl != len || kl > KV_MAX_KEY || vl > KV_MAX_VALUE || rl > KV_MAX_REPLY) return 0;
	if (type == LOG_SET ? kl == 0 : type == LOG_DELETE ? (kl == 0 || vl) : type == LOG_CLIENT ? (kl || vl) : 1) return 0;
	uint32_t client = get32(rec + 16);
	if ((client == 0) != (rl == 0) || (type == LOG_CLIENT && !client)) return 0;
	ch->type = type == LOG_CLIENT ? LOG_NONE : type;
	ch->key = rec + REC_HDR;
	ch->klen = kl;
	ch->value = rec + REC_HDR + kl;
	ch->vlen = vl;
	ch->client = client;
	ch->last = get32(rec + 20);
	ch->crc = get32(rec + 24);
	ch->reply = rec + REC_HDR + kl + vl;
	ch->reply_len = rl;
	return n;
}

static int write_rec(uint32_t gen, uint32_t at, uint32_t len) {
	return ata_write(region_lba(gen) + at, sectors_for(len), rec) == ATA_OK ? 0 : -1;
}

/* ---- checkpoint */

/* Writes the whole state as generation gen + 1 into the other region, then
 * its superblock. On failure nothing changes (the old generation stays). */
static int checkpoint(void) {
	uint32_t ng = generation + 1, at = 0, s = 0;
	struct kv_change ch;
	for (uint32_t i = 0; i < KV_MAX_KEYS; i++) {
		struct kv_entry *e = &kv_store[i];
		if (!e->used) continue;
		memset(&ch, 0, sizeof ch);
		ch.type = LOG_SET;
		ch.key = e->key;
		ch.klen = e->klen;
		ch.value = e->value;
		ch.vlen = e->vlen;
		uint32_t len = rec_encode(ng, s++, &ch);
		if (write_rec(ng, at, len) < 0) return -1;
		at += sectors_for(len);
	}
	for (uint32_t i = 0; i < KV_MAX_CLIENTS; i++) {
		struct kv_client *c = &kv_clients[i];
		if (!c->id || !c->reply_len) continue;
		memset(&ch, 0, sizeof ch);
		ch.type = LOG_CLIENT;
		ch.client = c->id;
		ch.last = c->last;
		ch.crc = c->crc;
		ch.reply = c->reply;
		ch.reply_len = c->reply_len;
		uint32_t len = rec_encode(ng, s++, &ch);
		if (write_rec(ng, at, len) < 0) return -1;
		at += sectors_for(len);
	}
	if (at < REGION_SECTORS) {
		memset(sector, 0, SECTOR);
		if (ata_write(region_lba(ng) + at, 1, sector) != ATA_OK) return -1;
	}
	if (ata_flush() != ATA_OK || write_sb(ng) < 0) return -1;
	generation = ng;
	pos = at;
	seq = s;
	return 0;
}

/* ---- open, recover, append */

int kvlog_open(void) {
	int r = ata_init();
	if (r != ATA_OK) {
		printf("kv: no disk (%s): the store is kept in memory only\n", ata_strerror(r));
		return 0;
	}
	static struct ata_identity id;
	r = ata_identify(&id);
	if (r != ATA_OK) {
		printf("kv: IDENTIFY failed (%s): the store is kept in memory only\n", ata_strerror(r));
		return 0;
	}
	if (id.sectors < DISK_MIN) {
		printf("kv: the disk has %u sectors, the store needs %u: kept in memory only\n", id.sectors, DISK_MIN);
		return 0;
	}

	uint32_t best = 0;
	for (uint32_t which = 0; which < 2; which++) {
		if (ata_read(which, 1, sector) != ATA_OK) continue;
		uint32_t g = sb_decode(sector, which);
		if (g > best) best = g;
	}
	if (!best) {
		/* A fresh disk: generation 1 with an empty region 1. */
		memset(sector, 0, SECTOR);
		if (ata_write(region_lba(1), 1, sector) != ATA_OK || write_sb(1) < 0) {
			printf("kv: cannot format the disk: the store is kept in memory only\n");
			return 0;
		}
		printf("kv: formatted the disk (%u sectors)\n", id.sectors);
		best = 1;
	}
	generation = best;
	pos = 0;
	seq = 0;
	struct kv_change ch;
	uint32_t n;
	while ((n = rec_read(generation, pos, seq, &ch)) != 0) {
		kv_apply(&ch);
		pos += n;
		seq++;
	}
	persistent = 1;
	return 1;
}

int kvlog_append(const struct kv_change *ch) {
	if (!persistent) return 0;
	uint32_t len = REC_HDR + ch->klen + ch->vlen + ch->reply_len;
	if (sectors_for(len) > REC_MAX_SECTORS) return -1;
	if (pos + sectors_for(len) > REGION_SECTORS && checkpoint() < 0) return -1;
	len = rec_encode(generation, seq, ch);
	if (write_rec(generation, pos, len) < 0 || ata_flush() != ATA_OK) return -1;
	pos += sectors_for(len);
	seq++;
	return 0;
}
