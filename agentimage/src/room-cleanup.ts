// Deleting the session's room: the one step every ending shares. It removes the student and the
// avatar (Bey stops billing) and tells the backend (room_finished webhook) that the session is over.
import type { RoomServiceClient } from 'livekit-server-sdk';
import type { SessionResult } from './agent.js';
import type { Logger } from './logger.js';
import { withTimeout } from './timeouts.js';

export async function deleteSessionRoom(roomService: RoomServiceClient, roomName: string, logger: Logger): Promise<void> {
  try {
    await withTimeout(roomService.deleteRoom(roomName), 10_000, 'deleteRoom');
    logger.info({ event: 'room_deleted' }, 'room deleted');
  } catch (err) {
    const msg = String(err);
    if (/not.?found|404/i.test(msg)) logger.info({ event: 'room_deleted' }, 'room already gone');
    else logger.error({ error: msg }, 'failed to delete room');
  }
}

/**
 * A stop requested before the session started (category still loading, room not joined yet):
 * delete the room anyway (the backend asked for the session to end); a normal end (exit 0).
 */
export async function endBeforeStart(opts: {
  roomService: RoomServiceClient;
  roomName: string;
  signal: string;
  logger: Logger;
}): Promise<SessionResult> {
  const { logger } = opts;
  logger.info({ event: 'session_ending', reason: 'signal', signal: opts.signal, before_start: true }, 'stop requested before start; ending session');
  await deleteSessionRoom(opts.roomService, opts.roomName, logger);
  return { reason: 'signal', exitCode: 0 };
}
