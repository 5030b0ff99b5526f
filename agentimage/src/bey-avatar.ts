// The Beyond Presence avatar of a session, startable before the agent's own connection is up.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { voice } from '@livekit/agents';
import * as bey from '@livekit/agents-plugin-bey';
import { TrackKind, type Room } from '@livekit/rtc-node';
import { AccessToken } from 'livekit-server-sdk';

/** The avatar's participant identity (the plugin's default). */
export const AVATAR_IDENTITY = 'bey-avatar-agent';
/** The participant attribute that tells LiveKit (and the frontend) whose voice the avatar renders. */
const ATTRIBUTE_PUBLISH_ON_BEHALF = 'lk.publish_on_behalf';

export interface AvatarTarget {
  roomName: string;
  /** The agent participant the avatar speaks for (agent-<session id>). */
  agentIdentity: string;
}

export interface AvatarLiveKit {
  livekitUrl: string;
  livekitApiKey: string;
  livekitApiSecret: string;
}

/**
 * The Bey plugin's AvatarSession, started in two steps instead of its one start(): request() asks Bey
 * for the avatar, attach() routes the agent's audio to it. The plugin's start() reads the room's name
 * and the agent's identity from the connected room, so it can only run once the agent has joined and
 * built its session; the session knows both up front, so request() can go out first thing and the
 * avatar (the slowest participant to arrive) boots while the agent is still connecting. The rest is
 * the plugin's own: the HTTP call with its retries (`startAgent`), the same token grants, the
 * framework's base-class start (shutdown hook, join wait) and the same audio output, as in
 * @livekit/agents-plugin-bey 1.4.2's start() (the agent tests check the token's claims at the Bey
 * stand-in).
 */
export class BeyAvatar extends bey.AvatarSession {
  /** Bey starts the avatar, which joins `target.roomName` by itself; nothing here needs the agent's room. */
  async request(target: AvatarTarget, lk: AvatarLiveKit): Promise<void> {
    const at = new AccessToken(lk.livekitApiKey, lk.livekitApiSecret, { identity: AVATAR_IDENTITY, name: AVATAR_IDENTITY });
    at.kind = 'agent';
    at.addGrant({ roomJoin: true, room: target.roomName });
    at.attributes = { [ATTRIBUTE_PUBLISH_ON_BEHALF]: target.agentIdentity };
    const startAgent = (this as unknown as { startAgent(url: string, token: string): Promise<void> }).startAgent;
    await startAgent.call(this, lk.livekitUrl, await at.toJwt());
  }

  /** After request(): the agent's audio goes to the avatar (waits for the room's connection by itself). */
  async attach(agentSession: voice.AgentSession, room: Room): Promise<void> {
    // The plugin's start() minus its room lookups and its request: the framework's base-class start.
    await voice.AvatarSession.prototype.start.call(this, agentSession, room);
    agentSession.output.audio = new voice.DataStreamAudioOutput({
      room,
      destinationIdentity: AVATAR_IDENTITY,
      waitRemoteTrack: TrackKind.KIND_VIDEO,
    });
  }
}

/**
 * Loads and compiles the process's HTTP client and token signing ahead of the avatar request (a job
 * process's prewarm, the direct entry while it connects). The Bey request is the process's first
 * fetch(): without this it pays ~90 ms here for Node's HTTP client to load and compile (against ~10 ms
 * after), on the critical path of the student's first avatar frame. One POST to a loopback server of
 * its own; never fails the caller.
 */
export async function prewarmAvatarRequest(): Promise<void> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(201, { 'content-type': 'application/json' }).end('{}'));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const token = new AccessToken('prewarm', 'prewarm-secret-not-used-anywhere-else', { identity: AVATAR_IDENTITY });
    const res = await fetch(`http://127.0.0.1:${port}/v1/session`, {
      method: 'POST',
      headers: { 'x-api-key': 'prewarm', 'Content-Type': 'application/json' },
      body: JSON.stringify({ livekit_token: await token.toJwt() }),
      signal: AbortSignal.timeout(5_000),
    });
    await res.text();
  } catch {
    /* only a warm-up */
  } finally {
    server.closeAllConnections();
    server.close();
  }
}
