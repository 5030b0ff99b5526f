// The dispatch contract (unit): what a worker accepts as a session from the API.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DispatchError, parseDispatch, roomNameFor } from '../src/dispatch.js';

const SID = '3f2b8c1e-0000-4000-8000-000000000001';
const ROOM = `video-${SID}`;

function problem(room: string | undefined, metadata: string | undefined): string {
  try {
    parseDispatch(room, metadata);
  } catch (err) {
    assert.ok(err instanceof DispatchError, String(err));
    return err.problem;
  }
  throw new Error('accepted');
}

describe('parseDispatch', () => {
  test('a valid dispatch gives the session, its room and category', () => {
    assert.deepEqual(parseDispatch(ROOM, JSON.stringify({ session_id: SID, category_id: 'cat-1' })), {
      sessionId: SID,
      roomName: ROOM,
      categoryId: 'cat-1',
      replacement: false,
    });
    assert.equal(roomNameFor(SID), ROOM);
  });

  test('replacement is read; unknown fields are ignored (the API may add some)', () => {
    const d = parseDispatch(ROOM, JSON.stringify({ session_id: SID, category_id: 'c', replacement: true, created_by: 'api' }));
    assert.equal(d.replacement, true);
  });

  test("the session's own maximum duration is read when given", () => {
    const d = parseDispatch(ROOM, JSON.stringify({ session_id: SID, category_id: 'c', max_duration_seconds: 540 }));
    assert.equal(d.maxDurationSeconds, 540);
    assert.equal(parseDispatch(ROOM, JSON.stringify({ session_id: SID, category_id: 'c' })).maxDurationSeconds, undefined);
  });

  test('metadata that is not the contract is invalid_metadata', () => {
    for (const metadata of [
      undefined,
      '',
      'not json',
      '[]',
      'null',
      JSON.stringify({ category_id: 'c' }),
      JSON.stringify({ session_id: SID }),
      JSON.stringify({ session_id: SID, category_id: '  ' }),
      JSON.stringify({ session_id: 'has space', category_id: 'c' }),
      JSON.stringify({ session_id: 'x'.repeat(129), category_id: 'c' }),
      JSON.stringify({ session_id: 42, category_id: 'c' }),
      JSON.stringify({ session_id: SID, category_id: 'c', replacement: 'yes' }),
      JSON.stringify({ session_id: SID, category_id: 'c', max_duration_seconds: 0 }),
      JSON.stringify({ session_id: SID, category_id: 'c', max_duration_seconds: 90.5 }),
      JSON.stringify({ session_id: SID, category_id: 'c', max_duration_seconds: 86_401 }),
      JSON.stringify({ session_id: SID, category_id: 'c', max_duration_seconds: '600' }),
    ]) {
      assert.equal(problem(ROOM, metadata), 'invalid_metadata', String(metadata));
    }
  });

  test('a room that is not video-<session_id> is room_mismatch', () => {
    const md = JSON.stringify({ session_id: SID, category_id: 'c' });
    for (const room of [undefined, '', SID, `video-${SID}x`, 'video-other', `VIDEO-${SID}`]) {
      assert.equal(problem(room, md), 'room_mismatch', String(room));
    }
  });

  test('the error says which fields are wrong, never their values', () => {
    try {
      parseDispatch(ROOM, JSON.stringify({ session_id: 'secret value!', category_id: 'c' }));
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof DispatchError);
      assert.match(err.message, /session_id/);
      assert.doesNotMatch(err.message, /secret value/);
    }
  });
});
