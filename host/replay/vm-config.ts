// The VM configuration a log belongs to: what must be equal for a replay to
// be meaningful. The guest image, RAM size, clock mode, command line and
// devices (with the disk image's identity) — but not the engine: a log
// recorded on one engine replays on the other. The log's header carries it
// twice: its hash, and the canonical JSON itself, so that a replay needs
// nothing but the log and the guest image.

import type { ClockMode } from "../machine/guest-time.js";
import { canonicalJson, hashBytes, toHex } from "../common/hash.js";

export const VM_CONFIG_VERSION = 1;

export interface VmConfig {
  version: number;
  /** BLAKE3 of the guest image (hex) and its size. */
  image: string;
  imageBytes: number;
  ramSize: number;
  clock: ClockMode;
  cmdline: string;
  nic: boolean;
  /** The ATA disk: its size and the identity of its image when the run began. */
  disk: { sectors: number; identity: string } | null;
}

export function vmConfig(image: Uint8Array, opts: { ramSize: number; clock: ClockMode; cmdline?: string; nic?: boolean; disk?: { sectors: number; identity(): string } }): VmConfig {
  return {
    version: VM_CONFIG_VERSION,
    image: toHex(hashBytes(image)),
    imageBytes: image.length,
    ramSize: opts.ramSize,
    clock: opts.clock,
    cmdline: opts.cmdline ?? "",
    nic: opts.nic ?? false,
    disk: opts.disk ? { sectors: opts.disk.sectors, identity: opts.disk.identity() } : null,
  };
}

export function encodeVmConfig(c: VmConfig): Uint8Array {
  return new TextEncoder().encode(canonicalJson(c));
}

export function vmConfigHash(c: VmConfig): Uint8Array {
  return hashBytes(encodeVmConfig(c));
}

/** A configuration that is not the one a log was recorded with. */
export class ConfigMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigMismatchError";
  }
}

/** Parses a log header's configuration; throws a TypeError naming the field that is wrong. */
export function decodeVmConfig(bytes: Uint8Array): VmConfig {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new TypeError(`configuration is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TypeError("configuration is not a JSON object");
  const o = v as Record<string, unknown>;
  const int = (k: string, max = Number.MAX_SAFE_INTEGER) => {
    if (typeof o[k] !== "number" || !Number.isSafeInteger(o[k]) || (o[k] as number) < 0 || (o[k] as number) > max) throw new TypeError(`configuration: ${k} is not a non-negative integer`);
    return o[k] as number;
  };
  const str = (k: string) => {
    if (typeof o[k] !== "string") throw new TypeError(`configuration: ${k} is not a string`);
    return o[k] as string;
  };
  if (int("version") !== VM_CONFIG_VERSION) throw new TypeError(`configuration version ${String(o.version)} is not ${VM_CONFIG_VERSION}`);
  if (!/^[0-9a-f]{64}$/.test(str("image"))) throw new TypeError("configuration: image is not a 64-digit hex hash");
  const clock = str("clock");
  if (clock !== "host" && clock !== "virtual") throw new TypeError(`configuration: clock ${JSON.stringify(clock)} is not host or virtual`);
  if (typeof o.nic !== "boolean") throw new TypeError("configuration: nic is not a boolean");
  let disk: VmConfig["disk"] = null;
  if (o.disk !== null) {
    const d = o.disk as Record<string, unknown>;
    if (typeof d !== "object" || d === null || !Number.isSafeInteger(d.sectors) || (d.sectors as number) <= 0 || typeof d.identity !== "string") {
      throw new TypeError("configuration: disk is not null or {sectors, identity}");
    }
    disk = { sectors: d.sectors as number, identity: d.identity };
  }
  return {
    version: VM_CONFIG_VERSION, image: str("image"), imageBytes: int("imageBytes"), ramSize: int("ramSize", 2 ** 32),
    clock, cmdline: str("cmdline"), nic: o.nic, disk,
  };
}
