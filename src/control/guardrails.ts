// Pure guardrail evaluation: hard circuit breakers plus always-valid one-sided tests (Holm or Bonferroni across them).
import type { GuardrailPolicy } from '../config/policy-schema.js';
import type { ArmTotals } from '../analysis/window.js';
import { createAlwaysValidState, holm, meanDifferenceMsprt, mixtureLook, observeLook, type AlwaysValidState, type Counts, type MixtureLook, type MixtureOptions } from '../analysis/stats/index.js';

/** Names of the guardrails; stable, used as metric labels and in the audit evidence. */
export type GuardrailName = 'error_ceiling' | 'p99_ceiling' | 'error_rate' | 'latency_log_mean' | 'latency_exceedance';

/** collecting: too little data to judge (never a pass); within: confidently inside the margin; healthy: no alarm yet. */
export type GuardrailState = 'collecting' | 'healthy' | 'within' | 'breach';

/** One guardrail's verdict with the evidence behind it. */
export interface GuardrailVerdict {
  name: GuardrailName;
  kind: 'breaker' | 'statistical';
  state: GuardrailState;
  nChampion: number;
  nChallenger: number;
  /** Effect estimate: challenger − champion (rates; log-latency difference), or the breaker's observed value. */
  estimate: number | null;
  /** The tolerated value: margin for statistical guardrails, ceiling for breakers. */
  threshold: number;
  /** Always-valid p-value (statistical) or null. */
  pValue: number | null;
  /** Always-valid confidence sequence of the effect (statistical) or null. */
  csLower: number | null;
  csUpper: number | null;
  /** Level this guardrail was judged at after the multiplicity correction. */
  alpha: number | null;
  reason: string;
}

/** What the breakers look at: the challenger's recent outcomes. */
export interface RecentView {
  failures: { count: number; of: number };
  p99: { p99: number; of: number };
}

/** Inputs of one evaluation. */
export interface GuardrailInputs {
  champion: ArmTotals;
  challenger: ArmTotals;
  recent: RecentView;
  /** Champion p95 fixed at start (null until enough champion requests). */
  p95ThresholdMs: number | null;
}

/** Path-dependent state of the statistical guardrails (running always-valid p-values). */
export type GuardrailMemory = Partial<Record<GuardrailName, AlwaysValidState>>;

const statisticalNames: GuardrailName[] = ['error_rate', 'latency_log_mean', 'latency_exceedance'];

/**
 * Two-sample rate mSPRT (METHODS.md §1.4) with the variance taken from add-half smoothed rates: with zero events
 * in both arms the plain plug-in variance is 0 and the test could never say "confidently within the margin", yet a
 * healthy challenger usually has exactly zero errors. Smoothing only widens v, so the test stays conservative.
 */
export function rateDifferenceLook(control: Counts, treatment: Counts, options: MixtureOptions): MixtureLook {
  const smoothed = (c: Counts) => (c.events + 0.5) / (c.n + 1);
  const pC = smoothed(control);
  const pT = smoothed(treatment);
  const v = control.n > 0 && treatment.n > 0 ? (pC * (1 - pC)) / control.n + (pT * (1 - pT)) / treatment.n : 0;
  const delta = control.n > 0 && treatment.n > 0 ? treatment.events / treatment.n - control.events / control.n : 0;
  return mixtureLook(delta, v, control.n + treatment.n, options);
}

function breakerVerdicts(inputs: GuardrailInputs, policy: GuardrailPolicy): GuardrailVerdict[] {
  const { failures, p99 } = inputs.recent;
  const errorRate = failures.of > 0 ? failures.count / failures.of : null;
  const errorEnough = failures.of >= policy.errorRate.minRequests;
  const latencyEnough = p99.of >= policy.latency.minRequests;
  const base = { kind: 'breaker' as const, nChampion: inputs.champion.errors.n, nChallenger: inputs.challenger.errors.n, pValue: null, csLower: null, csUpper: null, alpha: null };
  return [
    {
      ...base,
      name: 'error_ceiling',
      state: !errorEnough ? 'collecting' : errorRate! > policy.errorRate.ceiling ? 'breach' : 'healthy',
      estimate: errorRate,
      threshold: policy.errorRate.ceiling,
      reason: !errorEnough
        ? `${failures.of} of ${policy.errorRate.minRequests} recent challenger requests needed`
        : `${failures.count} of the last ${failures.of} challenger requests failed (ceiling ${policy.errorRate.ceiling * 100}%)`,
    },
    {
      ...base,
      name: 'p99_ceiling',
      state: !latencyEnough ? 'collecting' : p99.p99 > policy.latency.p99CeilingMs ? 'breach' : 'healthy',
      estimate: latencyEnough ? p99.p99 : null,
      threshold: policy.latency.p99CeilingMs,
      reason: !latencyEnough ? `${p99.of} of ${policy.latency.minRequests} recent challenger requests needed` : `challenger p99 over the last ${p99.of} requests is ${p99.p99.toFixed(1)} ms (ceiling ${policy.latency.p99CeilingMs} ms)`,
    },
  ];
}

/**
 * Evaluates every guardrail. Statistical guardrails test H0: challenger − champion <= margin one-sidedly with the
 * half-normal mixture (METHODS.md §4.1), τ² from the planned sample size (§4.2), and alarm under Holm or
 * Bonferroni on the always-valid p-values (§4.3). Returns the verdicts and the updated running state.
 */
export function evaluateGuardrails(inputs: GuardrailInputs, policy: GuardrailPolicy, memory: GuardrailMemory): { verdicts: GuardrailVerdict[]; memory: GuardrailMemory } {
  const { champion, challenger } = inputs;
  const enough = champion.errors.n >= policy.minRequests && challenger.errors.n >= policy.minRequests;
  const options = (theta0: number) => ({ alpha: policy.alpha, mixing: { nStar: policy.plannedRequests }, theta0, alternative: 'greater' as const });
  const looks: Record<string, { look: MixtureLook; margin: number; available: boolean; unit: string }> = {
    error_rate: { look: rateDifferenceLook(champion.errors, challenger.errors, options(policy.errorRate.margin)), margin: policy.errorRate.margin, available: true, unit: 'error rate' },
    latency_log_mean: { look: meanDifferenceMsprt(champion.logLatency, challenger.logLatency, options(Math.log(policy.latency.ratio))), margin: Math.log(policy.latency.ratio), available: true, unit: 'log latency' },
    latency_exceedance: {
      look: rateDifferenceLook(champion.exceedance, challenger.exceedance, options(policy.latency.exceedanceMargin)),
      margin: policy.latency.exceedanceMargin,
      available: inputs.p95ThresholdMs !== null && champion.exceedance.n >= policy.minRequests && challenger.exceedance.n >= policy.minRequests,
      unit: 'share over champion p95',
    },
  };
  const next: GuardrailMemory = { ...memory };
  const pValues: number[] = [];
  for (const name of statisticalNames) {
    const entry = looks[name]!;
    if (enough && entry.available && entry.look.status === 'ok') {
      next[name] = observeLook(memory[name] ?? createAlwaysValidState(), entry.look.logLambda, policy.alpha, entry.look);
    }
    pValues.push(next[name]?.pValue ?? 1);
  }
  // Family-wise control of false rollbacks: Holm on the always-valid p-values, or plain Bonferroni.
  const k = statisticalNames.length;
  const adjusted = policy.correction === 'holm' ? holm(pValues) : pValues.map((p) => Math.min(1, p * k));
  const statistical: GuardrailVerdict[] = statisticalNames.map((name, i) => {
    const entry = looks[name]!;
    const state = next[name];
    const judged = enough && entry.available && entry.look.status === 'ok';
    const breached = (adjusted[i] ?? 1) <= policy.alpha;
    let verdictState: GuardrailState;
    let reason: string;
    if (breached) {
      verdictState = 'breach';
      reason = `challenger ${entry.unit} is worse than the champion's by more than ${formatMargin(name, entry.margin)} (always-valid p ${fmt(state!.pValue)}, adjusted ${fmt(adjusted[i]!)} <= alpha ${policy.alpha})`;
    } else if (!judged) {
      verdictState = 'collecting';
      reason = !enough ? `${Math.min(champion.errors.n, challenger.errors.n)} of ${policy.minRequests} requests per arm needed` : name === 'latency_exceedance' && inputs.p95ThresholdMs === null ? 'fixing the champion p95 baseline' : 'no variance yet';
    } else if (entry.look.csUpper < entry.margin) {
      verdictState = 'within';
      reason = `confidently within the margin: upper bound ${fmt(entry.look.csUpper)} < ${fmt(entry.margin)}`;
    } else {
      verdictState = 'healthy';
      reason = `no breach detected; not yet confidently within the margin (upper bound ${fmt(entry.look.csUpper)} vs ${fmt(entry.margin)})`;
    }
    return {
      name,
      kind: 'statistical',
      state: verdictState,
      nChampion: name === 'latency_exceedance' ? champion.exceedance.n : champion.errors.n,
      nChallenger: name === 'latency_exceedance' ? challenger.exceedance.n : challenger.errors.n,
      estimate: judged ? entry.look.delta : null,
      threshold: entry.margin,
      pValue: state?.pValue ?? null,
      csLower: judged ? entry.look.csLower : null,
      csUpper: judged ? entry.look.csUpper : null,
      alpha: policy.correction === 'holm' ? policy.alpha : policy.alpha / k,
      reason,
    };
  });
  return { verdicts: [...breakerVerdicts(inputs, policy), ...statistical], memory: next };
}

function formatMargin(name: GuardrailName, margin: number): string {
  if (name === 'latency_log_mean') return `a ratio of ${Math.exp(margin).toFixed(2)}`;
  return `${(margin * 100).toFixed(2)} percentage points`;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(2);
}
