// Summarises simulation replicates: outcome counts and rates with 95 % Wilson intervals, times and requests to outcome.
import { wilsonInterval } from '../analysis/stats/index.js';
import { outcomes, type Outcome, type ReplicateResult } from './driver.js';

/** A count out of the replicates, its rate and the 95 % Wilson interval of the rate. */
export interface Proportion {
  count: number;
  of: number;
  rate: number | null;
  ci95: [number, number] | null;
}

/** What `switchyard simulate --json` reports next to the replicates. */
export interface SimulationSummary {
  replicates: number;
  challenger: string | null;
  counts: Record<Outcome, number>;
  rates: Record<Outcome, number | null>;
  intervals95: Record<Outcome, [number, number] | null>;
  /** Rollbacks by the guardrail or breaker that caused them, each as a share of all replicates. */
  rollbacksByReason: Record<string, Proportion>;
  /** Median virtual seconds to the outcome, over the replicates that reached it. */
  medianSeconds: Record<Outcome, number | null>;
  /** Median challenger requests served before the rollback (requests to detect), over the rolled-back replicates. */
  medianChallengerRequestsToRollback: number | null;
  /** Replicates in which the rollout advanced at least one step. */
  advancedAStep: Proportion;
  /** Without a rollout: replicates in which the controller judged the challenger promotable at some look. */
  judgedPromotable: Proportion;
  /** Replicates in which the sample-ratio check flagged the split at some look (it holds a rollout). */
  srmFlagged: Proportion;
  /** Median challenger share (percent) reached. */
  medianHighestPercent: number | null;
}

/** A count out of `of` with its rate and 95 % Wilson interval (null when `of` is 0). */
export function proportion(count: number, of: number): Proportion {
  if (of === 0) return { count, of, rate: null, ci95: null };
  const [lower, upper] = wilsonInterval(count, of);
  return { count, of, rate: count / of, ci95: [Math.max(0, lower), Math.min(1, upper)] };
}

/** The median of `values` (null for none). */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(results: readonly ReplicateResult[]): SimulationSummary {
  const n = results.length;
  const challenger = results.find((r) => r.challenger !== null)?.challenger ?? null;
  const counts = { promoted: 0, rolled_back: 0, running: 0 } as Record<Outcome, number>;
  const reasons = new Map<string, number>();
  for (const r of results) {
    counts[r.outcome]++;
    if (r.outcome === 'rolled_back') reasons.set(r.reason ?? 'unknown', (reasons.get(r.reason ?? 'unknown') ?? 0) + 1);
  }
  const of = (outcome: Outcome) => proportion(counts[outcome], n);
  const byOutcome = <T>(f: (o: Outcome) => T) => Object.fromEntries(outcomes.map((o) => [o, f(o)])) as Record<Outcome, T>;
  const rolledBack = results.filter((r) => r.outcome === 'rolled_back');
  return {
    replicates: n,
    challenger,
    counts,
    rates: byOutcome((o) => of(o).rate),
    intervals95: byOutcome((o) => of(o).ci95),
    rollbacksByReason: Object.fromEntries([...reasons].sort(([, a], [, b]) => b - a).map(([reason, count]) => [reason, proportion(count, n)])),
    medianSeconds: byOutcome((o) => median(results.filter((r) => r.outcome === o).map((r) => r.atSeconds))),
    medianChallengerRequestsToRollback: median(rolledBack.map((r) => (r.challenger === null ? 0 : (r.requests[r.challenger] ?? 0)))),
    advancedAStep: proportion(results.filter((r) => r.steps.length > 0).length, n),
    judgedPromotable: proportion(results.filter((r) => r.promotableAtSeconds !== null).length, n),
    srmFlagged: proportion(results.filter((r) => r.srmFlaggedAtSeconds !== null).length, n),
    medianHighestPercent: median(results.map((r) => r.highestPercent)),
  };
}
