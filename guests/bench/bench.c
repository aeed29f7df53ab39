/*
 * lockstep CPU benchmark guest. Runs the kernels of kernels.c, prints each
 * checksum and the total, and exits with 0 when they all equal the values
 * the native build of the same code computed (expected.h, generated at build
 * time); otherwise with a bit set per wrong kernel (bit 5: CRC self-test,
 * bit 6: total). The console is the UART when there is one, else the debug
 * console (port 0xE9).
 */
#include "runtime.h"
#include "kernels.h"
#include "expected.h"

/* No GDT/IDT/PIC set-up: the benchmark needs no interrupts, and so it also
 * runs on a core without descriptor tables (lockstep's simple runner). */
RUNTIME_BARE;

static const uint32_t expected[BENCH_KERNELS] = EXPECTED_CHECKSUMS;

int main(void) {
	uint32_t status = 0;
	uint32_t results[BENCH_KERNELS];

	printf("lockstep cpu bench: %d kernels\n", BENCH_KERNELS);
	uint32_t check = crc32_update(0, (const uint8_t *)"123456789", 9);
	if (check != 0xCBF43926u) {
		printf("crc32 self-test: %08x, expected cbf43926\n", check);
		status |= 1u << 5;
	}
	for (int i = 0; i < BENCH_KERNELS; i++) {
		results[i] = bench_kernels[i].run(bench_kernels[i].seed);
		int ok = results[i] == expected[i];
		printf("%-8s %08x %s\n", bench_kernels[i].name, results[i], ok ? "ok" : "MISMATCH");
		if (!ok) {
			printf("         expected %08x\n", expected[i]);
			status |= 1u << i;
		}
	}
	uint32_t total = bench_total(results);
	printf("%-8s %08x %s\n", "total", total, total == EXPECTED_TOTAL ? "ok" : "MISMATCH");
	if (total != EXPECTED_TOTAL) status |= 1u << 6;
	printf("%s\n", status == 0 ? "PASS" : "FAIL");
	return (int)status;
}
