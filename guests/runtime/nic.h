/*
 * Driver for pvnic, the lockstep paravirtual network card (docs/nic.md):
 * ports 0xC000-0xC03F, IRQ 11, RX and TX descriptor rings in guest memory.
 * Frames are opaque byte strings of 1 to NIC_MTU bytes.
 *
 * Two ways to wait for frames: with NIC_USE_IRQ the driver installs an IRQ 11
 * handler (needs the runtime's IDT: not in a bare guest) and nic_recv_wait
 * sleeps in HLT between interrupts; without it the driver polls the RX ring.
 * Either way the receive path is the same: the device fills descriptors and
 * clears their OWN bit, nic_recv takes the frame and gives the buffer back.
 * Not reentrant: call from one context (the handler only acknowledges).
 */
#ifndef LOCKSTEP_NIC_H
#define LOCKSTEP_NIC_H

#include <stdint.h>

#define NIC_BASE      0xC000
#define NIC_IRQ       11
#define NIC_MTU       1514
#define NIC_ID        0x50564E01u   /* "PVN", version 1 */
#define NIC_RX_RING   16            /* descriptors (and 1536-byte buffers) */
#define NIC_TX_RING   8

/* Register offsets. */
#define NIC_REG_ID          0x00
#define NIC_REG_CTRL        0x04
#define NIC_REG_STATUS      0x08
#define NIC_REG_ISR         0x0C
#define NIC_REG_IMR         0x10
#define NIC_REG_MAC_LO      0x14
#define NIC_REG_MAC_HI      0x18
#define NIC_REG_RX_BASE     0x1C
#define NIC_REG_RX_SIZE     0x20
#define NIC_REG_RX_NEXT     0x24
#define NIC_REG_TX_BASE     0x28
#define NIC_REG_TX_SIZE     0x2C
#define NIC_REG_TX_NEXT     0x30
#define NIC_REG_TX_DOORBELL 0x34
#define NIC_REG_RX_DROPS    0x38
#define NIC_REG_ERR_CAUSE   0x3C

#define NIC_CTRL_RX_EN   0x1u
#define NIC_CTRL_TX_EN   0x2u
#define NIC_CTRL_RESET   0x80000000u
#define NIC_STATUS_LINK  0x1u

#define NIC_INT_RX       0x01u
#define NIC_INT_TX       0x02u
#define NIC_INT_RX_NOBUF 0x04u
#define NIC_INT_LINK     0x08u
#define NIC_INT_ERROR    0x10u

#define NIC_DESC_OWN     0x1u
#define NIC_DESC_OK      0
#define NIC_DESC_ERR_LEN 1
#define NIC_DESC_ERR_DMA 2
#define NIC_DESC_ERR_LINK 3

/* nic_init flags. */
#define NIC_USE_IRQ 0x1u

/* Return values of nic_init and nic_send. */
#define NIC_OK          0
#define NIC_ENODEV     (-1)   /* no pvnic at NIC_BASE */
#define NIC_EINVAL     (-2)   /* a frame of 0 or more than NIC_MTU bytes */
#define NIC_EBUSY      (-3)   /* no free TX descriptor */
#define NIC_ESEND      (-4)   /* the device completed the frame with an error (nic_last_tx_status) */

struct nic_stats {
	uint32_t rx_frames;      /* frames taken by nic_recv */
	uint32_t rx_errors;      /* descriptors the device returned with an error */
	uint32_t rx_too_big;     /* frames dropped by nic_recv because they did not fit the caller's buffer */
	uint32_t tx_frames;
	uint32_t tx_errors;
	uint32_t irqs;           /* IRQ 11 interrupts handled */
	uint32_t device_drops;   /* the device's RX_DROPS register */
	uint32_t isr_seen;       /* every interrupt cause seen (ORed) */
};

/* Resets the device, sets up the rings and enables RX and TX. With
 * NIC_USE_IRQ, installs the IRQ 11 handler and enables the RX, TX, RX_NOBUF,
 * LINK and ERROR interrupts (the caller enables interrupts with sti). Returns
 * NIC_OK or NIC_ENODEV. */
int nic_init(unsigned flags);
void nic_mac(uint8_t mac[6]);
int nic_link_up(void);

/* The next received frame, copied into buf: its length, or 0 if none is
 * waiting. A frame longer than cap is dropped (and counted). Never blocks. */
uint32_t nic_recv(void *buf, uint32_t cap);
/* Whether a received frame is waiting. */
int nic_rx_ready(void);
/* Waits for a frame and returns it as nic_recv does. With NIC_USE_IRQ the CPU
 * sleeps in HLT (interrupts are enabled on return); otherwise it polls. */
uint32_t nic_recv_wait(void *buf, uint32_t cap);

/* Copies the frame into a TX buffer and rings the doorbell. Returns NIC_OK
 * once the frame is queued (pvnic completes it during the doorbell), or
 * NIC_EINVAL, NIC_EBUSY, NIC_ESEND. */
int nic_send(const void *frame, uint32_t len);
/* The status the device gave the last completed TX descriptor. */
uint32_t nic_last_tx_status(void);

/* Reads and acknowledges the interrupt status; returns the causes. The IRQ
 * handler calls it; a polling driver may too. */
uint32_t nic_service(void);

void nic_get_stats(struct nic_stats *s);

#endif
