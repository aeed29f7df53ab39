// Names of the x86 exception vectors, for messages about a fault that stopped
// the machine (SDM Vol. 3, "Exception and Interrupt Vectors").

export const VECTOR_NAMES: Record<number, string> = {
  0: "#DE divide error", 1: "#DB debug", 3: "#BP breakpoint", 4: "#OF overflow", 5: "#BR bound range",
  6: "#UD invalid opcode", 7: "#NM device not available", 8: "#DF double fault", 10: "#TS invalid TSS",
  11: "#NP segment not present", 12: "#SS stack fault", 13: "#GP general protection", 14: "#PF page fault",
  16: "#MF x87 error", 17: "#AC alignment check", 18: "#MC machine check", 19: "#XM SIMD exception",
};
