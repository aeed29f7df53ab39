// lockstep disk create, as a user runs it (node bin/lockstep.mjs ...) in a
// child process: the image it makes, the sizes it takes and refuses, and
// existing files.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initHash } from "../host/common/hash.js";
import { runLockstep } from "./helpers/cli.js";
import { imageSizeProblem, MAX_IMAGE_BYTES } from "../host/cli/disk.js";
import { MemoryBlockStore } from "../host/devices/block-store.js";
import { FileBlockStore } from "../host/node/file-block-store.js";

// Image identities are BLAKE3 hashes (host/common/hash.ts), computed synchronously once it is loaded.
beforeAll(() => initHash());

const tmp = mkdtempSync(join(tmpdir(), "lockstep-disk-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const lockstep = (...args: string[]) => runLockstep(tmp, ...args);
const HINT = "Run 'lockstep disk create --help' for usage.\n";

describe("lockstep disk create", () => {
  it("creates a zero-filled raw image of the given size that the disk can open", async () => {
    const r = await lockstep("disk", "create", "a.img", "--size", "16M");
    expect(r).toEqual({ status: 0, stdout: "created a.img: 16M (16777216 bytes, 32768 sectors of 512 bytes)\n", stderr: "" });
    const content = readFileSync(join(tmp, "a.img"));
    expect(content.length).toBe(16 << 20);
    expect(content.every((b) => b === 0)).toBe(true);
    const store = FileBlockStore.open(join(tmp, "a.img"));
    expect(store.sectors).toBe(32768);
    expect(store.identity()).toBe(new MemoryBlockStore(32768).identity());
    store.close();
  });

  it.each([
    ["512", 512],
    ["1536", 1536],
    ["64K", 65536],
    ["1M", 1 << 20],
    ["2MiB", 2 << 20],
  ])("takes --size %s", async (size, bytes) => {
    const file = `size-${size}.img`;
    const r = await lockstep("disk", "create", `--size=${size}`, file);
    expect(r.status).toBe(0);
    expect(statSync(join(tmp, file)).size).toBe(bytes);
  });

  it.each([
    [["--size", "1000"], "--size must be a whole number of 512-byte sectors (a multiple of 512, or K, M or G), got 1000"],
    [["--size", "0"], "--size must be more than 0, got 0"],
    [["--size", "129G"], "--size must be at most 128G (the disk takes 28-bit sector numbers), got 138512695296"],
    [["--size", "16X"], "--size must be a size like 4096, 64K, 16M or 1G, got 16X"],
    [[], "missing --size (e.g. --size 16M)"],
  ])("refuses %j with status 2", async (flags, message) => {
    const r = await lockstep("disk", "create", "bad.img", ...flags);
    expect(r).toEqual({ status: 2, stdout: "", stderr: `lockstep: ${message}\n${HINT}` });
    expect(() => statSync(join(tmp, "bad.img"))).toThrow();
  });

  it("needs exactly one FILE", async () => {
    expect(await lockstep("disk", "create", "--size", "1M")).toMatchObject({ status: 2, stderr: `lockstep: missing FILE (the image to create)\n${HINT}` });
    expect((await lockstep("disk", "create", "x.img", "y.img", "--size", "1M")).status).toBe(2);
  });

  it("refuses an existing file unless --force, and then replaces it with zeros", async () => {
    const p = join(tmp, "existing.img");
    writeFileSync(p, "precious data");
    const r = await lockstep("disk", "create", "existing.img", "--size", "4K");
    expect(r).toEqual({ status: 2, stdout: "", stderr: "lockstep: existing.img already exists (use --force to replace it)\n" });
    expect(readFileSync(p, "utf8")).toBe("precious data");
    const f = await lockstep("disk", "create", "existing.img", "--size", "4K", "--force");
    expect(f.status).toBe(0);
    expect(readFileSync(p)).toEqual(Buffer.alloc(4096));
    // --force also shrinks: the old content is gone, not kept past the new size.
    writeFileSync(p, Buffer.alloc(8192, 0xaa));
    expect((await lockstep("disk", "create", "existing.img", "--size", "1K", "--force")).status).toBe(0);
    expect(readFileSync(p)).toEqual(Buffer.alloc(1024));
  });

  it("refuses a directory, even with --force, and a missing parent directory", async () => {
    mkdirSync(join(tmp, "adir"));
    const d = await lockstep("disk", "create", "adir", "--size", "1M", "--force");
    expect(d).toEqual({ status: 2, stdout: "", stderr: "lockstep: cannot create adir: it is a directory\n" });
    const m = await lockstep("disk", "create", "nowhere/x.img", "--size", "1M");
    expect(m).toEqual({ status: 2, stdout: "", stderr: "lockstep: cannot create nowhere/x.img: no such directory\n" });
  });

  it("is listed, has help, and 'lockstep disk' asks for the subcommand", async () => {
    const help = await lockstep("--help");
    expect(help.stdout).toMatch(/\n {2}disk create +create a zero-filled raw disk image for the ATA disk\n/);
    const h = await lockstep("disk", "create", "--help");
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^usage: lockstep disk create FILE --size SIZE \[--force\]\n/);
    expect(h.stdout).toMatch(/--force +replace FILE if it exists/);
    const bare = await lockstep("disk");
    expect(bare).toMatchObject({ status: 2, stderr: expect.stringMatching(/^lockstep: 'disk' needs a subcommand \(one of: create\)\n/) });
  });
});

describe("imageSizeProblem", () => {
  it("accepts whole sectors up to 128G", () => {
    expect(imageSizeProblem(512)).toBeUndefined();
    expect(imageSizeProblem(MAX_IMAGE_BYTES)).toBeUndefined();
    expect(MAX_IMAGE_BYTES).toBe(128 * 2 ** 30);
    expect(imageSizeProblem(MAX_IMAGE_BYTES + 512)).toMatch(/at most 128G/);
    expect(imageSizeProblem(511)).toMatch(/whole number/);
    expect(imageSizeProblem(-512)).toMatch(/more than 0/);
  });
});
