// The spare keeper (host/node/spare.ts) on loopback: a spare that cannot be
// reached is tried again while the replica wants a backup, and said at the
// 1st, 2nd, 4th, 8th... try only; a spare that is there gets the link,
// handed to attachBackup between two steps, and after a hand-over that
// brought no backup the next try waits 1, 2, 4... retry periods.

import { createServer } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { initHash } from "../../host/common/hash.js";
import type { PeerLink } from "../../host/ft/link.js";
import { WIRE_VERSION } from "../../host/ft/wire.js";
import { SpareKeeper, type SpareTaker } from "../../host/node/spare.js";
import { listenLink } from "../../host/node/tcp-link.js";
import { Waker } from "../../host/common/waker.js";

beforeAll(() => initHash());

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

/** Polls as a driver would, every ms, until `done` or `ms` have passed. */
async function pollUntil(k: SpareKeeper, r: SpareTaker, done: () => boolean, ms = 5_000): Promise<void> {
  for (const t0 = performance.now(); !done() && performance.now() - t0 < ms; ) {
    k.poll(r, performance.now());
    await new Promise((res) => setTimeout(res, 1));
  }
}

describe("SpareKeeper", () => {
  it("an unreachable spare: tried while the replica wants a backup, said at the 1st, 2nd, 4th and 8th try", async () => {
    const port = await freePort();
    const lines: string[] = [];
    const k = new SpareKeeper({ host: "127.0.0.1", port, key: null, waker: new Waker(), say: (l) => lines.push(l), retryMs: 2 });
    const r: SpareTaker = { wantsBackup: true, attachBackup: () => { throw new Error("nothing to attach"); } };
    await pollUntil(k, r, () => lines.length >= 4 && /after 8 tries/.test(lines.at(-1)!));
    expect(lines[0]).toMatch(new RegExp(`^spare 127\\.0\\.0\\.1:${port} cannot be reached \\(nothing listens on 127\\.0\\.0\\.1:${port}\\): going on alone, trying again every 2 ms$`));
    expect(lines.slice(1)).toEqual([2, 4, 8].map((n) => `spare 127.0.0.1:${port}: still not reached after ${n} tries (nothing listens on 127.0.0.1:${port})`));
  });

  it("a spare that is there gets the link between steps; a hand-over that brought no backup is retried after 1, then 2 periods", async () => {
    const links: PeerLink[] = [];
    const listener = await listenLink({ host: "127.0.0.1", port: 0, onLink: (l) => links.push(l) });
    const lines: string[] = [];
    const k = new SpareKeeper({ host: "127.0.0.1", port: listener.port, key: null, waker: new Waker(), say: (l) => lines.push(l), retryMs: 100 });
    const attached: { link: PeerLink; at: number }[] = [];
    const r = {
      wantsBackup: true,
      attachBackup(link: PeerLink, at: number) {
        attached.push({ link, at });
        // The replica's HELLO, as attachBackup sends it; the new backup then refuses and closes.
        link.send({ type: "hello", role: "primary", version: WIRE_VERSION, configHash: new Uint8Array(32), epoch: 2, startIcount: 0n, replica: "p" });
        link.close("refused");
      },
    };
    await pollUntil(k, r, () => attached.length >= 3);
    expect(attached).toHaveLength(3);
    expect(lines.filter((l) => /connected; sending it the state/.test(l))).toHaveLength(3);
    const gaps = [attached[1]!.at - attached[0]!.at, attached[2]!.at - attached[1]!.at];
    expect(gaps[0]).toBeGreaterThanOrEqual(100);
    expect(gaps[1]).toBeGreaterThanOrEqual(200);
    // Once a transfer ended, the replica wanting a backup again is served at once.
    k.transferred();
    const before = attached.length;
    await pollUntil(k, r, () => attached.length > before, 1_000);
    expect(attached.length).toBe(before + 1);
    r.wantsBackup = false;
    await listener.close();
  });
});
