// Hand encoders for the few x86 forms the tests assemble (SDM Vol. 2A,
// chapter 2 and appendix A). Only byte layout lives here: no semantics.

export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;
export const ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;

export const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, TF = 0x100, IF = 0x200, DF = 0x400, OF = 0x800;
export const STATUS = CF | PF | AF | ZF | SF | OF;

export const le16 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff];
export const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
export const modrm = (mod: number, reg: number, rm: number): number => ((mod & 3) << 6) | ((reg & 7) << 3) | (rm & 7);
export const sib = (scale: number, index: number, base: number): number => ((scale & 3) << 6) | ((index & 7) << 3) | (base & 7);

/** MOV r32, imm32 (B8+r). */
export const movRI = (r: number, v: number): number[] => [0xb8 + r, ...le32(v)];
/** MOV r32, r32 (89 /r, register form). */
export const movRR = (dst: number, src: number): number[] => [0x89, modrm(3, src, dst)];
export const NOP = 0x90;
export const HLT = 0xf4;

/**
 * A 32-bit memory operand [base + index*scale + disp] in its shortest ModRM
 * encoding (SDM Vol. 2A Table 2-2 / 2-3): returns the ModRM, SIB and
 * displacement bytes for ModRM reg field `reg`.
 */
export function mem32(reg: number, m: { base?: number; index?: number; scale?: number; disp?: number }): number[] {
  const disp = m.disp ?? 0;
  const scaleBits = ({ 1: 0, 2: 1, 4: 2, 8: 3 } as Record<number, number>)[m.scale ?? 1];
  if (scaleBits === undefined) throw new Error(`bad scale ${m.scale}`);
  if (m.index === ESP) throw new Error("ESP cannot be an index");
  const fits8 = disp >= -128 && disp <= 127;
  if (m.base === undefined) {
    if (m.index === undefined) return [modrm(0, reg, 5), ...le32(disp)];
    return [modrm(0, reg, 4), sib(scaleBits, m.index, 5), ...le32(disp)];
  }
  const mod = disp === 0 && m.base !== EBP ? 0 : fits8 ? 1 : 2;
  const dispBytes = mod === 0 ? [] : mod === 1 ? [disp & 0xff] : le32(disp);
  if (m.index === undefined && m.base !== ESP) return [modrm(mod, reg, m.base), ...dispBytes];
  return [modrm(mod, reg, 4), sib(scaleBits, m.index ?? 4, m.base), ...dispBytes];
}

export const hex = (v: number, w = 8): string => "0x" + (v >>> 0).toString(16).padStart(w, "0");
export const bytesHex = (b: ArrayLike<number>): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
