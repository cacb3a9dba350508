// Per-replica window payloads for Redis: encode one replica's cumulative totals, validate what others wrote, pool them.
//
// Each replica writes ABSOLUTE cumulative totals into its own hash field, so re-sending after a timeout or a
// reconnect overwrites instead of adding: pooling is idempotent and never double counts. Totals are merged with the
// engine's associative merge (Welford moments stored as n/mean/m2 and combined with Chan's formula, so nothing is
// lost to the cancellation of power sums). The breakers' recent windows travel as failures-of-the-last-n and a
// log-bucketed latency histogram, both of which add up exactly across replicas.
import type { ArmTotals, ArmWindow, RouteWindow } from '../analysis/window.js';
import { emptyTotals, mergeTotals } from '../analysis/window.js';
import { parseCounts, parseMoments, type Counts } from '../analysis/stats/index.js';
import type { GuardrailPolicy } from '../config/policy-schema.js';
import type { GuardrailInputs, RecentView } from '../control/guardrails.js';

/** Payload format version; a replica ignores fields written in a format it does not know. */
const PAYLOAD_VERSION = 1;

/** Latency histogram resolution: 16 buckets per doubling, so a bucket's upper edge is at most 4.4 % above any value in it. */
const BUCKETS_PER_DOUBLING = 16;
const HISTOGRAM_FLOOR_MS = 0.05;

/** The breakers' inputs of one served challenger on one replica. */
export interface RecentSummary {
  /** Failures among the last `errorRate.window` requests (`events` of `n`). */
  failures: Counts;
  /** Latencies of the last `latency.window` requests as [bucket, count] pairs (see latencyBucket). */
  latency: [number, number][];
}

/** What one replica publishes for one route and epoch (one hash field). */
export interface ReplicaPayload {
  v: typeof PAYLOAD_VERSION;
  /** SWITCHYARD_INSTANCE_ID of the writer. */
  instance: string;
  /** Wall-clock ms of the write; recent windows older than the liveness bound are left out of the pool. */
  at: number;
  /** The writer's champion p95 threshold (null until fixed). */
  p95ThresholdMs: number | null;
  /** Cumulative totals per arm: `champion`, `challenger:<name>`, `shadow:<name>`. */
  arms: Record<string, ArmTotals>;
  /** Recent windows per served challenger name. */
  recent: Record<string, RecentSummary>;
  /**
   * Labelled outcomes per variant joined on this replica since the experiment began (feedback joins on the replica
   * that served the request, so each label counts in exactly one payload). Absent in payloads of older replicas.
   */
  outcomes?: Record<string, Outcome>;
  /** Parsed champion/shadow pairs joined on this replica since the experiment began, and how many agreed. */
  agreement?: Agreement;
}

/** Parsed prediction pairs and how many of them agreed. */
export interface Agreement {
  agree: number;
  parsed: number;
}

/** What the pair recorder of one replica counted in the current experiment (published with its window). */
export interface ExperimentSnapshot {
  outcomes: Readonly<Record<string, Outcome>>;
  agreement: Agreement;
}

/** Labelled requests of one variant and how many its prediction got right. */
export interface Outcome {
  n: number;
  correct: number;
}

/** The pooled statistics of one route and epoch. */
export interface PooledView {
  readonly epoch: string;
  readonly arms: ReadonlyMap<string, ArmTotals>;
  /** Pooled recent windows per served challenger (live replicas only). */
  readonly recent: ReadonlyMap<string, { failures: Counts; latency: ReadonlyMap<number, number> }>;
  /** Distinct instances whose payload is live (written within the liveness bound), this one included. */
  readonly replicas: number;
  /** Payloads pooled (dead instances and earlier windows of live ones included). */
  readonly fields: number;
  /** Labelled outcomes per variant summed over every payload (dead instances included, like the totals). */
  readonly outcomes: Readonly<Record<string, Outcome>>;
  /** Parsed pairs and agreements summed over every payload. */
  readonly agreement: Agreement;
}

/** Key of an arm in `ReplicaPayload.arms`. */
export function armKey(role: 'champion' | 'challenger' | 'shadow', name: string): string {
  return role === 'champion' ? 'champion' : `${role}:${name}`;
}

/** Bucket of a latency: 0 up to 0.05 ms, then 16 per doubling. */
export function latencyBucket(ms: number): number {
  if (!(ms > HISTOGRAM_FLOOR_MS)) return 0;
  return Math.ceil(BUCKETS_PER_DOUBLING * Math.log2(ms / HISTOGRAM_FLOOR_MS));
}

/** Upper edge of a bucket in ms (every latency in it is at most this). */
export function bucketUpperMs(bucket: number): number {
  return HISTOGRAM_FLOOR_MS * 2 ** (bucket / BUCKETS_PER_DOUBLING);
}

/**
 * p99 of a histogram, as the upper edge of the bucket holding the ceil(0.99·n)-th value (the same order statistic as
 * the local breaker), so it errs high by at most one bucket (4.4 %).
 */
export function histogramP99(histogram: ReadonlyMap<number, number>): { p99: number; of: number } {
  let of = 0;
  for (const count of histogram.values()) of += count;
  if (of === 0) return { p99: 0, of: 0 };
  const rank = Math.ceil(0.99 * of);
  let seen = 0;
  for (const bucket of [...histogram.keys()].sort((a, b) => a - b)) {
    seen += histogram.get(bucket)!;
    if (seen >= rank) return { p99: bucketUpperMs(bucket), of };
  }
  return { p99: 0, of };
}

function recentOf(arm: ArmWindow, policy: GuardrailPolicy): RecentSummary {
  const failures = arm.recent.failuresInLast(policy.errorRate.window);
  const ring = arm.recent;
  const of = Math.min(policy.latency.window, ring.size);
  const histogram = new Map<number, number>();
  for (let i = 1; i <= of; i++) {
    const bucket = latencyBucket(ring.latencies[(ring.next - i + ring.latencies.length) % ring.latencies.length]!);
    histogram.set(bucket, (histogram.get(bucket) ?? 0) + 1);
  }
  return { failures: { n: failures.of, events: failures.count }, latency: [...histogram] };
}

function copyTotals(t: ArmTotals): ArmTotals {
  return { errors: { ...t.errors }, logLatency: { ...t.logLatency }, exceedance: { ...t.exceedance } };
}

/** One replica's payload for a route window (a copy: the request path keeps mutating the window). */
export function encodeWindow(window: RouteWindow, policy: GuardrailPolicy, instance: string, now: number, experiment: ExperimentSnapshot = noExperiment): ReplicaPayload {
  const arms: Record<string, ArmTotals> = { champion: copyTotals(window.champion.totals) };
  const recent: Record<string, RecentSummary> = {};
  for (const [name, arm] of window.challengers) {
    arms[armKey('challenger', name)] = copyTotals(arm.totals);
    recent[name] = recentOf(arm, policy);
  }
  for (const [name, arm] of window.shadows) arms[armKey('shadow', name)] = copyTotals(arm.totals);
  const outcomes: Record<string, Outcome> = {};
  for (const [variant, o] of Object.entries(experiment.outcomes)) outcomes[variant] = { n: o.n, correct: o.correct };
  const agreement = { agree: experiment.agreement.agree, parsed: experiment.agreement.parsed };
  return { v: PAYLOAD_VERSION, instance, at: now, p95ThresholdMs: window.p95ThresholdMs, arms, recent, outcomes, agreement };
}

/** A replica that has counted nothing (or has no pair recorder). */
export const noExperiment: ExperimentSnapshot = Object.freeze({ outcomes: Object.freeze({}), agreement: Object.freeze({ agree: 0, parsed: 0 }) });

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseTotals(value: unknown): ArmTotals | null {
  if (!isRecord(value)) return null;
  const errors = parseCounts(value.errors);
  const logLatency = parseMoments(value.logLatency);
  const exceedance = parseCounts(value.exceedance);
  return errors && logLatency && exceedance ? { errors, logLatency, exceedance } : null;
}

function parseRecent(value: unknown): RecentSummary | null {
  if (!isRecord(value) || !Array.isArray(value.latency)) return null;
  const failures = parseCounts(value.failures);
  if (failures === null) return null;
  const latency: [number, number][] = [];
  for (const pair of value.latency) {
    if (!Array.isArray(pair) || pair.length !== 2 || !Number.isInteger(pair[0]) || !Number.isInteger(pair[1]) || (pair[1] as number) < 0) return null;
    latency.push([pair[0] as number, pair[1] as number]);
  }
  return { failures, latency };
}

function parseOutcomes(value: unknown): Record<string, Outcome> | null {
  if (!isRecord(value)) return null;
  const outcomes: Record<string, Outcome> = {};
  for (const [variant, o] of Object.entries(value)) {
    if (!isRecord(o) || !Number.isSafeInteger(o.n) || !Number.isSafeInteger(o.correct)) return null;
    const n = o.n as number;
    const correct = o.correct as number;
    if (n < 0 || correct < 0 || correct > n) return null;
    outcomes[variant] = { n, correct };
  }
  return outcomes;
}

function parseAgreement(value: unknown): Agreement | null {
  if (!isRecord(value) || !Number.isSafeInteger(value.agree) || !Number.isSafeInteger(value.parsed)) return null;
  const agree = value.agree as number;
  const parsed = value.parsed as number;
  return agree >= 0 && agree <= parsed ? { agree, parsed } : null;
}

/** A payload read from Redis, or null when it is not valid JSON of the current format (it is then left out). */
export function parsePayload(text: string): ReplicaPayload | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(value) || value.v !== PAYLOAD_VERSION || typeof value.instance !== 'string' || typeof value.at !== 'number') return null;
  if (!isRecord(value.arms) || !isRecord(value.recent)) return null;
  const p95 = value.p95ThresholdMs;
  if (p95 !== null && (typeof p95 !== 'number' || !Number.isFinite(p95))) return null;
  const arms: Record<string, ArmTotals> = {};
  for (const [key, totals] of Object.entries(value.arms)) {
    const parsed = parseTotals(totals);
    if (parsed === null) return null;
    arms[key] = parsed;
  }
  const recent: Record<string, RecentSummary> = {};
  for (const [name, summary] of Object.entries(value.recent)) {
    const parsed = parseRecent(summary);
    if (parsed === null) return null;
    recent[name] = parsed;
  }
  const payload: ReplicaPayload = { v: PAYLOAD_VERSION, instance: value.instance, at: value.at, p95ThresholdMs: p95, arms, recent };
  // Both are absent in payloads of replicas of the previous version; present, they must be valid.
  if (value.outcomes !== undefined) {
    const outcomes = parseOutcomes(value.outcomes);
    if (outcomes === null) return null;
    payload.outcomes = outcomes;
  }
  if (value.agreement !== undefined) {
    const agreement = parseAgreement(value.agreement);
    if (agreement === null) return null;
    payload.agreement = agreement;
  }
  return payload;
}

/**
 * Pools payloads: totals of every payload (a replica that died still contributed valid evidence to this epoch), recent
 * windows only of payloads written at or after `liveSince` (a dead replica's last failures are not "recent").
 */
export function poolPayloads(epoch: string, payloads: Iterable<ReplicaPayload>, liveSince: number): PooledView {
  const arms = new Map<string, ArmTotals>();
  const recent = new Map<string, { failures: Counts; latency: Map<number, number> }>();
  const live = new Set<string>();
  const outcomes: Record<string, Outcome> = {};
  const agreement = { agree: 0, parsed: 0 };
  let fields = 0;
  for (const payload of payloads) {
    fields++;
    for (const [key, totals] of Object.entries(payload.arms)) arms.set(key, mergeTotals(arms.get(key) ?? emptyTotals(), totals));
    for (const [variant, o] of Object.entries(payload.outcomes ?? {})) {
      const sum = (outcomes[variant] ??= { n: 0, correct: 0 });
      sum.n += o.n;
      sum.correct += o.correct;
    }
    agreement.agree += payload.agreement?.agree ?? 0;
    agreement.parsed += payload.agreement?.parsed ?? 0;
    if (payload.at < liveSince) continue;
    live.add(payload.instance);
    for (const [name, summary] of Object.entries(payload.recent)) {
      let pooled = recent.get(name);
      if (!pooled) {
        pooled = { failures: { n: 0, events: 0 }, latency: new Map() };
        recent.set(name, pooled);
      }
      pooled.failures.n += summary.failures.n;
      pooled.failures.events += summary.failures.events;
      for (const [bucket, count] of summary.latency) pooled.latency.set(bucket, (pooled.latency.get(bucket) ?? 0) + count);
    }
  }
  return { epoch, arms, recent, replicas: live.size, fields, outcomes, agreement };
}

/** The guardrails' inputs from pooled statistics (the p95 threshold is the judging replica's own, see docs/replicas.md). */
export function pooledInputs(view: PooledView, challenger: string | null, p95ThresholdMs: number | null): GuardrailInputs {
  const recent = challenger === null ? undefined : view.recent.get(challenger);
  const view99: RecentView = {
    failures: recent ? { count: recent.failures.events, of: recent.failures.n } : { count: 0, of: 0 },
    p99: recent ? histogramP99(recent.latency) : { p99: 0, of: 0 },
  };
  return {
    champion: view.arms.get('champion') ?? emptyTotals(),
    challenger: (challenger === null ? undefined : view.arms.get(armKey('challenger', challenger))) ?? emptyTotals(),
    recent: view99,
    p95ThresholdMs,
  };
}
