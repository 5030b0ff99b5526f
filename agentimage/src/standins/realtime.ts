// Stand-in for the OpenAI Realtime WebSocket API (GA event names, as spoken by
// @livekit/agents-plugin-openai 1.9). It answers every response.create with spoken audio
// (a soft PCM16 24 kHz tone) and a transcript, and can simulate the student speaking, with the
// model's answer optionally ending in a function call (as the real model calls a tool).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { Watch } from './watch.js';

export const SAMPLE_RATE = 24000;

export interface RealtimeConnection {
  id: string;
  path: string;
  model: string | null;
  /** The bearer token the client sent (tests use it to tell agents apart; never logged). */
  apiKey: string | null;
  /** Every `instructions` value seen in session.update events, in order. */
  instructions: string[];
  /** Instructions of each response.create, in order. */
  responseInstructions: (string | undefined)[];
  receivedTypes: string[];
  inputAudioBytes: number;
  /** Bytes of appended input audio that are not near-silence (|sample| > 500). */
  inputAudioVoicedBytes: number;
  responsesStarted: number;
  responsesCompleted: number;
  responsesCancelled: number;
  /** The function tools of the latest session.update that carried tools. */
  tools: { name: string; description: string; parameters: unknown }[];
  /** Function calls this stand-in made, and the outputs the client sent back for them. */
  functionCalls: { callId: string; name: string; arguments: string }[];
  functionCallOutputs: { callId: string; output: string }[];
  closed: boolean;
  ws: WebSocket;
}

/** Whether any session.update of the connection carried instructions containing `text` (e.g. a category's prompt). */
export function promptedWith(conn: RealtimeConnection, text: string): boolean {
  return conn.instructions.some((i) => i.includes(text));
}

export interface RealtimeStandinOptions {
  host?: string;
  port?: number;
  /** When set, connections with another bearer token are refused with 401. */
  expectedApiKey?: string;
  /** Seconds of audio per reply (default 3). */
  replySeconds?: number;
  /** Audio chunk size in ms (default 100); chunks are paced at `paceFactor` x real time. */
  chunkMs?: number;
  /** 0 sends all audio at once; 1 paces it in real time (default 0.25). */
  paceFactor?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Serve POST /control/student-speech ({"transcript", "respond"?, "call_tool"?: {"name", "arguments"}}):
   * the student says `transcript` on the newest open connection (local tools only; 404 when off or
   * when no connection is open).
   */
  control?: boolean;
}

export const GOODBYE_TEXT = 'Our time is up for today. Thank you for talking with me, and take care. Goodbye!';
export const TIME_LEFT_TEXT = 'Just so you know, we have a little time left in this session.';
/** The answer to a response.create that follows a function call's output (the model continuing). */
export const AFTER_TOOL_TEXT = "I'm right here with you, and I've put some numbers you can call on your screen.";
/** Spoken before the scripted function call. */
export const BEFORE_TOOL_TEXT = "I'm really glad you told me. Your safety matters most right now.";

/** A function call the model makes at the end of a scripted answer. */
export interface ScriptedToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/**
 * Text of the reply: greets as the counselor named in the response instructions, says goodbye or
 * mentions the time left when asked to, else answers the student.
 */
export function replyText(instructions: string | undefined): string {
  if (instructions && /goodbye/i.test(instructions)) return GOODBYE_TEXT;
  if (instructions && /remain in this session/i.test(instructions)) return TIME_LEFT_TEXT;
  const m = instructions?.match(/as their (.+?) counselor/i);
  if (m) return `Hi, I'm your ${m[1]} counselor. How can I help you today?`;
  if (instructions === undefined) return 'Thanks for telling me. Could you say a little more about that?';
  return "Hi, I'm your academic counselor. How can I help you today?";
}

function tone(seconds: number): Buffer {
  const n = Math.round(seconds * SAMPLE_RATE);
  const buf = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) {
    const v = Math.round(3000 * Math.sin((2 * Math.PI * 220 * i) / SAMPLE_RATE));
    buf.writeInt16LE(v, i * 2);
  }
  return buf;
}

export class RealtimeStandin {
  readonly connections: RealtimeConnection[] = [];
  /** WebSocket upgrades refused on purpose (see refuseNextUpgrades), in order. */
  readonly refusedUpgrades: { status: number; apiKey: string | null }[] = [];
  private refusals: number[] = [];
  private server: Server;
  private wss: WebSocketServer;
  private opts: Required<Omit<RealtimeStandinOptions, 'expectedApiKey' | 'log' | 'control'>> & RealtimeStandinOptions;
  private watch = new Watch();
  private states = new Map<
    RealtimeConnection,
    { startResponse: (instructions: string | undefined, metadata: unknown, toolCall?: ScriptedToolCall) => void }
  >();

  constructor(opts: RealtimeStandinOptions = {}) {
    this.opts = { host: '127.0.0.1', port: 0, replySeconds: 3, chunkMs: 100, paceFactor: 0.25, ...opts };
    this.server = createServer((req, res) => {
      if (this.opts.control && req.method === 'POST' && req.url === '/control/student-speech') {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => this.controlSpeech(body, res));
        return;
      }
      res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' });
      res.end(req.url === '/healthz' ? 'ok' : 'not found');
    });
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (!url.pathname.endsWith('/realtime')) {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
        return;
      }
      const key = bearer(req);
      if (this.opts.expectedApiKey && key !== this.opts.expectedApiKey) {
        socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
        return;
      }
      const refusal = this.refusals.shift();
      if (refusal !== undefined) {
        this.refusedUpgrades.push({ status: refusal, apiKey: key });
        this.opts.log?.('realtime upgrade refused on purpose', { status: refusal });
        socket.end(`HTTP/1.1 ${refusal} Refused\r\ncontent-type: application/json\r\n\r\n{"error":{"message":"stand-in refusal"}}`);
        this.changed();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req, url, key));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    return this.baseUrl;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Value for OPENAI_BASE_URL. */
  get baseUrl(): string {
    return `http://${this.opts.host}:${this.port}/v1`;
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Resolves when `pred` holds; re-checked on every event. */
  waitFor(pred: () => boolean): Promise<void> {
    return this.watch.waitFor(pred);
  }

  /** Refuses the next WebSocket upgrades with these HTTP statuses (e.g. 429, 503), one each. */
  refuseNextUpgrades(...statuses: number[]): void {
    this.refusals.push(...statuses);
  }

  private changed(): void {
    this.watch.changed();
  }

  /**
   * Simulates the student starting to speak (server VAD), which makes the agent interrupt
   * its current speech (barge-in), then stop speaking with a transcript.
   */
  simulateStudentSpeech(
    conn: RealtimeConnection,
    opts: { transcript?: string; respond?: boolean; callTool?: ScriptedToolCall } = {},
  ): void {
    const transcript = opts.transcript ?? 'I have a question.';
    const itemId = `item_${randomUUID().slice(0, 12)}`;
    const send = (ev: Record<string, unknown>) => this.send(conn, ev);
    send({ type: 'input_audio_buffer.speech_started', audio_start_ms: 0, item_id: itemId });
    setTimeout(() => {
      if (conn.closed) return;
      send({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: 800, item_id: itemId });
      send({ type: 'input_audio_buffer.committed', item_id: itemId, previous_item_id: null });
      send({
        type: 'conversation.item.added',
        previous_item_id: null,
        item: { id: itemId, type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_audio', transcript: null }] },
      });
      send({ type: 'conversation.item.input_audio_transcription.completed', item_id: itemId, content_index: 0, transcript });
      // Server VAD with create_response: the server answers on its own (no client metadata).
      if (opts.respond || opts.callTool) this.states.get(conn)?.startResponse(undefined, undefined, opts.callTool);
    }, 300);
  }

  private controlSpeech(body: string, res: import('node:http').ServerResponse): void {
    let req: { transcript?: unknown; respond?: unknown; call_tool?: { name?: unknown; arguments?: unknown } };
    try {
      req = JSON.parse(body);
    } catch {
      res.writeHead(400).end('invalid JSON');
      return;
    }
    const conn = this.connections.filter((c) => !c.closed).at(-1);
    if (!conn || typeof req.transcript !== 'string') {
      res.writeHead(conn ? 400 : 404).end(conn ? 'transcript (string) required' : 'no open Realtime connection');
      return;
    }
    const tool = req.call_tool;
    this.simulateStudentSpeech(conn, {
      transcript: req.transcript,
      respond: req.respond === true,
      ...(tool && typeof tool.name === 'string' ? { callTool: { name: tool.name, arguments: (tool.arguments ?? {}) as Record<string, unknown> } } : {}),
    });
    res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ connection: conn.id }));
  }

  private send(conn: RealtimeConnection, ev: Record<string, unknown>): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(JSON.stringify({ event_id: `event_${randomUUID().slice(0, 12)}`, ...ev }));
  }

  private onConnection(ws: WebSocket, req: IncomingMessage, url: URL, apiKey: string | null): void {
    const conn: RealtimeConnection = {
      id: `sess_${randomUUID().slice(0, 12)}`,
      path: url.pathname,
      model: url.searchParams.get('model'),
      apiKey,
      instructions: [],
      responseInstructions: [],
      receivedTypes: [],
      inputAudioBytes: 0,
      inputAudioVoicedBytes: 0,
      responsesStarted: 0,
      responsesCompleted: 0,
      responsesCancelled: 0,
      tools: [],
      functionCalls: [],
      functionCallOutputs: [],
      closed: false,
      ws,
    };
    this.connections.push(conn);
    this.opts.log?.('realtime connection', { model: conn.model, from: req.socket.remoteAddress });
    let lastItemId: string | null = null;
    let lastCreatedType: string | undefined;
    let current: { id: string; cancelled: boolean } | null = null;
    const session = { id: conn.id, type: 'realtime', object: 'realtime.session', model: conn.model, instructions: '' };
    this.send(conn, { type: 'session.created', session });

    const startResponse = (instructions: string | undefined, metadata: unknown, toolCall?: ScriptedToolCall) => {
      const r = { id: `resp_${randomUUID().slice(0, 12)}`, cancelled: false };
      if (current) current.cancelled = true;
      current = r;
      conn.responsesStarted++;
      conn.responseInstructions.push(instructions);
      const itemId = `item_${randomUUID().slice(0, 12)}`;
      const prev = lastItemId;
      lastItemId = itemId;
      const afterTool = instructions === undefined && lastCreatedType === 'function_call_output';
      lastCreatedType = undefined;
      const text = toolCall ? BEFORE_TOOL_TEXT : afterTool ? AFTER_TOOL_TEXT : replyText(instructions);
      const call = toolCall && { callId: `call_${randomUUID().slice(0, 12)}`, itemId: `item_${randomUUID().slice(0, 12)}`, ...toolCall };
      if (call) lastItemId = call.itemId;
      void this.respond(conn, r, itemId, prev, metadata, text, call).finally(() => {
        if (current === r) current = null;
        this.changed();
      });
      this.changed();
    };
    this.states.set(conn, { startResponse });
    ws.on('close', () => {
      conn.closed = true;
      if (current) current.cancelled = true;
      this.changed();
    });
    ws.on('message', (data) => {
      let ev: any;
      try {
        ev = JSON.parse(String(data));
      } catch {
        this.send(conn, { type: 'error', error: { type: 'invalid_request_error', message: 'invalid JSON' } });
        return;
      }
      if (ev.type !== 'input_audio_buffer.append') conn.receivedTypes.push(ev.type);
      switch (ev.type) {
        case 'session.update':
          if (typeof ev.session?.instructions === 'string') {
            conn.instructions.push(ev.session.instructions);
            session.instructions = ev.session.instructions;
          }
          if (Array.isArray(ev.session?.tools)) conn.tools = ev.session.tools;
          this.send(conn, { type: 'session.updated', session });
          break;
        case 'input_audio_buffer.append': {
          const pcm = Buffer.from(String(ev.audio ?? ''), 'base64');
          conn.inputAudioBytes += pcm.length;
          for (let i = 0; i + 1 < pcm.length; i += 2) if (Math.abs(pcm.readInt16LE(i)) > 500) conn.inputAudioVoicedBytes += 2;
          break;
        }
        case 'input_audio_buffer.commit':
          this.send(conn, { type: 'input_audio_buffer.committed', item_id: `item_${randomUUID().slice(0, 12)}`, previous_item_id: lastItemId });
          break;
        case 'input_audio_buffer.clear':
          this.send(conn, { type: 'input_audio_buffer.cleared' });
          break;
        case 'conversation.item.create': {
          const item = { ...ev.item, id: ev.item?.id ?? `item_${randomUUID().slice(0, 12)}`, status: 'completed' };
          lastCreatedType = item.type;
          if (item.type === 'function_call_output') conn.functionCallOutputs.push({ callId: String(item.call_id), output: String(item.output) });
          this.send(conn, { type: 'conversation.item.added', previous_item_id: ev.previous_item_id ?? lastItemId, item });
          this.send(conn, { type: 'conversation.item.done', previous_item_id: ev.previous_item_id ?? lastItemId, item });
          lastItemId = item.id;
          break;
        }
        case 'conversation.item.delete':
          this.send(conn, { type: 'conversation.item.deleted', item_id: ev.item_id });
          break;
        case 'conversation.item.truncate':
          this.send(conn, { type: 'conversation.item.truncated', item_id: ev.item_id, content_index: ev.content_index ?? 0, audio_end_ms: ev.audio_end_ms ?? 0 });
          break;
        case 'response.cancel':
          if (current) current.cancelled = true;
          break;
        case 'response.create':
          startResponse(ev.response?.instructions, ev.response?.metadata);
          break;
        default:
          break;
      }
      this.changed();
    });
  }

  private async respond(
    conn: RealtimeConnection,
    r: { id: string; cancelled: boolean },
    itemId: string,
    previousItemId: string | null,
    metadata: unknown,
    text: string,
    call?: ScriptedToolCall & { callId: string; itemId: string },
  ): Promise<void> {
    const send = (ev: Record<string, unknown>) => this.send(conn, ev);
    const base = { response_id: r.id, item_id: itemId, output_index: 0, content_index: 0 };
    const item = { id: itemId, object: 'realtime.item', type: 'message', role: 'assistant', status: 'in_progress', content: [] as unknown[] };
    send({ type: 'response.created', response: { id: r.id, object: 'realtime.response', status: 'in_progress', output: [], metadata: metadata ?? null } });
    send({ type: 'response.output_item.added', response_id: r.id, output_index: 0, item });
    send({ type: 'conversation.item.added', previous_item_id: previousItemId, item });
    send({ type: 'response.content_part.added', ...base, part: { type: 'audio', transcript: '' } });

    const audio = tone(this.opts.replySeconds);
    const chunkBytes = Math.round((SAMPLE_RATE * this.opts.chunkMs) / 1000) * 2;
    const words = text.split(' ');
    const chunks = Math.ceil(audio.length / chunkBytes);
    let wordIdx = 0;
    for (let i = 0; i < chunks && !r.cancelled && !conn.closed; i++) {
      // Spread the transcript over the first half of the audio.
      const wordsDue = Math.min(words.length, Math.ceil(((i + 1) / Math.max(1, chunks / 2)) * words.length));
      while (wordIdx < wordsDue) {
        send({ type: 'response.output_audio_transcript.delta', ...base, delta: (wordIdx ? ' ' : '') + words[wordIdx] });
        wordIdx++;
      }
      send({ type: 'response.output_audio.delta', ...base, delta: audio.subarray(i * chunkBytes, (i + 1) * chunkBytes).toString('base64') });
      if (this.opts.paceFactor > 0) await sleep(this.opts.chunkMs * this.opts.paceFactor);
    }
    const status = r.cancelled ? 'cancelled' : 'completed';
    const doneItem = { ...item, status: r.cancelled ? 'incomplete' : 'completed', content: [{ type: 'output_audio', transcript: text }] };
    send({ type: 'response.output_audio.done', ...base });
    send({ type: 'response.output_audio_transcript.done', ...base, transcript: text });
    send({ type: 'response.content_part.done', ...base, part: { type: 'audio', transcript: text } });
    send({ type: 'response.output_item.done', response_id: r.id, output_index: 0, item: doneItem });
    const output: unknown[] = [doneItem];
    if (call && !r.cancelled && !conn.closed) {
      // As the real model does: the function call is the last output item of the answer.
      const args = JSON.stringify(call.arguments);
      const fc = { id: call.itemId, object: 'realtime.item', type: 'function_call', call_id: call.callId, name: call.name };
      const fcBase = { response_id: r.id, item_id: call.itemId, output_index: 1, call_id: call.callId };
      send({ type: 'response.output_item.added', response_id: r.id, output_index: 1, item: { ...fc, status: 'in_progress', arguments: '' } });
      send({ type: 'conversation.item.added', previous_item_id: itemId, item: { ...fc, status: 'in_progress', arguments: '' } });
      send({ type: 'response.function_call_arguments.delta', ...fcBase, delta: args });
      send({ type: 'response.function_call_arguments.done', ...fcBase, arguments: args });
      const fcDone = { ...fc, status: 'completed', arguments: args };
      send({ type: 'response.output_item.done', response_id: r.id, output_index: 1, item: fcDone });
      output.push(fcDone);
      conn.functionCalls.push({ callId: call.callId, name: call.name, arguments: args });
    }
    send({
      type: 'response.done',
      response: {
        id: r.id,
        object: 'realtime.response',
        status,
        output,
        metadata: metadata ?? null,
        usage: { total_tokens: 0, input_tokens: 0, output_tokens: 0, input_token_details: {}, output_token_details: {} },
      },
    });
    if (r.cancelled) conn.responsesCancelled++;
    else conn.responsesCompleted++;
    this.opts.log?.('realtime response done', { status, text });
  }
}

function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (!h || !h.startsWith('Bearer ')) return null;
  return h.slice('Bearer '.length);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
