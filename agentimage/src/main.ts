// Entry point: node dist/main.js. Exit codes: 0 session over, 1 runtime failure,
// 2 invalid environment, 3 unknown/disabled category.
import { stopRequests } from './stop-requests.js'; // first: SIGTERM handling from the very start
import { ConfigError, loadConfig, secretValues } from './config.js';
import { adoptRtcLogger, createLogger, installFrameworkLogger } from './logger.js';
import { AgentMetrics } from './metrics.js';
import { logProcessEvents } from './processevents.js';
import { withTimeout } from './timeouts.js';
// The heavy modules (LiveKit Agents, the AWS SDK) are imported below, after the signal handlers are
// in place: loading them takes seconds, during which a SIGTERM would otherwise kill the process.

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

  const metrics = new AgentMetrics({ stack: cfg.stackName, source: 'cold', fields: () => ({ session_id: cfg.sessionId }) });

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

  const [{ CategoryError, loadCategory }, { directConnect, livekitHttpUrl, runSession }, { endBeforeStart }, { RoomServiceClient }, { Room, dispose }] =
    await Promise.all([
      import('./categories.js'),
      import('./agent.js'),
      import('./room-cleanup.js'),
      import('livekit-server-sdk'),
      import('@livekit/rtc-node'),
    ]);
  const exit = async (result: { reason: string; exitCode: number }) => {
    try {
      await withTimeout(dispose(), 5_000, 'rtc dispose');
    } catch {
      /* exiting anyway */
    }
    logger.info({ event: 'agent_exit', reason: result.reason, exit_code: result.exitCode }, 'agent exiting');
    await metrics.exited(result.reason);
    return result.exitCode;
  };
  // A stop before the session runs (category loading, or right after) still ends it: room deleted.
  const stopBeforeStart = async (signal: string) =>
    exit(
      await endBeforeStart({
        roomService: new RoomServiceClient(livekitHttpUrl(cfg.livekitUrl), cfg.livekitApiKey, cfg.livekitApiSecret),
        roomName: cfg.roomName,
        signal,
        logger,
      }),
    );
  let category;
  try {
    category = await loadCategory({
      table: cfg.categoriesTable,
      region: cfg.awsRegion,
      categoryId: cfg.categoryId,
      signal: stopRequests.signal,
    });
  } catch (err) {
    if (err instanceof CategoryError) {
      logger.fatal({ event: 'config_error', category_id: cfg.categoryId }, err.message);
      await metrics.exited('config_error');
      return 3;
    }
    if (stopRequests.requested) return stopBeforeStart(stopRequests.requested);
    logger.fatal({ event: 'categories_unavailable', error: String(err) }, 'could not read the categories table');
    await metrics.exited('categories_unavailable');
    return 1;
  }
  logger.info({ event: 'category_loaded', category_name: category.name }, 'category loaded');
  if (stopRequests.requested) return stopBeforeStart(stopRequests.requested);

  const target = { sessionId: cfg.sessionId, roomName: cfg.roomName, replacement: cfg.replacement };
  const room = new Room();
  return exit(
    await runSession({
      cfg,
      target,
      category,
      logger,
      room,
      connect: directConnect(cfg, target, room),
      metrics,
      onStopRequest: (fn) => stopRequests.onStop(fn),
      onFatal: (fn) => {
        fatalHandler = fn;
      },
    }),
  );
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stdout.write(JSON.stringify({ level: 'fatal', session_id: process.env.SESSION_ID ?? null, msg: 'agent crashed', error: String(err) }) + '\n');
    process.exit(1);
  },
);
