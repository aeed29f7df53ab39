// A console per replica (@xterm/xterm): the COM1 bytes the outside world took
// from that replica. Before a failover the primary's console fills; after it
// the backup's carries on where it stopped, and the two read in order are
// the guest's whole output, each byte once.

import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";

export class ReplicaConsole {
  private readonly term: Terminal;
  /** What was written, as text (the test reads it back). */
  text = "";

  constructor(el: HTMLElement) {
    const cols = Math.max(40, Math.floor((el.clientWidth - 10) / 7.25));
    this.term = new Terminal({
      cols, rows: 16, convertEol: true, disableStdin: true, fontSize: 12, scrollback: 5000,
      theme: { background: "#0b0f14" },
    });
    this.term.open(el);
    // Output only: the terminal takes no keys, so it must not trap Tab (xterm's input textarea would take it as
    // input) nor sit in the Tab order as a control that does nothing.
    this.term.attachCustomKeyEventHandler((e) => e.key !== "Tab");
    if (this.term.textarea) this.term.textarea.tabIndex = -1;
  }

  write(bytes: Uint8Array | number[]): void {
    const s = String.fromCharCode(...bytes);
    this.text += s;
    this.term.write(s);
  }

  /** A line from the page itself (not the guest's), dimmed. */
  note(line: string): void {
    this.term.write(`\x1b[2m${line}\x1b[0m\r\n`);
  }

  clear(): void {
    this.text = "";
    this.term.reset();
  }
}
