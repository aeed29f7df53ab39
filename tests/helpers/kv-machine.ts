// The kv guest on the whole machine (host/machine/machine.ts) with the pvnic
// and an ATA disk, virtual clock, seen through KvVm (tests/helpers/kv-script.ts).
// Both kv builds run on it: guests/bin/kv.elf (IRQ-driven, HLT between frames)
// and guests/bin/kvbare.elf (no interrupts, polls the RX ring).
//
// boot() must be synchronous but Machine.create is not, so the machines for
// every boot a test needs are created beforehand (creating one loads the image
// into its own RAM and touches no disk); each boot takes the next one, on the
// same block store, so a reboot keeps the disk.

import { describeOutcome } from "../../host/cli/run.js";
import { MemoryBlockStore } from "../../host/devices/block-store.js";
import type { EngineKind } from "../../host/engine/engine.js";
import { Machine } from "../../host/machine/machine.js";
import { bootLive } from "../../host/node/boot.js";
import type { KvStep, KvVm } from "./kv-script.js";

export const KV_RAM = 32 << 20;
/** 4 MiB: room for the store's 4160 sectors. */
export const KV_DISK_SECTORS = 8192;
/** Instructions per runSync() call between checks for a transmitted frame. */
const SLICE = 20_000;
/** The most instructions a boot may take to print "kv: ready". */
const MAX_BOOT_INSTRUCTIONS = 200_000_000;

export interface KvMachineOptions {
  /** How many boots the test makes (the machines are created up front). */
  boots: number;
  /** The disk (default: an empty MemoryBlockStore of KV_DISK_SECTORS). */
  store?: MemoryBlockStore;
  ramSize?: number;
  cmdline?: string;
}

/** Boots a script needs: the first, and one per restart step. */
export const bootsIn = (steps: KvStep[]) => 1 + steps.filter((s) => "restart" in s).length;

export class KvMachineVm implements KvVm {
  readonly store: MemoryBlockStore;
  /** What each boot printed (COM1 and the debug console, as the guest chose). */
  readonly consoles: string[] = [];
  /** Every frame the guest transmitted, over all boots, in order. */
  readonly transmitted: Uint8Array[] = [];
  private readonly retired: bigint[] = [];
  private spare: Machine[] = [];
  private m: Machine | null = null;
  private pending: Uint8Array[] = [];

  private constructor(readonly kind: EngineKind, store: MemoryBlockStore) {
    this.store = store;
  }

  static async create(elf: Uint8Array, kind: EngineKind, opts: KvMachineOptions): Promise<KvMachineVm> {
    const vm = new KvMachineVm(kind, opts.store ?? new MemoryBlockStore(KV_DISK_SECTORS));
    for (let i = 0; i < opts.boots; i++) {
      const index = i;
      const print = (b: number) => (vm.consoles[index] += String.fromCharCode(b));
      vm.spare.push(await bootLive(elf, {
        engine: kind,
        ramSize: opts.ramSize ?? KV_RAM,
        clock: "virtual",
        cmdline: opts.cmdline,
        disk: vm.store,
        nic: true,
        onSerial: print,
        onDebugcon: print,
        onTransmit: (f) => {
          const frame = f.slice();
          vm.transmitted.push(frame);
          vm.pending.push(frame);
        },
      }));
    }
    return vm;
  }

  /** The machine of the current boot. */
  get machine(): Machine {
    if (!this.m) throw new Error("not booted");
    return this.m;
  }

  /** Boots so far. */
  get boots(): number {
    return this.consoles.length;
  }

  /** What the current boot printed. */
  get console(): string {
    return this.consoles.at(-1) ?? "";
  }

  /** Instructions each boot retired (the current one's so far). */
  get instructions(): bigint[] {
    return this.m ? [...this.retired, this.m.engine.icount] : [...this.retired];
  }

  get nicStats() {
    return this.machine.nic!.stats();
  }

  boot(): void {
    const m = this.spare.shift();
    if (!m) throw new Error(`no machine left for boot ${this.boots + 1} (created for ${this.boots})`);
    if (this.m) this.retired.push(this.m.engine.icount);
    this.m = m;
    this.consoles.push("");
    this.pending = [];
    const i = this.consoles.length - 1;
    const ready = () => /kv: ready[^\n]*\n/.test(this.consoles[i]);
    let done = 0;
    while (!ready()) {
      const r = m.runSync(SLICE);
      done += Number(r.instructions);
      if ((r.reason !== "limit" && r.reason !== "idle") || done > MAX_BOOT_INSTRUCTIONS) {
        throw new Error(`boot ${i}: the kv guest did not become ready (${describeOutcome(m, r)}):\n${this.consoles[i]}`);
      }
      if (r.reason === "idle" && !ready()) throw new Error(`boot ${i}: idle before ready:\n${this.consoles[i]}`);
    }
  }

  receive(frame: Uint8Array): boolean {
    return this.machine.nic!.receive(frame);
  }

  runUntilTransmit(maxInstructions: number): Uint8Array[] {
    const m = this.machine;
    this.pending = [];
    let done = 0;
    while (this.pending.length === 0 && done < maxInstructions) {
      const r = m.runSync(Math.min(SLICE, maxInstructions - done));
      done += Number(r.instructions);
      if (r.reason === "idle") break; // waiting in HLT with nothing scheduled: no frame is coming
      if (r.reason !== "limit") throw new Error(`the kv guest stopped (${describeOutcome(m, r)}):\n${this.console}`);
    }
    return this.pending;
  }
}
