// The "pages" compression of large snapshot sections: zero pages named in a
// bitmap and left out, the rest deflated (host/snapshot/zero-pages.ts).

import { describe, expect, it } from "vitest";
import { PAGE, packPages, unpackPages } from "../../host/snapshot/zero-pages.js";

function sample(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = seed;
  // Some pages written (random bytes in a few spots), most left zero.
  for (let p = 0; p * PAGE < len; p++) {
    x = (x * 1103515245 + 12345) >>> 0;
    if (x % 5 !== 0) continue;
    for (let k = 0; k < 40; k++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const at = p * PAGE + (x % PAGE);
      if (at < len) b[at] = x >>> 24 || 1;
    }
  }
  return b;
}

describe("pages compression", () => {
  it("round-trips whole pages, a partial last page, an all-zero and an unaligned input", () => {
    for (const len of [0, 1, PAGE, 5 * PAGE, 5 * PAGE + 123, 64 * PAGE]) {
      const raw = sample(len, len + 7);
      expect(unpackPages(packPages(raw, 1), len)).toEqual(raw);
      const odd = new Uint8Array(len + 1).subarray(1);
      odd.set(raw);
      expect(unpackPages(packPages(odd, 1), len)).toEqual(raw);
    }
    const zero = new Uint8Array(16 * PAGE);
    const packed = packPages(zero, 1);
    expect(packed.length).toBeLessThan(16);
    expect(unpackPages(packed, zero.length)).toEqual(zero);
  });

  it("stores a byte written at the end of a page", () => {
    const raw = new Uint8Array(3 * PAGE);
    raw[2 * PAGE - 1] = 0x80;
    const packed = packPages(raw, 1);
    expect(packed[0]).toBe(0b010);
    expect(unpackPages(packed, raw.length)).toEqual(raw);
  });

  it("refuses a bitmap cut short, bits past the end and pages that do not match the bitmap", () => {
    const raw = sample(10 * PAGE, 3);
    const packed = packPages(raw, 1);
    expect(() => unpackPages(packed.subarray(0, 1), raw.length)).toThrow("1 stored bytes, fewer than the 2-byte page bitmap");
    const past = packed.slice();
    past[1]! |= 0x80;
    expect(() => unpackPages(past, raw.length)).toThrow("the page bitmap marks pages past the section's end");
    const fewer = packed.slice();
    const first = raw.findIndex((b) => b !== 0) >> 12;
    fewer[first >> 3]! &= ~(1 << (first & 7));
    expect(() => unpackPages(fewer, raw.length)).toThrow(/inflate to more than \d+ bytes/);
    const damaged = packed.slice();
    damaged[2] ^= 0xff;
    expect(() => unpackPages(damaged, raw.length)).toThrow();
  });
});
