/*
 * crt0 for lockstep guests: the Multiboot v1 header and the entry point.
 *
 * A Multiboot loader enters _start in flat 32-bit protected mode with paging
 * and interrupts off, EAX = 0x2BADB002 and EBX = the physical address of the
 * boot information structure. The segment registers hold flat selectors of
 * the loader's GDT, which we must not rely on (GDTR itself is undefined), and
 * ESP is undefined. So: our own stack first, EAX and EBX saved, .bss zeroed,
 * then runtime_start() (boot.c) loads our GDT and IDT and sets up the
 * devices, main() runs, and its return value goes to exit().
 */

	.file "crt0.S"                    /* else the symbol table names a random temporary object */

#include "multiboot.h"

#define MB_FLAGS     (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO)
#define MB_CHECKSUM  (-(MULTIBOOT_HEADER_MAGIC + MB_FLAGS))

#define STACK_SIZE   0x10000

	/* First in .text (link.ld), so well inside the first 8 KiB of the file. */
	.section .multiboot, "a"
	.balign 4
	.long MULTIBOOT_HEADER_MAGIC
	.long MB_FLAGS
	.long MB_CHECKSUM

	.text
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	movl $stack_top, %esp
	movl %eax, %edx                  /* keep the loader's magic and info pointer */
	movl %ebx, %ebp

	/* Zero .bss (the stack lives in its own section and is not zeroed). */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb

	movl %edx, boot_magic
	movl %ebp, boot_info
	xorl %ebp, %ebp                  /* end of the frame chain */
	call runtime_start
	call main
	pushl %eax
	call exit                        /* does not return */
1:	cli
	hlt
	jmp 1b
	.size _start, . - _start

	.data
	.balign 4
	.globl boot_magic, boot_info
boot_magic:	.long 0
boot_info:	.long 0

	.section .stack, "aw", @nobits
	.balign 16
	.space STACK_SIZE
stack_top:

	.section .note.GNU-stack, "", @progbits
