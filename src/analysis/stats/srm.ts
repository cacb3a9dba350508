// Sample-ratio-mismatch checks of the router's own split: chi-square goodness of fit and the Dirichlet-multinomial Bayes factor (docs/statistics.md, "Sample-ratio tests").
import { chiSquareSf, logPochhammerScaled } from './special.js';
import type { TestStatus } from './types.js';

/** Result of the chi-square SRM check. */
export interface SrmChiSquareResult {
  status: TestStatus;
  /** Σ (x_k − N·w_k)²/(N·w_k). */
  statistic: number;
  pValue: number;
  /** Number of arms with positive weight, minus 1. */
  dof: number;
}

/** Weights scaled to sum to 1 (they may be given as percentages or raw shares); null unless all are finite, >= 0, some > 0. */
function normalise(weights: readonly number[]): number[] | null {
  let sum = 0;
  for (const w of weights) {
    if (!(w >= 0 && Number.isFinite(w))) return null;
    sum += w;
  }
  return sum > 0 ? weights.map((w) => w / sum) : null;
}

/**
 * Pearson chi-square goodness-of-fit of the observed arm counts to the configured split (scipy.stats.chisquare
 * semantics; GrowthBook and Eppo flag SRM at p < 0.001). Weights are normalised to sum to 1.
 * Conventions: no observations, fewer than two arms with weight, or invalid weights → p = 1, `insufficient-data`;
 * observations in a zero-weight arm → statistic Infinity, p = 0.
 */
export function srmChiSquare(counts: readonly number[], weights: readonly number[]): SrmChiSquareResult {
  const shares = normalise(weights);
  let total = 0;
  for (const x of counts) total += x;
  if (shares === null) return { status: 'insufficient-data', statistic: 0, pValue: 1, dof: 0 };
  let arms = 0;
  let statistic = 0;
  for (let k = 0; k < shares.length; k++) {
    const w = shares[k]!;
    const x = counts[k] ?? 0;
    if (w > 0) {
      arms++;
      const expected = total * w;
      statistic += ((x - expected) * (x - expected)) / expected;
    } else if (x > 0) {
      statistic = Infinity;
    }
  }
  if (!(total > 0) || arms < 2) return { status: 'insufficient-data', statistic: 0, pValue: 1, dof: Math.max(0, arms - 1) };
  return { status: 'ok', statistic, pValue: statistic === Infinity ? 0 : chiSquareSf(statistic, arms - 1), dof: arms - 1 };
}

/**
 * ln of the Dirichlet-multinomial Bayes factor against the configured split (Lindon & Malek 2022; GrowthBook srm.mdx):
 * BF = [B(a + x)/B(a)] / Π w_k^{x_k}, a = c·w, B the multivariate beta. It depends only on the cumulative counts.
 * Written as Σ_k E(c·w_k, x_k) − E(c, N) with E(a, x) = lnΓ(a+x) − lnΓ(a) − x·ln a: the x·ln terms cancel exactly,
 * which keeps the result precise to ~1e-15 even when it is tiny. Observations in a zero-weight arm → Infinity;
 * invalid weights (negative, non-finite, all zero) → 0 (no evidence).
 */
export function dirichletMultinomialLogBayesFactor(counts: readonly number[], weights: readonly number[], concentration = 10_000): number {
  const shares = normalise(weights);
  if (shares === null) return 0;
  let total = 0;
  let logBayesFactor = 0;
  for (let k = 0; k < shares.length; k++) {
    const x = counts[k] ?? 0;
    const w = shares[k]!;
    total += x;
    if (w > 0) logBayesFactor += logPochhammerScaled(concentration * w, x);
    else if (x > 0) return Infinity;
  }
  return logBayesFactor - logPochhammerScaled(concentration, total);
}

/** Result of one look of the sequential SRM check. */
export interface SequentialSrmResult {
  status: TestStatus;
  logBayesFactor: number;
  bayesFactor: number;
  /** min(1, 1/BF) at this look; the always-valid p-value is its running minimum over looks. */
  pLook: number;
}

/**
 * One look of the Dirichlet-multinomial sequential SRM test on cumulative counts, concentration 10⁴ by default
 * (docs/statistics.md, "Sample-ratio tests"). Feed `logBayesFactor` to `observeLook` to keep the always-valid
 * running-min p-value.
 * No observations, invalid weights or concentration: BF = 1, `insufficient-data`.
 */
export function sequentialSrm(counts: readonly number[], weights: readonly number[], concentration = 10_000): SequentialSrmResult {
  let total = 0;
  for (const x of counts) total += x;
  if (!(total > 0) || normalise(weights) === null || !(concentration > 0)) {
    return { status: 'insufficient-data', logBayesFactor: 0, bayesFactor: 1, pLook: 1 };
  }
  const logBayesFactor = dirichletMultinomialLogBayesFactor(counts, weights, concentration);
  return { status: 'ok', logBayesFactor, bayesFactor: Math.exp(logBayesFactor), pLook: Math.min(1, Math.exp(-logBayesFactor)) };
}
