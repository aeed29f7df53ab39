// CPUID: the fixed, deterministic CPU description the machine answers with
// (docs/machine.md). The same leaves on every engine and every run, so a
// guest that looks at them behaves the same everywhere.

/** The vendor string, 12 bytes: EBX, EDX, ECX of leaf 0. */
export const CPUID_VENDOR = "LockstepCPU ";
export const CPUID_BRAND = "Lockstep virtual i386 CPU";
/** Leaf 1 EAX: family 6, model 1, stepping 0 (CMOV, CX8 and TSC are P6-era features). */
export const CPUID_SIGNATURE = (6 << 8) | (1 << 4) | 0;
/** Leaf 1 EDX: TSC (4), CX8 (8), CMOV (15). No FPU, MSR, APIC, MMX or SSE. */
export const CPUID_1_EDX = (1 << 4) | (1 << 8) | (1 << 15);
/** Leaf 1 ECX: RDRAND (30). */
export const CPUID_1_ECX = 1 << 30;
/** Leaf 7 subleaf 0 EBX: RDSEED (18). */
export const CPUID_7_EBX = 1 << 18;
/** The highest basic leaf (leaf 0 EAX). */
export const CPUID_MAX_BASIC = 7;
/** The highest extended leaf (leaf 0x80000000 EAX): the brand string's last. */
export const CPUID_MAX_EXT = 0x80000004;

function str4(s: string, at: number): number {
  let v = 0;
  for (let i = 3; i >= 0; i--) v = (v << 8) | (s.charCodeAt(at + i) || 0);
  return v >>> 0;
}

/** EAX, EBX, ECX, EDX for CPUID leaf/subleaf. Leaves not listed read as zeros. */
export function cpuidAnswer(leaf: number, subleaf: number): [number, number, number, number] {
  leaf >>>= 0;
  switch (leaf) {
    case 0:
      return [CPUID_MAX_BASIC, str4(CPUID_VENDOR, 0), str4(CPUID_VENDOR, 8), str4(CPUID_VENDOR, 4)];
    case 1:
      return [CPUID_SIGNATURE, 0, CPUID_1_ECX, CPUID_1_EDX];
    case 7:
      return subleaf === 0 ? [0, CPUID_7_EBX, 0, 0] : [0, 0, 0, 0];
    case 0x80000000:
      return [CPUID_MAX_EXT, 0, 0, 0];
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const brand = CPUID_BRAND.padEnd(48, "\0");
      const at = (leaf - 0x80000002) * 16;
      return [str4(brand, at), str4(brand, at + 4), str4(brand, at + 8), str4(brand, at + 12)];
    }
    default:
      return [0, 0, 0, 0];
  }
}
