// lockstep's embedding API for web pages (import from "lockstep/web"):
// createMachine runs one VM in a Web Worker; createPair runs a fault-tolerant
// pair, primary and backup in two workers with the logging channel between
// them. docs/web.md documents both, with a working example
// (web/examples/single.html).

export { createMachine, type MachineOptions, type MachineStop, type RunningMachine } from "./machine.js";
export { createPair, isFollowing, isLive, type Pair, type PairFigures, type PairMode, type PairOptions, type Slot, type SlotState } from "./pair.js";
export type { StatusReport } from "./protocol.js";
export { webCoreModules, fetchGuest } from "./core-modules.js";
export { GUESTS, type GuestEntry } from "./guests.js";
export { MemoryArbiter, type Arbiter } from "../host/ft/arbiter.js";
export { KvClient } from "../host/kv/client.js";
