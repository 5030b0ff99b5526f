// One session = one room, whichever entry point runs it: the direct entry (main.ts) joins
// ROOM_NAME itself; the worker (worker.ts / job.ts) runs it in a dispatched job. runSession
// waits for the student, starts the Bey avatar and the OpenAI Realtime conversation, greets,
// and ends the session (deleting the room) on the first end condition.
import { voice } from '@livekit/agents';
import {
  DisconnectReason,
  ParticipantKind,
  Room,
  RoomEvent,
  TrackKind,
  type RemoteParticipant,
  type RemoteTrackPublication,
} from '@livekit/rtc-node';
import { AccessToken, RoomServiceClient, TrackSource } from 'livekit-server-sdk';
import { AvatarWatch } from './avatar-watch.js';
import { AVATAR_IDENTITY, BeyAvatar } from './bey-avatar.js';
import type { Category } from './categories.js';
import type { RuntimeConfig } from './config.js';
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import { ResilientRealtimeModel } from './realtime-retry.js';
import { deleteSessionRoom } from './room-cleanup.js';
import { matchCrisisPhrase } from './crisis-phrases.js';
import { SessionFlagRecorder, StaffAlerter, safetyClients } from './safety-aws.js';
import { CRISIS_RESOURCES, SAFETY_TOPIC, SafetyMonitor, safetyInstructions, safetyTool } from './safety.js';
import { SessionLimit, sayGoodbye } from './session-wrapup.js';
import { StudentPresence } from './student-presence.js';
import { withTimeout } from './timeouts.js';

export { AVATAR_IDENTITY };

export type EndReason =
  | 'student_left'
  | 'room_closed'
  | 'max_duration'
  | 'student_join_timeout'
  | 'room_missing'
  | 'signal'
  | 'session_error'
  | 'avatar_failed'
  | 'avatar_timeout'
  | 'startup_failed';

export const EXIT_CODE: Record<EndReason, number> = {
  student_left: 0,
  room_closed: 0,
  max_duration: 0,
  student_join_timeout: 0,
  room_missing: 0,
  signal: 0,
  session_error: 1,
  avatar_failed: 1,
  avatar_timeout: 1,
  startup_failed: 1,
};

export function agentIdentity(sessionId: string): string {
  return `agent-${sessionId}`;
}

/** HTTP(S) base URL of the LiveKit server API for a ws(s) or http(s) LIVEKIT_URL. */
export function livekitHttpUrl(url: string): string {
  return url.replace(/^ws(s?):\/\//, 'http$1://');
}

/** Display name of the agent participant (both entry points). */
export const AGENT_NAME = 'Counselor';

/** The session an agent serves. */
export interface SessionTarget {
  sessionId: string;
  roomName: string;
  /** This agent replaces one that left mid-session: the greeting acknowledges the interruption. */
  replacement?: boolean;
}

export function greetingInstructions(category: Category, opts: { replacement?: boolean } = {}): string {
  if (opts.replacement) {
    return (
      `The connection to the student was interrupted and you are back. In one short sentence, as their ` +
      `${category.name} counselor, apologise for the interruption and ask them to continue where they left off.`
    );
  }
  return (
    `Greet the student warmly and introduce yourself as their ${category.name} counselor, ` +
    `in one or two short sentences, then ask how you can help today.`
  );
}

/** The counselor's instructions: the category's prompt, then the safety protocol every category shares. */
export function counselorInstructions(category: Category): string {
  return `${category.systemPrompt}\n\n${safetyInstructions()}`;
}

export async function agentToken(cfg: RuntimeConfig, target: SessionTarget): Promise<string> {
  const at = new AccessToken(cfg.livekitApiKey, cfg.livekitApiSecret, {
    identity: agentIdentity(target.sessionId),
    name: AGENT_NAME,
    ttl: cfg.maxDurationSeconds + cfg.safetyGraceSeconds + cfg.studentJoinTimeoutSeconds + 600,
  });
  at.kind = 'agent';
  at.addGrant({
    roomJoin: true,
    room: target.roomName,
    canPublish: true,
    canSubscribe: true,
    canPublishData: true,
    canUpdateOwnMetadata: true,
    canPublishSources: [TrackSource.MICROPHONE],
  });
  return at.toJwt();
}

interface Ending {
  reason: EndReason;
  detail?: Record<string, unknown>;
}

/** Resolves once; later calls to end() are ignored (the first end condition wins). */
class EndSignal {
  private resolveFn!: (e: Ending) => void;
  readonly promise: Promise<Ending>;
  ended: Ending | undefined;
  constructor() {
    this.promise = new Promise((r) => (this.resolveFn = r));
  }
  end(reason: EndReason, detail?: Record<string, unknown>): void {
    if (this.ended) return;
    this.ended = { reason, detail };
    this.resolveFn(this.ended);
  }
}

class Ended extends Error {}

/** Thrown by a connect function when the room no longer exists: the session is already over. */
export class RoomMissingError extends Error {
  constructor() {
    super('room does not exist');
    this.name = 'RoomMissingError';
  }
}

function isStudent(p: RemoteParticipant): boolean {
  return p.info.kind === ParticipantKind.STANDARD;
}

/**
 * The direct entry's connect: checks that the room still exists (joining would recreate a
 * room the backend already closed), then joins it with a token of its own.
 */
export function directConnect(cfg: RuntimeConfig, target: SessionTarget, room: Room): () => Promise<void> {
  return async () => {
    const roomService = new RoomServiceClient(livekitHttpUrl(cfg.livekitUrl), cfg.livekitApiKey, cfg.livekitApiSecret);
    const rooms = await withTimeout(roomService.listRooms([target.roomName]), 15_000, 'listRooms');
    if (!rooms.some((r) => r.name === target.roomName)) throw new RoomMissingError();
    const token = await agentToken(cfg, target);
    await withTimeout(room.connect(cfg.livekitUrl, token, { autoSubscribe: false, dynacast: false }), 30_000, 'room connect');
  };
}

export interface RunOptions {
  cfg: RuntimeConfig;
  target: SessionTarget;
  category: Category;
  logger: Logger;
  /** The room to run in, not yet connected (listeners are attached before `connect` runs). */
  room: Room;
  /**
   * Joins `room` as agentIdentity(target.sessionId), without subscribing to anything (runSession
   * subscribes to the student's audio itself); RoomMissingError if the session is already over.
   */
  connect: () => Promise<void>;
  /**
   * > 0: start the avatar together with the agent's own connect, overlapping it with both joins
   * (only for a room known to exist, as a dispatched job's: the avatar's join would recreate a
   * deleted one), and end the session (student_join_timeout) if no student joined within that many
   * seconds of the avatar starting. 0 or unset: start the avatar once the student joined. Either
   * way the avatar's deadline (avatarJoinTimeoutSeconds) counts from the avatar's start.
   */
  earlyAvatarNoShowSeconds?: number;
  /** Registered signal handlers call this; the entry point wires its stop requests to it. */
  onStopRequest: (fn: (signal: string) => void) => void;
  /** The entry point wires uncaught exceptions to this: the session ends cleanly (room deleted), exit 1. */
  onFatal: (fn: (err: unknown) => void) => void;
  /** The session's metric events (join, avatar, Realtime); the entry point records the exit. */
  metrics?: AgentMetrics;
}

export interface SessionResult {
  reason: EndReason;
  /** 0 for a normal end, 1 for a failure (EXIT_CODE). */
  exitCode: number;
}

/**
 * Runs the session to its end (room deleted, room disconnected) and returns how it ended.
 * Never throws. Native resources (`dispose()`) are the entry point's to release.
 */
export async function runSession({
  cfg,
  target,
  category,
  logger,
  room,
  connect,
  earlyAvatarNoShowSeconds = 0,
  onStopRequest,
  onFatal,
  metrics,
}: RunOptions): Promise<SessionResult> {
  const startedAt = performance.now();
  const endSignal = new EndSignal();
  const until = <T>(p: Promise<T>): Promise<T> =>
    Promise.race([p, endSignal.promise.then(() => Promise.reject(new Ended()))]);
  const timers: NodeJS.Timeout[] = [];
  const roomService = new RoomServiceClient(livekitHttpUrl(cfg.livekitUrl), cfg.livekitApiKey, cfg.livekitApiSecret);
  let session: voice.AgentSession | undefined;
  /** Set once the conversation runs (the counselor can speak). */
  let conversation: voice.AgentSession | undefined;
  let studentIdentity: string | undefined;
  let joined = false;
  let connecting: Promise<void> | undefined;
  const presence = new StudentPresence(room, {
    graceMs: cfg.studentRejoinGraceSeconds * 1000,
    logger,
    onGone: (detail) => endSignal.end('student_left', detail),
  });
  let avatarRequestedAt = 0;
  const avatar = new BeyAvatar({
    avatarId: cfg.beyAvatarId,
    apiKey: cfg.beyApiKey,
    ...(cfg.beyApiUrl ? { apiUrl: cfg.beyApiUrl } : {}),
  });
  const requestAvatar = (): Promise<void> => {
    avatarRequestedAt = performance.now();
    return avatar.request(
      { roomName: target.roomName, agentIdentity: agentIdentity(target.sessionId) },
      { livekitUrl: cfg.livekitUrl, livekitApiKey: cfg.livekitApiKey, livekitApiSecret: cfg.livekitApiSecret },
    );
  };
  // Early start (pool workers, dispatched to a room that exists): the avatar is requested first
  // thing, so it boots while this agent builds its session and joins and the student connects.
  // Awaited once the agent joined (startAvatar); the catch only keeps it from rejecting unobserved.
  const earlyAvatar = earlyAvatarNoShowSeconds > 0 ? requestAvatar() : undefined;
  earlyAvatar?.catch(() => undefined);
  const avatarWatch = new AvatarWatch(room, {
    identity: AVATAR_IDENTITY,
    timeoutMs: cfg.avatarJoinTimeoutSeconds * 1000,
    logger,
    onTimeout: (detail) => endSignal.end('avatar_timeout', detail),
    // Its first readiness only: one that left and came back is no join latency.
    onReady: () => {
      if (avatarRequestedAt > 0) void metrics?.avatarReady(performance.now() - avatarRequestedAt);
      avatarRequestedAt = 0;
    },
  });

  const limit = new SessionLimit({
    maxDurationSeconds: cfg.maxDurationSeconds,
    noticeSeconds: cfg.wrapUpNoticeSeconds,
    conversation: () => (presence.away ? undefined : conversation),
    onLimit: () => endSignal.end('max_duration'),
    logger,
  });
  const aws = safetyClients(cfg.awsRegion);
  const recorder = new SessionFlagRecorder(aws.dynamo, cfg.sessionsTable, target.sessionId);
  const alerter = new StaffAlerter(aws.sns, cfg.safetyAlertTopicArn);
  const safety = new SafetyMonitor({
    sessionId: target.sessionId,
    category: { id: category.categoryId, name: category.name },
    logger,
    record: (flag) => recorder.record(flag),
    alert: (a) => alerter.publish(a),
    showResources: async () => {
      if (!studentIdentity) throw new Error('no student linked yet');
      await room.localParticipant!.publishData(new TextEncoder().encode(JSON.stringify(CRISIS_RESOURCES)), {
        reliable: true,
        topic: SAFETY_TOPIC,
        destination_identities: [studentIdentity],
      });
    },
    onFirstConcern: () => limit.extendOnce(cfg.safetyGraceSeconds, 'safety_concern'),
  });

  onStopRequest((signal) => {
    logger.info({ signal }, 'stop requested');
    endSignal.end('signal', { signal });
  });
  // E.g. the OpenAI plugin's WebSocket has no 'error' listener during the handshake, so a refused
  // connection (401/429/5xx) surfaces as an uncaught exception: end the session instead of dying
  // with the room (and a billing avatar) left behind.
  onFatal((err) => endSignal.end('session_error', { error: String(err) }));

  try {
    room.on(RoomEvent.ParticipantConnected, (p) => {
      logger.info({ participant: p.identity, kind: ParticipantKind[p.info.kind ?? 0] }, 'participant joined');
      if (!studentIdentity && isStudent(p)) onStudent(p);
      // A reload or a second tab is a new page: it gets the crisis resources again.
      else if (p.identity === studentIdentity) safety.resendResources();
    });
    room.on(RoomEvent.ParticipantDisconnected, (p) => {
      logger.info(
        { participant: p.identity, reason: DisconnectReason[p.disconnectReason ?? 0] },
        'participant left',
      );
    });
    room.on(RoomEvent.Disconnected, (reason) => {
      logger.info({ reason: DisconnectReason[reason] }, 'disconnected from room');
      // LiveKit closes the room once the student has been gone past its departure timeout.
      if (presence.away) endSignal.end('student_left', { room_closed: true, disconnect_reason: DisconnectReason[reason] });
      else endSignal.end('room_closed', { disconnect_reason: DisconnectReason[reason] });
    });

    // The agent listens to the student's voice and nothing else. The avatar's tracks are for the
    // student, and a subscription of the agent's to the avatar's video would make the student wait
    // for their first avatar frame: LiveKit throttles keyframe requests per track (500 ms for a small
    // layer), so the student's request, right after the agent's, waited out the throttle.
    const subscribeIfStudentAudio = (pub: RemoteTrackPublication, p: RemoteParticipant) => {
      if (isStudent(p) && pub.kind === TrackKind.KIND_AUDIO && !pub.subscribed) pub.setSubscribed(true);
    };
    room.on(RoomEvent.TrackPublished, subscribeIfStudentAudio);
    room.on(RoomEvent.TrackSubscribed, (track, _pub, p) => {
      logger.info({ event: 'track_subscribed', participant: p.identity, kind: TrackKind[track.kind ?? 0] }, 'track subscribed');
    });

    let studentResolve!: (id: string) => void;
    const studentJoined = new Promise<string>((r) => (studentResolve = r));
    const onStudent = (p: RemoteParticipant) => {
      studentIdentity = p.identity;
      presence.follow(p.identity);
      logger.info({ student: p.identity }, 'student joined');
      studentResolve(p.identity);
    };

    // The join starts now and the session is built while it runs (construction is synchronous, so
    // the join cannot reject unobserved before it is awaited below). Avatar first, then the
    // conversation: the avatar takes over the session's audio output.
    connecting = connect();
    session = new voice.AgentSession({
      llm: new ResilientRealtimeModel({
        model: cfg.openaiRealtimeModel,
        voice: cfg.openaiVoice,
        apiKey: cfg.openaiApiKey,
        ...(cfg.openaiBaseUrl ? { baseURL: cfg.openaiBaseUrl } : {}),
        maxSessionDuration: cfg.realtimeSessionMaxSeconds * 1000,
        logger,
        metrics,
      }),
    });
    session.on(voice.AgentSessionEventTypes.Close, (ev) => {
      if (ev.error) {
        logger.error({ reason: ev.reason, error: String((ev.error as { error?: unknown }).error ?? ev.error) }, 'agent session closed with error');
        endSignal.end('session_error');
      } else {
        logger.info({ reason: ev.reason }, 'agent session closed');
      }
    });
    // The backstop: the student's final transcripts against the crisis phrases (never logged).
    session.on(voice.AgentSessionEventTypes.UserInputTranscribed, (ev) => {
      if (!ev.isFinal) return;
      const match = matchCrisisPhrase(ev.transcript);
      if (match) safety.raise({ ...match, source: 'phrase_list' });
    });
    session.on(voice.AgentSessionEventTypes.Error, (ev) => {
      const recoverable = (ev.error as { recoverable?: boolean } | undefined)?.recoverable;
      logger.warn({ recoverable, error: String((ev.error as { error?: unknown })?.error ?? ev.error) }, 'agent session error');
      // Recoverable ones are the plugin's own reconnects (one at every maxSessionDuration): no failure.
      if (recoverable === false) void metrics?.realtimeError();
    });

    const startAvatar = async (early: boolean) => {
      try {
        await until(earlyAvatar ?? requestAvatar());
        await until(avatar.attach(session!, room));
      } catch (err) {
        if (err instanceof Ended) throw err;
        logger.error({ error: String(err) }, 'avatar failed to start');
        endSignal.end('avatar_failed');
        throw new Ended();
      }
      logger.info({ event: 'avatar_started', avatar_id: cfg.beyAvatarId, early, agent_in_room: joined }, 'avatar started');
      // Bey accepted the session: from now on its participant must join and publish video in time.
      avatarWatch.start();
    };

    try {
      await until(connecting);
    } catch (err) {
      if (!(err instanceof RoomMissingError)) throw err;
      // The API created the room; if it is already gone (session cancelled before this agent
      // started), do not recreate it by joining.
      logger.warn('room does not exist (session already over); not joining');
      endSignal.end('room_missing');
      throw new Ended();
    }
    joined = true;
    const processToJoinedMs = Math.round(process.uptime() * 1000);
    const sessionToJoinedMs = Math.round(performance.now() - startedAt);
    logger.info(
      {
        event: 'agent_joined',
        identity: agentIdentity(target.sessionId),
        replacement: target.replacement === true,
        start_to_joined_ms: processToJoinedMs,
        session_to_joined_ms: sessionToJoinedMs,
        rss_mb: Math.round(process.memoryUsage.rss() / 1048576),
      },
      'agent joined room',
    );
    void metrics?.agentJoined({ processToJoinedMs, sessionToJoinedMs });

    // Not unref'd: these keep the process alive until they fire or cleanup clears them.
    limit.start();
    timers.push(
      setTimeout(() => {
        if (!studentIdentity) endSignal.end('student_join_timeout');
      }, cfg.studentJoinTimeoutSeconds * 1000),
    );

    // Late start: the student may already be in the room (and publishing).
    for (const p of room.remoteParticipants.values()) {
      logger.info({ participant: p.identity, kind: ParticipantKind[p.info.kind ?? 0] }, 'participant already in room');
      if (!studentIdentity && isStudent(p)) onStudent(p);
      for (const pub of p.trackPublications.values()) subscribeIfStudentAudio(pub, p);
    }

    if (earlyAvatar) {
      await startAvatar(true);
      // A no-show is bounded: the avatar bills from its start.
      timers.push(
        setTimeout(() => {
          if (!studentIdentity) endSignal.end('student_join_timeout', { early_avatar: true });
        }, earlyAvatarNoShowSeconds * 1000),
      );
    }
    const student = await until(studentJoined);
    if (!earlyAvatar) await startAvatar(false);

    await until(
      session.start({
        agent: new voice.Agent({
          instructions: counselorInstructions(category),
          tools: [safetyTool((concern) => safety.raise(concern))],
        }),
        room,
        inputOptions: { participantIdentity: student, closeOnDisconnect: false },
      }),
    );
    logger.info({ event: 'conversation_started', model: cfg.openaiRealtimeModel }, 'conversation started');
    conversation = session;

    session.generateReply({ instructions: greetingInstructions(category, { replacement: target.replacement }) });
    logger.info(
      { event: 'greeting_requested', category_name: category.name, replacement: target.replacement === true },
      'greeting requested',
    );
  } catch (err) {
    if (!(err instanceof Ended)) {
      logger.error({ error: String(err) }, 'startup failed');
      endSignal.end('startup_failed');
    }
  }

  const ending = await endSignal.promise;
  const code = EXIT_CODE[ending.reason];
  // Whatever happens during cleanup, the process ends.
  setTimeout(() => {
    logger.error({ event: 'agent_exit', reason: ending.reason, exit_code: code }, 'shutdown timed out; exiting');
    process.exit(code);
  }, 45_000).unref();
  logger.info({ event: 'session_ending', ...ending.detail, reason: ending.reason }, 'ending session');
  for (const t of timers) clearTimeout(t);
  limit.stop();
  presence.stop();
  avatarWatch.stop();

  if (conversation && ending.reason === 'max_duration' && !presence.away) {
    await sayGoodbye(conversation, logger, { safetyConcern: safety.flagged });
  }
  if (session) {
    try {
      await withTimeout(session.close(), 10_000, 'agent session close');
    } catch (err) {
      logger.warn({ error: String(err) }, 'agent session close failed');
    }
  }
  // A concern raised just before the end still reaches the staff (and the record) before the exit.
  await safety.settle();
  aws.dynamo.destroy();
  aws.sns.destroy();
  // A stop during the join: let the join finish first, or the deletion would come before it and
  // the join would recreate the room (LiveKit creates rooms on join).
  if (!joined && connecting) {
    try {
      await withTimeout(connecting, 10_000, 'room connect');
      joined = true;
    } catch {
      /* not joined (or the room is gone) */
    }
  }
  if (ending.reason !== 'room_missing') await deleteSessionRoom(roomService, target.roomName, logger);
  if (joined) {
    try {
      await withTimeout(room.disconnect(), 5_000, 'room disconnect');
    } catch {
      /* already gone */
    }
  }
  return { reason: ending.reason, exitCode: code };
}
