// What the benchmark's parts share: its errors and small statistics.

export class BenchError extends Error {}
/** A bad option: exit status 2. */
export class BenchUsageError extends BenchError {}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const round1 = (x: number) => Math.round(x * 10) / 10;
export const round3 = (x: number) => Math.round(x * 1000) / 1000;
export const round4 = (x: number) => Math.round(x * 10000) / 10000;
