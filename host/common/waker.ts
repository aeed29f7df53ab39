// A wait that ends early when something arrives (a frame, a byte of input,
// a datagram), so a driver whose guest is idle steps at once instead of
// sleeping out its timer: the latency an outside request sees is then the
// guest's, not the timer's. Used by the real-time driver
// (host/machine/realtime.ts) and the replicas' driver (host/ft/driver.ts).

export class Waker {
  private wakeNow: (() => void) | null = null;
  private pending = false;

  /** Something arrived: end the current wait (or the next one, at once). */
  wake(): void {
    if (this.wakeNow) this.wakeNow();
    else this.pending = true;
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((res) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        self.wakeNow = null;
        res();
      }
      this.wakeNow = done;
    });
  }
}
