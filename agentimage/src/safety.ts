// Crisis escalation. A concern is raised by the model (its flag_safety_concern tool) or by the phrase
// backstop on the student's transcript (crisis-phrases.ts); either way, once per session the student's
// screen gets the crisis resources at once, the session is flagged (first flag wins, every flag is
// counted), the counseling staff gets one alert, and the session's maximum duration is extended once.
// The conversation itself is never interrupted: the counselor keeps following its crisis guidance.
// Nothing here logs, stores or sends transcript text or the student's name.
import { randomUUID } from 'node:crypto';
import { llm } from '@livekit/agents';
import { z } from 'zod';
import type { Logger } from './logger.js';
import type { RecordOutcome, SafetyAlert, SafetyFlag } from './safety-aws.js';
import { sessionTime } from './safety-aws.js';
import { SAFETY_KINDS, SAFETY_SEVERITIES, type SafetyConcern } from './safety-types.js';
import { withTimeout } from './timeouts.js';

/** LiveKit data topic of the crisis-resources message to the student. */
export const SAFETY_TOPIC = 'counselvideo.safety';
export const SAFETY_TOOL_NAME = 'flag_safety_concern';

/** Appended to every category's prompt: when to call the tool, and what the counselor keeps doing. */
export function safetyInstructions(): string {
  return [
    'Safety protocol (this applies in every conversation and takes priority over your topic).',
    `Call the ${SAFETY_TOOL_NAME} tool as soon as the student says, or clearly implies, that they are thinking about`,
    'suicide or hurting themselves, that they might hurt someone else, that someone is abusing, assaulting,',
    'threatening or controlling them, or that they or someone with them is having a medical emergency such as an',
    'overdose. Call it even if you are unsure how serious it is; choose the severity that fits what you heard, and',
    'call it again only if the danger has clearly become more acute. Calling it alerts the campus counseling staff',
    'and shows the student a card with crisis resources; it does not end or pause the conversation.',
    'Never let the tool take the place of your care. Keep talking with the student in your usual warm voice: take',
    'what they said seriously, thank them for telling you, and ask directly and calmly whether they are safe right',
    'now. Follow your crisis guidance: in the United States they can call or text 988, the Suicide and Crisis',
    'Lifeline, at any time, and anyone in immediate danger should call 911. If they are outside the United States,',
    'tell them to call their local emergency number. Encourage them to reach campus counseling services or campus',
    'police, to contact someone they trust, and, if they have the means to hurt themselves near them, to put',
    'distance between themselves and those means. Stay with them, keep the conversation going, and do not end it',
    'while they may be in danger. You may tell them that the resources are now on their screen and that someone',
    'from the counseling team may reach out to support them. Do not debate, judge, or promise secrecy.',
  ].join(' ');
}

/** What the tool answers the model (it then continues its reply; see safetyTool). */
export const TOOL_RESULT =
  'Recorded. The crisis resources card is now on the student\'s screen and the counseling staff is being alerted. ' +
  'Continue the conversation now, in your own words: stay with the student and follow your crisis guidance.';

/**
 * The model's tool. It returns at once (recording and alerting run in the background) and returns a
 * value, so the framework lets the speech in progress play out and then asks the model to continue:
 * the counselor goes on talking instead of falling silent after the call.
 */
export function safetyTool(raise: (concern: SafetyConcern) => void) {
  return llm.tool({
    name: SAFETY_TOOL_NAME,
    description:
      'Flag a safety concern for the counseling staff. Call it when the student expresses thoughts of suicide or ' +
      'self-harm, a risk of harming someone else, abuse, assault or threats against them, or a medical emergency. ' +
      'It alerts the staff and shows the student crisis resources; it never ends the conversation, and you keep ' +
      'supporting the student after calling it.',
    parameters: z.object({
      kind: z
        .enum(SAFETY_KINDS)
        .describe(
          'self_harm: suicide or self-harm; harm_to_others: a risk of hurting someone else; abuse: abuse, assault, ' +
            'violence, threats or control by someone; medical_emergency: an overdose, injury or other emergency now',
        ),
      severity: z
        .enum(SAFETY_SEVERITIES)
        .describe(
          'concern: worrying thoughts or feelings without a plan or immediate danger; urgent: a stated intent or ' +
            'plan, recent self-harm, or ongoing abuse; imminent: danger right now (means at hand, an attempt or ' +
            'attack under way, a medical emergency happening)',
        ),
    }),
    execute: async ({ kind, severity }) => {
      raise({ kind, severity, source: 'model' });
      return TOOL_RESULT;
    },
  });
}

/** The crisis-resources card the student's screen shows (data message on SAFETY_TOPIC, JSON). */
export const CRISIS_RESOURCES = {
  type: 'crisis_resources',
  version: 1,
  title: 'You deserve support right now',
  resources: [
    { id: '988', label: '988 Suicide & Crisis Lifeline', detail: 'Call or text 988, any time (US)', href: 'tel:988' },
    { id: '911', label: 'Emergency', detail: 'If you or someone else is in immediate danger, call 911 (US)', href: 'tel:911' },
    { id: 'campus', label: 'Campus counseling', detail: 'Your campus counseling center or campus police can help today' },
    { id: 'outside_us', label: 'Outside the US', detail: 'Call your local emergency number' },
  ],
} as const;

export interface SafetyMonitorOptions {
  sessionId: string;
  category: { id: string; name: string };
  logger: Logger;
  /** Records the flag on the session (SessionFlagRecorder.record). */
  record: (flag: SafetyFlag) => Promise<RecordOutcome>;
  /** Alerts the counseling staff (StaffAlerter.publish); resolves to the message id. */
  alert: (alert: SafetyAlert) => Promise<string>;
  /** Sends CRISIS_RESOURCES to the student. */
  showResources: () => Promise<void>;
  /** The session's first concern (in this process): extend the maximum duration. */
  onFirstConcern?: () => void;
  now?: () => Date;
  newId?: () => string;
}

/**
 * One per session. raise() never throws and never waits: the card goes out at once, the record and
 * the alert in the background (settle() awaits them before the process exits). One alert per
 * session: sent only by the write that set the session's flag, or, if the record failed, once by this
 * process anyway (an alert twice is better than none).
 */
export class SafetyMonitor {
  private flaggedHere = false;
  /** This process's alert: 'failed' means it is retried on the next concern. */
  private alertState: 'none' | 'sending' | 'sent' | 'failed' = 'none';
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly opts: SafetyMonitorOptions) {}

  /** A concern was raised in this process. */
  get flagged(): boolean {
    return this.flaggedHere;
  }

  raise(concern: SafetyConcern): void {
    const first = !this.flaggedHere;
    this.flaggedHere = true;
    const flag: SafetyFlag = {
      id: (this.opts.newId ?? randomUUID)(),
      ...concern,
      at: sessionTime((this.opts.now ?? (() => new Date()))()),
    };
    this.opts.logger.warn(
      { event: 'safety_flag_raised', kind: flag.kind, severity: flag.severity, source: flag.source, flag_id: flag.id, first },
      'safety concern raised',
    );
    if (first) {
      try {
        this.opts.onFirstConcern?.();
      } catch (err) {
        this.opts.logger.error({ error: String(err) }, 'extending the session for the safety concern failed');
      }
      this.track(this.showResources());
    }
    this.track(this.recordAndAlert(flag));
  }

  /** Sends the card again (the student's connection was replaced: a reload or a second tab). */
  resendResources(): void {
    if (this.flaggedHere) this.track(this.showResources());
  }

  /** Waits (at most maxMs) for the records, alerts and cards still in flight. */
  async settle(maxMs = 15_000): Promise<void> {
    if (this.pending.size === 0) return;
    try {
      await withTimeout(Promise.allSettled([...this.pending]), maxMs, 'safety escalation');
    } catch {
      this.opts.logger.error({ event: 'safety_settle_timeout', pending: this.pending.size }, 'safety escalation still in flight at exit');
    }
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private async showResources(): Promise<void> {
    try {
      await this.opts.showResources();
      this.opts.logger.info({ event: 'safety_resources_sent', topic: SAFETY_TOPIC }, 'crisis resources sent to the student');
    } catch (err) {
      this.opts.logger.error({ event: 'safety_resources_failed', error: String(err) }, 'could not send the crisis resources');
    }
  }

  private async recordAndAlert(flag: SafetyFlag): Promise<void> {
    let recorded: boolean;
    let first = false;
    try {
      const out = await this.opts.record(flag);
      recorded = true;
      first = out.first;
      this.opts.logger.info(
        { event: 'safety_flag_recorded', flag_id: flag.id, first: out.first, count: out.count },
        out.first ? 'safety flag recorded on the session' : 'further safety concern counted on the session',
      );
    } catch (err) {
      recorded = false;
      this.opts.logger.error({ event: 'safety_flag_record_failed', flag_id: flag.id, error: String(err) }, 'could not record the safety flag');
    }
    // Ours to send: our write set the flag, or the record failed; or our earlier attempt failed.
    const ours = this.alertState === 'failed' || (this.alertState === 'none' && (first || !recorded));
    if (!ours) return;
    this.alertState = 'sending';
    const alert: SafetyAlert = {
      type: 'counselvideo.safety_alert',
      version: 1,
      session_id: this.opts.sessionId,
      category_id: this.opts.category.id,
      category_name: this.opts.category.name,
      kind: flag.kind,
      severity: flag.severity,
      source: flag.source,
      flagged_at: flag.at,
      flag_id: flag.id,
      recorded,
    };
    try {
      const messageId = await this.opts.alert(alert);
      this.alertState = 'sent';
      this.opts.logger.warn({ event: 'safety_alert_published', flag_id: flag.id, message_id: messageId, recorded }, 'counseling staff alerted');
    } catch (err) {
      this.alertState = 'failed';
      this.opts.logger.error({ event: 'safety_alert_failed', flag_id: flag.id, error: String(err) }, 'could not alert the counseling staff');
    }
  }
}
