// Environment contract: unit tests of loadConfig and the process-level behaviour of
// `node dist/main.js` with missing or invalid variables (no components needed).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, SECRET_VARIABLES, VARIABLES, loadConfig, loadWorkerConfig, type VariableSpec } from '../src/config.js';
import { scrubber } from '../src/logger.js';
import { AGENT_DIR, AgentProcess, WORKER_ENTRY } from './harness.js';

const FULL = {
  SESSION_ID: 'b2d4c6e8-0000-4000-8000-000000000001',
  ROOM_NAME: 'video-b2d4c6e8-0000-4000-8000-000000000001',
  CATEGORY_ID: 'c1',
  LIVEKIT_URL: 'wss://example.livekit.cloud',
  LIVEKIT_API_KEY: 'APIabc',
  LIVEKIT_API_SECRET: 'lk-secret-value-123456',
  CATEGORIES_TABLE: 'categories',
  SESSIONS_TABLE: 'sessions',
  SAFETY_ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:counselvideo-safety-alerts',
  AWS_REGION: 'eu-west-1',
  BEY_AVATAR_ID: 'avatar-1',
  BEY_API_KEY: 'bey-secret-value-123',
  OPENAI_API_KEY: 'sk-secret-value-123',
};

describe('loadConfig', () => {
  test('accepts a complete environment and applies defaults', () => {
    const cfg = loadConfig(FULL);
    assert.equal(cfg.maxDurationSeconds, 3600);
    assert.equal(cfg.studentJoinTimeoutSeconds, 300);
    assert.equal(cfg.openaiRealtimeModel, 'gpt-realtime');
    assert.equal(cfg.openaiVoice, 'marin');
    assert.equal(cfg.beyApiUrl, undefined);
    assert.equal(cfg.openaiBaseUrl, undefined);
    assert.equal(cfg.avatarJoinTimeoutSeconds, 30);
    assert.equal(cfg.studentRejoinGraceSeconds, 20);
    assert.equal(cfg.wrapUpNoticeSeconds, 120);
    assert.equal(cfg.realtimeSessionMaxSeconds, 1200);
    assert.equal(cfg.sessionsTable, 'sessions');
    assert.equal(cfg.safetyAlertTopicArn, FULL.SAFETY_ALERT_TOPIC_ARN);
    assert.equal(cfg.safetyGraceSeconds, 900);
    assert.equal(cfg.replacement, false);
  });

  test('AGENT_REPLACEMENT: the webhook launches a replacement with true; anything but true/false is refused', () => {
    assert.equal(loadConfig({ ...FULL, AGENT_REPLACEMENT: 'true' }).replacement, true);
    assert.equal(loadConfig({ ...FULL, AGENT_REPLACEMENT: 'false' }).replacement, false);
    assert.throws(() => loadConfig({ ...FULL, AGENT_REPLACEMENT: 'yes' }), /AGENT_REPLACEMENT \(must be true or false\)/);
  });

  test('the safety alert topic must be an SNS topic ARN; the safety grace may be 0 (off)', () => {
    for (const bad of ['counselvideo-safety-alerts', 'arn:aws:sqs:eu-west-1:123456789012:q', 'arn:aws:sns:eu-west-1:1234:t', 'https://sns.example']) {
      assert.throws(() => loadConfig({ ...FULL, SAFETY_ALERT_TOPIC_ARN: bad }), /SAFETY_ALERT_TOPIC_ARN \(must be an SNS topic ARN/, bad);
    }
    assert.equal(loadConfig({ ...FULL, SAFETY_ALERT_TOPIC_ARN: 'arn:aws-us-gov:sns:us-gov-west-1:123456789012:a.fifo' }).safetyAlertTopicArn.endsWith('.fifo'), true);
    assert.equal(loadConfig({ ...FULL, AGENT_SAFETY_GRACE_SECONDS: '0' }).safetyGraceSeconds, 0);
    assert.throws(() => loadConfig({ ...FULL, AGENT_SAFETY_GRACE_SECONDS: '-5' }), ConfigError);
    assert.throws(() => loadConfig({ ...FULL, AWS_ENDPOINT_URL_SNS: 'not a url' }), /AWS_ENDPOINT_URL_SNS/);
  });

  test('reads optional variables', () => {
    const cfg = loadConfig({
      ...FULL,
      OPENAI_REALTIME_MODEL: 'gpt-realtime-mini',
      OPENAI_VOICE: 'cedar',
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
      BEY_API_URL: 'http://127.0.0.1:8',
      AGENT_MAX_DURATION_SECONDS: '900',
      AGENT_STUDENT_JOIN_TIMEOUT_SECONDS: '60',
      AGENT_AVATAR_JOIN_TIMEOUT_SECONDS: '45',
      AGENT_STUDENT_REJOIN_GRACE_SECONDS: '25',
      AGENT_WRAPUP_NOTICE_SECONDS: '0',
      AGENT_REALTIME_SESSION_MAX_SECONDS: '3300',
    });
    assert.equal(cfg.avatarJoinTimeoutSeconds, 45);
    assert.equal(cfg.studentRejoinGraceSeconds, 25);
    assert.equal(cfg.wrapUpNoticeSeconds, 0, '0 turns the notice off');
    assert.equal(cfg.realtimeSessionMaxSeconds, 3300);
    assert.equal(cfg.openaiRealtimeModel, 'gpt-realtime-mini');
    assert.equal(cfg.openaiVoice, 'cedar');
    assert.equal(cfg.maxDurationSeconds, 900);
    assert.equal(cfg.studentJoinTimeoutSeconds, 60);
  });

  test('names every missing and invalid variable at once', () => {
    const env: Record<string, string> = { ...FULL, AGENT_MAX_DURATION_SECONDS: '1.5', LIVEKIT_URL: 'ftp://x', BEY_API_URL: 'not a url' };
    delete env.OPENAI_API_KEY;
    delete env.BEY_API_KEY;
    env.ROOM_NAME = '  ';
    let err: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.missing.sort(), ['BEY_API_KEY', 'OPENAI_API_KEY', 'ROOM_NAME']);
    assert.deepEqual(err.invalid.map((i) => i.name).sort(), ['AGENT_MAX_DURATION_SECONDS', 'BEY_API_URL', 'LIVEKIT_URL']);
    assert.ok(!err.message.includes(FULL.LIVEKIT_API_SECRET));
  });

  test('durations must be whole seconds between 1 and 86400', () => {
    for (const bad of ['0', '-1', '1.5', 'abc', '86401', '99999999999']) {
      assert.throws(() => loadConfig({ ...FULL, AGENT_MAX_DURATION_SECONDS: bad }), ConfigError, bad);
    }
    assert.equal(loadConfig({ ...FULL, AGENT_MAX_DURATION_SECONDS: '86400' }).maxDurationSeconds, 86400);
    for (const name of ['AGENT_AVATAR_JOIN_TIMEOUT_SECONDS', 'AGENT_STUDENT_REJOIN_GRACE_SECONDS']) {
      assert.throws(() => loadConfig({ ...FULL, [name]: '0' }), ConfigError, name);
    }
    assert.throws(() => loadConfig({ ...FULL, AGENT_WRAPUP_NOTICE_SECONDS: '-1' }), ConfigError);
  });

  test('STACK_NAME: the metrics\' Stack dimension, "local" by default, a stack name in both entries', () => {
    assert.equal(loadConfig(FULL).stackName, 'local');
    assert.equal(loadConfig({ ...FULL, STACK_NAME: 'counselvideo-prod' }).stackName, 'counselvideo-prod');
    for (const bad of ['1stack', 'stack_name', 'stäck', 'a'.repeat(129)]) {
      for (const load of [loadConfig, loadWorkerConfig]) {
        assert.throws(
          () => load({ ...FULL, STACK_NAME: bad }),
          (err: unknown) => err instanceof ConfigError && err.invalid.some((i) => i.name === 'STACK_NAME'),
          bad,
        );
      }
    }
  });

  test('a Realtime connection must stay under the 60-minute OpenAI session cap', () => {
    for (const bad of ['0', '3301', '3600']) {
      assert.throws(() => loadConfig({ ...FULL, AGENT_REALTIME_SESSION_MAX_SECONDS: bad }), /AGENT_REALTIME_SESSION_MAX_SECONDS \(must be a whole number of seconds between 1 and 3300\)/, bad);
    }
  });

  test('the log scrubber removes secret values', () => {
    const scrub = scrubber(['sk-secret-value-123', 'abc']);
    assert.equal(scrub('{"msg":"key sk-secret-value-123 x"}'), '{"msg":"key [REDACTED] x"}');
    assert.equal(scrub('abc'), 'abc', 'values shorter than 4 characters are not treated as secrets');
  });
});

describe('agent process with a bad environment', () => {
  test('missing keys: exit code 2 and one JSON line naming every missing variable', async () => {
    const env: Record<string, string> = { ...FULL };
    delete env.OPENAI_API_KEY;
    delete env.BEY_API_KEY;
    delete env.LIVEKIT_API_SECRET;
    const agent = new AgentProcess(env);
    assert.equal(await agent.waitForExit(30_000), 2, agent.tail());
    const lines = agent.lines();
    assert.equal(lines.length, 1, agent.tail());
    const [line] = lines;
    assert.equal(line.level, 'fatal');
    assert.equal(line.event, 'config_error');
    assert.equal(line.session_id, FULL.SESSION_ID);
    assert.deepEqual((line.missing as string[]).sort(), ['BEY_API_KEY', 'LIVEKIT_API_SECRET', 'OPENAI_API_KEY']);
    assert.match(String(line.msg), /OPENAI_API_KEY/);
    assert.equal(agent.stderr.trim(), '');
    for (const s of [FULL.LIVEKIT_API_KEY]) assert.ok(!agent.stdout.includes(s));
  });

  test('empty environment: every required variable is named', async () => {
    const agent = new AgentProcess({});
    assert.equal(await agent.waitForExit(30_000), 2, agent.tail());
    const lines = agent.lines();
    assert.equal(lines.length, 1, agent.tail());
    assert.equal(lines[0].session_id, null);
    assert.deepEqual((lines[0].missing as string[]).sort(), Object.keys(FULL).sort());
  });

  test('invalid duration: exit code 2, names the variable', async () => {
    const agent = new AgentProcess({ ...FULL, AGENT_STUDENT_JOIN_TIMEOUT_SECONDS: '-5' });
    assert.equal(await agent.waitForExit(30_000), 2, agent.tail());
    const [line] = agent.lines();
    assert.deepEqual((line.invalid as { name: string }[]).map((i) => i.name), ['AGENT_STUDENT_JOIN_TIMEOUT_SECONDS']);
  });
});

const WORKER_ENV: Record<string, string> = { ...FULL };
delete WORKER_ENV.SESSION_ID;
delete WORKER_ENV.ROOM_NAME;
delete WORKER_ENV.CATEGORY_ID;

describe('loadWorkerConfig', () => {
  test('needs no per-session variables and applies the worker defaults', () => {
    const cfg = loadWorkerConfig(WORKER_ENV);
    assert.equal(cfg.agentName, 'counselor');
    assert.equal(cfg.healthHost, '127.0.0.1');
    assert.equal(cfg.healthPort, 8081);
    assert.equal(cfg.earlyAvatarNoShowSeconds, 60);
    assert.equal(cfg.ecsAgentUri, undefined);
    assert.equal(cfg.maxDurationSeconds, 3600);
    assert.ok(!('sessionId' in cfg));
  });

  test('reads the worker variables', () => {
    const cfg = loadWorkerConfig({
      ...WORKER_ENV,
      LIVEKIT_AGENT_NAME: 'counselor-eu',
      AGENT_HEALTH_HOST: '0.0.0.0',
      AGENT_HEALTH_PORT: '9101',
      AGENT_EARLY_AVATAR_NO_SHOW_SECONDS: '0',
      ECS_AGENT_URI: 'http://169.254.170.2/api/abc-123',
    });
    assert.equal(cfg.agentName, 'counselor-eu');
    assert.equal(cfg.healthHost, '0.0.0.0');
    assert.equal(cfg.healthPort, 9101);
    assert.equal(cfg.earlyAvatarNoShowSeconds, 0, '0 turns the early avatar off');
    assert.equal(cfg.ecsAgentUri, 'http://169.254.170.2/api/abc-123');
  });

  test('names every missing and invalid worker variable at once', () => {
    const env: Record<string, string> = {
      ...WORKER_ENV,
      LIVEKIT_AGENT_NAME: 'bad name',
      AGENT_HEALTH_PORT: '70000',
      AGENT_EARLY_AVATAR_NO_SHOW_SECONDS: '-1',
      ECS_AGENT_URI: 'not a url',
    };
    delete env.OPENAI_API_KEY;
    let err: unknown;
    try {
      loadWorkerConfig(env);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.missing, ['OPENAI_API_KEY']);
    assert.deepEqual(
      err.invalid.map((i) => i.name).sort(),
      ['AGENT_EARLY_AVATAR_NO_SHOW_SECONDS', 'AGENT_HEALTH_PORT', 'ECS_AGENT_URI', 'LIVEKIT_AGENT_NAME'],
    );
  });
});

describe('VARIABLES, the contract of both entries', () => {
  const rows = Object.entries(VARIABLES) as [string, VariableSpec][];

  test('each entry validates its own rows only', () => {
    // The worker's rows do not concern the direct entry, and the per-session ones not the worker.
    const direct = loadConfig({ ...FULL, AGENT_HEALTH_PORT: 'not a port', LIVEKIT_AGENT_NAME: 'bad name' });
    assert.equal(direct.sessionId, FULL.SESSION_ID);
    assert.ok(!('healthPort' in direct));
    const worker = loadWorkerConfig({ ...WORKER_ENV, SESSION_ID: 'bad id!', ROOM_NAME: '' });
    assert.equal(worker.healthPort, 8081);
    // Without them, the direct entry names exactly its per-session rows as missing.
    const err = (() => {
      try {
        loadConfig(WORKER_ENV);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof ConfigError);
    const perSession = rows.filter(([, v]) => v.entry === 'direct' && v.required).map(([k]) => k);
    assert.deepEqual(err.missing.sort(), perSession.sort());
    assert.deepEqual(perSession.sort(), ['CATEGORY_ID', 'ROOM_NAME', 'SESSION_ID']);
  });

  test('rows are well-formed: entries known, secrets required, durations bounded', () => {
    for (const [name, v] of rows) {
      assert.ok(v.entry === undefined || v.entry === 'direct' || v.entry === 'worker', name);
      if (v.secret) assert.ok(v.required && v.entry === undefined, `${name}: a secret both entries need`);
      if (v.seconds) assert.ok(typeof v.maxSeconds === 'number', `${name}: maxSeconds`);
      assert.ok(!(v.required && v.default !== undefined), `${name}: required with a default`);
    }
    assert.deepEqual([...SECRET_VARIABLES].sort(), ['BEY_API_KEY', 'LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET', 'OPENAI_API_KEY']);
  });

  // (The worker's private COUNSELVIDEO_WORKER_DIR, set for the job processes it forks, is no row.)
  test('every variable the agent reads by name is a row', () => {
    const dir = join(AGENT_DIR, 'src');
    const read = new Set<string>();
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      // Reads only: an assignment (src/emf-environment.ts sets the EMF library's own variable) reads nothing.
      for (const m of readFileSync(join(dir, file), 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b(?!\s*=[^=])/g)) read.add(m[1]);
    }
    assert.ok(read.has('LOG_LEVEL') && read.has('SESSION_ID'), `scan found ${[...read]}`);
    for (const name of read) assert.ok(name in VARIABLES, `${name} is read but not a row of VARIABLES`);
  });
});

describe('worker process with a bad environment', () => {
  test('missing keys: exit code 2 and one JSON line naming every missing variable', async () => {
    const env: Record<string, string> = { ...WORKER_ENV };
    delete env.LIVEKIT_URL;
    delete env.BEY_API_KEY;
    const worker = new AgentProcess(env, { entry: WORKER_ENTRY });
    assert.equal(await worker.waitForExit(30_000), 2, worker.tail());
    const lines = worker.lines();
    assert.equal(lines.length, 1, worker.tail());
    assert.equal(lines[0].level, 'fatal');
    assert.equal(lines[0].event, 'config_error');
    assert.equal(lines[0].component, 'worker');
    assert.deepEqual((lines[0].missing as string[]).sort(), ['BEY_API_KEY', 'LIVEKIT_URL']);
    assert.equal(worker.stderr.trim(), '');
    assert.ok(!worker.stdout.includes(FULL.LIVEKIT_API_SECRET));
  });
});
