// JSON-lines logging shared by our code and by the LiveKit Agents framework.
// The framework logs through a pino instance stored under a global symbol (what its own
// initializeLogger() sets); we install ours there so framework lines carry session_id too.
// Every line passes a scrubber that replaces secret values before it reaches stdout, and fields the
// framework marks as conversation content (lk.pii.*) are redacted.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';

const LOGGER_KEY = Symbol.for('@livekit/agents:logger');
const LOGGER_OPTIONS_KEY = Symbol.for('@livekit/agents:loggerOptions');

export type { Logger };

/** The real stdout writer, taken before captureStdout() can replace process.stdout.write. */
const writeStdout = process.stdout.write.bind(process.stdout);

export function scrubber(secrets: string[]): (line: string) => string {
  const uniq = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  return (line: string) => {
    let out = line;
    for (const s of uniq) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
    return out;
  };
}

/**
 * The framework marks conversation content in its log fields with `lk.pii.` keys (e.g. the user's
 * transcript on its debug "end of user turn" line): their values never reach a log line.
 */
export const PII_KEY_PREFIX = 'lk.pii.';

export function withoutPii(fields: Record<string, unknown>): Record<string, unknown> {
  let out = fields;
  for (const k of Object.keys(fields)) {
    if (!k.startsWith(PII_KEY_PREFIX)) continue;
    if (out === fields) out = { ...fields };
    out[k] = '[REDACTED]';
  }
  return out;
}

function validLevel(level: string | undefined): string {
  const l = (level ?? '').trim().toLowerCase();
  return ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(l) ? l : 'info';
}

/**
 * Session fields read on every line: a worker learns its session only when it accepts a job,
 * after the framework already holds child loggers of ours. Set them once; every line shows them.
 */
export interface SessionFields {
  sessionId: string | null;
  roomName?: string;
}

export function createLogger(opts: {
  sessionId?: string;
  roomName?: string;
  /**
   * Instead of sessionId/roomName: fields filled in later (worker and job processes). Their lines
   * also carry `pid`: several processes of one worker share stdout.
   */
  session?: SessionFields;
  secrets: string[];
  level?: string;
  /** `agent` (a session: direct process or job process) or `worker` (the pool worker's main process). */
  component?: string;
}): Logger {
  const scrub = scrubber(opts.secrets);
  const dest = { write: (line: string) => void writeStdout(scrub(line)) };
  const session = opts.session;
  const component = opts.component ?? 'agent';
  const base: Record<string, unknown> = session ? { component, pid: process.pid } : { session_id: opts.sessionId ?? null, component };
  if (!session && opts.roomName) base.room_name = opts.roomName;
  const logger = pino(
    {
      level: validLevel(opts.level ?? process.env.LOG_LEVEL),
      base,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: withoutPii },
      serializers: { error: pino.stdSerializers.err, err: pino.stdSerializers.err },
      ...(session
        ? { mixin: () => (session.roomName ? { session_id: session.sessionId, room_name: session.roomName } : { session_id: session.sessionId }) }
        : {}),
    },
    dest,
  );
  return logger;
}

/** Makes the LiveKit Agents framework log through `logger`. */
export function installFrameworkLogger(logger: Logger): void {
  const g = globalThis as Record<symbol, unknown>;
  g[LOGGER_OPTIONS_KEY] = { pretty: false, level: logger.level };
  g[LOGGER_KEY] = logger.child({ source: 'livekit-agents' });
}

/**
 * @livekit/rtc-node has its own pino instance ("lk-rtc", debug level unless NODE_ENV=production)
 * that writes straight to fd 1. Re-route it through `logger` so its lines are scrubbed and carry
 * session_id too. Falls back to silencing it below `warn` if the internals ever change.
 */
export function adoptRtcLogger(logger: Logger | null, level = 'info'): void {
  let rtcLog: any;
  try {
    const req = createRequire(import.meta.url);
    const rtcIndex = req.resolve('@livekit/rtc-node');
    const rtcReq = createRequire(rtcIndex);
    rtcLog = rtcReq(join(dirname(rtcIndex), 'log.cjs')).log;
    if (!logger) {
      rtcLog.level = level;
      return;
    }
    const { symbols } = rtcReq('pino');
    const child = logger.child({ source: 'lk-rtc' });
    rtcLog[symbols.streamSym] = { write: (line: string) => relayLine(child, line) };
    rtcLog.level = level;
  } catch {
    try {
      if (rtcLog) rtcLog.level = 'warn';
    } catch {
      /* nothing else to do */
    }
  }
}

const PINO_LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** Re-logs one line written by another pino instance (or any text) through `logger`. */
function relayLine(logger: Logger, line: string): void {
  if (!line.trim()) return;
  try {
    const { level: lvl, time: _t, pid: _p, hostname: _h, name: _n, msg, ...rest } = JSON.parse(line);
    const label = (typeof lvl === 'number' ? PINO_LEVELS[lvl] : typeof lvl === 'string' ? lvl : undefined) ?? 'info';
    (logger[label as 'info'] ?? logger.info).call(logger, rest, msg);
  } catch {
    logger.info({ raw: line.trim() }, 'stdout');
  }
}

/** An embedded-metric-format line: a JSON object with `_aws` at its root. */
function isMetricLine(line: string): boolean {
  if (!line.startsWith('{') || !line.includes('"_aws"')) return false;
  try {
    const doc = JSON.parse(line) as Record<string, unknown>;
    return typeof doc === 'object' && doc !== null && typeof doc._aws === 'object';
  } catch {
    return false;
  }
}

/**
 * In a job process the framework builds its own pino logger on process.stdout (the job runner
 * re-initialises it from the parent's options and again when the job starts), so its lines would
 * bypass ours: unscrubbed and without session_id. Route everything written to process.stdout
 * through the logger `current()` returns (our own logger writes to the real stdout, not here).
 */
export function captureStdout(current: () => Logger): void {
  let pending = '';
  const relay = (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    const target = current().child({ source: 'livekit-agents' });
    for (const line of lines) {
      // A metric line (src/metrics.ts) must stay a line of its own: CloudWatch extracts only a root `_aws`.
      if (isMetricLine(line)) writeStdout(line + '\n');
      else relayLine(target, line);
    }
  };
  process.stdout.write = ((chunk: string | Uint8Array, encoding?: unknown, cb?: unknown) => {
    relay(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') process.nextTick(done as () => void);
    return true;
  }) as typeof process.stdout.write;
}
