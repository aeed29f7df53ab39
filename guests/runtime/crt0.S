/*
 * crt0 for lockstep guests: the Multiboot v1 header and the entry point.
 *
 * Entered in flat 32-bit protected mode with interrupts off, either by a
 * Multiboot loader (EAX = 0x2BADB002, EBX = the info structure) or by the
 * lockstep simple runner (same EAX, EBX = 0). Sets up a stack, zeroes .bss,
 * calls main(), then writes main's return value to port 0xF4 (the
 * isa-debug-exit convention) and halts for good.
 */

	.file "crt0.S"                    /* else the symbol table names a random temporary object */

#define MB_MAGIC     0x1BADB002
#define MB_FLAGS     0x00000003          /* bit 0: page-align modules, bit 1: memory info */
#define MB_CHECKSUM  (-(MB_MAGIC + MB_FLAGS))

#define EXIT_PORT    0xF4
#define STACK_SIZE   0x10000

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC
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
	call main

	movw $EXIT_PORT, %dx
	outl %eax, %dx
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
