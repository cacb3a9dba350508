// Reports beyond the guardrails: the shadow gate (agreement, shadow errors and latency) and the A/B winner on labelled outcomes.
import type { GuardrailPolicy } from '../config/policy-schema.js';
import type { RouteWindow } from '../analysis/window.js';
import { mixtureLook } from '../analysis/stats/index.js';
import { evaluateGuardrails, rateDifferenceLook, type GuardrailVerdict } from './guardrails.js';

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
 * is a valid, conservative always-valid p-value).
 */
export function shadowGate(window: RouteWindow, challenger: string, agreement: { agree: number; parsed: number }, policy: GuardrailPolicy): ShadowGate {
  const shadow = window.shadows.get(challenger);
  const verdicts = shadow
    ? evaluateGuardrails(
        {
          champion: window.champion.totals,
          challenger: shadow.totals,
          recent: { failures: shadow.recent.failuresInLast(policy.errorRate.window), p99: shadow.recent.p99OfLast(policy.latency.window) },
          p95ThresholdMs: window.p95ThresholdMs,
        },
        policy,
        {},
      ).verdicts
    : [];
  const max = policy.shadow.maxDisagreement;
  const n = agreement.parsed;
  let state: ShadowGate['agreement']['state'] = 'collecting';
  let upper: number | null = null;
  if (n >= policy.minRequests) {
    const disagreements = n - agreement.agree;
    const p = (disagreements + 0.5) / (n + 1);
    const look = mixtureLook(disagreements / n, (p * (1 - p)) / n, n, { alpha: policy.alpha, mixing: { nStar: policy.plannedRequests }, theta0: max, alternative: 'less' });
    upper = look.csUpper;
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
}

/** Two-sided always-valid test of equal accuracy; a winner is declared when its confidence sequence excludes 0. */
export function abWinner(outcomes: Record<string, { n: number; correct: number }>, champion: string, challenger: string, policy: GuardrailPolicy): AbReport {
  const a = outcomes[champion] ?? { n: 0, correct: 0 };
  const b = outcomes[challenger] ?? { n: 0, correct: 0 };
  const base = { metric: 'accuracy' as const, champion: { variant: champion, ...a }, challenger: { variant: challenger, ...b }, alpha: policy.ab.alpha };
  if (a.n < policy.minRequests || b.n < policy.minRequests) return { ...base, estimate: null, csLower: null, csUpper: null, state: 'collecting', winner: null };
  const look = rateDifferenceLook({ n: a.n, events: a.correct }, { n: b.n, events: b.correct }, { alpha: policy.ab.alpha, mixing: { nStar: policy.plannedRequests } });
  const winner = look.reject ? (look.delta > 0 ? challenger : champion) : null;
  return { ...base, estimate: look.delta, csLower: look.csLower, csUpper: look.csUpper, state: winner ? 'winner' : 'no_winner_yet', winner };
}
