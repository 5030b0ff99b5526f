// The agent's metrics: METRICS owns their names, units and dimensions (infra/templatecheck reads it,
// through node, to hold the template's alarms and dashboard to it, like VARIABLES for the task
// definition), and AgentMetrics writes each event as one CloudWatch embedded-metric-format line on
// stdout with aws-embedded-metrics (the task's awslogs driver ships it; CloudWatch Logs extracts the
// metric: no PutMetricData, no permission). The session code reports events; it never formats EMF.
import './emf-environment.js'; // first: the library reads it when it loads
import { createMetricsLogger, StorageResolution, Unit } from 'aws-embedded-metrics';

/** Same namespace and Stack dimension as the Go functions (shared/metrics). */
export const NAMESPACE = 'CounselVideo';
/** The warm pool's scaling metric (infra/poolscaling: Namespace, MetricName, DimensionName). */
export const POOL_NAMESPACE = 'CounselVideo/AgentPool';
export const POOL_METRIC = 'PoolWorkerBusy';
export const POOL_DIMENSION = 'Pool';
/** One sample per worker in each 10-second period (poolscaling.EmitInterval). */
export const POOL_SAMPLE_INTERVAL_MS = 10_000;

/** Where the session's agent came from: a warm pool worker (worker.ts) or a task of its own (main.ts). */
export const AGENT_SOURCES = ['pool', 'cold'] as const;
export type AgentSource = (typeof AGENT_SOURCES)[number];

/**
 * Why an agent process (direct entry) or pool worker ended: the session's end reason, or what ended
 * it before or around the session. Anything else is recorded as `other` (one metric per value).
 */
export const EXIT_REASONS = [
  // The session's end (agent.ts EndReason).
  'student_left',
  'room_closed',
  'max_duration',
  'student_join_timeout',
  'room_missing',
  'signal',
  'session_error',
  'avatar_failed',
  'avatar_timeout',
  'startup_failed',
  // Before or around the session.
  'config_error', // unknown or disabled category (exit 3)
  'categories_unavailable',
  'job_failed', // the job process threw
  'job_lost', // the job process ended without a result
  'job_not_started', // an accepted job never started
  'worker_failed', // the worker itself failed
  'stopped_idle', // a worker stopped before it took a job (scale-in, deploy)
  'uncaught_exception',
  'other',
] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

export interface MetricSpec {
  namespace: string;
  name: string;
  unit: 'Count' | 'Milliseconds';
  /** Dimension sets, as the Go catalog writes them. */
  dimensions: string[][];
  /** 1: high resolution (10-second alarms); absent: standard (60). */
  storageResolution?: 1;
  help: string;
}

const spec = (name: string, unit: MetricSpec['unit'], dimensions: string[][], help: string): MetricSpec => ({
  namespace: NAMESPACE,
  name,
  unit,
  dimensions,
  help,
});

/** Every metric the agent writes; `dimensionValues` bounds every dimension but Stack and Pool. */
export const METRICS = {
  metrics: [
    spec('AgentJoinTime', 'Milliseconds', [['Stack', 'AgentSource']], 'from the start of the agent\'s work on the session (cold: the process start; pool: the job\'s start) to joining the room'),
    spec('AvatarJoinLatency', 'Milliseconds', [['Stack']], 'from asking Beyond Presence for the avatar to the avatar publishing video in the room'),
    spec('RealtimeConnectRetries', 'Count', [['Stack']], 'an OpenAI Realtime connect failed (408, 429, 5xx, network, timeout) and is retried'),
    spec('RealtimeReconnects', 'Count', [['Stack']], 'a Realtime connection opened after the session\'s first one (the periodic reconnect or after a drop)'),
    spec('RealtimeErrors', 'Count', [['Stack']], 'an unrecoverable error of the Realtime conversation (a connect given up, a refused key): the session ends with session_error'),
    spec('AgentExits', 'Count', [['Stack', 'ExitReason']], 'an agent process or pool worker ended, and why'),
    {
      namespace: POOL_NAMESPACE,
      name: POOL_METRIC,
      unit: 'Count',
      dimensions: [[POOL_DIMENSION]],
      storageResolution: 1,
      help: 'every 10 s from each ready pool worker: 1 while it holds a session, 0 while it waits for one',
    },
  ] satisfies MetricSpec[],
  dimensionValues: {
    AgentSource: [...AGENT_SOURCES],
    ExitReason: [...EXIT_REASONS],
  },
};

/** The instant within the 10-second period holding `t` at which a worker samples: its middle (poolscaling.SampleTime). */
export function sampleTime(t: number): number {
  return Math.floor(t / POOL_SAMPLE_INTERVAL_MS) * POOL_SAMPLE_INTERVAL_MS + POOL_SAMPLE_INTERVAL_MS / 2;
}

export interface AgentMetricsOptions {
  /** STACK_NAME: the Stack (and Pool) dimension. */
  stack: string;
  source?: AgentSource;
  /** Log fields every line carries (session_id): the lines are log lines too. */
  fields?: () => Record<string, unknown>;
}

/** Writes the agent's metric lines. Writing never throws into the session: a lost line is a lost log line. */
export class AgentMetrics {
  constructor(private readonly opts: AgentMetricsOptions) {}

  /** A cold agent counts from its process start (its task's own start), a pool job from the job's start. */
  agentJoined(t: { processToJoinedMs: number; sessionToJoinedMs: number }): Promise<void> {
    const source = this.opts.source ?? 'cold';
    return this.emit('AgentJoinTime', source === 'pool' ? t.sessionToJoinedMs : t.processToJoinedMs, { AgentSource: source });
  }

  avatarReady(ms: number): Promise<void> {
    return this.emit('AvatarJoinLatency', ms);
  }

  realtimeConnectRetry(): Promise<void> {
    return this.emit('RealtimeConnectRetries', 1);
  }

  realtimeReconnect(): Promise<void> {
    return this.emit('RealtimeReconnects', 1);
  }

  realtimeError(): Promise<void> {
    return this.emit('RealtimeErrors', 1);
  }

  /** Awaited before the process exits. */
  exited(reason: string): Promise<void> {
    const bounded = (EXIT_REASONS as readonly string[]).includes(reason) ? reason : 'other';
    return this.emit('AgentExits', 1, { ExitReason: bounded });
  }

  /** One pool sample, stamped with its sample time (CloudWatch aggregates by it). */
  poolSample(busy: boolean, at: number): Promise<void> {
    return this.write(POOL_METRIC, busy ? 1 : 0, { [POOL_DIMENSION]: this.opts.stack }, at);
  }

  private emit(name: string, value: number, dims: Record<string, string> = {}): Promise<void> {
    return this.write(name, value, { Stack: this.opts.stack, ...dims });
  }

  private async write(name: string, value: number, dims: Record<string, string>, at?: number): Promise<void> {
    const m = METRICS.metrics.find((s) => s.name === name)!;
    try {
      const line = createMetricsLogger();
      line.setNamespace(m.namespace);
      line.setDimensions(dims); // replaces the library's default dimensions (LogGroup, ServiceName, ...)
      line.putMetric(name, value, Unit[m.unit], m.storageResolution === 1 ? StorageResolution.High : StorageResolution.Standard);
      if (at !== undefined) line.setTimestamp(at);
      for (const [k, v] of Object.entries(this.opts.fields?.() ?? {})) line.setProperty(k, v);
      await line.flush();
    } catch {
      /* a metric line is never worth a session */
    }
  }
}
