// The end of a session that reached its maximum duration: a heads-up some minutes before, and a
// short goodbye at the limit instead of the room closing mid-sentence (for a session flagged for a
// safety concern, the limit comes once later and the goodbye repeats the crisis resources). Both are
// spoken by the Realtime model from instructions (it has no separate TTS, so a fixed line would need
// a second voice); the goodbye's wait is bounded so the hard limit stays hard.
import type { voice } from '@livekit/agents';
import type { Logger } from './logger.js';
import { withTimeout } from './timeouts.js';

/** Longest the goodbye may take (generation plus playout at the avatar) before the room closes. */
export const GOODBYE_MAX_WAIT_MS = 10_000;

function spokenDuration(seconds: number): string {
  if (seconds < 90) return `${seconds} seconds`;
  return `${Math.round(seconds / 60)} minutes`;
}

export function wrapUpNoticeInstructions(secondsLeft: number): string {
  return (
    `In one short, gentle sentence, let the student know that about ${spokenDuration(secondsLeft)} remain ` +
    `in this session, then continue helping them with what they were discussing.`
  );
}

export function goodbyeInstructions(opts: { safetyConcern?: boolean } = {}): string {
  if (opts.safetyConcern) {
    return (
      'The time for this session is over. Say a short, warm goodbye in two or three sentences: thank the ' +
      'student for talking with you, remind them that they can call or text 988 at any time, call 911 if they ' +
      'are in immediate danger or their local emergency number outside the United States, and reach campus ' +
      'counseling services, and that those resources stay on their screen. Do not ask any question.'
    );
  }
  return (
    'The time for this session is over. Say a short, warm goodbye in one or two sentences: thank the ' +
    'student, briefly wish them well, and do not ask any question.'
  );
}

/**
 * The session's maximum duration, counted from start(): at the limit onLimit runs, and `noticeSeconds`
 * before it the counselor mentions the time left (disabled by 0, or when the session is too short for
 * a notice to make sense). extendOnce moves both, once: a session flagged for a safety concern is not
 * cut mid-crisis.
 */
export class SessionLimit {
  private deadline = 0;
  private extended = false;
  private reached = false;
  private noticeTimer?: NodeJS.Timeout;
  private limitTimer?: NodeJS.Timeout;

  constructor(
    private readonly opts: {
      maxDurationSeconds: number;
      noticeSeconds: number;
      conversation: () => voice.AgentSession | undefined;
      onLimit: () => void;
      logger: Logger;
    },
  ) {}

  start(): void {
    this.deadline = Date.now() + this.opts.maxDurationSeconds * 1000;
    this.arm(this.opts.maxDurationSeconds);
  }

  /** Pushes the limit back by graceSeconds, the first time only and only before it was reached. */
  extendOnce(graceSeconds: number, reason: string): boolean {
    if (this.extended || this.reached || !this.deadline || graceSeconds <= 0) return false;
    this.extended = true;
    this.deadline += graceSeconds * 1000;
    this.clear();
    this.arm(this.opts.maxDurationSeconds + graceSeconds);
    this.opts.logger.info(
      { event: 'max_duration_extended', reason, grace_s: graceSeconds, seconds_left: Math.round((this.deadline - Date.now()) / 1000) },
      'maximum duration extended',
    );
    return true;
  }

  stop(): void {
    this.clear();
  }

  private clear(): void {
    clearTimeout(this.noticeTimer);
    clearTimeout(this.limitTimer);
  }

  /** Arms the timers for the current deadline; `totalSeconds` is the whole length, for the notice's sense check. */
  private arm(totalSeconds: number): void {
    const left = this.deadline - Date.now();
    // Not unref'd: these keep the process alive until they fire or stop() clears them.
    this.limitTimer = setTimeout(() => {
      this.reached = true;
      this.opts.onLimit();
    }, Math.max(0, left));
    const { noticeSeconds, logger } = this.opts;
    if (noticeSeconds <= 0 || noticeSeconds >= totalSeconds || left <= noticeSeconds * 1000) return;
    this.noticeTimer = setTimeout(() => {
      const session = this.opts.conversation();
      if (!session) return; // no conversation (yet), or the student is away: nothing to say
      try {
        session.generateReply({ instructions: wrapUpNoticeInstructions(noticeSeconds) });
        logger.info({ event: 'wrapup_notice', seconds_left: noticeSeconds }, 'time-left notice requested');
      } catch (err) {
        logger.warn({ error: String(err) }, 'time-left notice failed');
      }
    }, left - noticeSeconds * 1000);
  }
}

/**
 * Interrupts whatever is being said and has the counselor say goodbye; resolves when the goodbye was
 * played out (the avatar acknowledged it) or after `maxWaitMs`, whichever comes first.
 */
export async function sayGoodbye(
  session: voice.AgentSession,
  logger: Logger,
  opts: { safetyConcern?: boolean; maxWaitMs?: number } = {},
): Promise<void> {
  const maxWaitMs = opts.maxWaitMs ?? GOODBYE_MAX_WAIT_MS;
  try {
    try {
      session.interrupt({ force: true });
    } catch {
      /* nothing to interrupt */
    }
    const handle = session.generateReply({ instructions: goodbyeInstructions(opts), allowInterruptions: false });
    logger.info({ event: 'goodbye_requested' }, 'goodbye requested');
    await withTimeout(handle.waitForPlayout(), maxWaitMs, 'goodbye');
    logger.info({ event: 'goodbye_spoken', interrupted: handle.interrupted }, 'goodbye spoken');
  } catch (err) {
    logger.warn({ error: String(err) }, 'goodbye not completed; closing anyway');
  }
}
