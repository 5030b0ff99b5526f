// Crisis escalation end to end (node dist/main.js against livekit-server, DynamoDB Local, the Realtime,
// Bey and SNS stand-ins): the model's tool call and the phrase backstop each flag the session once on
// its DynamoDB item, publish one staff alert within 5 s of the student's turn, and put the crisis
// resources on the student's screen; the counselor keeps talking; a normal conversation raises nothing;
// a flagged session's maximum duration is extended once; no transcript text or student name leaks.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { CRISIS_RESOURCES, SAFETY_TOOL_NAME, SAFETY_TOPIC, TOOL_RESULT } from '../src/safety.js';
import { SAFETY_KINDS, SAFETY_SEVERITIES } from '../src/safety-types.js';
import { AFTER_TOOL_TEXT, GOODBYE_TEXT, type RealtimeConnection, promptedWith } from '../src/standins/realtime.js';
import { messageFor, type PublishedMessage } from '../src/standins/sns.js';
import { AgentStack, CAT_ACADEMIC, type Student } from './fixture.js';
import { ALERT_TOPIC_ARN, SESSIONS_TABLE, getSession, putSession, sleep, waitUntil, type AgentProcess } from './harness.js';

const stack = new AgentStack();
before(() => stack.start());
after(() => stack.stop());

/** Shows up nowhere but in the student's token: it must never reach a log, the record or an alert. */
const STUDENT_NAME = 'Jordan Quillfeather';
/** The alert must reach the staff within this long of the student's turn (issue 12). */
const ALERT_WITHIN_MS = 5_000;

interface Session {
  sessionId: string;
  roomName: string;
  agent: AgentProcess;
  student: Student;
  conn: RealtimeConnection;
}

/** A session with its record in the sessions table, the student in the room and the greeting played. */
async function startSession(extraEnv: Record<string, string> = {}): Promise<Session> {
  const { sessionId, roomName } = await stack.createRoom();
  await putSession(stack.ddb.client, SESSIONS_TABLE, sessionId, CAT_ACADEMIC.category_id);
  // Sessions run one at a time in this file: the connections opened from now on are this session's.
  const known = stack.realtime.connections.length;
  const agent = stack.startAgent(stack.agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id, { AGENT_WRAPUP_NOTICE_SECONDS: '0', ...extraEnv }));
  await agent.waitForLog((l) => l.event === 'agent_joined', 'agent joined');
  const student = await stack.joinStudent(roomName, randomUUID(), STUDENT_NAME);
  await waitUntil(() => !!stack.bey.avatars.find((a) => a.roomName === roomName)?.segments[0]?.ack, 'greeting played', 90_000);
  const conn = stack.realtime.connections.slice(known).find((c) => promptedWith(c, CAT_ACADEMIC.system_prompt));
  assert.ok(conn, 'Realtime connection of this session');
  return { sessionId, roomName, agent, student, conn };
}

function alertsOf(sessionId: string): PublishedMessage[] {
  return stack.sns.published.filter((m) => JSON.parse(messageFor(m, 'https')).session_id === sessionId);
}

function cards(s: Student): { topic?: string; from?: string; text: string }[] {
  return s.data.filter((d) => d.topic === SAFETY_TOPIC);
}

async function item(sessionId: string): Promise<Record<string, AttributeValue>> {
  const it = await getSession(stack.ddb.client, SESSIONS_TABLE, sessionId);
  assert.ok(it, 'session item');
  return it;
}

/** Says `transcript` as the student and waits until the counselor's reply `text` reached them. */
async function say(s: Session, transcript: string, opts: { callTool?: { name: string; arguments: Record<string, unknown> } } = {}): Promise<number> {
  const at = Date.now();
  stack.realtime.simulateStudentSpeech(s.conn, { transcript, respond: true, ...opts });
  return at;
}

async function replyReached(s: Session, text: string, count = 1): Promise<void> {
  await waitUntil(() => s.student.transcripts.filter((t) => t.includes(text)).length >= count, `"${text}" at the student`, 60_000);
}

/** What must hold for every session's traces: no transcript text, no name, anywhere we write. */
async function assertPrivate(s: Session, spoken: string[]): Promise<void> {
  const outputs = [s.agent.stdout, s.agent.stderr, JSON.stringify(await item(s.sessionId)), ...alertsOf(s.sessionId).map((m) => JSON.stringify(m))];
  for (const out of outputs) {
    assert.ok(!out.includes(STUDENT_NAME), 'the student name leaked');
    for (const t of spoken) assert.ok(!out.toLowerCase().includes(t.toLowerCase()), `transcript text leaked: "${t}"`);
  }
  stack.assertCleanLogs(s.agent, s.sessionId);
}

async function endSession(s: Session): Promise<void> {
  await s.student.room.disconnect();
  assert.equal(await s.agent.waitForExit(), 0, s.agent.tail());
}

describe('crisis escalation', () => {
  test('the model calls the tool: one flag, one alert within 5 s, one card, and the counselor goes on', async () => {
    const s = await startSession();
    const first = 'Everything feels pointless lately and I keep thinking about not being here anymore.';
    const t0 = await say(s, first, { callTool: { name: SAFETY_TOOL_NAME, arguments: { kind: 'self_harm', severity: 'urgent' } } });

    // The staff alert: one, in time, with exactly the session's facts.
    await waitUntil(() => alertsOf(s.sessionId).length > 0, 'staff alert published', 30_000);
    const [alert] = alertsOf(s.sessionId);
    assert.ok(alert.receivedAt - t0 <= ALERT_WITHIN_MS, `alert ${alert.receivedAt - t0} ms after the turn`);
    assert.equal(alert.topicArn, ALERT_TOPIC_ARN);
    const body = JSON.parse(messageFor(alert, 'https'));
    assert.deepEqual(
      { ...body, flagged_at: undefined, flag_id: undefined },
      {
        type: 'counselvideo.safety_alert',
        version: 1,
        session_id: s.sessionId,
        category_id: CAT_ACADEMIC.category_id,
        category_name: CAT_ACADEMIC.name,
        kind: 'self_harm',
        severity: 'urgent',
        source: 'model',
        recorded: true,
        flagged_at: undefined,
        flag_id: undefined,
      },
    );
    assert.match(messageFor(alert, 'email'), new RegExp(`Session id: ${s.sessionId}`));

    // The record: the first flag on the session item, counted once; the rest of the item untouched.
    const it = await item(s.sessionId);
    const flag = it.safety_flag?.M;
    assert.ok(flag, 'safety_flag on the session item');
    assert.deepEqual(
      { kind: flag.kind?.S, severity: flag.severity?.S, source: flag.source?.S, id: flag.id?.S, at: flag.at?.S },
      { kind: 'self_harm', severity: 'urgent', source: 'model', id: body.flag_id, at: body.flagged_at },
    );
    assert.match(flag.at!.S!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.equal(it.safety_flag_count?.N, '1');
    assert.equal(it.status?.S, 'active');
    assert.equal(it.user_id?.S, `student-${s.sessionId}`);

    // The student's screen: the crisis resources, once, from the agent.
    await waitUntil(() => cards(s.student).length > 0, 'crisis resources at the student');
    assert.equal(cards(s.student)[0].from, `agent-${s.sessionId}`);
    assert.deepEqual(JSON.parse(cards(s.student)[0].text), CRISIS_RESOURCES);

    // The model got the tool's answer and kept talking: its next reply reached the student.
    await replyReached(s, AFTER_TOOL_TEXT);
    const call = s.conn.functionCalls[0];
    assert.equal(call.name, SAFETY_TOOL_NAME);
    assert.deepEqual(s.conn.functionCallOutputs.find((o) => o.callId === call.callId)?.output, JSON.stringify(TOOL_RESULT));
    // The tool is advertised with its schema, the prompt carries the safety protocol.
    const tool = s.conn.tools.find((t) => t.name === SAFETY_TOOL_NAME) as { parameters: { properties: Record<string, { enum: string[] }>; required: string[] } };
    assert.deepEqual(tool.parameters.properties.kind.enum, [...SAFETY_KINDS]);
    assert.deepEqual(tool.parameters.properties.severity.enum, [...SAFETY_SEVERITIES]);
    assert.deepEqual([...tool.parameters.required].sort(), ['kind', 'severity']);
    assert.ok(s.conn.instructions.at(-1)!.includes('call their local emergency number'));
    await s.agent.waitForLog((l) => l.event === 'max_duration_extended' && l.grace_s === 900, 'maximum duration extended');

    // A later concern (now through the phrase list) is counted, and raises no second alert or card.
    const second = 'Honestly I want to kill myself.';
    await say(s, second);
    await s.agent.waitForLog((l) => l.event === 'safety_flag_recorded' && l.count === 2, 'second concern counted');
    await replyReached(s, 'Could you say a little more about that?');
    assert.equal((await item(s.sessionId)).safety_flag?.M?.source?.S, 'model', 'the first flag won');
    assert.equal((await item(s.sessionId)).safety_flag_count?.N, '2');
    await sleep(500);
    assert.equal(alertsOf(s.sessionId).length, 1);
    assert.equal(cards(s.student).length, 1);
    assert.equal(s.agent.lines().filter((l) => l.event === 'max_duration_extended').length, 1);

    await endSession(s);
    await assertPrivate(s, [first, second, 'kill myself', 'not being here']);
  });

  test('the phrase backstop flags the session when the model does not call the tool', async () => {
    const s = await startSession();
    const spoken = "I don't see the point of any of this. I want to end my life.";
    // SNS has a bad moment: the SDK's retry still delivers the alert, once.
    stack.sns.failNext(503);
    const t0 = await say(s, spoken);
    await waitUntil(() => alertsOf(s.sessionId).length > 0, 'staff alert published', 30_000);
    const [alert] = alertsOf(s.sessionId);
    assert.ok(alert.receivedAt - t0 <= ALERT_WITHIN_MS, `alert ${alert.receivedAt - t0} ms after the turn`);
    const body = JSON.parse(messageFor(alert, 'https'));
    assert.equal(body.source, 'phrase_list');
    assert.equal(body.kind, 'self_harm');
    assert.equal(body.severity, 'urgent');
    assert.deepEqual(alert.attributes.severity, { dataType: 'String', value: 'urgent' });
    const it = await item(s.sessionId);
    assert.equal(it.safety_flag?.M?.source?.S, 'phrase_list');
    assert.equal(it.safety_flag_count?.N, '1');
    await waitUntil(() => cards(s.student).length > 0, 'crisis resources at the student');
    await replyReached(s, 'Could you say a little more about that?');
    assert.equal(s.conn.functionCalls.length, 0, 'the model called no tool');
    await sleep(500);
    assert.equal(alertsOf(s.sessionId).length, 1);
    assert.equal(cards(s.student).length, 1);
    await endSession(s);
    await assertPrivate(s, [spoken, 'end my life']);
  });

  test('DynamoDB hangs at the moment of the flag: the alert still reaches the staff within 5 s, marked not recorded', async () => {
    // Between the agent and DynamoDB Local: everything passes but the flag's UpdateItem, which never answers.
    const held: ServerResponse[] = [];
    const proxy = createServer((req, res) => {
      if (String(req.headers['x-amz-target']).endsWith('.UpdateItem')) {
        req.resume();
        held.push(res);
        return;
      }
      const url = new URL(req.url ?? '/', stack.ddb.endpoint);
      const fwd = httpRequest(url, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      fwd.on('error', () => res.destroy());
      req.pipe(fwd);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const s = await startSession({ AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
      const t0 = await say(s, 'I took too many pills an hour ago.');
      await waitUntil(() => alertsOf(s.sessionId).length > 0, 'staff alert published', 30_000);
      const [alert] = alertsOf(s.sessionId);
      assert.ok(alert.receivedAt - t0 <= ALERT_WITHIN_MS, `alert ${alert.receivedAt - t0} ms after the turn`);
      const body = JSON.parse(messageFor(alert, 'https'));
      assert.equal(body.recorded, false);
      assert.equal(body.kind, 'medical_emergency');
      assert.equal(body.severity, 'imminent');
      assert.ok(held.length >= 1, 'the flag write reached the hanging endpoint');
      await waitUntil(() => cards(s.student).length > 0, 'crisis resources at the student');
      await s.agent.waitForLog((l) => l.event === 'safety_flag_record_failed', 'record failure logged');
      await endSession(s);
      assert.equal(alertsOf(s.sessionId).length, 1);
      await assertPrivate(s, ['too many pills', 'an hour ago']);
    } finally {
      for (const r of held) r.destroy();
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });

  test('a normal conversation, hyperbole and negations included, raises nothing', async () => {
    const s = await startSession();
    const turns = [
      'This statistics class is killing me and the midterm is next week.',
      'I would never hurt myself, I just need a study plan.',
      'My roommate plays music at night and I could kill him, honestly.',
    ];
    for (const [i, t] of turns.entries()) {
      await say(s, t);
      await replyReached(s, 'Could you say a little more about that?', i + 1);
    }
    const it = await item(s.sessionId);
    assert.equal(it.safety_flag, undefined);
    assert.equal(it.safety_flag_count, undefined);
    assert.equal(alertsOf(s.sessionId).length, 0);
    assert.equal(cards(s.student).length, 0);
    assert.equal(s.agent.lines().filter((l) => String(l.event ?? '').startsWith('safety_') || l.event === 'max_duration_extended').length, 0);
    await endSession(s);
    await assertPrivate(s, turns);
  });

  test('a flagged session runs past its maximum once by the grace period, then says a goodbye with the resources', async () => {
    const max = 12;
    const grace = 8;
    const s = await startSession({ AGENT_MAX_DURATION_SECONDS: String(max), AGENT_SAFETY_GRACE_SECONDS: String(grace) });
    await say(s, 'My partner threatened to kill me last night.');
    await s.agent.waitForLog((l) => l.event === 'max_duration_extended', 'maximum duration extended');
    assert.equal(await s.agent.waitForExit(90_000), 0, s.agent.tail());
    const joined = s.agent.find((l) => l.event === 'agent_joined')!;
    const ending = s.agent.find((l) => l.event === 'session_ending')!;
    assert.equal(ending.reason, 'max_duration');
    // Timers never fire early: the session lasted at least the maximum plus the grace.
    assert.ok(Date.parse(String(ending.time)) - Date.parse(String(joined.time)) >= (max + grace) * 1000 - 50, 'ended before max + grace');
    const goodbye = s.conn.responseInstructions.find((i) => i && /goodbye/i.test(i));
    assert.match(goodbye ?? '', /988/);
    assert.match(goodbye ?? '', /local emergency number/);
    await waitUntil(() => s.student.transcripts.some((t) => t.includes(GOODBYE_TEXT)) || s.student.events.some((e) => e.startsWith('disconnected')), 'goodbye or end at the student');
    assert.equal((await item(s.sessionId)).safety_flag?.M?.kind?.S, 'abuse');
    assert.equal(alertsOf(s.sessionId).length, 1);
    await assertPrivate(s, ['threatened to kill me', 'my partner']);
  });
});
