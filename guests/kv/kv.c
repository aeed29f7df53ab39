/*
 * kv: a key-value server on the pvnic network card (docs/kv-protocol.md).
 *
 * Each received frame is one request; the reply goes out as one frame. Per
 * client id the server remembers the last request number, the request's
 * CRC-32 and the reply, and answers a repeated request from there, so a
 * request is executed at most once. Requests that change the store are
 * written to the disk log (kvlog.c) together with the client's new state
 * before the reply is sent, and the state is recovered from the log on boot.
 *
 * The request handling follows host/kv/model.ts step for step; the
 * end-to-end tests compare the two.
 *
 * Command line words (all optional):
 *   nic=irq|poll   wait for frames with the IRQ 11 handler and HLT (default),
 *                  or by polling the RX ring (always, in the bare build kvbare)
 *   requests=N     exit with status 0 after handling N frames (default: never)
 *   verbose=1      print a line per request
 */
#include "runtime.h"
#include "nic.h"
#include "kv.h"

static const uint8_t MAGIC[4] = { 'L', 'S', 'K', 'V' };

struct kv_entry kv_store[KV_MAX_KEYS];
struct kv_client kv_clients[KV_MAX_CLIENTS];
static uint32_t stamp;
static uint32_t requests, replays, dropped;
static int verbose;

/* ---- CRC-32 (IEEE, reflected; the zlib one) */

static uint32_t crc_table[256];

static void crc_init(void) {
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[n] = c;
	}
}

uint32_t kv_crc32(const void *data, uint32_t len) {
	const uint8_t *p = data;
	uint32_t c = 0xFFFFFFFFu;
	while (len--) c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* ---- keys */

/* Byte order, a prefix first (LIST's order). */
static int key_cmp(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl) {
	uint32_t n = al < bl ? al : bl;
	for (uint32_t k = 0; k < n; k++)
		if (a[k] != b[k]) return (int)a[k] - (int)b[k];
	return (int)al - (int)bl;
}

static struct kv_entry *find(const uint8_t *key, uint32_t klen) {
	for (uint32_t i = 0; i < KV_MAX_KEYS; i++) {
		struct kv_entry *e = &kv_store[i];
		if (e->used && e->klen == klen && memcmp(e->key, key, klen) == 0) return e;
	}
	return 0;
}

uint32_t kv_key_count(void) {
	uint32_t n = 0;
	for (uint32_t i = 0; i < KV_MAX_KEYS; i++) n += kv_store[i].used;
	return n;
}

/* Stores the value; -1 if the key is new and the store is full. */
static int set(const uint8_t *key, uint32_t klen, const uint8_t *value, uint32_t vlen) {
	struct kv_entry *e = find(key, klen);
	if (!e) {
		for (uint32_t i = 0; i < KV_MAX_KEYS && !e; i++)
			if (!kv_store[i].used) e = &kv_store[i];
		if (!e) return -1;
		e->used = 1;
		e->klen = (uint8_t)klen;
		memcpy(e->key, key, klen);
	}
	e->vlen = (uint16_t)vlen;
	memcpy(e->value, value, vlen);
	return 0;
}

/* ---- clients */

static struct kv_client *client_find(uint32_t id) {
	for (uint32_t i = 0; i < KV_MAX_CLIENTS; i++)
		if (kv_clients[i].id == id) return &kv_clients[i];
	return 0;
}

uint32_t kv_client_count(void) {
	uint32_t n = 0;
	for (uint32_t i = 0; i < KV_MAX_CLIENTS; i++) n += kv_clients[i].id != 0;
	return n;
}

/* A fresh entry for a new client: a free slot, or the least recently active client's. */
static struct kv_client *client_new(uint32_t id) {
	struct kv_client *c = 0;
	for (uint32_t i = 0; i < KV_MAX_CLIENTS; i++) {
		struct kv_client *x = &kv_clients[i];
		if (!x->id) { c = x; break; }
		if (!c || x->stamp < c->stamp) c = x;
	}
	c->id = id;
	c->last = 0;
	c->crc = 0;
	c->reply_len = 0;
	c->stamp = ++stamp;
	return c;
}

static void client_remember(struct kv_client *c, uint32_t last, uint32_t crc, const uint8_t *reply, uint32_t len) {
	c->last = last;
	c->crc = crc;
	c->reply_len = (uint16_t)len;
	memcpy(c->reply, reply, len);
}

void kv_apply(const struct kv_change *ch) {
	if (ch->type == LOG_SET) {
		if (set(ch->key, ch->klen, ch->value, ch->vlen) < 0) printf("kv: log: store full, a SET is lost\n");
	} else if (ch->type == LOG_DELETE) {
		struct kv_entry *e = find(ch->key, ch->klen);
		if (e) e->used = 0;
	}
	if (ch->client) {
		struct kv_client *c = client_find(ch->client);
		if (c) c->stamp = ++stamp;
		else c = client_new(ch->client);
		client_remember(c, ch->last, ch->crc, ch->reply, ch->reply_len);
	}
}

/* ---- INCR's decimal integers */

#define I64_MAX 0x7FFFFFFFFFFFFFFFll
#define I64_MIN (-I64_MAX - 1)

/* Optional '-', 1-19 digits, within int64. Returns 0 and *out, or -1. */
static int parse_decimal(const uint8_t *s, uint32_t len, int64_t *out) {
	uint32_t k = 0;
	int neg = 0;
	if (k < len && s[k] == '-') { neg = 1; k++; }
	uint32_t digits = len - k;
	if (digits < 1 || digits > 19) return -1;
	uint64_t mag = 0;
	for (; k < len; k++) {
		if (s[k] < '0' || s[k] > '9') return -1;
		mag = mag * 10 + (uint64_t)(s[k] - '0');
	}
	if (neg) {
		if (mag > (uint64_t)I64_MAX + 1) return -1;
		*out = mag == (uint64_t)I64_MAX + 1 ? I64_MIN : -(int64_t)mag;
	} else {
		if (mag > (uint64_t)I64_MAX) return -1;
		*out = (int64_t)mag;
	}
	return 0;
}

static uint32_t format_decimal(int64_t v, uint8_t *out) {
	uint8_t tmp[20];
	uint32_t n = 0, len = 0;
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[n++] = (uint8_t)('0' + mag % 10);
		mag /= 10;
	} while (mag);
	if (v < 0) out[len++] = '-';
	while (n) out[len++] = tmp[--n];
	return len;
}

/* ---- requests */

struct outcome {
	uint8_t status, flags;
	uint32_t result;
	const uint8_t *value;
	uint32_t vlen;
	struct kv_change change;   /* type LOG_NONE: the store is not changed */
};

static uint8_t incr_text[20];
static uint8_t list_buf[KV_MAX_LIST];
static uint8_t stats_buf[32];

static uint32_t build_reply(uint8_t *out, const uint8_t *req, const struct outcome *o) {
	memcpy(out, MAGIC, 4);
	out[4] = KV_VERSION;
	out[5] = 1;
	out[6] = req[6];
	out[7] = o->status;
	memcpy(out + 8, req + 8, 8);   /* client id and request number */
	put16(out + 16, o->vlen);
	out[18] = o->flags;
	out[19] = 0;
	put32(out + 20, o->result);
	if (o->vlen) memcpy(out + KV_HDR, o->value, o->vlen);
	return KV_HDR + o->vlen;
}

static uint32_t simple_reply(uint8_t *out, const uint8_t *req, uint8_t status, uint32_t result) {
	struct outcome o;
	memset(&o, 0, sizeof o);
	o.status = status;
	o.result = result;
	return build_reply(out, req, &o);
}

static int well_formed(const uint8_t *f, uint32_t len) {
	return get16(f + 22) == 0 && len == KV_HDR + (uint32_t)get16(f + 16) + get16(f + 18) + get16(f + 20);
}

static void fail(struct outcome *o, uint8_t status) { o->status = status; }

static void execute(const uint8_t *f, uint32_t len, struct outcome *o) {
	memset(o, 0, sizeof *o);
	uint32_t op = f[6], flags = f[7];
	if (!well_formed(f, len) || op < OP_GET || op > OP_HELLO) return fail(o, ST_BAD_REQUEST);
	uint32_t kl = get16(f + 16), vl = get16(f + 18), v2l = get16(f + 20);
	const uint8_t *key = f + KV_HDR, *value = key + kl, *value2 = value + vl;

	/* Which fields the operation takes: key 2 = required, 1 = optional, 0 = none. */
	static const uint8_t shape[11][4] = {
		/* key, value, value2, flags */
		{ 0, 0, 0, 0 },
		[OP_GET] = { 2, 0, 0, 0 }, [OP_PUT] = { 2, 1, 0, 0 }, [OP_DEL] = { 2, 0, 0, 0 },
		[OP_INCR] = { 2, 1, 0, 0 }, [OP_CAS] = { 2, 1, 1, REQ_FLAG_EXPECT_ABSENT },
		[OP_COUNT] = { 0, 0, 0, 0 }, [OP_LIST] = { 1, 1, 0, 0 }, [OP_PING] = { 0, 1, 0, 0 },
		[OP_STATS] = { 0, 0, 0, 0 }, [OP_HELLO] = { 0, 0, 0, 0 },
	};
	const uint8_t *sh = shape[op];
	if (flags & ~(uint32_t)sh[3]) return fail(o, ST_BAD_REQUEST);
	if ((sh[0] == 2 && kl == 0) || (sh[0] == 0 && kl) || (!sh[1] && vl) || (!sh[2] && v2l)) return fail(o, ST_BAD_REQUEST);
	if (op == OP_CAS && (flags & REQ_FLAG_EXPECT_ABSENT) && vl) return fail(o, ST_BAD_REQUEST);
	if (kl > KV_MAX_KEY) return fail(o, ST_TOO_LARGE);
	if (op == OP_LIST ? vl > KV_MAX_KEY : vl > KV_MAX_VALUE) return fail(o, ST_TOO_LARGE);
	if (v2l > KV_MAX_VALUE) return fail(o, ST_TOO_LARGE);

	struct kv_entry *cur = kl ? find(key, kl) : 0;
	int full = !cur && kv_key_count() >= KV_MAX_KEYS;
	struct kv_change *ch = &o->change;
	ch->key = key;
	ch->klen = kl;
	switch (op) {
	case OP_GET:
		if (!cur) return fail(o, ST_NOT_FOUND);
		o->value = cur->value;
		o->vlen = cur->vlen;
		return;
	case OP_PUT:
		if (full) return fail(o, ST_FULL);
		o->result = cur ? 0 : 1;
		ch->type = LOG_SET;
		ch->value = value;
		ch->vlen = vl;
		return;
	case OP_DEL:
		if (!cur) return fail(o, ST_NOT_FOUND);
		ch->type = LOG_DELETE;
		return;
	case OP_INCR: {
		int64_t delta = 1, old = 0, sum;
		if (vl && parse_decimal(value, vl, &delta) < 0) return fail(o, ST_NOT_NUMBER);
		if (cur && parse_decimal(cur->value, cur->vlen, &old) < 0) return fail(o, ST_NOT_NUMBER);
		if (full) return fail(o, ST_FULL);
		if (__builtin_add_overflow(old, delta, &sum)) return fail(o, ST_RANGE);
		o->vlen = format_decimal(sum, incr_text);
		o->value = incr_text;
		o->result = cur ? 0 : 1;
		ch->type = LOG_SET;
		ch->value = incr_text;
		ch->vlen = o->vlen;
		return;
	}
	case OP_CAS: {
		int absent = (flags & REQ_FLAG_EXPECT_ABSENT) != 0;
		int match = absent ? !cur : cur && key_cmp(cur->value, cur->vlen, value, vl) == 0;
		if (!match) {
			o->status = ST_MISMATCH;
			o->result = cur ? 1 : 0;
			if (cur) {
				o->value = cur->value;
				o->vlen = cur->vlen;
			}
			return;
		}
		if (full) return fail(o, ST_FULL);
		o->result = cur ? 0 : 1;
		ch->type = LOG_SET;
		ch->value = value2;
		ch->vlen = v2l;
		return;
	}
	case OP_COUNT:
		o->result = kv_key_count();
		return;
	case OP_LIST: {
		/* Repeatedly the smallest key with the prefix after the cursor. */
		const uint8_t *cursor = value;
		uint32_t clen = vl, used = 0, count = 0;
		for (;;) {
			struct kv_entry *best = 0;
			for (uint32_t i = 0; i < KV_MAX_KEYS; i++) {
				struct kv_entry *e = &kv_store[i];
				if (!e->used || e->klen < kl || memcmp(e->key, key, kl) != 0) continue;
				if (key_cmp(e->key, e->klen, cursor, clen) <= 0) continue;
				if (!best || key_cmp(e->key, e->klen, best->key, best->klen) < 0) best = e;
			}
			if (!best) break;
			if (used + 1 + best->klen > KV_MAX_LIST) {
				o->flags = REPLY_FLAG_MORE;
				break;
			}
			list_buf[used] = best->klen;
			memcpy(list_buf + used + 1, best->key, best->klen);
			cursor = list_buf + used + 1;
			clen = best->klen;
			used += 1 + best->klen;
			count++;
		}
		o->value = list_buf;
		o->vlen = used;
		o->result = count;
		return;
	}
	case OP_PING:
		o->value = value;
		o->vlen = vl;
		return;
	case OP_STATS: {
		uint32_t v[8] = {
			kv_key_count(), KV_MAX_KEYS, kv_client_count(), KV_MAX_CLIENTS,
			kvlog_generation(), kvlog_records(), requests, replays,
		};
		for (int k = 0; k < 8; k++) put32(stats_buf + 4 * k, v[k]);
		o->value = stats_buf;
		o->vlen = sizeof stats_buf;
		return;
	}
	default:
		return fail(o, ST_BAD_REQUEST);   /* HELLO is answered before the reply cache */
	}
}

static const char *const OP_NAMES[] = { "?", "GET", "PUT", "DEL", "INCR", "CAS", "COUNT", "LIST", "PING", "STATS", "HELLO" };
static const char *const STATUS_NAMES[] = {
	"OK", "NOT_FOUND", "MISMATCH", "NOT_NUMBER", "RANGE", "FULL", "TOO_LARGE", "BAD_REQUEST", "STALE", "IO_ERROR", "BAD_VERSION",
};

static uint32_t log_reply(const uint8_t *reply, uint32_t len) {
	if (verbose) {
		uint32_t op = reply[6];
		printf("kv: client %u request %u %s: %s%s\n", get32(reply + 8), get32(reply + 12),
		       op <= OP_HELLO ? OP_NAMES[op] : "?", reply[7] <= ST_BAD_VERSION ? STATUS_NAMES[reply[7]] : "?",
		       (reply[18] & REPLY_FLAG_REPLAYED) ? " (replayed)" : "");
	}
	return len;
}

/* Handles one frame: the reply's length in out, or 0 for a frame dropped without a reply. */
static uint32_t handle(const uint8_t *f, uint32_t len, uint8_t *out) {
	if (len < KV_HDR || memcmp(f, MAGIC, 4) != 0 || f[5] != 0) {
		dropped++;
		if (verbose) printf("kv: dropped a %u-byte frame that is not a request\n", len);
		return 0;
	}
	uint32_t op = f[6], id = get32(f + 8), n = get32(f + 12);
	if (f[4] != KV_VERSION) return log_reply(out, simple_reply(out, f, ST_BAD_VERSION, 0));
	if (id == 0) return log_reply(out, simple_reply(out, f, ST_BAD_REQUEST, 0));
	if (op == OP_HELLO) {
		if (n != 0 || !well_formed(f, len) || len != KV_HDR || f[7] != 0) return log_reply(out, simple_reply(out, f, ST_BAD_REQUEST, 0));
		struct kv_client *c = client_find(id);
		return log_reply(out, simple_reply(out, f, ST_OK, c ? c->last : 0));
	}
	if (n == 0) return log_reply(out, simple_reply(out, f, ST_BAD_REQUEST, 0));

	uint32_t crc = kv_crc32(f, len);
	struct kv_client *c = client_find(id);
	if (c) {
		c->stamp = ++stamp;
		if (n < c->last || (n == c->last && (c->crc != crc || c->reply_len == 0)))
			return log_reply(out, simple_reply(out, f, ST_STALE, 0));
		if (n == c->last) {
			replays++;
			memcpy(out, c->reply, c->reply_len);
			out[18] |= REPLY_FLAG_REPLAYED;
			return log_reply(out, c->reply_len);
		}
	} else {
		c = client_new(id);
	}

	requests++;
	struct outcome o;
	execute(f, len, &o);
	uint32_t rlen = build_reply(out, f, &o);
	if (o.change.type != LOG_NONE) {
		struct kv_change *ch = &o.change;
		ch->client = id;
		ch->last = n;
		ch->crc = crc;
		ch->reply = out;
		ch->reply_len = rlen;
		if (kvlog_append(ch) < 0) {
			/* Nothing done and nothing remembered: the client may resend. */
			return log_reply(out, simple_reply(out, f, ST_IO_ERROR, 0));
		}
		ch->client = 0;   /* the client is updated below */
		kv_apply(ch);
	}
	client_remember(c, n, crc, out, rlen);
	return log_reply(out, rlen);
}

static uint8_t rx_frame[NIC_MTU];
static uint8_t tx_frame[NIC_MTU];

int main(void) {
	char mode[8];
	int use_irq = cpu_tables_loaded() && !(boot_arg("nic", mode, sizeof mode) >= 0 && strcmp(mode, "poll") == 0);
	uint32_t limit = boot_arg_uint("requests", 0);
	verbose = boot_arg_uint("verbose", 0) != 0;

	crc_init();
	if (nic_init(use_irq ? NIC_USE_IRQ : 0) != NIC_OK) {
		printf("kv: no pvnic network card at 0x%x\n", NIC_BASE);
		return 2;
	}
	uint8_t mac[6];
	nic_mac(mac);
	int persistent = kvlog_open();
	printf("kv: %u keys, %u clients; %s generation %u, %u log records\n", kv_key_count(), kv_client_count(),
	       persistent ? "disk" : "memory only,", kvlog_generation(), kvlog_records());
	printf("kv: ready on %02x:%02x:%02x:%02x:%02x:%02x (%s)\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
	       use_irq ? "IRQ 11" : "polling");
	if (use_irq) sti();

	for (uint32_t handled = 0; !limit || handled < limit; handled++) {
		uint32_t len = nic_recv_wait(rx_frame, sizeof rx_frame);
		uint32_t rlen = handle(rx_frame, len, tx_frame);
		if (rlen) {
			int r = nic_send(tx_frame, rlen);
			if (r != NIC_OK) printf("kv: send failed (%d, status %u)\n", r, nic_last_tx_status());
		}
	}
	struct nic_stats ns;
	nic_get_stats(&ns);
	printf("kv: done: %u requests executed, %u replayed, %u frames dropped; nic rx %u tx %u, device drops %u\n",
	       requests, replays, dropped, ns.rx_frames, ns.tx_frames, ns.device_drops);
	return 0;
}
