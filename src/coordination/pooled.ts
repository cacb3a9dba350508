// Per-replica window payloads for Redis: encode one replica's cumulative totals, validate what others wrote, pool them.
//
// Each replica writes ABSOLUTE cumulative totals into its own hash field, so re-sending after a timeout or a
// reconnect overwrites instead of adding: pooling is idempotent and never double counts. Totals are merged with the
// engine's associative merge (Welford moments stored as n/mean/m2 and combined with Chan's formula, so nothing is
// lost to the cancellation of power sums). The breakers are sequential tests on the same cumulative counts, so they
// need nothing else.
import type { ArmComparison, ArmTotals, RouteWindow, Stratum, StreamTotals } from '../analysis/window.js';
import { armKey, copyTotals, emptyStreamTotals, emptyTotals, mergeTotals, stratumPairs } from '../analysis/window.js';
import { parseCounts, parseMoments } from '../analysis/stats/index.js';
import { mergePredictions } from '../analysis/divergence.js';
import type { ArmPredictionCounts } from '../record/prediction-stats.js';

/**
 * Payload format version; a replica leaves out payloads of another version. Version 2 (this one) added the tail,
 * ceiling and unit counts and dropped the recent windows of version 1: during a rolling upgrade each version pools
 * only its own replicas (docs/replicas.md).
 */
const PAYLOAD_VERSION = 2;

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
  /** The same totals per split epoch, oldest first (epochs are named by the split they served, alike on every replica). */
  strata: { key: string; arms: Record<string, ArmTotals> }[];
  /**
   * Labelled outcomes per variant joined on this replica since the experiment began (feedback joins on the replica
   * that served the request, so each label counts in exactly one payload). Absent in payloads of older replicas.
   */
  outcomes?: Record<string, Outcome>;
  /** Parsed champion/shadow pairs joined on this replica since the experiment began, and how many agreed. */
  agreement?: Agreement;
  /** Prediction counts per arm since the experiment began (divergence); absent from replicas without a divergence policy. */
  predictions?: Record<string, ArmPredictionCounts>;
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
  predictions?: Readonly<Record<string, ArmPredictionCounts>>;
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
  /** Pooled totals per split epoch, merged by epoch key. */
  readonly strata: readonly Stratum[];
  /** Distinct instances whose payload is live (written within the liveness bound), this one included. */
  readonly replicas: number;
  /** Payloads pooled (dead instances and earlier windows of live ones included). */
  readonly fields: number;
  /** Labelled outcomes per variant summed over every payload (dead instances included, like the totals). */
  readonly outcomes: Readonly<Record<string, Outcome>>;
  /** Parsed pairs and agreements summed over every payload. */
  readonly agreement: Agreement;
  /** Prediction counts per arm summed over every payload. */
  readonly predictions: Readonly<Record<string, ArmPredictionCounts>>;
}

export { armKey };

/** One replica's payload for a route window (a copy: the request path keeps mutating the window). */
export function encodeWindow(window: RouteWindow, instance: string, now: number, experiment: ExperimentSnapshot = noExperiment): ReplicaPayload {
  const arms: Record<string, ArmTotals> = { champion: copyTotals(window.champion.totals) };
  for (const [name, arm] of window.challengers) arms[armKey('challenger', name)] = copyTotals(arm.totals);
  const strata = window.strata().map((stratum) => ({ key: stratum.key, arms: Object.fromEntries([...stratum.arms].map(([name, totals]) => [name, copyTotals(totals)])) }));
  for (const [name, arm] of window.shadows) arms[armKey('shadow', name)] = copyTotals(arm.totals);
  const outcomes: Record<string, Outcome> = {};
  for (const [variant, o] of Object.entries(experiment.outcomes)) outcomes[variant] = { n: o.n, correct: o.correct };
  const agreement = { agree: experiment.agreement.agree, parsed: experiment.agreement.parsed };
  const payload: ReplicaPayload = { v: PAYLOAD_VERSION, instance, at: now, p95ThresholdMs: window.p95ThresholdMs, arms, strata, outcomes, agreement };
  if (experiment.predictions !== undefined && Object.keys(experiment.predictions).length > 0) payload.predictions = structuredClone(experiment.predictions) as Record<string, ArmPredictionCounts>;
  return payload;
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
  const scaledExceedance = parseCounts(value.scaledExceedance);
  const overCeiling = parseCounts(value.overCeiling);
  const { units, rejectedLatencies } = value;
  if (!(Number.isSafeInteger(units) && (units as number) >= 0 && Number.isSafeInteger(rejectedLatencies) && (rejectedLatencies as number) >= 0)) return null;
  // A replica of a version without streaming totals sends none: its answers count as not streamed.
  const stream = value.stream === undefined ? emptyStreamTotals() : parseStreamTotals(value.stream);
  return errors && logLatency && exceedance && scaledExceedance && overCeiling && stream ? { errors, logLatency, exceedance, scaledExceedance, overCeiling, units: units as number, rejectedLatencies: rejectedLatencies as number, stream } : null;
}

function parseStreamTotals(value: unknown): StreamTotals | null {
  if (!isRecord(value)) return null;
  const logTtft = parseMoments(value.logTtft);
  const stalled = parseCounts(value.stalled);
  const interrupted = parseCounts(value.interrupted);
  const gaps = parseCounts(value.gaps);
  const { tokens, generationMs } = value;
  if (!(typeof tokens === 'number' && Number.isFinite(tokens) && tokens >= 0 && typeof generationMs === 'number' && Number.isFinite(generationMs) && generationMs >= 0)) return null;
  return logTtft && stalled && interrupted && gaps ? { logTtft, stalled, interrupted, gaps, tokens, generationMs } : null;
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

function parseCountMap(value: unknown): Record<string, number> | null {
  if (!isRecord(value)) return null;
  for (const n of Object.values(value)) if (!Number.isSafeInteger(n) || (n as number) < 0) return null;
  return value as Record<string, number>;
}

function parsePredictions(value: unknown): Record<string, ArmPredictionCounts> | null {
  if (!isRecord(value)) return null;
  const out: Record<string, ArmPredictionCounts> = {};
  for (const [arm, c] of Object.entries(value)) {
    if (!isRecord(c) || !Number.isSafeInteger(c.n) || (c.n as number) < 0) return null;
    const classes = parseCountMap(c.classes);
    const scores = parseCountMap(c.scores);
    if (classes === null || scores === null) return null;
    out[arm] = { n: c.n as number, classes, scores };
  }
  return out;
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
  if (!isRecord(value.arms)) return null;
  const p95 = value.p95ThresholdMs;
  if (p95 !== null && (typeof p95 !== 'number' || !Number.isFinite(p95))) return null;
  const arms: Record<string, ArmTotals> = {};
  for (const [key, totals] of Object.entries(value.arms)) {
    const parsed = parseTotals(totals);
    if (parsed === null) return null;
    arms[key] = parsed;
  }
  if (!Array.isArray(value.strata)) return null;
  const strata: ReplicaPayload['strata'] = [];
  for (const stratum of value.strata as unknown[]) {
    if (!isRecord(stratum) || typeof stratum.key !== 'string' || !isRecord(stratum.arms)) return null;
    const stratumArms: Record<string, ArmTotals> = {};
    for (const [key, totals] of Object.entries(stratum.arms)) {
      const parsed = parseTotals(totals);
      if (parsed === null) return null;
      stratumArms[key] = parsed;
    }
    strata.push({ key: stratum.key, arms: stratumArms });
  }
  const payload: ReplicaPayload = { v: PAYLOAD_VERSION, instance: value.instance, at: value.at, p95ThresholdMs: p95, arms, strata };
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
  if (value.predictions !== undefined) {
    const predictions = parsePredictions(value.predictions);
    if (predictions === null) return null;
    payload.predictions = predictions;
  }
  return payload;
}

/**
 * Pools payloads: totals of every payload (a replica that died still contributed valid evidence to this epoch); a
 * replica counts as live when its payload was written at or after `liveSince`.
 */
export function poolPayloads(epoch: string, payloads: Iterable<ReplicaPayload>, liveSince: number): PooledView {
  const arms = new Map<string, ArmTotals>();
  const strata = new Map<string, Map<string, ArmTotals>>();
  const live = new Set<string>();
  const outcomes: Record<string, Outcome> = {};
  const agreement = { agree: 0, parsed: 0 };
  const predictions: Record<string, ArmPredictionCounts> = {};
  let fields = 0;
  for (const payload of payloads) {
    fields++;
    for (const [key, totals] of Object.entries(payload.arms)) arms.set(key, mergeTotals(arms.get(key) ?? emptyTotals(), totals));
    for (const stratum of payload.strata) {
      let pooled = strata.get(stratum.key);
      if (pooled === undefined) strata.set(stratum.key, (pooled = new Map()));
      for (const [key, totals] of Object.entries(stratum.arms)) pooled.set(key, mergeTotals(pooled.get(key) ?? emptyTotals(), totals));
    }
    for (const [variant, o] of Object.entries(payload.outcomes ?? {})) {
      const sum = (outcomes[variant] ??= { n: 0, correct: 0 });
      sum.n += o.n;
      sum.correct += o.correct;
    }
    agreement.agree += payload.agreement?.agree ?? 0;
    agreement.parsed += payload.agreement?.parsed ?? 0;
    if (payload.predictions !== undefined) mergePredictions(predictions, payload.predictions);
    if (payload.at >= liveSince) live.add(payload.instance);
  }
  return { epoch, arms, strata: [...strata].map(([key, pooled]) => ({ key, arms: pooled })), replicas: live.size, fields, outcomes, agreement, predictions };
}

/** The guardrails' inputs from pooled statistics (the p95 threshold is the judging replica's own, see docs/replicas.md). */
export function pooledInputs(view: PooledView, challenger: string | null, p95ThresholdMs: number | null): ArmComparison {
  return {
    champion: view.arms.get('champion') ?? emptyTotals(),
    challenger: (challenger === null ? undefined : view.arms.get(armKey('challenger', challenger))) ?? emptyTotals(),
    strata: challenger === null ? [] : stratumPairs(view.strata, armKey('challenger', challenger)),
    p95ThresholdMs,
  };
}
