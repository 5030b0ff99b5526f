// Deadline for the avatar. Once Beyond Presence has accepted the session, its participant must join
// and publish video within the deadline (and come back within it if it ever leaves). The Bey plugin
// routes the agent's audio to the avatar and waits for the avatar's video track with no timeout, so
// without this the student would sit in silence for the rest of the session.
import { Room, RoomEvent, TrackKind } from '@livekit/rtc-node';
import type { Logger } from './logger.js';

/** What was still missing when the deadline passed. */
export type AvatarWait = 'participant' | 'video';

type AvatarState = 'absent' | 'joined' | 'ready';

export interface AvatarWatchOptions {
  /** The avatar's identity (Bey plugin 1.4.2: always `bey-avatar-agent`, set in the token we mint). */
  identity: string;
  timeoutMs: number;
  logger: Logger;
  onTimeout: (detail: { waiting_for: AvatarWait; had_joined: boolean }) => void;
  /** The avatar published video (again, after leaving: each time). */
  onReady?: () => void;
}

export class AvatarWatch {
  private state: AvatarState = 'absent';
  private hadJoined = false;
  private timer?: NodeJS.Timeout;
  private readonly events = [
    RoomEvent.ParticipantConnected,
    RoomEvent.ParticipantDisconnected,
    RoomEvent.TrackPublished,
    RoomEvent.TrackUnpublished,
  ] as const;

  constructor(
    private readonly room: Room,
    private readonly opts: AvatarWatchOptions,
  ) {}

  /** Call once the avatar was requested; the deadline starts now. */
  start(): void {
    for (const ev of this.events) this.room.on(ev, this.update);
    this.update();
  }

  stop(): void {
    for (const ev of this.events) this.room.off(ev, this.update);
    this.disarm();
  }

  private current(): AvatarState {
    const p = this.room.remoteParticipants.get(this.opts.identity);
    if (!p) return 'absent';
    for (const pub of p.trackPublications.values()) if (pub.kind === TrackKind.KIND_VIDEO) return 'ready';
    return 'joined';
  }

  private readonly update = (): void => {
    const next = this.current();
    if (next !== this.state) {
      const { logger } = this.opts;
      if (next === 'absent') logger.warn({ event: 'avatar_left' }, 'avatar left the room');
      else if (this.state === 'absent') logger.info({ event: 'avatar_joined', identity: this.opts.identity }, 'avatar joined');
      if (next === 'ready') {
        logger.info({ event: 'avatar_ready' }, 'avatar publishes video');
        this.opts.onReady?.();
      }
      if (next !== 'absent') this.hadJoined = true;
      this.state = next;
    }
    if (next === 'ready') this.disarm();
    else this.arm();
  };

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const waiting_for: AvatarWait = this.current() === 'absent' ? 'participant' : 'video';
      this.opts.logger.error(
        { event: 'avatar_timeout', waiting_for, had_joined: this.hadJoined, timeout_s: this.opts.timeoutMs / 1000 },
        'avatar not ready in time',
      );
      this.opts.onTimeout({ waiting_for, had_joined: this.hadJoined });
    }, this.opts.timeoutMs);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
