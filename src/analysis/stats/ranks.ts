// Rank tests for reports: Mann-Whitney U with the Hodges-Lehmann shift, and the Wilcoxon signed-rank test (docs/statistics.md).
import { normalPValue } from './proportions.js';
import { logChoose, normalSf } from './special.js';
import type { Alternative, TestStatus } from './types.js';

/** Average ranks (1-based, ties share their mean rank) and the tie term Σ(t³ − t) over tie groups. */
export interface RankResult {
  ranks: Float64Array;
  tieTerm: number;
}

/** Ranks with ties averaged, as scipy.stats.rankdata(method='average'). */
export function averageRanks(values: ArrayLike<number>): RankResult {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((i, j) => values[i]! - values[j]!);
  const ranks = new Float64Array(n);
  let tieTerm = 0;
  let start = 0;
  while (start < n) {
    let end = start + 1;
    const value = values[order[start]!]!;
    while (end < n && values[order[end]!]! === value) end++;
    const size = end - start;
    const rank = (start + end + 1) / 2;
    for (let k = start; k < end; k++) ranks[order[k]!] = rank;
    tieTerm += size * size * size - size;
    start = end;
  }
  return { ranks, tieTerm };
}

/** Largest log count of arrangements for which the exact null distributions stay exact integers in a double. */
const MAX_EXACT_LOG_COUNT = 52 * Math.LN2;

// --- Mann-Whitney U ---------------------------------------------------------------------------------

/** Options of the Mann-Whitney U test. */
export interface MannWhitneyOptions {
  /** `greater`: x tends to be larger than y. Default two-sided. */
  alternative?: Alternative;
  /**
   * `auto` (default, scipy's rule: exact when one sample has <= 8 values and there are no ties), `asymptotic`, or
   * `exact`. An explicit `exact` follows scipy even with ties: it uses the tie-free null distribution at
   * floor(U), which is then only approximate. Exact needs C(n1+n2, n1) < 2^52; beyond that it falls back to asymptotic.
   */
  method?: 'auto' | 'exact' | 'asymptotic';
  /** Continuity correction of the normal approximation (default true, as scipy). */
  continuity?: boolean;
}

/** Result of the Mann-Whitney U test. */
export interface MannWhitneyResult {
  status: TestStatus;
  /** Method actually used. */
  method: 'exact' | 'asymptotic';
  /** U1 = R1 − n1(n1+1)/2, the statistic for x (scipy's reported statistic). */
  U1: number;
  /** n1·n2 − U1. */
  U2: number;
  /** Rank sum of x in the pooled sample. */
  R1: number;
  /** n1·n2/2. */
  mean: number;
  /** sqrt(n1n2/12·((n+1) − Σ(t³−t)/(n(n−1)))), tie-corrected. */
  sd: number;
  /** Σ(t³ − t) over tie groups of the pooled sample. */
  tieTerm: number;
  /** Normal-approximation z (also reported when the exact method is used). */
  z: number;
  pValue: number;
  /** Hodges–Lehmann shift estimate: median of all x_i − y_j. */
  hodgesLehmann: number;
}

/**
 * Mann-Whitney U test (scipy 1.10 semantics). Two-sided asymptotic: U = max(U1, U2),
 * z = (U − n1n2/2 − 0.5·cc)/sd, p = clip(2Φ̄(z), 0, 1); exact: p = clip(2·P(U >= max(U1, U2)), 0, 1).
 * Conventions: all values identical → sd = 0 and z = −Infinity (cc, p = 1) or NaN (no cc, p = NaN),
 * status `degenerate`; an empty sample → p = 1, status `insufficient-data`.
 */
export function mannWhitneyU(x: ArrayLike<number>, y: ArrayLike<number>, options: MannWhitneyOptions = {}): MannWhitneyResult {
  const alternative = options.alternative ?? 'two-sided';
  const continuity = options.continuity ?? true;
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) {
    return { status: 'insufficient-data', method: 'asymptotic', U1: 0, U2: 0, R1: 0, mean: 0, sd: 0, tieTerm: 0, z: 0, pValue: 1, hodgesLehmann: NaN };
  }
  const pooled = new Float64Array(n1 + n2);
  for (let i = 0; i < n1; i++) pooled[i] = x[i]!;
  for (let j = 0; j < n2; j++) pooled[n1 + j] = y[j]!;
  const { ranks, tieTerm } = averageRanks(pooled);
  let R1 = 0;
  for (let i = 0; i < n1; i++) R1 += ranks[i]!;
  const U1 = R1 - (n1 * (n1 + 1)) / 2;
  const U2 = n1 * n2 - U1;
  const n = n1 + n2;
  const mean = (n1 * n2) / 2;
  const sd = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  const U = alternative === 'greater' ? U1 : alternative === 'less' ? U2 : Math.max(U1, U2);
  const factor = alternative === 'two-sided' ? 2 : 1;
  const z = (U - mean - (continuity ? 0.5 : 0)) / sd;
  const exactFeasible = logChoose(n, n1) <= MAX_EXACT_LOG_COUNT;
  const requested = options.method ?? 'auto';
  const useExact = exactFeasible && (requested === 'exact' || (requested === 'auto' && tieTerm === 0 && (n1 <= 8 || n2 <= 8)));
  const pValue = useExact ? clip01(factor * mannWhitneyExactSf(Math.floor(U), n1, n2)) : clip01(factor * normalSf(z));
  return {
    status: sd === 0 ? 'degenerate' : 'ok',
    method: useExact ? 'exact' : 'asymptotic',
    U1,
    U2,
    R1,
    mean,
    sd,
    tieTerm,
    z,
    pValue,
    hodgesLehmann: hodgesLehmannShift(x, y),
  };
}

function clip01(p: number): number {
  return p < 0 ? 0 : p > 1 ? 1 : p;
}

/**
 * P(U >= u) under H0 without ties. The counts of U are the coefficients of the Gaussian binomial
 * [n1+n2 choose n1]_q = Π_{i=1..m} (1 − q^{n+i})/(1 − q^i), built one factor at a time with exact integer
 * arithmetic (callers guarantee C(n1+n2, n1) < 2^52).
 */
function mannWhitneyExactSf(u: number, n1: number, n2: number): number {
  const m = Math.min(n1, n2);
  const n = Math.max(n1, n2);
  const counts = new Float64Array(m * n + n + m + 2);
  counts[0] = 1;
  let degree = 0;
  for (let i = 1; i <= m; i++) {
    const shift = n + i;
    for (let j = degree + shift; j >= shift; j--) counts[j] = counts[j]! - counts[j - shift]!;
    const grown = degree + shift;
    for (let j = i; j <= grown; j++) counts[j] = counts[j]! + counts[j - i]!;
    degree += n;
    for (let j = degree + 1; j <= grown; j++) counts[j] = 0;
  }
  let total = 0;
  let tail = 0;
  for (let j = 0; j <= degree; j++) {
    total += counts[j]!;
    if (j >= u) tail += counts[j]!;
  }
  return tail / total;
}

// --- Hodges-Lehmann ---------------------------------------------------------------------------------

/** Above this many pairs the median is found by counting instead of materialising all differences. */
const MAX_MATERIALISED_PAIRS = 4_000_000;

/**
 * Hodges–Lehmann two-sample shift estimate: the median of all n1·n2 differences x_i − y_j (NaN if a sample is empty).
 * Exact: small inputs select from the materialised differences; large ones bisect on the ordered bit patterns of
 * doubles, counting pairs below a candidate in O(n1 + n2).
 */
export function hodgesLehmannShift(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const m = x.length;
  const n = y.length;
  if (m === 0 || n === 0) return NaN;
  const total = m * n;
  const upper = Math.floor(total / 2);
  const lower = total % 2 === 1 ? upper : upper - 1;
  if (total <= MAX_MATERIALISED_PAIRS) {
    const differences = new Float64Array(total);
    let k = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) differences[k++] = x[i]! - y[j]!;
    const high = quickSelect(differences, upper);
    if (lower === upper) return high;
    // After selecting `upper`, everything left of it is <= it: the lower middle is the maximum of that part.
    let low = -Infinity;
    for (let i = 0; i < upper; i++) if (differences[i]! > low) low = differences[i]!;
    return (low + high) / 2;
  }
  const xs = Float64Array.from(x).sort();
  const ys = Float64Array.from(y).sort();
  const high = kthPairDifference(xs, ys, upper);
  return lower === upper ? high : (kthPairDifference(xs, ys, lower) + high) / 2;
}

/** Rearranges `values` so values[k] is the k-th smallest (0-based) and returns it (Hoare partition, median-of-three). */
export function quickSelect(values: Float64Array, k: number): number {
  let left = 0;
  let right = values.length - 1;
  while (right > left) {
    const middle = (left + right) >>> 1;
    const a = values[left]!;
    const b = values[middle]!;
    const c = values[right]!;
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let i = left;
    let j = right;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const swap = values[i]!;
        values[i] = values[j]!;
        values[j] = swap;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return values[k]!;
}

const bitsView = new Float64Array(1);
const intView = new BigInt64Array(bitsView.buffer);
const SIGN_BIT = -0x8000000000000000n;

/** Order-preserving integer key of a double (−0 and +0 share key 0). */
function doubleKey(value: number): bigint {
  bitsView[0] = value;
  const bits = intView[0]!;
  return bits >= 0n ? bits : -(bits & 0x7fffffffffffffffn);
}

function keyDouble(key: bigint): number {
  intView[0] = key >= 0n ? key : -key | SIGN_BIT;
  return bitsView[0]!;
}

/** k-th smallest (0-based) of the computed differences xs[i] − ys[j], both inputs sorted ascending. */
function kthPairDifference(xs: Float64Array, ys: Float64Array, k: number): number {
  const countAtMost = (t: number): number => {
    // For each x (ascending), the pairs with x − y <= t are the y at or beyond a pointer that only moves right.
    let count = 0;
    let j = 0;
    for (let i = 0; i < xs.length; i++) {
      while (j < ys.length && !(xs[i]! - ys[j]! <= t)) j++;
      count += ys.length - j;
    }
    return count;
  };
  let lo = doubleKey(xs[0]! - ys[ys.length - 1]!);
  let hi = doubleKey(xs[xs.length - 1]! - ys[0]!);
  if (countAtMost(keyDouble(lo)) >= k + 1) return keyDouble(lo);
  // Invariant: count(lo) < k + 1 <= count(hi).
  while (hi - lo > 1n) {
    const mid = (lo + hi) >> 1n;
    if (countAtMost(keyDouble(mid)) >= k + 1) hi = mid;
    else lo = mid;
  }
  return keyDouble(hi);
}

// --- Wilcoxon signed-rank -------------------------------------------------------------------------------

/** scipy's `auto` rule: above this many differences (zeros included) the normal approximation is used. */
const AUTO_EXACT_MAX = 50;
/** scipy's `auto` rule with ties or zeros: an exhaustive sign-flip test up to this many differences (2^13 <= 9999 resamples). */
const AUTO_EXACT_TIES_MAX = 13;
/**
 * Largest number of ranked differences for which `method: 'exact'` computes the distribution (O(m·n²) work, about
 * 8 million additions at the cap); beyond it the normal approximation is used and reported.
 */
const EXACT_MAX_RANKED = 200;

/** Options of the Wilcoxon signed-rank test. */
export interface WilcoxonOptions {
  /** `greater`: the differences tend to be positive. Default two-sided. */
  alternative?: Alternative;
  /**
   * Zero differences: `wilcox` drops them before ranking (default, scipy/R), `pratt` ranks them then drops them
   * (adjusting mean and variance), `zsplit` splits their ranks half-and-half between R+ and R−.
   */
  zeroMethod?: 'wilcox' | 'pratt' | 'zsplit';
  /** Continuity correction of the normal approximation (default false, as scipy). */
  correction?: boolean;
  /**
   * `auto` (default, scipy >= 1.13): with more than 50 differences (zeros counted) the normal approximation;
   * otherwise the exact distribution when there are neither ties nor zeros, and also with ties or zeros when there
   * are at most 13 differences (where scipy runs an exhaustive sign-flip permutation test: the same distribution);
   * the normal approximation in between.
   * `exact`: the exact distribution over the actual ranks, ties and zeros included, up to 200 ranked differences
   * (normal approximation beyond, reported in `method`). With ties or zeros this differs from scipy's
   * `method='exact'`, which rounds R+ and reads the tie-free table (a conservative approximation).
   * `approx`: the normal approximation (scipy's `asymptotic`).
   */
  method?: 'auto' | 'exact' | 'approx';
}

/** Result of the Wilcoxon signed-rank test. */
export interface WilcoxonResult {
  status: TestStatus;
  /** Method actually used: `exact` is the exact sign-flip distribution over the actual ranks. */
  method: 'exact' | 'approx';
  /** min(R+, R−) two-sided, R+ one-sided. */
  statistic: number;
  rPlus: number;
  rMinus: number;
  /** Differences entering the ranks (zeros excluded for `wilcox`). */
  nUsed: number;
  /** Differences exactly 0 (models agreeing); always report it in shadow mode. */
  nZero: number;
  mean: number;
  sd: number;
  /** Normal-approximation z (also reported when the exact method is used). */
  z: number;
  pValue: number;
}

/**
 * Wilcoxon signed-rank test on paired differences d = x − y (scipy semantics; the rules are in
 * docs/statistics.md, "Wilcoxon signed-rank: exact distribution").
 * Normal approximation: Var = [n(n+1)(2n+1) − ½Σ(t³ − t)]/24 over the ranks used, z = (T − mean − cc)/sd,
 * cc = 0.5·sign(T − mean) when `correction` is on.
 * Exact: under H0 each nonzero difference is positive or negative with probability ½ independently, its rank fixed
 * at its actual (average, for ties) rank among the ranked |d| — zeros included in the ranking for `pratt` and
 * `zsplit`, where they never change sign. p two-sided = min(1, 2·min(P(R+ <= r), P(R+ >= r))), `greater`
 * P(R+ >= r), `less` P(R+ <= r): exactly scipy's exhaustive permutation test, and its tie-free table when there are
 * no ties or zeros. Which method `auto` picks: see `WilcoxonOptions.method`.
 * Convention: nothing left to rank (all d = 0 with `wilcox`/`pratt`, or no pairs) → p = 1, status `degenerate`.
 */
export function wilcoxonSignedRank(differences: ArrayLike<number>, options: WilcoxonOptions = {}): WilcoxonResult {
  const alternative = options.alternative ?? 'two-sided';
  const zeroMethod = options.zeroMethod ?? 'wilcox';
  const correction = options.correction ?? false;
  let nZero = 0;
  for (let i = 0; i < differences.length; i++) if (differences[i] === 0) nZero++;
  const used: number[] = [];
  for (let i = 0; i < differences.length; i++) if (zeroMethod !== 'wilcox' || differences[i] !== 0) used.push(differences[i]!);
  const count = used.length;
  if (count === 0 || (zeroMethod === 'pratt' && nZero === count)) {
    return { status: 'degenerate', method: 'approx', statistic: 0, rPlus: 0, rMinus: 0, nUsed: count, nZero, mean: 0, sd: 0, z: 0, pValue: 1 };
  }
  const absolute = used.map(Math.abs);
  const { ranks, tieTerm } = averageRanks(absolute);
  let rPlus = 0;
  let rMinus = 0;
  let rZero = 0;
  // Ranks are integers or halves, so twice a rank is an exact integer: the exact distribution works in those units.
  let doubledRPlus = 0;
  const doubledNonzeroRanks: number[] = [];
  for (let i = 0; i < count; i++) {
    const d = used[i]!;
    if (d > 0) {
      rPlus += ranks[i]!;
      doubledRPlus += 2 * ranks[i]!;
    } else if (d < 0) rMinus += ranks[i]!;
    else rZero += ranks[i]!;
    if (d !== 0) doubledNonzeroRanks.push(2 * ranks[i]!);
  }
  if (zeroMethod === 'zsplit') {
    rPlus += rZero / 2;
    rMinus += rZero / 2;
  }
  const statistic = alternative === 'two-sided' ? Math.min(rPlus, rMinus) : rPlus;
  let mean = (count * (count + 1)) / 4;
  let variance = count * (count + 1) * (2 * count + 1);
  let usedTieTerm = tieTerm;
  if (zeroMethod === 'pratt') {
    // Cureton (1967): the zero ranks leave the statistic, so their share leaves the mean and variance.
    mean -= (nZero * (nZero + 1)) / 4;
    variance -= nZero * (nZero + 1) * (2 * nZero + 1);
    usedTieTerm -= nZero * nZero * nZero - nZero;
  }
  variance -= 0.5 * usedTieTerm;
  const sd = Math.sqrt(variance / 24);
  let cc = 0;
  if (correction) cc = alternative === 'two-sided' ? 0.5 * Math.sign(statistic - mean) : alternative === 'less' ? -0.5 : 0.5;
  const z = (statistic - mean - cc) / sd;
  const useExact = chooseExact(options.method ?? 'auto', differences.length, count, nZero > 0 || tieTerm > 0);
  const pValue = useExact ? signedRankExactPValue(doubledRPlus, doubledNonzeroRanks, alternative) : normalPValue(z, alternative);
  return { status: 'ok', method: useExact ? 'exact' : 'approx', statistic, rPlus, rMinus, nUsed: count, nZero, mean, sd, z, pValue };
}

/** Wilcoxon signed-rank test on paired samples: d_i = x_i − y_i. */
export function wilcoxonSignedRankSamples(x: ArrayLike<number>, y: ArrayLike<number>, options: WilcoxonOptions = {}): WilcoxonResult {
  const length = Math.min(x.length, y.length);
  const differences = new Float64Array(length);
  for (let i = 0; i < length; i++) differences[i] = x[i]! - y[i]!;
  return wilcoxonSignedRank(differences, options);
}

/**
 * Whether to use the exact distribution. `auto` is scipy's rule (scipy.stats.wilcoxon, 1.13 and later): it counts
 * all differences, zeros included, and sees ties among the ranked |d| (zeros tied with each other count as zeros).
 */
function chooseExact(method: 'auto' | 'exact' | 'approx', differences: number, ranked: number, tiesOrZeros: boolean): boolean {
  if (method === 'approx') return false;
  if (method === 'exact') return ranked <= EXACT_MAX_RANKED;
  if (differences > AUTO_EXACT_MAX) return false;
  return !tiesOrZeros || differences <= AUTO_EXACT_TIES_MAX;
}

/**
 * Null distribution of 2R+ when each of the given doubled ranks enters the sum with probability ½ independently:
 * P(2R+ = s) for s = 0..Σ. Every step halves, so each entry is (count)·2^−m, a dyadic rational that a double holds
 * exactly while the count fits 53 bits (m <= 52); beyond that the entries carry a few ulps of rounding, all terms
 * positive, so tails stay accurate relatively.
 */
function signedRankDistribution(doubledRanks: readonly number[]): Float64Array {
  let total = 0;
  for (const rank of doubledRanks) total += rank;
  const probabilities = new Float64Array(total + 1);
  probabilities[0] = 1;
  let top = 0;
  for (const rank of doubledRanks) {
    // In place, from the top: probabilities[s] on the right still holds the previous step's value.
    for (let s = top + rank; s >= 0; s--) {
      const without = s <= top ? probabilities[s]! : 0;
      const withRank = s >= rank ? probabilities[s - rank]! : 0;
      probabilities[s] = 0.5 * (without + withRank);
    }
    top += rank;
  }
  return probabilities;
}

/**
 * Exact p-value of R+ (given doubled, over the nonzero differences only: a zero's share of R+ never changes sign, so
 * it shifts the observed value and every outcome alike and drops out). Both tails are direct sums of positive terms.
 */
function signedRankExactPValue(doubledRPlus: number, doubledRanks: readonly number[], alternative: Alternative): number {
  const distribution = signedRankDistribution(doubledRanks);
  const observed = Math.round(doubledRPlus);
  let lessOrEqual = 0;
  for (let s = 0; s <= observed && s < distribution.length; s++) lessOrEqual += distribution[s]!;
  let greaterOrEqual = 0;
  for (let s = Math.max(0, observed); s < distribution.length; s++) greaterOrEqual += distribution[s]!;
  if (alternative === 'greater') return greaterOrEqual;
  if (alternative === 'less') return lessOrEqual;
  return Math.min(1, 2 * Math.min(lessOrEqual, greaterOrEqual));
}
