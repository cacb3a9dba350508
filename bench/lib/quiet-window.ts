// Latency over the moments the machine was not stalled: a companion series sent on the same schedule marks the stalls.

/** How stalls are found in the companion series (the direct upstream, sent at the same due times as the target). */
export interface QuietWindowOptions {
  /** Arrivals per second of the shared schedule: sample i was due at i / rate seconds. */
  rate: number;
  /** Width of a time bin; a bin is kept or left out as a whole. */
  binMs: number;
  /** A companion answer slower than this (or missing) marks its bin as stalled. */
  stallMs: number;
  /** Bins left out on each side of a stalled one, for the queue that drains after a stall. */
  padBins: number;
}

/** The samples of both series that fell in quiet bins, ascending, and how much of the run was left out. */
export interface QuietWindow {
  target: Float64Array;
  companion: Float64Array;
  bins: number;
  stalledBins: number;
  /** Share of bins left out (stalled or next to a stalled one), 0..1. */
  excludedShare: number;
}

/**
 * Keeps the samples due in bins where every companion answer came back within `stallMs`, and leaves out the rest.
 *
 * The bins are chosen by the companion only, so the target's own slow answers are never left out: a stall that hits
 * only the target's process still counts against it. The companion's kept p99 is capped by `stallMs` by construction,
 * so the difference target minus companion errs on the high side.
 */
export function quietWindow(targetMs: ArrayLike<number>, companionMs: ArrayLike<number>, options: QuietWindowOptions): QuietWindow {
  if (targetMs.length !== companionMs.length) throw new Error(`quietWindow: the series differ in length (${targetMs.length} and ${companionMs.length})`);
  if (!(options.rate > 0) || !(options.binMs > 0)) throw new Error('quietWindow: rate and binMs must be positive');
  const n = targetMs.length;
  const binOf = (i: number) => Math.floor((i * 1000) / options.rate / options.binMs);
  const bins = n === 0 ? 0 : binOf(n - 1) + 1;
  const stalled = new Uint8Array(bins);
  for (let i = 0; i < n; i++) {
    const c = companionMs[i] as number;
    if (Number.isNaN(c) || c > options.stallMs) stalled[binOf(i)] = 1;
  }
  const excluded = new Uint8Array(bins);
  let stalledBins = 0;
  for (let b = 0; b < bins; b++) {
    if (stalled[b] === 0) continue;
    stalledBins++;
    for (let k = Math.max(0, b - options.padBins); k <= Math.min(bins - 1, b + options.padBins); k++) excluded[k] = 1;
  }
  const target: number[] = [];
  const companion: number[] = [];
  for (let i = 0; i < n; i++) {
    if (excluded[binOf(i)] === 1) continue;
    const t = targetMs[i] as number;
    if (!Number.isNaN(t)) target.push(t);
    companion.push(companionMs[i] as number);
  }
  let excludedBins = 0;
  for (let b = 0; b < bins; b++) excludedBins += excluded[b] as number;
  return {
    target: Float64Array.from(target).sort(),
    companion: Float64Array.from(companion).sort(),
    bins,
    stalledBins,
    excludedShare: bins === 0 ? 0 : excludedBins / bins,
  };
}
