// ECS task scale-in protection from inside the task: a worker holding a session asks the ECS
// agent (ECS_AGENT_URI, set by ECS in every task) not to be chosen by a scale-in or stopped by a
// deployment. The task role needs ecs:UpdateTaskProtection. Failing to protect is logged, never
// fatal: the session goes on unprotected.
import type { Logger } from './logger.js';

/** Minutes added to the longest possible session so protection outlasts cleanup. */
export const PROTECTION_MARGIN_MINUTES = 5;
/** ECS accepts 1 to 2880 minutes. */
const MAX_EXPIRES_MINUTES = 2880;

export function protectionMinutes(maxDurationSeconds: number): number {
  return Math.min(MAX_EXPIRES_MINUTES, Math.ceil(maxDurationSeconds / 60) + PROTECTION_MARGIN_MINUTES);
}

export interface ProtectOptions {
  ecsAgentUri: string;
  expiresInMinutes: number;
  logger: Logger;
  attempts?: number;
  /** Per-attempt timeout. */
  timeoutMs?: number;
}

/** PUT $ECS_AGENT_URI/task-protection/v1/state; resolves true when ECS confirmed it. Never throws. */
export async function protectTask({ ecsAgentUri, expiresInMinutes, logger, attempts = 3, timeoutMs = 5_000 }: ProtectOptions): Promise<boolean> {
  const url = `${ecsAgentUri.replace(/\/+$/, '')}/task-protection/v1/state`;
  const body = JSON.stringify({ ProtectionEnabled: true, ExpiresInMinutes: expiresInMinutes });
  let lastError = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const res = await fetch(url, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      // The ECS agent answers {"requestID", "protection": {"ProtectionEnabled", "ExpirationDate",
      // "TaskArn"}} or one of "failure": {"Arn","Reason","Detail"}, "error": {"Arn","Code","Message"}.
      let reply: {
        protection?: { ProtectionEnabled?: boolean; ExpirationDate?: string };
        failure?: { Reason?: string; Detail?: string };
        error?: { Code?: string; Message?: string };
      } = {};
      try {
        reply = JSON.parse(text);
      } catch {
        /* reported below */
      }
      if (res.ok && reply.protection?.ProtectionEnabled === true && !reply.failure && !reply.error) {
        logger.info(
          { event: 'task_protection_enabled', expires_in_minutes: expiresInMinutes, expiration: reply.protection.ExpirationDate },
          'task scale-in protection enabled',
        );
        return true;
      }
      lastError = reply.failure
        ? `${reply.failure.Reason ?? 'failure'}: ${reply.failure.Detail ?? ''}`
        : reply.error
          ? `${reply.error.Code ?? 'error'}: ${reply.error.Message ?? ''}`
          : `HTTP ${res.status}`;
      // 4xx other than throttling will not get better by retrying.
      if (res.status >= 400 && res.status < 500 && res.status !== 429) break;
    } catch (err) {
      lastError = String(err);
    }
    if (attempt < attempts) await new Promise((r) => setTimeout(r, 500 * attempt));
  }
  logger.warn({ event: 'task_protection_failed', error: lastError }, 'could not enable task scale-in protection; continuing unprotected');
  return false;
}
