// The dispatch contract between the API and a pool worker: the API dispatches agent
// LIVEKIT_AGENT_NAME to room `video-<session_id>` with JSON metadata
//   {"session_id": "<id>", "category_id": "<id>", "replacement": true?, "max_duration_seconds": N?}
// max_duration_seconds is the session's own maximum (the configured one cut to the student's daily
// minutes left), as AGENT_MAX_DURATION_SECONDS is for the direct entry; absent: the worker's own.
// The worker checks it before accepting (worker.ts) and the job reads it again (job.ts).
import { z } from 'zod';
import type { SessionTarget } from './agent.js';
import { MAX_SECONDS, SESSION_ID_PATTERN } from './config.js';

export const ROOM_NAME_PREFIX = 'video-';

export function roomNameFor(sessionId: string): string {
  return `${ROOM_NAME_PREFIX}${sessionId}`;
}

const metadataSchema = z.object({
  session_id: z.string().regex(SESSION_ID_PATTERN, 'only letters, digits, - and _ (max 128)'),
  category_id: z.string().trim().min(1).max(256),
  replacement: z.boolean().optional(),
  max_duration_seconds: z.number().int().min(1).max(MAX_SECONDS).optional(),
});

export interface DispatchedSession extends SessionTarget {
  categoryId: string;
  /** The session's own maximum duration, when the dispatch gives one. */
  maxDurationSeconds?: number;
}

export type DispatchProblem = 'invalid_metadata' | 'room_mismatch';

export class DispatchError extends Error {
  constructor(
    readonly problem: DispatchProblem,
    message: string,
  ) {
    super(message);
    this.name = 'DispatchError';
  }
}

/** Validates a job's room name and dispatch metadata; throws DispatchError saying what is wrong. */
export function parseDispatch(roomName: string | undefined, metadata: string | undefined): DispatchedSession {
  let raw: unknown;
  try {
    raw = JSON.parse(metadata ?? '');
  } catch {
    throw new DispatchError('invalid_metadata', 'dispatch metadata is not JSON');
  }
  const parsed = metadataSchema.safeParse(raw);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))];
    throw new DispatchError('invalid_metadata', `dispatch metadata invalid: ${fields.join(', ')}`);
  }
  const { session_id: sessionId, category_id: categoryId, replacement, max_duration_seconds: maxDurationSeconds } = parsed.data;
  const expected = roomNameFor(sessionId);
  if (roomName !== expected) {
    throw new DispatchError('room_mismatch', `room ${roomName ?? '(none)'} is not ${expected}`);
  }
  return {
    sessionId,
    roomName: expected,
    categoryId,
    replacement: replacement === true,
    ...(maxDurationSeconds === undefined ? {} : { maxDurationSeconds }),
  };
}
