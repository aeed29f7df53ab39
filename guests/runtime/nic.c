/*
 * pvnic driver (nic.h, docs/nic.md). Rings and buffers are static, 16-byte
 * aligned, at their physical addresses (the runtime runs flat, unpaged).
 * Ownership: a descriptor belongs to the device while its OWN bit is set; the
 * driver fills in everything else first and sets OWN last (a compiler barrier
 * keeps the stores in order; x86 keeps them in order for the device).
 */
#include "nic.h"
#include "runtime.h"

struct nic_desc {
	uint32_t addr;
	uint16_t len;
	uint16_t flags;
	uint16_t out_len;
	uint16_t status;
	uint32_t user;
};

#define RX_BUF_SIZE 1536

static volatile struct nic_desc rx_ring[NIC_RX_RING] __attribute__((aligned(16)));
static volatile struct nic_desc tx_ring[NIC_TX_RING] __attribute__((aligned(16)));
static uint8_t rx_bufs[NIC_RX_RING][RX_BUF_SIZE] __attribute__((aligned(16)));
static uint8_t tx_bufs[NIC_TX_RING][RX_BUF_SIZE] __attribute__((aligned(16)));

static uint32_t rx_head;        /* next RX descriptor the device returns */
static uint32_t tx_head;        /* next TX descriptor to fill */
static uint32_t last_tx_status;
static unsigned use_irq;
static struct nic_stats stats;

#define barrier() __asm__ volatile("" : : : "memory")

static inline uint32_t reg_read(uint32_t off) { return inl(NIC_BASE + off); }
static inline void reg_write(uint32_t off, uint32_t v) { outl(NIC_BASE + off, v); }

static void give_rx(uint32_t i) {
	rx_ring[i].addr = (uint32_t)(uintptr_t)rx_bufs[i];
	rx_ring[i].len = RX_BUF_SIZE;
	rx_ring[i].out_len = 0;
	rx_ring[i].status = 0;
	rx_ring[i].user = i;
	barrier();
	rx_ring[i].flags = NIC_DESC_OWN;
}

uint32_t nic_service(void) {
	uint32_t isr = reg_read(NIC_REG_ISR);
	if (isr) reg_write(NIC_REG_ISR, isr);   /* acknowledge what we saw; newer causes stay */
	stats.isr_seen |= isr;
	return isr;
}

static void nic_irq(int irq) {
	(void)irq;
	stats.irqs++;
	nic_service();
}

int nic_init(unsigned flags) {
	if (reg_read(NIC_REG_ID) != NIC_ID) return NIC_ENODEV;
	reg_write(NIC_REG_CTRL, NIC_CTRL_RESET);
	for (uint32_t i = 0; i < NIC_RX_RING; i++) give_rx(i);
	for (uint32_t i = 0; i < NIC_TX_RING; i++) {
		tx_ring[i].flags = 0;
		tx_ring[i].addr = (uint32_t)(uintptr_t)tx_bufs[i];
		tx_ring[i].user = i;
	}
	rx_head = tx_head = 0;
	barrier();
	reg_write(NIC_REG_RX_BASE, (uint32_t)(uintptr_t)rx_ring);
	reg_write(NIC_REG_RX_SIZE, NIC_RX_RING);
	reg_write(NIC_REG_TX_BASE, (uint32_t)(uintptr_t)tx_ring);
	reg_write(NIC_REG_TX_SIZE, NIC_TX_RING);
	use_irq = flags & NIC_USE_IRQ;
	if (use_irq) {
		irq_install(NIC_IRQ, nic_irq);
		reg_write(NIC_REG_IMR, NIC_INT_RX | NIC_INT_TX | NIC_INT_RX_NOBUF | NIC_INT_LINK | NIC_INT_ERROR);
	} else {
		reg_write(NIC_REG_IMR, 0);
	}
	reg_write(NIC_REG_CTRL, NIC_CTRL_RX_EN | NIC_CTRL_TX_EN);
	return NIC_OK;
}

void nic_mac(uint8_t mac[6]) {
	uint32_t lo = reg_read(NIC_REG_MAC_LO), hi = reg_read(NIC_REG_MAC_HI);
	for (int k = 0; k < 4; k++) mac[k] = (uint8_t)(lo >> (8 * k));
	mac[4] = (uint8_t)hi;
	mac[5] = (uint8_t)(hi >> 8);
}

int nic_link_up(void) { return (reg_read(NIC_REG_STATUS) & NIC_STATUS_LINK) != 0; }

int nic_rx_ready(void) { return !(rx_ring[rx_head].flags & NIC_DESC_OWN); }

uint32_t nic_recv(void *buf, uint32_t cap) {
	while (nic_rx_ready()) {
		uint32_t i = rx_head;
		barrier();
		uint32_t len = rx_ring[i].out_len;
		uint32_t status = rx_ring[i].status;
		uint32_t got = 0;
		if (status != NIC_DESC_OK) stats.rx_errors++;
		else if (len > cap) stats.rx_too_big++;
		else {
			memcpy(buf, rx_bufs[i], len);
			got = len;
			stats.rx_frames++;
		}
		give_rx(i);
		rx_head = (i + 1) % NIC_RX_RING;
		if (got) return got;
	}
	return 0;
}

uint32_t nic_recv_wait(void *buf, uint32_t cap) {
	for (;;) {
		uint32_t n = nic_recv(buf, cap);
		if (n) return n;
		if (use_irq) {
			/* Sleep unless a frame came in between the check and here: the
			 * RX interrupt wakes the HLT (STI's shadow covers the gap). */
			cli();
			if (nic_rx_ready()) sti();
			else sti_hlt();
		} else {
			while (!nic_rx_ready()) barrier();
		}
	}
}

int nic_send(const void *frame, uint32_t len) {
	if (len == 0 || len > NIC_MTU) return NIC_EINVAL;
	uint32_t i = tx_head;
	if (tx_ring[i].flags & NIC_DESC_OWN) {
		/* Still the device's: ring the doorbell once more and look again. */
		reg_write(NIC_REG_TX_DOORBELL, 0);
		if (tx_ring[i].flags & NIC_DESC_OWN) return NIC_EBUSY;
	}
	memcpy(tx_bufs[i], frame, len);
	tx_ring[i].addr = (uint32_t)(uintptr_t)tx_bufs[i];
	tx_ring[i].len = (uint16_t)len;
	tx_ring[i].out_len = 0;
	tx_ring[i].status = 0;
	barrier();
	tx_ring[i].flags = NIC_DESC_OWN;
	tx_head = (i + 1) % NIC_TX_RING;
	reg_write(NIC_REG_TX_DOORBELL, 0);
	barrier();
	if (tx_ring[i].flags & NIC_DESC_OWN) return NIC_OK;   /* queued; completes later */
	last_tx_status = tx_ring[i].status;
	if (last_tx_status != NIC_DESC_OK) {
		stats.tx_errors++;
		return NIC_ESEND;
	}
	stats.tx_frames++;
	return NIC_OK;
}

uint32_t nic_last_tx_status(void) { return last_tx_status; }

void nic_get_stats(struct nic_stats *s) {
	*s = stats;
	s->device_drops = reg_read(NIC_REG_RX_DROPS);
}
