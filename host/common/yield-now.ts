// Yield to the event loop once, as briefly as the platform allows, so a
// driver that runs the guest in slices lets messages, timers and signals in
// between them. Node has setImmediate; a browser (a Web Worker) has not, and
// its setTimeout(0) is clamped to 4 ms once nested, which would cost a busy
// guest most of its time: there a message to ourselves over a MessageChannel
// comes back on the next task instead.

type Immediate = (cb: () => void) => unknown;

const immediate = (globalThis as { setImmediate?: Immediate }).setImmediate;

let channel: MessageChannel | null = null;
const waiting: (() => void)[] = [];

function viaChannel(): Promise<void> {
  if (!channel) {
    channel = new MessageChannel();
    channel.port1.onmessage = () => waiting.shift()?.();
  }
  return new Promise((res) => {
    waiting.push(res);
    channel!.port2.postMessage(null);
  });
}

/** Resolves after the event loop has had one turn. */
export function yieldNow(): Promise<void> {
  return immediate ? new Promise((res) => immediate(res)) : viaChannel();
}
