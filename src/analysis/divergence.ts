// Challenger-vs-champion prediction divergence on the same traffic: counts since the experiment began, the always-valid class test, frozen score bins, and the policy's action.
import type { ChallengerMode, DivergencePolicy, GuardrailPolicy } from '../config/policy-schema.js';
import { categoricalDivergence } from './stats/divergence.js';
import { createAlwaysValidState, observeLook, type AlwaysValidState } from './stats/index.js';
import { OTHER_LABEL, binOf, bucketValue, predictionArmKey, type ArmPredictionCounts, type RoutePredictionTotals } from '../record/prediction-stats.js';
import type { PredictionKind } from '../record/extract.js';

/** Where prediction counts come from: the recorder's per-arm totals of a route, cumulative (null: none yet). */
export interface PredictionCounts {
  predictionsOf(route: string): RoutePredictionTotals | null;
}

/** Score bins of one comparison, frozen from the champion side's first `referenceAnswers` answers of the experiment. */
interface FrozenBins {
  /** Ascending score-bucket numbers: bucket b falls in coarse bin binOf(edges, b). */
  edges: number[];
  /** Both sides' counts when the bins were frozen: the test counts only what came after (the bins do not peek at it). */
  base: { champion: ArmPredictionCounts; challenger: ArmPredictionCounts };
}

/** Path-dependent state of one route's comparisons (reset with each experiment). */
export interface DivergenceMemory {
  /** Cumulative counts when the experiment began, subtracted from later totals. */
  baseline: Record<string, ArmPredictionCounts>;
  bins: Map<string, FrozenBins>;
  /** Running always-valid p-value per challenger (report and hold; rollback keeps its state with the guardrails). */
  tests: Map<string, AlwaysValidState>;
}

/** One challenger's comparison, as served in the analysis. */
export interface DivergenceReport {
  challenger: string;
  mode: ChallengerMode;
  action: DivergencePolicy['action'];
  /** What was compared: class frequencies, or binned scores (text: answer lengths). */
  kind: PredictionKind;
  /** The two sides: served answers of each arm (canary/ab), or the two sides of the same mirrored requests (shadow). */
  compared: 'served' | 'pairs';
  state: 'collecting' | 'not_divergent' | 'divergent';
  champion: { n: number; distribution: Record<string, number> };
  challengerSide: { n: number; distribution: Record<string, number> };
  /** Jensen-Shannon divergence (nats) of the two observed distributions. */
  jensenShannon: number | null;
  logEValue: number | null;
  /** Always-valid p-value (running minimum of 1/E). */
  pValue: number | null;
  /** The level it is judged at: the guardrail family's share (rollback) or guardrails.alpha (hold, report). */
  alpha: number;
  /** The effect and sample sizes behind the state, in words (or what the comparison waits for). */
  evidence: string;
  reason: string;
  /** Shadows, when the policy names a noise-floor shadow: this shadow's disagreement against the champion's with itself. */
  noiseFloor?: NoiseFloorReport;
}

/** A shadow's share of disagreeing pairs judged against the champion's disagreement with itself. */
export interface NoiseFloorReport {
  /** The shadow that mirrors to the champion. */
  floor: string;
  disagreement: number | null;
  floorDisagreement: number | null;
  pairs: number;
  floorPairs: number;
  /** above_floor: confidently more disagreement than the champion has with itself; at_floor: not shown to be more. */
  state: 'collecting' | 'at_floor' | 'above_floor';
  pValue: number | null;
}

export function newDivergenceMemory(counts: PredictionCounts | null, route: string): DivergenceMemory {
  const totals = counts?.predictionsOf(route)?.arms ?? {};
  return { baseline: Object.fromEntries(Object.entries(totals).map(([arm, c]) => [arm, copyCounts(c)])), bins: new Map(), tests: new Map() };
}

function copyCounts(c: ArmPredictionCounts): ArmPredictionCounts {
  return { n: c.n, classes: { ...c.classes }, scores: { ...c.scores } };
}

const emptyCounts = (): ArmPredictionCounts => ({ n: 0, classes: {}, scores: {} });

/** `now` − `base` per key (a source that counts less than its baseline started over: all of it is new). */
export function countsSince(now: ArmPredictionCounts, base: ArmPredictionCounts | undefined): ArmPredictionCounts {
  if (base === undefined || now.n < base.n) return copyCounts(now);
  const minus = (a: Record<string, number>, b: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const [key, n] of Object.entries(a)) if (n - (b[key] ?? 0) > 0) out[key] = n - (b[key] ?? 0);
    return out;
  };
  return { n: now.n - base.n, classes: minus(now.classes, base.classes), scores: minus(now.scores, base.scores) };
}

/** Per-arm counts of this replica since the experiment began (what it publishes to the pool). */
export function predictionsSince(counts: PredictionCounts | null, memory: DivergenceMemory, route: string): Record<string, ArmPredictionCounts> {
  const out: Record<string, ArmPredictionCounts> = {};
  for (const [arm, c] of Object.entries(counts?.predictionsOf(route)?.arms ?? {})) out[arm] = countsSince(c, memory.baseline[arm]);
  return out;
}

/** Sums per-arm counts (replicas' payloads). */
export function mergePredictions(into: Record<string, ArmPredictionCounts>, add: Readonly<Record<string, ArmPredictionCounts>>): void {
  for (const [arm, c] of Object.entries(add)) {
    const sum = (into[arm] ??= emptyCounts());
    sum.n += c.n;
    for (const [k, n] of Object.entries(c.classes)) sum.classes[k] = (sum.classes[k] ?? 0) + n;
    for (const [k, n] of Object.entries(c.scores)) sum.scores[k] = (sum.scores[k] ?? 0) + n;
  }
}

/**
 * Class vectors over the union of labels: all of them when there are at most `classes`, else the `classes` − 1 most
 * frequent (both arms together) with the rest pooled as "other", so replicas that first saw labels in different
 * orders still agree on the bins.
 */
function classVectors(a: Record<string, number>, b: Record<string, number>, classes: number): { labels: string[]; x: number[]; y: number[] } {
  const totals = new Map<string, number>();
  for (const source of [a, b]) for (const [label, n] of Object.entries(source)) if (label !== OTHER_LABEL) totals.set(label, (totals.get(label) ?? 0) + n);
  const pooled = a[OTHER_LABEL] !== undefined || b[OTHER_LABEL] !== undefined || totals.size > classes;
  const kept = [...totals].sort((p, q) => q[1] - p[1] || (p[0] < q[0] ? -1 : 1)).slice(0, pooled ? classes - 1 : classes).map(([label]) => label);
  const index = new Map(kept.map((label, i) => [label, i]));
  const x = new Array<number>(kept.length + 1).fill(0);
  const y = new Array<number>(kept.length + 1).fill(0);
  for (const [source, out] of [[a, x], [b, y]] as const) for (const [label, n] of Object.entries(source)) out[index.get(label) ?? kept.length]! += n;
  if (x[kept.length] === 0 && y[kept.length] === 0) {
    x.pop();
    y.pop();
    return { labels: kept, x, y };
  }
  return { labels: [...kept, 'other'], x, y };
}

/** Coarse bins at the champion side's quantiles over its score buckets (bucket numbers are ordered like the scores). */
function freezeEdges(champion: Record<string, number>, bins: number): number[] {
  const buckets = Object.entries(champion).map(([b, n]) => [Number(b), n] as const).sort((p, q) => p[0] - q[0]);
  let total = 0;
  for (const [, n] of buckets) total += n;
  const edges: number[] = [];
  let cumulative = 0;
  let next = 1;
  for (const [b, n] of buckets) {
    // A new bin starts at the first bucket past each quantile k/bins of the champion's answers.
    if (next < bins && cumulative >= (next * total) / bins && cumulative > 0) {
      edges.push(b);
      while (next < bins && cumulative >= (next * total) / bins) next++;
    }
    cumulative += n;
  }
  return edges;
}

function scoreVectors(edges: number[], a: Record<string, number>, b: Record<string, number>): { labels: string[]; x: number[]; y: number[] } {
  const x = new Array<number>(edges.length + 1).fill(0);
  const y = new Array<number>(edges.length + 1).fill(0);
  for (const [source, out] of [[a, x], [b, y]] as const) for (const [bucket, n] of Object.entries(source)) out[binOf(edges, Number(bucket))]! += n;
  const labels = x.map((_, i) => (i === 0 ? `< ${fmt(bucketValue(edges[0] ?? 0))}` : `>= ${fmt(bucketValue(edges[i - 1]!))}`));
  return { labels, x, y };
}

function fmt(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

function distribution(labels: readonly string[], counts: readonly number[]): Record<string, number> {
  let n = 0;
  for (const c of counts) n += c;
  return Object.fromEntries(labels.map((label, i) => [label, n > 0 ? counts[i]! / n : 0]));
}

/** What the controller needs to judge one route's divergence. */
export interface DivergenceInputs {
  policy: DivergencePolicy;
  guardrails: GuardrailPolicy;
  kind: PredictionKind;
  /** The route's challengers with their live mode (a served challenger with 0 % is still compared on what it served). */
  challengers: readonly { name: string; mode: ChallengerMode }[];
  /** Per-arm counts of the current experiment (pooled over replicas, or this replica's since the baseline). */
  counts: Readonly<Record<string, ArmPredictionCounts>>;
  /** The statistical family's level, when the guardrail rolls back (its verdict then decides `divergent`). */
  familyAlpha: number;
}

/**
 * Compares each challenger with the champion on the same traffic: canary and ab challengers on the served answers of
 * each arm, shadows on the two sides of their pairs. Classes are tested directly; scores (and text lengths) in bins
 * frozen from the champion side's first `referenceAnswers` answers, counting only what came after. Advances the
 * running p-values in `memory` (report and hold; rollback's state lives with the guardrails).
 */
export function judgeDivergence(input: DivergenceInputs, memory: DivergenceMemory): DivergenceReport[] {
  const { policy } = input;
  return input.challengers.map((c) => {
    const shadow = c.mode === 'shadow';
    const championSide = input.counts[predictionArmKey(shadow ? 'paired' : 'champion', c.name)] ?? emptyCounts();
    const challengerSide = input.counts[predictionArmKey(shadow ? 'shadow' : 'challenger', c.name)] ?? emptyCounts();
    const alpha = policy.action === 'rollback' ? input.familyAlpha : input.guardrails.alpha;
    const base = { challenger: c.name, mode: c.mode, action: policy.action, kind: input.kind, compared: shadow ? ('pairs' as const) : ('served' as const), alpha };
    let vectors: { labels: string[]; x: number[]; y: number[] } | null = null;
    let waiting = '';
    if (input.kind === 'class') vectors = classVectors(championSide.classes, challengerSide.classes, policy.classes);
    else {
      let frozen = memory.bins.get(c.name);
      if (frozen === undefined && championSide.n >= policy.referenceAnswers) {
        frozen = { edges: freezeEdges(championSide.scores, policy.bins), base: { champion: copyCounts(championSide), challenger: copyCounts(challengerSide) } };
        memory.bins.set(c.name, frozen);
      }
      if (frozen === undefined) waiting = `fixing the bins from the champion's first ${policy.referenceAnswers} answers (${championSide.n} so far)`;
      else vectors = scoreVectors(frozen.edges, countsSince(championSide, frozen.base.champion).scores, countsSince(challengerSide, frozen.base.challenger).scores);
    }
    const noiseFloor = shadow && policy.noiseFloor !== undefined && policy.noiseFloor !== c.name ? judgeFloor(input, memory, c.name, policy.noiseFloor, alpha) : undefined;
    const withFloor = noiseFloor !== undefined ? { noiseFloor } : {};
    const nC = vectors ? vectors.x.reduce((s, v) => s + v, 0) : 0;
    const nT = vectors ? vectors.y.reduce((s, v) => s + v, 0) : 0;
    const sides = {
      champion: { n: nC, distribution: vectors ? distribution(vectors.labels, vectors.x) : {} },
      challengerSide: { n: nT, distribution: vectors ? distribution(vectors.labels, vectors.y) : {} },
    };
    if (vectors === null || nC < policy.minAnswers || nT < policy.minAnswers) {
      return { ...base, ...sides, ...withFloor, state: 'collecting', jensenShannon: null, logEValue: null, pValue: memory.tests.get(c.name)?.pValue ?? null, evidence: waiting || `${Math.min(nC, nT)} of ${policy.minAnswers} parsed answers per side needed`, reason: waiting || `${Math.min(nC, nT)} of ${policy.minAnswers} parsed answers per side needed` };
    }
    const look = categoricalDivergence(vectors.x, vectors.y, input.kind === 'class' ? policy.classes : vectors.x.length);
    const test = observeLook(memory.tests.get(c.name) ?? createAlwaysValidState(), look.logEValue, alpha);
    memory.tests.set(c.name, test);
    const divergent = test.pValue <= alpha;
    const what = `Jensen-Shannon ${look.jensenShannon.toFixed(4)} nats over ${nC} champion and ${nT} challenger answers`;
    return {
      ...base,
      ...sides,
      ...withFloor,
      state: divergent ? 'divergent' : 'not_divergent',
      jensenShannon: look.jensenShannon,
      logEValue: look.logEValue,
      pValue: test.pValue,
      evidence: what,
      reason: divergent ? `the challenger's predictions differ from the champion's: ${what} (always-valid p ${test.pValue.toExponential(2)} <= ${alpha})` : `no divergence detected: ${what} (always-valid p ${Math.min(1, test.pValue).toFixed(4)})`,
    };
  });
}

/**
 * The noise floor: a shadow's agree/disagree counts against those of the shadow that mirrors to the champion itself,
 * with the same always-valid two-sample test on two bins (the running p-value kept under `floor:<name>`). A champion
 * that samples (temperature) or jitters disagrees with itself; a challenger is judged against that, not against zero.
 */
function judgeFloor(input: DivergenceInputs, memory: DivergenceMemory, name: string, floor: string, alpha: number): NoiseFloorReport {
  const own = input.counts[predictionArmKey('agreement', name)]?.classes ?? {};
  const self = input.counts[predictionArmKey('agreement', floor)]?.classes ?? {};
  const x = [self.agree ?? 0, self.disagree ?? 0];
  const y = [own.agree ?? 0, own.disagree ?? 0];
  const floorPairs = x[0]! + x[1]!;
  const pairs = y[0]! + y[1]!;
  const disagreement = pairs > 0 ? y[1]! / pairs : null;
  const floorDisagreement = floorPairs > 0 ? x[1]! / floorPairs : null;
  const key = `floor:${name}`;
  if (pairs < input.policy.minAnswers || floorPairs < input.policy.minAnswers) {
    return { floor, disagreement, floorDisagreement, pairs, floorPairs, state: 'collecting', pValue: memory.tests.get(key)?.pValue ?? null };
  }
  const test = observeLook(memory.tests.get(key) ?? createAlwaysValidState(), categoricalDivergence(x, y, 2).logEValue, alpha);
  memory.tests.set(key, test);
  const above = test.pValue <= alpha && disagreement! > floorDisagreement!;
  return { floor, disagreement, floorDisagreement, pairs, floorPairs, state: above ? 'above_floor' : 'at_floor', pValue: test.pValue };
}
