// The agent's metric lines (src/metrics.ts), read back and validated as CloudWatch reads EMF.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EXIT_CODE } from '../src/agent.js';
import { AgentMetrics, EXIT_REASONS, METRICS, POOL_SAMPLE_INTERVAL_MS, sampleTime } from '../src/metrics.js';
import { emfMetrics, findMetrics, validateEmf } from './emf.js';

/** Runs fn with stdout captured (the library writes through console.log). */
async function captured(fn: () => Promise<void>): Promise<string> {
  const write = process.stdout.write;
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return out;
}

const STACK = 'counselvideo-test';

describe('agent metrics', () => {
  test('each event is one valid EMF line in CounselVideo with Stack and the session id', async () => {
    const m = new AgentMetrics({ stack: STACK, source: 'cold', fields: () => ({ session_id: 's-1' }) });
    const out = await captured(async () => {
      await m.agentJoined({ processToJoinedMs: 1800, sessionToJoinedMs: 900 });
      await m.avatarReady(2500);
      await m.realtimeConnectRetry();
      await m.realtimeReconnect();
      await m.realtimeError();
      await m.exited('student_left');
    });
    assert.equal(out.trim().split('\n').length, 6, out);
    const ms = emfMetrics(out);
    assert.equal(ms.length, 6);
    for (const x of ms) {
      assert.equal(x.namespace, 'CounselVideo');
      assert.equal(x.dimensions.Stack, STACK);
      assert.equal(x.doc.session_id, 's-1');
      const spec = METRICS.metrics.find((s) => s.name === x.name);
      assert.ok(spec, `${x.name} is not in METRICS`);
      assert.equal(x.unit, spec.unit);
      assert.ok(
        spec.dimensions.some((set) => set.slice().sort().join() === Object.keys(x.dimensions).sort().join()),
        `${x.name} recorded under ${Object.keys(x.dimensions)}, not a dimension set of METRICS`,
      );
      assert.equal(x.doc.LogGroup, undefined, 'the library\'s default dimensions must not be added');
    }
    // A cold agent counts from its process start.
    assert.deepEqual(findMetrics(ms, 'AgentJoinTime', { Stack: STACK, AgentSource: 'cold' })[0].values, [1800]);
    assert.deepEqual(findMetrics(ms, 'AvatarJoinLatency', { Stack: STACK })[0].values, [2500]);
    assert.equal(findMetrics(ms, 'AgentExits', { Stack: STACK, ExitReason: 'student_left' }).length, 1);
  });

  test('a pool job counts from its own start; unknown exit reasons are "other"', async () => {
    const m = new AgentMetrics({ stack: STACK, source: 'pool' });
    const ms = emfMetrics(
      await captured(async () => {
        await m.agentJoined({ processToJoinedMs: 600_000, sessionToJoinedMs: 310 });
        await m.exited('something new');
      }),
    );
    assert.deepEqual(findMetrics(ms, 'AgentJoinTime', { Stack: STACK, AgentSource: 'pool' })[0].values, [310]);
    assert.equal(findMetrics(ms, 'AgentExits', { Stack: STACK, ExitReason: 'other' }).length, 1);
  });

  test('pool samples: high resolution, Pool = the stack, stamped with their sample time', async () => {
    const m = new AgentMetrics({ stack: STACK, source: 'pool', fields: () => ({ session_id: null }) });
    const at = sampleTime(Date.now());
    const ms = emfMetrics(
      await captured(async () => {
        await m.poolSample(false, at);
        await m.poolSample(true, at + POOL_SAMPLE_INTERVAL_MS);
      }),
    );
    assert.equal(ms.length, 2);
    for (const [i, x] of ms.entries()) {
      assert.equal(x.namespace, 'CounselVideo/AgentPool');
      assert.equal(x.name, 'PoolWorkerBusy');
      assert.deepEqual(x.dimensions, { Pool: STACK });
      assert.equal(x.storageResolution, 1);
      assert.equal(x.unit, 'Count');
      assert.equal(x.timestamp, at + i * POOL_SAMPLE_INTERVAL_MS);
      assert.deepEqual(x.values, [i]);
    }
  });

  test('sample times sit in the middle of each 10-second period', () => {
    const base = Date.UTC(2026, 2, 2, 10, 0, 0);
    for (const [t, want] of [
      [base, base + 5000],
      [base + 4999, base + 5000],
      [base + 5000, base + 5000],
      [base + 9999, base + 5000],
      [base + 10_000, base + 15_000],
    ]) {
      assert.equal(sampleTime(t), want, `sampleTime(+${t - base})`);
    }
  });

  test('every way a session ends is a bounded exit reason', () => {
    for (const reason of Object.keys(EXIT_CODE)) assert.ok((EXIT_REASONS as readonly string[]).includes(reason), reason);
    assert.deepEqual(METRICS.dimensionValues.ExitReason, [...EXIT_REASONS]);
  });

  test('the validator refuses what CloudWatch would not extract', () => {
    const good = '{"_aws":{"Timestamp":1772445600000,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Stack"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"Stack":"s","M":1}';
    assert.equal(validateEmf(good).length, 1);
    for (const bad of [
      good.replace('1772445600000', '1772445600'), // seconds, not milliseconds
      good.replace('"Stack":"s",', ''), // dimension without its member
      good.replace('"M":1', '"M":"1"'), // value not a number
      good.replace('"Unit":"Count"', '"Unit":"Sessions"'),
      good.replace('"Namespace":"N"', '"Namespace":"AWS/N"'),
      good.replace('"Timestamp"', '"Extra":1,"Timestamp"'),
    ]) {
      assert.throws(() => validateEmf(bad), bad);
    }
    assert.throws(() => emfMetrics('{"level":"info","metrics":{"_aws":{}}}'), /nested/);
  });
});
