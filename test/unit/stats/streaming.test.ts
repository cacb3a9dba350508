// Unit tests of the streaming accumulators: Welford against two-pass sums, associative merge, JSON round trip, validation.
import { describe, expect, it } from 'vitest';
import {
  createCategoryCounts,
  createCoMoments,
  createCounts,
  createMoments,
  createPairedOutcomes,
  mergeCategoryCounts,
  mergeCoMoments,
  mergeCounts,
  mergeMoments,
  mergePairedOutcomes,
  momentsFromSums,
  momentsOf,
  momentsVariance,
  parseCategoryCounts,
  parseCoMoments,
  parseCounts,
  parseMoments,
  parsePairedOutcomes,
  pushCategory,
  pushCoMoment,
  pushCount,
  pushMoment,
  pushPairedOutcome,
  type CoMoments,
  type Moments,
} from '../../../src/analysis/stats/index.js';
import { createPrng as mulberry32 } from '../../../src/demo/prng.js';

function twoPass(values: number[]): { mean: number; variance: number } {
  const mean = values.reduce((s, x) => s + x, 0) / values.length;
  const variance = values.reduce((s, x) => s + (x - mean) * (x - mean), 0) / (values.length - 1);
  return { mean, variance };
}

describe('Welford moments', () => {
  it('matches a two-pass mean and variance, even with a large offset that ruins sum/sumsq', () => {
    const random = mulberry32(7);
    const values = Array.from({ length: 5000 }, () => 1e9 + random());
    const moments = momentsOf(values);
    const reference = twoPass(values);
    expect(moments.n).toBe(5000);
    expect(Math.abs(moments.mean - reference.mean) / reference.mean).toBeLessThan(1e-14);
    expect(Math.abs(momentsVariance(moments) - reference.variance) / reference.variance).toBeLessThan(1e-6);
    // The textbook sums lose almost everything at this offset: the reason production uses Welford.
    const sum = values.reduce((s, x) => s + x, 0);
    const sumOfSquares = values.reduce((s, x) => s + x * x, 0);
    const fromSums = momentsVariance(momentsFromSums(values.length, sum, sumOfSquares));
    expect(Math.abs(fromSums - reference.variance) / reference.variance).toBeGreaterThan(1e-3);
  });

  it('merges associatively, with the empty accumulator as identity, equal to pushing everything', () => {
    const random = mulberry32(11);
    const chunks = [40, 1, 333, 0, 77].map((size) => Array.from({ length: size }, () => random() * 100 - 20));
    const parts = chunks.map((chunk) => momentsOf(chunk));
    const leftFold = parts.reduce((acc, m) => mergeMoments(acc, m), createMoments());
    const rightFold = parts.reduceRight((acc, m) => mergeMoments(m, acc), createMoments());
    const whole = momentsOf(chunks.flat());
    for (const merged of [leftFold, rightFold]) {
      expect(merged.n).toBe(whole.n);
      expect(merged.mean).toBeCloseTo(whole.mean, 12);
      expect(merged.m2 / whole.m2).toBeCloseTo(1, 12);
    }
    const one = parts[0]!;
    expect(mergeMoments(one, createMoments())).toEqual(one);
    expect(mergeMoments(createMoments(), one)).toEqual(one);
  });

  it('round-trips through JSON and rejects malformed input', () => {
    const moments = momentsOf([1, 2, 3.5]);
    expect(parseMoments(JSON.parse(JSON.stringify(moments)))).toEqual(moments);
    expect(parseMoments({ n: 2, mean: 1 })).toBeNull();
    expect(parseMoments({ n: -1, mean: 1, m2: 0 })).toBeNull();
    expect(parseMoments({ n: 2, mean: 1, m2: -3 })).toBeNull();
    expect(parseMoments('{"n":1}')).toBeNull();
    expect(parseMoments(null)).toBeNull();
  });

  it('reports NaN variance below two observations (never a made-up number)', () => {
    const moments = createMoments();
    expect(momentsVariance(moments)).toBeNaN();
    pushMoment(moments, 4);
    expect(momentsVariance(moments)).toBeNaN();
    pushMoment(moments, 6);
    expect(momentsVariance(moments)).toBe(2);
  });
});

describe('co-moments (CUPED inputs)', () => {
  it('merge equals pushing all pairs', () => {
    const random = mulberry32(3);
    const pairs = Array.from({ length: 500 }, () => {
      const x = random() * 10;
      return [x, 2 * x + random()] as const;
    });
    const left = createCoMoments();
    const right = createCoMoments();
    const all = createCoMoments();
    pairs.forEach(([x, y], i) => {
      pushCoMoment(i < 123 ? left : right, x, y);
      pushCoMoment(all, x, y);
    });
    const merged: CoMoments = mergeCoMoments(left, right);
    expect(merged.n).toBe(all.n);
    for (const key of ['meanX', 'meanY', 'm2X', 'm2Y', 'cXY'] as const) expect(merged[key] / all[key]).toBeCloseTo(1, 12);
    expect(parseCoMoments(JSON.parse(JSON.stringify(merged)))).toEqual(merged);
    expect(parseCoMoments({ ...merged, cXY: 'x' })).toBeNull();
  });
});

describe('counts, paired outcomes and category counts', () => {
  it('count events and merge by summing', () => {
    const a = createCounts();
    const b = createCounts();
    [true, false, false].forEach((e) => pushCount(a, e));
    [true, true].forEach((e) => pushCount(b, e));
    expect(mergeCounts(a, b)).toEqual({ n: 5, events: 3 });
    expect(parseCounts({ n: 5, events: 3 })).toEqual({ n: 5, events: 3 });
    expect(parseCounts({ n: 2, events: 3 })).toBeNull();
  });

  it('classify paired requests into the McNemar cells', () => {
    const outcomes = createPairedOutcomes();
    pushPairedOutcome(outcomes, true, true, false);
    pushPairedOutcome(outcomes, true, false, true);
    pushPairedOutcome(outcomes, false, true, true);
    pushPairedOutcome(outcomes, false, false, true);
    expect(outcomes).toEqual({ n: 4, a: 1, b: 1, c: 1, d: 1, disagreements: 3 });
    const doubled = mergePairedOutcomes(outcomes, outcomes);
    expect(doubled).toEqual({ n: 8, a: 2, b: 2, c: 2, d: 2, disagreements: 6 });
    expect(parsePairedOutcomes(JSON.parse(JSON.stringify(doubled)))).toEqual(doubled);
    expect(parsePairedOutcomes({ ...doubled, n: 9 })).toBeNull();
  });

  it('count arms, ignore out-of-range arms without throwing, and merge vectors of different length', () => {
    const counts = createCategoryCounts(2);
    pushCategory(counts, 0);
    pushCategory(counts, 1);
    pushCategory(counts, 1);
    pushCategory(counts, 7);
    pushCategory(counts, -1);
    expect(counts).toEqual([1, 2]);
    expect(mergeCategoryCounts(counts, [0, 0, 5])).toEqual([1, 2, 5]);
    expect(parseCategoryCounts([1, 2])).toEqual([1, 2]);
    expect(parseCategoryCounts([1, 2.5])).toBeNull();
  });

  it('keeps accumulators as plain JSON (no class instances, no hidden state)', () => {
    const moments: Moments = momentsOf([1, 2]);
    expect(Object.getPrototypeOf(moments)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify({ moments, counts: createCounts() }))).toEqual({ moments, counts: { n: 0, events: 0 } });
  });
});
