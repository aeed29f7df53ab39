// A test-only machine for the disk guests: one engine, the ATA disk on the
// port bus, the debug console (0xE9) and the exit port (0xF4), and a virtual
// guest clock of one nanosecond per retired instruction. The engine runs
// until the disk's next completion is due, the disk is advanced before every
// port access, so the guest sees completions at exact instruction counts.
// No interrupt controller: the disk guests poll (the IRQ line is recorded).

import { AtaDisk, type AtaTiming } from "../../host/devices/ata-disk.js";
import type { BlockStore } from "../../host/devices/block-store.js";
import type { AccessSize, IrqLine } from "../../host/devices/device.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { ExitReason, type EngineKind } from "../../host/engine/engine.js";
import { PortBus } from "../../host/machine/bus.js";
import { applyBootState, loadMultiboot } from "../../host/machine/multiboot.js";

export interface DiskRun {
  output: string;
  /** The value written to port 0xF4, or null if the run stopped otherwise. */
  exitStatus: number | null;
  /** How the run stopped when it did not exit: "hlt", "fault 13 at ...", "limit". */
  stop: string;
  instructions: bigint;
  /** Rising edges on IRQ 14. */
  irqRaises: number;
  disk: AtaDisk;
}

export async function runDiskGuest(
  kind: EngineKind,
  elf: Uint8Array,
  store: BlockStore,
  opts: { timing?: Partial<AtaTiming>; maxInstructions?: number; ramSize?: number } = {},
): Promise<DiskRun> {
  const engine = await loadEngine(kind, { ramSize: opts.ramSize ?? 32 << 20 });
  engine.reset();
  engine.setIcount(0n);
  applyBootState(engine, loadMultiboot(engine, elf).state);
  const now = () => Number(engine.icount);
  let irqRaises = 0;
  const irq: IrqLine = { raise: () => void irqRaises++, lower: () => {} };
  const disk = new AtaDisk({ store, clock: { nowNs: now }, irq, timing: opts.timing });
  const bus = new PortBus();
  bus.attach(disk);
  const limit = opts.maxInstructions ?? 200_000_000;
  const bytes: number[] = [];
  let exitStatus: number | null = null;
  let stop = "";
  while (exitStatus === null && !stop) {
    const due = disk.nextEventNs();
    const left = limit - now();
    if (left <= 0) {
      stop = "limit";
      break;
    }
    const budget = Math.max(1, Math.min(1_000_000, left, due === null ? Infinity : due - now()));
    const e = engine.run(budget);
    disk.advance(now());
    switch (e.reason) {
      case ExitReason.Budget:
        break;
      case ExitReason.In:
        engine.answer(e.port === 0xe9 ? 0xe9 : bus.read(e.port!, e.size as AccessSize));
        break;
      case ExitReason.Out:
        if (e.port === 0xe9) bytes.push(e.value! & 0xff);
        else if (e.port === 0xf4) exitStatus = e.value! >>> 0;
        else bus.write(e.port!, e.size as AccessSize, e.value!);
        break;
      case ExitReason.Hlt:
        stop = "hlt";
        break;
      default:
        stop = `exit reason ${e.reason} (vector ${e.vector}) at EIP 0x${engine.eip.toString(16)}`;
    }
  }
  return { output: Buffer.from(bytes).toString("latin1"), exitStatus, stop, instructions: engine.icount, irqRaises, disk };
}

/** The bytes the disk guest writes to sector `lba` (guests/disk/disk.c pattern()). */
export function diskPattern(lba: number): Uint8Array {
  const out = new Uint8Array(512);
  let x = (Math.imul(lba, 2654435761) ^ 0x6c6f636b) >>> 0;
  for (let i = 0; i < 512; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const v = (x ^ (x >>> 16)) >>> 0;
    out[i] = v & 0xff;
    out[i + 1] = (v >>> 8) & 0xff;
    out[i + 2] = (v >>> 16) & 0xff;
    out[i + 3] = v >>> 24;
  }
  return out;
}

/** What disk.elf prints on a 16M disk after its identify lines (the same on QEMU). */
export const DISK_16M_BODY = `sectors: 32768 (16384 KiB)
write   1 sectors at  64 (16-bit): 3103be53
write   3 sectors at  65 (32-bit): 7363fb18
write   8 sectors at  68 (16-bit): 2665090c
write  32 sectors at  76 (32-bit): c9228693
write 256 sectors at 108 (16-bit): 673a648d
flush: ok
read  256 sectors at  64 (32-bit): d647e845, 0 bad
read   37 sectors at 320 (16-bit): 4559eb1a, 0 bad
read    7 sectors at 357 (32-bit): f3d6e86e, 0 bad
checksum written 9e3d7089
checksum read    9e3d7089
read past the end (LBA 32768): device error, status 41 error 04: refused as it should be
read after the error: ok
PASS
`;
