// lockstep arbiter status|reset, as a user runs it (node bin/lockstep.mjs ...)
// in a child process, over a file arbiter whose claims the test makes with
// host/node/file-arbiter.ts.

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLockstep } from "./helpers/cli.js";
import { FileArbiter } from "../host/node/file-arbiter.js";
import type { ArbiterClaim } from "../host/ft/arbiter.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-cli-arbiter-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const lockstep = (...args: string[]) => runLockstep(tmp, ...args);
const HINT = "Run 'lockstep arbiter --help' for usage.\n";
const T0 = Date.UTC(2025, 0, 2, 3, 4, 5);
const claim = (vm: string, epoch: number, replica: string, reason: string): ArbiterClaim => ({ vm, epoch, replica, atMs: T0 + epoch * 1000, reason });

let n = 0;
/** A fresh arbiter directory (relative to tmp, as a user would type it) holding `claims`. */
async function arbiterWith(...claims: ArbiterClaim[]): Promise<string> {
  const name = `arb${++n}`;
  mkdirSync(join(tmp, name));
  const a = new FileArbiter(join(tmp, name));
  for (const c of claims) expect(await a.claim(c)).toEqual({ won: true });
  return name;
}

describe("lockstep arbiter status", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await arbiterWith(claim("vm-b", 1, "primary", "first start"), claim("vm-a", 1, "primary", "first start"), claim("vm-a", 2, "backup", "primary silent"));
  });

  it("prints every VM's claims, highest epoch first", async () => {
    expect(await lockstep("arbiter", "status", `file:${dir}`)).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        "VM vm-a: 2 claim(s), epoch 2 highest",
        '  epoch 2  replica backup  at 2025-01-02T03:04:07.000Z  reason "primary silent"',
        '  epoch 1  replica primary  at 2025-01-02T03:04:06.000Z  reason "first start"',
        "VM vm-b: 1 claim(s), epoch 1 highest",
        '  epoch 1  replica primary  at 2025-01-02T03:04:06.000Z  reason "first start"',
        "",
      ].join("\n"),
    });
  });

  it("--vm shows one VM; --json gives the claims as data", async () => {
    const one = await lockstep("arbiter", "status", `file:${dir}`, "--vm", "vm-b");
    expect(one.stdout).toBe('VM vm-b: 1 claim(s), epoch 1 highest\n  epoch 1  replica primary  at 2025-01-02T03:04:06.000Z  reason "first start"\n');
    const json = await lockstep("arbiter", "status", `file:${dir}`, "--vm", "vm-a", "--json");
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      arbiter: `file:${dir}`,
      vms: [{ vm: "vm-a", claims: [claim("vm-a", 2, "backup", "primary silent"), claim("vm-a", 1, "primary", "first start")] }],
    });
    const all = JSON.parse((await lockstep("arbiter", "status", `file:${dir}`, "--json")).stdout);
    expect(all.vms.map((v: { vm: string }) => v.vm)).toEqual(["vm-a", "vm-b"]);
  });

  it("says when there are no claims", async () => {
    const empty = await arbiterWith();
    expect(await lockstep("arbiter", "status", `file:${empty}`)).toEqual({ status: 0, stdout: `no claims on file:${empty}\n`, stderr: "" });
    expect((await lockstep("arbiter", "status", `file:${dir}`, "--vm", "vm-c")).stdout).toBe(`VM vm-c has no claims on file:${dir}\n`);
    expect(JSON.parse((await lockstep("arbiter", "status", `file:${empty}`, "--json")).stdout)).toEqual({ arbiter: `file:${empty}`, vms: [] });
  });

  it("a damaged claim file is an error naming it (status 2), not an empty arbiter", async () => {
    const bad = await arbiterWith(claim("vm-a", 1, "primary", "x"));
    writeFileSync(join(tmp, bad, "vm-a", "1.claim"), "{");
    expect(await lockstep("arbiter", "status", `file:${bad}`)).toEqual({
      status: 2,
      stdout: "",
      stderr: `lockstep: damaged claim file ${join(bad, "vm-a", "1.claim")}: not JSON\n`,
    });
  });
});

describe("lockstep arbiter reset", () => {
  it("removes one VM's claims and says which; the others stay", async () => {
    const dir = await arbiterWith(claim("vm-a", 1, "primary", "first start"), claim("vm-a", 3, "backup", "takeover"), claim("vm-b", 1, "p", "x"));
    expect(await lockstep("arbiter", "reset", `file:${dir}`, "--vm", "vm-a")).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        `removed 2 claim(s) of VM vm-a from file:${dir}:`,
        '  epoch 3  replica backup  at 2025-01-02T03:04:08.000Z  reason "takeover"',
        '  epoch 1  replica primary  at 2025-01-02T03:04:06.000Z  reason "first start"',
        "",
      ].join("\n"),
    });
    expect(existsSync(join(tmp, dir, "vm-a"))).toBe(false);
    expect(await new FileArbiter(join(tmp, dir)).vms()).toEqual(["vm-b"]);
    expect(await lockstep("arbiter", "reset", `file:${dir}`, "--vm", "vm-a")).toEqual({ status: 0, stdout: `VM vm-a has no claims on file:${dir}: nothing removed\n`, stderr: "" });
  });

  it("removes a damaged claim file too, and says it could not read it", async () => {
    const dir = await arbiterWith(claim("vm-a", 1, "primary", "x"));
    writeFileSync(join(tmp, dir, "vm-a", "1.claim"), "garbage");
    const r = await lockstep("arbiter", "reset", `file:${dir}`, "--vm", "vm-a");
    expect(r).toEqual({ status: 0, stderr: "", stdout: `removed 1 claim(s) of VM vm-a from file:${dir}:\n  1.claim (damaged, unreadable)\n` });
    expect(existsSync(join(tmp, dir, "vm-a"))).toBe(false);
  });

  it("refuses without --vm, and removes nothing", async () => {
    const dir = await arbiterWith(claim("vm-a", 1, "primary", "x"));
    expect(await lockstep("arbiter", "reset", `file:${dir}`)).toEqual({
      status: 2,
      stdout: "",
      stderr: `lockstep: reset needs --vm V (it removes one VM's claims)\n${HINT}`,
    });
    expect(existsSync(join(tmp, dir, "vm-a", "1.claim"))).toBe(true);
  });
});

describe("lockstep arbiter: bad arguments exit 2", () => {
  it.each([
    [["status", "etcd:127.0.0.1:2379"], "arbiter 'etcd:127.0.0.1:2379': etcd endpoint '127.0.0.1:2379' is not http://HOST:PORT"],
    [["status", "/some/dir"], "unknown arbiter '/some/dir' (expected file:PATH, a directory both replicas can reach, or etcd:http://HOST:PORT)"],
    [["status", "file:"], "arbiter 'file:' names no directory (file:PATH)"],
    [["list", "file:x"], "unknown subcommand 'list' (one of: status, reset)"],
    [["status"], "missing status|reset and ARBITER"],
    [["status", "file:x", "--vm", "a/b"], "--vm may hold only letters, digits, '.', '_' and '-', got \"/\" at position 1"],
    [["reset", "file:x", "--vm", "a", "--json"], "--json is for status"],
  ])("%j", async (args, message) => {
    expect(await lockstep("arbiter", ...args)).toEqual({ status: 2, stdout: "", stderr: `lockstep: ${message}\n${HINT}` });
  });

  it("a directory that does not exist is named, and not created", async () => {
    expect(await lockstep("arbiter", "status", "file:nowhere")).toEqual({
      status: 2,
      stdout: "",
      stderr: "lockstep: arbiter directory nowhere does not exist (create it, or mount the file system both replicas share)\n",
    });
    expect(existsSync(join(tmp, "nowhere"))).toBe(false);
  });

  it("is listed in lockstep --help and has its own help", async () => {
    expect((await lockstep("--help")).stdout).toContain("arbiter ");
    const help = await lockstep("arbiter", "--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("usage: lockstep arbiter status|reset ARBITER [--vm V] [--json]");
  });
});
