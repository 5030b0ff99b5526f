// The standalone stand-ins command used by the local dev stack.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { AGENT_DIR, freePort, waitUntil } from './harness.js';

test('node dist/standins/main.js prints one ready line with its URLs and stops on SIGTERM', async () => {
  const [rp, bp, sp] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, [join(AGENT_DIR, 'dist/standins/main.js'), '--realtime-port', String(rp)], {
    env: { PATH: process.env.PATH ?? '', STANDIN_BEY_PORT: String(bp), STANDIN_SNS_PORT: String(sp) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  try {
    await waitUntil(() => out.includes('standins_ready'), 'ready line', 30_000);
    const ready = JSON.parse(out.split('\n').find((l) => l.includes('standins_ready'))!);
    assert.deepEqual(ready, {
      event: 'standins_ready',
      openai_base_url: `http://127.0.0.1:${rp}/v1`,
      bey_api_url: `http://127.0.0.1:${bp}`,
      sns_url: `http://127.0.0.1:${sp}`,
    });
    assert.equal((await fetch(`http://127.0.0.1:${rp}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${bp}/healthz`)).status, 200);
    const bad = await fetch(`${ready.bey_api_url}/v1/session`, { method: 'POST', headers: { 'x-api-key': 'k' }, body: '{}' });
    assert.equal(bad.status, 422);
    // SNS answers the Query protocol only; the Realtime control endpoint needs an open connection.
    const unsigned = await fetch(ready.sns_url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=Publish' });
    assert.equal(unsigned.status, 403);
    const control = await fetch(`http://127.0.0.1:${rp}/control/student-speech`, { method: 'POST', body: '{"transcript":"hi"}' });
    assert.equal(control.status, 404);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, out);
});

test('an unknown avatar behaviour is refused at start (exit 2)', async () => {
  const child = spawn(process.execPath, [join(AGENT_DIR, 'dist/standins/main.js'), '--bey-avatar', 'sometimes'], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  assert.equal(code, 2, out);
  assert.match(out, /invalid avatar behaviour/);
  assert.ok(!out.includes('standins_ready'));
});
