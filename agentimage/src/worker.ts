// Entry point of the warm pool: node dist/worker.js. A LiveKit Agents worker (explicit dispatch
// to LIVEKIT_AGENT_NAME) that accepts exactly ONE job, runs it in a job process (job.ts), and
// exits so ECS starts a fresh task. Exit codes: 0 session over (or stopped while idle), 1 runtime
// failure, 2 invalid environment, 3 unknown/disabled category.
import { stopRequests } from './stop-requests.js'; // first: SIGTERM handling from the very start
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentServer, ServerOptions, WorkerPermissions, type JobRequest } from '@livekit/agents';
import { TrackSource } from 'livekit-server-sdk';
import { AGENT_NAME, agentIdentity } from './agent.js';
import { ConfigError, loadWorkerConfig, secretValues, type WorkerConfig } from './config.js';
import { DispatchError, parseDispatch, type DispatchedSession } from './dispatch.js';
import { IDLE_READY_FILE, JOB_RESULT_FILE, WORKER_DIR_VARIABLE, type JobResult } from './job.js';
import { disableLocalInference, noReplacementIdleProcess } from './frameworktrim.js';
import { adoptRtcLogger, createLogger, installFrameworkLogger, scrubber, type Logger, type SessionFields } from './logger.js';
import { AgentMetrics, POOL_SAMPLE_INTERVAL_MS, sampleTime, type ExitReason } from './metrics.js';
import { logProcessEvents } from './processevents.js';
import { protectionMinutes, protectTask } from './taskprotection.js';
import { withTimeout } from './timeouts.js';

/** From accept to the job running in its process (the server's assignment included). */
const JOB_START_TIMEOUT_MS = 30_000;
/** Closing the worker with a job still running includes the session's own cleanup. */
const CLOSE_TIMEOUT_MS = 45_000;
const POLL_MS = 100;

type State = { kind: 'idle' } | { kind: 'busy'; jobId: string; session: DispatchedSession } | { kind: 'stopping' };

class OneJobWorker {
  private state: State = { kind: 'idle' };
  private finishing?: Promise<never>;
  private readonly server: AgentServer;
  private readonly workerDir = mkdtempSync(join(tmpdir(), 'counselvideo-worker-'));
  private readonly resultFile = join(this.workerDir, JOB_RESULT_FILE);
  private readonly metrics: AgentMetrics;
  private sampler?: NodeJS.Timeout;

  constructor(
    private readonly cfg: WorkerConfig,
    private readonly logger: Logger,
    /** The logger's session fields: filled in when the job is accepted. */
    private readonly session: SessionFields,
  ) {
    // Job processes are forked from this one and inherit the variable.
    process.env[WORKER_DIR_VARIABLE] = this.workerDir;
    this.metrics = new AgentMetrics({ stack: cfg.stackName, source: 'pool', fields: () => ({ session_id: session.sessionId }) });
    const opts = new ServerOptions({
      agent: fileURLToPath(new URL('./job.js', import.meta.url)),
      agentName: cfg.agentName,
      // The framework's default is ws://localhost:7880; it does not read LIVEKIT_URL itself.
      wsURL: cfg.livekitUrl,
      apiKey: cfg.livekitApiKey,
      apiSecret: cfg.livekitApiSecret,
      host: cfg.healthHost,
      port: cfg.healthPort,
      production: true,
      logLevel: logger.level,
      // One job process ready ahead of time: the job starts without a process start.
      numIdleProcesses: 1,
      // Busy = full, so the server stops offering jobs (it polls load every 2.5 s; requestFunc
      // rejects in between). Not host CPU: a busy 2-core host must not refuse the one job.
      loadFunc: async () => (this.state.kind === 'idle' ? 0 : 1),
      loadThreshold: 1,
      // Bounds closing an idle process that is still starting (its shutdown request goes unanswered).
      shutdownProcessTimeout: 5_000,
      // The job process imports the framework and plugins before it can answer (seconds on a busy host).
      initializeProcessTimeout: 30_000,
      // Same grants as the direct entry's token: the agent publishes only its microphone track.
      permissions: new WorkerPermissions(true, true, true, true, [TrackSource.MICROPHONE]),
      requestFunc: (req) => this.onRequest(req),
    });
    this.server = new AgentServer(opts);
    this.server.event.on('worker_registered', (workerId: string) => {
      this.logger.info({ event: 'worker_registered', worker_id: workerId, agent_name: cfg.agentName }, 'worker registered');
    });
  }

  run(): void {
    this.server.run().catch((err) => {
      this.logger.fatal({ event: 'worker_failed', error: String(err) }, 'worker failed');
      void this.finish(1, 'worker_failed');
    });
    void this.announceReady();
  }

  /**
   * worker_ready: registered and the idle job process prepared, so a job starts at once (a job
   * offered earlier is still served, after the idle process finished starting).
   */
  private async announceReady(): Promise<void> {
    let registered = false;
    this.server.event.once('worker_registered', () => (registered = true));
    const ready = join(this.workerDir, IDLE_READY_FILE);
    while (!(registered && existsSync(ready))) {
      if (this.state.kind === 'stopping') return;
      await sleep(POLL_MS);
    }
    this.logger.info(
      { event: 'worker_ready', start_to_ready_ms: Math.round(process.uptime() * 1000), rss_mb: Math.round(process.memoryUsage.rss() / 1048576) },
      'worker ready for a job',
    );
    this.sample();
  }

  /**
   * The pool's scaling metric (docs/capacity.md): from ready to stopping, one sample at the middle of
   * every 10-second period, 1 while holding a session. A worker still starting writes none.
   */
  private sample(): void {
    const now = Date.now();
    let at = sampleTime(now);
    if (at <= now) at += POOL_SAMPLE_INTERVAL_MS;
    this.sampler = setTimeout(() => {
      if (this.state.kind === 'stopping') return;
      void this.metrics.poolSample(this.state.kind === 'busy', at);
      this.sample();
    }, at - now);
    this.sampler.unref();
  }

  /** Runs in this (main) process, one request at a time: the one place that decides. */
  private async onRequest(req: JobRequest): Promise<void> {
    const fields = { job_id: req.id, room_name: req.room?.name };
    if (this.state.kind !== 'idle') {
      this.logger.info({ event: 'job_rejected', reason: this.state.kind === 'busy' ? 'busy' : 'stopping', ...fields }, 'job rejected');
      await req.reject();
      return;
    }
    let session: DispatchedSession;
    try {
      session = parseDispatch(req.room?.name, req.job.metadata);
    } catch (err) {
      if (!(err instanceof DispatchError)) throw err;
      this.logger.warn({ event: 'job_rejected', reason: err.problem, detail: err.message, ...fields }, 'job rejected');
      await req.reject();
      return;
    }
    this.state = { kind: 'busy', jobId: req.id, session };
    // From here on every line of this process (the framework's too) is about this session.
    this.session.sessionId = session.sessionId;
    this.session.roomName = session.roomName;
    const identity = agentIdentity(session.sessionId);
    // Not awaited further: accept only answers the server; the assignment and launch follow.
    await req.accept(AGENT_NAME, identity);
    this.logger.info(
      { event: 'job_accepted', job_id: req.id, identity, category_id: session.categoryId, replacement: session.replacement },
      'job accepted',
    );
    if (this.cfg.ecsAgentUri) {
      void protectTask({
        ecsAgentUri: this.cfg.ecsAgentUri,
        // The longest the session can run: a safety concern extends it by the grace.
        expiresInMinutes: protectionMinutes(this.cfg.maxDurationSeconds + this.cfg.safetyGraceSeconds),
        logger: this.logger,
      });
    }
    void this.superviseJob(req.id);
  }

  private hasJob(jobId: string): boolean {
    return this.server.activeJobs.some((j) => j.job.id === jobId);
  }

  private async superviseJob(jobId: string): Promise<void> {
    const deadline = Date.now() + JOB_START_TIMEOUT_MS;
    // A very short job may come and go between two polls: its result file says it ran.
    while (!this.hasJob(jobId) && !existsSync(this.resultFile)) {
      if (Date.now() > deadline) {
        this.logger.error({ event: 'job_not_started', job_id: jobId }, 'the accepted job never started');
        return this.finish(1, 'job_not_started');
      }
      await sleep(POLL_MS);
    }
    this.logger.info({ event: 'job_running', job_id: jobId }, 'job running in its process');
    while (this.hasJob(jobId)) await sleep(POLL_MS);
    return this.finish();
  }

  /** The outcome the job process recorded; none means it died without finishing. */
  private jobOutcome(): { code: number; reason: string } {
    try {
      const r = JSON.parse(readFileSync(this.resultFile, 'utf8')) as JobResult;
      return { code: Number.isInteger(r.exit_code) ? r.exit_code : 1, reason: r.reason };
    } catch {
      this.logger.error({ event: 'job_lost' }, 'the job process ended without a result');
      return { code: 1, reason: 'job_lost' };
    }
  }

  /** SIGTERM/SIGINT: idle, just leave; with a job, closing the worker asks the job to end the session. */
  stop(signal: string): void {
    this.logger.info({ event: 'stop_requested', signal, state: this.state.kind }, 'stop requested');
    if (this.state.kind === 'idle') void this.finish(0, 'stopped_idle');
    else void this.finish();
  }

  /** Closes the worker (and any job) once and exits: `code` (for `reason`), else the job's outcome. */
  finish(code?: number, reason: ExitReason = 'uncaught_exception'): Promise<never> {
    this.finishing ??= (async () => {
      const hadJob = this.state.kind === 'busy';
      this.state = { kind: 'stopping' };
      try {
        await withTimeout(this.server.close(), CLOSE_TIMEOUT_MS, 'worker close');
      } catch (err) {
        this.logger.warn({ error: String(err) }, 'worker close did not complete');
      }
      clearTimeout(this.sampler);
      const outcome = code !== undefined ? { code, reason } : hadJob ? this.jobOutcome() : { code: 0, reason: 'stopped_idle' };
      rmSync(this.workerDir, { recursive: true, force: true });
      this.logger.info({ event: 'worker_exit', exit_code: outcome.code, reason: outcome.reason }, 'worker exiting');
      await this.metrics.exited(outcome.reason);
      process.exit(outcome.code);
    })();
    return this.finishing;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<void> {
  const env = process.env;
  const session: SessionFields = { sessionId: null };
  const logger = createLogger({ secrets: secretValues(env), session, component: 'worker' });
  // The framework logs through the global logger slot; it must be filled before AgentServer exists.
  installFrameworkLogger(logger);
  let worker: OneJobWorker | undefined;
  logProcessEvents(logger, () => (worker ? void worker.finish(1) : process.exit(1)));
  adoptRtcLogger(logger, logger.level);

  let cfg: WorkerConfig;
  try {
    cfg = loadWorkerConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      logger.fatal({ event: 'config_error', missing: err.missing, invalid: err.invalid }, err.message);
      process.exit(2);
    }
    throw err;
  }

  disableLocalInference(logger);
  await noReplacementIdleProcess(logger);
  logger.info(
    {
      event: 'worker_starting',
      agent_name: cfg.agentName,
      livekit_url: cfg.livekitUrl,
      health: `${cfg.healthHost}:${cfg.healthPort}`,
      openai_base_url: cfg.openaiBaseUrl ?? 'default',
      bey_api_url: cfg.beyApiUrl ?? 'default',
      early_avatar_no_show_s: cfg.earlyAvatarNoShowSeconds,
      task_protection: cfg.ecsAgentUri ? 'on' : 'off',
    },
    'worker starting',
  );
  if (stopRequests.requested) {
    // Stopped while starting: no job was taken, nothing to clean up.
    logger.info({ event: 'worker_exit', exit_code: 0, signal: stopRequests.requested }, 'stop requested before start; worker exiting');
    process.exit(0);
  }
  const w = (worker = new OneJobWorker(cfg, logger, session));
  w.run();
  stopRequests.onStop((sig) => w.stop(sig));
}

main().catch((err) => {
  const line = JSON.stringify({ level: 'fatal', component: 'worker', msg: 'worker crashed', error: String(err) });
  process.stdout.write(scrubber(secretValues(process.env))(line) + '\n');
  process.exit(1);
});
