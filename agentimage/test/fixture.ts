// The stack the end-to-end agent tests share: a real livekit-server and DynamoDB Local (seeded
// categories), the stand-in Realtime server and Bey API, agent processes and student clients,
// and the checks every test makes on an agent's logs.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Room, RoomEvent, TrackKind, VideoStream, dispose, type RemoteTrack } from '@livekit/rtc-node';
import { BeyStandin } from '../src/standins/bey.js';
import { RealtimeStandin } from '../src/standins/realtime.js';
import { adoptRtcLogger } from '../src/logger.js';
import { AgentProcess, runtimeEnv, seedCategories, startDynamo, startLivekit, studentToken, type Dynamo, type Livekit } from './harness.js';

export const TABLE = 'categories-test';
export const CAT_ACADEMIC = {
  category_id: randomUUID(),
  name: 'Academic Advising',
  system_prompt: 'You are ACADEMIC-PROMPT-7f3a, a counselor who helps students plan courses.',
  enabled: true,
};
export const CAT_CAREER = {
  category_id: randomUUID(),
  name: 'Career Guidance',
  system_prompt: 'You are CAREER-PROMPT-91bc, a counselor who helps students with internships.',
  enabled: true,
};
export const CAT_DISABLED = {
  category_id: randomUUID(),
  name: 'Retired Topic',
  system_prompt: 'You are DISABLED-PROMPT.',
  enabled: false,
};
export const AVATAR_ID = 'b9be11b8-89fb-4227-8f86-4a881393cbdb';
export const OPENAI_KEY = 'sk-test-openai-5e1f0c2a9d';
export const BEY_KEY = 'bey-test-key-77d3a1c0';

export interface Student {
  room: Room;
  identity: string;
  videoFrom: Set<string>;
  transcripts: string[];
  frames: number;
  /** What this client saw, in order: `transcript:<text>` and `disconnected:<reason>`. */
  events: string[];
}

export class AgentStack {
  lk!: Livekit;
  ddb!: Dynamo;
  realtime!: RealtimeStandin;
  bey!: BeyStandin;
  readonly agents: AgentProcess[] = [];
  readonly students: Room[] = [];

  async start(): Promise<void> {
    adoptRtcLogger(null, 'warn');
    // Start both even if one fails, so stop() can stop whatever did start.
    const [l, d] = await Promise.allSettled([startLivekit(), startDynamo()]);
    if (l.status === 'fulfilled') this.lk = l.value;
    if (d.status === 'fulfilled') this.ddb = d.value;
    if (l.status === 'rejected') throw l.reason;
    if (d.status === 'rejected') throw d.reason;
    await seedCategories(this.ddb.client, TABLE, [CAT_ACADEMIC, CAT_CAREER, CAT_DISABLED]);
    this.realtime = new RealtimeStandin({ paceFactor: 0.25, replySeconds: 3 });
    this.bey = new BeyStandin({ expectedApiKey: BEY_KEY });
    await this.realtime.listen();
    await this.bey.listen();
  }

  async stop(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.kill()));
    for (const s of this.students) await s.disconnect().catch(() => undefined);
    await this.bey?.close();
    await this.realtime?.close();
    await dispose();
    await this.lk?.stop();
    await this.ddb?.stop();
  }

  agentEnv(sessionId: string, roomName: string, categoryId: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      SESSION_ID: sessionId,
      ROOM_NAME: roomName,
      CATEGORY_ID: categoryId,
      ...runtimeEnv({
        lk: this.lk,
        ddb: this.ddb,
        table: TABLE,
        beyUrl: this.bey.url,
        openaiBaseUrl: this.realtime.baseUrl,
        beyKey: BEY_KEY,
        openaiKey: OPENAI_KEY,
        avatarId: AVATAR_ID,
      }),
      ...extra,
    };
  }

  startAgent(env: Record<string, string>): AgentProcess {
    const a = new AgentProcess(env);
    this.agents.push(a);
    return a;
  }

  async createRoom(): Promise<{ sessionId: string; roomName: string }> {
    const sessionId = randomUUID();
    const roomName = `video-${sessionId}`;
    await this.lk.rooms.createRoom({ name: roomName, maxParticipants: 3, emptyTimeout: 600, departureTimeout: 5 });
    return { sessionId, roomName };
  }

  /** Joins as a student; pass `identity` to join again as the same student (reload, second tab). */
  async joinStudent(roomName: string, identity: string = randomUUID() /* a Cognito sub */): Promise<Student> {
    const room = new Room();
    this.students.push(room);
    const s: Student = { room, identity, videoFrom: new Set(), transcripts: [], frames: 0, events: [] };
    room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _pub, participant) => {
      if (track.kind === TrackKind.KIND_VIDEO) {
        s.videoFrom.add(participant.identity);
        void (async () => {
          for await (const _ of new VideoStream(track)) {
            s.frames++;
            if (s.frames >= 3) break;
          }
        })().catch(() => undefined);
      }
    });
    room.on(RoomEvent.Disconnected, (reason) => s.events.push(`disconnected:${reason}`));
    room.registerTextStreamHandler('lk.transcription', async (reader) => {
      try {
        const text = await reader.readAll();
        s.transcripts.push(text);
        s.events.push(`transcript:${text}`);
      } catch {
        // The room closed while a transcript was streaming (the session is ending): nothing to keep.
      }
    });
    await room.connect(this.lk.url, await studentToken(this.lk, roomName, identity), { autoSubscribe: true, dynacast: false });
    return s;
  }

  async roomExists(name: string): Promise<boolean> {
    return (await this.lk.rooms.listRooms([name])).some((r) => r.name === name);
  }

  assertCleanLogs(a: AgentProcess, sessionId: string): void {
    if (process.env.AGENT_LOG_DIR) writeFileSync(join(process.env.AGENT_LOG_DIR, `agent-${sessionId}.log`), a.stdout + '\n--- stderr ---\n' + a.stderr);
    const lines = a.lines();
    assert.ok(lines.length > 0, 'agent logged nothing');
    for (const l of lines) {
      assert.notEqual(l.level, 'NOT_JSON', `non-JSON log line: ${l.msg}`);
      assert.equal(l.session_id, sessionId, `log line without this session id: ${JSON.stringify(l).slice(0, 300)}`);
    }
    for (const l of a.stderr.split('\n').filter((x) => x.trim())) {
      assert.doesNotThrow(() => JSON.parse(l), `non-JSON stderr line: ${l}`);
    }
    for (const secret of [this.lk.apiSecret, OPENAI_KEY, BEY_KEY]) {
      assert.ok(!a.stdout.includes(secret), 'a secret appears in stdout');
      assert.ok(!a.stderr.includes(secret), 'a secret appears in stderr');
    }
  }
}
