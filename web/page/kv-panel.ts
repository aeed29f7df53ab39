// The kv client panel: a KvClient (host/kv/client.ts) whose frames go to the
// pair's NIC (to whichever replica is live) and come back from the outputs
// the outside world took. A request that gets no reply in time is resent
// unchanged, so across a failover it is executed once. Each acknowledged
// result is listed; `acked` keeps them for the test.

import { KvClient } from "../../host/kv/client.js";
import type { FrameTransport } from "../../host/net/frame-transport.js";

export interface Acked {
  op: "put" | "get" | "incr";
  key: string;
  /** put: the value written; get: the value read (null: absent); incr: the new value. */
  value: string | null;
}

export class KvPanel {
  readonly acked: Acked[] = [];
  private client: KvClient | null = null;
  private busy = false;

  constructor(private readonly form: HTMLFormElement, private readonly list: HTMLOListElement) {
    const field = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value;
    form.addEventListener("submit", (e) => { e.preventDefault(); void this.run("put", field("key"), field("value")); });
    form.querySelector("#kv-get")!.addEventListener("click", () => void this.run("get", field("key")));
    form.querySelector("#kv-incr")!.addEventListener("click", () => void this.run("incr", field("key")));
  }

  /** A new client for a new pair (null: no pair runs a kv guest). */
  connect(transport: FrameTransport | null): void {
    this.client?.close();
    this.client = transport ? new KvClient({ transport, clientId: 1, timeoutMs: 500, retries: 60 }) : null;
    this.acked.length = 0;
    this.list.textContent = "";
    this.setEnabled(this.client !== null);
  }

  private setEnabled(on: boolean): void {
    // aria-disabled, not disabled: the buttons stay in the Tab order (web/page/main.ts does the same).
    for (const b of this.form.querySelectorAll("button")) b.setAttribute("aria-disabled", String(!on || this.busy));
  }

  private show(text: string, error = false): void {
    const li = document.createElement("li");
    li.textContent = text;
    if (error) li.className = "err";
    this.list.prepend(li);
  }

  private async run(op: Acked["op"], key: string, value = ""): Promise<void> {
    const c = this.client;
    if (!c || this.busy) return;
    this.busy = true;
    this.setEnabled(true);
    try {
      if (op === "put") {
        await c.put(key, value);
        this.acked.push({ op, key, value });
        this.show(`PUT ${key} = ${value} → OK`);
      } else if (op === "get") {
        const v = await c.get(key);
        const text = v === undefined ? null : new TextDecoder().decode(v);
        this.acked.push({ op, key, value: text });
        this.show(`GET ${key} → ${text === null ? "not found" : text}`);
      } else {
        const n = await c.incr(key, 1);
        this.acked.push({ op, key, value: String(n) });
        this.show(`INCR ${key} → ${n}`);
      }
    } catch (e) {
      if (c === this.client) this.show(`${op.toUpperCase()} ${key}: ${(e as Error).message}`, true);
    } finally {
      this.busy = false;
      this.setEnabled(this.client !== null);
    }
  }
}
