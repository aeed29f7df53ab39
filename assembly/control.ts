// Branch targets: EIP is an offset in CS; with a 16-bit operand size a branch
// truncates EIP to 16 bits (SDM Vol. 2A, JMP/CALL/Jcc "IF OperandSize = 16").

import { st } from "./target/wasm";
import { S_BASE, SEG_CS } from "./state";
import { getIp, setIp, isO16 } from "./decode";

/** EIP of the instruction that follows the one being decoded (all bytes fetched). */
// @ts-ignore: decorator
@inline export function nextEip(): i32 { return (getIp() - st(S_BASE + SEG_CS)) | 0; }

/** Continues execution at offset `target` in CS. */
export function jumpTo(target: i32): void {
  const t = isO16() ? target & 0xffff : target;
  setIp((st(S_BASE + SEG_CS) + t) | 0);
}
/** Relative branch by `rel` from the next instruction. */
// @ts-ignore: decorator
@inline export function jumpRel(rel: i32): void {
  // 32-bit: CS base + (next EIP + rel) is just the next linear address + rel.
  if (!isO16()) setIp((getIp() + rel) | 0);
  else jumpTo((nextEip() + rel) | 0);
}
