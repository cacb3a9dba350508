// Pure guardrail evaluation: sequential circuit breakers plus always-valid one-sided tests, all inside one alpha budget.
//
// Why each test looks the way it does, and what the validity bench measured of it: docs/statistics.md.
import type { GuardrailPolicy, StreamingPolicy } from '../config/policy-schema.js';
import type { ArmComparison, StratumPair } from '../analysis/window.js';
import { createAlwaysValidState, holm, mixtureLook, observeLook, type AlwaysValidState, type Counts, type MixtureLook, type MixtureOptions, type Moments } from '../analysis/stats/index.js';

/** The guardrails, breakers first; names are stable (metric labels, audit evidence, rollback reasons). */
export const guardrailNames = ['error_ceiling', 'p99_ceiling', 'error_rate', 'latency_log_mean', 'latency_exceedance', 'ttft_log_mean', 'stream_gap_exceedance', 'stream_interruptions'] as const;
export type GuardrailName = (typeof guardrailNames)[number];
const breakerNames = ['error_ceiling', 'p99_ceiling'] as const satisfies readonly GuardrailName[];
/** Judged on every route. */
const coreStatisticalNames = ['error_rate', 'latency_log_mean', 'latency_exceedance'] as const satisfies readonly GuardrailName[];
/** Judged, in the same family, only on routes with a `streaming` policy (docs/statistics.md, "Streaming service levels"). */
const streamingNames = ['ttft_log_mean', 'stream_gap_exceedance', 'stream_interruptions'] as const satisfies readonly GuardrailName[];
const statisticalNames = [...coreStatisticalNames, ...streamingNames] as const;
type BreakerName = (typeof breakerNames)[number];
type StatisticalName = (typeof statisticalNames)[number];

/**
 * The prediction-divergence guardrail (src/analysis/divergence.ts): with `divergence.action: rollback` it joins the
 * statistical family (Holm) with its own e-value; with `hold` it is a non-family verdict that keeps the rollout
 * from advancing.
 */
export const divergenceGuardrailName = 'prediction_divergence';

/** An extra always-valid test judged in the statistical family: ln E at this look, or null while collecting. */
export interface ExtraGuardrail {
  name: typeof divergenceGuardrailName;
  logEValue: number | null;
  nChampion: number;
  nChallenger: number;
  /** Effect shown with the verdict (e.g. the Jensen-Shannon divergence). */
  estimate: number | null;
  /** What the test found (or waits for), for the reasons shown to people. */
  describe: string;
}

/** collecting: too little data to judge (never a pass); within: confidently inside the margin; healthy: no alarm yet. */
export type GuardrailState = 'collecting' | 'healthy' | 'within' | 'breach';

/** One guardrail's verdict with the evidence behind it. */
export interface GuardrailVerdict {
  name: GuardrailName | typeof divergenceGuardrailName;
  /** divergence: judged (and, in the family, able to roll back) but never a gate for rollout steps or promotion. */
  kind: 'breaker' | 'statistical' | 'divergence';
  state: GuardrailState;
  nChampion: number;
  nChallenger: number;
  /** Effect estimate: challenger − tolerated champion value (statistical), or the breaker's observed share. */
  estimate: number | null;
  /** The tolerated value: margin for statistical guardrails, ceiling share for breakers. */
  threshold: number;
  /** Always-valid p-value of "worse than the margin" (statistical) or null. */
  pValue: number | null;
  /** Always-valid confidence sequence of the effect (statistical) or null. */
  csLower: number | null;
  csUpper: number | null;
  /** The share of the alpha budget this guardrail spends (after the multiplicity correction for statistical ones). */
  alpha: number | null;
  reason: string;
}

/** Inputs of one evaluation: cumulative totals of the current experiment (this replica's, or pooled). */
export interface GuardrailInputs extends ArmComparison {
  /** Further always-valid tests in the statistical family (the divergence guardrail with `action: rollback`). */
  extra?: readonly ExtraGuardrail[];
  /** The route's streaming policy: its three guardrails join the family; absent or null: they are not judged. */
  streaming?: StreamingPolicy | null;
}

/** A breaker's CUSUM of log-likelihood ratios and the counts it has consumed (docs/statistics.md, "Breakers"). */
export interface BreakerState {
  cusum: number;
  n: number;
  events: number;
}

/** Path-dependent state: running always-valid p-values of the statistical tests and the breakers' CUSUMs. */
export interface GuardrailMemory {
  tests?: Partial<Record<StatisticalName | typeof divergenceGuardrailName, AlwaysValidState>>;
  breakers?: Partial<Record<BreakerName, BreakerState>>;
}

/**
 * The alpha budget (docs/statistics.md, "The alpha budget"): each breaker spends 5 % of alpha, the statistical
 * guardrails share the remaining 90 % under Holm or Bonferroni, so by the union bound the probability of any false
 * rollback over the whole experiment is at most alpha, breakers included.
 */
export const BREAKER_ALPHA_SHARE = 0.05;
const STATISTICAL_ALPHA_SHARE = 1 - breakerNames.length * BREAKER_ALPHA_SHARE;

/** The level the statistical family shares under Holm or Bonferroni. */
export function statisticalFamilyAlpha(policy: GuardrailPolicy): number {
  return policy.alpha * STATISTICAL_ALPHA_SHARE;
}

/** The latency breaker's null: at most this share of challenger requests is slower than the p99 ceiling. */
const CEILING_SHARE = 0.01;
/** The latency breaker's alternative share over the ceiling (a 20-fold tail: one request in five). */
const CEILING_ALTERNATIVE_SHARE = 0.2;
/** The error breaker's alternative: four fifths of the way from the ceiling to total failure. */
const ERROR_ALTERNATIVE_STEP = 0.8;

/**
 * Smallest per-request variance of log latency assumed by the latency test: timers and networks jitter by at least
 * ~1 %, and a constant latency (zero sample variance) must still be judged, not left "collecting" for ever.
 */
export const LOG_LATENCY_VARIANCE_FLOOR = 1e-4;

/** The breach look and the "confidently within" look of one statistical guardrail. */
export interface MarginLooks {
  /** H0: effect <= margin, one-sided towards "worse" (its running minimum p-value rolls back). */
  worse: MixtureLook;
  /**
   * The always-valid confidence sequence at alpha (the interval shown to people): its upper bound below the margin is
   * "confidently within the margin".
   */
  interval: MixtureLook;
}

function looksAt(delta: number, v: number, nTotal: number, margin: number, alpha: { worse: number; within: number }, nStar: number): MarginLooks {
  const options = (level: number, alternative: 'greater' | 'two-sided'): MixtureOptions => ({ alpha: level, mixing: { nStar }, theta0: margin, alternative });
  return { worse: mixtureLook(delta, v, nTotal, options(alpha.worse, 'greater')), interval: mixtureLook(delta, v, nTotal, options(alpha.within, 'two-sided')) };
}

/**
 * Combines per-epoch estimates Δ_s with variances v_s as Σ w_s·Δ_s with variance Σ w_s²·v_s, weights
 * w_s ∝ n_C·n_T/(n_C + n_T) (the Cochran-Mantel-Haenszel weights: fixed by the allocation, not by the outcomes).
 * Under H0 every epoch's effect is at most the margin, so the weighted effect is too.
 */
function combine(parts: readonly { delta: number; v: number; nC: number; nT: number }[]): { delta: number; v: number; n: number } | null {
  let weightSum = 0;
  for (const p of parts) weightSum += (p.nC * p.nT) / (p.nC + p.nT);
  if (!(weightSum > 0)) return null;
  let delta = 0;
  let v = 0;
  let n = 0;
  for (const p of parts) {
    const w = (p.nC * p.nT) / (p.nC + p.nT) / weightSum;
    delta += w * p.delta;
    v += w * w * p.v;
    n += p.nC + p.nT;
  }
  return { delta, v, n };
}

/**
 * Looks at the rate effect Δ = p_T − k·p_C against the margin m, for H0 "p_T <= k·p_C + m" (k = 1 + relative margin),
 * over one or more epochs (pairs of control and treatment counts). The variance is evaluated at the boundary of the
 * null (p_T = k·p_C + m, with p_C estimated under that constraint from both arms), not at the observed rates: a small
 * arm with few events then cannot look more certain than the boundary allows, which is what made "within the margin"
 * claims invalid at 1/99 splits (docs/statistics.md, "Error rate"). The larger of that and the observed-rate variance is used.
 */
export function rateMarginLooks(strata: readonly (readonly [Counts, Counts])[], k: number, margin: number, alpha: { worse: number; within: number }, nStar: number): MarginLooks | null {
  const parts = [];
  for (const [control, treatment] of strata) {
    if (!(control.n > 0 && treatment.n > 0)) continue;
    const upper = Math.max(1e-9, (1 - margin) / k);
    const pooled = (control.events + treatment.events + 0.5 - treatment.n * margin) / (control.n + k * treatment.n + 1);
    const pC = Math.min(upper, Math.max(0.5 / (control.n + treatment.n + 1), pooled));
    const pT = Math.min(1 - 1e-9, k * pC + margin);
    const boundary = (k * k * pC * (1 - pC)) / control.n + (pT * (1 - pT)) / treatment.n;
    // Nor may it look more certain than the observed rates say (a challenger beyond the boundary varies more).
    const oC = control.events / control.n;
    const oT = treatment.events / treatment.n;
    const observed = (k * k * oC * (1 - oC)) / control.n + (oT * (1 - oT)) / treatment.n;
    parts.push({ delta: oT - k * oC, v: Math.max(boundary, observed), nC: control.n, nT: treatment.n });
  }
  const combined = combine(parts);
  return combined === null ? null : looksAt(combined.delta, combined.v, combined.n, margin, alpha, nStar);
}

/** Looks at the log-latency mean difference against ln(ratio) over one or more epochs, per-arm variance floored (see above). */
export function logMeanLooks(strata: readonly (readonly [Moments, Moments])[], ratio: number, alpha: { worse: number; within: number }, nStar: number): MarginLooks | null {
  const variance = (m: Moments) => Math.max(LOG_LATENCY_VARIANCE_FLOOR, m.m2 / (m.n - 1));
  const parts = [];
  for (const [control, treatment] of strata) {
    if (!(control.n > 1 && treatment.n > 1)) continue;
    parts.push({ delta: treatment.mean - control.mean, v: variance(control) / control.n + variance(treatment) / treatment.n, nC: control.n, nT: treatment.n });
  }
  const combined = combine(parts);
  return combined === null ? null : looksAt(combined.delta, combined.v, combined.n, Math.log(ratio), alpha, nStar);
}

/**
 * Two-sample rate mSPRT (two-sided uses, e.g. the A/B accuracy report) with the variance from add-half smoothed
 * rates, so zero events in both arms still give a finite test.
 */
export function rateDifferenceLook(control: Counts, treatment: Counts, options: MixtureOptions): MixtureLook {
  const smoothed = (c: Counts) => (c.events + 0.5) / (c.n + 1);
  const pC = smoothed(control);
  const pT = smoothed(treatment);
  const v = control.n > 0 && treatment.n > 0 ? (pC * (1 - pC)) / control.n + (pT * (1 - pT)) / treatment.n : 0;
  const delta = control.n > 0 && treatment.n > 0 ? treatment.events / treatment.n - control.events / control.n : 0;
  return mixtureLook(delta, v, control.n + treatment.n, options);
}

/**
 * One step of a breaker: a CUSUM of Bernoulli log-likelihood ratios (alternative share p1 against the null share
 * p0) over the counts that arrived since the last look. Under any share <= p0 each start time's likelihood ratio is a
 * non-negative supermartingale; alarming when the CUSUM reaches ln(t(t+1)/alpha) at t requests spends
 * alpha/(s(s+1)) on the start time s, so the false-trip probability over an unbounded experiment is <= alpha
 * (docs/statistics.md, "Breakers"). It reacts to a failure that starts late as fast as to one from the start.
 */
export function breakerStep(state: BreakerState | undefined, counts: Counts, p0: number, p1: number, alpha: number): { state: BreakerState; threshold: number } {
  const previous = state !== undefined && state.n <= counts.n && state.events <= counts.events ? state : { cusum: 0, n: 0, events: 0 };
  const dn = counts.n - previous.n;
  const dx = counts.events - previous.events;
  const llr = dx * Math.log(p1 / p0) + (dn - dx) * Math.log((1 - p1) / (1 - p0));
  const cusum = Math.max(0, previous.cusum + llr);
  const t = Math.max(1, counts.n);
  return { state: { cusum, n: counts.n, events: counts.events }, threshold: Math.log((t * (t + 1)) / alpha) };
}

function breakerVerdicts(inputs: GuardrailInputs, policy: GuardrailPolicy, memory: GuardrailMemory, next: Partial<Record<BreakerName, BreakerState>>): GuardrailVerdict[] {
  const alpha = policy.alpha * BREAKER_ALPHA_SHARE;
  const ceiling = policy.errorRate.ceiling;
  const specs: Record<BreakerName, { counts: Counts; p0: number; p1: number; minRequests: number; describe: (share: number) => string }> = {
    error_ceiling: {
      counts: inputs.challenger.errors,
      p0: ceiling,
      p1: ceiling + (1 - ceiling) * ERROR_ALTERNATIVE_STEP,
      minRequests: policy.errorRate.minRequests,
      describe: (share) => `challenger error share ${pct(share)} (ceiling ${pct(ceiling)})`,
    },
    p99_ceiling: {
      counts: inputs.challenger.overCeiling,
      p0: CEILING_SHARE,
      p1: CEILING_ALTERNATIVE_SHARE,
      minRequests: policy.latency.minRequests,
      describe: (share) => `${pct(share)} of challenger requests slower than ${policy.latency.p99CeilingMs} ms (the p99 ceiling allows ${pct(CEILING_SHARE)})`,
    },
  };
  return breakerNames.map((name) => {
    const spec = specs[name];
    const step = breakerStep(memory.breakers?.[name], spec.counts, spec.p0, spec.p1, alpha);
    next[name] = step.state;
    const n = spec.counts.n;
    const share = n > 0 ? spec.counts.events / n : null;
    const enough = n >= spec.minRequests;
    const breach = enough && step.state.cusum >= step.threshold;
    return {
      name,
      kind: 'breaker',
      state: !enough ? 'collecting' : breach ? 'breach' : 'healthy',
      nChampion: inputs.champion.errors.n,
      nChallenger: n,
      estimate: share,
      threshold: spec.p0,
      pValue: null,
      csLower: null,
      csUpper: null,
      alpha,
      reason: !enough
        ? `${n} of ${spec.minRequests} challenger requests needed`
        : `${spec.describe(share ?? 0)}; evidence ${step.state.cusum.toFixed(1)} of ${step.threshold.toFixed(1)} needed to trip`,
    };
  });
}

/**
 * Evaluates every guardrail. Each statistical guardrail tests H0 "challenger no worse than the margin" one-sidedly
 * with the half-normal mixture (τ² from the planned sample size) and rolls back when its running always-valid p-value
 * survives Holm or Bonferroni at the statistical share of alpha; it is "within" when the upper bound of its always-valid
 * confidence sequence at alpha is below the margin (intersection-union over the guardrails, no split needed; a
 * two-sided sequence, so at most alpha/2 or so per claim in practice). Returns the verdicts and the new memory.
 */
export function evaluateGuardrails(inputs: GuardrailInputs, policy: GuardrailPolicy, memory: GuardrailMemory): { verdicts: GuardrailVerdict[]; memory: GuardrailMemory } {
  const { champion, challenger } = inputs;
  const extra = inputs.extra ?? [];
  const streaming = inputs.streaming ?? null;
  // A route that does not stream is not charged for the streaming tests: the family holds only what is judged.
  const judgedNames: readonly StatisticalName[] = streaming === null ? coreStatisticalNames : statisticalNames;
  const k = judgedNames.length + extra.length;
  const familyAlpha = policy.alpha * STATISTICAL_ALPHA_SHARE;
  const levels = { worse: familyAlpha, within: policy.alpha };
  const nStar = policy.plannedRequests;
  const enough = (a: { n: number }, b: { n: number }) => a.n >= policy.minRequests && b.n >= policy.minRequests;
  const { margin, relativeMargin } = policy.errorRate;
  const strata: readonly StratumPair[] = inputs.strata !== undefined && inputs.strata.length > 0 ? inputs.strata : [{ champion, challenger }];
  const streamLooks = (name: (typeof streamingNames)[number]): { looks: MarginLooks | null; margin: number; nChampion: number; nChallenger: number; waiting: string } => {
    if (streaming === null) return { looks: null, margin: 0, nChampion: 0, nChallenger: 0, waiting: 'the route has no streaming policy' };
    const c = champion.stream;
    const t = challenger.stream;
    const waiting = `${Math.min(c.interrupted.n, t.interrupted.n)} of ${policy.minRequests} streamed answers per arm needed`;
    if (name === 'ttft_log_mean') {
      return { looks: enough(c.logTtft, t.logTtft) ? logMeanLooks(strata.map((s) => [s.champion.stream.logTtft, s.challenger.stream.logTtft] as const), streaming.ttft.ratio, levels, nStar) : null, margin: Math.log(streaming.ttft.ratio), nChampion: c.logTtft.n, nChallenger: t.logTtft.n, waiting };
    }
    const margin = name === 'stream_gap_exceedance' ? streaming.gaps.margin : streaming.interruptions.margin;
    const pick = (x: ArmComparison['champion']) => (name === 'stream_gap_exceedance' ? x.stream.stalled : x.stream.interrupted);
    return { looks: enough(pick(champion), pick(challenger)) ? rateMarginLooks(strata.map((s) => [pick(s.champion), pick(s.challenger)] as const), 1, margin, levels, nStar) : null, margin, nChampion: pick(champion).n, nChallenger: pick(challenger).n, waiting };
  };
  const looks: Record<StatisticalName, { looks: MarginLooks | null; margin: number; nChampion: number; nChallenger: number; waiting: string }> = {
    error_rate: {
      looks: enough(champion.errors, challenger.errors) ? rateMarginLooks(strata.map((s) => [s.champion.errors, s.challenger.errors] as const), 1 + relativeMargin, margin, levels, nStar) : null,
      margin,
      nChampion: champion.errors.n,
      nChallenger: challenger.errors.n,
      waiting: `${Math.min(champion.errors.n, challenger.errors.n)} of ${policy.minRequests} requests per arm needed`,
    },
    latency_log_mean: {
      looks: enough(champion.logLatency, challenger.logLatency) ? logMeanLooks(strata.map((s) => [s.champion.logLatency, s.challenger.logLatency] as const), policy.latency.ratio, levels, nStar) : null,
      margin: Math.log(policy.latency.ratio),
      nChampion: champion.logLatency.n,
      nChallenger: challenger.logLatency.n,
      waiting: `${Math.min(champion.logLatency.n, challenger.logLatency.n)} of ${policy.minRequests} timed requests per arm needed`,
    },
    latency_exceedance: {
      looks: enough(champion.scaledExceedance, challenger.exceedance) ? rateMarginLooks(strata.map((s) => [s.champion.scaledExceedance, s.challenger.exceedance] as const), 1, policy.latency.exceedanceMargin, levels, nStar) : null,
      margin: policy.latency.exceedanceMargin,
      nChampion: champion.scaledExceedance.n,
      nChallenger: challenger.exceedance.n,
      waiting: inputs.p95ThresholdMs === null ? `fixing the champion p95 from its first ${policy.latency.baselineRequests} requests` : `${Math.min(champion.scaledExceedance.n, challenger.exceedance.n)} of ${policy.minRequests} requests per arm over the threshold window needed`,
    },
    ttft_log_mean: streamLooks('ttft_log_mean'),
    stream_gap_exceedance: streamLooks('stream_gap_exceedance'),
    stream_interruptions: streamLooks('stream_interruptions'),
  };
  const tests: NonNullable<GuardrailMemory['tests']> = { ...memory.tests };
  const pValues = judgedNames.map((name) => {
    const worse = looks[name].looks?.worse;
    if (worse !== undefined && worse.status === 'ok') tests[name] = observeLook(tests[name] ?? createAlwaysValidState(), worse.logLambda, familyAlpha, worse);
    return tests[name]?.pValue ?? 1;
  });
  for (const test of extra) {
    if (test.logEValue !== null) tests[test.name] = observeLook(tests[test.name] ?? createAlwaysValidState(), test.logEValue, familyAlpha);
    pValues.push(tests[test.name]?.pValue ?? 1);
  }
  const adjusted = policy.correction === 'holm' ? holm(pValues) : pValues.map((p) => Math.min(1, p * k));
  const statistical = judgedNames.map((name, i): GuardrailVerdict => {
    const entry = looks[name];
    const worse = entry.looks?.worse;
    const interval = entry.looks?.interval;
    const judged = worse !== undefined && worse.status === 'ok';
    const p = tests[name]?.pValue ?? null;
    let state: GuardrailState;
    let reason: string;
    if ((adjusted[i] ?? 1) <= familyAlpha) {
      state = 'breach';
      reason = `challenger ${describe(name)} is worse than ${tolerated(name, policy, streaming)} (always-valid p ${fmt(p ?? 1)}, adjusted ${fmt(adjusted[i]!)} <= ${fmt(familyAlpha)})`;
    } else if (!judged) {
      state = 'collecting';
      reason = entry.looks === null ? entry.waiting : 'no variance yet';
    } else if (interval!.csUpper < entry.margin) {
      state = 'within';
      reason = `confidently within ${tolerated(name, policy, streaming)}: effect ${fmt(worse.delta)}, upper bound ${fmt(interval!.csUpper)} < margin ${fmt(entry.margin)}`;
    } else {
      state = 'healthy';
      reason = `no breach detected; not yet confidently within ${tolerated(name, policy, streaming)} (effect ${fmt(worse.delta)}, upper bound ${fmt(interval!.csUpper)} vs margin ${fmt(entry.margin)})`;
    }
    return {
      name,
      kind: 'statistical',
      state,
      nChampion: entry.nChampion,
      nChallenger: entry.nChallenger,
      estimate: judged ? worse.delta : null,
      threshold: entry.margin,
      pValue: p,
      csLower: judged ? interval!.csLower : null,
      csUpper: judged ? interval!.csUpper : null,
      alpha: policy.correction === 'holm' ? familyAlpha : familyAlpha / k,
      reason,
    };
  });
  const extraVerdicts = extra.map((test, j): GuardrailVerdict => {
    const i = judgedNames.length + j;
    const p = tests[test.name]?.pValue ?? null;
    const breach = (adjusted[i] ?? 1) <= familyAlpha;
    return {
      name: test.name,
      kind: 'divergence',
      state: breach ? 'breach' : test.logEValue === null ? 'collecting' : 'healthy',
      nChampion: test.nChampion,
      nChallenger: test.nChallenger,
      estimate: test.estimate,
      threshold: 0,
      pValue: p,
      csLower: null,
      csUpper: null,
      alpha: policy.correction === 'holm' ? familyAlpha : familyAlpha / k,
      reason: breach ? `challenger predictions diverge from the champion's: ${test.describe} (always-valid p ${fmt(p ?? 1)}, adjusted ${fmt(adjusted[i]!)} <= ${fmt(familyAlpha)})` : test.logEValue === null ? test.describe : `no divergence detected: ${test.describe} (always-valid p ${fmt(p ?? 1)}, adjusted ${fmt(adjusted[i] ?? 1)})`,
    };
  });
  const breakers: Partial<Record<BreakerName, BreakerState>> = {};
  const breakerList = breakerVerdicts(inputs, policy, memory, breakers);
  return { verdicts: [...breakerList, ...statistical, ...extraVerdicts], memory: { tests, breakers } };
}

const descriptions: Record<StatisticalName, string> = {
  error_rate: 'error rate',
  latency_log_mean: 'typical latency (log mean)',
  latency_exceedance: 'latency tail (share over the champion p95)',
  ttft_log_mean: 'time to first token (log mean)',
  stream_gap_exceedance: 'share of streams with a gap between chunks over the threshold',
  stream_interruptions: 'share of streams interrupted after a 2xx',
};

function describe(name: StatisticalName): string {
  return descriptions[name];
}

function tolerated(name: StatisticalName, policy: GuardrailPolicy, streaming: StreamingPolicy | null): string {
  if (name === 'ttft_log_mean') return `the champion's × ${streaming?.ttft.ratio}`;
  if (name === 'stream_gap_exceedance') return `the champion's + ${pct(streaming?.gaps.margin ?? 0)} (gaps over ${streaming?.gaps.thresholdMs} ms)`;
  if (name === 'stream_interruptions') return `the champion's + ${pct(streaming?.interruptions.margin ?? 0)}`;
  if (name === 'latency_log_mean') return `the champion's × ${policy.latency.ratio}`;
  if (name === 'latency_exceedance') {
    const extra = policy.latency.exceedanceMargin > 0 ? ` + ${pct(policy.latency.exceedanceMargin)}` : '';
    return `a champion slowed × ${policy.latency.ratio}${extra}`;
  }
  const { margin, relativeMargin } = policy.errorRate;
  const parts = [relativeMargin > 0 ? `the champion's × ${1 + relativeMargin}` : "the champion's", margin > 0 ? `+ ${pct(margin)}` : ''];
  return parts.filter(Boolean).join(' ');
}

function pct(share: number): string {
  return `${(share * 100).toFixed(share < 0.01 && share > 0 ? 2 : 1)}%`;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(2);
}
