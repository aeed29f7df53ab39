/*
 * The CMOS real-time clock (ports 0x70/0x71). Registers 0x00-0x09 hold the
 * time and date; status register A bit 7 is "update in progress" (the
 * registers may be mid-change); status register B bit 2 selects binary
 * instead of BCD, bit 1 24-hour instead of 12-hour mode (where bit 7 of the
 * hour is PM).
 */
#include "runtime.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA  0x71

#define REG_SECONDS 0x00
#define REG_MINUTES 0x02
#define REG_HOURS   0x04
#define REG_DAY     0x07
#define REG_MONTH   0x08
#define REG_YEAR    0x09
#define REG_A       0x0A
#define REG_B       0x0B
#define A_UIP       0x80
#define B_24HOUR    0x02
#define B_BINARY    0x04

/* How long to wait for an update to finish before giving up (an update takes
 * under 2 ms; an absent RTC reads 0xFF, update in progress forever). */
#define UIP_TRIES 1000000

static uint8_t cmos_read(uint8_t reg) {
	outb(CMOS_INDEX, reg);   /* bit 7 clear: NMI stays enabled */
	return inb(CMOS_DATA);
}

static int wait_no_update(void) {
	for (int i = 0; i < UIP_TRIES; i++) {
		if (!(cmos_read(REG_A) & A_UIP)) return 0;
	}
	return -1;
}

struct raw { uint8_t sec, min, hour, day, month, year; };

static void read_raw(struct raw *r) {
	r->sec = cmos_read(REG_SECONDS);
	r->min = cmos_read(REG_MINUTES);
	r->hour = cmos_read(REG_HOURS);
	r->day = cmos_read(REG_DAY);
	r->month = cmos_read(REG_MONTH);
	r->year = cmos_read(REG_YEAR);
}

static uint8_t bcd(uint8_t v) { return (uint8_t)((v >> 4) * 10 + (v & 0x0F)); }

int rtc_read(struct rtc_time *t) {
	struct raw a, b;
	if (wait_no_update() < 0) return -1;
	read_raw(&a);
	/* An update may have started right after the check: read again until two
	 * reads agree. */
	for (int tries = 0;; tries++) {
		if (tries == 16 || wait_no_update() < 0) return -1;
		read_raw(&b);
		if (memcmp(&a, &b, sizeof a) == 0) break;
		a = b;
	}
	uint8_t regb = cmos_read(REG_B);
	int pm = a.hour & 0x80;
	uint8_t hour = a.hour & 0x7F;
	if (!(regb & B_BINARY)) {
		a.sec = bcd(a.sec);
		a.min = bcd(a.min);
		hour = bcd(hour);
		a.day = bcd(a.day);
		a.month = bcd(a.month);
		a.year = bcd(a.year);
	}
	if (!(regb & B_24HOUR)) hour = (uint8_t)(hour % 12 + (pm ? 12 : 0));   /* 12 AM is 0, 12 PM is 12 */
	t->second = a.sec;
	t->minute = a.min;
	t->hour = hour;
	t->day = a.day;
	t->month = a.month;
	t->year = (uint16_t)(a.year < 70 ? 2000 + a.year : 1900 + a.year);
	return 0;
}
