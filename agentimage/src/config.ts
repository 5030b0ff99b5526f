// Environment contract of the agent process (docs/architecture.md, "Agent process contract").
// Every variable is validated at start; all problems are reported together.

/** What every entry point needs: services, credentials and limits (no per-session values). */
export interface RuntimeConfig {
  livekitUrl: string;
  livekitApiKey: string;
  livekitApiSecret: string;
  categoriesTable: string;
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
}

/** The direct (cold path) entry: one process started for one session. */
export interface AgentConfig extends RuntimeConfig {
  sessionId: string;
  roomName: string;
  categoryId: string;
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

export const DEFAULT_REALTIME_MODEL = 'gpt-realtime';
export const DEFAULT_VOICE = 'marin';
export const DEFAULT_MAX_DURATION_SECONDS = 3600;
export const DEFAULT_STUDENT_JOIN_TIMEOUT_SECONDS = 300;
export const DEFAULT_AGENT_NAME = 'counselor';
export const DEFAULT_HEALTH_HOST = '127.0.0.1';
export const DEFAULT_HEALTH_PORT = 8081;
export const DEFAULT_EARLY_AVATAR_NO_SHOW_SECONDS = 60;
/** Upper bound for the duration variables (24 h; also keeps timers far below setTimeout's limit). */
export const MAX_SECONDS = 86_400;

/** Names of the variables that hold secrets: their values are scrubbed from every log line. */
export const SECRET_VARIABLES = ['LIVEKIT_API_SECRET', 'OPENAI_API_KEY', 'BEY_API_KEY', 'LIVEKIT_API_KEY'] as const;

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

/** Collects every problem of one environment, so a single ConfigError can name them all. */
class EnvReader {
  readonly missing: string[] = [];
  readonly invalid: { name: string; reason: string }[] = [];
  constructor(private readonly env: Env) {}

  required(name: string): string {
    const v = (this.env[name] ?? '').trim();
    if (!v) this.missing.push(name);
    return v;
  }

  optional(name: string): string | undefined {
    const v = (this.env[name] ?? '').trim();
    return v ? v : undefined;
  }

  url(name: string, value: string | undefined, protocols: string[]): void {
    if (!value) return;
    try {
      const u = new URL(value);
      if (!protocols.includes(u.protocol)) this.invalid.push({ name, reason: `scheme must be one of ${protocols.join(' ')}` });
    } catch {
      this.invalid.push({ name, reason: 'not a URL' });
    }
  }

  /** A whole number in [min, max]; `def` when unset. */
  integer(name: string, def: number, min: number, max: number, unit: string): number {
    const raw = this.optional(name);
    if (raw === undefined) return def;
    if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      this.invalid.push({ name, reason: `must be a whole number of ${unit} between ${min} and ${max}` });
      return def;
    }
    return Number(raw);
  }

  seconds(name: string, def: number, min = 1): number {
    return this.integer(name, def, min, MAX_SECONDS, 'seconds');
  }

  done<T>(cfg: T): T {
    if (this.missing.length || this.invalid.length) throw new ConfigError(this.missing, this.invalid);
    return cfg;
  }
}

function readRuntime(r: EnvReader): RuntimeConfig {
  const cfg: RuntimeConfig = {
    livekitUrl: r.required('LIVEKIT_URL'),
    livekitApiKey: r.required('LIVEKIT_API_KEY'),
    livekitApiSecret: r.required('LIVEKIT_API_SECRET'),
    categoriesTable: r.required('CATEGORIES_TABLE'),
    awsRegion: r.required('AWS_REGION'),
    beyAvatarId: r.required('BEY_AVATAR_ID'),
    beyApiKey: r.required('BEY_API_KEY'),
    beyApiUrl: r.optional('BEY_API_URL'),
    openaiApiKey: r.required('OPENAI_API_KEY'),
    openaiBaseUrl: r.optional('OPENAI_BASE_URL'),
    openaiRealtimeModel: r.optional('OPENAI_REALTIME_MODEL') ?? DEFAULT_REALTIME_MODEL,
    openaiVoice: r.optional('OPENAI_VOICE') ?? DEFAULT_VOICE,
    maxDurationSeconds: r.seconds('AGENT_MAX_DURATION_SECONDS', DEFAULT_MAX_DURATION_SECONDS),
    studentJoinTimeoutSeconds: r.seconds('AGENT_STUDENT_JOIN_TIMEOUT_SECONDS', DEFAULT_STUDENT_JOIN_TIMEOUT_SECONDS),
  };
  r.url('LIVEKIT_URL', cfg.livekitUrl, ['ws:', 'wss:', 'http:', 'https:']);
  r.url('BEY_API_URL', cfg.beyApiUrl, ['http:', 'https:']);
  r.url('OPENAI_BASE_URL', cfg.openaiBaseUrl, ['http:', 'https:', 'ws:', 'wss:']);
  r.url('AWS_ENDPOINT_URL_DYNAMODB', r.optional('AWS_ENDPOINT_URL_DYNAMODB'), ['http:', 'https:']);
  return cfg;
}

/** Letters, digits, - and _: safe in a participant identity and a room name. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** Environment of the direct entry (`node dist/main.js`). */
export function loadConfig(env: Env): AgentConfig {
  const r = new EnvReader(env);
  const cfg: AgentConfig = {
    sessionId: r.required('SESSION_ID'),
    roomName: r.required('ROOM_NAME'),
    categoryId: r.required('CATEGORY_ID'),
    ...readRuntime(r),
  };
  if (cfg.sessionId && !SESSION_ID_PATTERN.test(cfg.sessionId)) {
    r.invalid.push({ name: 'SESSION_ID', reason: 'only letters, digits, - and _ (max 128)' });
  }
  return r.done(cfg);
}

/** Environment of the worker entry (`node dist/worker.js`): no SESSION_ID, ROOM_NAME, CATEGORY_ID. */
export function loadWorkerConfig(env: Env): WorkerConfig {
  const r = new EnvReader(env);
  const cfg: WorkerConfig = {
    ...readRuntime(r),
    agentName: r.optional('LIVEKIT_AGENT_NAME') ?? DEFAULT_AGENT_NAME,
    healthHost: r.optional('AGENT_HEALTH_HOST') ?? DEFAULT_HEALTH_HOST,
    healthPort: r.integer('AGENT_HEALTH_PORT', DEFAULT_HEALTH_PORT, 1, 65535, 'port'),
    earlyAvatarNoShowSeconds: r.seconds('AGENT_EARLY_AVATAR_NO_SHOW_SECONDS', DEFAULT_EARLY_AVATAR_NO_SHOW_SECONDS, 0),
    ecsAgentUri: r.optional('ECS_AGENT_URI'),
  };
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(cfg.agentName)) {
    r.invalid.push({ name: 'LIVEKIT_AGENT_NAME', reason: 'only letters, digits, ., - and _ (max 64)' });
  }
  r.url('ECS_AGENT_URI', cfg.ecsAgentUri, ['http:', 'https:']);
  return r.done(cfg);
}

/** Values that must never be written to a log, taken from the environment as given. */
export function secretValues(env: Env): string[] {
  return SECRET_VARIABLES.map((n) => (env[n] ?? '').trim()).filter((v) => v.length >= 4);
}
