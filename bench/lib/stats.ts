// Order statistics for bench results: exact percentiles of sorted samples and median/min/max of repetitions.

/** Exact percentile (nearest rank) of ascending-sorted samples; NaN when there are none. */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
  return sorted[rank] as number;
}

/** Median, min and max of finite values; fields are NaN when none are finite. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Summarises repetitions: the median (mean of the middle two for even counts) with min and max. */
export function spread(values: readonly number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = finite.length;
  if (n === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? (finite[mid] as number) : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
  return { median, min: finite[0] as number, max: finite[n - 1] as number, n };
}
