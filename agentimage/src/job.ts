// The job module of the worker entry (worker.ts): the framework imports it in the job process it
// forks (ahead of time, as the idle process) and calls `entry` with the job the worker accepted.
// The entry runs the same session as the direct entry (agent.ts), with the per-session values
// taken from the dispatch metadata, then ends the job (ctx.shutdown) so the worker can exit.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { AutoSubscribe, defineAgent, type JobContext } from '@livekit/agents';
import { RoomServiceClient } from 'livekit-server-sdk';
import { livekitHttpUrl, runSession, type SessionResult } from './agent.js';
import { prewarmAvatarRequest } from './bey-avatar.js';
import { CategoryError, loadCategory, preparedClient } from './categories.js';
import { loadWorkerConfig, secretValues, type RuntimeConfig } from './config.js';
import { parseDispatch } from './dispatch.js';
import { adoptRtcLogger, captureStdout, createLogger, installFrameworkLogger, type SessionFields } from './logger.js';
import { AgentMetrics } from './metrics.js';
import { logProcessEvents } from './processevents.js';
import { endBeforeStart } from './room-cleanup.js';
import { StopLatch } from './stop-latch.js';

/**
 * Set by the worker for the job processes it forks: a private directory where a job process
 * marks itself ready (IDLE_READY_FILE) and leaves the job's outcome (JOB_RESULT_FILE).
 */
export const WORKER_DIR_VARIABLE = 'COUNSELVIDEO_WORKER_DIR';
export const IDLE_READY_FILE = 'idle-ready';
export const JOB_RESULT_FILE = 'job-result.json';

export interface JobResult {
  reason: string;
  exit_code: number;
}

// One logger for the process; its session fields are filled in when the job starts.
const session: SessionFields = { sessionId: null };
const logger = createLogger({ secrets: secretValues(process.env), session });
// Installed at import, before the framework creates its own logger in this process.
captureStdout(() => logger);
// An uncaught exception ends a running session cleanly (room deleted, exit 1).
let fatalHandler: ((err: unknown) => void) | undefined;
logProcessEvents(logger, (err) => (fatalHandler ? fatalHandler(err) : process.exit(1)));
// The worker's stop (SIGTERM, ECS draining the task) reaches this process as the framework's
// shutdown request (the framework's own handler only starts its entry-shutdown wait). Recorded from
// the start, so a stop while the category loads still ends the session (room deleted).
const stopRequests = new StopLatch();
process.on('message', (msg: { case?: string } | undefined) => {
  if (msg?.case === 'shutdownRequest') stopRequests.request('shutdown_request');
});

function writeWorkerFile(name: string, content: string): void {
  const dir = process.env[WORKER_DIR_VARIABLE];
  if (!dir) return;
  try {
    writeFileSync(join(dir, name), content);
  } catch (err) {
    logger.error({ error: String(err), file: name }, 'could not write to the worker directory');
  }
}

let categoriesClient: DynamoDBClient | undefined;

async function serve(ctx: JobContext): Promise<JobResult> {
  // The worker validated both before accepting; a failure here would be a bug, not bad input.
  const cfg = loadWorkerConfig(process.env);
  const dispatched = parseDispatch(ctx.job.room?.name, ctx.job.metadata);
  session.sessionId = dispatched.sessionId;
  session.roomName = dispatched.roomName;
  // The job runner replaced the framework's logger when the job started: ours again.
  installFrameworkLogger(logger);
  logger.info(
    {
      event: 'job_started',
      job_id: ctx.job.id,
      category_id: dispatched.categoryId,
      replacement: dispatched.replacement,
      max_duration_s: dispatched.maxDurationSeconds ?? cfg.maxDurationSeconds,
    },
    'job started',
  );

  let category;
  try {
    category = await loadCategory({
      table: cfg.categoriesTable,
      region: cfg.awsRegion,
      categoryId: dispatched.categoryId,
      client: categoriesClient,
      signal: stopRequests.signal,
    });
  } catch (err) {
    // As in the direct entry: the room is left alone (the backend's join timeout handles it).
    if (err instanceof CategoryError) {
      logger.fatal({ event: 'config_error', category_id: dispatched.categoryId }, err.message);
      return { reason: 'config_error', exit_code: 3 };
    }
    if (stopRequests.requested) return stopBeforeStart(cfg, dispatched.roomName, stopRequests.requested);
    logger.fatal({ event: 'categories_unavailable', error: String(err) }, 'could not read the categories table');
    return { reason: 'categories_unavailable', exit_code: 1 };
  }
  logger.info({ event: 'category_loaded', category_name: category.name }, 'category loaded');
  if (stopRequests.requested) return stopBeforeStart(cfg, dispatched.roomName, stopRequests.requested);

  const result: SessionResult = await runSession({
    // The session's own maximum (daily minutes left) wins over the worker's configured one.
    cfg: dispatched.maxDurationSeconds ? { ...cfg, maxDurationSeconds: dispatched.maxDurationSeconds } : cfg,
    target: dispatched,
    category,
    logger,
    room: ctx.room,
    connect: () => ctx.connect(undefined, AutoSubscribe.SUBSCRIBE_NONE),
    earlyAvatarNoShowSeconds: cfg.earlyAvatarNoShowSeconds,
    // The worker records the exit (worker.ts); the session's own events are recorded here.
    metrics: new AgentMetrics({ stack: cfg.stackName, source: 'pool', fields: () => ({ session_id: session.sessionId }) }),
    onStopRequest: (fn) => stopRequests.onStop(fn),
    onFatal: (fn) => {
      fatalHandler = fn;
    },
  });
  return { reason: result.reason, exit_code: result.exitCode };
}

/** As in the direct entry: the backend asked for the session to end, so the room goes too. */
async function stopBeforeStart(cfg: RuntimeConfig, roomName: string, reason: string): Promise<JobResult> {
  const result = await endBeforeStart({
    roomService: new RoomServiceClient(livekitHttpUrl(cfg.livekitUrl), cfg.livekitApiKey, cfg.livekitApiSecret),
    roomName,
    signal: reason,
    logger,
  });
  return { reason: result.reason, exit_code: result.exitCode };
}

export default defineAgent({
  // Runs while the process waits idle for a job: everything that does not depend on the job.
  prewarm: async () => {
    installFrameworkLogger(logger);
    adoptRtcLogger(logger, logger.level);
    try {
      const cfg = loadWorkerConfig(process.env);
      categoriesClient = await preparedClient(cfg.awsRegion, cfg.categoriesTable);
    } catch (err) {
      logger.warn({ error: String(err) }, 'could not prepare the categories client; the job will make its own');
    }
    await prewarmAvatarRequest();
    writeWorkerFile(IDLE_READY_FILE, String(process.pid));
  },
  entry: async (ctx: JobContext) => {
    let result: JobResult;
    try {
      result = await serve(ctx);
    } catch (err) {
      logger.error({ error: String(err) }, 'job failed');
      result = { reason: 'job_failed', exit_code: 1 };
    }
    writeWorkerFile(JOB_RESULT_FILE, JSON.stringify(result));
    logger.info({ event: 'job_finished', reason: result.reason, exit_code: result.exit_code }, 'job finished');
    // Closing the session does not end a job; this does (the job process then exits).
    ctx.shutdown(result.reason);
  },
});
