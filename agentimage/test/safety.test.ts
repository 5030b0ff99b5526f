// Unit tests of the crisis escalation: the phrase backstop, the monitor's once-per-session rules, the
// maximum-duration extension, and the staff alert over the wire to the SNS stand-in.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, mock, test } from 'node:test';
import { SNSClient } from '@aws-sdk/client-sns';
import raw from '../src/crisis-phrases.json' with { type: 'json' };
import { CRISIS_PHRASES, matchCrisisPhrase, normalizeSpeech, parsePhraseList } from '../src/crisis-phrases.js';
import { createLogger } from '../src/logger.js';
import { StaffAlerter, alertSubject, alertText, sessionTime, type SafetyAlert, type SafetyFlag } from '../src/safety-aws.js';
import { CRISIS_RESOURCES, SafetyMonitor, safetyInstructions, safetyTool, TOOL_RESULT } from '../src/safety.js';
import { SessionLimit, goodbyeInstructions } from '../src/session-wrapup.js';
import { SnsStandin, messageFor } from '../src/standins/sns.js';
import { AGENT_DIR, waitUntil } from './harness.js';

describe('crisis phrases', () => {
  test('the list is reviewed data: sources, review status and a sane shape', () => {
    assert.ok(raw.review.sources.length >= 1);
    assert.match(raw.review.clinical_review, /\S/);
    assert.match(raw.review.engineering_review, /\d{4}-\d{2}-\d{2}/);
    assert.ok(CRISIS_PHRASES.phrases.length >= 20);
    const texts = CRISIS_PHRASES.phrases.map((p) => p.text);
    assert.equal(new Set(texts).size, texts.length, 'duplicate phrase');
  });

  test('every phrase matches itself inside a sentence, with its own kind and severity', () => {
    for (const p of CRISIS_PHRASES.phrases) {
      const m = matchCrisisPhrase(`Honestly, lately ${p.text}, and I am scared.`);
      assert.ok(m, `"${p.text}" did not match`);
      // A more severe phrase may overlap ("took a bunch of pills" inside "swallowed a bunch of pills").
      assert.ok(m.severity === p.severity || m.kind === p.kind, `"${p.text}" matched as ${JSON.stringify(m)}`);
    }
  });

  test('case, punctuation and apostrophes do not matter; words must be whole', () => {
    assert.deepEqual(matchCrisisPhrase('I WANT TO KILL MYSELF!!!'), { kind: 'self_harm', severity: 'urgent' });
    assert.deepEqual(matchCrisisPhrase('I don\u2019t want to live anymore.'), { kind: 'self_harm', severity: 'concern' });
    assert.deepEqual(matchCrisisPhrase('i dont want to live anymore'), { kind: 'self_harm', severity: 'concern' });
    assert.deepEqual(matchCrisisPhrase('I think I\'m...suicidal?'), { kind: 'self_harm', severity: 'urgent' });
    assert.equal(matchCrisisPhrase('He hits me up every weekend to hang out'), undefined);
    assert.deepEqual(matchCrisisPhrase('when he gets angry he hits me'), { kind: 'abuse', severity: 'urgent' });
    assert.equal(matchCrisisPhrase('I am going to end my lifeguard shift early'), undefined);
    assert.equal(matchCrisisPhrase('killmyself'), undefined);
    assert.equal(normalizeSpeech("  Don’t — STOP!  it's fine "), 'dont stop its fine');
  });

  test('negations just before a negatable phrase, hyperbole and third-person talk do not match', () => {
    for (const s of [
      'I would never kill myself, I just need a plan for finals.',
      "I'm not going to hurt myself.",
      "I don't want to die, I want to pass chemistry.",
      'This exam is killing me.',
      'I could kill him for eating my leftovers.',
      "I'm dying to see the game this weekend.",
      "My friend's suicide last year still hurts.",
      'We had suicide prevention training in orientation.',
      'It beats me why the registrar closed early.',
    ]) {
      assert.equal(matchCrisisPhrase(s), undefined, s);
    }
  });

  test('a negation elsewhere in the sentence does not hide the warning sign; some signs are negations', () => {
    assert.deepEqual(matchCrisisPhrase("I don't know anymore, I just want to die"), { kind: 'self_harm', severity: 'concern' });
    assert.deepEqual(matchCrisisPhrase("I can't stop hurting myself"), { kind: 'self_harm', severity: 'urgent' });
    assert.deepEqual(matchCrisisPhrase('I feel like there is no reason to live'), { kind: 'self_harm', severity: 'concern' });
    assert.deepEqual(matchCrisisPhrase("I'm not safe at home"), { kind: 'abuse', severity: 'concern' });
  });

  test('the most severe phrase of a transcript wins', () => {
    assert.deepEqual(matchCrisisPhrase('I want to die and I took too many pills an hour ago'), {
      kind: 'medical_emergency',
      severity: 'imminent',
    });
  });

  test('a malformed list is refused', () => {
    const good = { negation_window_words: 3, negations: ['not'], phrases: [{ text: 'a b', kind: 'abuse', severity: 'urgent', negatable: true }] };
    assert.doesNotThrow(() => parsePhraseList(good));
    assert.throws(() => parsePhraseList({ ...good, phrases: [] }), /no phrases/);
    assert.throws(() => parsePhraseList({ ...good, phrases: [{ ...good.phrases[0], kind: 'sadness' }] }), /kind/);
    assert.throws(() => parsePhraseList({ ...good, phrases: [{ ...good.phrases[0], severity: 'high' }] }), /severity/);
    assert.throws(() => parsePhraseList({ ...good, phrases: [{ ...good.phrases[0], text: '!!' }] }), /text/);
    assert.throws(() => parsePhraseList({ ...good, negation_window_words: -1 }), /negation_window_words/);
    assert.throws(() => parsePhraseList({ ...good, phrases: [{ ...good.phrases[0], unless_next: 'up' }] }), /unless_next/);
  });
});

describe('prompt, tool and card', () => {
  test('the prompt addition names the tool, keeps the crisis guidance and covers students outside the US', () => {
    const s = safetyInstructions();
    assert.match(s, /flag_safety_concern/);
    assert.match(s, /988/);
    assert.match(s, /911/);
    assert.match(s, /outside the United States, tell them to call their local emergency number/);
    assert.match(s, /campus counseling/);
    assert.match(s, /Stay with them/);
    assert.match(s, /does not end or pause the conversation/);
  });

  test('the tool validates kind and severity, raises a model concern and answers so the model goes on', async () => {
    const raised: unknown[] = [];
    const t = safetyTool((c) => raised.push(c));
    assert.equal(t.name, 'flag_safety_concern');
    const out = await t.execute({ kind: 'abuse', severity: 'imminent' }, {} as never);
    assert.equal(out, TOOL_RESULT);
    assert.deepEqual(raised, [{ kind: 'abuse', severity: 'imminent', source: 'model' }]);
    const schema = t.parameters as unknown as { safeParse: (v: unknown) => { success: boolean } };
    assert.equal(schema.safeParse({ kind: 'abuse', severity: 'imminent' }).success, true);
    assert.equal(schema.safeParse({ kind: 'sad', severity: 'imminent' }).success, false);
    assert.equal(schema.safeParse({ kind: 'abuse' }).success, false);
  });

  test('the card lists 988, 911, campus counseling and local emergency services outside the US', () => {
    const text = JSON.stringify(CRISIS_RESOURCES);
    for (const s of ['988', '911', 'Campus counseling', 'Outside the US', 'local emergency number']) assert.ok(text.includes(s), s);
  });

  test('the goodbye of a flagged session repeats the resources', () => {
    assert.match(goodbyeInstructions({ safetyConcern: true }), /988.*911.*local emergency number.*campus/s);
    assert.doesNotMatch(goodbyeInstructions(), /988/);
  });
});

function fakeMonitor(over: { record?: (f: SafetyFlag) => Promise<{ first: boolean; count: number }>; alert?: (a: SafetyAlert) => Promise<string> } = {}) {
  const calls = { cards: 0, records: [] as SafetyFlag[], alerts: [] as SafetyAlert[], extended: 0 };
  let count = 0;
  let firstId: string | undefined;
  const logger = createLogger({ sessionId: 's-1', secrets: [], level: 'silent' });
  const monitor = new SafetyMonitor({
    sessionId: 's-1',
    category: { id: 'c-1', name: 'Academic Advising' },
    logger,
    record:
      over.record ??
      (async (f) => {
        calls.records.push(f);
        firstId ??= f.id;
        return { first: firstId === f.id, count: ++count };
      }),
    alert: async (a) => {
      calls.alerts.push(a);
      return over.alert ? over.alert(a) : 'm-1';
    },
    showResources: async () => {
      calls.cards++;
    },
    onFirstConcern: () => calls.extended++,
  });
  return { monitor, calls };
}

describe('safety monitor', () => {
  test('first concern: one card, one record, one alert, one extension; later ones are only counted', async () => {
    const { monitor, calls } = fakeMonitor();
    monitor.raise({ kind: 'self_harm', severity: 'concern', source: 'phrase_list' });
    monitor.raise({ kind: 'self_harm', severity: 'urgent', source: 'model' });
    await monitor.settle();
    monitor.raise({ kind: 'abuse', severity: 'urgent', source: 'model' });
    await monitor.settle();
    assert.equal(monitor.flagged, true);
    assert.equal(calls.cards, 1);
    assert.equal(calls.extended, 1);
    assert.equal(calls.records.length, 3);
    assert.equal(calls.alerts.length, 1);
    const a = calls.alerts[0];
    assert.deepEqual(Object.keys(a).sort(), [
      'category_id', 'category_name', 'flag_id', 'flagged_at', 'kind', 'recorded', 'session_id', 'severity', 'source', 'type', 'version',
    ]);
    assert.equal(a.flag_id, calls.records[0].id);
    assert.equal(a.kind, 'self_harm');
    assert.equal(a.severity, 'concern');
    assert.equal(a.recorded, true);
    assert.match(a.flagged_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  test('a session another agent process already flagged gets no second alert', async () => {
    const { monitor, calls } = fakeMonitor({ record: async () => ({ first: false, count: 2 }) });
    monitor.raise({ kind: 'self_harm', severity: 'urgent', source: 'model' });
    await monitor.settle();
    assert.equal(calls.alerts.length, 0);
    assert.equal(calls.cards, 1, 'the student still gets the card');
  });

  test('a failed record still alerts (once), saying it was not recorded', async () => {
    const { monitor, calls } = fakeMonitor({
      record: async () => {
        throw new Error('DynamoDB unavailable');
      },
    });
    monitor.raise({ kind: 'medical_emergency', severity: 'imminent', source: 'phrase_list' });
    monitor.raise({ kind: 'medical_emergency', severity: 'imminent', source: 'model' });
    await monitor.settle();
    assert.equal(calls.alerts.length, 1);
    assert.equal(calls.alerts[0].recorded, false);
  });

  test('a failed alert is sent again with the next concern', async () => {
    let fail = true;
    const { monitor, calls } = fakeMonitor({
      alert: async () => {
        if (fail) throw new Error('SNS unavailable');
        return 'm-2';
      },
    });
    monitor.raise({ kind: 'harm_to_others', severity: 'urgent', source: 'model' });
    await monitor.settle();
    fail = false;
    monitor.raise({ kind: 'harm_to_others', severity: 'urgent', source: 'phrase_list' });
    await monitor.settle();
    assert.equal(calls.alerts.length, 2);
  });

  test('the card is sent again to a replaced connection of a flagged student only', async () => {
    const { monitor, calls } = fakeMonitor();
    monitor.resendResources();
    assert.equal(calls.cards, 0);
    monitor.raise({ kind: 'abuse', severity: 'concern', source: 'model' });
    monitor.resendResources();
    await monitor.settle();
    assert.equal(calls.cards, 2);
  });

  test('times are stored fixed-width with nanoseconds, like the Go side', () => {
    assert.equal(sessionTime(new Date('2026-01-02T03:04:05.678Z')), '2026-01-02T03:04:05.678000000Z');
  });
});

describe('logs', () => {
  test("fields the framework marks as conversation content (lk.pii.*) are redacted, also in child loggers", () => {
    const logger = join(AGENT_DIR, 'dist-test', 'src', 'logger.js');
    const script =
      `const { createLogger } = await import(${JSON.stringify(logger)});` +
      `const l = createLogger({ sessionId: 's-1', secrets: [], level: 'debug' });` +
      `l.debug({ 'lk.pii.transcript': 'i want to end my life' }, 'end of user turn');` +
      `l.child({ source: 'livekit-agents' }).info({ 'lk.pii.user_input': 'my partner hits me', kept: 1 }, 'x');`;
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.equal(lines[0]['lk.pii.transcript'], '[REDACTED]');
    assert.equal(lines[1]['lk.pii.user_input'], '[REDACTED]');
    assert.equal(lines[1].kept, 1);
    assert.ok(!out.stdout.includes('end my life') && !out.stdout.includes('hits me'));
  });
});

describe('session limit', () => {
  test('the limit is extended once, before it is reached, and the notice moves with it', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    try {
      const events: string[] = [];
      const session = { generateReply: () => events.push('notice') } as never;
      const logger = createLogger({ sessionId: 's', secrets: [], level: 'silent' });
      const limit = new SessionLimit({ maxDurationSeconds: 600, noticeSeconds: 120, conversation: () => session, onLimit: () => events.push('limit'), logger });
      limit.start();
      mock.timers.tick(100_000);
      assert.equal(limit.extendOnce(300, 'safety_concern'), true);
      assert.equal(limit.extendOnce(300, 'safety_concern'), false, 'only once');
      mock.timers.tick(500_000); // 600 s: the old limit
      assert.deepEqual(events, []);
      mock.timers.tick(180_000); // 780 s: 120 s before the new limit
      assert.deepEqual(events, ['notice']);
      mock.timers.tick(120_000); // 900 s
      assert.deepEqual(events, ['notice', 'limit']);
      assert.equal(limit.extendOnce(300, 'safety_concern'), false);
    } finally {
      mock.timers.reset();
    }
  });

  test('a limit already reached is not extended; a zero grace extends nothing', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    try {
      let reached = 0;
      const logger = createLogger({ sessionId: 's', secrets: [], level: 'silent' });
      const limit = new SessionLimit({ maxDurationSeconds: 60, noticeSeconds: 0, conversation: () => undefined, onLimit: () => reached++, logger });
      limit.start();
      assert.equal(limit.extendOnce(0, 'safety_concern'), false);
      mock.timers.tick(60_000);
      assert.equal(reached, 1);
      assert.equal(limit.extendOnce(300, 'safety_concern'), false);
      mock.timers.tick(600_000);
      assert.equal(reached, 1);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('staff alert over the wire (SNS stand-in, Query protocol)', () => {
  const alert: SafetyAlert = {
    type: 'counselvideo.safety_alert',
    version: 1,
    session_id: 'sess-1',
    category_id: 'cat-1',
    category_name: 'Mental Well-being',
    kind: 'self_harm',
    severity: 'imminent',
    source: 'model',
    flagged_at: '2026-01-02T03:04:05.678000000Z',
    flag_id: 'flag-1',
    recorded: true,
  };

  test('Publish: JSON for HTTPS, text for e-mail, kind and severity as attributes; a 5xx is retried', async () => {
    const sns = new SnsStandin();
    await sns.listen();
    // The SDK finds the endpoint through AWS_ENDPOINT_URL_SNS, as the agent's client does.
    const saved = process.env.AWS_ENDPOINT_URL_SNS;
    process.env.AWS_ENDPOINT_URL_SNS = sns.url;
    const client = new SNSClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 4 });
    try {
      sns.failNext(500);
      const id = await new StaffAlerter(client, 'arn:aws:sns:us-east-1:123456789012:alerts').publish(alert);
      assert.equal(sns.published.length, 1);
      const m = sns.published[0];
      assert.equal(id, m.messageId);
      assert.deepEqual(sns.requests.map((r) => r.status), [500, 200]);
      assert.equal(m.signedService, 'sns');
      assert.equal(m.topicArn, 'arn:aws:sns:us-east-1:123456789012:alerts');
      assert.equal(m.subject, alertSubject(alert));
      assert.ok(m.subject!.length <= 100 && /^[\x20-\x7e]+$/.test(m.subject!));
      assert.deepEqual(JSON.parse(messageFor(m, 'https')), alert);
      assert.deepEqual(JSON.parse(messageFor(m, 'sqs')), alert, 'every other protocol gets the JSON (default)');
      assert.equal(messageFor(m, 'email'), alertText(alert));
      assert.match(messageFor(m, 'email'), /Session id: sess-1/);
      assert.deepEqual(m.attributes, { kind: { dataType: 'String', value: 'self_harm' }, severity: { dataType: 'String', value: 'imminent' } });
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_SNS;
      else process.env.AWS_ENDPOINT_URL_SNS = saved;
      client.destroy();
      await sns.close();
    }
  });

  test('the stand-in refuses what SNS refuses', async () => {
    const sns = new SnsStandin();
    await sns.listen();
    try {
      const post = (body: string, headers: Record<string, string> = {}) =>
        fetch(sns.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
      const auth = { authorization: 'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=x' };
      assert.equal((await post('Action=Publish&Version=2010-03-31&TopicArn=a&Message=b')).status, 403);
      assert.equal((await post('Action=ListTopics&Version=2010-03-31', auth)).status, 400);
      assert.equal((await post('Action=Publish&Version=2010-03-31&TopicArn=a', auth)).status, 400);
      assert.equal((await post('Action=Publish&Version=2010-03-31&TopicArn=a&MessageStructure=json&Message=%7B%7D', auth)).status, 400);
      await waitUntil(() => sns.requests.length === 4, 'four requests');
      assert.equal(sns.published.length, 0);
    } finally {
      await sns.close();
    }
  });
});
