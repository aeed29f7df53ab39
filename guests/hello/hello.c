/*
 * hello: the smallest Multiboot guest. Prints a greeting, the memory sizes
 * and the command line the loader passed, and exits with status 0, or with
 * N when the command line has a word exit=N.
 */
#include "runtime.h"

int main(void) {
	printf("hello from lockstep\n");
	uint32_t lower, upper;
	if (boot_memory(&lower, &upper))
		printf("memory: lower %u KiB, upper %u KiB (%u MiB in all)\n", lower, upper, (upper + 1024) / 1024);
	else
		printf("memory: not reported by the loader\n");
	printf("cmdline: \"%s\"\n", boot_cmdline());
	uint32_t status = boot_arg_uint("exit", 0);
	printf("exit status %u\n", status);
	return (int)status;
}
