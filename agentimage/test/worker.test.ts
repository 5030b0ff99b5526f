// End-to-end tests of the worker entry (node dist/worker.js, the warm pool) against a real
// livekit-server (jobs dispatched with AgentDispatchClient), DynamoDB Local, the stand-in
// Realtime and Bey services, and an HTTP double of the ECS agent's task-protection endpoint.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ParticipantKind, Room, RoomEvent, TrackKind, VideoStream, dispose, type RemoteTrack } from '@livekit/rtc-node';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { BeyStandin } from '../src/standins/bey.js';
import { RealtimeStandin, promptedWith } from '../src/standins/realtime.js';
import { adoptRtcLogger } from '../src/logger.js';
import { agentMetric } from './emf.js';
import {
  AgentProcess,
  WORKER_ENTRY,
  freePort,
  publishMic,
  runtimeEnv,
  seedCategories,
  startDynamo,
  startLivekit,
  studentToken,
  waitUntil,
  type Dynamo,
  type Livekit,
} from './harness.js';

const TABLE = 'categories-worker-test';
const CATEGORY = {
  category_id: randomUUID(),
  name: 'Study Skills',
  system_prompt: 'You are STUDY-PROMPT-4c1d, a counselor who helps students organise their revision.',
  enabled: true,
};
const OPENAI_KEY = 'sk-test-worker-openai-8b2e';
const BEY_KEY = 'bey-test-worker-key-19fa';

let lk: Livekit;
let ddb: Dynamo;
let realtime: RealtimeStandin;
let bey: BeyStandin;
let dispatcher: AgentDispatchClient;
const workers: AgentProcess[] = [];
const students: Room[] = [];

// ---------------------------------------------------------------- ECS agent double
interface ProtectionCall {
  method: string;
  path: string;
  contentType: string | undefined;
  body: unknown;
}

class EcsAgentDouble {
  readonly calls: ProtectionCall[] = [];
  private server?: Server;
  url = '';
  constructor(private readonly answer: 'ok' | 'failure') {}

  async listen(): Promise<void> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => {
        let body: unknown = raw;
        try {
          body = JSON.parse(raw);
        } catch {
          /* recorded as text */
        }
        this.calls.push({ method: req.method ?? '', path: req.url ?? '', contentType: req.headers['content-type'], body });
        res.setHeader('Content-Type', 'application/json');
        if (this.answer === 'ok') {
          res.end(JSON.stringify({ protection: { ExpirationDate: '2030-01-01T00:00:00Z', ProtectionEnabled: true, TaskArn: 'arn:aws:ecs:test:1:task/x' } }));
        } else {
          res.statusCode = 400;
          res.end(JSON.stringify({ failure: { Arn: 'arn:aws:ecs:test:1:task/x', Reason: 'TASK_NOT_VALID', Detail: 'standalone task' } }));
        }
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    // Like ECS: the agent URI carries a task-specific path prefix.
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/task-1234`;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}

// ---------------------------------------------------------------- helpers
interface Worker {
  proc: AgentProcess;
  agentName: string;
}

/** Each test registers its own agent name: workers of different tests never take each other's jobs. */
async function startWorker(agentName: string, extra: Record<string, string> = {}): Promise<Worker> {
  const proc = new AgentProcess(
    {
      ...runtimeEnv({
        lk,
        ddb,
        table: TABLE,
        beyUrl: bey.url,
        openaiBaseUrl: realtime.baseUrl,
        beyKey: BEY_KEY,
        openaiKey: OPENAI_KEY,
        avatarId: 'avatar-worker-test',
      }),
      LIVEKIT_AGENT_NAME: agentName,
      AGENT_HEALTH_PORT: String(await freePort()),
      // A student who leaves ends the session soon (the rejoin grace itself is tested in resilience.test.ts).
      AGENT_STUDENT_REJOIN_GRACE_SECONDS: '2',
      ...extra,
    },
    { entry: WORKER_ENTRY, detached: true },
  );
  workers.push(proc);
  await proc.waitForLog((l) => l.event === 'worker_ready', 'worker ready', 90_000);
  return { proc, agentName };
}

async function createSession(): Promise<{ sessionId: string; roomName: string }> {
  const sessionId = randomUUID();
  const roomName = `video-${sessionId}`;
  await lk.rooms.createRoom({ name: roomName, maxParticipants: 4, emptyTimeout: 600, departureTimeout: 5 });
  return { sessionId, roomName };
}

async function dispatch(w: Worker, roomName: string, metadata: unknown): Promise<void> {
  await dispatcher.createDispatch(roomName, w.agentName, {
    metadata: typeof metadata === 'string' ? metadata : JSON.stringify(metadata),
  });
}

interface Student {
  room: Room;
  identity: string;
  transcripts: string[];
  frames: number;
  /** Identities of every agent-kind participant ever seen in the room. */
  agentsSeen: Set<string>;
}

async function joinStudent(roomName: string): Promise<Student> {
  const identity = randomUUID();
  const room = new Room();
  students.push(room);
  const s: Student = { room, identity, transcripts: [], frames: 0, agentsSeen: new Set() };
  const seen = (p: { identity: string; info: { kind?: ParticipantKind } }) => {
    if (p.info.kind === ParticipantKind.AGENT) s.agentsSeen.add(p.identity);
  };
  room.on(RoomEvent.ParticipantConnected, seen);
  room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _pub, participant) => {
    if (track.kind !== TrackKind.KIND_VIDEO || participant.identity !== 'bey-avatar-agent') return;
    void (async () => {
      for await (const _ of new VideoStream(track)) {
        s.frames++;
        if (s.frames >= 3) break;
      }
    })().catch(() => undefined);
  });
  room.registerTextStreamHandler('lk.transcription', async (reader) => {
    try {
      s.transcripts.push(await reader.readAll());
    } catch {
      // cut by the room closing
    }
  });
  await room.connect(lk.url, await studentToken(lk, roomName, identity), { autoSubscribe: true, dynacast: false });
  for (const p of room.remoteParticipants.values()) seen(p);
  return s;
}

async function roomExists(name: string): Promise<boolean> {
  return (await lk.rooms.listRooms([name])).some((r) => r.name === name);
}

async function agentParticipants(roomName: string): Promise<string[]> {
  const ps = await lk.rooms.listParticipants(roomName).catch(() => []);
  return ps.filter((p) => p.identity.startsWith('agent-')).map((p) => p.identity);
}

/**
 * Every line JSON; no secrets; every line about the session carries its id: the worker's own lines
 * from job_accepted on, and the job process's lines from job_started on. (The worker's idle process
 * and lines before the job have none; no line ever carries another session's id.)
 */
function assertCleanLogs(w: AgentProcess, sessionId: string): void {
  if (process.env.AGENT_LOG_DIR) writeFileSync(join(process.env.AGENT_LOG_DIR, `worker-${sessionId}.log`), w.stdout + '\n--- stderr ---\n' + w.stderr);
  const lines = w.lines();
  assert.ok(lines.length > 0, 'worker logged nothing');
  const jobPid = lines.find((l) => l.event === 'job_started')?.pid;
  const inSession = new Set<unknown>();
  for (const l of lines) {
    assert.notEqual(l.level, 'NOT_JSON', `non-JSON log line: ${l.msg}`);
    assert.ok(l.session_id === null || l.session_id === sessionId, `line of another session: ${JSON.stringify(l).slice(0, 300)}`);
    if ((l.component === 'worker' && l.event === 'job_accepted') || (l.pid === jobPid && l.event === 'job_started')) inSession.add(l.pid);
    if (inSession.has(l.pid)) {
      assert.equal(l.session_id, sessionId, `session line without this session id: ${JSON.stringify(l).slice(0, 300)}`);
    }
  }
  assert.ok(inSession.size >= 1, 'no job_accepted line');
  for (const l of w.stderr.split('\n').filter((x) => x.trim())) {
    assert.doesNotThrow(() => JSON.parse(l), `non-JSON stderr line: ${l}`);
  }
  for (const secret of [lk.apiSecret, OPENAI_KEY, BEY_KEY]) {
    assert.ok(!w.stdout.includes(secret), 'a secret appears in stdout');
    assert.ok(!w.stderr.includes(secret), 'a secret appears in stderr');
  }
}

before(async () => {
  adoptRtcLogger(null, 'warn');
  const [l, d] = await Promise.allSettled([startLivekit(), startDynamo()]);
  if (l.status === 'fulfilled') lk = l.value;
  if (d.status === 'fulfilled') ddb = d.value;
  if (l.status === 'rejected') throw l.reason;
  if (d.status === 'rejected') throw d.reason;
  await seedCategories(ddb.client, TABLE, [CATEGORY]);
  realtime = new RealtimeStandin({ paceFactor: 0.25, replySeconds: 2 });
  bey = new BeyStandin({ expectedApiKey: BEY_KEY });
  await realtime.listen();
  await bey.listen();
  dispatcher = new AgentDispatchClient(lk.httpUrl, lk.apiKey, lk.apiSecret);
});

after(async () => {
  await Promise.all(workers.map((w) => w.killGroup().catch(() => w.kill())));
  for (const s of students) await s.disconnect().catch(() => undefined);
  await bey?.close();
  await realtime?.close();
  await dispose();
  await lk?.stop();
  await ddb?.stop();
});

describe('pool worker', () => {
  test('dispatched job: accepted as agent-<session>, avatar before the student, greeting, task protected, exits 0', async () => {
    const ecs = new EcsAgentDouble('ok');
    await ecs.listen();
    try {
      const w = await startWorker(`counselor-${randomUUID().slice(0, 8)}`, { ECS_AGENT_URI: ecs.url });
      // An idle worker is not protected. It samples the pool metric: 0 while it waits.
      assert.equal(ecs.calls.length, 0);
      await waitUntil(() => agentMetric(w.proc.stdout, 'PoolWorkerBusy').some((m) => m.values[0] === 0), 'an idle pool sample', 30_000);
      const { sessionId, roomName } = await createSession();
      await dispatch(w, roomName, { session_id: sessionId, category_id: CATEGORY.category_id });

      const accepted = await w.proc.waitForLog((l) => l.event === 'job_accepted', 'job accepted');
      assert.equal(accepted.identity, `agent-${sessionId}`);
      assert.equal(accepted.session_id, sessionId);
      const joined = await w.proc.waitForLog((l) => l.event === 'agent_joined', 'agent joined');
      assert.equal(joined.identity, `agent-${sessionId}`);
      assert.deepEqual(await agentParticipants(roomName), [`agent-${sessionId}`]);
      const info = (await lk.rooms.listParticipants(roomName)).find((p) => p.identity === `agent-${sessionId}`)!;
      assert.equal(info.kind, ParticipantKind.AGENT);
      assert.equal(info.name, 'Counselor');

      // Early avatar: requested while no student is in the room yet, and before the agent itself
      // had joined (the avatar boots during the agent's own connect).
      await bey.waitFor(() => bey.requests.some((r) => r.claims?.video?.room === roomName));
      const req = bey.requests.find((r) => r.claims?.video?.room === roomName)!;
      assert.equal(req.claims?.attributes?.['lk.publish_on_behalf'], `agent-${sessionId}`);
      assert.equal(req.claims?.sub, 'bey-avatar-agent');
      assert.equal(req.claims?.kind, 'agent');
      assert.equal(req.claims?.video?.roomJoin, true);
      const joinedAt = Date.parse(joined.time as string);
      assert.ok(req.receivedAt < joinedAt, `avatar requested ${req.receivedAt - joinedAt} ms after the agent joined, not during its connect`);
      const avatarStarted = await w.proc.waitForLog((l) => l.event === 'avatar_started', 'avatar started');
      assert.equal(avatarStarted.early, true, 'avatar not started early');

      // Scale-in protection on accept: PUT, the documented path, the session's bound.
      await waitUntil(() => ecs.calls.length > 0, 'task protection call');
      assert.deepEqual(ecs.calls, [
        {
          method: 'PUT',
          path: '/api/task-1234/task-protection/v1/state',
          contentType: 'application/json',
          // 60 min maximum + 15 min safety grace + 5 min margin.
          body: { ProtectionEnabled: true, ExpiresInMinutes: 80 },
        },
      ]);
      await w.proc.waitForLog((l) => l.event === 'task_protection_enabled', 'protection logged');

      const student = await joinStudent(roomName);
      const stopMic = await publishMic(student.room);
      const conn = () => realtime.connections.find((c) => promptedWith(c, CATEGORY.system_prompt));
      await waitUntil(() => !!conn()?.responseInstructions.length, 'greeting response.create');
      assert.match(conn()!.responseInstructions[0] ?? '', /Study Skills counselor/);
      assert.equal(conn()!.apiKey, OPENAI_KEY);
      await waitUntil(() => student.frames > 0, 'avatar video at the student');
      await waitUntil(() => student.transcripts.some((t) => t.includes('Study Skills counselor')), 'greeting transcript at the student');
      const avatar = () => bey.avatars.find((a) => a.roomName === roomName);
      await waitUntil(() => avatar()?.segments[0]?.ack === 'ok', 'greeting played by the avatar');
      assert.equal(avatar()!.segments[0].from, `agent-${sessionId}`);
      // The job's agent subscribed to the student's microphone only, not to the avatar's tracks.
      const subscriptions = w.proc.lines().filter((l) => l.event === 'track_subscribed').map((l) => `${l.participant}:${l.kind}`);
      assert.deepEqual(subscriptions, [`${student.identity}:KIND_AUDIO`]);
      // Holding the session: busy samples.
      await waitUntil(() => agentMetric(w.proc.stdout, 'PoolWorkerBusy').some((m) => m.values[0] === 1), 'a busy pool sample', 30_000);
      // Memory: the worker and its job process only (no inference process, no replacement idle process).
      const tree = w.proc.processes();
      assert.equal(tree.length, 2, `processes: ${tree.map((p) => p.cmdline).join('\n')}`);
      assert.ok(tree.some((p) => p.cmdline.includes('job_proc_lazy_main')), 'no job process');
      stopMic();

      await student.room.disconnect();
      assert.equal(await w.proc.waitForExit(), 0, w.proc.tail());
      assert.equal(w.proc.find((l) => l.event === 'session_ending')?.reason, 'student_left');
      assert.equal(await roomExists(roomName), false, 'room still exists');
      assert.ok(w.proc.find((l) => l.event === 'worker_exit' && l.exit_code === 0));
      assert.equal(ecs.calls.length, 1, 'protection requested more than once');
      assertCleanLogs(w.proc, sessionId);
      // Metric lines of both processes (the job's pass its stdout capture unchanged): the join counted
      // from the job's start, the exit with the session's reason, samples one per 10-second period.
      const join = agentMetric(w.proc.stdout, 'AgentJoinTime', { AgentSource: 'pool' });
      assert.equal(join.length, 1);
      assert.deepEqual(join[0].values, [joined.session_to_joined_ms]);
      assert.equal(agentMetric(w.proc.stdout, 'AgentExits', { ExitReason: 'student_left' }).length, 1);
      const samples = agentMetric(w.proc.stdout, 'PoolWorkerBusy');
      for (const s of samples) {
        assert.equal(s.storageResolution, 1);
        assert.equal(s.timestamp % 10_000, 5000, 'a sample off the middle of its period');
      }
      assert.equal(new Set(samples.map((s) => s.timestamp)).size, samples.length, 'two samples in one period');
    } finally {
      await ecs.close();
    }
  });

  test('a second job offered while holding one gets no agent; after the session the worker exits 0 and a fresh worker serves the next', async () => {
    const agentName = `counselor-${randomUUID().slice(0, 8)}`;
    const first = await startWorker(agentName);
    const a = await createSession();
    const b = await createSession();
    // Both students wait; both sessions are dispatched at once to the one worker.
    const [sa, sb] = await Promise.all([joinStudent(a.roomName), joinStudent(b.roomName)]);
    await Promise.all([
      dispatch(first, a.roomName, { session_id: a.sessionId, category_id: CATEGORY.category_id }),
      dispatch(first, b.roomName, { session_id: b.sessionId, category_id: CATEGORY.category_id }),
    ]);
    const accepted = await first.proc.waitForLog((l) => l.event === 'job_accepted', 'first job accepted');
    const [served, waiting, servedStudent, waitingStudent] =
      accepted.session_id === a.sessionId ? [a, b, sa, sb] : [b, a, sb, sa];
    await waitUntil(() => servedStudent.transcripts.some((t) => t.includes('Study Skills counselor')), 'greeting in the served room');
    // The other offer (if the server made it before the worker reported itself full) was refused.
    const rejected = first.proc.find((l) => l.event === 'job_rejected');
    if (rejected) {
      assert.equal(rejected.reason, 'busy');
      assert.equal(rejected.room_name, waiting.roomName);
    }
    await servedStudent.room.disconnect();
    assert.equal(await first.proc.waitForExit(), 0, first.proc.tail());
    // The worker is gone: nothing can join the waiting room any more, and nothing ever did.
    assert.equal(first.proc.lines().filter((l) => l.event === 'job_accepted').length, 1);
    assert.deepEqual([...waitingStudent.agentsSeen], []);
    assert.deepEqual(await agentParticipants(waiting.roomName), []);
    assertCleanLogs(first.proc, served.sessionId);

    // A fresh worker (ECS would start one) takes the re-dispatched session.
    const second = await startWorker(agentName);
    await dispatch(second, waiting.roomName, { session_id: waiting.sessionId, category_id: CATEGORY.category_id });
    const acceptedAgain = await second.proc.waitForLog((l) => l.event === 'job_accepted', 'job accepted by the fresh worker');
    assert.equal(acceptedAgain.session_id, waiting.sessionId);
    await second.proc.waitForLog((l) => l.msg === 'participant already in room' && l.participant === waitingStudent.identity, 'waiting student seen');
    await waitUntil(() => waitingStudent.transcripts.some((t) => t.includes('Study Skills counselor')), 'greeting in the second room');
    assert.deepEqual([...waitingStudent.agentsSeen].sort(), [`agent-${waiting.sessionId}`, 'bey-avatar-agent']);
    await waitingStudent.room.disconnect();
    assert.equal(await second.proc.waitForExit(), 0, second.proc.tail());
    assert.equal(await roomExists(waiting.roomName), false);
    assertCleanLogs(second.proc, waiting.sessionId);
  });

  test('invalid metadata and a room-name mismatch are rejected; the worker stays available; SIGTERM mid-session ends it cleanly', async () => {
    const ecs = new EcsAgentDouble('failure');
    await ecs.listen();
    try {
      const w = await startWorker(`counselor-${randomUUID().slice(0, 8)}`, { ECS_AGENT_URI: ecs.url });
      const s = await createSession();
      const other = randomUUID();
      const offers: [unknown, string][] = [
        ['not json', 'invalid_metadata'],
        [{ session_id: s.sessionId }, 'invalid_metadata'],
        [{ session_id: 'bad id!', category_id: CATEGORY.category_id }, 'invalid_metadata'],
        [{ session_id: other, category_id: CATEGORY.category_id }, 'room_mismatch'],
      ];
      for (const [i, [metadata, reason]] of offers.entries()) {
        await dispatch(w, s.roomName, metadata);
        await w.proc.waitForLog((l) => l.event === 'job_rejected' && w.proc.lines().filter((x) => x.event === 'job_rejected').length > i, `offer ${i} rejected`);
        const rejections = w.proc.lines().filter((l) => l.event === 'job_rejected');
        assert.equal(rejections[i].reason, reason, JSON.stringify(rejections[i]));
        assert.equal(rejections[i].room_name, s.roomName);
      }
      assert.equal(w.proc.find((l) => l.event === 'job_accepted'), undefined);
      assert.deepEqual(await agentParticipants(s.roomName), []);

      // Still idle: a valid dispatch for the same room is taken.
      const student = await joinStudent(s.roomName);
      await dispatch(w, s.roomName, { session_id: s.sessionId, category_id: CATEGORY.category_id });
      await w.proc.waitForLog((l) => l.event === 'greeting_requested', 'greeting requested');
      // ECS refusing protection is logged, and the session goes on.
      const refused = await w.proc.waitForLog((l) => l.event === 'task_protection_failed', 'protection failure logged');
      assert.match(String(refused.error), /TASK_NOT_VALID/);
      assert.equal(ecs.calls.length, 1, 'a 4xx answer is not retried');
      await waitUntil(() => student.transcripts.some((t) => t.includes('Study Skills counselor')), 'greeting at the student');

      w.proc.child.kill('SIGTERM');
      assert.equal(await w.proc.waitForExit(), 0, w.proc.tail());
      assert.equal(w.proc.find((l) => l.event === 'session_ending')?.reason, 'signal');
      assert.equal(await roomExists(s.roomName), false, 'room not deleted on SIGTERM');
      assertCleanLogs(w.proc, s.sessionId);
    } finally {
      await ecs.close();
    }
  });

  test('SIGTERM while idle: exits 0 without taking a job', async () => {
    const w = await startWorker(`counselor-${randomUUID().slice(0, 8)}`);
    w.proc.child.kill('SIGTERM');
    assert.equal(await w.proc.waitForExit(), 0, w.proc.tail());
    assert.ok(w.proc.find((l) => l.event === 'worker_exit' && l.exit_code === 0));
    for (const l of w.proc.lines()) assert.notEqual(l.level, 'NOT_JSON', String(l.msg));
  });

  test('early avatar and a student who never comes: bounded, room deleted, exit 0', async () => {
    const w = await startWorker(`counselor-${randomUUID().slice(0, 8)}`, { AGENT_EARLY_AVATAR_NO_SHOW_SECONDS: '2' });
    const s = await createSession();
    await dispatch(w, s.roomName, { session_id: s.sessionId, category_id: CATEGORY.category_id });
    assert.equal(await w.proc.waitForExit(), 0, w.proc.tail());
    const ending = w.proc.find((l) => l.event === 'session_ending');
    assert.equal(ending?.reason, 'student_join_timeout');
    assert.equal(ending?.early_avatar, true);
    assert.equal(bey.requests.filter((r) => r.claims?.video?.room === s.roomName).length, 1, 'avatar not started early');
    await waitUntil(() => !!bey.avatars.find((a) => a.roomName === s.roomName)?.disconnected, 'avatar left');
    assert.equal(await roomExists(s.roomName), false);
    assertCleanLogs(w.proc, s.sessionId);
  });

  test("the dispatch's max_duration_seconds (the student's minutes left) ends the session, not the worker's own", async () => {
    const w = await startWorker(`counselor-${randomUUID().slice(0, 8)}`, { AGENT_MAX_DURATION_SECONDS: '3600' });
    const s = await createSession();
    await dispatch(w, s.roomName, { session_id: s.sessionId, category_id: CATEGORY.category_id, max_duration_seconds: 3 });
    assert.equal(await w.proc.waitForExit(), 0, w.proc.tail());
    assert.equal(w.proc.find((l) => l.event === 'job_started')?.max_duration_s, 3);
    assert.equal(w.proc.find((l) => l.event === 'session_ending')?.reason, 'max_duration');
    assert.equal(await roomExists(s.roomName), false);
    assertCleanLogs(w.proc, s.sessionId);
  });

  test('unknown category in the dispatch: exit 3, the room is left to the backend', async () => {
    const w = await startWorker(`counselor-${randomUUID().slice(0, 8)}`);
    const s = await createSession();
    const missing = randomUUID();
    await dispatch(w, s.roomName, { session_id: s.sessionId, category_id: missing });
    assert.equal(await w.proc.waitForExit(), 3, w.proc.tail());
    const line = w.proc.find((l) => l.event === 'config_error');
    assert.match(String(line?.msg), new RegExp(missing));
    assert.equal(await roomExists(s.roomName), true);
    assert.deepEqual(await agentParticipants(s.roomName), []);
    assertCleanLogs(w.proc, s.sessionId);
    await lk.rooms.deleteRoom(s.roomName);
  });
});

describe('worker dies mid-session', () => {
  test('a replacement worker joins the room the student is still in and acknowledges the interruption', async () => {
    const agentName = `counselor-${randomUUID().slice(0, 8)}`;
    const first = await startWorker(agentName);
    const s = await createSession();
    const student = await joinStudent(s.roomName);
    await dispatch(first, s.roomName, { session_id: s.sessionId, category_id: CATEGORY.category_id });
    await waitUntil(() => student.transcripts.some((t) => t.includes("Hi, I'm your Study Skills counselor")), 'first greeting');
    const greetingsBefore = realtime.connections.filter((c) => promptedWith(c, CATEGORY.system_prompt)).length;

    // The task dies with its job process (OOM, Spot reclaim): no cleanup runs.
    await first.proc.killGroup();
    assert.equal(await roomExists(s.roomName), true);

    const replacement = await startWorker(agentName);
    await dispatch(replacement, s.roomName, { session_id: s.sessionId, category_id: CATEGORY.category_id, replacement: true });
    const joined = await replacement.proc.waitForLog((l) => l.event === 'agent_joined', 'replacement joined');
    assert.equal(joined.identity, `agent-${s.sessionId}`);
    assert.equal(joined.replacement, true);
    await replacement.proc.waitForLog((l) => l.msg === 'student joined' && l.student === student.identity, 'student linked by the replacement');
    const conns = () => realtime.connections.filter((c) => promptedWith(c, CATEGORY.system_prompt));
    await waitUntil(() => conns().length > greetingsBefore && !!conns().at(-1)!.responseInstructions.length, 'replacement greeting requested');
    const greeting = conns().at(-1)!.responseInstructions[0] ?? '';
    assert.match(greeting, /interrupted/);
    assert.doesNotMatch(greeting, /introduce yourself/);
    await waitUntil(
      () => student.transcripts.filter((t) => t.includes('Study Skills counselor')).length >= 2,
      'replacement greeting at the student',
    );
    // One agent identity in the room (the dead one was replaced, not doubled).
    await waitUntil(async () => (await agentParticipants(s.roomName)).length === 1, 'one agent participant');
    assert.equal(student.room.isConnected, true, 'the student was dropped');

    await student.room.disconnect();
    assert.equal(await replacement.proc.waitForExit(), 0, replacement.proc.tail());
    assert.equal(await roomExists(s.roomName), false);
    assertCleanLogs(replacement.proc, s.sessionId);
  });
});

describe('pool worker resilience (the job process runs the same session as the direct entry)', () => {
  test('early avatar that never joins: the avatar deadline counts from its start, avatar_timeout, room deleted, exit 1', async () => {
    const neverJoins = new BeyStandin({ expectedApiKey: BEY_KEY, avatarBehaviour: 'never_joins' });
    await neverJoins.listen();
    try {
      // The no-show bound (60 s) is far away: only the avatar's deadline can end this session.
      const w = await startWorker(`counselor-${randomUUID().slice(0, 8)}`, {
        BEY_API_URL: neverJoins.url,
        AGENT_EARLY_AVATAR_NO_SHOW_SECONDS: '60',
        AGENT_AVATAR_JOIN_TIMEOUT_SECONDS: '3',
      });
      const s = await createSession();
      await dispatch(w, s.roomName, { session_id: s.sessionId, category_id: CATEGORY.category_id });
      assert.equal(await w.proc.waitForExit(90_000), 1, w.proc.tail());
      const lines = w.proc.lines();
      const started = lines.findIndex((l) => l.event === 'avatar_started');
      const timedOut = lines.findIndex((l) => l.event === 'avatar_timeout');
      assert.ok(started >= 0 && lines[started].early === true, 'avatar not started early');
      assert.ok(timedOut > started, 'avatar deadline not after the avatar start');
      assert.equal(lines.find((l) => l.msg === 'student joined'), undefined);
      const ending = w.proc.find((l) => l.event === 'session_ending');
      assert.equal(ending?.reason, 'avatar_timeout', w.proc.tail());
      assert.equal(ending?.waiting_for, 'participant');
      assert.equal(neverJoins.requests.filter((r) => r.claims?.video?.room === s.roomName).length, 1);
      assert.ok(w.proc.find((l) => l.event === 'worker_exit' && l.exit_code === 1));
      assert.equal(await roomExists(s.roomName), false, 'room still exists');
      assertCleanLogs(w.proc, s.sessionId);
    } finally {
      await neverJoins.close();
    }
  });

  test('SIGTERM while the job loads its category: the job ends through the shutdown request, room deleted, never joined, exit 0', async () => {
    // A DynamoDB endpoint that takes the request and never answers: the job is mid category load.
    const held: IncomingMessage[] = [];
    const slowDynamo: Server = createServer((req) => void held.push(req));
    await new Promise<void>((r) => slowDynamo.listen(0, '127.0.0.1', () => r()));
    try {
      const w = await startWorker(`counselor-${randomUUID().slice(0, 8)}`, {
        AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${(slowDynamo.address() as AddressInfo).port}`,
      });
      // The idle process's warm-up read (prewarm) was held too, and given up on, before it was ready.
      const warmUps = held.length;
      const s = await createSession();
      await dispatch(w, s.roomName, { session_id: s.sessionId, category_id: CATEGORY.category_id });
      await waitUntil(() => held.length > warmUps, 'category request sent', 60_000);
      w.proc.child.kill('SIGTERM');
      assert.equal(await w.proc.waitForExit(), 0, w.proc.tail());
      const ending = w.proc.find((l) => l.event === 'session_ending');
      assert.equal(ending?.reason, 'signal', w.proc.tail());
      assert.equal(ending?.signal, 'shutdown_request');
      assert.equal(ending?.before_start, true);
      assert.ok(w.proc.find((l) => l.event === 'room_deleted' && l.msg === 'room deleted'), w.proc.tail());
      assert.equal(w.proc.find((l) => l.event === 'agent_joined'), undefined);
      assert.equal(w.proc.find((l) => l.event === 'job_finished')?.reason, 'signal');
      assert.equal(await roomExists(s.roomName), false, 'room still exists');
      assertCleanLogs(w.proc, s.sessionId);
    } finally {
      slowDynamo.closeAllConnections();
      slowDynamo.close();
    }
  });
});
