// Streaming sufficient statistics (counts, Welford moments, co-moments, paired outcomes, category counts): O(1) updates, associative merge, plain JSON.
//
// Every accumulator is a plain object of finite numbers, so JSON.stringify/parse round-trips it and a later
// stage can sum replicas (docs/statistics.md, "Streaming accumulators"). `push*` mutates in place (the hot loop
// must not allocate); `merge*` is pure and associative, with the empty accumulator as identity. `parse*` validates
// untrusted JSON.

/** Event counts of a Bernoulli metric (e.g. errors): `events` out of `n`. */
export interface Counts {
  n: number;
  events: number;
}

/** Welford running moments: count, mean and M2 = Σ(x − mean)². */
export interface Moments {
  n: number;
  mean: number;
  m2: number;
}

/** Running co-moments of a covariate X and an outcome Y (CUPED): means, M2 of each and C = Σ(x − x̄)(y − ȳ). */
export interface CoMoments {
  n: number;
  meanX: number;
  meanY: number;
  m2X: number;
  m2Y: number;
  cXY: number;
}

/**
 * Paired correctness of champion and challenger on the same requests, in McNemar's layout
 * (docs/statistics.md, "Fixed-horizon tests and their conventions"):
 * a = both correct, b = champion correct & challenger wrong, c = champion wrong & challenger correct,
 * d = both wrong; `disagreements` counts requests where the two predictions differ (no label needed).
 */
export interface PairedOutcomes {
  n: number;
  a: number;
  b: number;
  c: number;
  d: number;
  disagreements: number;
}

// --- Counts ---------------------------------------------------------------------------------------

/** An empty Counts accumulator. */
export function createCounts(): Counts {
  return { n: 0, events: 0 };
}

/** Adds one observation (in place). */
export function pushCount(counts: Counts, isEvent: boolean): void {
  counts.n += 1;
  if (isEvent) counts.events += 1;
}

/** Sum of two Counts. */
export function mergeCounts(left: Counts, right: Counts): Counts {
  return { n: left.n + right.n, events: left.events + right.events };
}

/** events/n, NaN when empty. */
export function countsRate(counts: Counts): number {
  return counts.n > 0 ? counts.events / counts.n : NaN;
}

// --- Welford moments -------------------------------------------------------------------------------

/** An empty Moments accumulator. */
export function createMoments(): Moments {
  return { n: 0, mean: 0, m2: 0 };
}

/** Welford's update with one value x (in place): mean += δ/n, M2 += δ·(x − mean_new). */
export function pushMoment(moments: Moments, x: number): void {
  const n = moments.n + 1;
  const delta = x - moments.mean;
  const mean = moments.mean + delta / n;
  moments.m2 += delta * (x - mean);
  moments.mean = mean;
  moments.n = n;
}

/** Chan et al. parallel combination: δ = mean_R − mean_L, M2 = M2_L + M2_R + δ²·n_L·n_R/n. */
export function mergeMoments(left: Moments, right: Moments): Moments {
  if (left.n === 0) return { n: right.n, mean: right.mean, m2: right.m2 };
  if (right.n === 0) return { n: left.n, mean: left.mean, m2: left.m2 };
  const n = left.n + right.n;
  const delta = right.mean - left.mean;
  return {
    n,
    mean: left.mean + (delta * right.n) / n,
    m2: left.m2 + right.m2 + ((delta * delta * left.n) / n) * right.n,
  };
}

/** Sample variance M2/(n − 1) (ddof = 1); NaN when n < 2. */
export function momentsVariance(moments: Moments): number {
  return moments.n > 1 ? moments.m2 / (moments.n - 1) : NaN;
}

/** Moments of a whole array (Welford). */
export function momentsOf(values: ArrayLike<number>): Moments {
  const moments = createMoments();
  for (let i = 0; i < values.length; i++) pushMoment(moments, values[i]!);
  return moments;
}

/**
 * Moments from power sums (n, Σx, Σx²), for sources that only keep sums. M2 = Σx² − (Σx)²/n loses about
 * log10(mean²/var) digits to cancellation: prefer Welford (docs/statistics.md, "Streaming accumulators").
 */
export function momentsFromSums(n: number, sum: number, sumOfSquares: number): Moments {
  if (n === 0) return createMoments();
  const mean = sum / n;
  return { n, mean, m2: Math.max(0, sumOfSquares - sum * mean) };
}

// --- Co-moments ------------------------------------------------------------------------------------

/** An empty CoMoments accumulator. */
export function createCoMoments(): CoMoments {
  return { n: 0, meanX: 0, meanY: 0, m2X: 0, m2Y: 0, cXY: 0 };
}

/** Welford-style update of the co-moments with one (x, y) pair (in place). */
export function pushCoMoment(moments: CoMoments, x: number, y: number): void {
  const n = moments.n + 1;
  const dx = x - moments.meanX;
  const dy = y - moments.meanY;
  const meanX = moments.meanX + dx / n;
  const meanY = moments.meanY + dy / n;
  moments.m2X += dx * (x - meanX);
  moments.m2Y += dy * (y - meanY);
  moments.cXY += dx * (y - meanY);
  moments.meanX = meanX;
  moments.meanY = meanY;
  moments.n = n;
}

/** Parallel combination of co-moments (the cross term gains δx·δy·n_L·n_R/n). */
export function mergeCoMoments(left: CoMoments, right: CoMoments): CoMoments {
  if (left.n === 0) return { ...right };
  if (right.n === 0) return { ...left };
  const n = left.n + right.n;
  const dx = right.meanX - left.meanX;
  const dy = right.meanY - left.meanY;
  const weight = (left.n / n) * right.n;
  return {
    n,
    meanX: left.meanX + (dx * right.n) / n,
    meanY: left.meanY + (dy * right.n) / n,
    m2X: left.m2X + right.m2X + dx * dx * weight,
    m2Y: left.m2Y + right.m2Y + dy * dy * weight,
    cXY: left.cXY + right.cXY + dx * dy * weight,
  };
}

// --- Paired outcomes (discordant pairs) -------------------------------------------------------------

/** An empty PairedOutcomes accumulator. */
export function createPairedOutcomes(): PairedOutcomes {
  return { n: 0, a: 0, b: 0, c: 0, d: 0, disagreements: 0 };
}

/** Adds one paired request (in place): correctness of each model and whether their predictions differ. */
export function pushPairedOutcome(
  outcomes: PairedOutcomes,
  championCorrect: boolean,
  challengerCorrect: boolean,
  predictionsDiffer: boolean,
): void {
  outcomes.n += 1;
  if (championCorrect) {
    if (challengerCorrect) outcomes.a += 1;
    else outcomes.b += 1;
  } else if (challengerCorrect) outcomes.c += 1;
  else outcomes.d += 1;
  if (predictionsDiffer) outcomes.disagreements += 1;
}

/** Cell-wise sum of two PairedOutcomes. */
export function mergePairedOutcomes(left: PairedOutcomes, right: PairedOutcomes): PairedOutcomes {
  return {
    n: left.n + right.n,
    a: left.a + right.a,
    b: left.b + right.b,
    c: left.c + right.c,
    d: left.d + right.d,
    disagreements: left.disagreements + right.disagreements,
  };
}

/** Accuracy of each model and the disagreement rate (NaN when empty). */
export function pairedOutcomeRates(outcomes: PairedOutcomes): {
  championAccuracy: number;
  challengerAccuracy: number;
  disagreementRate: number;
} {
  const n = outcomes.n;
  return {
    championAccuracy: n > 0 ? (outcomes.a + outcomes.b) / n : NaN,
    challengerAccuracy: n > 0 ? (outcomes.a + outcomes.c) / n : NaN,
    disagreementRate: n > 0 ? outcomes.disagreements / n : NaN,
  };
}

// --- Category counts (traffic split, SRM) --------------------------------------------------------------

/** Requests per arm, in a fixed arm order. */
export type CategoryCounts = number[];

/** k zero counts. */
export function createCategoryCounts(k: number): CategoryCounts {
  return new Array<number>(k).fill(0);
}

/** Adds one observation in category `index` (in place); out-of-range indexes are ignored, never thrown on. */
export function pushCategory(counts: CategoryCounts, index: number): void {
  if (index >= 0 && index < counts.length) counts[index] = counts[index]! + 1;
}

/** Element-wise sum; the shorter vector is treated as zero-padded. */
export function mergeCategoryCounts(left: CategoryCounts, right: CategoryCounts): CategoryCounts {
  const length = Math.max(left.length, right.length);
  const merged = new Array<number>(length);
  for (let i = 0; i < length; i++) merged[i] = (left[i] ?? 0) + (right[i] ?? 0);
  return merged;
}

// --- Parsing untrusted JSON ----------------------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Counts from parsed JSON, or null when the shape or values are invalid. */
export function parseCounts(value: unknown): Counts | null {
  if (!isRecord(value) || !isCount(value.n) || !isCount(value.events) || value.events > value.n) return null;
  return { n: value.n, events: value.events };
}

/** Moments from parsed JSON, or null when the shape or values are invalid. */
export function parseMoments(value: unknown): Moments | null {
  if (!isRecord(value) || !isCount(value.n) || !isFiniteNumber(value.mean) || !isFiniteNumber(value.m2) || value.m2 < 0) return null;
  return { n: value.n, mean: value.mean, m2: value.m2 };
}

/** CoMoments from parsed JSON, or null when the shape or values are invalid. */
export function parseCoMoments(value: unknown): CoMoments | null {
  if (!isRecord(value) || !isCount(value.n)) return null;
  const { meanX, meanY, m2X, m2Y, cXY } = value;
  if (!isFiniteNumber(meanX) || !isFiniteNumber(meanY) || !isFiniteNumber(m2X) || !isFiniteNumber(m2Y) || !isFiniteNumber(cXY)) return null;
  if (m2X < 0 || m2Y < 0) return null;
  return { n: value.n, meanX, meanY, m2X, m2Y, cXY };
}

/** PairedOutcomes from parsed JSON, or null when the shape or values are invalid (cells must sum to n). */
export function parsePairedOutcomes(value: unknown): PairedOutcomes | null {
  if (!isRecord(value)) return null;
  const { n, a, b, c, d, disagreements } = value;
  if (!isCount(n) || !isCount(a) || !isCount(b) || !isCount(c) || !isCount(d) || !isCount(disagreements)) return null;
  if (a + b + c + d !== n || disagreements > n) return null;
  return { n, a, b, c, d, disagreements };
}

/** CategoryCounts from parsed JSON, or null when it is not an array of non-negative integers. */
export function parseCategoryCounts(value: unknown): CategoryCounts | null {
  if (!Array.isArray(value) || !value.every(isCount)) return null;
  return value.slice() as number[];
}
