// Environment contract of the agent process (docs/architecture.md, "Agent process contract").
// VARIABLES is the contract: loadConfig and loadWorkerConfig validate the rows their entry reads (all
// problems reported together), the log scrubber takes its secrets from it, and infra/templatecheck reads
// it to check the task definition.

/** What every entry point needs: services, credentials and limits (no per-session values). */
export interface RuntimeConfig {
  livekitUrl: string;
  livekitApiKey: string;
  livekitApiSecret: string;
  categoriesTable: string;
  /** Sessions table: the agent records a safety flag on its session's item (and nothing else). */
  sessionsTable: string;
  /** SNS topic of the counseling staff's safety alerts. */
  safetyAlertTopicArn: string;
  /** A session flagged for a safety concern runs this much longer than its maximum, once; 0 = never. */
  safetyGraceSeconds: number;
  awsRegion: string;
  beyAvatarId: string;
  beyApiKey: string;
  beyApiUrl?: string;
  openaiApiKey: string;
  openaiBaseUrl?: string;
  openaiRealtimeModel: string;
  openaiVoice: string;
  maxDurationSeconds: number;
  studentJoinTimeoutSeconds: number;
  /** Deadline for the avatar to join and publish video once Bey accepted the session. */
  avatarJoinTimeoutSeconds: number;
  /** How long the student may be gone (reload, network switch) before the session ends. */
  studentRejoinGraceSeconds: number;
  /** Seconds before the maximum duration when the counselor mentions the time left; 0 = never. */
  wrapUpNoticeSeconds: number;
  /** Lifetime of one OpenAI Realtime connection before the plugin reconnects (OpenAI caps it at 60 min). */
  realtimeSessionMaxSeconds: number;
  /** STACK_NAME: the Stack (and Pool) dimension of the agent's metrics, as for the Go functions. */
  stackName: string;
}

/** The direct (cold path) entry: one process started for one session. */
export interface AgentConfig extends RuntimeConfig {
  sessionId: string;
  roomName: string;
  categoryId: string;
  /** AGENT_REPLACEMENT: this agent replaces the session's agent that was lost mid-session. */
  replacement: boolean;
}

/** The worker (warm pool) entry: per-session values come from the dispatch metadata instead. */
export interface WorkerConfig extends RuntimeConfig {
  agentName: string;
  healthHost: string;
  healthPort: number;
  /** Seconds the avatar started before the student may wait for them; 0 = start it only once they joined. */
  earlyAvatarNoShowSeconds: number;
  /** ECS container agent endpoint (set by ECS in every task): task scale-in protection. */
  ecsAgentUri?: string;
}

/** Upper bound for the duration variables (24 h; also keeps timers far below setTimeout's limit). */
export const MAX_SECONDS = 86_400;
/** 55 min: below OpenAI's 60-minute cap, with room for the reply in progress to finish first. */
export const MAX_REALTIME_SESSION_SECONDS = 3300;

/** arn:<partition>:sns:<region>:<12-digit account>:<topic name> (a FIFO topic's .fifo included). */
export const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/;

/** The two entry points: `node dist/main.js` (one process per session) and `node dist/worker.js` (warm pool). */
export type Entry = 'direct' | 'worker';

/**
 * One variable of the contract. `entry`: read by that entry point only (absent: by both); `required`
 * applies to the entries that read it. `secret`: scrubbed from every log line, and the deployment must
 * inject it from Secrets Manager. `seconds`: a whole number from `minSeconds` (default 1) to `maxSeconds`.
 * `port`: a whole number from 1 to 65535. `url`: the accepted schemes.
 */
export interface VariableSpec {
  entry?: Entry;
  required?: boolean;
  secret?: boolean;
  default?: string | number;
  seconds?: boolean;
  minSeconds?: number;
  maxSeconds?: number;
  port?: boolean;
  url?: readonly string[];
  /** The value must match (after trimming). */
  pattern?: RegExp;
  /** What `pattern` requires, for the error message. */
  patternText?: string;
}

/**
 * Every variable the agent reads. To add one: a row here, then read it in loadConfig and/or
 * loadWorkerConfig (README table too).
 */
export const VARIABLES = {
  // Per session, direct entry only (the launcher sets them; a worker takes them from the dispatch).
  SESSION_ID: { entry: 'direct', required: true },
  ROOM_NAME: { entry: 'direct', required: true },
  CATEGORY_ID: { entry: 'direct', required: true },
  // Set by the webhook's launch of a replacement for an agent lost mid-session (the worker reads the
  // dispatch metadata's "replacement" instead).
  AGENT_REPLACEMENT: { entry: 'direct', default: 'false', pattern: /^(true|false)$/, patternText: 'true or false' },
  LIVEKIT_URL: { required: true, url: ['ws:', 'wss:', 'http:', 'https:'] },
  LIVEKIT_API_KEY: { required: true, secret: true },
  LIVEKIT_API_SECRET: { required: true, secret: true },
  CATEGORIES_TABLE: { required: true },
  SESSIONS_TABLE: { required: true },
  SAFETY_ALERT_TOPIC_ARN: { required: true, pattern: SNS_TOPIC_ARN, patternText: 'an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)' },
  AGENT_SAFETY_GRACE_SECONDS: { default: 900, seconds: true, minSeconds: 0, maxSeconds: MAX_SECONDS },
  AWS_REGION: { required: true },
  AWS_ENDPOINT_URL_DYNAMODB: { url: ['http:', 'https:'] },
  AWS_ENDPOINT_URL_SNS: { url: ['http:', 'https:'] },
  BEY_AVATAR_ID: { required: true },
  BEY_API_KEY: { required: true, secret: true },
  BEY_API_URL: { url: ['http:', 'https:'] },
  OPENAI_API_KEY: { required: true, secret: true },
  OPENAI_BASE_URL: { url: ['http:', 'https:', 'ws:', 'wss:'] },
  OPENAI_REALTIME_MODEL: { default: 'gpt-realtime' },
  OPENAI_VOICE: { default: 'marin' },
  AGENT_MAX_DURATION_SECONDS: { default: 3600, seconds: true, maxSeconds: MAX_SECONDS },
  AGENT_STUDENT_JOIN_TIMEOUT_SECONDS: { default: 300, seconds: true, maxSeconds: MAX_SECONDS },
  AGENT_AVATAR_JOIN_TIMEOUT_SECONDS: { default: 30, seconds: true, maxSeconds: MAX_SECONDS },
  // Same as the room's departure timeout (shared/rooms/rooms.go), after which LiveKit closes the room.
  AGENT_STUDENT_REJOIN_GRACE_SECONDS: { default: 20, seconds: true, maxSeconds: MAX_SECONDS },
  AGENT_WRAPUP_NOTICE_SECONDS: { default: 120, seconds: true, minSeconds: 0, maxSeconds: MAX_SECONDS },
  // The plugin's own default (20 min); capped below OpenAI's 60-minute session limit.
  AGENT_REALTIME_SESSION_MAX_SECONDS: { default: 1200, seconds: true, maxSeconds: MAX_REALTIME_SESSION_SECONDS },
  // Read by the logger before the configuration (an unknown level means info).
  LOG_LEVEL: { default: 'info' },
  // The deployment's name: the Stack dimension of the metrics (the Pool dimension of the pool's).
  STACK_NAME: { default: 'local' },
  // Worker entry only.
  LIVEKIT_AGENT_NAME: { entry: 'worker', default: 'counselor' },
  AGENT_HEALTH_HOST: { entry: 'worker', default: '127.0.0.1' },
  AGENT_HEALTH_PORT: { entry: 'worker', default: 8081, port: true },
  AGENT_EARLY_AVATAR_NO_SHOW_SECONDS: { entry: 'worker', default: 60, seconds: true, minSeconds: 0, maxSeconds: MAX_SECONDS },
  // Set by ECS itself in every task (not by the template).
  ECS_AGENT_URI: { entry: 'worker', url: ['http:', 'https:'] },
} as const satisfies Record<string, VariableSpec>;

export type VariableName = keyof typeof VARIABLES;

/** The variables `entry` reads: its own rows and the shared ones. */
type ReadBy<E extends Entry> = {
  [K in VariableName]: (typeof VARIABLES)[K] extends { entry: infer X } ? (X extends E ? K : never) : K;
}[VariableName];

/** Names of the variables that hold secrets: their values are scrubbed from every log line. */
export const SECRET_VARIABLES = (Object.keys(VARIABLES) as VariableName[]).filter(
  (name) => (VARIABLES[name] as VariableSpec).secret,
);

export class ConfigError extends Error {
  constructor(
    readonly missing: string[],
    readonly invalid: { name: string; reason: string }[],
  ) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing: ${missing.join(', ')}`);
    if (invalid.length) parts.push(`invalid: ${invalid.map((i) => `${i.name} (${i.reason})`).join(', ')}`);
    super(`invalid configuration: ${parts.join('; ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Required and defaulted variables always have a value; the others may be absent. */
type Values<E extends Entry> = {
  [K in ReadBy<E>]: (typeof VARIABLES)[K] extends { required: true } | { default: string | number } ? string : string | undefined;
};

/** The values both entries read. */
type SharedValues = Pick<Values<'direct'>, ReadBy<'direct'> & ReadBy<'worker'>>;

type Problems = { missing: string[]; invalid: { name: string; reason: string }[] };

/** Validates every variable `entry` reads against env and returns the values (defaults applied). */
function readVariables<E extends Entry>(env: Env, entry: E, { missing, invalid }: Problems): Values<E> {
  const out: Record<string, string | undefined> = {};
  for (const name of Object.keys(VARIABLES) as VariableName[]) {
    const spec: VariableSpec = VARIABLES[name];
    if (spec.entry && spec.entry !== entry) continue;
    const fallback = spec.default === undefined ? undefined : String(spec.default);
    const raw = (env[name] ?? '').trim();
    out[name] = raw || fallback;
    if (!raw) {
      if (spec.required) {
        missing.push(name);
        out[name] = '';
      }
      continue;
    }
    const whole = (min: number, max: number, what: string) => {
      if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
        invalid.push({ name, reason: `must be ${what} between ${min} and ${max}` });
        out[name] = fallback;
      }
    };
    if (spec.seconds) whole(spec.minSeconds ?? 1, spec.maxSeconds ?? MAX_SECONDS, 'a whole number of seconds');
    if (spec.port) whole(1, 65535, 'a port number');
    if (spec.pattern && !spec.pattern.test(raw)) invalid.push({ name, reason: `must be ${spec.patternText ?? spec.pattern}` });
    if (spec.url) {
      try {
        if (!spec.url.includes(new URL(raw).protocol)) invalid.push({ name, reason: `scheme must be one of ${spec.url.join(' ')}` });
      } catch {
        invalid.push({ name, reason: 'not a URL' });
      }
    }
  }
  return out as Values<E>;
}

function runtimeConfig(v: SharedValues): RuntimeConfig {
  return {
    livekitUrl: v.LIVEKIT_URL,
    livekitApiKey: v.LIVEKIT_API_KEY,
    livekitApiSecret: v.LIVEKIT_API_SECRET,
    categoriesTable: v.CATEGORIES_TABLE,
    sessionsTable: v.SESSIONS_TABLE,
    safetyAlertTopicArn: v.SAFETY_ALERT_TOPIC_ARN,
    safetyGraceSeconds: Number(v.AGENT_SAFETY_GRACE_SECONDS),
    awsRegion: v.AWS_REGION,
    beyAvatarId: v.BEY_AVATAR_ID,
    beyApiKey: v.BEY_API_KEY,
    beyApiUrl: v.BEY_API_URL,
    openaiApiKey: v.OPENAI_API_KEY,
    openaiBaseUrl: v.OPENAI_BASE_URL,
    openaiRealtimeModel: v.OPENAI_REALTIME_MODEL,
    openaiVoice: v.OPENAI_VOICE,
    maxDurationSeconds: Number(v.AGENT_MAX_DURATION_SECONDS),
    studentJoinTimeoutSeconds: Number(v.AGENT_STUDENT_JOIN_TIMEOUT_SECONDS),
    avatarJoinTimeoutSeconds: Number(v.AGENT_AVATAR_JOIN_TIMEOUT_SECONDS),
    studentRejoinGraceSeconds: Number(v.AGENT_STUDENT_REJOIN_GRACE_SECONDS),
    wrapUpNoticeSeconds: Number(v.AGENT_WRAPUP_NOTICE_SECONDS),
    realtimeSessionMaxSeconds: Number(v.AGENT_REALTIME_SESSION_MAX_SECONDS),
    stackName: v.STACK_NAME,
  };
}

/** A CloudFormation stack name (also a valid metric dimension value), as shared/config checks it. */
export const STACK_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;

function checkShared(cfg: RuntimeConfig, problems: Problems): void {
  if (!STACK_NAME_PATTERN.test(cfg.stackName)) {
    problems.invalid.push({ name: 'STACK_NAME', reason: 'a letter, then letters, digits and - (max 128)' });
  }
}

function done<T>(cfg: T, { missing, invalid }: Problems): T {
  if (missing.length || invalid.length) throw new ConfigError(missing, invalid);
  return cfg;
}

/** Letters, digits, - and _: safe in a participant identity and a room name. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** Environment of the direct entry (`node dist/main.js`). */
export function loadConfig(env: Env): AgentConfig {
  const problems: Problems = { missing: [], invalid: [] };
  const v = readVariables(env, 'direct', problems);
  const cfg: AgentConfig = {
    sessionId: v.SESSION_ID,
    roomName: v.ROOM_NAME,
    categoryId: v.CATEGORY_ID,
    replacement: v.AGENT_REPLACEMENT === 'true',
    ...runtimeConfig(v),
  };
  if (cfg.sessionId && !SESSION_ID_PATTERN.test(cfg.sessionId)) {
    problems.invalid.push({ name: 'SESSION_ID', reason: 'only letters, digits, - and _ (max 128)' });
  }
  checkShared(cfg, problems);
  return done(cfg, problems);
}

/** Environment of the worker entry (`node dist/worker.js`): no SESSION_ID, ROOM_NAME, CATEGORY_ID. */
export function loadWorkerConfig(env: Env): WorkerConfig {
  const problems: Problems = { missing: [], invalid: [] };
  const v = readVariables(env, 'worker', problems);
  const cfg: WorkerConfig = {
    ...runtimeConfig(v),
    agentName: v.LIVEKIT_AGENT_NAME,
    healthHost: v.AGENT_HEALTH_HOST,
    healthPort: Number(v.AGENT_HEALTH_PORT),
    earlyAvatarNoShowSeconds: Number(v.AGENT_EARLY_AVATAR_NO_SHOW_SECONDS),
    ecsAgentUri: v.ECS_AGENT_URI,
  };
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(cfg.agentName)) {
    problems.invalid.push({ name: 'LIVEKIT_AGENT_NAME', reason: 'only letters, digits, ., - and _ (max 64)' });
  }
  checkShared(cfg, problems);
  return done(cfg, problems);
}

/** Values that must never be written to a log, taken from the environment as given. */
export function secretValues(env: Env): string[] {
  return SECRET_VARIABLES.map((n) => (env[n] ?? '').trim()).filter((v) => v.length >= 4);
}
