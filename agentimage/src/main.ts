// Entry point: node dist/main.js. Exit codes: 0 session over, 1 runtime failure,
// 2 invalid environment, 3 unknown/disabled category.
import { CategoryError, loadCategory } from './categories.js';
import { ConfigError, loadConfig, secretValues } from './config.js';
import { adoptRtcLogger, createLogger, installFrameworkLogger } from './logger.js';
import { runSession } from './agent.js';

async function main(): Promise<number> {
  const env = process.env;
  const logger = createLogger({
    sessionId: env.SESSION_ID?.trim() || undefined,
    roomName: env.ROOM_NAME?.trim() || undefined,
    secrets: secretValues(env),
  });
  installFrameworkLogger(logger);
  // Process warnings (e.g. the AWS SDK's Node version notice) as JSON lines, not stderr text.
  process.removeAllListeners('warning');
  process.on('warning', (w) => logger.warn({ warning: w.name, detail: w.message.split('\n')[0] }, 'process warning'));
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
  let fatalHandler: ((err: unknown) => void) | undefined;
  process.on('uncaughtException', (err) => {
    logger.error({ event: 'uncaught_exception', error: String(err) }, 'uncaught exception; ending the session');
    if (fatalHandler) fatalHandler(err);
    else process.exit(1);
  });
  // A stray rejection inside the framework must not kill a live session.
  process.on('unhandledRejection', (reason) => {
    if (reason === undefined) logger.debug('unhandled promise rejection (no reason)');
    else logger.warn({ error: String(reason) }, 'unhandled promise rejection');
  });

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

  return runSession({
    cfg,
    category,
    logger,
    onStopRequest: (fn) => {
      stopHandler = fn;
      if (pendingSignal) fn(pendingSignal);
    },
    onFatal: (fn) => {
      fatalHandler = fn;
    },
  });
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stdout.write(JSON.stringify({ level: 'fatal', session_id: process.env.SESSION_ID ?? null, msg: 'agent crashed', error: String(err) }) + '\n');
    process.exit(1);
  },
);
