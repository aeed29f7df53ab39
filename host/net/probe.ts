// The endpoint probe (docs/ft-endpoints.md): a client asks each replica's
// host, on the replica's NIC port, which role it has, whether it is live and
// its epoch. Probes share the port with the guest's frames and are told
// apart by their first four bytes, "LSPB", which no kv frame starts with
// (kv frames start "LSKV", host/kv/protocol.ts). Decoding is strict: a probe
// that breaks a rule is refused with a ProbeError, and the host drops it.

export const PROBE_MAGIC = Uint8Array.of(0x4c, 0x53, 0x50, 0x42); // "LSPB"
export const PROBE_VERSION = 1;
export const PROBE_KIND_ASK = 0;
export const PROBE_KIND_ANSWER = 1;
export const PROBE_ASK_BYTES = 12;
export const PROBE_ANSWER_BYTES = 16;
export const PROBE_FLAG_LIVE = 1 << 0;

export type ProbeRole = "primary" | "backup";
const ROLE_CODES: Record<ProbeRole, number> = { primary: 1, backup: 2 };

export interface ProbeAsk {
  kind: "ask";
  /** Chosen by the client, echoed in the answer: an answer to an older probe is told apart. */
  nonce: number;
}

export interface ProbeAnswer {
  kind: "answer";
  nonce: number;
  role: ProbeRole;
  live: boolean;
  epoch: number;
}

export class ProbeError extends Error {
  constructor(readonly offset: number, what: string) {
    super(`probe: ${what} (offset ${offset})`);
    this.name = "ProbeError";
  }
}

/** Whether a datagram is meant as a probe (it may still be malformed): it starts with the magic. */
export function isProbe(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === PROBE_MAGIC[0] && b[1] === PROBE_MAGIC[1] && b[2] === PROBE_MAGIC[2] && b[3] === PROBE_MAGIC[3];
}

const u32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}
function checkU32(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${what} must be a 32-bit unsigned integer, got ${v}`);
}

function header(kind: number, bytes: number): Uint8Array {
  const b = new Uint8Array(bytes);
  b.set(PROBE_MAGIC, 0);
  b[4] = PROBE_VERSION;
  b[5] = kind;
  return b;
}

export function encodeProbeAsk(nonce: number): Uint8Array {
  checkU32("nonce", nonce);
  const b = header(PROBE_KIND_ASK, PROBE_ASK_BYTES);
  put32(b, 8, nonce);
  return b;
}

export function encodeProbeAnswer(a: Omit<ProbeAnswer, "kind">): Uint8Array {
  checkU32("nonce", a.nonce);
  checkU32("epoch", a.epoch);
  const b = header(PROBE_KIND_ANSWER, PROBE_ANSWER_BYTES);
  b[6] = ROLE_CODES[a.role];
  b[7] = a.live ? PROBE_FLAG_LIVE : 0;
  put32(b, 8, a.nonce);
  put32(b, 12, a.epoch);
  return b;
}

/** Decodes a probe datagram of either kind; throws a ProbeError naming what is wrong. */
export function decodeProbe(b: Uint8Array): ProbeAsk | ProbeAnswer {
  if (!isProbe(b)) throw new ProbeError(0, "no LSPB magic");
  if (b.length < 8) throw new ProbeError(b.length, `${b.length} bytes is shorter than the 8-byte header`);
  if (b[4] !== PROBE_VERSION) throw new ProbeError(4, `version ${b[4]}, expected ${PROBE_VERSION}`);
  if (b[5] === PROBE_KIND_ASK) {
    if (b.length !== PROBE_ASK_BYTES) throw new ProbeError(Math.min(b.length, PROBE_ASK_BYTES), `an ask is ${PROBE_ASK_BYTES} bytes, got ${b.length}`);
    if (b[6] !== 0 || b[7] !== 0) throw new ProbeError(6, "reserved bytes must be 0");
    return { kind: "ask", nonce: u32(b, 8) };
  }
  if (b[5] === PROBE_KIND_ANSWER) {
    if (b.length !== PROBE_ANSWER_BYTES) throw new ProbeError(Math.min(b.length, PROBE_ANSWER_BYTES), `an answer is ${PROBE_ANSWER_BYTES} bytes, got ${b.length}`);
    const role = b[6] === ROLE_CODES.primary ? "primary" : b[6] === ROLE_CODES.backup ? "backup" : null;
    if (role === null) throw new ProbeError(6, `unknown role ${b[6]}`);
    if (b[7] & ~PROBE_FLAG_LIVE) throw new ProbeError(7, `undefined flag bits in 0x${b[7].toString(16)}`);
    return { kind: "answer", nonce: u32(b, 8), role, live: (b[7] & PROBE_FLAG_LIVE) !== 0, epoch: u32(b, 12) };
  }
  throw new ProbeError(5, `unknown kind ${b[5]}`);
}
