// Where a safety flag goes in AWS: the session's own item in the sessions table (first flag wins,
// every flag counted) and the counseling staff's SNS topic. Neither ever receives transcript text or
// the student's name; see SafetyAlert for everything an alert holds.
import { ConditionalCheckFailedException, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { SafetyKind, SafetySeverity, SafetySource } from './safety-types.js';

/** A recorded flag: the `safety_flag` map of the session item (docs/architecture.md). */
export interface SafetyFlag {
  /** Random id: tells whose write won, and ties the alert to the record. */
  id: string;
  kind: SafetyKind;
  severity: SafetySeverity;
  source: SafetySource;
  /** RFC 3339 UTC, nanosecond digits like every time of the sessions table. */
  at: string;
}

export interface RecordOutcome {
  /** This write set the session's flag (no earlier one existed). */
  first: boolean;
  /** safety_flag_count after this write. */
  count: number;
}

/** The sessions table stores times fixed-width with nanoseconds (shared/sessions timeLayout). */
export function sessionTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

/** Thrown when the session has no item: the flag was not recorded. */
export class SessionItemMissingError extends Error {
  constructor(sessionId: string) {
    super(`session ${sessionId} has no item in the sessions table`);
    this.name = 'SessionItemMissingError';
  }
}

/**
 * The alert waits for the record (the writer that sets the flag is the one that alerts), so a DynamoDB
 * that hangs must not hold it back: after this long it goes out marked "recorded": false, well within
 * the seconds the staff is promised.
 */
const RECORD_TIMEOUT_MS = 2_000;
const PUBLISH_TIMEOUT_MS = 10_000;

/**
 * Records flags on the session item (`pk = "session#<id>"`) with one conditional UpdateItem per flag:
 * `safety_flag` is set only if absent (first wins), `safety_flag_count` counts every flag. The item
 * must exist; nothing else of it is read or written (the task role may touch only these attributes).
 */
export class SessionFlagRecorder {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    private readonly sessionId: string,
  ) {}

  async record(flag: SafetyFlag): Promise<RecordOutcome> {
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: { S: `session#${this.sessionId}` } },
          UpdateExpression: 'SET safety_flag = if_not_exists(safety_flag, :flag) ADD safety_flag_count :one',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: {
            ':flag': {
              M: {
                id: { S: flag.id },
                kind: { S: flag.kind },
                severity: { S: flag.severity },
                source: { S: flag.source },
                at: { S: flag.at },
              },
            },
            ':one': { N: '1' },
          },
          ReturnValues: 'UPDATED_NEW',
        }),
        { abortSignal: AbortSignal.timeout(RECORD_TIMEOUT_MS) },
      );
      return {
        first: out.Attributes?.safety_flag?.M?.id?.S === flag.id,
        count: Number(out.Attributes?.safety_flag_count?.N ?? 0),
      };
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new SessionItemMissingError(this.sessionId);
      throw err;
    }
  }
}

/** What the counseling staff receives. No transcript text, no student name or identity. */
export interface SafetyAlert {
  type: 'counselvideo.safety_alert';
  version: 1;
  session_id: string;
  category_id: string;
  category_name: string;
  kind: SafetyKind;
  severity: SafetySeverity;
  source: SafetySource;
  flagged_at: string;
  flag_id: string;
  /** False when the session record could not be written: the alert went out anyway. */
  recorded: boolean;
}

const KIND_TEXT: Record<SafetyKind, string> = {
  self_harm: 'risk of suicide or self-harm',
  harm_to_others: 'risk of harm to others',
  abuse: 'abuse or violence',
  medical_emergency: 'a medical emergency',
};

/** Email subject: SNS allows 100 printable ASCII characters. */
export function alertSubject(a: SafetyAlert): string {
  return `[${a.severity.toUpperCase()}] Counseling safety alert: ${KIND_TEXT[a.kind]}`.slice(0, 100);
}

/** The e-mail body: what happened, where to look, what the student was shown. */
export function alertText(a: SafetyAlert): string {
  return [
    `A student in an AI counseling session may be in danger: ${KIND_TEXT[a.kind]} (severity: ${a.severity}).`,
    '',
    `Session id: ${a.session_id}`,
    `Counselor category: ${a.category_name} (${a.category_id})`,
    `Flagged at: ${a.flagged_at} (UTC)`,
    `Raised by: ${a.source === 'model' ? 'the AI counselor' : 'a crisis phrase in what the student said'}`,
    a.recorded ? 'The flag is recorded on the session.' : 'WARNING: the flag could not be recorded on the session.',
    '',
    'The student was shown crisis resources on screen (988, 911, campus counseling, local emergency',
    'services outside the US) and the counselor is staying with them. Follow your campus crisis protocol:',
    'find the student through the session id in the sessions table (user_id) and reach out.',
    'This message holds no transcript and no name by design.',
  ].join('\n');
}

/**
 * Publishes alerts to the staff topic: JSON for HTTPS (and every other protocol) and plain text for
 * e-mail (MessageStructure json), with kind and severity as message attributes so a subscription can
 * filter (e.g. page only on imminent).
 */
export class StaffAlerter {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
  ) {}

  async publish(a: SafetyAlert): Promise<string> {
    const json = JSON.stringify(a);
    const out = await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: alertSubject(a),
        MessageStructure: 'json',
        Message: JSON.stringify({ default: json, https: json, email: alertText(a) }),
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: a.kind },
          severity: { DataType: 'String', StringValue: a.severity },
        },
      }),
      { abortSignal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS) },
    );
    return out.MessageId ?? '';
  }
}

export function safetyClients(region: string): { dynamo: DynamoDBClient; sns: SNSClient } {
  // The SDKs read AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SNS themselves (local stack).
  return { dynamo: new DynamoDBClient({ region, maxAttempts: 3 }), sns: new SNSClient({ region, maxAttempts: 4 }) };
}
