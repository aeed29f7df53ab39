/*
 * The 16550A UART at COM1 (0x3F8, IRQ 4).
 *
 * Polled mode (after serial_init): serial_putc waits for THRE (the transmit
 * holding register/FIFO empty) and writes THR; serial_getc reads RBR when LSR
 * says data is ready.
 *
 * Interrupt mode (serial_enable_irq): IER enables the received-data and THRE
 * interrupts; the IRQ 4 handler moves received bytes into rx_ring and, on
 * THRE, refills the 16-byte transmit FIFO from tx_ring. serial_putc queues
 * the byte and kicks the transmitter itself when it is idle; THRE interrupts
 * are enabled only while bytes are queued. With interrupts off (in a handler,
 * an exception report, or exit) nothing would drain the ring, so output is
 * then written by polling, after whatever is still queued.
 */
#include "runtime.h"

#define RBR 0   /* receive buffer (read, DLAB 0) */
#define THR 0   /* transmit holding (write, DLAB 0) */
#define DLL 0   /* divisor latch low (DLAB 1) */
#define IER 1   /* interrupt enable (DLAB 0) */
#define DLM 1   /* divisor latch high (DLAB 1) */
#define IIR 2   /* interrupt identification (read) */
#define FCR 2   /* FIFO control (write) */
#define LCR 3   /* line control */
#define MCR 4   /* modem control */
#define LSR 5   /* line status */
#define MSR 6   /* modem status */
#define SCR 7   /* scratch */

#define IER_RDA   0x01   /* received data available (and character timeout) */
#define IER_THRE  0x02   /* transmit holding register empty */
#define IER_RLS   0x04   /* receiver line status */
#define LCR_8N1   0x03
#define LCR_DLAB  0x80
#define FCR_ENABLE_CLEAR_14 0xC7   /* FIFOs on, both cleared, RX trigger at 14 bytes */
#define MCR_DTR_RTS_OUT2 0x0B      /* OUT2 gates the UART's interrupt onto the ISA line */
#define LSR_DR    0x01   /* data ready */
#define LSR_OE    0x02   /* overrun error */
#define LSR_THRE  0x20   /* THR (FIFO) empty */
#define LSR_TEMT  0x40   /* THR and the shift register empty */
#define IIR_NONE  0x01   /* no interrupt pending */

#define FIFO_SIZE 16
#define BAUD_DIVISOR 1   /* 115200 baud from the 1.8432 MHz clock */
/* Bounds on busy-waits, so a stuck UART cannot hang the guest forever. */
#define POLL_TRIES 10000000

#define RX_SIZE 256      /* powers of two: indices wrap with a mask */
#define TX_SIZE 1024

static int present;
static int irq_mode;

static volatile uint8_t rx_ring[RX_SIZE];
static volatile uint32_t rx_head, rx_tail;   /* head: next write (handler), tail: next read */
static volatile uint32_t rx_dropped;
static volatile uint8_t tx_ring[TX_SIZE];
static volatile uint32_t tx_head, tx_tail;   /* head: next write (serial_putc), tail: next send */
static uint8_t ier;

static uint8_t reg_read(int r) { return inb((uint16_t)(COM1_PORT + r)); }
static void reg_write(int r, uint8_t v) { outb((uint16_t)(COM1_PORT + r), v); }

int serial_init(void) {
	/* Probe: the scratch register holds what was written. Without a UART
	 * the port floats and reads 0xFF. */
	reg_write(SCR, 0x5A);
	if (reg_read(SCR) != 0x5A) return present = 0;
	reg_write(SCR, 0xA5);
	if (reg_read(SCR) != 0xA5) return present = 0;

	reg_write(IER, 0);
	reg_write(LCR, LCR_DLAB);
	reg_write(DLL, BAUD_DIVISOR & 0xFF);
	reg_write(DLM, BAUD_DIVISOR >> 8);
	reg_write(LCR, LCR_8N1);
	reg_write(FCR, FCR_ENABLE_CLEAR_14);
	reg_write(MCR, MCR_DTR_RTS_OUT2);
	(void)reg_read(LSR);   /* clear stale line status */
	(void)reg_read(MSR);
	ier = 0;
	irq_mode = 0;
	return present = 1;
}

int serial_present(void) { return present; }

static void poll_put(uint8_t c) {
	for (int i = 0; i < POLL_TRIES && !(reg_read(LSR) & LSR_THRE); i++) continue;
	reg_write(THR, c);
}

static void set_ier(uint8_t v) {
	if (v != ier) {
		ier = v;
		reg_write(IER, v);
	}
}

/* With interrupts off: if the transmitter is empty, moves up to a FIFO's
 * worth of queued bytes into it, then wants THRE interrupts only while bytes
 * remain queued. */
static void tx_kick(void) {
	if (tx_head != tx_tail && (reg_read(LSR) & LSR_THRE)) {
		for (int n = 0; n < FIFO_SIZE && tx_head != tx_tail; n++) {
			reg_write(THR, tx_ring[tx_tail & (TX_SIZE - 1)]);
			tx_tail++;
		}
	}
	set_ier(tx_head != tx_tail ? (uint8_t)(ier | IER_THRE) : (uint8_t)(ier & ~IER_THRE));
}

/* With interrupts off: sends everything queued by polling. */
static void tx_drain_polled(void) {
	while (tx_head != tx_tail) {
		poll_put(tx_ring[tx_tail & (TX_SIZE - 1)]);
		tx_tail++;
	}
	set_ier((uint8_t)(ier & ~IER_THRE));
}

static void rx_take(void) {
	for (int n = 0; n < 4 * FIFO_SIZE; n++) {
		uint8_t lsr = reg_read(LSR);
		if (lsr & LSR_OE) rx_dropped++;
		if (!(lsr & LSR_DR)) break;
		uint8_t c = reg_read(RBR);
		if (rx_head - rx_tail < RX_SIZE) {
			rx_ring[rx_head & (RX_SIZE - 1)] = c;
			rx_head++;
		} else {
			rx_dropped++;
		}
	}
}

static void on_irq(int irq) {
	(void)irq;
	/* Serve every pending cause; IIR reports the highest-priority one. */
	for (int n = 0; n < 8; n++) {
		uint8_t iir = reg_read(IIR);
		if (iir & IIR_NONE) break;
		switch ((iir >> 1) & 7) {
		case 3:                 /* receiver line status: reading LSR clears it */
			if (reg_read(LSR) & LSR_OE) rx_dropped++;
			break;
		case 2:                 /* received data available */
		case 6:                 /* character timeout (FIFO mode) */
			rx_take();
			break;
		case 1:                 /* THR empty (reading IIR cleared it) */
			tx_kick();
			break;
		case 0:                 /* modem status: reading MSR clears it */
			(void)reg_read(MSR);
			break;
		default:
			return;
		}
	}
}

void serial_enable_irq(void) {
	if (!present || irq_mode) return;
	if (!cpu_tables_loaded()) panic("serial_enable_irq in a guest without an IDT (RUNTIME_BARE)");
	uint32_t fl = irq_save();
	rx_take();   /* anything that arrived while polling */
	irq_mode = 1;
	irq_install(COM1_IRQ, on_irq);
	set_ier(IER_RDA | IER_RLS);
	irq_restore(fl);
}

void serial_putc(int c) {
	if (!present) return;
	if (!irq_mode) {
		poll_put((uint8_t)c);
		return;
	}
	uint32_t fl = irq_save();
	if (!(fl & EFLAGS_IF)) {
		/* Interrupts were off: nothing will drain the ring. Keep the order. */
		tx_drain_polled();
		poll_put((uint8_t)c);
		return;
	}
	/* Ring full: push bytes out by polling until there is room. */
	for (int i = 0; tx_head - tx_tail >= TX_SIZE && i < POLL_TRIES; i++) tx_kick();
	if (tx_head - tx_tail >= TX_SIZE) tx_drain_polled();
	tx_ring[tx_head & (TX_SIZE - 1)] = (uint8_t)c;
	tx_head++;
	tx_kick();
	irq_restore(fl);
}

int serial_getc(void) {
	if (!present) return -1;
	if (!irq_mode) return (reg_read(LSR) & LSR_DR) ? reg_read(RBR) : -1;
	uint32_t fl = irq_save();
	int c = -1;
	if (rx_head != rx_tail) {
		c = rx_ring[rx_tail & (RX_SIZE - 1)];
		rx_tail++;
	}
	irq_restore(fl);
	return c;
}

int serial_rx_pending(void) {
	if (!present) return 0;
	if (!irq_mode) return (reg_read(LSR) & LSR_DR) ? 1 : 0;
	return (int)(rx_head - rx_tail);
}

uint32_t serial_rx_dropped(void) { return rx_dropped; }

void serial_flush(void) {
	if (!present) return;
	uint32_t fl = irq_save();
	tx_drain_polled();
	for (int i = 0; i < POLL_TRIES && !(reg_read(LSR) & LSR_TEMT); i++) continue;
	irq_restore(fl);
}
