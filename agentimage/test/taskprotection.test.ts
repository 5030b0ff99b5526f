// ECS task scale-in protection client (unit) against a local HTTP double of the ECS agent endpoint.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../src/logger.js';
import { protectionMinutes, protectTask } from '../src/taskprotection.js';

interface Call {
  method?: string;
  url?: string;
  contentType?: string;
  body: string;
}
let calls: Call[] = [];
let answer: (res: ServerResponse, n: number) => void = () => undefined;
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    calls.push({ method: req.method, url: req.url, contentType: req.headers['content-type'], body });
    answer(res, calls.length);
  });
});
let base = '';
const logger = createLogger({ secrets: [], level: 'silent' });

function json(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(body));
}
const PROTECTED = { requestID: 'r-1', protection: { ExpirationDate: '2030-01-01T00:00:00Z', ProtectionEnabled: true, TaskArn: 'arn:x' } };

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/task-abc`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

describe('task protection', () => {
  test('expiry covers the longest session plus a margin, within ECS limits', () => {
    assert.equal(protectionMinutes(3600), 65);
    assert.equal(protectionMinutes(61), 7);
    assert.equal(protectionMinutes(86_400), 1445);
    assert.equal(protectionMinutes(10 * 86_400), 2880);
  });

  test('PUT $ECS_AGENT_URI/task-protection/v1/state with the documented body', async () => {
    calls = [];
    answer = (res) => json(res, 200, PROTECTED);
    assert.equal(await protectTask({ ecsAgentUri: base + '/', expiresInMinutes: 65, logger }), true);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].method, 'PUT');
    assert.equal(calls[0].url, '/api/task-abc/task-protection/v1/state');
    assert.equal(calls[0].contentType, 'application/json');
    assert.deepEqual(JSON.parse(calls[0].body), { ProtectionEnabled: true, ExpiresInMinutes: 65 });
  });

  test('a failure answer is not fatal and a 4xx is not retried', async () => {
    calls = [];
    answer = (res) => json(res, 400, { failure: { Arn: 'arn:x', Reason: 'TASK_NOT_VALID', Detail: 'standalone task' } });
    assert.equal(await protectTask({ ecsAgentUri: base, expiresInMinutes: 5, logger }), false);
    assert.equal(calls.length, 1);
  });

  test('an error body on 200 is a failure too', async () => {
    calls = [];
    answer = (res) => json(res, 200, { error: { Code: 'AccessDeniedException', Message: 'no ecs:UpdateTaskProtection' } });
    assert.equal(await protectTask({ ecsAgentUri: base, expiresInMinutes: 5, logger, attempts: 2 }), false);
  });

  test('5xx and throttling are retried, then succeed', async () => {
    calls = [];
    answer = (res, n) => (n === 1 ? json(res, 503, {}) : n === 2 ? json(res, 429, {}) : json(res, 200, PROTECTED));
    assert.equal(await protectTask({ ecsAgentUri: base, expiresInMinutes: 5, logger, attempts: 3 }), true);
    assert.equal(calls.length, 3);
  });

  test('an endpoint that does not answer is bounded by the timeout, never throws', async () => {
    calls = [];
    answer = () => undefined; // never responds
    assert.equal(await protectTask({ ecsAgentUri: base, expiresInMinutes: 5, logger, attempts: 2, timeoutMs: 200 }), false);
    assert.equal(calls.length, 2);
  });

  test('nothing listening: false, not an exception', async () => {
    assert.equal(await protectTask({ ecsAgentUri: 'http://127.0.0.1:1', expiresInMinutes: 5, logger, attempts: 1 }), false);
  });
});
