// Reports beyond the guardrails: the shadow gate (agreement, shadow errors and latency) and the A/B winner on labelled outcomes, per experiment.
import type { ChallengerMode, GuardrailPolicy, StreamingPolicy } from '../config/policy-schema.js';
import { emptyTotals, type ArmTotals, type RouteWindow } from '../analysis/window.js';
import { mixtureLook } from '../analysis/stats/index.js';
import type { Outcome, PooledView } from '../coordination/pooled.js';
import { evaluateGuardrails, rateDifferenceLook, type GuardrailVerdict } from './guardrails.js';

/** The fleet's totals of the champion and of one shadow (Redis pooling); `shadow` is undefined before any mirror. */
export interface PooledArms {
  champion: ArmTotals;
  shadow: ArmTotals | undefined;
}

/** What the replicas pooled for the current experiment (see docs/replicas.md). */
export type PooledExperiment = Pick<PooledView, 'arms' | 'agreement' | 'outcomes'>;

/** Whether a shadow challenger is ready for a canary. */
export interface ShadowGate {
  challenger: string;
  agreement: { agree: number; of: number; rate: number | null; disagreementUpper: number | null; maxDisagreement: number; state: 'collecting' | 'within' | 'not_yet' };
  /** The shadow's errors and latency judged against the champion with the route's guardrails. */
  verdicts: GuardrailVerdict[];
  ready: boolean;
  reason: string;
}

/**
 * Agreement is judged with a one-sided always-valid test of H0 "disagreement >= maxDisagreement" (normal mixture,
 * add-half smoothed variance); the shadow's errors and latency with the route's guardrails, stateless (a single look
 * is a valid, conservative always-valid p-value, and a breaker looks once at everything since the experiment began).
 */
export function shadowGate(window: RouteWindow, challenger: string, agreement: { agree: number; parsed: number }, policy: GuardrailPolicy, pooled: PooledArms | null = null, streaming: StreamingPolicy | null = null): ShadowGate {
  const shadow = window.shadows.get(challenger);
  const shadowTotals = pooled !== null ? pooled.shadow : shadow?.totals;
  const verdicts = shadowTotals
    ? evaluateGuardrails({ champion: pooled !== null ? pooled.champion : window.champion.totals, challenger: shadowTotals, p95ThresholdMs: window.p95ThresholdMs, streaming }, policy, {}).verdicts
    : [];
  const max = policy.shadow.maxDisagreement;
  const n = agreement.parsed;
  let state: ShadowGate['agreement']['state'] = 'collecting';
  let upper: number | null = null;
  if (n >= policy.minRequests) {
    const disagreements = n - agreement.agree;
    const p = (disagreements + 0.5) / (n + 1);
    const look = mixtureLook(disagreements / n, (p * (1 - p)) / n, n, { alpha: policy.alpha, mixing: { nStar: policy.plannedRequests }, theta0: max, alternative: 'less' });
    // The confidence sequence of a share can reach past 1 with few pairs; a share cannot.
    upper = Math.min(1, look.csUpper);
    state = look.reject ? 'within' : 'not_yet';
  }
  const statistical = verdicts.filter((v) => v.kind === 'statistical');
  const healthy = verdicts.length > 0 && verdicts.every((v) => v.state !== 'breach') && statistical.every((v) => v.state === 'within');
  const ready = state === 'within' && healthy;
  const reason = ready
    ? `agreement ${((agreement.agree / n) * 100).toFixed(1)}% with disagreement confidently under ${max * 100}%, and shadow errors and latency within the guardrails: ready for a canary`
    : state === 'collecting'
      ? `${n} of ${policy.minRequests} parsed pairs needed`
      : state === 'not_yet'
        ? `disagreement is not yet confidently under ${max * 100}% (upper bound ${((upper ?? 1) * 100).toFixed(1)}%)`
        : `shadow errors or latency are not yet confidently within the guardrails (${verdicts.filter((v) => v.state !== 'within' && v.state !== 'healthy').map((v) => `${v.name}: ${v.state}`).join(', ') || 'collecting'})`;
  return { challenger, agreement: { agree: agreement.agree, of: n, rate: n > 0 ? agreement.agree / n : null, disagreementUpper: upper, maxDisagreement: max, state }, verdicts, ready, reason };
}

/** The A/B winner on ground-truth accuracy. */
export interface AbReport {
  metric: 'accuracy';
  champion: { variant: string; n: number; correct: number };
  challenger: { variant: string; n: number; correct: number };
  /** Challenger accuracy minus champion accuracy. */
  estimate: number | null;
  csLower: number | null;
  csUpper: number | null;
  state: 'collecting' | 'no_winner_yet' | 'winner';
  winner: string | null;
  alpha: number;
  /** Labelled outcomes each arm needs before the test judges (the route's `guardrails.minRequests`). */
  minLabelled: number;
}

/** Two-sided always-valid test of equal accuracy; a winner is declared when its confidence sequence excludes 0. */
export function abWinner(outcomes: Record<string, { n: number; correct: number }>, champion: string, challenger: string, policy: GuardrailPolicy): AbReport {
  const a = outcomes[champion] ?? { n: 0, correct: 0 };
  const b = outcomes[challenger] ?? { n: 0, correct: 0 };
  const base = { metric: 'accuracy' as const, champion: { variant: champion, ...a }, challenger: { variant: challenger, ...b }, alpha: policy.ab.alpha, minLabelled: policy.minRequests };
  if (a.n < policy.minRequests || b.n < policy.minRequests) return { ...base, estimate: null, csLower: null, csUpper: null, state: 'collecting', winner: null };
  const look = rateDifferenceLook({ n: a.n, events: a.correct }, { n: b.n, events: b.correct }, { alpha: policy.ab.alpha, mixing: { nStar: policy.plannedRequests } });
  const winner = look.reject ? (look.delta > 0 ? challenger : champion) : null;
  return { ...base, estimate: look.delta, csLower: look.csLower, csUpper: look.csUpper, state: winner ? 'winner' : 'no_winner_yet', winner };
}

/**
 * Where the reports' counts come from: parsed pairs and labelled outcomes of this replica (the pair recorder). Both
 * are running totals since the process started; the controller subtracts a baseline taken when an experiment begins.
 */
export interface ExperimentCounts {
  agreementOf(route: string): { agree: number; parsed: number };
  outcomesOf(route: string): Record<string, { n: number; correct: number }>;
}

/** The counts at the start of the current experiment. */
export interface CountsBaseline {
  readonly agreement: { agree: number; parsed: number };
  readonly outcomes: Readonly<Record<string, { n: number; correct: number }>>;
}

export const emptyBaseline: CountsBaseline = Object.freeze({ agreement: Object.freeze({ agree: 0, parsed: 0 }), outcomes: Object.freeze({}) });

/** Takes the baseline for a new experiment of `route` (empty without a counts source). */
export function countsBaseline(counts: ExperimentCounts | null, route: string): CountsBaseline {
  return counts === null ? emptyBaseline : { agreement: counts.agreementOf(route), outcomes: counts.outcomesOf(route) };
}

/** A shadow gate as served by the analysis API. */
export interface ShadowGateReport extends ShadowGate {
  /**
   * True when more than one shadow of the route mirrors (or mirrored in this experiment): the pair recorder counts
   * agreement per route, so the agreement then pools every shadow's pairs (errors and latency stay per shadow).
   */
  agreementShared: boolean;
}

/** The reports of one route's current experiment. */
export interface ExperimentReports {
  /** One per challenger in shadow mode: is it ready for a canary? */
  shadowGates: ShadowGateReport[];
  /** One per challenger in ab mode: the winner against the champion on labelled accuracy. */
  abWinners: AbReport[];
}

/** What experimentReports judges. */
export interface ExperimentInputs {
  route: string;
  champion: string;
  /** The route's challengers with their live mode and percent. */
  challengers: readonly { name: string; mode: ChallengerMode; percent: number }[];
  /** This replica's window of the current experiment (the shadows' errors and latency). */
  window: RouteWindow;
  policy: GuardrailPolicy;
  counts: ExperimentCounts;
  baseline: CountsBaseline;
  /** The replicas' pooled statistics (Redis), when this replica has a fresh pool; else its own counts are used. */
  pooled?: PooledExperiment | null;
  /** The route's streaming policy: its streamed shadow answers are judged on the streaming guardrails too. */
  streaming?: StreamingPolicy | null;
}

/** Parsed pairs of a route since the experiment's baseline (what this replica publishes to the pool). */
export function pairsSince(counts: ExperimentCounts, baseline: CountsBaseline, route: string): { agree: number; parsed: number } {
  return agreementSince(counts.agreementOf(route), baseline.agreement);
}

/** Counts since the baseline (a source that counts less than its baseline started over, so all of it is new). */
function agreementSince(now: { agree: number; parsed: number }, base: { agree: number; parsed: number }): { agree: number; parsed: number } {
  return now.parsed < base.parsed ? now : { agree: now.agree - base.agree, parsed: now.parsed - base.parsed };
}

function outcomeSince(now: { n: number; correct: number }, base: { n: number; correct: number } | undefined): { n: number; correct: number } {
  return base === undefined || now.n < base.n ? now : { n: now.n - base.n, correct: now.correct - base.correct };
}

/** The shadow gates and A/B winners of a route's current experiment, from this replica's pairs and feedback. */
export function experimentReports(input: ExperimentInputs): ExperimentReports {
  const shadows = input.challengers.filter((c) => c.mode === 'shadow');
  const ab = input.challengers.filter((c) => c.mode === 'ab');
  const result: ExperimentReports = { shadowGates: [], abWinners: [] };
  if (shadows.length > 0) {
    const pooled = input.pooled ?? null;
    const agreement = pooled?.agreement ?? agreementSince(input.counts.agreementOf(input.route), input.baseline.agreement);
    const mirroring = shadows.filter((s) => s.percent > 0 || input.window.shadows.has(s.name) || pooled?.arms.has(`shadow:${s.name}`)).length;
    for (const shadow of shadows) {
      const arms = pooled === null ? null : { champion: pooled.arms.get('champion') ?? emptyTotals(), shadow: pooled.arms.get(`shadow:${shadow.name}`) };
      result.shadowGates.push({ ...shadowGate(input.window, shadow.name, agreement, input.policy, arms, input.streaming ?? null), agreementShared: mirroring > 1 });
    }
  }
  if (ab.length > 0) {
    const outcomes = input.pooled?.outcomes ?? outcomesSince(input.counts, input.baseline, input.route);
    for (const challenger of ab) result.abWinners.push(abWinner(outcomes, input.champion, challenger.name, input.policy));
  }
  return result;
}

/** Labelled outcomes per variant of a route since the experiment's baseline (what this replica publishes to the pool). */
export function outcomesSince(counts: ExperimentCounts, baseline: CountsBaseline, route: string): Record<string, { n: number; correct: number }> {
  const outcomes: Record<string, { n: number; correct: number }> = {};
  for (const [variant, o] of Object.entries(counts.outcomesOf(route))) outcomes[variant] = outcomeSince(o, baseline.outcomes[variant]);
  return outcomes;
}

/**
 * The A/B report of one challenger in the current experiment (what the controller acts on when the policy promotes),
 * on the pooled outcomes when given, else on this replica's.
 */
export function abWinnerSince(counts: ExperimentCounts, baseline: CountsBaseline, route: string, champion: string, challenger: string, policy: GuardrailPolicy, pooledOutcomes: Readonly<Record<string, Outcome>> | null = null): AbReport {
  return abWinner(pooledOutcomes ?? outcomesSince(counts, baseline, route), champion, challenger, policy);
}
