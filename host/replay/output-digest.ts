// The output digest: a BLAKE3 over everything the guest sent out — COM1 and
// debug-console bytes, NIC frames, the exit status — each tagged with its
// channel, in the order the guest produced them. Equal digests mean a replay
// showed the world exactly what the recording did.

import type { IHasher } from "hash-wasm";
import { createStreamHash } from "../common/hash.js";

const SERIAL = 1;
const DEBUGCON = 2;
const FRAME = 3;
const EXIT = 4;
const CHUNK = 64 * 1024;

export class OutputDigest {
  private buf = new Uint8Array(CHUNK);
  private n = 0;
  /** Bytes of output seen (all channels, without tags). */
  outputBytes = 0;

  private constructor(private readonly h: IHasher) {}

  static async create(): Promise<OutputDigest> {
    return new OutputDigest(await createStreamHash());
  }

  private put(b: number): void {
    if (this.n === CHUNK) this.flush();
    this.buf[this.n++] = b;
  }
  private flush(): void {
    this.h.update(this.buf.subarray(0, this.n));
    this.n = 0;
  }

  serial(b: number): void {
    this.put(SERIAL);
    this.put(b);
    this.outputBytes++;
  }
  debugcon(b: number): void {
    this.put(DEBUGCON);
    this.put(b);
    this.outputBytes++;
  }
  frame(f: Uint8Array): void {
    this.put(FRAME);
    this.put(f.length & 0xff);
    this.put(f.length >>> 8);
    for (const b of f) this.put(b);
    this.outputBytes += f.length;
  }
  exit(status: number): void {
    this.put(EXIT);
    for (let i = 0; i < 4; i++) this.put((status >>> (8 * i)) & 0xff);
  }

  /** The digest so far (the digest can go on being updated). */
  digest(): Uint8Array {
    this.flush();
    const save = this.h.save();
    const d = this.h.digest("binary");
    this.h.load(save);
    return d;
  }
}
