// Process-level events as JSON log lines, the same in every process of the agent: warnings (e.g.
// the AWS SDK's Node version notice) instead of stderr text; stray promise rejections logged, not
// fatal (the framework fires some RPCs without awaiting them, e.g. lk.clear_buffer, and one failing
// must not end a live session); uncaught exceptions handed to `onUncaught` (the OpenAI plugin's
// WebSocket has no 'error' listener during its handshake: a refused connection ends up here).
import type { Logger } from './logger.js';

export function logProcessEvents(logger: Logger, onUncaught: (err: unknown) => void): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => logger.warn({ warning: w.name, detail: w.message.split('\n')[0] }, 'process warning'));
  process.on('unhandledRejection', (reason) => {
    if (reason === undefined) logger.debug('unhandled promise rejection (no reason)');
    else logger.warn({ error: String(reason) }, 'unhandled promise rejection');
  });
  process.on('uncaughtException', (err) => {
    logger.error({ event: 'uncaught_exception', error: String(err) }, 'uncaught exception');
    onUncaught(err);
  });
}
