// The agent process when things go wrong at the worst moment, on the real stack (livekit-server,
// DynamoDB Local, stand-ins): an avatar that never arrives, a refused OpenAI reconnect, a stop
// before the session started, the maximum duration reached mid-conversation, and a student whose
// connection is replaced (reload, second tab) or who leaves for good.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DisconnectReason } from '@livekit/rtc-node';
import { BeyStandin, type AvatarBehaviour } from '../src/standins/bey.js';
import { GOODBYE_TEXT, RealtimeStandin, TIME_LEFT_TEXT, replyText, type RealtimeConnection, promptedWith } from '../src/standins/realtime.js';
import { agentMetric } from './emf.js';
import { publishMic, sleep, waitUntil, type AgentProcess } from './harness.js';
import { AgentStack, BEY_KEY, CAT_ACADEMIC, CAT_CAREER, OPENAI_KEY, type Student } from './fixture.js';

const stack = new AgentStack();
const STUDENT_REPLY = replyText(undefined);

before(() => stack.start());
after(() => stack.stop());

/** Starts an agent for a fresh room and joins a student with a microphone once the agent is in. */
async function startSession(extraEnv: Record<string, string> = {}, categoryId = CAT_ACADEMIC.category_id) {
  const { sessionId, roomName } = await stack.createRoom();
  const agent = stack.startAgent(stack.agentEnv(sessionId, roomName, categoryId, extraEnv));
  await agent.waitForLog((l) => l.event === 'agent_joined', 'agent joined');
  const student = await stack.joinStudent(roomName);
  const stopMic = await publishMic(student.room);
  return { sessionId, roomName, agent, student, stopMic };
}

function avatarIn(bey: BeyStandin, roomName: string) {
  return bey.avatars.find((a) => a.roomName === roomName);
}

/** The Realtime connection that serves this agent now (the newest with the category prompt). */
function latestConnection(rt: RealtimeStandin, prompt: string): RealtimeConnection | undefined {
  return rt.connections.filter((c) => c.apiKey === OPENAI_KEY && promptedWith(c, prompt)).at(-1);
}

async function withBey<T>(behaviour: AvatarBehaviour, fn: (bey: BeyStandin) => Promise<T>): Promise<T> {
  const bey = new BeyStandin({ expectedApiKey: BEY_KEY, avatarBehaviour: behaviour });
  await bey.listen();
  try {
    return await fn(bey);
  } finally {
    await bey.close();
  }
}

describe('avatar never arrives', () => {
  for (const [behaviour, waitingFor, hadJoined] of [
    ['never_joins', 'participant', false],
    ['no_video', 'video', true],
  ] as const) {
    test(`Bey accepts but the avatar ${behaviour === 'never_joins' ? 'never joins' : 'never publishes video'}: session fails with avatar_timeout, room deleted`, async () => {
      await withBey(behaviour, async (bey) => {
        const { sessionId, roomName, agent, stopMic } = await startSession({
          BEY_API_URL: bey.url,
          AGENT_AVATAR_JOIN_TIMEOUT_SECONDS: '3',
        });
        assert.equal(await agent.waitForExit(90_000), 1, agent.tail());
        stopMic();
        assert.equal(bey.requests.filter((r) => r.claims?.video?.room === roomName).length, 1, 'avatar never requested');
        const ending = agent.find((l) => l.event === 'session_ending');
        assert.equal(ending?.reason, 'avatar_timeout', agent.tail());
        assert.equal(ending?.waiting_for, waitingFor);
        assert.equal(ending?.had_joined, hadJoined);
        assert.equal(agent.find((l) => l.event === 'agent_exit')?.exit_code, 1);
        assert.equal(await stack.roomExists(roomName), false, 'room still exists');
        if (hadJoined) await waitUntil(() => avatarIn(bey, roomName)!.disconnected, 'avatar removed with the room');
        stack.assertCleanLogs(agent, sessionId);
      });
    });
  }

  test('the avatar leaves mid-session and does not come back: session fails with avatar_timeout', async () => {
    const { sessionId, roomName, agent, stopMic } = await startSession({ AGENT_AVATAR_JOIN_TIMEOUT_SECONDS: '3' });
    await agent.waitForLog((l) => l.event === 'avatar_ready', 'avatar ready');
    await waitUntil(() => !!avatarIn(stack.bey, roomName)?.segments[0]?.ack, 'greeting played');
    await avatarIn(stack.bey, roomName)!.close();
    assert.equal(await agent.waitForExit(90_000), 1, agent.tail());
    stopMic();
    assert.ok(agent.find((l) => l.event === 'avatar_left'), 'avatar departure not noticed');
    const ending = agent.find((l) => l.event === 'session_ending');
    assert.equal(ending?.reason, 'avatar_timeout');
    assert.equal(ending?.waiting_for, 'participant');
    assert.equal(ending?.had_joined, true);
    assert.equal(await stack.roomExists(roomName), false);
    stack.assertCleanLogs(agent, sessionId);
  });
});

describe('OpenAI connection hiccups', () => {
  test('a periodic reconnect refused with 503 is retried; the conversation continues', async () => {
    const rt = new RealtimeStandin({ paceFactor: 0.25, replySeconds: 3 });
    await rt.listen();
    try {
      const { sessionId, roomName, agent, student, stopMic } = await startSession({
        OPENAI_BASE_URL: rt.baseUrl,
        AGENT_REALTIME_SESSION_MAX_SECONDS: '8',
      });
      await waitUntil(() => !!avatarIn(stack.bey, roomName)?.segments[0]?.ack, 'greeting played', 90_000);
      const first = latestConnection(rt, CAT_ACADEMIC.system_prompt)!;
      rt.refuseNextUpgrades(503);
      // The plugin reconnects on its own after AGENT_REALTIME_SESSION_MAX_SECONDS; that attempt is refused.
      await waitUntil(() => rt.refusedUpgrades.length === 1, 'reconnect attempt refused', 90_000);
      await waitUntil(() => latestConnection(rt, CAT_ACADEMIC.system_prompt) !== first, 'reconnected after the refusal', 60_000);
      const conn = latestConnection(rt, CAT_ACADEMIC.system_prompt)!;
      assert.equal(rt.refusedUpgrades[0].apiKey, OPENAI_KEY);
      const retry = await agent.waitForLog((l) => l.event === 'realtime_connect_retry', 'retry logged');
      assert.equal(retry.status, 503);

      // The student still gets answers, on the new connection, and the session goes on.
      const before = student.transcripts.filter((t) => t.includes(STUDENT_REPLY)).length;
      rt.simulateStudentSpeech(conn, { respond: true });
      await waitUntil(
        () => student.transcripts.filter((t) => t.includes(STUDENT_REPLY)).length > before,
        'reply after the reconnect at the student',
        60_000,
      );
      assert.ok(conn.responsesCompleted >= 1);
      await waitUntil(() => conn.inputAudioVoicedBytes > 48_000, 'student audio on the new connection');
      assert.equal(agent.exitCode, undefined, 'the agent ended');
      assert.equal(agent.find((l) => l.event === 'session_ending'), undefined);

      stopMic();
      await student.room.disconnect();
      assert.equal(await agent.waitForExit(), 0, agent.tail());
      stack.assertCleanLogs(agent, sessionId);
      // The refused attempt counts as a retry, the new connection as a reconnect; no error.
      assert.ok(agentMetric(agent.stdout, 'RealtimeConnectRetries').length >= 1);
      assert.ok(agentMetric(agent.stdout, 'RealtimeReconnects').length >= 1);
      assert.equal(agentMetric(agent.stdout, 'RealtimeErrors').length, 0);
    } finally {
      await rt.close();
    }
  });
});

describe('stop before start', () => {
  test('SIGTERM while the category loads: the room is deleted, the agent never joins, exit 0', async () => {
    // A DynamoDB endpoint that takes the request and never answers: the agent is mid category load.
    const held: IncomingMessage[] = [];
    const slowDynamo: Server = createServer((req) => void held.push(req));
    await new Promise<void>((r) => slowDynamo.listen(0, '127.0.0.1', () => r()));
    try {
      const { sessionId, roomName } = await stack.createRoom();
      const agent = stack.startAgent(
        stack.agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id, {
          AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${(slowDynamo.address() as AddressInfo).port}`,
        }),
      );
      await waitUntil(() => held.length > 0, 'category request sent');
      agent.child.kill('SIGTERM');
      assert.equal(await agent.waitForExit(), 0, agent.tail());
      const ending = agent.find((l) => l.event === 'session_ending');
      assert.equal(ending?.reason, 'signal', agent.tail());
      assert.equal(ending?.before_start, true);
      assert.ok(agent.find((l) => l.event === 'room_deleted' && l.msg === 'room deleted'), agent.tail());
      assert.equal(agent.find((l) => l.event === 'agent_joined'), undefined);
      assert.equal(await stack.roomExists(roomName), false, 'room still exists');
      stack.assertCleanLogs(agent, sessionId);
    } finally {
      slowDynamo.closeAllConnections();
      slowDynamo.close();
    }
  });

  test('SIGTERM while the agent is still loading its modules: the room is deleted, exit 0', async () => {
    const { sessionId, roomName } = await stack.createRoom();
    const agent = stack.startAgent(stack.agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id));
    await agent.waitForLog((l) => l.event === 'agent_starting', 'agent starting');
    agent.child.kill('SIGTERM');
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    assert.equal(agent.find((l) => l.event === 'session_ending')?.reason, 'signal', agent.tail());
    assert.equal(await stack.roomExists(roomName), false, 'room still exists');
    stack.assertCleanLogs(agent, sessionId);
  });
});

describe('maximum duration reached mid-conversation', () => {
  test('the counselor mentions the time left, then says goodbye before the room closes', async () => {
    const { sessionId, roomName, agent, student, stopMic } = await startSession({
      AGENT_MAX_DURATION_SECONDS: '16',
      AGENT_WRAPUP_NOTICE_SECONDS: '8',
    });
    assert.equal(await agent.waitForExit(90_000), 0, agent.tail());
    stopMic();
    assert.equal(agent.find((l) => l.event === 'session_ending')?.reason, 'max_duration');
    assert.ok(agent.find((l) => l.event === 'wrapup_notice'), 'no time-left notice');
    assert.ok(agent.find((l) => l.event === 'goodbye_spoken'), `goodbye not played out\n${agent.tail()}`);
    const rtc = latestConnection(stack.realtime, CAT_ACADEMIC.system_prompt)!;
    assert.ok(rtc.responseInstructions.some((i) => /goodbye/i.test(i ?? '')), 'goodbye never requested from the model');

    // The student heard the notice, then the goodbye, then the room closed.
    await waitUntil(() => student.events.some((e) => e.startsWith('disconnected:')), 'student disconnected');
    const notice = student.events.findIndex((e) => e.startsWith('transcript:') && e.includes(TIME_LEFT_TEXT));
    const goodbye = student.events.findIndex((e) => e.startsWith('transcript:') && e.includes(GOODBYE_TEXT));
    const closed = student.events.findIndex((e) => e.startsWith('disconnected:'));
    assert.ok(notice >= 0 && notice < goodbye && goodbye < closed, `expected notice, goodbye, disconnect:\n${student.events.join('\n')}`);
    // The avatar played the goodbye to the end and acknowledged it.
    const goodbyeSeg = avatarIn(stack.bey, roomName)!.segments.at(-1)!;
    assert.equal(goodbyeSeg.ack, 'ok');
    assert.equal(goodbyeSeg.interrupted, false);
    assert.equal(await stack.roomExists(roomName), false);
    stack.assertCleanLogs(agent, sessionId);
  });
});

describe('student reconnects', () => {
  /** Speaks as the student on the current Realtime connection and waits for the reply at `to`. */
  async function replyReaches(to: Student, prompt: string): Promise<void> {
    const before = to.transcripts.filter((t) => t.includes(STUDENT_REPLY)).length;
    stack.realtime.simulateStudentSpeech(latestConnection(stack.realtime, prompt)!, { respond: true });
    await waitUntil(() => to.transcripts.filter((t) => t.includes(STUDENT_REPLY)).length > before, 'reply at the student', 60_000);
  }

  async function assertStudentLeft(agent: AgentProcess, sessionId: string, roomName: string, roomClosedByLivekit: true | undefined) {
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    const ending = agent.find((l) => l.event === 'session_ending');
    assert.equal(ending?.reason, 'student_left');
    assert.equal(ending?.room_closed, roomClosedByLivekit, agent.tail());
    assert.equal(await stack.roomExists(roomName), false);
    stack.assertCleanLogs(agent, sessionId);
  }

  test('a second tab with the same identity replaces the first: the agent stays and talks to the new tab', async () => {
    const { sessionId, roomName, agent, student, stopMic } = await startSession(
      { AGENT_STUDENT_REJOIN_GRACE_SECONDS: '3' },
      CAT_CAREER.category_id,
    );
    await waitUntil(() => !!avatarIn(stack.bey, roomName)?.segments[0]?.ack, 'greeting played');
    const conn = latestConnection(stack.realtime, CAT_CAREER.system_prompt)!;

    const tab2 = await stack.joinStudent(roomName, student.identity);
    const stopMic2 = await publishMic(tab2.room);
    await waitUntil(() => student.events.includes(`disconnected:${DisconnectReason.DUPLICATE_IDENTITY}`), 'first tab replaced');
    stopMic();
    await agent.waitForLog((l) => l.event === 'student_rejoined' || l.event === 'student_replaced', 'agent saw the new tab');
    // The conversation follows the new participant: its microphone reaches the model, replies reach it.
    const voiced = conn.inputAudioVoicedBytes;
    await waitUntil(() => latestConnection(stack.realtime, CAT_CAREER.system_prompt)!.inputAudioVoicedBytes > voiced + 48_000, 'new tab audio at the model');
    await replyReaches(tab2, CAT_CAREER.system_prompt);
    await sleep(4000); // past the 3 s grace window
    assert.equal(agent.exitCode, undefined, `agent ended\n${agent.tail()}`);
    assert.equal(await stack.roomExists(roomName), true);

    // The new tab leaves for good: the agent ends after its grace window and deletes the room.
    stopMic2();
    await tab2.room.disconnect();
    // Grace 3 s < the room's departure timeout 5 s: the agent decides.
    await assertStudentLeft(agent, sessionId, roomName, undefined);
  });

  test('leaving and rejoining within the grace window (a reload): the agent stays', async () => {
    const { sessionId, roomName, agent, student, stopMic } = await startSession({ AGENT_STUDENT_REJOIN_GRACE_SECONDS: '4' });
    await waitUntil(() => !!avatarIn(stack.bey, roomName)?.segments[0]?.ack, 'greeting played');
    stopMic();
    await student.room.disconnect();
    await agent.waitForLog((l) => l.event === 'student_away', 'agent saw the student leave');
    const back = await stack.joinStudent(roomName, student.identity);
    const stopMic2 = await publishMic(back.room);
    await agent.waitForLog((l) => l.event === 'student_rejoined', 'agent saw the student come back');
    await sleep(5000); // past the 4 s grace window
    assert.equal(agent.exitCode, undefined, `agent ended\n${agent.tail()}`);
    await replyReaches(back, CAT_ACADEMIC.system_prompt);

    stopMic2();
    agent.child.kill('SIGTERM');
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    stack.assertCleanLogs(agent, sessionId);
  });

  test('leaving for good: LiveKit closes the room after its departure timeout and the agent ends', async () => {
    const { sessionId, roomName, agent, student, stopMic } = await startSession({ AGENT_STUDENT_REJOIN_GRACE_SECONDS: '120' });
    await agent.waitForLog((l) => l.event === 'greeting_requested', 'conversation running');
    stopMic();
    await student.room.disconnect();
    await agent.waitForLog((l) => l.event === 'student_away', 'agent saw the student leave');
    // The room's departure timeout 5 s < grace 120 s: LiveKit closes the room.
    await assertStudentLeft(agent, sessionId, roomName, true);
  });
});
