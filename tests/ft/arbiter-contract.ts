// The arbiter contract (host/ft/arbiter.ts) as one set of tests, so that every
// implementation passes the same ones: the memory and file arbiters in
// tests/ft/arbiter.test.ts, the etcd arbiter in tests/system/etcd-arbiter.test.ts.
// `make` must give an arbiter with no claims each time.

import { describe, expect, it } from "vitest";
import { ArbiterError, type Arbiter, type ArbiterClaim } from "../../host/ft/arbiter.js";

export const claim = (epoch: number, replica: string, vm = "vm-a", reason = "test"): ArbiterClaim => ({ vm, epoch, replica, atMs: 1_700_000_000_000 + epoch, reason });

export function arbiterContract(implementations: Array<[string, () => Arbiter]>): void {
  describe.each(implementations)("%s: the arbiter contract", (_name, make) => {
    it("the first claimant of an epoch wins; a second gets the holder", async () => {
      const a = make();
      expect(await a.claim(claim(1, "primary"))).toEqual({ won: true });
      expect(await a.claim(claim(1, "backup"))).toEqual({ won: false, holder: claim(1, "primary") });
      expect(await a.status("vm-a")).toEqual(claim(1, "primary"));
    });

    it("epochs only go up: an equal or lower epoch loses to the highest held", async () => {
      const a = make();
      expect(await a.claim(claim(3, "primary"))).toEqual({ won: true });
      expect(await a.claim(claim(2, "backup"))).toEqual({ won: false, holder: claim(3, "primary") });
      expect(await a.claim(claim(1, "backup"))).toEqual({ won: false, holder: claim(3, "primary") });
      expect(await a.claim(claim(3, "primary"))).toEqual({ won: false, holder: claim(3, "primary") });
      expect(await a.claim(claim(4, "backup"))).toEqual({ won: true });
      expect(await a.claim(claim(3, "primary"))).toEqual({ won: false, holder: claim(4, "backup") });
      expect(await a.status("vm-a")).toEqual(claim(4, "backup"));
      expect(await a.claims("vm-a")).toEqual([claim(4, "backup"), claim(3, "primary")]);
    });

    it("VMs are independent; status is null for a VM with no claims", async () => {
      const a = make();
      expect(await a.status("vm-a")).toBeNull();
      expect(await a.vms()).toEqual([]);
      expect(await a.claim(claim(5, "p", "vm-b"))).toEqual({ won: true });
      expect(await a.claim(claim(1, "p", "vm-a"))).toEqual({ won: true });
      expect(await a.status("vm-a")).toEqual(claim(1, "p", "vm-a"));
      expect(await a.vms()).toEqual(["vm-a", "vm-b"]);
    });

    it("reset forgets one VM's claims, reports them, and epoch 1 can be won again", async () => {
      const a = make();
      await a.claim(claim(1, "primary"));
      await a.claim(claim(2, "backup"));
      await a.claim(claim(7, "p", "vm-b"));
      expect(await a.reset("vm-a")).toEqual({ removed: [claim(2, "backup"), claim(1, "primary")], unreadable: [] });
      expect(await a.status("vm-a")).toBeNull();
      expect(await a.claims("vm-a")).toEqual([]);
      expect(await a.vms()).toEqual(["vm-b"]);
      expect(await a.reset("vm-a")).toEqual({ removed: [], unreadable: [] });
      expect(await a.claim(claim(1, "backup"))).toEqual({ won: true });
      expect(await a.status("vm-b")).toEqual(claim(7, "p", "vm-b"));
    });

    it("keeps its own copy of a claim, and only the claim's fields", async () => {
      const a = make();
      const c = { ...claim(1, "primary"), extra: "not recorded" };
      await a.claim(c);
      c.replica = "changed afterwards";
      expect(await a.status("vm-a")).toEqual(claim(1, "primary"));
    });

    it.each([
      [{ vm: "a/b" }, "bad claim: vm may hold only letters, digits, '.', '_' and '-', got \"/\" at position 1"],
      [{ vm: "" }, "bad claim: vm must not be empty"],
      [{ vm: "..", }, "bad claim: vm must not be only dots, got \"..\""],
      [{ vm: "x".repeat(129) }, "bad claim: vm must be at most 128 characters, got 129"],
      [{ epoch: 0 }, "bad claim: epoch must be an integer >= 1, got 0"],
      [{ epoch: 1.5 }, "bad claim: epoch must be an integer >= 1, got 1.5"],
      [{ replica: "" }, "bad claim: replica must be a string of 1 to 128 characters, got \"\""],
      [{ atMs: Number.NaN }, "bad claim: atMs must be a time in ms >= 0, got null"],
    ])("refuses a malformed claim %j", async (patch, message) => {
      const a = make();
      await expect(a.claim({ ...claim(1, "p"), ...patch } as ArbiterClaim)).rejects.toThrow(new ArbiterError(message));
      await expect(a.status("bad/vm")).rejects.toThrow(ArbiterError);
      await expect(a.reset("")).rejects.toThrow(ArbiterError);
    });
  });
}
