// JSON-lines logging shared by our code and by the LiveKit Agents framework.
// The framework logs through a pino instance stored under a global symbol (what its own
// initializeLogger() sets); we install ours there so framework lines carry session_id too.
// Every line passes a scrubber that replaces secret values before it reaches stdout.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';

const LOGGER_KEY = Symbol.for('@livekit/agents:logger');
const LOGGER_OPTIONS_KEY = Symbol.for('@livekit/agents:loggerOptions');

export type { Logger };

export function scrubber(secrets: string[]): (line: string) => string {
  const uniq = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  return (line: string) => {
    let out = line;
    for (const s of uniq) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
    return out;
  };
}

function validLevel(level: string | undefined): string {
  const l = (level ?? '').trim().toLowerCase();
  return ['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(l) ? l : 'info';
}

export function createLogger(opts: { sessionId?: string; roomName?: string; secrets: string[]; level?: string }): Logger {
  const scrub = scrubber(opts.secrets);
  const dest = { write: (line: string) => void process.stdout.write(scrub(line)) };
  const base: Record<string, unknown> = { session_id: opts.sessionId ?? null, component: 'agent' };
  if (opts.roomName) base.room_name = opts.roomName;
  const logger = pino(
    {
      level: validLevel(opts.level ?? process.env.LOG_LEVEL),
      base,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { error: pino.stdSerializers.err, err: pino.stdSerializers.err },
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
    const labels: Record<number, string> = rtcLog.levels.labels;
    rtcLog[symbols.streamSym] = {
      write(line: string) {
        try {
          const { level: lvl, time: _t, pid: _p, hostname: _h, name: _n, msg, ...rest } = JSON.parse(line);
          const label = (labels[lvl] ?? 'info') as 'info';
          child[label](rest, msg);
        } catch {
          child.info({ raw: line.trim() }, 'lk-rtc');
        }
      },
    };
    rtcLog.level = level;
  } catch {
    try {
      if (rtcLog) rtcLog.level = 'warn';
    } catch {
      /* nothing else to do */
    }
  }
}
