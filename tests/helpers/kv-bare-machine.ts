// A minimal machine for the bare kv guest (guests/bin/kvbare.elf) while the
// whole machine (host/machine/machine.ts) is being written: an engine, the
// port bus with the debug console, the exit port, the pvnic and the ATA disk,
// and a run loop. No interrupt controller: the bare guest never enables
// interrupts and polls the NIC and the disk. Guest time is the instruction
// count (1 ns per instruction), so runs are deterministic. It implements
// KvVm (tests/helpers/kv-script.ts).

import { AtaDisk } from "../../host/devices/ata-disk.js";
import { MemoryBlockStore, type BlockStore } from "../../host/devices/block-store.js";
import { DebugPort } from "../../host/devices/debug-port.js";
import type { IrqLine } from "../../host/devices/device.js";
import { ExitPort } from "../../host/devices/exit-port.js";
import { Pvnic } from "../../host/devices/pvnic.js";
import { ExitReason, type Engine } from "../../host/engine/engine.js";
import { PortBus } from "../../host/machine/bus.js";
import { applyBootState, loadMultiboot } from "../../host/machine/multiboot.js";
import { cpuidAnswer, DeterministicRandom } from "../../host/machine/simple-run.js";
import type { KvVm } from "./kv-script.js";

const noIrq: IrqLine = { raise() {}, lower() {} };
const SLICE = 200_000;
const mask = (size: number) => (size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1);

export class KvBareMachine implements KvVm {
  readonly disk: BlockStore;
  console = "";
  exitStatus: number | null = null;
  /** Every frame the guest transmitted, in order. */
  readonly transmitted: Uint8Array[] = [];
  boots = 0;
  private bus!: PortBus;
  private nic!: Pvnic;
  private ata!: AtaDisk;
  private pendingTx: Uint8Array[] = [];
  private rng = new DeterministicRandom();

  constructor(readonly engine: Engine, readonly elf: Uint8Array, opts: { disk?: BlockStore; diskSectors?: number; cmdline?: string } = {}) {
    this.disk = opts.disk ?? new MemoryBlockStore(opts.diskSectors ?? 8192);
    this.cmdline = opts.cmdline ?? "";
  }
  private readonly cmdline: string;

  /** Power-on: fresh devices (the disk's contents stay), the image loaded, run until "kv: ready". */
  boot(): void {
    const e = this.engine;
    e.reset();
    e.setIcount(0n);
    e.writeMem(0, new Uint8Array(e.ramSize));
    this.console = "";
    this.exitStatus = null;
    this.pendingTx = [];
    const clock = { nowNs: () => Number(e.icount) };
    this.bus = new PortBus();
    this.bus.attach(new DebugPort({ onOutput: (b) => (this.console += String.fromCharCode(b)) }));
    this.bus.attach(new ExitPort({ onExit: (v) => (this.exitStatus = v) }));
    this.nic = new Pvnic({ memory: { read: (a, n) => e.readMem(a, n), write: (a, b) => e.writeMem(a, b) }, irq: noIrq });
    this.nic.onTransmit((f) => {
      this.transmitted.push(f);
      this.pendingTx.push(f);
    });
    this.bus.attach(this.nic);
    this.ata = new AtaDisk({ store: this.disk, clock, irq: noIrq });
    this.bus.attach(this.ata);
    const boot = loadMultiboot(e, this.elf, { cmdline: this.cmdline });
    applyBootState(e, boot.state);
    this.boots++;
    const start = this.console.length;
    this.run(200_000_000, () => this.console.includes("kv: ready", start));
    if (!this.console.includes("kv: ready")) throw new Error(`the kv guest did not become ready:\n${this.console}`);
  }

  receive(frame: Uint8Array): boolean {
    return this.nic.receive(frame);
  }

  runUntilTransmit(maxInstructions: number): Uint8Array[] {
    this.pendingTx = [];
    this.run(maxInstructions, () => this.pendingTx.length > 0);
    return this.pendingTx;
  }

  get nicStats() {
    return this.nic.stats();
  }

  /** Runs until `stop()` holds (checked after every exit), the guest exits, or `max` instructions. */
  run(max: number, stop: () => boolean): void {
    const e = this.engine;
    let done = 0;
    while (done < max && this.exitStatus === null && !stop()) {
      const now = Number(e.icount);
      const due = this.ata.nextEventNs();
      if (due !== null && due <= now) {
        this.ata.advance(now);
        continue;
      }
      const budget = Math.max(1, Math.min(SLICE, max - done, due !== null ? due - now : SLICE));
      const x = e.run(budget);
      done += x.executed;
      switch (x.reason) {
        case ExitReason.Budget:
          break;
        case ExitReason.In:
          e.answer(this.bus.read(x.port!, x.size! as 1 | 2 | 4) & mask(x.size!));
          break;
        case ExitReason.Out:
          this.bus.write(x.port!, x.size! as 1 | 2 | 4, x.value!);
          break;
        case ExitReason.Cpuid: {
          const [a, b, c, d] = cpuidAnswer(x.leaf!, x.subleaf!);
          e.answer(a, b, c, d);
          break;
        }
        case ExitReason.Rdtsc:
          e.answer(Number(e.icount & 0xffffffffn), Number(e.icount >> 32n));
          break;
        case ExitReason.Rdrand:
        case ExitReason.Rdseed:
          e.answer(this.rng.next() & mask(x.size!), 1);
          break;
        case ExitReason.Hlt:
          throw new Error(`the guest halted at 0x${e.eip.toString(16)} (a bare guest has no interrupts to wake it)\n${this.console}`);
        default:
          throw new Error(`unexpected exit ${ExitReason[x.reason] ?? x.reason} (vector ${x.vector}) at EIP 0x${e.eip.toString(16)}\n${this.console}`);
      }
    }
  }
}
