// Memory trims for a worker that takes exactly one job, on @livekit/agents 1.9.0 (pinned). With
// the framework's defaults a worker task held ~780 MB during a session; two parts of that do
// nothing for this worker:
//  1. The local-inference process (~330 MB): AgentServer loads the `@livekit/local-inference`
//     binding and, when it loads, starts a process with the end-of-turn model. The Realtime model
//     detects turns on the server and never asks it. The framework's own fallback for a binding
//     that cannot load (unsupported platforms) is to skip that process; we take that path on
//     purpose by answering the binding's require() from Node's module cache (require.cache:
//     "adding or replacing entries is also possible") with no exports.
//  2. The replacement idle process (~150 MB): the process pool starts a new idle job process as
//     soon as the job takes the prepared one, although this worker never takes a second job.
//     ProcPool has no option for it (numIdleProcesses 0 means the default, and no idle process
//     would put a process start on every job's path), so launching the one job marks the pool
//     closed first: its replacement loop then stops before forking, exactly as it does on close().
// Both run before the AgentServer is created. Each checks what it relies on and, if the
// framework changed, logs a warning and leaves the defaults (correct, only heavier).
import { createRequire, Module } from 'node:module';
import { version as agentsVersion } from '@livekit/agents';
import type { Logger } from './logger.js';

export const LOCAL_INFERENCE_PACKAGE = '@livekit/local-inference';
/** The version whose internals the trims below were read from. */
export const TRIMMED_AGENTS_VERSION = '1.9.0';

export function disableLocalInference(logger: Logger): void {
  const require = createRequire(import.meta.url);
  // Resolved the way @livekit/agents resolves it (its dependency), so the cache key matches.
  const fromAgents = createRequire(require.resolve('@livekit/agents'));
  let filename: string;
  try {
    filename = fromAgents.resolve(LOCAL_INFERENCE_PACKAGE);
  } catch {
    return; // not installed: the framework skips the inference process by itself
  }
  if (require.cache[filename]?.exports) {
    logger.warn({ event: 'local_inference_already_loaded' }, 'local inference already loaded; the inference process will start');
    return;
  }
  const stub = new Module(filename);
  stub.filename = filename;
  stub.loaded = true;
  stub.exports = undefined;
  require.cache[filename] = stub;
  logger.info(
    { event: 'local_inference_disabled' },
    'local end-of-turn inference disabled (the Realtime model detects turns itself): no inference process',
  );
}

interface ProcPoolShape {
  prototype: { launchJob: (this: { closed: boolean }, ...args: unknown[]) => Promise<unknown> } & Record<string, unknown>;
}

export async function noReplacementIdleProcess(logger: Logger): Promise<void> {
  const skip = (why: string) =>
    logger.warn({ event: 'idle_process_trim_skipped', agents_version: agentsVersion, why }, 'a replacement idle process will start with the job');
  if (agentsVersion !== TRIMMED_AGENTS_VERSION) return skip(`written for @livekit/agents ${TRIMMED_AGENTS_VERSION}`);
  let ProcPool: ProcPoolShape | undefined;
  try {
    // Not exported by the package; the same module instance the AgentServer uses (same URL).
    const url = new URL('./ipc/proc_pool.js', import.meta.resolve('@livekit/agents'));
    ProcPool = (await import(url.href)).ProcPool as ProcPoolShape;
  } catch (err) {
    return skip(`proc_pool not found: ${String(err)}`);
  }
  const proto = ProcPool?.prototype;
  if (!proto || typeof proto.launchJob !== 'function' || typeof proto.procWatchTask !== 'function' || typeof proto.run !== 'function') {
    return skip('ProcPool changed');
  }
  const launchJob = proto.launchJob;
  proto.launchJob = function (this: { closed: boolean; controller?: AbortController }, ...args: unknown[]) {
    // The replacement loop checks both before it forks a process (procWatchTask, run).
    this.closed = true;
    this.controller?.abort();
    return launchJob.apply(this, args);
  };
  logger.info({ event: 'idle_process_trimmed' }, 'no replacement idle process once the job starts (one job per worker)');
}
