// Wire-level stand-in for Amazon SNS, as @aws-sdk/client-sns 3.1169.0 speaks to it: the AWS Query
// protocol (POST /, form-encoded Action=Publish&Version=2010-03-31&..., SigV4-signed for service
// "sns"), answered with the XML the SDK parses. Only Publish is served; it keeps every message (tests
// read them) and can append each to a file (the dev stack's safety-alert log).
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Watch } from './watch.js';

const XMLNS = 'http://sns.amazonaws.com/doc/2010-03-31/';

export interface PublishedMessage {
  messageId: string;
  topicArn: string;
  subject?: string;
  /** As sent: with MessageStructure json, a JSON object of messages per protocol. */
  message: string;
  messageStructure?: string;
  attributes: Record<string, { dataType: string; value: string }>;
  /** The SigV4 credential scope's service (always "sns" from the SDK). */
  signedService?: string;
  receivedAt: number;
}

export interface SnsStandinOptions {
  host?: string;
  port?: number;
  /** Appends each published message to this file as one JSON line. */
  outFile?: string;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class SnsStandin {
  readonly published: PublishedMessage[] = [];
  /** Every request, including refused ones (action and HTTP status). */
  readonly requests: { action: string | null; status: number }[] = [];
  private failures: number[] = [];
  private server: Server;
  private watch = new Watch();

  constructor(private readonly opts: SnsStandinOptions = {}) {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const action = form.get('Action');
        const reply = (status: number, xml: string) => {
          this.requests.push({ action, status });
          res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
          res.end(xml);
          this.watch.changed();
        };
        const failure = this.failures.shift();
        if (failure !== undefined) return reply(failure, errorXml('Receiver', 'InternalError', 'stand-in failure on purpose'));
        if (req.method !== 'POST' || req.url !== '/') return reply(404, errorXml('Sender', 'NotFound', 'POST / only'));
        if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
          return reply(400, errorXml('Sender', 'InvalidParameterValue', 'form-encoded body expected'));
        }
        const signedService = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\/aws4_request/.exec(String(req.headers.authorization))?.[1];
        if (!signedService) return reply(403, errorXml('Sender', 'MissingAuthenticationToken', 'SigV4 Authorization header expected'));
        if (action !== 'Publish' || form.get('Version') !== '2010-03-31') {
          return reply(400, errorXml('Sender', 'InvalidAction', `unsupported action ${action}`));
        }
        const topicArn = form.get('TopicArn');
        const message = form.get('Message');
        if (!topicArn || !message) return reply(400, errorXml('Sender', 'InvalidParameter', 'TopicArn and Message are required'));
        const structure = form.get('MessageStructure') ?? undefined;
        if (structure === 'json' && !validJsonMessage(message)) {
          return reply(400, errorXml('Sender', 'InvalidParameter', 'Message Structure - JSON message body failed to parse or has no "default"'));
        }
        const msg: PublishedMessage = {
          messageId: randomUUID(),
          topicArn,
          subject: form.get('Subject') ?? undefined,
          message,
          messageStructure: structure,
          attributes: messageAttributes(form),
          signedService,
          receivedAt: Date.now(),
        };
        this.published.push(msg);
        this.opts.log?.('sns publish', { topic_arn: topicArn, subject: msg.subject, message_id: msg.messageId });
        if (this.opts.outFile) appendFileSync(this.opts.outFile, JSON.stringify(msg) + '\n');
        reply(
          200,
          `<PublishResponse xmlns="${XMLNS}"><PublishResult><MessageId>${msg.messageId}</MessageId></PublishResult>` +
            `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`,
        );
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    return this.url;
  }

  /** Value for AWS_ENDPOINT_URL_SNS. */
  get url(): string {
    return `http://${this.opts.host ?? '127.0.0.1'}:${(this.server.address() as AddressInfo).port}`;
  }

  /** Answers the next requests with these HTTP statuses (e.g. 500, 503), one each. */
  failNext(...statuses: number[]): void {
    this.failures.push(...statuses);
  }

  waitFor(pred: () => boolean): Promise<void> {
    return this.watch.waitFor(pred);
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The message sent to one protocol: with MessageStructure json, its key (else "default"); else the message. */
export function messageFor(m: PublishedMessage, protocol: string): string {
  if (m.messageStructure !== 'json') return m.message;
  const all = JSON.parse(m.message) as Record<string, string>;
  return all[protocol] ?? all.default;
}

function validJsonMessage(message: string): boolean {
  try {
    const v = JSON.parse(message);
    return typeof v === 'object' && v !== null && typeof v.default === 'string' && Object.values(v).every((x) => typeof x === 'string');
  } catch {
    return false;
  }
}

/** MessageAttributes.entry.N.Name / .Value.DataType / .Value.StringValue (Query protocol maps). */
function messageAttributes(form: URLSearchParams): Record<string, { dataType: string; value: string }> {
  const out: Record<string, { dataType: string; value: string }> = {};
  for (let n = 1; form.has(`MessageAttributes.entry.${n}.Name`); n++) {
    out[form.get(`MessageAttributes.entry.${n}.Name`)!] = {
      dataType: form.get(`MessageAttributes.entry.${n}.Value.DataType`) ?? '',
      value: form.get(`MessageAttributes.entry.${n}.Value.StringValue`) ?? '',
    };
  }
  return out;
}

function errorXml(type: string, code: string, message: string): string {
  return (
    `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error>` +
    `<RequestId>${randomUUID()}</RequestId></ErrorResponse>`
  );
}
