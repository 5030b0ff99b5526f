// End-to-end tests of the agent process (node dist/main.js) against a real livekit-server,
// DynamoDB Local, the stand-in Realtime server and the stand-in Bey API/avatar.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { ParticipantKind } from '@livekit/rtc-node';
import { TokenVerifier } from 'livekit-server-sdk';
import type { BeyStandin } from '../src/standins/bey.js';
import { RealtimeStandin, promptedWith } from '../src/standins/realtime.js';
import { safetyInstructions } from '../src/safety.js';
import { agentMetric } from './emf.js';
import { AGENT_DIR, publishMic, waitUntil, type Livekit } from './harness.js';
import { AVATAR_ID, AgentStack, BEY_KEY, CAT_ACADEMIC, CAT_CAREER, CAT_DISABLED, OPENAI_KEY } from './fixture.js';

const stack = new AgentStack();
let lk: Livekit;
let realtime: RealtimeStandin;
let bey: BeyStandin;
const agentEnv = stack.agentEnv.bind(stack);
const startAgent = stack.startAgent.bind(stack);
const createRoom = stack.createRoom.bind(stack);
const joinStudent = stack.joinStudent.bind(stack);
const roomExists = stack.roomExists.bind(stack);
const assertCleanLogs = stack.assertCleanLogs.bind(stack);

before(async () => {
  await stack.start();
  ({ lk, realtime, bey } = stack);
});

after(() => stack.stop());

describe('agent session', () => {
  test('full session: prompt, avatar request, audio to avatar, barge-in, video to student, cleanup on leave', async () => {
    const { sessionId, roomName } = await createRoom();
    const agent = startAgent(agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id));
    const joined = await agent.waitForLog((l) => l.event === 'agent_joined', 'agent joined');
    assert.equal(joined.identity, `agent-${sessionId}`);
    const student = await joinStudent(roomName);
    const stopMic = await publishMic(student.room);

    // Agent participant: kind AGENT, identity agent-<session>.
    await waitUntil(() => student.room.remoteParticipants.has(`agent-${sessionId}`), 'agent visible to student');
    assert.equal(student.room.remoteParticipants.get(`agent-${sessionId}`)!.info.kind, ParticipantKind.AGENT);

    // Bey session request: avatar id, LiveKit URL, token scoped to this room.
    await bey.waitFor(() => bey.requests.some((r) => r.claims?.video?.room === roomName));
    const req = bey.requests.find((r) => r.claims?.video?.room === roomName)!;
    assert.equal(req.apiKey, BEY_KEY);
    assert.equal(req.body.avatar_id, AVATAR_ID);
    assert.equal(req.body.livekit_url, lk.url);
    const claims = await new TokenVerifier(lk.apiKey, lk.apiSecret).verify(req.body.livekit_token!);
    assert.equal(claims.sub, 'bey-avatar-agent');
    assert.equal(claims.video?.room, roomName);
    assert.equal(claims.video?.roomJoin, true);
    assert.equal(claims.kind, 'agent');
    assert.equal(claims.attributes?.['lk.publish_on_behalf'], `agent-${sessionId}`);

    // The category prompt reaches the Realtime session; the greeting introduces the counselor.
    const conn = () => realtime.connections.find((c) => promptedWith(c, CAT_ACADEMIC.system_prompt));
    await waitUntil(() => !!conn(), 'category prompt in a Realtime session.update');
    const c = conn()!;
    assert.equal(c.apiKey, OPENAI_KEY);
    // Every category's prompt is followed by the shared safety protocol.
    assert.ok(c.instructions.includes(`${CAT_ACADEMIC.system_prompt}\n\n${safetyInstructions()}`), 'prompt + safety protocol');
    await waitUntil(() => c.responseInstructions.length > 0, 'greeting response.create');
    assert.match(c.responseInstructions[0] ?? '', /Academic Advising counselor/);

    // Agent audio reaches the avatar on the byte stream and is acknowledged.
    const avatar = () => bey.avatars.find((a) => a.roomName === roomName);
    await waitUntil(() => !!avatar()?.segments.some((s) => s.ack !== undefined || s.ackError !== undefined), 'greeting played by avatar', 60_000);
    const seg0 = avatar()!.segments[0];
    assert.equal(seg0.from, `agent-${sessionId}`);
    assert.equal(seg0.sampleRate, '24000');
    assert.ok(seg0.bytes > 24000, `avatar got only ${seg0.bytes} bytes`);
    assert.equal(seg0.ackError, undefined);
    assert.equal(seg0.ack, 'ok');
    assert.equal(seg0.interrupted, false);
    await agent.waitForLog((l) => l.msg === 'playback finished event received', 'agent logged the playback ack');

    // The student sees the avatar's video and gets the transcript.
    await waitUntil(() => student.videoFrom.has('bey-avatar-agent') && student.frames > 0, 'avatar video frames at the student');
    await waitUntil(() => student.transcripts.some((t) => t.includes('Academic Advising counselor')), 'greeting transcript at the student');

    // The student's microphone reaches the Realtime session.
    await waitUntil(() => c.inputAudioBytes > 24000, 'student audio appended to the Realtime input buffer');
    stopMic();

    // Barge-in: the student speaks while the agent's next reply is playing.
    realtime.simulateStudentSpeech(c, { respond: true });
    await waitUntil(() => (avatar()!.segments[1]?.bytes ?? 0) > 0, 'second reply streaming to the avatar');
    realtime.simulateStudentSpeech(c, { respond: false });
    await waitUntil(() => avatar()!.clearBufferCalls > 0, 'lk.clear_buffer at the avatar');
    await waitUntil(() => avatar()!.segments[1]?.ack !== undefined, 'interrupted segment acknowledged');
    assert.equal(avatar()!.segments[1].interrupted, true);

    // The student leaves: the agent deletes the room and exits 0.
    await student.room.disconnect();
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    assert.equal(await roomExists(roomName), false, 'room still exists');
    await waitUntil(() => avatar()!.disconnected, 'avatar left the room');
    const ending = agent.find((l) => l.event === 'session_ending');
    assert.equal(ending?.reason, 'student_left');
    // The agent subscribed to the student's microphone and to nothing of the avatar's (its video
    // is the student's; the agent's keyframe request for it would delay the student's).
    const subscriptions = agent.lines().filter((l) => l.event === 'track_subscribed').map((l) => `${l.participant}:${l.kind}`);
    assert.deepEqual(subscriptions, [`${student.identity}:KIND_AUDIO`]);
    assert.ok(agent.find((l) => l.event === 'room_deleted'));
    assertCleanLogs(agent, sessionId);
    // Its metric lines, valid EMF: joined (counted from the process start), the avatar's latency, the exit.
    const join = agentMetric(agent.stdout, 'AgentJoinTime', { AgentSource: 'cold' });
    assert.equal(join.length, 1);
    assert.deepEqual(join[0].values, [joined.start_to_joined_ms]);
    const avatarLatency = agentMetric(agent.stdout, 'AvatarJoinLatency');
    assert.equal(avatarLatency.length, 1);
    assert.ok(avatarLatency[0].values[0] > 0);
    assert.equal(agentMetric(agent.stdout, 'AgentExits', { ExitReason: 'student_left' }).length, 1);
    assert.equal(agentMetric(agent.stdout, 'RealtimeErrors').length, 0);
  });
});

describe('agent start and end conditions', () => {
  test('late start: student already waiting; SIGTERM ends gracefully and deletes the room', async () => {
    const { sessionId, roomName } = await createRoom();
    const student = await joinStudent(roomName);
    const agent = startAgent(agentEnv(sessionId, roomName, CAT_CAREER.category_id));
    await agent.waitForLog((l) => l.msg === 'participant already in room' && l.participant === student.identity, 'student seen at start');
    await agent.waitForLog((l) => l.msg === 'student joined' && l.student === student.identity, 'student linked');
    const avatar = () => bey.avatars.find((a) => a.roomName === roomName);
    await waitUntil(() => !!avatar()?.segments[0]?.ack, 'greeting played and acknowledged');
    assert.equal(avatar()!.segments[0].from, `agent-${sessionId}`);
    await waitUntil(() => student.videoFrom.has('bey-avatar-agent') && student.frames > 0, 'avatar video at the student');
    assert.ok(realtime.connections.some((c) => promptedWith(c, CAT_CAREER.system_prompt)));

    agent.child.kill('SIGTERM');
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    assert.equal(agent.find((l) => l.event === 'session_ending')?.reason, 'signal');
    assert.equal(await roomExists(roomName), false);
    await waitUntil(() => avatar()!.disconnected, 'avatar left');
    assertCleanLogs(agent, sessionId);
  });

  test('two agents for two sessions never swap sessions', async () => {
    const a = await createRoom();
    const b = await createRoom();
    // Distinct OpenAI keys only let the stand-in tell the two processes apart.
    const agentA = startAgent(agentEnv(a.sessionId, a.roomName, CAT_ACADEMIC.category_id, { OPENAI_API_KEY: 'sk-test-agent-a-111' }));
    const agentB = startAgent(agentEnv(b.sessionId, b.roomName, CAT_CAREER.category_id, { OPENAI_API_KEY: 'sk-test-agent-b-222' }));
    await Promise.all([
      agentA.waitForLog((l) => l.event === 'agent_joined', 'agent A joined'),
      agentB.waitForLog((l) => l.event === 'agent_joined', 'agent B joined'),
    ]);
    const [sa, sb] = await Promise.all([joinStudent(a.roomName), joinStudent(b.roomName)]);
    const avatarIn = (room: string) => bey.avatars.find((x) => x.roomName === room);
    await waitUntil(() => !!avatarIn(a.roomName)?.segments[0]?.ack && !!avatarIn(b.roomName)?.segments[0]?.ack, 'both greetings played', 90_000);

    // Each agent linked its own student, in its own room.
    assert.equal(agentA.find((l) => l.msg === 'student joined')?.student, sa.identity);
    assert.equal(agentB.find((l) => l.msg === 'student joined')?.student, sb.identity);
    assert.equal(sa.room.remoteParticipants.has(`agent-${a.sessionId}`), true);
    assert.equal(sa.room.remoteParticipants.has(`agent-${b.sessionId}`), false);
    assert.equal(sb.room.remoteParticipants.has(`agent-${b.sessionId}`), true);
    assert.equal(sb.room.remoteParticipants.has(`agent-${a.sessionId}`), false);
    // Each Realtime session got only its own category's prompt.
    const connA = realtime.connections.filter((c) => c.apiKey === 'sk-test-agent-a-111');
    const connB = realtime.connections.filter((c) => c.apiKey === 'sk-test-agent-b-222');
    assert.ok(connA.length >= 1 && connB.length >= 1);
    assert.ok(connA.every((c) => promptedWith(c, CAT_ACADEMIC.system_prompt) && !promptedWith(c, CAT_CAREER.system_prompt)));
    assert.ok(connB.every((c) => promptedWith(c, CAT_CAREER.system_prompt) && !promptedWith(c, CAT_ACADEMIC.system_prompt)));
    assert.match(connA[0].responseInstructions[0] ?? '', /Academic Advising counselor/);
    assert.match(connB[0].responseInstructions[0] ?? '', /Career Guidance counselor/);
    // Each avatar was requested for its own room, on behalf of its own agent, and hears only it.
    const reqA = bey.requests.filter((r) => r.claims?.attributes?.['lk.publish_on_behalf'] === `agent-${a.sessionId}`);
    const reqB = bey.requests.filter((r) => r.claims?.attributes?.['lk.publish_on_behalf'] === `agent-${b.sessionId}`);
    assert.deepEqual(reqA.map((r) => r.claims?.video?.room), [a.roomName]);
    assert.deepEqual(reqB.map((r) => r.claims?.video?.room), [b.roomName]);
    assert.ok(avatarIn(a.roomName)!.segments.every((s) => s.from === `agent-${a.sessionId}`));
    assert.ok(avatarIn(b.roomName)!.segments.every((s) => s.from === `agent-${b.sessionId}`));

    // Ending one session leaves the other untouched.
    await sa.room.disconnect();
    assert.equal(await agentA.waitForExit(), 0, agentA.tail());
    assert.equal(await roomExists(a.roomName), false);
    assert.equal(await roomExists(b.roomName), true);
    assert.equal(agentB.exitCode, undefined, 'agent B stopped with agent A');
    await sb.room.disconnect();
    assert.equal(await agentB.waitForExit(), 0, agentB.tail());
    assert.equal(await roomExists(b.roomName), false);
    assertCleanLogs(agentA, a.sessionId);
    assertCleanLogs(agentB, b.sessionId);
  });

  test('a replacement (AGENT_REPLACEMENT=true, the webhook launches it after a lost agent) acknowledges the interruption', async () => {
    const { sessionId, roomName } = await createRoom();
    const student = await joinStudent(roomName);
    const agent = startAgent(agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id, { AGENT_REPLACEMENT: 'true', OPENAI_API_KEY: 'sk-test-replacement-333' }));
    const joined = await agent.waitForLog((l) => l.event === 'agent_joined', 'agent joined');
    assert.equal(joined.replacement, true);
    const greeting = await agent.waitForLog((l) => l.event === 'greeting_requested', 'greeting requested');
    assert.equal(greeting.replacement, true);
    const conn = () => realtime.connections.find((c) => c.apiKey === 'sk-test-replacement-333' && c.responseInstructions.length > 0);
    await waitUntil(() => !!conn(), 'greeting sent to the model');
    assert.match(conn()!.responseInstructions[0] ?? '', /interrupted/);
    await lk.rooms.deleteRoom(roomName);
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    await student.room.disconnect().catch(() => undefined);
    assertCleanLogs(agent, sessionId);
  });

  test('room deleted by the backend mid-session: agent exits 0', async () => {
    const { sessionId, roomName } = await createRoom();
    const agent = startAgent(agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id));
    await agent.waitForLog((l) => l.event === 'agent_joined', 'agent joined');
    const student = await joinStudent(roomName);
    await agent.waitForLog((l) => l.event === 'greeting_requested', 'greeting requested');
    await lk.rooms.deleteRoom(roomName);
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    assert.equal(agent.find((l) => l.event === 'session_ending')?.reason, 'room_closed');
    assert.equal(await roomExists(roomName), false, 'agent recreated the room');
    await student.room.disconnect().catch(() => undefined);
    assertCleanLogs(agent, sessionId);
  });

  test('no student within the join limit: deletes the room, never starts the avatar, exits 0', async () => {
    const { sessionId, roomName } = await createRoom();
    const agent = startAgent(agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id, { AGENT_STUDENT_JOIN_TIMEOUT_SECONDS: '2' }));
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    assert.equal(agent.find((l) => l.event === 'session_ending')?.reason, 'student_join_timeout');
    assert.equal(await roomExists(roomName), false);
    assert.equal(bey.requests.filter((r) => r.claims?.video?.room === roomName).length, 0);
    assertCleanLogs(agent, sessionId);
  });

  test('hard maximum duration ends the session', async () => {
    const { sessionId, roomName } = await createRoom();
    const agent = startAgent(agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id, { AGENT_MAX_DURATION_SECONDS: '2' }));
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    assert.equal(agent.find((l) => l.event === 'session_ending')?.reason, 'max_duration');
    assert.equal(await roomExists(roomName), false);
    assertCleanLogs(agent, sessionId);
  });

  test('room already gone when the agent starts: does not recreate it, exits 0', async () => {
    const { sessionId, roomName } = await createRoom();
    await lk.rooms.deleteRoom(roomName);
    const agent = startAgent(agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id));
    assert.equal(await agent.waitForExit(), 0, agent.tail());
    assert.equal(agent.find((l) => l.event === 'session_ending')?.reason, 'room_missing');
    assert.equal(await roomExists(roomName), false);
    assertCleanLogs(agent, sessionId);
  });

  test('Bey API refusing the avatar: one error, room deleted, exit non-zero', async () => {
    const { sessionId, roomName } = await createRoom();
    const agent = startAgent(agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id, { BEY_API_KEY: 'bey-wrong-key-0000' }));
    await agent.waitForLog((l) => l.event === 'agent_joined', 'agent joined');
    const student = await joinStudent(roomName);
    assert.notEqual(await agent.waitForExit(90_000), 0, agent.tail());
    assert.equal(agent.find((l) => l.event === 'session_ending')?.reason, 'avatar_failed');
    assert.equal(await roomExists(roomName), false);
    await student.room.disconnect();
    assert.ok(!agent.stdout.includes('bey-wrong-key-0000'), 'Bey key in logs');
    assertCleanLogs(agent, sessionId);
  });
  test('Realtime API refusing the key: session error, room deleted, exit non-zero', async () => {
    const strict = new RealtimeStandin({ expectedApiKey: 'sk-the-right-key-000' });
    await strict.listen();
    try {
      const { sessionId, roomName } = await createRoom();
      const agent = startAgent(agentEnv(sessionId, roomName, CAT_ACADEMIC.category_id, { OPENAI_BASE_URL: strict.baseUrl }));
      await agent.waitForLog((l) => l.event === 'agent_joined', 'agent joined');
      const student = await joinStudent(roomName);
      assert.equal(await agent.waitForExit(120_000), 1, agent.tail());
      assert.equal(agent.find((l) => l.event === 'session_ending')?.reason, 'session_error', agent.tail());
      assert.equal(await roomExists(roomName), false);
      await student.room.disconnect().catch(() => undefined);
      assertCleanLogs(agent, sessionId);
      assert.ok(agentMetric(agent.stdout, 'RealtimeErrors').length >= 1, 'the refused key is no Realtime error');
      assert.equal(agentMetric(agent.stdout, 'RealtimeConnectRetries').length, 0, '401 is not retried');
      assert.equal(agentMetric(agent.stdout, 'AgentExits', { ExitReason: 'session_error' }).length, 1);
    } finally {
      await strict.close();
    }
  });
});

describe('dev stack wiring', () => {
  test('the standalone stand-ins command serves a whole session (as make dev runs it)', async () => {
    const child = spawn(process.execPath, [join(AGENT_DIR, 'dist/standins/main.js')], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    try {
      await waitUntil(() => out.includes('"standins_ready"'), 'stand-ins ready', 30_000);
      const ready = JSON.parse(out.split('\n').find((l) => l.includes('"standins_ready"'))!);
      const { sessionId, roomName } = await createRoom();
      const agent = startAgent(
        agentEnv(sessionId, roomName, CAT_CAREER.category_id, {
          OPENAI_BASE_URL: ready.openai_base_url,
          BEY_API_URL: ready.bey_api_url,
          OPENAI_API_KEY: 'local-dev-placeholder',
          BEY_API_KEY: 'local-dev-placeholder',
        }),
      );
      await agent.waitForLog((l) => l.msg === 'agent joined room', 'agent joined');
      const student = await joinStudent(roomName);
      await waitUntil(() => student.videoFrom.has('bey-avatar-agent') && student.frames > 0, 'avatar video from the standalone stand-in');
      await waitUntil(() => student.transcripts.some((t) => t.includes("Hi, I'm your Career Guidance counselor")), 'greeting transcript');
      await agent.waitForLog((l) => l.msg === 'playback finished event received', 'playback acknowledged by the standalone avatar');
      await student.room.disconnect();
      assert.equal(await agent.waitForExit(), 0, agent.tail());
      assertCleanLogs(agent, sessionId);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, out.slice(-3000));
    for (const l of out.split('\n').filter((x) => x.trim())) {
      assert.doesNotThrow(() => JSON.parse(l), `non-JSON stand-ins line: ${l}`);
    }
  });
});

describe('configuration errors', () => {
  for (const [label, cat] of [
    ['unknown category', randomUUID()],
    ['disabled category', CAT_DISABLED.category_id],
  ] as const) {
    test(`${label}: exits non-zero with one clear log line`, async () => {
      const { sessionId, roomName } = await createRoom();
      const agent = startAgent(agentEnv(sessionId, roomName, cat));
      const code = await agent.waitForExit();
      assert.equal(code, 3, agent.tail());
      const errors = agent.lines().filter((l) => l.level === 'fatal' || l.level === 'error');
      assert.equal(errors.length, 1, agent.tail());
      assert.equal(errors[0].event, 'config_error');
      assert.match(String(errors[0].msg), new RegExp(cat));
      assert.match(String(errors[0].msg), label === 'unknown category' ? /unknown category/ : /disabled/);
      assert.equal(await roomExists(roomName), true, 'a config error must not touch the room');
      assert.ok(!realtime.connections.some((c) => c.apiKey === OPENAI_KEY && promptedWith(c, 'DISABLED-PROMPT')));
      assertCleanLogs(agent, sessionId);
      await lk.rooms.deleteRoom(roomName);
    });
  }
});
