// isa-debug-exit (port 0xF4).

import { describe, expect, it } from "vitest";
import { ExitPort } from "../../host/devices/exit-port.js";

describe("isa-debug-exit", () => {
  it("calls onExit with the value written, masked to the access size", () => {
    const got: number[] = [];
    const dev = new ExitPort({ onExit: (v) => got.push(v) });
    expect(dev.ports).toEqual([[0xf4, 0xf5]]);
    expect(dev.exitValue).toBeNull();
    dev.write(0xf4, 1, 0x1234);
    dev.write(0xf4, 2, 0x12345678);
    dev.write(0xf4, 4, 0xdeadbeef);
    expect(got).toEqual([0x34, 0x5678, 0xdeadbeef]);
    expect(dev.exitValue).toBe(0xdeadbeef);
  });

  it("reads as all ones", () => {
    const dev = new ExitPort({ onExit: () => {} });
    expect(dev.read(0xf4, 1)).toBe(0xff);
    expect(dev.read(0xf4, 2)).toBe(0xffff);
    expect(dev.read(0xf4, 4)).toBe(0xffffffff);
  });

  it("snapshots the last value", () => {
    const a = new ExitPort({ onExit: () => {} });
    a.write(0xf4, 1, 3);
    const b = new ExitPort({ onExit: () => {} });
    b.loadState(JSON.parse(JSON.stringify(a.saveState())));
    expect(b.exitValue).toBe(3);
    expect(() => b.loadState({ last: -1 })).toThrow(TypeError);
  });
});
