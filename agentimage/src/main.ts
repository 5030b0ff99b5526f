// Entry point: node dist/main.js. Exit codes: 0 session over, 1 runtime failure,
// 2 invalid environment, 3 unknown/disabled category.
import { CategoryError, loadCategory } from './categories.js';
import { ConfigError, loadConfig, secretValues } from './config.js';
import { adoptRtcLogger, createLogger, installFrameworkLogger } from './logger.js';
import { logProcessEvents } from './processevents.js';
import { directConnect, runSession, withTimeout } from './agent.js';
import { Room, dispose } from '@livekit/rtc-node';

async function main(): Promise<number> {
  const env = process.env;
  const logger = createLogger({
    sessionId: env.SESSION_ID?.trim() || undefined,
    roomName: env.ROOM_NAME?.trim() || undefined,
    secrets: secretValues(env),
  });
  installFrameworkLogger(logger);
  // An uncaught exception ends a running session cleanly (room deleted, exit 1).
  let fatalHandler: ((err: unknown) => void) | undefined;
  logProcessEvents(logger, (err) => (fatalHandler ? fatalHandler(err) : process.exit(1)));
  adoptRtcLogger(logger, logger.level);

  let cfg;
  try {
    cfg = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      logger.fatal({ event: 'config_error', missing: err.missing, invalid: err.invalid }, err.message);
      return 2;
    }
    throw err;
  }

  // Stop requests before the session started are remembered and honoured as soon as it runs.
  let stopHandler: ((signal: string) => void) | undefined;
  let pendingSignal: string | undefined;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (stopHandler) stopHandler(sig);
      else pendingSignal ??= sig;
    });
  }

  logger.info(
    {
      event: 'agent_starting',
      category_id: cfg.categoryId,
      livekit_url: cfg.livekitUrl,
      openai_base_url: cfg.openaiBaseUrl ?? 'default',
      bey_api_url: cfg.beyApiUrl ?? 'default',
      max_duration_s: cfg.maxDurationSeconds,
      student_join_timeout_s: cfg.studentJoinTimeoutSeconds,
    },
    'agent starting',
  );

  let category;
  try {
    category = await loadCategory({ table: cfg.categoriesTable, region: cfg.awsRegion, categoryId: cfg.categoryId });
  } catch (err) {
    if (err instanceof CategoryError) {
      logger.fatal({ event: 'config_error', category_id: cfg.categoryId }, err.message);
      return 3;
    }
    logger.fatal({ event: 'categories_unavailable', error: String(err) }, 'could not read the categories table');
    return 1;
  }
  logger.info({ event: 'category_loaded', category_name: category.name }, 'category loaded');
  if (pendingSignal) {
    logger.info({ signal: pendingSignal }, 'stop requested before start');
    return 0;
  }

  const target = { sessionId: cfg.sessionId, roomName: cfg.roomName };
  const room = new Room();
  const result = await runSession({
    cfg,
    target,
    category,
    logger,
    room,
    connect: directConnect(cfg, target, room),
    onStopRequest: (fn) => {
      stopHandler = fn;
      if (pendingSignal) fn(pendingSignal);
    },
    onFatal: (fn) => {
      fatalHandler = fn;
    },
  });
  try {
    await withTimeout(dispose(), 5_000, 'rtc dispose');
  } catch {
    /* exiting anyway */
  }
  logger.info({ event: 'agent_exit', reason: result.reason, exit_code: result.exitCode }, 'agent exiting');
  return result.exitCode;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stdout.write(JSON.stringify({ level: 'fatal', session_id: process.env.SESSION_ID ?? null, msg: 'agent crashed', error: String(err) }) + '\n');
    process.exit(1);
  },
);
