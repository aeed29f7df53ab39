/*
 * Our GDT and IDT, and the C side of interrupt handling.
 *
 * GDT: null, flat ring-0 code (0x08), flat ring-0 data (0x10); base 0, limit
 * 4 GiB, 4 KiB granularity, 32-bit.
 * IDT: 256 32-bit interrupt gates (interrupts off in every handler) to the
 * stubs of isr.S. Vectors 0-31 are CPU exceptions: the runtime prints the
 * vector, error code and registers and exits with EXIT_EXCEPTION_BASE +
 * vector. Vectors 0x20-0x2F are IRQs 0-15 (the PICs are remapped there).
 * Any other vector prints a message and exits with EXIT_UNEXPECTED_VECTOR.
 */
#include "runtime.h"

struct table_ptr {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

/* Descriptor words: limit 0xFFFFF with G = 1 (4 GiB), D = 1, present, ring 0. */
#define SEG_DESC(access) (0x0000FFFFull | ((uint64_t)(access) << 40) | (0xCFull << 48))
static const uint64_t gdt[3] __attribute__((aligned(8))) = {
	0,
	SEG_DESC(0x9A),   /* code: present, DPL 0, execute/read */
	SEG_DESC(0x92),   /* data: present, DPL 0, read/write */
};

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t zero;
	uint8_t type_attr;   /* 0x8E: present, DPL 0, 32-bit interrupt gate */
	uint16_t offset_hi;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(8)));
static int tables_loaded;

extern const uint32_t isr_table[256];   /* isr.S: the address of each vector's stub */
void gdt_load(const struct table_ptr *gdtr);
void idt_load(const struct table_ptr *idtr);
void isr_dispatch(struct isr_frame *f);

void cpu_init(void) {
	static const struct table_ptr gdtr = { sizeof gdt - 1, (uint32_t)gdt };
	gdt_load(&gdtr);
	for (int v = 0; v < 256; v++) {
		uint32_t at = isr_table[v];
		idt[v].offset_lo = (uint16_t)at;
		idt[v].selector = GDT_CODE_SEL;
		idt[v].zero = 0;
		idt[v].type_attr = 0x8E;
		idt[v].offset_hi = (uint16_t)(at >> 16);
	}
	static struct table_ptr idtr;
	idtr.limit = sizeof idt - 1;
	idtr.base = (uint32_t)idt;
	idt_load(&idtr);
	tables_loaded = 1;
}

int cpu_tables_loaded(void) { return tables_loaded; }

/* ---- exceptions */

static const char *const exception_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range exceeded",
	"#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor segment overrun",
	"#TS invalid TSS", "#NP segment not present", "#SS stack-segment fault", "#GP general protection",
	"#PF page fault", "reserved", "#MF x87 floating-point error", "#AC alignment check", "#MC machine check",
	"#XM SIMD floating-point", "#VE virtualization", "#CP control protection",
	"reserved", "reserved", "reserved", "reserved", "reserved", "reserved",
	"#HV hypervisor injection", "#VC VMM communication", "#SX security", "reserved",
};

static void __attribute__((noreturn)) report_exception(const struct isr_frame *f) {
	printf("\n*** CPU exception %u (%s), error code 0x%08x, at EIP 0x%08x CS 0x%04x EFLAGS 0x%08x\n",
	       f->vector, exception_names[f->vector], f->error_code, f->eip, f->cs & 0xffff, f->eflags);
	printf("*** EAX %08x EBX %08x ECX %08x EDX %08x ESI %08x EDI %08x EBP %08x ESP %08x\n",
	       f->eax, f->ebx, f->ecx, f->edx, f->esi, f->edi, f->ebp,
	       (uint32_t)((const char *)f + sizeof *f)); /* ESP before the CPU pushed its frame (same ring) */
	exit(EXIT_EXCEPTION_BASE + (int)f->vector);
}

/* ---- IRQs */

static irq_handler_t irq_handlers[16];
static volatile uint32_t irq_counts[16];
static volatile uint32_t spurious;

int irq_install(int irq, irq_handler_t handler) {
	if (irq < 0 || irq > 15 || !handler) return -1;
	if (!tables_loaded) panic("irq_install(%d) in a guest without an IDT (RUNTIME_BARE)", irq);
	uint32_t fl = irq_save();
	irq_handlers[irq] = handler;
	pic_unmask(irq);
	irq_restore(fl);
	return 0;
}

void irq_uninstall(int irq) {
	if (irq < 0 || irq > 15) return;
	uint32_t fl = irq_save();
	pic_mask(irq);
	irq_handlers[irq] = 0;
	irq_restore(fl);
}

uint32_t irq_count(int irq) { return irq >= 0 && irq < 16 ? irq_counts[irq] : 0; }
uint32_t irq_spurious_count(void) { return spurious; }

static void dispatch_irq(int irq) {
	/* IRQ 7 and 15 may be spurious: a request withdrawn before the CPU
	 * acknowledged it. The line's in-service bit is then clear, and no EOI
	 * is due (except to the master for a spurious slave request, which the
	 * master did see as a real IRQ 2). */
	if ((irq == 7 || irq == 15) && !(pic_read_isr() & (1u << irq))) {
		spurious++;
		if (irq == 15) pic_eoi(2);
		return;
	}
	irq_counts[irq]++;
	irq_handler_t h = irq_handlers[irq];
	if (h) h(irq);
	pic_eoi(irq);
}

void isr_dispatch(struct isr_frame *f) {
	uint32_t v = f->vector;
	if (v < 32) report_exception(f);
	if (v >= IRQ_BASE && v < IRQ_BASE + 16) {
		dispatch_irq((int)(v - IRQ_BASE));
		return;
	}
	printf("\n*** unexpected interrupt on vector %u at EIP 0x%08x\n", v, f->eip);
	exit(EXIT_UNEXPECTED_VECTOR);
}
