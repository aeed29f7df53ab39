// The one hash of the project: BLAKE3 with a 32-byte digest (hash-wasm,
// WebAssembly, so the same code runs in Node and in a browser). Used for the
// configuration hash, the output digest and the machine's state hash. initHash() must
// have resolved before the synchronous functions are used.

import { createBLAKE3, type IHasher } from "hash-wasm";

export const DIGEST_BYTES = 32;

let shared: IHasher | null = null;
let loading: Promise<void> | null = null;

/** Loads the hash's WebAssembly module (once). */
export function initHash(): Promise<void> {
  loading ??= createBLAKE3(DIGEST_BYTES * 8).then((h) => {
    shared = h;
  });
  return loading;
}

function sharedHasher(): IHasher {
  if (!shared) throw new Error("hash: call await initHash() first");
  return shared;
}

/** BLAKE3 of the concatenation of `parts`. */
export function hashBytes(...parts: Uint8Array[]): Uint8Array {
  const h = sharedHasher();
  h.init();
  for (const p of parts) h.update(p);
  return h.digest("binary");
}

/** BLAKE3 of bytes handed over in pieces by `feed`, synchronously (a file read in chunks). */
export function hashStream(feed: (update: (bytes: Uint8Array) => void) => void): Uint8Array {
  const h = sharedHasher();
  h.init();
  feed((b) => h.update(b));
  return h.digest("binary");
}

/** An incremental hash with its own state (several may be open at once). */
export async function createStreamHash(): Promise<IHasher> {
  const h = await createBLAKE3(DIGEST_BYTES * 8);
  h.init();
  return h;
}

/**
 * Keyed BLAKE3 (a message authentication code) with its own state: `key` is
 * 32 bytes; init() starts each message with the same key. The FT channel's
 * frame tag (host/ft/wire.ts).
 */
export async function createKeyedHash(key: Uint8Array): Promise<IHasher> {
  if (!(key instanceof Uint8Array) || key.length !== DIGEST_BYTES) throw new RangeError(`a BLAKE3 key must be ${DIGEST_BYTES} bytes`);
  const h = await createBLAKE3(DIGEST_BYTES * 8, key.slice());
  h.init();
  return h;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * JSON with object keys in sorted order, so equal states encode to equal
 * bytes whatever order their properties were created in. Bigints become
 * decimal strings; typed arrays plain arrays.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === "number" || typeof v === "boolean" || typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return JSON.stringify(v.toString());
  if (v === undefined) return "null";
  if (ArrayBuffer.isView(v)) return canonicalJson(Array.from(v as unknown as ArrayLike<number>));
  if (Array.isArray(v)) return "[" + v.map(canonicalJson).join(",") + "]";
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    return "{" + Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => JSON.stringify(k) + ":" + canonicalJson(o[k])).join(",") + "}";
  }
  throw new TypeError(`canonicalJson: cannot encode a ${typeof v}`);
}
