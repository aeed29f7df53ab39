// The snapshot's "pages" compression (docs/snapshot-format.md, compression 2):
// guest RAM is mostly pages that were never written, and deflating megabytes
// of zeros costs far more than finding them. So a bitmap names the pages
// that hold anything, and only those are deflated. fflate is pure JS: on
// 64 MiB of a small guest's RAM this takes a save from about 1.3 s of
// deflate to a few tens of ms.

import { deflateSync, inflateSync } from "fflate";
import { allZero } from "../common/bytes.js";

export const PAGE = 4096;

/** The stored form: bitmap of non-zero pages (bit i of byte i>>3, low bit first), then raw DEFLATE of those pages in order. */
export function packPages(raw: Uint8Array, level: number): Uint8Array {
  const pages = Math.ceil(raw.length / PAGE);
  const bitmap = new Uint8Array((pages + 7) >> 3);
  const kept: Uint8Array[] = [];
  let keptBytes = 0;
  for (let p = 0; p < pages; p++) {
    const at = p * PAGE, end = Math.min(raw.length, at + PAGE);
    if (allZero(raw.subarray(at, end))) continue;
    bitmap[p >> 3]! |= 1 << (p & 7);
    kept.push(raw.subarray(at, end));
    keptBytes += end - at;
  }
  const body = new Uint8Array(keptBytes);
  let o = 0;
  for (const k of kept) { body.set(k, o); o += k.length; }
  const packed = deflateSync(body, { level: level as 1 });
  const out = new Uint8Array(bitmap.length + packed.length);
  out.set(bitmap);
  out.set(packed, bitmap.length);
  return out;
}

/** Inverse of packPages for a section of `rawLength` bytes; throws Error saying what is wrong. */
export function unpackPages(stored: Uint8Array, rawLength: number): Uint8Array {
  const pages = Math.ceil(rawLength / PAGE);
  const mapBytes = (pages + 7) >> 3;
  if (stored.length < mapBytes) throw new Error(`${stored.length} stored bytes, fewer than the ${mapBytes}-byte page bitmap`);
  const bitmap = stored.subarray(0, mapBytes);
  if (pages % 8 !== 0 && bitmap[mapBytes - 1]! >> (pages % 8) !== 0) throw new Error("the page bitmap marks pages past the section's end");
  let keptBytes = 0;
  for (let p = 0; p < pages; p++) if (bitmap[p >> 3]! & (1 << (p & 7))) keptBytes += Math.min(rawLength, (p + 1) * PAGE) - p * PAGE;
  // One byte of room: a stream that inflates to more than the bitmap says is caught, not cut short.
  let body: Uint8Array;
  try {
    body = inflateSync(stored.subarray(mapBytes), { out: new Uint8Array(keptBytes + 1) });
  } catch (e) {
    throw new Error(`the deflated pages are damaged (${(e as Error).message})`);
  }
  if (body.length !== keptBytes) throw new Error(`the deflated pages inflate to ${body.length > keptBytes ? `more than ${keptBytes}` : body.length} bytes, not the ${keptBytes} the page bitmap names`);
  const out = new Uint8Array(rawLength);
  let o = 0;
  for (let p = 0; p < pages; p++) {
    if (!(bitmap[p >> 3]! & (1 << (p & 7)))) continue;
    const n = Math.min(rawLength, (p + 1) * PAGE) - p * PAGE;
    out.set(body.subarray(o, o + n), p * PAGE);
    o += n;
  }
  return out;
}
