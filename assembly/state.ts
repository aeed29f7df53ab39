// The CPU state words that the host reads and writes directly (through
// target st()/setSt()), and the constants shared by every part of the core.
//
// Word 0..7 are the general registers in encoding order, so a ModRM reg field
// is the word index. Everything else the host sees goes through index.ts.

export const EAX: i32 = 0;
export const ECX: i32 = 1;
export const EDX: i32 = 2;
export const EBX: i32 = 3;
export const ESP: i32 = 4;
export const EBP: i32 = 5;
export const ESI: i32 = 6;
export const EDI: i32 = 7;

export const S_EIP: i32 = 8;
// Always 0: the decoded-instruction cache names it as the base or index of an
// address that has none, so every effective address is base + index<<s + disp.
export const ZERO_REG: i32 = 15;
// Segment registers in encoding order (ES CS SS DS FS GS): selector, then base.
export const S_SEL: i32 = 16;
export const S_BASE: i32 = 24;
export const SEG_ES: i32 = 0;
export const SEG_CS: i32 = 1;
export const SEG_SS: i32 = 2;
export const SEG_DS: i32 = 3;
export const SEG_FS: i32 = 4;
export const SEG_GS: i32 = 5;

// The retired-instruction counter, 64 bits as two words.
export const S_ICOUNT_LO: i32 = 32;
export const S_ICOUNT_HI: i32 = 33;
export const S_RAMSIZE: i32 = 34;

// Exit information: why run() returned and with what.
export const S_EXIT: i32 = 40;       // EXIT_* reason
export const S_EXIT_ADDR: i32 = 41;  // port, MMIO address, CPUID leaf (EAX in)
export const S_EXIT_SIZE: i32 = 42;  // access size in bytes; CPUID subleaf (ECX in)
export const S_EXIT_VALUE: i32 = 43; // value written (OUT, MMIO write)
export const S_EXIT_VECTOR: i32 = 44; // fault or INT vector
export const S_EXIT_ERROR: i32 = 45; // fault error code (-1: none)
export const S_EXIT_NEXT: i32 = 46;  // INT n: EIP of the following instruction
export const S_ABORT: i32 = 47;      // 1: the current instruction did not retire

// The host's answer to an input exit (IN, MMIO read, RDTSC, RDRAND, CPUID);
// consumed by the re-execution of the instruction that asked.
export const S_ANSWER_VALID: i32 = 48;
export const S_ANSWER: i32 = 49;     // 4 words

// Instructions left in the current run() (REP loops consume several).
export const S_LEFT: i32 = 54;
export const S_STEP_MODE: i32 = 55;
export const S_INSTR_EIP: i32 = 56;  // EIP of the instruction being executed

// MMIO: up to 8 ranges [start, end) of guest physical addresses.
export const S_MMIO_COUNT: i32 = 60;
export const S_MMIO: i32 = 61;       // 16 words
export const MMIO_MAX: i32 = 8;
// MMIO writes queued by the current instruction (address, size, value) x 4.
// (ENTER with nesting level 31 makes 32 stack writes, the most of any instruction.)
export const S_MMIOW_COUNT: i32 = 80;
export const S_MMIOW: i32 = 200;     // 3 words each
export const MMIOW_MAX: i32 = 64;
// The host's answers to the MMIO reads of the instruction being executed, in
// the order it makes them (CMPSD reads two; POPA from an MMIO stack eight).
export const S_MMIOR_COUNT: i32 = 81;
export const S_MMIOR_POS: i32 = 82;
export const S_MMIOR: i32 = 168;     // MMIOR_MAX words
export const MMIOR_MAX: i32 = 32;

// Control registers, stored for later paging support.
export const S_CR0: i32 = 96;
export const S_CR2: i32 = 97;
export const S_CR3: i32 = 98;
export const S_CR4: i32 = 99;

// Scratch words for instructions that must read several values before
// committing any (POPA, ENTER's frame links).
export const S_SCRATCH: i32 = 104; // 32 words

// Segment limits (the last valid offset, byte-granular) and attributes
// (descriptor access byte | D/B bit << 8 | unusable << 9), by segment.
export const S_LIMIT: i32 = 136;     // 6 words
export const S_ATTR: i32 = 142;      // 6 words
export const ATTR_DB: i32 = 0x100;
export const ATTR_UNUSABLE: i32 = 0x200;
// Descriptor tables.
export const S_GDT_BASE: i32 = 148;
export const S_GDT_LIMIT: i32 = 149;
export const S_IDT_BASE: i32 = 150;
export const S_IDT_LIMIT: i32 = 151;
// Interrupt state: halted by HLT; the one-instruction STI / MOV SS shadow;
// the host has an interrupt waiting (ends run() at the first point where it
// could be delivered).
export const S_HALTED: i32 = 152;
export const S_SHADOW: i32 = 153;
export const S_IRQ_PENDING: i32 = 154;
// Faults raised while delivering an exception (for double/triple fault).
export const S_DELIVERING: i32 = 155;
export const S_FIRST_VECTOR: i32 = 156;
// 1 once the guest has executed LIDT: exceptions and INT n go through the
// IDT. Before that they exit to the host (Fault / Int), as a machine with no
// handlers at all would otherwise triple-fault on the first one.
export const S_IDT_SET: i32 = 157;
// A triple fault raised while the host delivered an interrupt: reported by
// the next run().
export const S_PENDING_EXIT: i32 = 158;

// Why run() returned.
export const EXIT_BUDGET: i32 = 0;
export const EXIT_HLT: i32 = 1;
export const EXIT_IN: i32 = 2;
export const EXIT_OUT: i32 = 3;
export const EXIT_MMIO_READ: i32 = 4;
export const EXIT_MMIO_WRITE: i32 = 5;
export const EXIT_RDTSC: i32 = 6;
export const EXIT_RDRAND: i32 = 7;
export const EXIT_RDSEED: i32 = 8;
export const EXIT_CPUID: i32 = 9;
export const EXIT_INT: i32 = 10;
export const EXIT_FAULT: i32 = 11;
// A fault while delivering a double fault: the machine is dead (the vector
// field holds the first exception, the error field the second).
export const EXIT_TRIPLE_FAULT: i32 = 12;
// The host asked to be told when an interrupt can be delivered (IF=1, no
// shadow) and that moment has come; the last instruction retired.
export const EXIT_IRQ_WINDOW: i32 = 13;

// Exception vectors.
export const VEC_DE: i32 = 0;
export const VEC_BP: i32 = 3;
export const VEC_OF: i32 = 4;
export const VEC_UD: i32 = 6;
export const VEC_DF: i32 = 8;
export const VEC_TS: i32 = 10;
export const VEC_NP: i32 = 11;
export const VEC_SS: i32 = 12;
export const VEC_GP: i32 = 13;

// EFLAGS bits.
export const CF: i32 = 0x1;
export const PF: i32 = 0x4;
export const AF: i32 = 0x10;
export const ZF: i32 = 0x40;
export const SF: i32 = 0x80;
export const TF: i32 = 0x100;
export const IF: i32 = 0x200;
export const DF: i32 = 0x400;
export const OF: i32 = 0x800;
export const STATUS: i32 = 0x8d5; // CF PF AF ZF SF OF
// Bits software can change with POPF at CPL 0 (no VM86, no AC/ID games yet):
// CF PF AF ZF SF TF IF DF OF IOPL NT AC ID.
export const FLAGS_WRITABLE: i32 = 0x247fd5;

// Instructions retired by the last run()/step().
export const S_EXECUTED: i32 = 57;
