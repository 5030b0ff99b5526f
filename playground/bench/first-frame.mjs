// Drives the playground page in headless Chromium for infra/cmd/bench-pool: POST create-room → first
// avatar video frame at the student. Reads one JSON request per stdin line ({"api_url": "..."}: the API
// this session is created through; the page's /config.json is rewritten to it), runs one whole session
// in a fresh browser context (sign in, first category, Start, wait for the first avatar frame, End, wait
// for "ended") and answers one JSON line on stdout: the session id and the page's window.__timings, or
// {"error": "..."}. Prints {"ready": true} once Chromium is up. Environment: PLAYGROUND_URL (required),
// CHROMIUM_PATH (default /usr/bin/chromium).
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const playgroundURL = process.env.PLAYGROUND_URL;
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
if (!playgroundURL) {
  console.error('first-frame: PLAYGROUND_URL is not set');
  process.exit(2);
}

// As the playground's e2e test: fake devices, the microphone granted, no autoplay gesture needed.
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  chromiumSandbox: false,
  timeout: 60_000,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required',
  ],
});

const state = (page, want, timeout) => page.waitForFunction(
  (w) => w.includes(document.getElementById('state').dataset.state), want, { timeout, polling: 50 });

async function session(apiURL) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  try {
    const page = await context.newPage();
    await page.route('**/config.json', async (route) => {
      const res = await route.fetch();
      await route.fulfill({ response: res, json: { ...(await res.json()), api_url: apiURL } });
    });
    await page.goto(playgroundURL + '/');
    await state(page, ['signed-out'], 30_000);
    await page.click('#signin-button');
    await page.locator('#categories input[type=radio]').first().check({ timeout: 30_000 });
    await page.click('#start-button');
    let timings;
    try {
      timings = await page.waitForFunction(() => {
        const t = window.__timings;
        return t && t.firstAvatarFrame != null && t.agentJoined != null && t;
      }, null, { timeout: 90_000, polling: 100 }).then((h) => h.jsonValue());
    } catch (e) {
      const text = await page.locator('#state').innerText().catch(() => '?');
      throw new Error(`no avatar frame (page: "${text}", timings ${JSON.stringify(await page.evaluate(() => window.__timings))}): ${e.message}`);
    }
    const sessionId = await page.locator('#session-section').getAttribute('data-session-id');
    await page.click('#end-button');
    await state(page, ['ended'], 60_000);
    return { session_id: sessionId, timings };
  } finally {
    await context.close();
  }
}

console.log(JSON.stringify({ ready: true }));
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = await session(JSON.parse(line).api_url);
  } catch (e) {
    answer = { error: e.message };
  }
  console.log(JSON.stringify(answer));
}
await browser.close();
