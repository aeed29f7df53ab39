// The page: a fault-tolerant pair (web/pair.ts) of the chosen guest, a
// console and figures per replica, live charts, the fault controls and a kv
// client. The controls act on roles, not on slots: "kill primary" kills
// whichever replica is live now. Changing the guest, the engine or the
// replication mode starts a new pair (a running pair cannot change mode). What the page has
// seen is kept in window.lockstepPage for the browser tests
// (tests/browser/page.test.ts). See docs/web.md.

import { createPair, fetchGuest, GUESTS, isLive, type Pair, type Slot, type StatusReport } from "../lockstep.js";
import { Charts, compact } from "./charts.js";
import { ReplicaConsole } from "./consoles.js";
import { KvPanel, type Acked } from "./kv-panel.js";

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
const SLOTS: Slot[] = ["primary", "backup"];
const LABEL: Record<Slot, string> = { primary: "A", backup: "B" };
const SAMPLE_MS = 250;

const consoles = { primary: new ReplicaConsole($("#slot-primary .term")), backup: new ReplicaConsole($("#slot-backup .term")) };
const charts = new Charts(document);
const kv = new KvPanel($<HTMLFormElement>("#kv"), $<HTMLOListElement>("#kv-results"));
const guestSelect = $<HTMLSelectElement>("#guest");
const modeSelect = $<HTMLSelectElement>("#mode");
const engineSelect = $<HTMLSelectElement>("#engine");
for (const g of GUESTS) guestSelect.add(new Option(`${g.name}: ${g.about}`, g.name));

/** What the page has seen, for the tests. */
interface Seen {
  guest: string;
  mode: string;
  /** The outside world's serial stream, and each serial output's number, in the order taken. */
  serial: string;
  serialSeqs: number[];
  /** The serial stream cut where the releasing replica changed: each piece with the slot whose console shows it. */
  segments: { slot: Slot; text: string }[];
  /** Every output's number as taken (all channels). */
  seqs: number[];
  events: string[];
  acked: Acked[];
  reports: Record<Slot, StatusReport | null>;
  ended: Record<Slot, string | null>;
  ready: boolean;
  /** Each replica console's text. */
  readonly consoles: Record<Slot, string>;
}
const seen: Seen = { guest: "", mode: "", serial: "", serialSeqs: [], segments: [], seqs: [], events: [], acked: kv.acked, reports: { primary: null, backup: null }, ended: { primary: null, backup: null }, ready: false,
  get consoles() { return { primary: consoles.primary.text, backup: consoles.backup.text }; },
};
(window as unknown as { lockstepPage: Seen }).lockstepPage = seen;

let pair: Pair | null = null;
let frameListeners = new Set<(f: Uint8Array) => void>();
const t0 = performance.now();

function event(line: string): void {
  seen.events.push(line);
  const li = document.createElement("li");
  li.textContent = `${((performance.now() - t0) / 1000).toFixed(1)} s  ${line}`;
  $("#events").prepend(li);
}

/** The slot whose replica plays `role` now (the live primary, or the backup that follows it), if any. */
function slotOf(role: "primary" | "backup"): Slot | null {
  if (!pair) return null;
  const f = pair.figures();
  const s = role === "primary" ? f.live : f.following;
  if (s) return s;
  // Before the first report: the slot's own role.
  const st = pair.slot(role);
  return st.running && !st.last ? role : null;
}

function showSlot(slot: Slot): void {
  const el = $(`#slot-${slot}`);
  const st = pair?.slot(slot);
  const r = st?.last ?? null;
  const set = (f: string, v: string) => { el.querySelector(`[data-field="${f}"]`)!.textContent = v; };
  const badge = el.querySelector(".badge")!;
  const dead = !!st && !st.running;
  el.classList.toggle("dead", dead);
  badge.className = `badge${dead ? " dead" : isLive(r) ? " live" : ""}`;
  badge.textContent = !st ? "—" : dead ? (st.ended ?? "ended") : !r ? "starting" : isLive(r) ? "primary (live)" : r.status.state === "following" ? "backup" : r.status.state;
  set("state", r ? r.status.state : "—");
  set("epoch", r ? String(r.status.epoch) : "—");
  set("icount", r ? compact(Number(r.status.icount)) : "—");
  set("mips", r && st?.running ? r.mips.toFixed(0) : "—");
  set("held", r ? String(r.status.held) : "—");
}

/** Buttons that cannot act now say so (aria-disabled) but stay in the Tab order, so the keyboard reaches every control. */
function setEnabled(id: string, on: boolean): void {
  $(id).setAttribute("aria-disabled", String(!on));
}
const enabled = (id: string) => $(id).getAttribute("aria-disabled") !== "true";

function updateButtons(): void {
  const running = pair !== null;
  setEnabled("#kill-primary", running && slotOf("primary") !== null);
  setEnabled("#kill-backup", running && slotOf("backup") !== null);
  setEnabled("#partition", running);
  setEnabled("#new-backup", running && SLOTS.some((s) => !pair!.slot(s).running) && SLOTS.some((s) => pair!.slot(s).running));
}

// The charts' sample: the pair's figures (web/pair.ts) every SAMPLE_MS.
function sample(): void {
  if (!pair) return;
  const f = pair.figures();
  const num = (v: bigint | null) => (v === null ? null : Number(v) / 1e6);
  charts.add(Date.now() / 1000, {
    icount: [num(f.icount.primary), num(f.icount.backup)],
    lag: f.lag, bandwidth: f.logBytesPerSecond === null ? null : f.logBytesPerSecond / 1024, held: f.held,
    mips: [f.mips.primary, f.mips.backup],
  });
  for (const s of SLOTS) {
    showSlot(s);
    const st = pair.slot(s);
    if (!st.running && seen.ended[s] === null) seen.ended[s] = st.ended;
  }
  updateButtons();
}
setInterval(sample, SAMPLE_MS);

/** Each start's number: a pair started by a start that a later one superseded (a quick second change) is closed. */
let generation = 0;

async function start(): Promise<void> {
  const gen = ++generation;
  const current = () => gen === generation;
  pair?.close();
  pair = null;
  seen.ready = false;
  const guest = GUESTS.find((g) => g.name === guestSelect.value) ?? GUESTS[0]!;
  const mode = modeSelect.value === "checkpoint" ? "checkpoint" : "replay";
  const engine = engineSelect.value === "ts" ? "ts" : "wasm";
  Object.assign(seen, { guest: guest.name, mode, serial: "", serialSeqs: [], segments: [], seqs: [], reports: { primary: null, backup: null }, ended: { primary: null, backup: null } });
  seen.events.length = 0;
  for (const s of SLOTS) consoles[s].clear();
  consoles.backup.note("(a backup's outputs are the primary's, held back by the Output Rule: this console fills when it goes live)");
  charts.clear();
  frameListeners = new Set();
  event(`starting ${guest.name} (${guest.cmdline}) as a pair in ${mode} mode on the ${engine} engine`);
  const image = await fetchGuest(guest.url);
  if (!current()) return;
  const listeners = frameListeners;
  const p = await createPair({
    image, cmdline: guest.cmdline, nic: guest.nic, mode, engine,
    onOutput: (o, from) => {
      if (!current()) return;
      seen.seqs.push(o.seq);
      if (o.channel === "serial") {
        seen.serial += String.fromCharCode(o.value as number);
        seen.serialSeqs.push(o.seq);
        const last = seen.segments[seen.segments.length - 1];
        if (last?.slot === from) last.text += String.fromCharCode(o.value as number);
        else seen.segments.push({ slot: from, text: String.fromCharCode(o.value as number) });
        consoles[from].write([o.value as number]);
      }
    },
    onFrame: (f) => { for (const l of listeners) l(f); },
    onStatus: (slot, r) => { if (current()) seen.reports[slot] = r; },
    onExit: (status) => { if (current()) event(`the guest exited with status ${status}`); },
    say: (line) => {
      if (!current()) return;
      event(line);
      if (/going live|won epoch/.test(line)) for (const s of SLOTS) consoles[s].note(`-- ${line}`);
    },
  });
  if (!current()) {
    p.close();
    return;
  }
  pair = p;
  kv.connect(guest.nic ? { send: (f) => pair?.sendFrame(f), onFrame: (cb) => { listeners.add(cb); return () => listeners.delete(cb); } } : null);
  seen.ready = true;
  updateButtons();
}

function act(what: string, f: () => void | Promise<void>, button?: string): void {
  if (button && !enabled(button)) return;
  Promise.resolve().then(f).catch((e: Error) => event(`${what}: ${e.message}`));
}
$("#restart").addEventListener("click", () => act("start", start));
guestSelect.addEventListener("change", () => act("start", start));
modeSelect.addEventListener("change", () => act("start", start));
engineSelect.addEventListener("change", () => act("start", start));
$("#kill-primary").addEventListener("click", () => act("kill primary", () => {
  const s = slotOf("primary");
  if (s) { event(`kill primary: replica ${LABEL[s]}`); pair!.kill(s); }
}, "#kill-primary"));
$("#kill-backup").addEventListener("click", () => act("kill backup", () => {
  const s = slotOf("backup");
  if (s) { event(`kill backup: replica ${LABEL[s]}`); pair!.kill(s); }
}, "#kill-backup"));
$("#partition").addEventListener("click", () => act("partition", () => { event("partition: the channel is cut both ways"); pair!.partition(); }, "#partition"));
$("#new-backup").addEventListener("click", () => act("new backup", async () => {
  for (const s of SLOTS) if (!pair!.slot(s).running) consoles[s].note("-- a new backup starts in this slot: it gets the live replica's state");
  await pair!.startBackup();
}, "#new-backup"));

act("start", start);
