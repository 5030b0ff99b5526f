// Whether the student is still in the session. A reload, a network switch or a second tab replaces
// the student's participant: the same identity joins again while (or shortly after) the old one
// leaves, the old one often with DUPLICATE_IDENTITY, and a reload usually as CLIENT_INITIATED. So the
// session follows the identity, not the participant: it ends only when the identity has been away
// longer than the grace window (default: the room's departure timeout, after which LiveKit closes
// the room anyway). The framework's RoomIO links the identity too (audio input and transcripts follow
// whichever participant holds it), so a rejoined student is heard and answered without re-linking.
import { DisconnectReason, Room, RoomEvent, type RemoteParticipant } from '@livekit/rtc-node';
import type { Logger } from './logger.js';

export interface StudentPresenceOptions {
  graceMs: number;
  logger: Logger;
  /** The student stayed away for the whole grace window. */
  onGone: (detail: { away_ms: number; disconnect_reason: string }) => void;
}

export class StudentPresence {
  private identity?: string;
  private awaySince?: number;
  private awayReason = '';
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly room: Room,
    private readonly opts: StudentPresenceOptions,
  ) {}

  /** Starts following `identity` (the linked student). */
  follow(identity: string): void {
    this.identity = identity;
    this.room.on(RoomEvent.ParticipantDisconnected, this.onDisconnected);
    this.room.on(RoomEvent.ParticipantConnected, this.onConnected);
  }

  /** True while the student is gone and the grace window is running. */
  get away(): boolean {
    return this.awaySince !== undefined;
  }

  stop(): void {
    this.room.off(RoomEvent.ParticipantDisconnected, this.onDisconnected);
    this.room.off(RoomEvent.ParticipantConnected, this.onConnected);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly onDisconnected = (p: RemoteParticipant): void => {
    if (p.identity !== this.identity || this.away) return;
    this.awayReason = DisconnectReason[p.disconnectReason ?? 0] ?? 'UNKNOWN_REASON';
    if (this.room.remoteParticipants.get(p.identity)) {
      // Already replaced by a newer participant with the same identity.
      this.opts.logger.info({ event: 'student_replaced', student: p.identity, reason: this.awayReason }, 'student connection replaced');
      return;
    }
    this.awaySince = Date.now();
    this.opts.logger.info(
      { event: 'student_away', student: p.identity, reason: this.awayReason, grace_s: this.opts.graceMs / 1000 },
      'student left; waiting for them to come back',
    );
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.opts.onGone({ away_ms: Date.now() - (this.awaySince ?? Date.now()), disconnect_reason: this.awayReason });
    }, this.opts.graceMs);
  };

  private readonly onConnected = (p: RemoteParticipant): void => {
    if (p.identity !== this.identity || !this.away) return;
    const awayMs = Date.now() - this.awaySince!;
    this.awaySince = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.opts.logger.info({ event: 'student_rejoined', student: p.identity, sid: p.sid, away_ms: awayMs }, 'student is back');
  };
}
