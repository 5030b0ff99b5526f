// SIGTERM/SIGINT handling, installed when this module is evaluated. main.ts imports it first, so
// from the very start of the process a stop is recorded instead of Node's default "exit now": a stop
// that arrives while the category loads or before the room is joined still deletes the room.
// No imports on purpose: dependencies would be evaluated (slowly) before the handlers exist.

type StopHandler = (signal: string) => void;

let requested: string | undefined;
let handler: StopHandler | undefined;
const controller = new AbortController();

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (!requested) {
      requested = sig;
      controller.abort(new Error(`stop requested (${sig})`));
    }
    handler?.(sig);
  });
}

export const stopRequests = {
  /** The first stop signal received, if any. */
  get requested(): string | undefined {
    return requested;
  },
  /** Aborted on the first stop signal (e.g. to cancel start-up work). */
  signal: controller.signal,
  /** `fn` is called for every later stop signal, and at once if one already arrived. */
  onStop(fn: StopHandler): void {
    handler = fn;
    if (requested) fn(requested);
  },
};
