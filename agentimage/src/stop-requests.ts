// SIGTERM/SIGINT handling, installed when this module is evaluated. main.ts imports it first, so
// from the very start of the process a stop is recorded instead of Node's default "exit now": a stop
// that arrives while the category loads or before the room is joined still deletes the room.
// Only a dependency-free import: anything heavier would be evaluated (slowly) before the handlers exist.
import { StopLatch } from './stop-latch.js';

export const stopRequests = new StopLatch();

for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stopRequests.request(sig));
