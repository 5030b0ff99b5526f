// Standalone stand-ins for the local dev stack:
//   node dist/standins/main.js [--host 127.0.0.1] [--realtime-port N] [--bey-port N] [--sns-port N]
//                              [--bey-avatar normal|never_joins|no_video] [--safety-alert-file PATH]
// (env STANDIN_HOST, STANDIN_REALTIME_PORT, STANDIN_BEY_PORT, STANDIN_SNS_PORT, STANDIN_BEY_AVATAR,
// STANDIN_SAFETY_ALERT_FILE; 0 = any free port). Prints one JSON line when ready:
//   {"event":"standins_ready","openai_base_url":"http://127.0.0.1:N/v1","bey_api_url":"http://127.0.0.1:M",
//    "sns_url":"http://127.0.0.1:K"}
// and runs until SIGTERM/SIGINT. Any API key is accepted. Each SNS message is logged (and appended to
// the safety-alert file) as {"msg":"sns publish",...}; the Realtime stand-in takes scripted student
// speech on POST /control/student-speech (the playground test's crisis turn).
import { dispose } from '@livekit/rtc-node';
import { adoptRtcLogger } from '../logger.js';
import { AVATAR_BEHAVIOURS, BeyStandin, type AvatarBehaviour } from './bey.js';
import { RealtimeStandin } from './realtime.js';
import { SnsStandin } from './sns.js';

function arg(name: string, envName: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1];
  return process.env[envName] ?? def;
}

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), component: 'standins', msg, ...fields }) + '\n');
}

async function main(): Promise<void> {
  adoptRtcLogger(null, 'warn');
  const host = arg('host', 'STANDIN_HOST', '127.0.0.1');
  const realtimePort = Number(arg('realtime-port', 'STANDIN_REALTIME_PORT', '0'));
  const beyPort = Number(arg('bey-port', 'STANDIN_BEY_PORT', '0'));
  const snsPort = Number(arg('sns-port', 'STANDIN_SNS_PORT', '0'));
  const alertFile = arg('safety-alert-file', 'STANDIN_SAFETY_ALERT_FILE', '') || undefined;
  if (![realtimePort, beyPort, snsPort].every(Number.isInteger)) {
    log('invalid port', { level: 'fatal' });
    process.exit(2);
  }
  const avatarBehaviour = arg('bey-avatar', 'STANDIN_BEY_AVATAR', 'normal') as AvatarBehaviour;
  if (!AVATAR_BEHAVIOURS.includes(avatarBehaviour)) {
    log('invalid avatar behaviour', { level: 'fatal', expected: AVATAR_BEHAVIOURS });
    process.exit(2);
  }
  const realtime = new RealtimeStandin({ host, port: realtimePort, paceFactor: 1, log, control: true });
  const bey = new BeyStandin({ host, port: beyPort, avatarBehaviour, log });
  const sns = new SnsStandin({ host, port: snsPort, outFile: alertFile, log });
  await realtime.listen();
  await bey.listen();
  await sns.listen();
  process.stdout.write(
    JSON.stringify({ event: 'standins_ready', openai_base_url: realtime.baseUrl, bey_api_url: bey.url, sns_url: sns.url }) + '\n',
  );
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('stopping', { signal });
    await Promise.race([
      Promise.all([realtime.close(), bey.close(), sns.close()]).then(() => dispose()),
      new Promise((r) => setTimeout(r, 5000)),
    ]);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((e) => {
  log('stand-ins failed', { level: 'fatal', error: String(e) });
  process.exit(1);
});
