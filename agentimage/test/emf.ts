// Reads CloudWatch embedded-metric-format lines out of an agent's stdout and validates each against
// the specification (the same rules as the Go side's shared/metrics/emftest): a line CloudWatch would
// not extract fails the test instead of being a silently missing metric.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

const UNITS = new Set([
  'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes',
  'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second',
  'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second',
  'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None',
]);
const MIN_TS = Date.UTC(2020, 0, 1);
const MAX_TS = Date.UTC(2100, 0, 1);

/** One metric CloudWatch would extract: per directive, dimension set and metric definition. */
export interface EmfMetric {
  namespace: string;
  name: string;
  unit: string;
  storageResolution: number;
  dimensions: Record<string, string>;
  values: number[];
  timestamp: number;
  doc: Record<string, unknown>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyMembers(o: Obj, where: string, allowed: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new Error(`${where} has the member "${k}", which the specification does not define`);
}

/** Validates one line; throws with the rule it breaks. */
export function validateEmf(line: string): EmfMetric[] {
  const doc = JSON.parse(line) as unknown;
  if (!isObj(doc) || !isObj(doc._aws)) throw new Error('no _aws object at the root');
  const meta = doc._aws;
  onlyMembers(meta, '_aws', ['Timestamp', 'CloudWatchMetrics']);
  const ts = meta.Timestamp;
  if (typeof ts !== 'number' || !Number.isInteger(ts) || ts < MIN_TS || ts > MAX_TS) throw new Error(`_aws.Timestamp ${String(ts)} is not milliseconds since the epoch`);
  const directives = meta.CloudWatchMetrics;
  if (!Array.isArray(directives) || directives.length === 0) throw new Error('_aws.CloudWatchMetrics must be a non-empty array');
  const out: EmfMetric[] = [];
  let total = 0;
  directives.forEach((d, i) => {
    const where = `CloudWatchMetrics[${i}]`;
    if (!isObj(d)) throw new Error(`${where} is not an object`);
    onlyMembers(d, where, ['Namespace', 'Dimensions', 'Metrics']);
    const ns = d.Namespace;
    if (typeof ns !== 'string' || !ns.trim() || ns.length > 255 || !/^[a-zA-Z0-9 ._#:/-]+$/.test(ns) || ns.startsWith('AWS/')) {
      throw new Error(`${where}.Namespace ${String(ns)} is not a valid custom namespace`);
    }
    if (!Array.isArray(d.Dimensions)) throw new Error(`${where}.Dimensions must be an array of dimension sets`);
    const sets = d.Dimensions.map((set, j) => {
      if (!Array.isArray(set) || set.length > 30) throw new Error(`${where}.Dimensions[${j}] must be an array of at most 30 names`);
      return set.map((k) => {
        if (typeof k !== 'string' || !k.trim() || k.startsWith(':') || !/^[\x00-\x7f]+$/.test(k)) throw new Error(`${where}.Dimensions[${j}]: invalid name ${String(k)}`);
        const v = doc[k];
        if (typeof v !== 'string' || !v.trim() || v.length > 1024 || !/^[\x00-\x7f]+$/.test(v)) throw new Error(`${where}.Dimensions[${j}]: dimension ${k} has no valid string member`);
        return k;
      });
    });
    sets.forEach((set, j) => {
      if (new Set(set).size !== set.length) throw new Error(`${where}.Dimensions[${j}] repeats a dimension`);
    });
    if (!Array.isArray(d.Metrics) || d.Metrics.length === 0) throw new Error(`${where}.Metrics must be a non-empty array`);
    total += d.Metrics.length;
    d.Metrics.forEach((m, j) => {
      const mw = `${where}.Metrics[${j}]`;
      if (!isObj(m)) throw new Error(`${mw} is not an object`);
      onlyMembers(m, mw, ['Name', 'Unit', 'StorageResolution']);
      const name = m.Name;
      if (typeof name !== 'string' || !name.trim()) throw new Error(`${mw}.Name is missing`);
      if (m.Unit !== undefined && (typeof m.Unit !== 'string' || !UNITS.has(m.Unit))) throw new Error(`${mw}.Unit ${String(m.Unit)} is not a CloudWatch unit`);
      if (m.StorageResolution !== undefined && m.StorageResolution !== 1 && m.StorageResolution !== 60) throw new Error(`${mw}.StorageResolution must be 1 or 60`);
      const raw = doc[name];
      const values = typeof raw === 'number' ? [raw] : Array.isArray(raw) ? raw : undefined;
      if (!values || values.length === 0 || values.length > 100 || values.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
        throw new Error(`${mw}: member ${name} must be a number or 1-100 numbers`);
      }
      for (const set of sets) {
        out.push({
          namespace: ns,
          name,
          unit: (m.Unit as string | undefined) ?? 'None',
          storageResolution: (m.StorageResolution as number | undefined) ?? 60,
          dimensions: Object.fromEntries(set.map((k) => [k, doc[k] as string])),
          values: values as number[],
          timestamp: ts,
          doc,
        });
      }
    });
  });
  if (total > 100) throw new Error(`${total} metric definitions in one document, at most 100`);
  return out;
}

/**
 * Every EMF line of `output` (a line whose root has _aws), validated; a log line carrying _aws
 * anywhere else is an error too (a metric nested in a log line is never extracted).
 */
export function emfMetrics(output: string): EmfMetric[] {
  const out: EmfMetric[] = [];
  for (const line of output.split('\n')) {
    const l = line.trim();
    if (!l.includes('"_aws"')) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(l);
    } catch {
      throw new Error(`EMF inside a non-JSON line is never extracted: ${l.slice(0, 300)}`);
    }
    if (!isObj(doc) || !isObj(doc._aws)) throw new Error(`_aws nested in a log line is never extracted: ${l.slice(0, 300)}`);
    try {
      out.push(...validateEmf(l));
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${l.slice(0, 300)}`);
    }
  }
  return out;
}

/** The metrics named `name` whose dimensions are exactly `dims`. */
export function findMetrics(ms: EmfMetric[], name: string, dims: Record<string, string>): EmfMetric[] {
  return ms.filter(
    (m) => m.name === name && Object.keys(m.dimensions).length === Object.keys(dims).length && Object.entries(dims).every(([k, v]) => m.dimensions[k] === v),
  );
}

/** The metrics `name` with exactly `dims` (Stack = the test stack added) in an agent's stdout. */
export function agentMetric(stdout: string, name: string, dims: Record<string, string> = {}, stack = 'agent-test'): EmfMetric[] {
  return findMetrics(emfMetrics(stdout), name, name === 'PoolWorkerBusy' ? { Pool: stack, ...dims } : { Stack: stack, ...dims });
}
