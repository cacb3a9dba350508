// Exact binomial test with Clopper-Pearson and Wilson intervals (scipy.stats.binomtest semantics; docs/statistics.md, "Fixed-horizon tests and their conventions").
import { betaQuantile, binomialCdf, binomialPmf, binomialSf, normalIsf } from './special.js';
import type { Alternative, Interval, TestStatus } from './types.js';

/** Result of the exact binomial test. */
export interface BinomialTestResult {
  status: TestStatus;
  /** k/n (NaN when n = 0). */
  estimate: number;
  pValue: number;
  /** Exact (Clopper-Pearson) two-sided interval for the success probability. */
  clopperPearson: Interval;
  /** Wilson score two-sided interval (no continuity correction). */
  wilson: Interval;
}

/** Options of the binomial test. */
export interface BinomialTestOptions {
  /** `greater`: the true probability exceeds p0. Default two-sided. */
  alternative?: Alternative;
  /** Confidence level of both intervals (default 0.95). */
  confidence?: number;
}

/**
 * Exact binomial test of H0: P(success) = p0 for k successes in n trials.
 * Two-sided is "minlike": Σ pmf(i) over i with pmf(i) <= pmf(k)·(1 + 1e-7), found by scipy's binary search
 * on the far side of the mode and summed through the incomplete-beta tails (full precision).
 * n = 0: p = 1, intervals [0, 1], status `insufficient-data`.
 */
export function binomialTest(k: number, n: number, p0: number, options: BinomialTestOptions = {}): BinomialTestResult {
  const alternative = options.alternative ?? 'two-sided';
  const confidence = options.confidence ?? 0.95;
  if (!(n > 0)) {
    return { status: 'insufficient-data', estimate: NaN, pValue: 1, clopperPearson: [0, 1], wilson: [0, 1] };
  }
  return {
    status: 'ok',
    estimate: k / n,
    pValue: binomialPValue(k, n, p0, alternative),
    clopperPearson: clopperPearsonInterval(k, n, confidence),
    wilson: wilsonInterval(k, n, confidence),
  };
}

/** p-value of the exact binomial test (see binomialTest). */
export function binomialPValue(k: number, n: number, p0: number, alternative: Alternative = 'two-sided'): number {
  if (alternative === 'less') return binomialCdf(k, n, p0);
  if (alternative === 'greater') return binomialSf(k - 1, n, p0);
  const d = binomialPmf(k, n, p0);
  const rerr = 1 + 1e-7;
  const expected = p0 * n;
  if (k === expected) return 1;
  let pValue: number;
  if (k < expected) {
    // First index at or above the mode whose pmf is <= d·rerr; all terms from there to n join the p-value.
    const ix = binarySearchTail((i) => -binomialPmf(i, n, p0), -d * rerr, Math.ceil(expected), n);
    const y = n - ix + (d * rerr === binomialPmf(ix, n, p0) ? 1 : 0);
    pValue = binomialCdf(k, n, p0) + binomialSf(n - y, n, p0);
  } else {
    const ix = binarySearchTail((i) => binomialPmf(i, n, p0), d * rerr, 0, Math.floor(expected));
    const y = ix + 1;
    pValue = binomialCdf(y - 1, n, p0) + binomialSf(k - 1, n, p0);
  }
  return Math.min(1, pValue);
}

/** scipy's _binary_search_for_binom_tst: the index i in [lo, hi] with f(i) <= target < f(i + 1), f increasing. */
function binarySearchTail(f: (i: number) => number, target: number, lo: number, hi: number): number {
  let low = lo;
  let high = hi;
  while (low < high) {
    const mid = low + Math.floor((high - low) / 2);
    const value = f(mid);
    if (value < target) low = mid + 1;
    else if (value > target) high = mid - 1;
    else return mid;
  }
  return f(low) <= target ? low : low - 1;
}

/** Clopper-Pearson exact interval: [Beta⁻¹(α/2; k, n−k+1), Beta⁻¹(1−α/2; k+1, n−k)], closed at 0 or 1 when k = 0 or n. */
export function clopperPearsonInterval(k: number, n: number, confidence = 0.95): Interval {
  const alpha = (1 - confidence) / 2;
  const lower = k === 0 ? 0 : betaQuantile(alpha, k, n - k + 1);
  const upper = k === n ? 1 : betaQuantile(1 - alpha, k + 1, n - k);
  return [lower, upper];
}

/** Wilson score interval (Newcombe 1998, as scipy): center (2np̂ + z²)/(2(n + z²)) ± z·sqrt(z² + 4np̂q̂)/(2(n + z²)). */
export function wilsonInterval(k: number, n: number, confidence = 0.95): Interval {
  const z = normalIsf((1 - confidence) / 2);
  const p = k / n;
  const q = 1 - p;
  const denominator = 2 * (n + z * z);
  const center = (2 * n * p + z * z) / denominator;
  const halfWidth = (z * Math.sqrt(z * z + 4 * n * p * q)) / denominator;
  return [center - halfWidth, center + halfWidth];
}
