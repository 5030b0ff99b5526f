// Stand-in for the Beyond Presence API. POST /v1/session starts an avatar that joins the
// LiveKit room with the token it was given (identity bey-avatar-agent, kind agent), publishes
// a test-pattern video track and an audio track, plays the agent's audio received on the
// `lk.audio_stream` byte stream in real time, acknowledges each segment with RPC
// `lk.playback_finished`, and handles RPC `lk.clear_buffer` (barge-in).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AudioFrame,
  AudioSource,
  LocalAudioTrack,
  LocalVideoTrack,
  Room,
  RoomEvent,
  TrackPublishOptions,
  TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoSource,
  type ByteStreamReader,
} from '@livekit/rtc-node';
import { Watch } from './watch.js';

export const AUDIO_STREAM_TOPIC = 'lk.audio_stream';
export const RPC_PLAYBACK_FINISHED = 'lk.playback_finished';
export const RPC_CLEAR_BUFFER = 'lk.clear_buffer';
const SAMPLE_RATE = 24000;
const FRAME_SAMPLES = SAMPLE_RATE / 100; // 10 ms
const VIDEO_W = 160;
const VIDEO_H = 120;

export interface BeySessionRequest {
  apiKey: string | null;
  body: { avatar_id?: string; livekit_url?: string; livekit_token?: string };
  /** Decoded (not verified) claims of livekit_token. */
  claims: Record<string, any> | null;
  /** When the stand-in received the request (Date.now()). */
  receivedAt: number;
}

/**
 * How stand-in avatars behave: `normal` joins and publishes video and audio; `never_joins` accepts
 * the session but never joins the room; `no_video` joins and publishes audio only.
 */
export type AvatarBehaviour = 'normal' | 'never_joins' | 'no_video';
export const AVATAR_BEHAVIOURS: readonly AvatarBehaviour[] = ['normal', 'never_joins', 'no_video'];

export interface AudioSegment {
  from: string;
  sampleRate: string | undefined;
  bytes: number;
  interrupted: boolean;
  /** Reply of the agent to our lk.playback_finished RPC ("ok" when acknowledged). */
  ack?: string;
  ackError?: string;
}

export class StandinAvatar {
  readonly room = new Room();
  readonly segments: AudioSegment[] = [];
  clearBufferCalls = 0;
  connected = false;
  disconnected = false;
  private videoTimer?: NodeJS.Timeout;
  private audioSource = new AudioSource(SAMPLE_RATE, 1, 1000);
  private videoSource = new VideoSource(VIDEO_W, VIDEO_H);
  private interruptGen = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly request: BeySessionRequest,
    private onChange: () => void,
    private log?: (msg: string, f?: Record<string, unknown>) => void,
    readonly behaviour: AvatarBehaviour = 'normal',
  ) {}

  get roomName(): string | undefined {
    return this.request.claims?.video?.room;
  }

  async start(): Promise<void> {
    const { livekit_url, livekit_token } = this.request.body;
    this.room.on(RoomEvent.Disconnected, () => {
      this.disconnected = true;
      this.stopVideo();
      this.onChange();
    });
    this.room.registerByteStreamHandler(AUDIO_STREAM_TOPIC, (reader, info) => {
      // Segments play one after another, like a real avatar.
      this.chain = this.chain.then(() => this.play(reader, info.identity)).catch((e) => this.log?.('segment failed', { error: String(e) }));
    });
    await this.room.connect(livekit_url!, livekit_token!, { autoSubscribe: false, dynacast: false });
    this.room.localParticipant!.registerRpcMethod(RPC_CLEAR_BUFFER, async () => {
      this.clearBufferCalls++;
      this.interruptGen++;
      this.audioSource.clearQueue();
      this.log?.('avatar clear_buffer');
      this.onChange();
      return 'ok';
    });
    if (this.behaviour !== 'no_video') {
      const video = LocalVideoTrack.createVideoTrack('avatar-video', this.videoSource);
      await this.room.localParticipant!.publishTrack(video, new TrackPublishOptions({ source: TrackSource.SOURCE_CAMERA }));
      this.startVideo();
    }
    const audio = LocalAudioTrack.createAudioTrack('avatar-audio', this.audioSource);
    await this.room.localParticipant!.publishTrack(audio, new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }));
    this.connected = true;
    this.log?.('avatar joined', { room: this.roomName });
    this.onChange();
  }

  private startVideo(): void {
    let t = 0;
    const rgba = new Uint8Array(VIDEO_W * VIDEO_H * 4);
    this.videoTimer = setInterval(() => {
      // Test pattern: colour bars with a moving white column.
      t = (t + 4) % VIDEO_W;
      for (let y = 0; y < VIDEO_H; y++) {
        for (let x = 0; x < VIDEO_W; x++) {
          const o = (y * VIDEO_W + x) * 4;
          const bar = Math.floor((x / VIDEO_W) * 6);
          const white = Math.abs(x - t) < 3;
          rgba[o] = white ? 255 : [255, 255, 0, 0, 255, 0][bar];
          rgba[o + 1] = white ? 255 : [255, 255, 255, 255, 0, 0][bar];
          rgba[o + 2] = white ? 255 : [255, 0, 255, 0, 255, 255][bar];
          rgba[o + 3] = 255;
        }
      }
      try {
        this.videoSource.captureFrame(new VideoFrame(rgba, VIDEO_W, VIDEO_H, VideoBufferType.RGBA));
      } catch {
        /* room closing */
      }
    }, 100);
  }

  private stopVideo(): void {
    if (this.videoTimer) clearInterval(this.videoTimer);
    this.videoTimer = undefined;
  }

  private async play(reader: ByteStreamReader, from: string): Promise<void> {
    const seg: AudioSegment = { from, sampleRate: reader.info.attributes?.sample_rate, bytes: 0, interrupted: false };
    this.segments.push(seg);
    const gen = this.interruptGen;
    let pending = Buffer.alloc(0);
    for await (const chunk of reader) {
      seg.bytes += chunk.byteLength;
      if (gen !== this.interruptGen) continue; // drain what was cleared
      pending = Buffer.concat([pending, Buffer.from(chunk)]);
      while (pending.length >= FRAME_SAMPLES * 2 && gen === this.interruptGen) {
        const pcm = new Int16Array(FRAME_SAMPLES);
        for (let i = 0; i < FRAME_SAMPLES; i++) pcm[i] = pending.readInt16LE(i * 2);
        pending = pending.subarray(FRAME_SAMPLES * 2);
        await this.audioSource.captureFrame(new AudioFrame(pcm, SAMPLE_RATE, 1, FRAME_SAMPLES));
      }
      this.onChange();
    }
    if (gen === this.interruptGen) await this.audioSource.waitForPlayout();
    seg.interrupted = gen !== this.interruptGen;
    const position = seg.bytes / 2 / SAMPLE_RATE;
    try {
      seg.ack = await this.room.localParticipant!.performRpc({
        destinationIdentity: from,
        method: RPC_PLAYBACK_FINISHED,
        payload: JSON.stringify({ playback_position: position, interrupted: seg.interrupted }),
      });
    } catch (e) {
      seg.ackError = String(e);
    }
    this.log?.('avatar segment played', { bytes: seg.bytes, interrupted: seg.interrupted, ack: seg.ack });
    this.onChange();
  }

  async close(): Promise<void> {
    this.stopVideo();
    if (!this.disconnected) {
      try {
        await this.room.disconnect();
      } catch {
        /* ignore */
      }
    }
  }
}

export interface BeyStandinOptions {
  host?: string;
  port?: number;
  /** When set, requests with another x-api-key get 401. */
  expectedApiKey?: string;
  /** Behaviour of the avatars this stand-in starts (default `normal`). */
  avatarBehaviour?: AvatarBehaviour;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class BeyStandin {
  readonly requests: BeySessionRequest[] = [];
  readonly avatars: StandinAvatar[] = [];
  private server: Server;
  private watch = new Watch();

  constructor(private opts: BeyStandinOptions = {}) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    return this.url;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Value for BEY_API_URL. */
  get url(): string {
    return `http://${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** Resolves when `pred` holds; re-checked on every event. */
  waitFor(pred: () => boolean): Promise<void> {
    return this.watch.waitFor(pred);
  }

  private changed = (): void => this.watch.changed();

  async close(): Promise<void> {
    await Promise.all(this.avatars.map((a) => a.close()));
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/healthz') return reply(200, { ok: true });
    if (req.method !== 'POST' || req.url !== '/v1/session') return reply(404, { detail: 'not found' });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const apiKey = (req.headers['x-api-key'] as string | undefined) ?? null;
    if (!apiKey || (this.opts.expectedApiKey && apiKey !== this.opts.expectedApiKey)) {
      return reply(401, { detail: 'invalid api key' });
    }
    let body: BeySessionRequest['body'];
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return reply(400, { detail: 'invalid JSON' });
    }
    if (!body.avatar_id || !body.livekit_url || !body.livekit_token) {
      return reply(422, { detail: 'avatar_id, livekit_url and livekit_token are required' });
    }
    const request: BeySessionRequest = { apiKey, body, claims: decodeJwt(body.livekit_token), receivedAt: Date.now() };
    this.requests.push(request);
    const avatar = new StandinAvatar(request, this.changed, this.opts.log, this.opts.avatarBehaviour);
    this.avatars.push(avatar);
    this.opts.log?.('bey session requested', { avatar_id: body.avatar_id, room: avatar.roomName, behaviour: avatar.behaviour });
    // Like the real service: accept, then join the room asynchronously.
    if (avatar.behaviour !== 'never_joins') {
      avatar.start().catch((e) => this.opts.log?.('avatar failed to join', { error: String(e) }));
    }
    this.changed();
    reply(201, { id: randomUUID(), avatar_id: body.avatar_id });
  }
}

export function decodeJwt(token: string): Record<string, any> | null {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}
