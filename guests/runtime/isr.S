/*
 * Descriptor-table loading and the interrupt entry stubs.
 *
 * There is one stub per vector (256); isr_table[n] holds the address of
 * stub n, from which cpu.c fills the IDT. A stub pushes a zero "error code"
 * when the CPU pushes none (so every frame has the same layout), pushes its
 * vector and jumps to isr_common, which saves the general registers, calls
 * isr_dispatch(struct isr_frame *) (cpu.c) and returns with IRET.
 *
 * Everything runs in ring 0 with the same flat selectors, so an interrupt
 * never changes a segment register and the stubs need not save them.
 */

	.file "isr.S"

#define CODE_SEL 0x08
#define DATA_SEL 0x10

	.text

/* void gdt_load(const struct table_ptr *gdtr): LGDT, then a far jump to
 * reload CS and moves to reload the data segment registers. */
	.globl gdt_load
	.type gdt_load, @function
gdt_load:
	movl 4(%esp), %eax
	lgdt (%eax)
	ljmp $CODE_SEL, $1f
1:	movw $DATA_SEL, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	ret
	.size gdt_load, . - gdt_load

/* void idt_load(const struct table_ptr *idtr) */
	.globl idt_load
	.type idt_load, @function
idt_load:
	movl 4(%esp), %eax
	lidt (%eax)
	ret
	.size idt_load, . - idt_load

/* Exceptions for which the CPU pushes an error code: #DF 8, #TS 10, #NP 11,
 * #SS 12, #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30. */
#define HAS_ERROR_CODE(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

	/* isr_table[n]: the address of vector n's stub (cpu.c fills the IDT from it). */
	.section .rodata
	.balign 4
	.globl isr_table
isr_table:
	.text
	.set vec, 0
	.rept 256
1:	.if (HAS_ERROR_CODE(vec)) == 0
	pushl $0
	.endif
	pushl $vec
	jmp isr_common
	.pushsection .rodata
	.long 1b
	.popsection
	.set vec, vec + 1
	.endr

	.type isr_common, @function
isr_common:
	pushal
	cld                              /* the C code expects DF = 0; IRET restores EFLAGS */
	pushl %esp                       /* struct isr_frame * */
	call isr_dispatch
	addl $4, %esp
	popal
	addl $8, %esp                    /* the vector and the error code */
	iret
	.size isr_common, . - isr_common

	.section .note.GNU-stack, "", @progbits
