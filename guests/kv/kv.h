/*
 * The kv guest: a key-value server on the pvnic network card with its store
 * persisted to the ATA disk. docs/kv-protocol.md is the specification (wire
 * protocol, at-most-once rules, on-disk layout); host/kv/model.ts is the same
 * semantics in TypeScript.
 */
#ifndef KV_H
#define KV_H

#include <stdint.h>

#define KV_VERSION      1
#define KV_HDR          24
#define KV_MAX_KEY      64
#define KV_MAX_VALUE    512
#define KV_MAX_KEYS     256
#define KV_MAX_CLIENTS  64
#define KV_MAX_LIST     1024
#define KV_MAX_REPLY    (KV_HDR + KV_MAX_LIST)

enum kv_op { OP_GET = 1, OP_PUT, OP_DEL, OP_INCR, OP_CAS, OP_COUNT, OP_LIST, OP_PING, OP_STATS, OP_HELLO };
enum kv_status {
	ST_OK = 0, ST_NOT_FOUND, ST_MISMATCH, ST_NOT_NUMBER, ST_RANGE, ST_FULL, ST_TOO_LARGE,
	ST_BAD_REQUEST, ST_STALE, ST_IO_ERROR, ST_BAD_VERSION,
};
#define REQ_FLAG_EXPECT_ABSENT 0x01
#define REPLY_FLAG_REPLAYED    0x01
#define REPLY_FLAG_MORE        0x02

struct kv_entry {
	uint8_t used;
	uint8_t klen;
	uint16_t vlen;
	uint8_t key[KV_MAX_KEY];
	uint8_t value[KV_MAX_VALUE];
};

struct kv_client {
	uint32_t id;          /* 0: a free slot */
	uint32_t last;        /* the last request number executed */
	uint32_t crc;         /* CRC-32 of that request's frame */
	uint32_t stamp;       /* when it was last active (for eviction) */
	uint16_t reply_len;   /* 0: no reply remembered */
	uint8_t reply[KV_MAX_REPLY];
};

/* A change to the state, as logged: a key change (SET/DELETE) and/or a client update. */
enum { LOG_NONE = 0, LOG_SET = 1, LOG_DELETE = 2, LOG_CLIENT = 3 };
struct kv_change {
	uint32_t type;
	const uint8_t *key;
	uint32_t klen;
	const uint8_t *value;
	uint32_t vlen;
	uint32_t client;      /* 0: no client update */
	uint32_t last;
	uint32_t crc;
	const uint8_t *reply;
	uint32_t reply_len;
};

/* ---- the state (kv.c) */
extern struct kv_entry kv_store[KV_MAX_KEYS];
extern struct kv_client kv_clients[KV_MAX_CLIENTS];
uint32_t kv_key_count(void);
uint32_t kv_client_count(void);
/* Applies a logged change: the key change, then the client update (made most recent). */
void kv_apply(const struct kv_change *ch);

/* ---- helpers (kv.c) */
uint32_t kv_crc32(const void *data, uint32_t len);
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }
static inline void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }

/* ---- the disk log (kvlog.c) */
/* Opens the disk and recovers the state into kv_store/kv_clients. Returns 1
 * if the store is persistent, 0 if it runs in memory only (no disk, or one
 * too small), after printing why. */
int kvlog_open(void);
/* Writes a change to the log (checkpointing first if the region is full) and
 * flushes it. Returns 0, or -1 if the disk refused (nothing is changed). A
 * memory-only store accepts everything. */
int kvlog_append(const struct kv_change *ch);
uint32_t kvlog_generation(void);    /* 0 when memory only */
uint32_t kvlog_records(void);       /* records in the current region */
uint32_t kvlog_position(void);      /* next free sector in the current region */

#endif
