// Small byte-array helpers that several layers need (one owner for each).

/** Whether two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether every byte of `b` is zero. Word at a time when `b` is aligned:
 * pages of guest RAM are scanned by the tens of thousands (snapshots, state
 * transfer), and a byte loop over 32 MiB costs about 200 ms here.
 */
export function allZero(b: Uint8Array): boolean {
  let i = 0;
  if (b.byteOffset % 4 === 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
    for (let k = 0; k < w.length; k++) if (w[k] !== 0) return false;
    i = w.length << 2;
  }
  for (; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
