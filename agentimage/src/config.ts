// Environment contract of the agent process (docs/architecture.md, "Agent process contract").
// Every variable is validated at start; all problems are reported together.

export interface AgentConfig {
  sessionId: string;
  roomName: string;
  categoryId: string;
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
  /** Deadline for the avatar to join and publish video once Bey accepted the session. */
  avatarJoinTimeoutSeconds: number;
  /** How long the student may be gone (reload, network switch) before the session ends. */
  studentRejoinGraceSeconds: number;
  /** Seconds before the maximum duration when the counselor mentions the time left; 0 = never. */
  wrapUpNoticeSeconds: number;
  /** Lifetime of one OpenAI Realtime connection before the plugin reconnects (OpenAI caps it at 60 min). */
  realtimeSessionMaxSeconds: number;
}

export const DEFAULT_REALTIME_MODEL = 'gpt-realtime';
export const DEFAULT_VOICE = 'marin';
export const DEFAULT_MAX_DURATION_SECONDS = 3600;
export const DEFAULT_STUDENT_JOIN_TIMEOUT_SECONDS = 300;
export const DEFAULT_AVATAR_JOIN_TIMEOUT_SECONDS = 30;
/** Same as the room's departure timeout (shared/rooms/rooms.go), after which LiveKit closes the room. */
export const DEFAULT_STUDENT_REJOIN_GRACE_SECONDS = 20;
export const DEFAULT_WRAP_UP_NOTICE_SECONDS = 120;
/** The plugin's own default (20 min). */
export const DEFAULT_REALTIME_SESSION_MAX_SECONDS = 1200;
/** 55 min: below OpenAI's 60-minute cap, with room for the reply in progress to finish first. */
export const MAX_REALTIME_SESSION_SECONDS = 3300;
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

export function loadConfig(env: Env): AgentConfig {
  const missing: string[] = [];
  const invalid: { name: string; reason: string }[] = [];

  const required = (name: string): string => {
    const v = (env[name] ?? '').trim();
    if (!v) missing.push(name);
    return v;
  };
  const optional = (name: string): string | undefined => {
    const v = (env[name] ?? '').trim();
    return v ? v : undefined;
  };
  const url = (name: string, value: string | undefined, protocols: string[]): void => {
    if (!value) return;
    try {
      const u = new URL(value);
      if (!protocols.includes(u.protocol)) invalid.push({ name, reason: `scheme must be one of ${protocols.join(' ')}` });
    } catch {
      invalid.push({ name, reason: 'not a URL' });
    }
  };
  const seconds = (name: string, def: number, min = 1, max = MAX_SECONDS): number => {
    const raw = optional(name);
    if (raw === undefined) return def;
    if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      invalid.push({ name, reason: `must be a whole number of seconds between ${min} and ${max}` });
      return def;
    }
    return Number(raw);
  };

  const cfg: AgentConfig = {
    sessionId: required('SESSION_ID'),
    roomName: required('ROOM_NAME'),
    categoryId: required('CATEGORY_ID'),
    livekitUrl: required('LIVEKIT_URL'),
    livekitApiKey: required('LIVEKIT_API_KEY'),
    livekitApiSecret: required('LIVEKIT_API_SECRET'),
    categoriesTable: required('CATEGORIES_TABLE'),
    awsRegion: required('AWS_REGION'),
    beyAvatarId: required('BEY_AVATAR_ID'),
    beyApiKey: required('BEY_API_KEY'),
    beyApiUrl: optional('BEY_API_URL'),
    openaiApiKey: required('OPENAI_API_KEY'),
    openaiBaseUrl: optional('OPENAI_BASE_URL'),
    openaiRealtimeModel: optional('OPENAI_REALTIME_MODEL') ?? DEFAULT_REALTIME_MODEL,
    openaiVoice: optional('OPENAI_VOICE') ?? DEFAULT_VOICE,
    maxDurationSeconds: seconds('AGENT_MAX_DURATION_SECONDS', DEFAULT_MAX_DURATION_SECONDS),
    studentJoinTimeoutSeconds: seconds('AGENT_STUDENT_JOIN_TIMEOUT_SECONDS', DEFAULT_STUDENT_JOIN_TIMEOUT_SECONDS),
    avatarJoinTimeoutSeconds: seconds('AGENT_AVATAR_JOIN_TIMEOUT_SECONDS', DEFAULT_AVATAR_JOIN_TIMEOUT_SECONDS),
    studentRejoinGraceSeconds: seconds('AGENT_STUDENT_REJOIN_GRACE_SECONDS', DEFAULT_STUDENT_REJOIN_GRACE_SECONDS),
    wrapUpNoticeSeconds: seconds('AGENT_WRAPUP_NOTICE_SECONDS', DEFAULT_WRAP_UP_NOTICE_SECONDS, 0),
    realtimeSessionMaxSeconds: seconds(
      'AGENT_REALTIME_SESSION_MAX_SECONDS',
      DEFAULT_REALTIME_SESSION_MAX_SECONDS,
      1,
      MAX_REALTIME_SESSION_SECONDS,
    ),
  };

  url('LIVEKIT_URL', cfg.livekitUrl, ['ws:', 'wss:', 'http:', 'https:']);
  url('BEY_API_URL', cfg.beyApiUrl, ['http:', 'https:']);
  url('OPENAI_BASE_URL', cfg.openaiBaseUrl, ['http:', 'https:', 'ws:', 'wss:']);
  url('AWS_ENDPOINT_URL_DYNAMODB', optional('AWS_ENDPOINT_URL_DYNAMODB'), ['http:', 'https:']);
  if (cfg.sessionId && !/^[A-Za-z0-9_-]{1,128}$/.test(cfg.sessionId)) {
    invalid.push({ name: 'SESSION_ID', reason: 'only letters, digits, - and _ (max 128)' });
  }

  if (missing.length || invalid.length) throw new ConfigError(missing, invalid);
  return cfg;
}

/** Values that must never be written to a log, taken from the environment as given. */
export function secretValues(env: Env): string[] {
  return SECRET_VARIABLES.map((n) => (env[n] ?? '').trim()).filter((v) => v.length >= 4);
}
