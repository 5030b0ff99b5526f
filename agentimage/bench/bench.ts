// npm run bench: measures, per session, the agent process's start-to-joined latency and its
// memory (RSS), against the same real local components as the tests, and writes
// ../bench/results/agent.md. Measurements only; nothing here asserts on timing.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Room } from '@livekit/rtc-node';
import { dispose } from '@livekit/rtc-node';
import { adoptRtcLogger } from '../src/logger.js';
import { BeyStandin } from '../src/standins/bey.js';
import { RealtimeStandin } from '../src/standins/realtime.js';
import {
  AgentProcess,
  REPO_ROOT,
  publishMic,
  runtimeEnv,
  seedCategories,
  sleep,
  startDynamo,
  startLivekit,
  studentToken,
  waitUntil,
} from '../test/harness.js';
import { benchWorker } from './worker.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** Sessions per worker-mode variant (early and late avatar). */
const WORKER_RUNS = Number(process.env.BENCH_WORKER_RUNS ?? 5);
const TABLE = 'categories-bench';
const CAT = {
  category_id: randomUUID(),
  name: 'Academic Advising',
  system_prompt: 'You are an academic counselor. Help the student plan their courses. '.repeat(20),
  enabled: true,
};

function procKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** utime+stime of a process in seconds (clock ticks of 1/100 s on Linux). */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

interface Run {
  cpuCoresConversation: number;
  spawnToJoinedMs: number;
  selfReportedJoinedMs: number;
  studentToGreetingAudioMs: number;
  rssJoinedMb: number;
  rssConversationMb: number;
  peakMb: number;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
};

async function main(): Promise<void> {
  adoptRtcLogger(null, 'warn');
  const lk = await startLivekit();
  const ddb = await startDynamo();
  const realtime = new RealtimeStandin({ paceFactor: 1, replySeconds: 3 });
  const bey = new BeyStandin();
  await realtime.listen();
  await bey.listen();
  await seedCategories(ddb.client, TABLE, [CAT]);
  const runs: Run[] = [];
  let workerSection = '';
  try {
    for (let i = 0; i < RUNS; i++) {
      const sessionId = randomUUID();
      const roomName = `video-${sessionId}`;
      await lk.rooms.createRoom({ name: roomName, maxParticipants: 3, emptyTimeout: 600 });
      const t0 = performance.now();
      const agent = new AgentProcess({
        SESSION_ID: sessionId,
        ROOM_NAME: roomName,
        CATEGORY_ID: CAT.category_id,
        ...runtimeEnv({
          lk,
          ddb,
          table: TABLE,
          beyUrl: bey.url,
          openaiBaseUrl: realtime.baseUrl,
          beyKey: 'bench-bey-key',
          openaiKey: 'sk-bench',
          avatarId: 'bench-avatar',
        }),
        // The run ends when the student leaves; do not wait the production grace window for a rejoin.
        AGENT_STUDENT_REJOIN_GRACE_SECONDS: '1',
      });
      const joined = await agent.waitForLog((l) => l.event === 'agent_joined', 'agent joined');
      const spawnToJoinedMs = performance.now() - t0;
      const rssJoinedMb = procKb(agent.pid, 'VmRSS') / 1024;

      const student = new Room();
      const token = await studentToken(lk, roomName, randomUUID());
      await student.connect(lk.url, token, { autoSubscribe: true, dynacast: false });
      const tStudent = performance.now();
      const stopMic = await publishMic(student);
      const avatar = () => bey.avatars.find((a) => a.roomName === roomName);
      await waitUntil(() => (avatar()?.segments[0]?.bytes ?? 0) > 0, 'greeting audio at the avatar');
      const studentToGreetingAudioMs = performance.now() - tStudent;
      await waitUntil(() => !!avatar()?.segments[0]?.ack, 'greeting played');
      // A few conversation turns (including one barge-in), sampling memory throughout.
      const conn = realtime.connections.at(-1)!;
      let rssConversation = 0;
      const cpu0 = cpuSeconds(agent.pid);
      const w0 = performance.now();
      for (let turn = 0; turn < 3; turn++) {
        realtime.simulateStudentSpeech(conn, { respond: true });
        const n = turn + 2;
        await waitUntil(() => (avatar()?.segments.length ?? 0) >= n && !!avatar()!.segments[n - 1].ack, `turn ${turn} played`, 60_000);
        rssConversation = Math.max(rssConversation, procKb(agent.pid, 'VmRSS') / 1024);
      }
      await sleep(500);
      rssConversation = Math.max(rssConversation, procKb(agent.pid, 'VmRSS') / 1024);
      const cpuCoresConversation = (cpuSeconds(agent.pid) - cpu0) / ((performance.now() - w0) / 1000);
      const peakMb = procKb(agent.pid, 'VmHWM') / 1024;
      stopMic();
      await student.disconnect();
      const code = await agent.waitForExit();
      if (code !== 0) throw new Error(`agent exited ${code}\n${agent.tail()}`);
      runs.push({
        cpuCoresConversation,
        spawnToJoinedMs,
        selfReportedJoinedMs: Number(joined.start_to_joined_ms),
        studentToGreetingAudioMs,
        rssJoinedMb,
        rssConversationMb: rssConversation,
        peakMb,
      });
      process.stdout.write(`run ${i + 1}/${RUNS}: ${JSON.stringify(runs.at(-1))}\n`);
    }
    workerSection = await benchWorker({ lk, ddb, realtime, bey, table: TABLE, categoryId: CAT.category_id }, WORKER_RUNS);
  } finally {
    await bey.close();
    await realtime.close();
    await dispose();
    await lk.stop();
    await ddb.stop();
  }

  const f = (n: number) => n.toFixed(0);
  const row = (label: string, xs: number[], unit: string) => {
    const s = stats(xs);
    return `| ${label} | ${f(s.min)} | ${f(s.median)} | ${f(s.max)} | ${unit} |`;
  };
  const md = [
    '# Agent benchmark (`cd agentimage && npm run bench`)',
    '',
    `Measured ${new Date().toISOString()} on this machine (${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}),`,
    `${RUNS} sequential sessions against the real local livekit-server and DynamoDB Local with the stand-in Realtime and Bey`,
    'services (the avatar runs in the bench process, not in the agent); the student publishes a microphone track the whole',
    'time, so the agent decodes and forwards student audio throughout. One agent process serves one session, so',
    "the process's RSS is the memory per session. Each session: agent start, student joins, greeting, three",
    'conversation turns, student leaves, agent deletes the room and exits 0.',
    '',
    '| metric | min | median | max | unit |',
    '|---|---|---|---|---|',
    row('process spawn to "agent joined room" (seen by the launcher)', runs.map((r) => r.spawnToJoinedMs), 'ms'),
    row('process start to joined (agent-reported `start_to_joined_ms`)', runs.map((r) => r.selfReportedJoinedMs), 'ms'),
    row('student connected to first greeting audio at the avatar (avatar join included)', runs.map((r) => r.studentToGreetingAudioMs), 'ms'),
    row('RSS right after joining', runs.map((r) => r.rssJoinedMb), 'MiB'),
    row('RSS during the conversation (max of samples)', runs.map((r) => r.rssConversationMb), 'MiB'),
    row('peak RSS (VmHWM) over the session', runs.map((r) => r.peakMb), 'MiB'),
    `| CPU while talking (agent process, average) | ${stats(runs.map((r) => r.cpuCoresConversation)).min.toFixed(2)} | ${stats(runs.map((r) => r.cpuCoresConversation)).median.toFixed(2)} | ${stats(runs.map((r) => r.cpuCoresConversation)).max.toFixed(2)} | cores |`,
    '',
    'Not included: Fargate image pull and task start (20-90 s), network latency to real LiveKit/OpenAI/Bey.',
    `Sizing: peak ${f(stats(runs.map((r) => r.peakMb)).max)} MiB per session fits a 512 MiB task; the smallest`,
    'Fargate size with comfortable CPU headroom for WebRTC + audio is 0.5 vCPU / 1 GiB (0.25 vCPU / 512 MiB is',
    'possible memory-wise; validate CPU against the real services first).',
    '',
    workerSection,
  ].join('\n');
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'agent.md'), md);
  process.stdout.write(md);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
