// Judges the recorder's closed drift windows against their reference with the route's thresholds (PSI and Jensen-Shannon, sample-size aware).
import type { DriftPolicy } from '../config/policy-schema.js';
import type { DriftWindow } from '../record/prediction-stats.js';
import { judgeDrift, type DriftJudgement } from './stats/divergence.js';

/** One judged window of one arm and feature. */
export interface DriftResult extends DriftJudgement {
  variant: string;
  feature: string;
  window: number;
  endedAt: string;
}

/** Judges each window (docs/statistics.md, "Prediction divergence and drift": thresholds and their null quantiles). */
export function judgeWindows(windows: readonly DriftWindow[], policy: DriftPolicy): DriftResult[] {
  return windows.map((w) => ({
    variant: w.variant,
    feature: w.feature,
    window: w.window,
    endedAt: w.endedAt,
    ...judgeDrift(w.reference, w.current, { psi: policy.psi, jensenShannon: policy.jensenShannon, alpha: policy.alpha }),
  }));
}
