// OpenAI Realtime connection retries (src/realtime-retry.ts) against the stand-in Realtime server:
// the connect helper on its own, and the plugin's RealtimeSession with the replaced connect,
// including its periodic reconnect hitting a refused upgrade. No LiveKit needed.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { llm } from '@livekit/agents';
import { RealtimeStandin } from '../src/standins/realtime.js';
import { createLogger, installFrameworkLogger } from '../src/logger.js';
import {
  RealtimeConnectError,
  ResilientRealtimeModel,
  connectWithRetry,
  isTransientStatus,
  openWebSocket,
  type ConnectRetryPolicy,
} from '../src/realtime-retry.js';
import { freePort, sleep, waitUntil } from './harness.js';

const FAST: ConnectRetryPolicy = { attempts: 4, minDelayMs: 20, maxDelayMs: 100, handshakeTimeoutMs: 5000 };
const KEY = 'sk-retry-test-0001';
const logger = createLogger({ sessionId: 'realtime-retry-test', secrets: [KEY], level: process.env.LOG_LEVEL ?? 'fatal' });

let standin: RealtimeStandin;
let wsUrl: string;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);

before(async () => {
  installFrameworkLogger(logger);
  process.on('uncaughtException', onUncaught);
  standin = new RealtimeStandin({ paceFactor: 0, replySeconds: 0.2 });
  await standin.listen();
  wsUrl = `${standin.baseUrl.replace(/^http/, 'ws')}/realtime?model=gpt-realtime`;
});

after(async () => {
  process.off('uncaughtException', onUncaught);
  await standin.close();
  assert.deepEqual(uncaught, [], 'a connection failure escaped as an uncaught exception');
});

const open = () => openWebSocket(wsUrl, { Authorization: `Bearer ${KEY}` }, FAST.handshakeTimeoutMs);

describe('connectWithRetry', () => {
  test('transient refusals (429, 503) are retried until the upgrade succeeds', async () => {
    standin.refuseNextUpgrades(429, 503);
    const retried: (number | undefined)[] = [];
    const before = standin.connections.length;
    const ws = await connectWithRetry(open, FAST, { onRetry: ({ error }) => retried.push(error.status) });
    ws.close();
    assert.deepEqual(retried, [429, 503]);
    assert.equal(standin.connections.length, before + 1);
  });

  test('a refused key (401) is not retried', async () => {
    standin.refuseNextUpgrades(401);
    let attempts = 0;
    const err = await connectWithRetry(() => (attempts++, open()), FAST).then(
      () => assert.fail('connected'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RealtimeConnectError, String(err));
    assert.equal(err.status, 401);
    assert.equal(err.transient, false);
    assert.equal(attempts, 1);
  });

  test('nothing listening: network errors are retried, then the last error is reported', async () => {
    const port = await freePort();
    let attempts = 0;
    const err = await connectWithRetry(
      () => (attempts++, openWebSocket(`ws://127.0.0.1:${port}/v1/realtime`, {}, 2000)),
      FAST,
    ).then(
      () => assert.fail('connected'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RealtimeConnectError, String(err));
    assert.equal(err.transient, true);
    assert.equal(attempts, FAST.attempts);
  });

  test('a server that accepts TCP but never answers the upgrade times out (transient)', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (silent.address() as { port: number }).port;
      const err = await openWebSocket(`ws://127.0.0.1:${port}/v1/realtime`, {}, 300).then(
        () => assert.fail('connected'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RealtimeConnectError, String(err));
      assert.equal(err.transient, true);
    } finally {
      silent.close();
    }
  });

  test('an abort stops the retries', async () => {
    const port = await freePort();
    const ctl = new AbortController();
    let attempts = 0;
    const p = connectWithRetry(
      () => {
        attempts++;
        if (attempts === 2) ctl.abort(new Error('closing'));
        return openWebSocket(`ws://127.0.0.1:${port}/v1/realtime`, {}, 2000);
      },
      { ...FAST, attempts: 50, minDelayMs: 10, maxDelayMs: 10 },
      { signal: ctl.signal },
    );
    await assert.rejects(p);
    assert.ok(attempts <= 3, `kept retrying after the abort (${attempts} attempts)`);
  });

  test('transient statuses', () => {
    for (const s of [408, 429, 500, 502, 503, 504]) assert.equal(isTransientStatus(s), true, String(s));
    for (const s of [400, 401, 403, 404, 426]) assert.equal(isTransientStatus(s), false, String(s));
  });
});

describe('ResilientRealtimeModel sessions', () => {
  function model(maxSessionDuration = 3_600_000) {
    return new ResilientRealtimeModel({
      model: 'gpt-realtime',
      voice: 'marin',
      apiKey: KEY,
      baseURL: standin.baseUrl,
      maxSessionDuration,
      logger,
      connectRetry: FAST,
    });
  }

  test('the first connect is retried after a 503', async () => {
    standin.refuseNextUpgrades(503);
    const refusedBefore = standin.refusedUpgrades.length;
    const before = standin.connections.length;
    const session = model().session();
    try {
      await waitUntil(() => standin.connections.length > before, 'session connected after the refusal', 30_000);
      assert.equal(standin.refusedUpgrades.length, refusedBefore + 1);
      const conn = standin.connections.at(-1)!;
      assert.equal(conn.apiKey, KEY);
      assert.equal(conn.model, 'gpt-realtime');
      await waitUntil(() => conn.receivedTypes.includes('session.update'), 'session.update sent', 30_000);
    } finally {
      await session.close();
    }
  });

  test('a periodic reconnect refused with 429 is retried; the session carries on', async () => {
    const before = standin.connections.length;
    const session = model(3000).session();
    const errors: llm.RealtimeModelError[] = [];
    let reconnected = 0;
    session.on('error', (e: llm.RealtimeModelError) => errors.push(e));
    session.on('session_reconnected', () => reconnected++);
    try {
      await waitUntil(() => standin.connections.length > before, 'first connection', 30_000);
      const refusedBefore = standin.refusedUpgrades.length;
      standin.refuseNextUpgrades(429);
      await waitUntil(() => reconnected > 0, 'session reconnected after the refused attempt', 30_000);
      assert.equal(standin.refusedUpgrades.length, refusedBefore + 1, 'the reconnect was not refused first');
      assert.ok(standin.connections.length >= before + 2);
      assert.deepEqual(errors.filter((e) => !e.recoverable), [], 'an unrecoverable error was reported');
      // The new connection works: a reply requested once its send loop waits is sent and answered
      // (the plugin's own queue handed that first event to the previous connection's dead loop).
      const conn = standin.connections.at(-1)!;
      await waitUntil(() => conn.receivedTypes.includes('session.update'), 'state replayed on the new connection', 30_000);
      await sleep(200);
      const gen = await session.generateReply('Say hello.');
      assert.equal(conn.responsesStarted, 1, 'the reply was not requested on the new connection');
      assert.ok(gen.messageStream, 'no generation on the new connection');
    } finally {
      await session.close();
    }
  });

  test('a refused key fails the session with one unrecoverable error', async () => {
    standin.refuseNextUpgrades(401);
    const session = model().session();
    const errors: llm.RealtimeModelError[] = [];
    session.on('error', (e: llm.RealtimeModelError) => errors.push(e));
    try {
      await waitUntil(() => errors.length > 0, 'error reported', 30_000);
      assert.equal(errors.length, 1);
      assert.equal(errors[0].recoverable, false);
      assert.match(String(errors[0].error.message), /401/);
    } finally {
      await session.close();
    }
  });
});
