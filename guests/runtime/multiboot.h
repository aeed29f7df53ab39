/*
 * Multiboot v1 (specification 0.6.96): the constants crt0 uses and the boot
 * information structure a loader passes in EBX.
 */
#ifndef LOCKSTEP_MULTIBOOT_H
#define LOCKSTEP_MULTIBOOT_H

#define MULTIBOOT_HEADER_MAGIC      0x1BADB002
#define MULTIBOOT_BOOTLOADER_MAGIC  0x2BADB002

/* Header flags (bits 0-15 are requirements the loader must meet). */
#define MULTIBOOT_PAGE_ALIGN        0x00000001   /* modules on 4 KiB boundaries */
#define MULTIBOOT_MEMORY_INFO       0x00000002   /* mem_* fields (and the memory map) wanted */

/* Information structure flags: which fields are valid. */
#define MULTIBOOT_INFO_MEMORY       0x00000001   /* mem_lower, mem_upper */
#define MULTIBOOT_INFO_BOOTDEV      0x00000002
#define MULTIBOOT_INFO_CMDLINE      0x00000004
#define MULTIBOOT_INFO_MODS         0x00000008
#define MULTIBOOT_INFO_MEM_MAP      0x00000040   /* mmap_length, mmap_addr */
#define MULTIBOOT_INFO_LOADER_NAME  0x00000200

#ifndef __ASSEMBLER__
#include <stdint.h>

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower;        /* KiB of memory from 0 (at most 640) */
	uint32_t mem_upper;        /* KiB of memory from 1 MiB up to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;          /* physical address of a NUL-terminated string */
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;      /* bytes of memory map */
	uint32_t mmap_addr;        /* the first entry's size field */
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name; /* physical address of a NUL-terminated string */
	uint32_t apm_table;
	uint32_t vbe_control_info;
	uint32_t vbe_mode_info;
	uint16_t vbe_mode;
	uint16_t vbe_interface_seg;
	uint16_t vbe_interface_off;
	uint16_t vbe_interface_len;
};

/* One memory map entry. `size` (20 here) does not count itself: the next
 * entry starts size + 4 bytes further on. */
struct multiboot_mmap_entry {
	uint32_t size;
	uint32_t base_lo, base_hi;
	uint32_t length_lo, length_hi;
	uint32_t type;             /* 1 = available RAM */
} __attribute__((packed));

#endif
#endif
