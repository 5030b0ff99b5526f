// End-to-end test of the playground page: starts the real dev stack (`go run ./infra/cmd/dev`, built
// first so SIGINT reaches it), drives Debian's Chromium headless through playwright-core with fake media
// devices, and checks sign-in, categories, the avatar's video actually decoding frames, the stand-in's
// greeting in the transcript, the failure and microphone-denied states, and End → session recorded as ended.
// A missing component (Chromium, the built agent, livekit-client) is a failure, never a skip.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const playgroundDir = path.resolve(here, '..');
const root = path.resolve(playgroundDir, '..');
const outDir = path.join(playgroundDir, 'test-output');
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];
const FAKE_UI = '--use-fake-ui-for-media-stream'; // auto-accepts the microphone prompt

let dev; // { proc, exited, ready, log }
let browser; // with fake UI: the microphone is granted
let deniedBrowser; // without fake UI and without a permission grant: the microphone is denied
const consoleLog = [];

// ---- helpers -------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(everyMs);
  }
}

function run(cmd, args, opts, timeoutMs) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.on('exit', (code, signal) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}:\n${out}`));
    });
  });
}

function tail(file, n = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

async function startDevStack() {
  const binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'playground-dev-'));
  const bin = path.join(binDir, 'dev');
  // Built instead of `go run` so that SIGINT reaches the dev command itself (go run does not relay it).
  await run('go', ['build', '-o', bin, './infra/cmd/dev'], { cwd: root }, 10 * 60_000);
  const readyFile = path.join(outDir, 'dev-ready.json');
  const logFile = path.join(outDir, 'dev-stack.log');
  const log = fs.openSync(logFile, 'w');
  const proc = spawn(bin, [], {
    cwd: root,
    env: {
      ...process.env,
      DEV_API_ADDR: '127.0.0.1:0',
      DEV_PLAYGROUND_ADDR: '127.0.0.1:0',
      DEV_READY_FILE: readyFile,
      DEV_LOG_DIR: path.join(outDir, 'dev-logs'),
    },
    stdio: ['ignore', log, log],
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let exit = null;
  exited.then((e) => (exit = e));
  const ready = await waitFor('the dev stack to write DEV_READY_FILE', () => {
    if (exit) throw new Error(`dev stack exited early (${exit.code ?? exit.signal}):\n${tail(logFile)}`);
    if (!fs.existsSync(readyFile)) return null;
    const raw = fs.readFileSync(readyFile, 'utf8');
    return raw ? JSON.parse(raw) : null;
  }, 5 * 60_000).catch((e) => {
    proc.kill('SIGKILL');
    throw e;
  });
  return { proc, exited, ready, logFile, binDir, isRunning: () => exit === null };
}

async function stopDevStack() {
  if (!dev) return;
  try {
    await stopDevProcess();
  } finally {
    fs.rmSync(dev.binDir, { recursive: true, force: true });
  }
}

async function stopDevProcess() {
  if (!dev.isRunning()) return;
  dev.proc.kill('SIGINT');
  let timer;
  const res = await Promise.race([dev.exited, new Promise((r) => (timer = setTimeout(() => r(null), 90_000)))]);
  clearTimeout(timer);
  if (!res) {
    dev.proc.kill('SIGKILL');
    throw new Error('dev stack did not exit within 90 s of SIGINT');
  }
}

// The API as the frontend sees it, used to check what the page claims.
async function studentToken(config) {
  const res = await fetch(config.cognito_endpoint.replace(/\/+$/, '') + '/', {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': 'AWSCognitoIdentityProviderService.InitiateAuth',
    },
    body: JSON.stringify({
      AuthFlow: 'USER_PASSWORD_AUTH',
      ClientId: config.cognito_client_id,
      AuthParameters: { USERNAME: config.username, PASSWORD: config.password },
    }),
  });
  const body = await res.json();
  assert.ok(body.AuthenticationResult?.IdToken, `cognito-local sign-in: ${JSON.stringify(body)}`);
  return body.AuthenticationResult.IdToken;
}

async function apiGet(config, token, p) {
  const res = await fetch(config.api_url + p, { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json();
  assert.equal(res.status, 200, `GET ${p}: ${JSON.stringify(body)}`);
  return body;
}

async function playgroundConfig() {
  const res = await fetch(dev.ready.playground_url + '/config.json');
  assert.equal(res.status, 200, 'GET /config.json');
  return res.json();
}

async function newPage(b, name) {
  const context = await b.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.on('console', (m) => consoleLog.push(`[${name}] console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLog.push(`[${name}] pageerror: ${e.stack || e.message}`));
  page.on('requestfailed', (r) => consoleLog.push(`[${name}] requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  return { context, page };
}

const stateOf = (page) => page.locator('#state').getAttribute('data-state');

async function waitState(page, states, timeoutMs) {
  const want = Array.isArray(states) ? states : [states];
  try {
    await page.waitForFunction(
      (w) => w.includes(document.getElementById('state').dataset.state),
      want,
      { timeout: timeoutMs, polling: 200 },
    );
  } catch (e) {
    const text = await page.locator('#state').innerText().catch(() => '?');
    throw new Error(`page never reached state ${want.join('|')}; it shows [${await stateOf(page).catch(() => '?')}] "${text}"`);
  }
}

async function signInAndListCategories(page) {
  await page.goto(dev.ready.playground_url + '/');
  await waitState(page, 'signed-out', 30_000);
  // Prefilled from /config.json, editable.
  assert.equal(await page.inputValue('#username'), 'student@example.edu');
  assert.ok((await page.inputValue('#password')).length > 0, 'password prefilled');
  assert.equal(await page.isEditable('#username'), true);
  await page.click('#signin-button');
  await page.locator('#categories li').first().waitFor({ timeout: 30_000 });
  await waitState(page, 'signed-in', 5_000);
}

async function shot(page, name) {
  try {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(outDir, name), fullPage: true });
  } catch {
    /* best effort */
  }
}

// ---- setup and teardown --------------------------------------------------------------------------

before(async () => {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const missing = [];
  if (!fs.existsSync(chromiumPath)) missing.push(`${chromiumPath} (Debian's chromium: apt-get install chromium; make tools installs it)`);
  if (!fs.existsSync(path.join(root, 'agentimage', 'dist', 'main.js'))) missing.push('agentimage/dist/main.js (make agent-deps)');
  if (!fs.existsSync(path.join(playgroundDir, 'node_modules', 'livekit-client', 'dist', 'livekit-client.esm.mjs'))) {
    missing.push('playground/node_modules/livekit-client (npm ci in playground/)');
  }
  assert.deepEqual(missing, [], `missing prerequisites:\n  ${missing.join('\n  ')}`);

  dev = await startDevStack();
  for (const k of ['api_url', 'playground_url', 'livekit_url']) assert.ok(dev.ready[k], `ready file has ${k}`);

  const launch = (extra) => chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    chromiumSandbox: false,
    args: [...CHROMIUM_FLAGS, ...extra],
    timeout: 60_000,
  });
  browser = await launch([FAKE_UI]);
  deniedBrowser = await launch([]);
});

after(async () => {
  fs.writeFileSync(path.join(outDir, 'browser-console.log'), consoleLog.join('\n') + '\n');
  await browser?.close().catch(() => {});
  await deniedBrowser?.close().catch(() => {});
  await stopDevStack();
});

// ---- tests ---------------------------------------------------------------------------------------

test('microphone permission denied: clear message, no session created', { timeout: 120_000 }, async () => {
  const { context, page } = await newPage(deniedBrowser, 'mic-denied');
  try {
    await signInAndListCategories(page);
    await page.locator('#categories input[type=radio]').first().check();
    await page.click('#start-button');
    await waitState(page, 'mic-denied', 30_000);
    assert.match(await page.locator('#state').innerText(), /Microphone permission denied/);
    assert.equal(await page.locator('#session-section').isHidden(), true, 'no session was started');
    assert.equal(await page.isEnabled('#start-button'), true, 'the student can try again');
    await shot(page, 'mic-denied.png');
  } catch (e) {
    await shot(page, 'failure-mic-denied.png');
    throw e;
  } finally {
    await context.close();
  }
});

test('session failure shows the API message and request id', { timeout: 120_000 }, async () => {
  const { context, page } = await newPage(browser, 'failure');
  try {
    // An unknown category id (the API answers 404 with its real request id): the category list is the
    // API's, with one id swapped.
    await page.route('**/api/v1/counselor-categories', async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      body.categories[0].id = '00000000-0000-4000-8000-000000000000';
      await route.fulfill({ response: res, json: body });
    });
    await signInAndListCategories(page);
    await page.locator('#categories input[type=radio]').first().check();
    await page.click('#start-button');
    await waitState(page, 'failed', 30_000);
    const text = await page.locator('#state').innerText();
    assert.match(text, /Session failed to start/);
    const requestId = await page.locator('#request-id').innerText();
    assert.match(requestId, /^[A-Za-z0-9._=-]{8,}$/, `request id shown: ${text}`);
    assert.equal(await page.isEnabled('#start-button'), true, 'the student can try again');
    await shot(page, 'session-failed.png');
  } catch (e) {
    await shot(page, 'failure-session-failed.png');
    throw e;
  } finally {
    await context.close();
  }
});

test('sign in, list categories, start a session, see and hear the avatar, read the transcript, end', { timeout: 300_000 }, async (t) => {
  const config = await playgroundConfig();
  const token = await studentToken(config);
  const { categories } = await apiGet(config, token, '/api/v1/counselor-categories');
  assert.ok(categories.length > 0, 'the API lists categories');

  const { context, page } = await newPage(browser, 'session');
  try {
    // Sign-in works and every category the API lists is on the page, in order.
    await signInAndListCategories(page);
    assert.match(await page.locator('#signed-in-as').innerText(), /student@example\.edu/);
    const shown = await page.locator('#categories li').evaluateAll((lis) =>
      lis.map((li) => ({ id: li.dataset.categoryId, name: li.querySelector('.name').textContent, description: li.querySelector('.description').textContent })));
    assert.deepEqual(shown, categories.map(({ id, name, description }) => ({ id, name, description })));

    // Start a session with the first counselor.
    const category = categories[0];
    await page.locator(`#categories li[data-category-id="${category.id}"] input`).check();
    await page.click('#start-button');
    await page.waitForFunction(() => document.getElementById('session-section').dataset.sessionId, null, { timeout: 30_000 });
    const sessionId = await page.locator('#session-section').getAttribute('data-session-id');
    assert.match(sessionId, /^[0-9a-f-]{36}$/);
    await waitState(page, ['waiting', 'live'], 30_000);

    // The avatar's video is actually playing: frames decoded, from the avatar participant.
    await page.waitForFunction(() => document.getElementById('avatar-video').dataset.playing === 'true', null, { timeout: 120_000, polling: 250 })
      .catch(async (e) => {
        throw new Error(`avatar video never played (frames=${await page.locator('#avatar-video').getAttribute('data-frames')}): ${e.message}`);
      });
    const video = await page.evaluate(() => {
      const v = document.getElementById('avatar-video');
      const q = v.getVideoPlaybackQuality();
      return { from: v.dataset.from, decoded: q.totalVideoFrames, width: v.videoWidth, height: v.videoHeight, paused: v.paused, t0: v.currentTime };
    });
    assert.equal(video.from, 'bey-avatar-agent', 'video comes from the avatar');
    assert.ok(video.decoded > 0, `frames decoded: ${JSON.stringify(video)}`);
    assert.ok(video.width > 0 && video.height > 0, `video has a size: ${JSON.stringify(video)}`);
    assert.equal(video.paused, false);
    // The page's timings (read by infra/cmd/bench-pool): POST → create-room answer → agent in the room
    // → first avatar frame presented, in that order.
    const timings = await page.waitForFunction(() => window.__timings && window.__timings.firstAvatarFrame != null && window.__timings.agentJoined != null && window.__timings,
      null, { timeout: 10_000 }).then((h) => h.jsonValue());
    assert.ok(timings.post > 0 && timings.created >= timings.post && timings.connected >= timings.created
      && timings.agentJoined >= timings.post && timings.firstAvatarFrame >= timings.avatarTrack
      && timings.avatarTrack > timings.created, `page timings in order: ${JSON.stringify(timings)}`);
    t.diagnostic(`page: POST → agent in room ${Math.round(timings.agentJoined - timings.post)} ms, → first avatar frame ${Math.round(timings.firstAvatarFrame - timings.post)} ms`);
    // ...and keeps decoding.
    await page.waitForFunction((n) => document.getElementById('avatar-video').getVideoPlaybackQuality().totalVideoFrames > n,
      video.decoded, { timeout: 30_000 });
    await waitState(page, 'live', 10_000);

    // The avatar's audio is attached and playing.
    await page.waitForFunction(() => [...document.querySelectorAll('#audio-sink audio')]
      .some((a) => a.dataset.from === 'bey-avatar-agent' && !a.paused && a.srcObject), null, { timeout: 30_000 });

    // The stand-in Realtime's greeting appears in the transcript, spoken by the counselor.
    const greeting = `Hi, I'm your ${category.name} counselor. How can I help you today?`;
    await page.waitForFunction((g) => [...document.querySelectorAll('#transcript li[data-speaker="counselor"] .text')]
      .some((el) => el.textContent.includes(g)), greeting, { timeout: 60_000 })
      .catch(async (e) => {
        throw new Error(`greeting not in transcript; transcript: ${JSON.stringify(await page.locator('#transcript').innerText())}: ${e.message}`);
      });
    assert.equal(await page.locator('#transcript li[data-speaker="counselor"] .who').first().innerText(), 'Counselor');
    const speaker = await page.locator('#transcript li[data-speaker="counselor"]').first().getAttribute('data-identity');
    assert.match(speaker, /^(agent-|bey-avatar-agent$)/);
    t.diagnostic(`avatar video ${video.width}x${video.height}, ${video.decoded} frames decoded when first checked; greeting transcript sent by ${speaker}`);

    // Session status from the session endpoint, as the API sees it.
    await page.waitForFunction(() => document.getElementById('session-status').dataset.status === 'active', null, { timeout: 30_000 });
    const live = await apiGet(config, token, `/api/v1/video/sessions/${sessionId}`);
    assert.equal(live.status, 'active');

    // Time to counselor: the dev stack's warm pool served it (make dev runs one by default), and the
    // panel shows the API's figure and the page's own.
    assert.equal(live.agent_source, 'pool', `served by the warm pool: ${JSON.stringify(live)}`);
    assert.ok(live.time_to_agent_ms > 0, `time_to_agent_ms: ${JSON.stringify(live)}`);
    await page.waitForFunction(() => {
      const el = document.getElementById('time-to-counselor');
      return el.dataset.source && el.dataset.ms && el.dataset.clientMs;
    }, null, { timeout: 30_000 });
    const ttc = await page.locator('#time-to-counselor').evaluate((el) => ({ ...el.dataset, text: el.textContent }));
    assert.equal(ttc.source, 'pool');
    assert.equal(Number(ttc.ms), live.time_to_agent_ms);
    assert.match(ttc.text, /warm pool/);
    t.diagnostic(`time to counselor: API ${ttc.ms} ms (${ttc.source}), page ${ttc.clientMs} ms`);

    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(outDir, 'live-session.png'), fullPage: true });
    t.diagnostic(`screenshot of the live session: ${path.relative(root, path.join(outDir, 'live-session.png'))}`);

    // End: the session is recorded as ended.
    await page.click('#end-button');
    await waitState(page, 'ended', 60_000);
    assert.match(await page.locator('#state').innerText(), /Session ended/);
    const ended = await waitFor('the API to record the session as ended', async () => {
      const s = await apiGet(config, token, `/api/v1/video/sessions/${sessionId}`);
      return s.status === 'ended' && s.ended_at ? s : null;
    }, 60_000, 500);
    assert.ok(ended.ended_at, 'ended_at set');
    assert.ok(ended.end_reason, `end_reason set: ${JSON.stringify(ended)}`);
    assert.equal(await page.locator('#session-status dd[data-field="status"]').innerText(), 'ended');
    t.diagnostic(`session ${sessionId} recorded as ended at ${ended.ended_at} (${ended.end_reason})`);
    await shot(page, 'ended.png');
  } catch (e) {
    await shot(page, 'failure-session.png');
    throw e;
  } finally {
    await context.close();
  }
});

test('a session closed from the server side shows as ended on the page', { timeout: 300_000 }, async () => {
  const config = await playgroundConfig();
  const token = await studentToken(config);
  const { context, page } = await newPage(browser, 'server-end');
  try {
    await signInAndListCategories(page);
    await page.locator('#categories input[type=radio]').nth(1).check();
    await page.click('#start-button');
    await waitState(page, 'live', 120_000);
    const sessionId = await page.locator('#session-section').getAttribute('data-session-id');
    // Ended elsewhere (another tab, the platform): the room is deleted under the page.
    const res = await fetch(`${config.api_url}/api/v1/video/sessions/${sessionId}/end`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 202);
    await waitState(page, 'ended', 60_000);
    assert.equal(await page.locator('#session-status dd[data-field="status"]').innerText(), 'ended');
    assert.equal(await page.isEnabled('#start-button'), true, 'a new session can be started');
  } catch (e) {
    await shot(page, 'failure-server-end.png');
    throw e;
  } finally {
    await context.close();
  }
});

test('a student in crisis: the crisis resources card appears once and the staff alert lands in the dev stack', { timeout: 300_000 }, async () => {
  assert.ok(dev.ready.realtime_control_url, 'the dev stack runs the stand-in Realtime server (no provider keys)');
  assert.ok(dev.ready.safety_alerts_file, 'ready file has safety_alerts_file');
  const config = await playgroundConfig();
  const token = await studentToken(config);
  const { context, page } = await newPage(browser, 'crisis');
  const say = async (transcript) => {
    const res = await fetch(dev.ready.realtime_control_url, { method: 'POST', body: JSON.stringify({ transcript, respond: true }) });
    assert.equal(res.status, 202, `control: ${res.status}`);
  };
  const replies = () => page.locator('#transcript li[data-speaker="counselor"]').count();
  try {
    await signInAndListCategories(page);
    await page.locator('#categories input[type=radio]').nth(2).check();
    await page.click('#start-button');
    await waitState(page, 'live', 120_000);
    const sessionId = await page.locator('#session-section').getAttribute('data-session-id');
    await page.waitForFunction(() => document.querySelectorAll('#transcript li[data-speaker="counselor"]').length > 0, null, { timeout: 60_000 });
    assert.equal(await page.locator('#crisis-card').isHidden(), true, 'no card before anything was said');

    const spoken = 'Honestly I want to end my life.';
    await say(spoken);
    await page.locator('#crisis-card').waitFor({ state: 'visible', timeout: 30_000 });
    const card = await page.locator('#crisis-card').innerText();
    for (const s of ['988', '911', 'Campus counseling', 'Outside the US', 'local emergency number']) assert.ok(card.includes(s), `card shows ${s}: ${card}`);
    assert.equal(await page.locator('#crisis-card a[href="tel:988"]').count(), 1, 'the 988 line is a tel: link');
    await shot(page, 'crisis-card.png');

    // A second concern: still one card, one message; the conversation goes on.
    const before = await replies();
    await say('I want to kill myself.');
    await waitFor('the counselor to answer again', async () => (await replies()) > before, 60_000);
    await sleep(1000);
    assert.equal(await page.locator('.crisis-card').count(), 1);
    assert.equal(await page.locator('#crisis-card').getAttribute('data-messages'), '1');

    // The counseling staff's alert: one message for this session, in the dev stack's alert file, with
    // the session's facts and none of the student's words.
    const alerts = await waitFor('the safety alert in the dev stack', () => {
      if (!fs.existsSync(dev.ready.safety_alerts_file)) return null;
      const lines = fs.readFileSync(dev.ready.safety_alerts_file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      const mine = lines.filter((m) => JSON.parse(JSON.parse(m.message).default).session_id === sessionId);
      return mine.length ? mine : null;
    }, 30_000);
    assert.equal(alerts.length, 1);
    const body = JSON.parse(JSON.parse(alerts[0].message).default);
    assert.equal(body.kind, 'self_harm');
    assert.equal(body.source, 'phrase_list');
    assert.ok(!JSON.stringify(alerts[0]).toLowerCase().includes('end my life'), 'the alert carries no transcript text');
    // The flag is not shown to the student through the API.
    const view = await apiGet(config, token, `/api/v1/video/sessions/${sessionId}`);
    assert.ok(!JSON.stringify(view).includes('safety'), `session view: ${JSON.stringify(view)}`);

    await page.click('#end-button');
    await waitState(page, 'ended', 60_000);
    assert.equal(await page.locator('#crisis-card').isVisible(), true, 'the resources stay on screen after the session');
  } catch (e) {
    await shot(page, 'failure-crisis.png');
    throw e;
  } finally {
    await context.close();
  }
});
