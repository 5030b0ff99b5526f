// A stop request, remembered: the first one is recorded (and aborts `signal`), and the handler the
// session registers later still receives it. The entry points feed it: SIGTERM/SIGINT in the direct
// entry (stop-requests.ts), the framework's shutdown request in a worker's job process (job.ts).
// No imports on purpose: stop-requests.ts is evaluated before anything else.

export type StopHandler = (reason: string) => void;

export class StopLatch {
  private first?: string;
  private handler?: StopHandler;
  private readonly controller = new AbortController();

  /** The first stop received, if any. */
  get requested(): string | undefined {
    return this.first;
  }

  /** Aborted on the first stop (e.g. to cancel start-up work). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  request(reason: string): void {
    if (!this.first) {
      this.first = reason;
      this.controller.abort(new Error(`stop requested (${reason})`));
    }
    this.handler?.(reason);
  }

  /** `fn` is called for every later stop, and at once if one already arrived. */
  onStop(fn: StopHandler): void {
    this.handler = fn;
    if (this.first) fn(this.first);
  }
}
