// Fixed-horizon tests on two proportions: pooled z-test, Fisher's exact test and the 2x2 chi-square (docs/statistics.md, "Fixed-horizon tests and their conventions").
import { chiSquareSf, normalIsf, normalSf } from './special.js';
import type { Alternative, Interval, TestStatus } from './types.js';

/** Options shared by the proportion tests. */
export interface ProportionTestOptions {
  /** Alternative for arm 1 relative to arm 2 (default two-sided). */
  alternative?: Alternative;
  /** Confidence level of the Wald interval (default 0.95). */
  confidence?: number;
}

/** Result of the pooled two-proportion z-test. */
export interface TwoProportionZTestResult {
  status: TestStatus;
  /** Observed rates x1/n1 and x2/n2 (NaN for an empty arm). */
  p1: number;
  p2: number;
  /** p1 − p2. */
  diff: number;
  /** Pooled rate (x1 + x2)/(n1 + n2). */
  pPooled: number;
  /** sqrt(p̂(1−p̂)(1/n1 + 1/n2)), the SE under H0. */
  sePooled: number;
  /** sqrt(p1(1−p1)/n1 + p2(1−p2)/n2), the SE of the Wald interval. */
  seUnpooled: number;
  z: number;
  pValue: number;
  /** Wald interval for p1 − p2 at the requested confidence (unpooled SE). */
  diffInterval: Interval;
}

/**
 * Pooled two-proportion z-test: z = (p1 − p2)/sqrt(p̂(1−p̂)(1/n1+1/n2)), p = 2Φ̄(|z|) via erfc
 * (docs/statistics.md, "Fixed-horizon tests and their conventions", "Normal tails").
 * Conventions: SE = 0 (all successes or all failures) → z = 0, p = 1, status `degenerate`;
 * an empty arm → z = 0, p = 1, status `insufficient-data`.
 */
export function twoProportionZTest(
  x1: number,
  n1: number,
  x2: number,
  n2: number,
  options: ProportionTestOptions = {},
): TwoProportionZTestResult {
  const alternative = options.alternative ?? 'two-sided';
  const confidence = options.confidence ?? 0.95;
  const p1 = n1 > 0 ? x1 / n1 : NaN;
  const p2 = n2 > 0 ? x2 / n2 : NaN;
  const diff = p1 - p2;
  if (!(n1 > 0 && n2 > 0)) {
    return { status: 'insufficient-data', p1, p2, diff, pPooled: NaN, sePooled: NaN, seUnpooled: NaN, z: 0, pValue: 1, diffInterval: [-Infinity, Infinity] };
  }
  const pPooled = (x1 + x2) / (n1 + n2);
  const sePooled = Math.sqrt(pPooled * (1 - pPooled) * (1 / n1 + 1 / n2));
  const seUnpooled = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
  const zCrit = normalIsf((1 - confidence) / 2);
  const diffInterval: Interval = [diff - zCrit * seUnpooled, diff + zCrit * seUnpooled];
  if (sePooled === 0) {
    return { status: 'degenerate', p1, p2, diff, pPooled, sePooled, seUnpooled, z: 0, pValue: 1, diffInterval };
  }
  const z = diff / sePooled;
  return { status: 'ok', p1, p2, diff, pPooled, sePooled, seUnpooled, z, pValue: normalPValue(z, alternative), diffInterval };
}

/** p-value of a standard-normal statistic for the given alternative, from erfc tails. */
export function normalPValue(z: number, alternative: Alternative): number {
  if (Number.isNaN(z)) return NaN;
  switch (alternative) {
    case 'greater':
      return normalSf(z);
    case 'less':
      return normalSf(-z);
    default:
      return Math.min(1, 2 * normalSf(Math.abs(z)));
  }
}

/** A 2x2 table [[a, b], [c, d]]: rows are arms (arm 1 first), columns are event / no event. */
export type Table2x2 = readonly [readonly [number, number], readonly [number, number]];

/** Result of Fisher's exact test. */
export interface FisherExactResult {
  status: TestStatus;
  /** Sample odds ratio ad/(bc) (not R's conditional MLE); Infinity when bc = 0 < ad, NaN for a zero margin. */
  oddsRatio: number;
  pValue: number;
}

/** Options of Fisher's exact test. */
export interface FisherExactOptions {
  /** `greater`: arm 1 (row 1) has higher event odds. Default two-sided. */
  alternative?: Alternative;
  /**
   * Relative tolerance when collecting tables "as or less likely" than the observed one in the two-sided test:
   * pmf(x) <= pmf(obs)·(1 + relativeTolerance). scipy uses 1e-14 (the default); R uses 1e-7.
   */
  relativeTolerance?: number;
}

/**
 * Fisher's exact test on a 2x2 table (docs/statistics.md, "Fixed-horizon tests and their conventions").
 * Probabilities of the hypergeometric distribution of `a` are built in log space by the ratio recurrence from the
 * mode, so tiny p-values keep their digits.
 * Two-sided: sum of pmf(x) over x with pmf(x) <= pmf(a)·(1 + ε). A zero row or column (or a cell that is not a
 * non-negative integer): OR NaN, p = 1, `degenerate`.
 */
export function fisherExact(table: Table2x2, options: FisherExactOptions = {}): FisherExactResult {
  const alternative = options.alternative ?? 'two-sided';
  const relativeTolerance = options.relativeTolerance ?? 1e-14;
  const [[a, b], [c, d]] = table;
  if (!isCountTable(table)) return { status: 'degenerate', oddsRatio: NaN, pValue: 1 };
  const row1 = a + b;
  const row2 = c + d;
  const col1 = a + c;
  const col2 = b + d;
  if (row1 === 0 || row2 === 0 || col1 === 0 || col2 === 0) return { status: 'degenerate', oddsRatio: NaN, pValue: 1 };
  const oddsRatio = c > 0 && b > 0 ? (a * d) / (c * b) : Infinity;
  const logWeights = hypergeometricLogWeights(row1, col1, row1 + row2);
  const lo = Math.max(0, row1 - col2);
  const observed = logWeights[a - lo]!;
  const logTotal = logSumExp(logWeights, 0, logWeights.length, () => true);
  let logTail: number;
  if (alternative === 'less') {
    logTail = logSumExp(logWeights, 0, a - lo + 1, () => true);
  } else if (alternative === 'greater') {
    logTail = logSumExp(logWeights, a - lo, logWeights.length, () => true);
  } else {
    const threshold = observed + Math.log1p(relativeTolerance);
    logTail = logSumExp(logWeights, 0, logWeights.length, (w) => w <= threshold);
  }
  return { status: 'ok', oddsRatio, pValue: Math.min(1, Math.exp(logTail - logTotal)) };
}

/** Every cell a non-negative integer (anything else is treated like a degenerate table, never thrown on). */
function isCountTable(table: Table2x2): boolean {
  return table.every((row) => row.every((cell) => Number.isInteger(cell) && cell >= 0));
}

/**
 * Unnormalised log-pmf of X ~ Hypergeometric(total N, col1 successes, row1 draws) over its support
 * [max(0, row1 − (N − col1)), min(row1, col1)], set to 0 at the mode and extended by
 * P(x+1)/P(x) = (row1 − x)(col1 − x) / ((x + 1)(N − row1 − col1 + x + 1)).
 */
function hypergeometricLogWeights(row1: number, col1: number, total: number): Float64Array {
  const lo = Math.max(0, row1 - (total - col1));
  const hi = Math.min(row1, col1);
  const weights = new Float64Array(hi - lo + 1);
  const mode = Math.min(hi, Math.max(lo, Math.floor(((row1 + 1) * (col1 + 1)) / (total + 2))));
  const rest = total - row1 - col1;
  weights[mode - lo] = 0;
  for (let x = mode; x < hi; x++) {
    weights[x + 1 - lo] = weights[x - lo]! + Math.log((row1 - x) * (col1 - x)) - Math.log((x + 1) * (rest + x + 1));
  }
  for (let x = mode; x > lo; x--) {
    // Inverse of the ratio above, stepping from x down to x − 1.
    weights[x - 1 - lo] = weights[x - lo]! + Math.log(x * (rest + x)) - Math.log((row1 - x + 1) * (col1 - x + 1));
  }
  return weights;
}

/** ln Σ exp(w[i]) over i in [from, to) with keep(w[i]); −Infinity when nothing is kept. */
function logSumExp(weights: Float64Array, from: number, to: number, keep: (w: number) => boolean): number {
  let max = -Infinity;
  for (let i = from; i < to; i++) {
    const w = weights[i]!;
    if (keep(w) && w > max) max = w;
  }
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = from; i < to; i++) {
    const w = weights[i]!;
    if (keep(w)) sum += Math.exp(w - max);
  }
  return max + Math.log(sum);
}

/** Result of the 2x2 chi-square test. */
export interface ChiSquare2x2Result {
  status: TestStatus;
  statistic: number;
  pValue: number;
  dof: 1;
  /** Whether Yates' continuity correction was applied. */
  corrected: boolean;
  /** Expected counts row_i·col_j/N under independence. */
  expected: [[number, number], [number, number]];
}

/**
 * Pearson chi-square test of independence on a 2x2 table, optionally with Yates' correction (default on, as scipy):
 * each observed count moves toward its expected count by min(0.5, |O − E|), so it is never over-corrected
 * (docs/statistics.md, "Fixed-horizon tests and their conventions"). A zero margin (some expected count 0) or an
 * invalid cell: statistic NaN, p = 1, status `degenerate`.
 */
export function chiSquare2x2(table: Table2x2, options: { correction?: boolean } = {}): ChiSquare2x2Result {
  const corrected = options.correction ?? true;
  const [[a, b], [c, d]] = table;
  const total = a + b + c + d;
  const rows = [a + b, c + d] as const;
  const cols = [a + c, b + d] as const;
  const expected: [[number, number], [number, number]] = [
    [(rows[0] * cols[0]) / total, (rows[0] * cols[1]) / total],
    [(rows[1] * cols[0]) / total, (rows[1] * cols[1]) / total],
  ];
  if (!isCountTable(table) || rows[0] === 0 || rows[1] === 0 || cols[0] === 0 || cols[1] === 0) {
    return { status: 'degenerate', statistic: NaN, pValue: 1, dof: 1, corrected, expected };
  }
  let statistic = 0;
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 2; j++) {
      const e = expected[i]![j]!;
      let o = table[i]![j]!;
      if (corrected) {
        const gap = e - o;
        o += Math.sign(gap) * Math.min(0.5, Math.abs(gap));
      }
      statistic += ((o - e) * (o - e)) / e;
    }
  }
  return { status: 'ok', statistic, pValue: chiSquareSf(statistic, 1), dof: 1, corrected, expected };
}
