// Distribution comparisons of predictions and inputs: an always-valid two-sample test of class frequencies, and PSI / Jensen-Shannon with sample-size-aware thresholds (docs/statistics.md, "Prediction divergence and drift").
import { chiSquareSf, logGamma } from './special.js';
import type { TestStatus } from './types.js';

/** One look of the two-sample categorical e-process. */
export interface CategoricalDivergenceLook {
  status: TestStatus;
  /** ln E: E >= 1/α rejects "both samples come from the same distribution" at level α, at any look. */
  logEValue: number;
  /** min(1, 1/E) at this look; the always-valid p-value is its running minimum (observeLook). */
  pLook: number;
  /** Jensen-Shannon divergence (nats) of the two observed frequency vectors: the effect size shown to people. */
  jensenShannon: number;
  nControl: number;
  nTreatment: number;
}

/** ln of the Dirichlet-multinomial marginal of one ordered sample: ln B(a + x) − ln B(a), a symmetric over K bins. */
function logDirichletMarginal(counts: readonly number[], bins: number, a: number): number {
  let n = 0;
  let sum = 0;
  for (const x of counts) {
    if (x > 0) {
      sum += logGamma(a + x) - logGamma(a);
      n += x;
    }
  }
  return sum + logGamma(bins * a) - logGamma(bins * a + n);
}

/**
 * Two-sample test of equal class frequencies that stays valid however often it is looked at: the universal
 * likelihood ratio (split-free, "running MLE in the denominator") with Dirichlet mixtures in the numerator,
 *
 *     E = DM_a(x_C)·DM_a(x_T) / sup_p Π_k p_k^(x_Ck + x_Tk),   DM_a(x) = B(a + x)/B(a),  a = 1/K (Perks prior)
 *
 * The numerator is a proper sequential probability of both ordered samples (each arm its own distribution), the
 * denominator the best single distribution for both, so under H0 (one distribution p for both arms, any allocation
 * between them that does not look at the outcomes) E is at most DM·DM/L(p), a non-negative martingale with mean 1:
 * by Ville's inequality P(sup E >= 1/α) <= α. It depends only on the counts, so replicas' counts can be summed.
 * `bins` is K, the number of classes the prior spreads over (at least the number of non-empty bins).
 * No observations in either arm → E = 1, `insufficient-data`.
 */
export function categoricalDivergence(control: readonly number[], treatment: readonly number[], bins = Math.max(control.length, treatment.length, 2)): CategoricalDivergenceLook {
  const length = Math.max(control.length, treatment.length);
  const K = Math.max(bins, length, 2);
  const a = 1 / K;
  let nC = 0;
  let nT = 0;
  for (const x of control) nC += x;
  for (const x of treatment) nT += x;
  const js = jensenShannon(control, treatment, 0);
  if (!(nC > 0 && nT > 0)) return { status: 'insufficient-data', logEValue: 0, pLook: 1, jensenShannon: js, nControl: nC, nTreatment: nT };
  const N = nC + nT;
  let logNull = 0;
  for (let k = 0; k < length; k++) {
    const s = (control[k] ?? 0) + (treatment[k] ?? 0);
    if (s > 0) logNull += s * Math.log(s / N);
  }
  const logE = logDirichletMarginal(control, K, a) + logDirichletMarginal(treatment, K, a) - logNull;
  return { status: 'ok', logEValue: logE, pLook: Math.min(1, Math.exp(-logE)), jensenShannon: js, nControl: nC, nTreatment: nT };
}

/** Frequencies with `smoothing` added to every bin (0: none), over the longer of the two vectors. */
function frequencies(counts: readonly number[], length: number, smoothing: number): number[] {
  let total = 0;
  for (let k = 0; k < length; k++) total += (counts[k] ?? 0) + smoothing;
  return Array.from({ length }, (_, k) => (total > 0 ? ((counts[k] ?? 0) + smoothing) / total : 0));
}

/**
 * Population stability index Σ (q_k − p_k)·ln(q_k/p_k) of the current counts against the reference counts, with
 * `smoothing` (default ½) added to every bin so an empty bin gives a finite value.
 */
export function populationStabilityIndex(reference: readonly number[], current: readonly number[], smoothing = 0.5): number {
  const length = Math.max(reference.length, current.length);
  const p = frequencies(reference, length, smoothing);
  const q = frequencies(current, length, smoothing);
  let psi = 0;
  for (let k = 0; k < length; k++) if (p[k]! > 0 && q[k]! > 0) psi += (q[k]! - p[k]!) * Math.log(q[k]! / p[k]!);
  return psi;
}

/** Jensen-Shannon divergence in nats (0 to ln 2) of two count vectors, `smoothing` added to every bin (default ½). */
export function jensenShannon(reference: readonly number[], current: readonly number[], smoothing = 0.5): number {
  const length = Math.max(reference.length, current.length);
  const p = frequencies(reference, length, smoothing);
  const q = frequencies(current, length, smoothing);
  let js = 0;
  for (let k = 0; k < length; k++) {
    const m = (p[k]! + q[k]!) / 2;
    if (p[k]! > 0) js += 0.5 * p[k]! * Math.log(p[k]! / m);
    if (q[k]! > 0) js += 0.5 * q[k]! * Math.log(q[k]! / m);
  }
  return Math.max(0, js);
}

/** The upper α quantile of the chi-square distribution with `dof` degrees of freedom (bisection on chiSquareSf). */
export function chiSquareQuantile(alpha: number, dof: number): number {
  if (!(dof > 0) || !(alpha > 0 && alpha < 1)) return Number.NaN;
  let low = 0;
  let high = Math.max(1, dof);
  while (chiSquareSf(high, dof) > alpha) high *= 2;
  for (let i = 0; i < 100 && high - low > 1e-10 * high; i++) {
    const middle = (low + high) / 2;
    if (chiSquareSf(middle, dof) > alpha) low = middle;
    else high = middle;
  }
  return (low + high) / 2;
}

/** What one window's drift comparison concluded. */
export interface DriftJudgement {
  psi: number;
  jensenShannon: number;
  /** The larger of the configured PSI threshold and PSI's null quantile at these sample sizes. */
  psiThreshold: number;
  jsThreshold: number;
  /** The sampling-noise part of the thresholds: χ²_{K−1}(1 − α)·(1/n_ref + 1/n_cur) (PSI; an eighth of it for JS). */
  noiseBound: number;
  drifted: boolean;
  nReference: number;
  nCurrent: number;
}

/**
 * Compares a window against the reference. Under "no drift" both are samples of one distribution, and for large
 * samples PSI·n_ref·n_cur/(n_ref + n_cur) and 8·JS·n_ref·n_cur/(n_ref + n_cur) are both approximately χ²_{K−1}
 * (PSI is the symmetrised KL divergence, JS a quarter of the χ² distance to the midpoint: each ≈ a multiple of
 * Σ(q − p)²/p̄). So a statistic counts as drift only when it is above the practical threshold (how large a shift
 * matters) AND above its own 1 − α null quantile at these sample sizes (how large a shift noise makes): a small
 * window can then not raise a drift alarm from sampling noise alone, and a huge one is not flagged for a shift too
 * small to matter. Each window is one fixed-sample test at level α (its false-alarm rate per window).
 */
export function judgeDrift(reference: readonly number[], current: readonly number[], options: { psi: number; jensenShannon: number; alpha: number }): DriftJudgement {
  const length = Math.max(reference.length, current.length);
  let nR = 0;
  let nC = 0;
  for (const x of reference) nR += x;
  for (const x of current) nC += x;
  let used = 0;
  for (let k = 0; k < length; k++) if ((reference[k] ?? 0) + (current[k] ?? 0) > 0) used++;
  const psi = populationStabilityIndex(reference, current);
  const js = jensenShannon(reference, current);
  const noise = nR > 0 && nC > 0 && used > 1 ? chiSquareQuantile(options.alpha, used - 1) * (1 / nR + 1 / nC) : Number.POSITIVE_INFINITY;
  const psiThreshold = Math.max(options.psi, noise);
  const jsThreshold = Math.max(options.jensenShannon, noise / 8);
  return { psi, jensenShannon: js, psiThreshold, jsThreshold, noiseBound: noise, drifted: psi > psiThreshold || js > jsThreshold, nReference: nR, nCurrent: nC };
}
