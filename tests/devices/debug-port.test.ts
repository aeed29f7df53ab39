// The debug console (port 0xE9).

import { describe, expect, it } from "vitest";
import { DebugPort } from "../../host/devices/debug-port.js";

describe("debug console", () => {
  it("hands each written byte to onOutput, in order", () => {
    const got: number[] = [];
    const dev = new DebugPort({ onOutput: (b) => got.push(b) });
    expect(dev.ports).toEqual([[0xe9, 0xea]]);
    for (const c of "ok\n") dev.write(0xe9, 1, c.charCodeAt(0));
    expect(String.fromCharCode(...got)).toBe("ok\n");
  });

  it("reads back 0xE9 (the Bochs/QEMU detection convention)", () => {
    const dev = new DebugPort({ onOutput: () => {} });
    expect(dev.read(0xe9, 1)).toBe(0xe9);
    // A wide IN: the bytes above fall on ports nobody decodes and float high.
    expect(dev.read(0xe9, 2)).toBe(0xffe9);
    expect(dev.read(0xe9, 4)).toBe(0xffffffe9);
  });

  it("a wide OUT outputs its low byte only", () => {
    const got: number[] = [];
    const dev = new DebugPort({ onOutput: (b) => got.push(b) });
    dev.write(0xe9, 2, 0x4241);
    dev.write(0xe9, 4, 0x44434243);
    expect(got).toEqual([0x41, 0x43]);
  });

  it("can sit on another port; its (empty) state round-trips", () => {
    const got: number[] = [];
    const dev = new DebugPort({ onOutput: (b) => got.push(b), port: 0x402 });
    dev.write(0x402, 1, 0x21);
    expect(got).toEqual([0x21]);
    expect(dev.read(0x402, 1)).toBe(0x02);
    dev.loadState(JSON.parse(JSON.stringify(dev.saveState())));
    expect(() => dev.loadState(7)).toThrow(TypeError);
  });
});
