// The guests tests/system/qemu-cross.test.ts runs under both QEMU and
// lockstep. Each must exist as guests/bin/<name>.elf (a missing one fails the
// test) and must print the same serial bytes and exit with the same status
// on both, apart from the lines listed in loaderDependent.

import { writeFileSync } from "node:fs";

export interface CrossRun {
  /** Extra qemu-system-i386 arguments (devices, drives). */
  qemu: string[];
  /** Extra `lockstep run` arguments. */
  lockstep: string[];
}

export interface CrossGuest {
  /** guests/bin/<name>.elf */
  name: string;
  /** The exit status the guest must end with on both. */
  status: number;
  /** Guest RAM in MiB on both (default 32). */
  memMiB?: number;
  /** Per-machine timeout in ms (default 120 s). */
  timeoutMs?: number;
  /**
   * Extra arguments for one run. `dir` is an empty scratch directory of that
   * run (fresh for each machine) where this may create files, e.g. a disk
   * image the guest may write.
   */
  args?: (dir: string) => CrossRun;
  /**
   * Serial lines that legitimately differ between the loaders (matched whole,
   * one pattern per line); they are compared for presence and position only.
   * Each entry gives what lockstep must print exactly (a function of the RAM
   * size) when that is known, else null.
   */
  loaderDependent?: Array<{ line: RegExp; lockstep: ((memMiB: number) => string) | null }>;
  /** The serial output must also match this (a sanity check that the guest did its work). */
  expect?: RegExp;
}

export const CROSS_GUESTS: CrossGuest[] = [
  {
    name: "hello",
    status: 0,
    loaderDependent: [
      // QEMU reports 639 KiB below 1 MiB and keeps some RAM at the top for itself;
      // lockstep's loader reports 640 KiB and (RAM - 1 MiB) / 1 KiB.
      { line: /^memory: lower \d+ KiB, upper \d+ KiB \(\d+ MiB in all\)$/, lockstep: (m) => `memory: lower 640 KiB, upper ${(m - 1) * 1024} KiB (${m} MiB in all)` },
      // QEMU passes "<image path> <-append text>"; lockstep passes its own command line.
      { line: /^cmdline: ".*"$/, lockstep: null },
    ],
    expect: /^hello from lockstep\n/,
  },
  {
    name: "bench",
    status: 0,
    timeoutMs: 300_000,
    expect: /^total +[0-9a-f]{8} ok\nPASS\n$/m,
  },
  {
    // The disk guest and its ATA driver belong to the disk work: adjust the
    // arguments to what the guest expects (a fresh raw image per run here).
    name: "disk",
    status: 0,
    args: (dir) => {
      const image = `${dir}/disk.img`;
      writeFileSync(image, new Uint8Array(16 << 20)); // as make qemu-disk: a fresh 16 MiB image
      return {
        qemu: ["-drive", `file=${image},format=raw,if=ide,index=0,media=disk`],
        lockstep: ["--disk", image],
      };
    },
    // The disk identifies itself differently on each machine.
    loaderDependent: [
      { line: /^identify: model ".*" serial ".*" firmware ".*"$/, lockstep: () => 'identify: model "LOCKSTEP VIRTUAL DISK" serial "LOCKSTEP0001" firmware "1.0"' },
      { line: /^identify: LBA supported, checksum (ok|not given)$/, lockstep: () => "identify: LBA supported, checksum ok" },
    ],
    expect: /^PASS$/m,
  },
];
