// OpenAI Realtime connections that survive transient failures.
//
// Why: in @livekit/agents-plugin-openai 1.9.0, RealtimeSession.createWsConn() listens only for
// 'open' and 'close' on its WebSocket (no 'error' listener, so a refused handshake is an uncaught
// exception), and the session's main loop calls it outside its retry block (upstream PR
// livekit/agents-js#2539). The plugin reconnects on its own every `maxSessionDuration`, so a single
// 429/5xx at that moment ended a live conversation. ResilientRealtimeModel replaces exactly that one
// method: the same URL and headers, every handshake error handled, and transient failures (408, 429,
// 5xx, network errors, handshake timeouts) retried with exponential backoff (p-retry) before the
// session is failed with an unrecoverable error (which closes the AgentSession cleanly).
//
// It also replaces the session's outgoing message queue (LatestConsumerQueue, below): with the
// plugin's queue the first event queued after every reconnect was silently dropped.
//
// Both overrides target members the plugin declares private: their presence is checked (at import
// and per session) so an upgrade that renames them fails loudly, not silently.
import { APIConnectionError, APIStatusError, type llm } from '@livekit/agents';
import * as openai from '@livekit/agents-plugin-openai';
import pRetry, { AbortError } from 'p-retry';
import { WebSocket } from 'ws';
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';

const OPENAI_BASE_URL = 'https://api.openai.com/v1';

export interface ConnectRetryPolicy {
  /** Total connection attempts (first one included). */
  attempts: number;
  /** Delay before the first retry; doubles (with jitter) up to maxDelayMs. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Per attempt: the WebSocket handshake must complete within this. */
  handshakeTimeoutMs: number;
}

/** Five attempts; the delays between them (0.5, 1, 2, 4 s, each x1-2 jitter, capped at 5 s) add up to 7.5-12 s. */
export const DEFAULT_CONNECT_RETRY: ConnectRetryPolicy = {
  attempts: 5,
  minDelayMs: 500,
  maxDelayMs: 5000,
  handshakeTimeoutMs: 10_000,
};

/** A failed WebSocket handshake; `status` is the HTTP status of a refused upgrade, if any. */
export class RealtimeConnectError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RealtimeConnectError';
  }
}

/** Statuses worth retrying: timeouts, rate limits and server errors. 401/403/404 are not. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Opens one WebSocket. Resolves once open; rejects with a RealtimeConnectError on a refused
 * upgrade, a network error, a timeout or an early close. Never leaves an 'error' unhandled.
 */
export function openWebSocket(url: string, headers: Record<string, string>, handshakeTimeoutMs: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: handshakeTimeoutMs });
    let settled = false;
    const fail = (err: RealtimeConnectError) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    ws.once('unexpected-response', (req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      req.destroy();
      fail(new RealtimeConnectError(`Realtime API refused the connection: HTTP ${status}`, isTransientStatus(status), status));
    });
    // Handshake timeouts, DNS/TCP/TLS errors: all transient from our side.
    ws.on('error', (err) => fail(new RealtimeConnectError(`Realtime API connection failed: ${err.message}`, true)));
    ws.once('close', () => fail(new RealtimeConnectError('Realtime API connection closed during the handshake', true)));
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      // From here on the plugin owns the socket and its 'error' handling (runWs sets onerror).
      ws.removeAllListeners('error');
      resolve(ws);
    });
  });
}

export interface RetryEvents {
  /** `minDelayMs`: the delay before the next attempt without its jitter (the actual one is up to 2x). */
  onRetry?: (info: { attempt: number; minDelayMs: number; error: RealtimeConnectError }) => void;
}

/** Calls `open` until it succeeds, a non-transient error occurs, attempts run out or `signal` aborts. */
export async function connectWithRetry(
  open: () => Promise<WebSocket>,
  policy: ConnectRetryPolicy,
  opts: RetryEvents & { signal?: AbortSignal } = {},
): Promise<WebSocket> {
  return pRetry(
    async () => {
      try {
        return await open();
      } catch (err) {
        if (err instanceof RealtimeConnectError && !err.transient) throw new AbortError(err);
        throw err;
      }
    },
    {
      retries: policy.attempts - 1,
      minTimeout: policy.minDelayMs,
      maxTimeout: policy.maxDelayMs,
      factor: 2,
      randomize: true,
      signal: opts.signal,
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft > 0 && error instanceof RealtimeConnectError) {
          opts.onRetry?.({
            attempt: attemptNumber,
            minDelayMs: Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** (attemptNumber - 1)),
            error,
          });
        }
      },
    },
  );
}

type RealtimeModelOptions = {
  model: string;
  voice: string;
  apiKey: string;
  baseURL?: string;
  /** Lifetime of one Realtime connection; the plugin reconnects after it (OpenAI caps sessions at 60 min). */
  maxSessionDuration: number;
};

interface ConnectSettings {
  url: string;
  headers: Record<string, string>;
  policy: ConnectRetryPolicy;
  logger: Logger;
  metrics?: AgentMetrics;
}

/**
 * The session's outgoing events, for one consumer at a time. The plugin's send loop awaits
 * `messageChannel.get()` raced against an abort; when a connection ends, that get() stays pending
 * and (with the plugin's Queue) takes the first event queued after the reconnect (a response.create,
 * an instructions update, audio), which is then never sent. Here a new get() supersedes a pending one.
 */
export class LatestConsumerQueue<T> {
  private waiter?: (item: T) => void;

  constructor(readonly items: T[] = []) {}

  get(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  async put(item: T): Promise<void> {
    if (item === undefined) return;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter(item);
    else this.items.push(item);
  }
}

class ResilientRealtimeSession extends openai.realtime.RealtimeSession {
  readonly resilience: ConnectSettings;
  readonly stopConnecting = new AbortController();
  /** Connections opened so far: every one after the first is a reconnect. */
  connections = 0;

  constructor(model: ResilientRealtimeModel, settings: ConnectSettings) {
    super(model);
    this.resilience = settings;
    // Keeps what the base constructor queued (the first session.update); nothing consumes it yet.
    const self = this as unknown as { messageChannel?: { items?: unknown[] } };
    if (!Array.isArray(self.messageChannel?.items)) {
      throw new Error('@livekit/agents-plugin-openai changed: RealtimeSession.messageChannel is gone; revisit src/realtime-retry.ts');
    }
    self.messageChannel = new LatestConsumerQueue(self.messageChannel.items);
  }

  override async close(): Promise<void> {
    this.stopConnecting.abort();
    await super.close();
  }
}

async function resilientCreateWsConn(this: ResilientRealtimeSession): Promise<WebSocket> {
  // The base constructor makes the first call, before this subclass's fields exist: let it finish.
  await Promise.resolve();
  const { url, headers, policy, logger, metrics } = this.resilience;
  const { signal } = this.stopConnecting;
  try {
    const ws = await connectWithRetry(() => openWebSocket(url, headers, policy.handshakeTimeoutMs), policy, {
      signal,
      onRetry: ({ attempt, minDelayMs, error }) => {
        logger.warn(
          { event: 'realtime_connect_retry', attempt, max_attempts: policy.attempts, status: error.status, min_delay_ms: minDelayMs, error: error.message },
          'Realtime connection failed; retrying',
        );
        void metrics?.realtimeConnectRetry();
      },
    });
    if (++this.connections > 1) void metrics?.realtimeReconnect();
    return ws;
  } catch (err) {
    if (signal.aborted) throw err;
    const status = err instanceof RealtimeConnectError ? err.status : undefined;
    const message = err instanceof Error ? err.message : String(err);
    logger.error({ event: 'realtime_connect_failed', status, error: message }, 'Realtime connection failed; giving up');
    // An unrecoverable model error makes the AgentSession close with that error (session_error).
    const error = status
      ? new APIStatusError({ message, options: { statusCode: status, retryable: false } })
      : new APIConnectionError({ message, options: { retryable: false } });
    const event: llm.RealtimeModelError = { type: 'realtime_model_error', timestamp: Date.now(), label: 'openai.RealtimeModel', error, recoverable: false };
    this.emit('error', event);
    throw err;
  }
}

/** Fails at start (and in tests) if the pinned plugin no longer has the method we replace. */
function assertPluginShape(): void {
  const proto = openai.realtime.RealtimeSession.prototype as unknown as Record<string, unknown>;
  if (typeof proto.createWsConn !== 'function' || typeof openai.realtime.processBaseURL !== 'function') {
    throw new Error('@livekit/agents-plugin-openai changed: RealtimeSession.createWsConn is gone; revisit src/realtime-retry.ts');
  }
}
assertPluginShape();
Object.defineProperty(ResilientRealtimeSession.prototype, 'createWsConn', { value: resilientCreateWsConn, writable: true, configurable: true });

/** openai.realtime.RealtimeModel whose sessions connect with retries (OpenAI API, not Azure). */
export class ResilientRealtimeModel extends openai.realtime.RealtimeModel {
  private readonly connect: ConnectSettings;

  constructor(opts: RealtimeModelOptions & { logger: Logger; connectRetry?: ConnectRetryPolicy; metrics?: AgentMetrics }) {
    const { logger, connectRetry, metrics, ...modelOpts } = opts;
    super(modelOpts);
    const baseURL = opts.baseURL || process.env.OPENAI_BASE_URL || OPENAI_BASE_URL;
    this.connect = {
      url: openai.realtime.processBaseURL({ baseURL, model: opts.model, isAzure: false }),
      headers: { 'User-Agent': 'LiveKit-Agents-JS', Authorization: `Bearer ${opts.apiKey}` },
      policy: connectRetry ?? DEFAULT_CONNECT_RETRY,
      logger,
      metrics,
    };
  }

  override session(): openai.realtime.RealtimeSession {
    return new ResilientRealtimeSession(this, this.connect);
  }
}
