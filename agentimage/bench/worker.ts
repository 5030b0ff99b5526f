// Worker-mode part of `npm run bench`: memory of a pool worker's whole process tree (idle and
// during a session) and the early avatar start against the late one, measured at the student.
// Measurements only; nothing here asserts on timing.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  AudioStream,
  Room,
  RoomEvent,
  TrackKind,
  VideoStream,
  type RemoteTrack,
} from '@livekit/rtc-node';
import { AgentDispatchClient } from 'livekit-server-sdk';
import type { BeyStandin } from '../src/standins/bey.js';
import type { RealtimeStandin } from '../src/standins/realtime.js';
import {
  AgentProcess,
  WORKER_ENTRY,
  freePort,
  processTree,
  publishMic,
  runtimeEnv,
  sleep,
  studentToken,
  waitUntil,
  type Dynamo,
  type Livekit,
} from '../test/harness.js';

export interface WorkerBenchEnv {
  lk: Livekit;
  ddb: Dynamo;
  realtime: RealtimeStandin;
  bey: BeyStandin;
  table: string;
  categoryId: string;
}

interface WorkerRun {
  idleTreeMb: number;
  idleMainMb: number;
  idleJobProcMb: number;
  idleProcesses: number;
  sessionTreeMb: number;
  sessionProcesses: number;
  peakTreeMb: number;
  dispatchToJoinedMs: number;
  studentToVideoMs: number;
  studentToAudioMs: number;
}

const mb = (kb: number) => kb / 1024;

function treeKb(pid: number): { total: number; count: number; byCmd: (needle: string) => number } {
  const t = processTree(pid);
  return {
    total: t.reduce((a, p) => a + p.rssKb, 0),
    count: t.length,
    byCmd: (needle) => t.filter((p) => p.cmdline.includes(needle)).reduce((a, p) => a + p.rssKb, 0),
  };
}

/** Sum of each process's VmHWM: an upper bound of the tree's peak (the peaks need not coincide). */
function peakTreeKb(pid: number): number {
  return processTree(pid).reduce((a, p) => {
    try {
      const m = readFileSync(`/proc/${p.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
      return a + (m ? Number(m[1]) : 0);
    } catch {
      return a;
    }
  }, 0);
}

/** Times (performance.now) at which the student got the avatar's first video frame and first non-silent audio. */
function watchAvatar(room: Room): { video?: number; audio?: number } {
  const seen: { video?: number; audio?: number } = {};
  room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _pub, participant) => {
    if (participant.identity !== 'bey-avatar-agent') return;
    void (async () => {
      if (track.kind === TrackKind.KIND_VIDEO) {
        for await (const _ of new VideoStream(track)) {
          seen.video ??= performance.now();
          break;
        }
      } else if (track.kind === TrackKind.KIND_AUDIO) {
        for await (const frame of new AudioStream(track, 24000, 1)) {
          if (frame.data.some((s) => Math.abs(s) > 500)) {
            seen.audio ??= performance.now();
            break;
          }
        }
      }
    })().catch(() => undefined);
  });
  return seen;
}

async function oneRun(env: WorkerBenchEnv, earlyAvatar: boolean, studentDelayMs: number): Promise<WorkerRun> {
  const { lk, ddb, realtime, bey } = env;
  const agentName = `bench-${randomUUID().slice(0, 8)}`;
  const worker = new AgentProcess(
    {
      ...runtimeEnv({
        lk,
        ddb,
        table: env.table,
        beyUrl: bey.url,
        openaiBaseUrl: realtime.baseUrl,
        beyKey: 'bench-bey-key',
        openaiKey: 'sk-bench',
        avatarId: 'bench-avatar',
      }),
      LIVEKIT_AGENT_NAME: agentName,
      AGENT_HEALTH_PORT: String(await freePort()),
      AGENT_EARLY_AVATAR_NO_SHOW_SECONDS: earlyAvatar ? '60' : '0',
      // The run ends when the student leaves; do not wait the production grace window for a rejoin.
      AGENT_STUDENT_REJOIN_GRACE_SECONDS: '1',
    },
    { entry: WORKER_ENTRY, detached: true },
  );
  try {
    await worker.waitForLog((l) => l.event === 'worker_ready', 'worker ready', 90_000);
    await sleep(2000); // let start-up garbage settle before sampling the idle worker
    const idle = treeKb(worker.pid);

    const sessionId = randomUUID();
    const roomName = `video-${sessionId}`;
    await lk.rooms.createRoom({ name: roomName, maxParticipants: 3, emptyTimeout: 600 });
    const student = new Room();
    const seen = watchAvatar(student);
    const t0 = performance.now();
    await new AgentDispatchClient(lk.httpUrl, lk.apiKey, lk.apiSecret).createDispatch(roomName, agentName, {
      metadata: JSON.stringify({ session_id: sessionId, category_id: env.categoryId }),
    });
    // The student connects a moment after the API answered (page, microphone permission, connect).
    const joinedP = worker.waitForLog((l) => l.event === 'agent_joined', 'agent joined').then(() => performance.now());
    await sleep(studentDelayMs);
    await student.connect(lk.url, await studentToken(lk, roomName, randomUUID()), { autoSubscribe: true, dynacast: false });
    const tStudent = performance.now();
    const stopMic = await publishMic(student);
    const tJoined = await joinedP;
    await waitUntil(() => seen.video !== undefined && seen.audio !== undefined, 'avatar video and greeting audio at the student', 60_000);

    const avatar = () => bey.avatars.find((a) => a.roomName === roomName);
    await waitUntil(() => !!avatar()?.segments[0]?.ack, 'greeting played', 60_000);
    const conn = realtime.connections.at(-1)!;
    let sessionKb = 0;
    let sessionProcesses = 0;
    for (let turn = 0; turn < 3; turn++) {
      realtime.simulateStudentSpeech(conn, { respond: true });
      const n = turn + 2;
      await waitUntil(() => (avatar()?.segments.length ?? 0) >= n && !!avatar()!.segments[n - 1].ack, `turn ${turn} played`, 60_000);
      const t = treeKb(worker.pid);
      sessionKb = Math.max(sessionKb, t.total);
      sessionProcesses = Math.max(sessionProcesses, t.count);
    }
    const peakKb = peakTreeKb(worker.pid);
    stopMic();
    await student.disconnect();
    const code = await worker.waitForExit(60_000);
    if (code !== 0) throw new Error(`worker exited ${code}\n${worker.tail()}`);
    return {
      idleTreeMb: mb(idle.total),
      idleMainMb: mb(idle.byCmd('dist/worker.js')),
      idleJobProcMb: mb(idle.byCmd('job_proc_lazy_main')),
      idleProcesses: idle.count,
      sessionTreeMb: mb(sessionKb),
      sessionProcesses,
      peakTreeMb: mb(peakKb),
      dispatchToJoinedMs: tJoined - t0,
      studentToVideoMs: seen.video! - tStudent,
      studentToAudioMs: seen.audio! - tStudent,
    };
  } finally {
    await worker.killGroup().catch(() => undefined);
  }
}

export async function benchWorker(env: WorkerBenchEnv, runs: number): Promise<string> {
  const studentDelayMs = Number(process.env.BENCH_STUDENT_DELAY_MS ?? 1000);
  const results: Record<'early' | 'late', WorkerRun[]> = { early: [], late: [] };
  for (let i = 0; i < runs; i++) {
    // Alternate, so a change in machine load affects both variants alike.
    for (const variant of ['early', 'late'] as const) {
      const r = await oneRun(env, variant === 'early', studentDelayMs);
      results[variant].push(r);
      process.stdout.write(`worker ${variant} run ${i + 1}/${runs}: ${JSON.stringify(r)}\n`);
    }
  }
  const all = [...results.early, ...results.late];
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const pct = (xs: number[], p: number) => sorted(xs)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
  const f = (n: number) => n.toFixed(0);
  const row = (label: string, xs: number[], unit: string) =>
    `| ${label} | ${f(sorted(xs)[0])} | ${f(pct(xs, 50))} | ${f(pct(xs, 95))} | ${f(sorted(xs).at(-1)!)} | ${unit} |`;
  const pick = (rs: WorkerRun[], k: keyof WorkerRun) => rs.map((r) => r[k]);
  return [
    '## Worker mode (`node dist/worker.js`, the warm pool)',
    '',
    `${runs} sessions per variant (${all.length} workers, one fresh worker per session, as ECS would run them), same`,
    'components and conversation as above. Memory is the whole process tree (worker process + job process), summed',
    `RSS from /proc. The student connects ${studentDelayMs} ms after the dispatch call returned (\`BENCH_STUDENT_DELAY_MS\`:`,
    'the browser receiving the API answer and connecting), so a warm agent is already in the room when the student',
    'arrives. "early" starts the avatar as soon as the agent joined',
    '(`AGENT_EARLY_AVATAR_NO_SHOW_SECONDS` > 0, the worker default), "late" once the student joined (`=0`, as the',
    'direct entry does).',
    '',
    '| metric | min | p50 | p95 | max | unit |',
    '|---|---|---|---|---|---|',
    row('idle worker, whole tree', pick(all, 'idleTreeMb'), 'MiB'),
    row('idle: worker process', pick(all, 'idleMainMb'), 'MiB'),
    row('idle: prepared job process', pick(all, 'idleJobProcMb'), 'MiB'),
    row('processes while idle', pick(all, 'idleProcesses'), 'count'),
    row('during the session, whole tree (max of samples)', pick(all, 'sessionTreeMb'), 'MiB'),
    row('processes during the session', pick(all, 'sessionProcesses'), 'count'),
    row('peak, sum of each process\'s VmHWM (upper bound)', pick(all, 'peakTreeMb'), 'MiB'),
    row('dispatch call to "agent joined" (worker log)', pick(all, 'dispatchToJoinedMs'), 'ms'),
    row('early: student connected to first avatar video frame', pick(results.early, 'studentToVideoMs'), 'ms'),
    row('late: student connected to first avatar video frame', pick(results.late, 'studentToVideoMs'), 'ms'),
    row('early: student connected to first greeting audio at the student', pick(results.early, 'studentToAudioMs'), 'ms'),
    row('late: student connected to first greeting audio at the student', pick(results.late, 'studentToAudioMs'), 'ms'),
    '',
    'With the framework defaults the same tree measured 619 MiB idle and 785 MiB during a session here (4 processes:',
    'an end-of-turn inference process of ~320 MiB the Realtime model never uses, and a replacement idle process of',
    '~145 MiB started with the job although the worker takes no second one). Both are trimmed (`src/frameworktrim.ts`).',
    "The stand-in avatar joins within a few hundred ms of its request; a real avatar's start-up time adds fully to the",
    "late path and is overlapped with the student's connection on the early path, so the real difference is larger than",
    "measured here. Dispatch to joined includes the server's fixed ~200 ms wait before it offers a job (notes) and the",
    'category read.',
    '',
  ].join('\n');
}
