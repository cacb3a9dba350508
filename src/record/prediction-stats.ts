// Sufficient statistics of predictions and inputs per route and arm, kept in the recorder worker within a byte budget: class counts, score sketches and tumbling-window drift.
import type { RoutePolicy } from '../config/policy-schema.js';
import type { Extracted, PredictionKind } from './extract.js';
import { parsePointer, resolvePointer } from './extract.js';

export type DivergencePolicy = NonNullable<RoutePolicy['divergence']>;
export type DriftPolicy = NonNullable<RoutePolicy['drift']>;

/**
 * One arm's prediction counts, cumulative since the worker started: classes by label (labels beyond the route's
 * `divergence.classes` pooled under {@link OTHER_LABEL}), scores (and text lengths) by log bucket ({@link scoreBucket}).
 * Plain JSON: it travels to the serving thread and, through Redis, to the other replicas, where counts are summed.
 */
export interface ArmPredictionCounts {
  n: number;
  classes: Record<string, number>;
  scores: Record<string, number>;
}

/**
 * What a count is of: served answers of the champion or a challenger, the two sides of a shadow's pairs (`shadow`,
 * and `paired` for the served side), or a shadow's agree/disagree tally (`agreement`, the noise floor).
 */
export type PredictionSide = 'champion' | 'challenger' | 'shadow' | 'paired' | 'agreement';

/** The key of one arm's counts (like the guardrail pool's arm keys: `champion`, `<side>:<name>`). */
export function predictionArmKey(side: PredictionSide, name: string): string {
  return side === 'champion' ? 'champion' : `${side}:${name}`;
}

/** The label that stands for every class beyond the tracked ones. */
export const OTHER_LABEL = '\u0000other';
/** Longer labels are cut: a label is a class name, not a document. */
const MAX_LABEL_CHARS = 128;
/** Relative width of a score bucket: bucket b holds |x| in [γ^(b−1), γ^b)·1e-9. */
const BUCKET_GROWTH = 1.1;
const BUCKET_FLOOR = 1e-9;
/** Buckets per sign: |x| from 1e-9 to 1e9. */
const MAX_BUCKET = Math.ceil(Math.log(1e18) / Math.log(BUCKET_GROWTH));

/**
 * The log bucket of a score: 0 for |x| < 1e-9, else ±(1 + ⌊ln(|x|/1e-9)/ln 1.1⌋) clamped to ±{@link MAX_BUCKET}. Fixed
 * boundaries (no data needed to place them) make sketches of different replicas add up bucket by bucket.
 */
export function scoreBucket(x: number): number {
  const size = Math.abs(x);
  if (!(size >= BUCKET_FLOOR)) return 0;
  const b = Math.min(MAX_BUCKET, 1 + Math.floor(Math.log(size / BUCKET_FLOOR) / Math.log(BUCKET_GROWTH)));
  return x < 0 ? -b : b;
}

/** A value inside bucket `b` (its lower end for positive buckets), for showing edges to people. */
export function bucketValue(b: number): number {
  if (b === 0) return 0;
  const v = BUCKET_FLOOR * BUCKET_GROWTH ** (Math.abs(b) - 1);
  return b < 0 ? -v : v;
}

/**
 * One closed drift window of one arm and feature ("prediction" for the arm's own predictions): its counts and the
 * reference window's, in the same bins. The serving thread judges it (src/analysis/drift.ts); the worker only counts.
 */
export interface DriftWindow {
  variant: string;
  feature: string;
  /** Index of the tumbling window (0 is the reference) and when it ended. */
  window: number;
  endedAt: string;
  reference: number[];
  current: number[];
}

/** What the worker reports for one route. */
export interface RoutePredictionTotals {
  /** Keyed like the guardrail pool: `champion`, `challenger:<name>`, `shadow:<name>`, and `paired:<name>` (the served side of pairs with shadow <name>). */
  arms: Record<string, ArmPredictionCounts>;
  /** The last closed window per variant and feature. */
  drift: DriftWindow[];
}

/** Bytes counted for one stored label or bucket, and for one reference value. */
const entryBytes = 48;
const valueBytes = 8;
/** Reference values kept per numeric feature to place its bins. */
const MAX_REFERENCE_VALUES = 2_000;

interface FeatureWindow {
  /** Numeric: values of the reference window (until it closes), then the frozen bin edges. */
  referenceValues: number[] | null;
  edges: number[] | null;
  /** Categorical: label → bin, fixed by the reference window (later labels: the last, "other", bin). */
  labels: Map<string, number> | null;
  reference: number[] | null;
  current: number[];
  /** Raw values or labels of the current window while it is the reference (categorical labels counted per label). */
  referenceLabels: Map<string, number> | null;
  index: number;
}

interface RouteStats {
  arms: Map<string, ArmPredictionCounts>;
  /** variant → feature → window. */
  drift: Map<string, Map<string, FeatureWindow>>;
  windowStart: number;
  results: Map<string, DriftWindow>;
}

/** Compiled drift features of a route. */
interface CompiledFeature {
  name: string;
  tokens: readonly string[];
  kind: 'numeric' | 'categorical';
}

/**
 * Counts predictions per route and arm, and judges drift per tumbling window. Everything it holds is counted against
 * `budgetBytes` (budgets.ts): beyond it a new label is counted as "other", a new score bucket or reference value is
 * dropped, and each loss is counted by `onDrop`.
 */
export class PredictionStats {
  readonly #routes = new Map<string, RouteStats>();
  readonly #budgetBytes: number;
  readonly #onDrop: () => void;
  readonly #clock: () => number;
  readonly #features = new WeakMap<DriftPolicy, CompiledFeature[]>();
  #bytes = 0;

  constructor(options: { budgetBytes: number; onDrop?: () => void; clock?: () => number }) {
    this.#budgetBytes = options.budgetBytes;
    this.#onDrop = options.onDrop ?? (() => undefined);
    this.#clock = options.clock ?? Date.now;
  }

  /** Bytes held, as counted against the budget. */
  get bytes(): number {
    return this.#bytes;
  }

  #route(route: string): RouteStats {
    let stats = this.#routes.get(route);
    if (!stats) {
      stats = { arms: new Map(), drift: new Map(), windowStart: this.#clock(), results: new Map() };
      this.#routes.set(route, stats);
    }
    return stats;
  }

  #room(bytes: number): boolean {
    if (this.#bytes + bytes > this.#budgetBytes) {
      this.#onDrop();
      return false;
    }
    this.#bytes += bytes;
    return true;
  }

  /** Counts one arm's prediction (an array counts each element: a batch of instances). */
  observePrediction(route: string, arm: string, value: Extracted['value'], kind: PredictionKind, divergence: DivergencePolicy | undefined): void {
    if (value === null) return;
    const stats = this.#route(route);
    let counts = stats.arms.get(arm);
    if (!counts) {
      if (!this.#room(entryBytes + arm.length)) return;
      counts = { n: 0, classes: {}, scores: {} };
      stats.arms.set(arm, counts);
    }
    // Labels are kept well beyond the classes compared, so that every arm keeps the same labels (the comparison picks
    // the most frequent over both arms); only a model with more labels than this pools the rest, per arm, as "other".
    const maxLabels = Math.max(64, 2 * (divergence?.classes ?? 16));
    for (const element of Array.isArray(value) ? value : [value]) {
      counts.n++;
      if (kind === 'class') {
        let label = String(element).slice(0, MAX_LABEL_CHARS);
        if (counts.classes[label] === undefined) {
          const tracked = Object.keys(counts.classes).length;
          if (tracked >= maxLabels || !this.#room(entryBytes + label.length)) label = OTHER_LABEL;
          if (label === OTHER_LABEL && counts.classes[OTHER_LABEL] === undefined && !this.#room(entryBytes)) continue;
        }
        counts.classes[label] = (counts.classes[label] ?? 0) + 1;
      } else {
        const x = kind === 'score' ? Number(element) : String(element).length;
        if (!Number.isFinite(x)) continue;
        const bucket = String(scoreBucket(x));
        if (counts.scores[bucket] === undefined && !this.#room(entryBytes)) continue;
        counts.scores[bucket] = (counts.scores[bucket] ?? 0) + 1;
      }
    }
  }

  #compiled(drift: DriftPolicy): CompiledFeature[] {
    let found = this.#features.get(drift);
    if (!found) {
      found = drift.features.map((f) => ({ name: f.name ?? f.pointer, tokens: parsePointer(f.pointer), kind: f.kind }));
      this.#features.set(drift, found);
    }
    return found;
  }

  /**
   * Feeds one served or shadow answer (and, for served answers, its request body) into the route's drift windows.
   * The prediction drifts as a class (class routes) or a number (score, or text length).
   */
  observeDrift(route: string, variant: string, drift: DriftPolicy | undefined, prediction: Extracted['value'], kind: PredictionKind, requestBody: Buffer | null): void {
    if (drift === undefined) return;
    const stats = this.#route(route);
    this.#roll(route, stats, drift);
    if (drift.predictions && prediction !== null) {
      for (const element of Array.isArray(prediction) ? prediction : [prediction]) {
        if (kind === 'class') this.#feed(stats, variant, 'prediction', 'categorical', String(element).slice(0, MAX_LABEL_CHARS), drift);
        else this.#feed(stats, variant, 'prediction', 'numeric', kind === 'score' ? Number(element) : String(element).length, drift);
      }
    }
    const features = this.#compiled(drift);
    if (features.length === 0 || requestBody === null) return;
    let document: unknown;
    try {
      document = JSON.parse(requestBody.toString('utf8'));
    } catch {
      return;
    }
    for (const feature of features) {
      const raw = resolvePointer(document, feature.tokens);
      if (raw === undefined || raw === null) continue;
      if (feature.kind === 'numeric') {
        const x = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
        if (Number.isFinite(x)) this.#feed(stats, variant, feature.name, 'numeric', x, drift);
      } else if (typeof raw !== 'object') this.#feed(stats, variant, feature.name, 'categorical', String(raw).slice(0, MAX_LABEL_CHARS), drift);
    }
  }

  #feed(stats: RouteStats, variant: string, feature: string, kind: 'numeric' | 'categorical', value: number | string, drift: DriftPolicy): void {
    let byFeature = stats.drift.get(variant);
    if (!byFeature) stats.drift.set(variant, (byFeature = new Map()));
    let window = byFeature.get(feature);
    if (!window) {
      if (!this.#room(entryBytes + feature.length + variant.length)) return;
      window = { referenceValues: kind === 'numeric' ? [] : null, edges: null, labels: null, reference: null, current: [], referenceLabels: kind === 'categorical' ? new Map() : null, index: 0 };
      byFeature.set(feature, window);
    }
    if (window.reference === null) {
      // The reference window: keep what places the bins (bounded), count nothing yet.
      if (typeof value === 'number') {
        if (window.referenceValues!.length < MAX_REFERENCE_VALUES && this.#room(valueBytes)) window.referenceValues!.push(value);
      } else {
        const seen = window.referenceLabels!.get(value);
        if (seen !== undefined) window.referenceLabels!.set(value, seen + 1);
        else if (window.referenceLabels!.size < drift.bins - 1 && this.#room(entryBytes + value.length)) window.referenceLabels!.set(value, 1);
        else window.referenceLabels!.set(OTHER_LABEL, (window.referenceLabels!.get(OTHER_LABEL) ?? 0) + 1);
      }
      return;
    }
    const bin = typeof value === 'number' ? binOf(window.edges!, value) : (window.labels!.get(value) ?? window.labels!.size);
    window.current[bin] = (window.current[bin] ?? 0) + 1;
  }

  /** Closes every window of the route that has ended (tumbling, aligned on the route's first observation). */
  #roll(route: string, stats: RouteStats, drift: DriftPolicy): void {
    const now = this.#clock();
    if (now - stats.windowStart < drift.windowMs) return;
    const endedAt = new Date(stats.windowStart + drift.windowMs).toISOString();
    stats.windowStart += Math.floor((now - stats.windowStart) / drift.windowMs) * drift.windowMs;
    for (const [variant, byFeature] of stats.drift) {
      for (const [feature, window] of byFeature) this.#close(route, stats, variant, feature, window, drift, endedAt);
    }
  }

  #close(_route: string, stats: RouteStats, variant: string, feature: string, window: FeatureWindow, drift: DriftPolicy, endedAt: string): void {
    if (window.reference === null) {
      if (window.referenceValues !== null) {
        if (window.referenceValues.length < drift.minCount) return;
        window.edges = quantileEdges(window.referenceValues, drift.bins);
        window.reference = [];
        for (const x of window.referenceValues) {
          const bin = binOf(window.edges, x);
          window.reference[bin] = (window.reference[bin] ?? 0) + 1;
        }
        this.#bytes -= window.referenceValues.length * valueBytes;
        window.referenceValues = null;
      } else {
        let total = 0;
        for (const n of window.referenceLabels!.values()) total += n;
        if (total < drift.minCount) return;
        window.labels = new Map();
        window.reference = [];
        for (const [label, n] of window.referenceLabels!) {
          if (label === OTHER_LABEL) continue;
          window.labels.set(label, window.labels.size);
          window.reference[window.labels.get(label)!] = n;
        }
        window.reference[window.labels.size] = window.referenceLabels!.get(OTHER_LABEL) ?? 0;
        window.referenceLabels = null;
      }
      window.index = 1;
      return;
    }
    let n = 0;
    for (const x of window.current) n += x ?? 0;
    const index = window.index++;
    const current = Array.from({ length: Math.max(window.current.length, window.reference.length) }, (_, k) => window.current[k] ?? 0);
    window.current = [];
    if (n < drift.minCount) return;
    const reference = Array.from({ length: current.length }, (_, k) => window.reference![k] ?? 0);
    stats.results.set(`${variant}\u0000${feature}`, { variant, feature, window: index, endedAt, reference, current });
  }

  /** Closes windows that ended without traffic since (called on a timer, so a quiet route still reports). */
  tick(drifts: ReadonlyMap<string, DriftPolicy>): void {
    for (const [route, drift] of drifts) {
      const stats = this.#routes.get(route);
      if (stats) this.#roll(route, stats, drift);
    }
  }

  /** A copy of one route's totals (null when nothing was counted for it). */
  totalsOf(route: string): RoutePredictionTotals | null {
    const stats = this.#routes.get(route);
    if (!stats) return null;
    const arms: Record<string, ArmPredictionCounts> = {};
    for (const [arm, counts] of stats.arms) arms[arm] = { n: counts.n, classes: { ...counts.classes }, scores: { ...counts.scores } };
    return { arms, drift: [...stats.results.values()] };
  }
}

/** `bins` − 1 interior quantile edges of `values` (sorted copy), duplicates removed: bins are [e_{k−1}, e_k). */
export function quantileEdges(values: readonly number[], bins: number): number[] {
  const sorted = [...values].filter(Number.isFinite).sort((x, y) => x - y);
  if (sorted.length === 0) return [];
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const edge = sorted[Math.min(sorted.length - 1, Math.floor((k * sorted.length) / bins))]!;
    if (edges.length === 0 || edge > edges[edges.length - 1]!) edges.push(edge);
  }
  // An edge equal to the minimum would leave the first bin empty by construction.
  if (edges[0] === sorted[0]) edges.shift();
  return edges;
}

/** The bin of `x` among ascending `edges` (0 to edges.length): values below the first edge are bin 0. */
export function binOf(edges: readonly number[], x: number): number {
  let low = 0;
  let high = edges.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (x >= edges[middle]!) low = middle + 1;
    else high = middle;
  }
  return low;
}

