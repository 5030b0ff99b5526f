// The end of a session that reached its maximum duration: a heads-up some minutes before, and a
// short goodbye at the limit instead of the room closing mid-sentence. Both are spoken by the
// Realtime model from instructions (it has no separate TTS, so a fixed line would need a second
// voice); the goodbye's wait is bounded so the hard limit stays hard.
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

export function goodbyeInstructions(): string {
  return (
    'The time for this session is over. Say a short, warm goodbye in one or two sentences: thank the ' +
    'student, briefly wish them well, and do not ask any question.'
  );
}

/**
 * Arms the heads-up `noticeSeconds` before `maxDurationSeconds` (both counted from now). Returns the
 * timer, or undefined when disabled (0) or when the session is too short for a notice to make sense.
 */
export function scheduleWrapUpNotice(opts: {
  maxDurationSeconds: number;
  noticeSeconds: number;
  conversation: () => voice.AgentSession | undefined;
  logger: Logger;
}): NodeJS.Timeout | undefined {
  const { maxDurationSeconds, noticeSeconds, logger } = opts;
  if (noticeSeconds <= 0 || noticeSeconds >= maxDurationSeconds) return undefined;
  return setTimeout(() => {
    const session = opts.conversation();
    if (!session) return; // no conversation (yet), or the student is away: nothing to say
    try {
      session.generateReply({ instructions: wrapUpNoticeInstructions(noticeSeconds) });
      logger.info({ event: 'wrapup_notice', seconds_left: noticeSeconds }, 'time-left notice requested');
    } catch (err) {
      logger.warn({ error: String(err) }, 'time-left notice failed');
    }
  }, (maxDurationSeconds - noticeSeconds) * 1000);
}

/**
 * Interrupts whatever is being said and has the counselor say goodbye; resolves when the goodbye was
 * played out (the avatar acknowledged it) or after `maxWaitMs`, whichever comes first.
 */
export async function sayGoodbye(session: voice.AgentSession, logger: Logger, maxWaitMs = GOODBYE_MAX_WAIT_MS): Promise<void> {
  try {
    try {
      session.interrupt({ force: true });
    } catch {
      /* nothing to interrupt */
    }
    const handle = session.generateReply({ instructions: goodbyeInstructions(), allowInterruptions: false });
    logger.info({ event: 'goodbye_requested' }, 'goodbye requested');
    await withTimeout(handle.waitForPlayout(), maxWaitMs, 'goodbye');
    logger.info({ event: 'goodbye_spoken', interrupted: handle.interrupted }, 'goodbye spoken');
  } catch (err) {
    logger.warn({ error: String(err) }, 'goodbye not completed; closing anyway');
  }
}
