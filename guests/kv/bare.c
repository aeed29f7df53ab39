/*
 * kvbare: the kv guest on the bare runtime (no GDT/IDT of our own, no PIC
 * set-up, interrupts never enabled). kv.c then polls the NIC's RX ring
 * instead of sleeping on IRQ 11, so it runs on a machine without interrupt
 * delivery; the ATA driver polls in any case.
 */
#include "runtime.h"

RUNTIME_BARE;
