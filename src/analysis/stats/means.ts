// Fixed-horizon t-tests on means (Welch's unequal-variance test, the paired t-test) and the relative lift (docs/statistics.md, "Fixed-horizon tests and their conventions", "Relative lift").
import { momentsOf, momentsVariance, type Moments } from './streaming.js';
import { studentTCdf, studentTQuantile, studentTSf } from './special.js';
import type { Alternative, Interval, TestStatus } from './types.js';

/** Options of the t-tests. */
export interface TTestOptions {
  /** Alternative for the first sample's mean relative to the second's (or for the mean difference vs 0). */
  alternative?: Alternative;
  /** Confidence level of the interval for the mean difference (default 0.95). */
  confidence?: number;
}

/** Result of Welch's t-test. */
export interface WelchTTestResult {
  status: TestStatus;
  t: number;
  /** Welch–Satterthwaite degrees of freedom. */
  df: number;
  pValue: number;
  meanX: number;
  meanY: number;
  /** Sample variances (ddof = 1), NaN when n < 2. */
  varX: number;
  varY: number;
  /** meanX − meanY. */
  diff: number;
  /** sqrt(varX/nX + varY/nY). */
  se: number;
  /** diff ± t_{1−α/2, df}·se. */
  diffInterval: Interval;
}

/**
 * Welch's t-test from streaming moments (docs/statistics.md, "Fixed-horizon tests and their conventions"):
 * t = (x̄ − ȳ)/sqrt(s_x²/n_x + s_y²/n_y),
 * ν = (s_x²/n_x + s_y²/n_y)² / ((s_x²/n_x)²/(n_x−1) + (s_y²/n_y)²/(n_y−1)), p = 2·F̄_t(|t|, ν).
 * Conventions (scipy's values): an arm with n < 2 → t, df, p NaN, status `insufficient-data`;
 * both variances 0 → df NaN, t NaN (equal means, p NaN) or ±Infinity (p 0), status `degenerate`.
 */
export function welchTTest(x: Moments, y: Moments, options: TTestOptions = {}): WelchTTestResult {
  const alternative = options.alternative ?? 'two-sided';
  const confidence = options.confidence ?? 0.95;
  const meanX = x.n > 0 ? x.mean : NaN;
  const meanY = y.n > 0 ? y.mean : NaN;
  const varX = momentsVariance(x);
  const varY = momentsVariance(y);
  const diff = meanX - meanY;
  const vnX = varX / x.n;
  const vnY = varY / y.n;
  const se = Math.sqrt(vnX + vnY);
  if (!(x.n > 1 && y.n > 1)) {
    return { status: 'insufficient-data', t: NaN, df: NaN, pValue: NaN, meanX, meanY, varX, varY, diff, se, diffInterval: [NaN, NaN] };
  }
  const t = diff / se;
  const df = ((vnX + vnY) * (vnX + vnY)) / ((vnX * vnX) / (x.n - 1) + (vnY * vnY) / (y.n - 1));
  if (se === 0) {
    const pValue = Number.isNaN(t) ? NaN : tPValue(t, 1, alternative);
    return { status: 'degenerate', t, df: NaN, pValue, meanX, meanY, varX, varY, diff, se, diffInterval: [diff, diff] };
  }
  const half = studentTQuantile(1 - (1 - confidence) / 2, df) * se;
  return { status: 'ok', t, df, pValue: tPValue(t, df, alternative), meanX, meanY, varX, varY, diff, se, diffInterval: [diff - half, diff + half] };
}

/** Welch's t-test on two raw samples (moments by Welford). */
export function welchTTestSamples(x: ArrayLike<number>, y: ArrayLike<number>, options: TTestOptions = {}): WelchTTestResult {
  return welchTTest(momentsOf(x), momentsOf(y), options);
}

/** p-value of a t statistic for the given alternative. */
export function tPValue(t: number, df: number, alternative: Alternative): number {
  if (Number.isNaN(t)) return NaN;
  switch (alternative) {
    case 'greater':
      return studentTSf(t, df);
    case 'less':
      return studentTCdf(t, df);
    default:
      return Math.min(1, 2 * studentTSf(Math.abs(t), df));
  }
}

/** Result of the paired t-test. */
export interface PairedTTestResult {
  status: TestStatus;
  t: number;
  /** n − 1. */
  df: number;
  pValue: number;
  /** Mean of d = x − y. */
  meanDiff: number;
  /** Standard deviation of d (ddof = 1). */
  sdDiff: number;
  /** meanDiff ± t_{1−α/2, n−1}·sd/√n. */
  diffInterval: Interval;
}

/**
 * Paired t-test from the moments of the per-pair differences d = x − y: t = d̄/(s_d/√n), ν = n − 1
 * (docs/statistics.md, "Fixed-horizon tests and their conventions").
 * Conventions (scipy's values): n < 2 → t, p NaN, `insufficient-data`; s_d = 0 → t NaN (d̄ = 0, p NaN)
 * or ±Infinity (p 0), status `degenerate`.
 */
export function pairedTTest(differences: Moments, options: TTestOptions = {}): PairedTTestResult {
  const alternative = options.alternative ?? 'two-sided';
  const confidence = options.confidence ?? 0.95;
  const n = differences.n;
  const meanDiff = n > 0 ? differences.mean : NaN;
  const sdDiff = Math.sqrt(momentsVariance(differences));
  const df = n - 1;
  if (!(n > 1)) return { status: 'insufficient-data', t: NaN, df, pValue: NaN, meanDiff, sdDiff, diffInterval: [NaN, NaN] };
  const se = sdDiff / Math.sqrt(n);
  const t = meanDiff / se;
  if (se === 0) {
    return { status: 'degenerate', t, df, pValue: tPValue(t, df, alternative), meanDiff, sdDiff, diffInterval: [meanDiff, meanDiff] };
  }
  const half = studentTQuantile(1 - (1 - confidence) / 2, df) * se;
  return { status: 'ok', t, df, pValue: tPValue(t, df, alternative), meanDiff, sdDiff, diffInterval: [meanDiff - half, meanDiff + half] };
}

/** Paired t-test on two equal-length samples (pairs beyond the shorter one are ignored). */
export function pairedTTestSamples(x: ArrayLike<number>, y: ArrayLike<number>, options: TTestOptions = {}): PairedTTestResult {
  const length = Math.min(x.length, y.length);
  const differences = new Float64Array(length);
  for (let i = 0; i < length; i++) differences[i] = x[i]! - y[i]!;
  return pairedTTest(momentsOf(differences), options);
}

/** A relative effect and the delta-method variance of its estimate. */
export interface RelativeLift {
  status: TestStatus;
  /** μ̂_T/μ̂_C − 1. */
  estimate: number;
  /** σ̂²_C·μ̂²_T/(μ̂⁴_C·n_C) + σ̂²_T/(μ̂²_C·n_T). */
  variance: number;
}

/**
 * Relative lift (μ_T − μ_C)/μ_C with its delta-method variance, as GrowthBook, ready for `mixtureLook`
 * (docs/statistics.md, "Relative lift"). Conventions: n < 2 in an arm → `insufficient-data`; μ̂_C = 0 →
 * `degenerate`; both with NaN fields (mixtureLook turns them into an insufficient-data look, never a decision).
 */
export function relativeLift(control: Moments, treatment: Moments): RelativeLift {
  if (!(control.n > 1 && treatment.n > 1)) return { status: 'insufficient-data', estimate: NaN, variance: NaN };
  const meanC = control.mean;
  const meanT = treatment.mean;
  if (meanC === 0) return { status: 'degenerate', estimate: NaN, variance: NaN };
  const varC = momentsVariance(control);
  const varT = momentsVariance(treatment);
  const meanC2 = meanC * meanC;
  return {
    status: 'ok',
    estimate: meanT / meanC - 1,
    variance: (varC * meanT * meanT) / (meanC2 * meanC2 * control.n) + varT / (meanC2 * treatment.n),
  };
}
