// Wilcoxon signed-rank: the exact distribution over the actual ranks (ties, zeros) against enumeration and scipy, and how `auto` picks a method.
import { describe, expect, it } from 'vitest';
import { wilcoxonSignedRank, type Alternative, type WilcoxonOptions } from '../../../src/analysis/stats/index.js';

type ZeroMethod = NonNullable<WilcoxonOptions['zeroMethod']>;
const zeroMethods: ZeroMethod[] = ['wilcox', 'pratt', 'zsplit'];
const alternatives: Alternative[] = ['two-sided', 'greater', 'less'];

/**
 * The p-value by definition, written independently of the engine: rank |d| by counting (average rank for ties;
 * zeros ranked too for `pratt`/`zsplit`), then flip the sign of every nonzero difference in all 2^m ways and count
 * the outcomes of R+ at least / at most as extreme. Ranks are halves, so every comparison here is exact.
 */
function enumeratedPValue(d: number[], zeroMethod: ZeroMethod, alternative: Alternative): number {
  const ranked = zeroMethod === 'wilcox' ? d.filter((v) => v !== 0) : d;
  const rankOf = (v: number): number => {
    const below = ranked.filter((u) => Math.abs(u) < Math.abs(v)).length;
    const tied = ranked.filter((u) => Math.abs(u) === Math.abs(v)).length;
    return below + (tied + 1) / 2;
  };
  const nonzero = ranked.filter((v) => v !== 0);
  const zeroShare = zeroMethod === 'zsplit' ? ranked.filter((v) => v === 0).reduce<number>((s, v) => s + rankOf(v), 0) / 2 : 0;
  const observed = nonzero.filter((v) => v > 0).reduce((s, v) => s + rankOf(v), 0) + zeroShare;
  let atMost = 0;
  let atLeast = 0;
  const outcomes = 2 ** nonzero.length;
  for (let mask = 0; mask < outcomes; mask++) {
    let rPlus = zeroShare;
    nonzero.forEach((v, i) => {
      if (mask & (1 << i)) rPlus += rankOf(v);
    });
    if (rPlus <= observed) atMost++;
    if (rPlus >= observed) atLeast++;
  }
  if (alternative === 'greater') return atLeast / outcomes;
  if (alternative === 'less') return atMost / outcomes;
  return Math.min(1, (2 * Math.min(atMost, atLeast)) / outcomes);
}

describe('Wilcoxon signed-rank: exact distribution with ties and zeros', () => {
  it('matches a hand count on d = [0, 1, 2, −3], where the zero methods disagree', () => {
    // wilcox: ranks of 1, 2, 3 are 1, 2, 3; R+ = 3. The 8 sign patterns give R+ = 0,1,2,3,3,4,5,6:
    //   P(R+ >= 3) = 5/8, P(R+ <= 3) = 5/8, two-sided min(1, 2·5/8) = 1.
    // pratt: ranks of 0, 1, 2, 3 are 1..4, the zero's rank never counts; R+ = 2 + 3 = 5 over the nonzero ranks
    //   {2, 3, 4}: R+ = 0,2,3,4,5,6,7,9, so P(R+ >= 5) = 4/8, P(R+ <= 5) = 5/8.
    // zsplit: as pratt with half the zero's rank (0.5) added to R+ and to every outcome: the same p-values.
    // scipy 1.17.1 stats.wilcoxon(d, zero_method=…, alternative=…) gives exactly these.
    const expected: Record<ZeroMethod, Record<Alternative, number>> = {
      wilcox: { 'two-sided': 1, greater: 5 / 8, less: 5 / 8 },
      pratt: { 'two-sided': 1, greater: 4 / 8, less: 5 / 8 },
      zsplit: { 'two-sided': 1, greater: 4 / 8, less: 5 / 8 },
    };
    for (const zeroMethod of zeroMethods) {
      for (const alternative of alternatives) {
        const r = wilcoxonSignedRank([0, 1, 2, -3], { zeroMethod, alternative });
        expect(r.method).toBe('exact');
        expect(r.pValue, `${zeroMethod} ${alternative}`).toBe(expected[zeroMethod][alternative]);
      }
    }
    expect(wilcoxonSignedRank([0, 1, 2, -3], { zeroMethod: 'zsplit', alternative: 'greater' }).rPlus).toBe(5.5);
  });

  it('equals the enumeration of all 2^n sign assignments for tied and zero differences, every zero method and alternative', () => {
    const samples: number[][] = [
      [1, 1, -1, 2, 2, -2, 3],
      [0, 0, 1, 1, -1, 2, -2, 2, 3, 0, -3, 3],
      [0, 2.5, -2.5, 2.5, 1, -1, 0, 4, 4, 4, -4, 7, 0.5],
      [-1, -1, -1, -1, 2, 0],
      [3, 3, 3, 3, 3, 3],
      [0, -0.25, 0.25, 0.75, -0.75, 0.75, 1.5, 2, -2, 2, 2, 0, 9],
    ];
    for (const d of samples) {
      for (const zeroMethod of zeroMethods) {
        for (const alternative of alternatives) {
          const expected = enumeratedPValue(d, zeroMethod, alternative);
          for (const method of ['auto', 'exact'] as const) {
            const r = wilcoxonSignedRank(d, { zeroMethod, alternative, method });
            expect(r.method, `${JSON.stringify(d)} ${zeroMethod} ${alternative} ${method}`).toBe('exact');
            expect(r.pValue, `${JSON.stringify(d)} ${zeroMethod} ${alternative} ${method}`).toBe(expected);
          }
        }
      }
    }
  });

  it('agrees with scipy 1.17.1 stats.wilcoxon (method="auto", correction=False) on exact, exhaustive and normal cases', () => {
    // [case, d, zero_method, alternative, scipy p-value, scipy statistic, method scipy used]. Generated with
    // scipy 1.17.1: stats.wilcoxon(np.array(d, float), zero_method=zm, alternative=alt).
    const cases: Array<[string, number[], ZeroMethod, Alternative, number, number, 'exact' | 'approx']> = [
      ['no ties, n=20 (exact table)', [-0.032, -0.73, 1.074, -0.708, 2.414, 1.324, 0.041, 0.971, 2.012, 3.234, -0.523, 1.465, 0.918, 0.12, 1.492, 0.907, 1.476, -0.126, 0.398, 0.795], 'wilcox', 'two-sided', 0.0019855499267578125, 26.0, 'exact'],
      ['no ties, n=51 (normal)', [0.3196, 0.3166, -0.4684, 0.4264, 0.4876, 0.2387, 0.2853, 0.9965, -0.3586, 0.9965, 0.1465, 0.3562, 0.1091, 1.1992, 1.0606, 0.3061, -0.1385, 2.1564, 0.839, -0.8464, 0.2956, 0.1877, 1.0219, 0.0734, -0.4393, 1.6382, -1.6925, -1.1141, -0.2228, -0.2143, 0.1727, 0.2885, 1.2978, -1.2198, 3.2836, 0.9114, -0.4731, -0.2715, -0.1829, -1.9315, 0.7008, -0.8112, -0.2422, -0.796, -0.298, 0.3238, -0.9858, 1.8169, -0.9755, -0.1982, 0.2744], 'wilcox', 'two-sided', 0.23387474482053283, 536.0, 'approx'],
      ['ties, n=13 (exhaustive)', [1, 2, 2, -3, 4, -1, 1, 5, 2, -2, 3, 1, 6], 'wilcox', 'two-sided', 0.063720703125, 18.5, 'exact'],
      ['ties, n=13, greater', [1, 2, 2, -3, 4, -1, 1, 5, 2, -2, 3, 1, 6], 'wilcox', 'greater', 0.0318603515625, 72.5, 'exact'],
      ['ties, n=14 (normal)', [1, 2, 2, -3, 4, -1, 1, 5, 2, -2, 3, 1, 6, -4], 'wilcox', 'two-sided', 0.15555312884727468, 30.0, 'approx'],
      ['two zeros, n=13, wilcox', [0, 2, -3, 4, -1, 5, 6, -7, 8, 9, 10, 0, 11], 'wilcox', 'two-sided', 0.0537109375, 11.0, 'exact'],
      ['two zeros, n=13, wilcox, less', [0, 2, -3, 4, -1, 5, 6, -7, 8, 9, 10, 0, 11], 'wilcox', 'less', 0.97900390625, 55.0, 'exact'],
      ['two zeros, n=13, pratt', [0, 2, -3, 4, -1, 5, 6, -7, 8, 9, 10, 0, 11], 'pratt', 'two-sided', 0.0615234375, 17.0, 'exact'],
      ['two zeros, n=13, pratt, less', [0, 2, -3, 4, -1, 5, 6, -7, 8, 9, 10, 0, 11], 'pratt', 'less', 0.97412109375, 71.0, 'exact'],
      ['two zeros, n=13, zsplit', [0, 2, -3, 4, -1, 5, 6, -7, 8, 9, 10, 0, 11], 'zsplit', 'two-sided', 0.0615234375, 18.5, 'exact'],
      ['two zeros, n=13, zsplit, less', [0, 2, -3, 4, -1, 5, 6, -7, 8, 9, 10, 0, 11], 'zsplit', 'less', 0.97412109375, 72.5, 'exact'],
      ['two zeros, n=14, pratt (normal)', [0, 2, -3, 4, -1, 5, 6, -7, 8, 9, 10, 0, 11, 12], 'pratt', 'two-sided', 0.0323808760718049, 17.0, 'approx'],
      ['ties and zeros, n=12, wilcox', [0, 0, 1, 1, -1, 2, -2, 2, 3, 0, -3, 3], 'wilcox', 'two-sided', 0.4453125, 15.0, 'exact'],
      ['ties and zeros, n=12, pratt', [0, 0, 1, 1, -1, 2, -2, 2, 3, 0, -3, 3], 'pratt', 'two-sided', 0.41015625, 24.0, 'exact'],
      ['ties and zeros, n=12, zsplit', [0, 0, 1, 1, -1, 2, -2, 2, 3, 0, -3, 3], 'zsplit', 'two-sided', 0.41015625, 27.0, 'exact'],
    ];
    for (const [name, d, zeroMethod, alternative, pValue, statistic, method] of cases) {
      const r = wilcoxonSignedRank(d, { zeroMethod, alternative });
      expect(r.method, name).toBe(method);
      expect(r.statistic, name).toBe(statistic);
      expect(Math.abs(r.pValue - pValue), name).toBeLessThanOrEqual(1e-12 + 1e-9 * pValue);
    }
  });

  it('auto counts the zeros towards scipy\'s limits of 13 (ties or zeros) and 50 (none)', () => {
    const tiedAt = (n: number): number[] => Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 1 : -1) * (1 + Math.floor(i / 2)));
    // [1, −1, 2, −2, …]: every |d| appears twice, so every sample has ties.
    expect(wilcoxonSignedRank(tiedAt(13)).method).toBe('exact');
    expect(wilcoxonSignedRank(tiedAt(14)).method).toBe('approx');
    // Twelve distinct nonzero differences and one zero: 13 in all → exact; two zeros → 14 → normal, even though
    // `wilcox` ranks only the twelve.
    const twelve = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? -1 : 1) * (i + 1));
    expect(wilcoxonSignedRank([...twelve, 0]).method).toBe('exact');
    expect(wilcoxonSignedRank([...twelve, 0, 0]).method).toBe('approx');
    const distinct = (n: number): number[] => Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -1 : 1) * (i + 1));
    expect(wilcoxonSignedRank(distinct(50)).method).toBe('exact');
    expect(wilcoxonSignedRank(distinct(51)).method).toBe('approx');
    expect(wilcoxonSignedRank(tiedAt(8), { method: 'approx' }).method).toBe('approx');
  });

  it('explicit exact stays exact beyond 52 ranks (checked against exact integer counts) and falls back above 200', () => {
    // 60 differences with ties: 2^60 sign patterns, more than a double counts exactly.
    const d = Array.from({ length: 60 }, (_, i) => (i % 5 === 0 ? -1 : 1) * (1 + Math.floor(i / 3)));
    const r = wilcoxonSignedRank(d, { method: 'exact' });
    expect(r.method).toBe('exact');
    // Independent reference: the distribution of 2R+ in BigInt counts.
    const abs = d.map(Math.abs);
    const doubled = abs.map((v) => abs.filter((u) => u < v).length * 2 + abs.filter((u) => u === v).length + 1);
    const total = doubled.reduce((s, v) => s + v, 0);
    let counts = new Array<bigint>(total + 1).fill(0n);
    counts[0] = 1n;
    for (const rank of doubled) {
      const next = counts.slice();
      for (let s = rank; s <= total; s++) next[s] = next[s]! + counts[s - rank]!;
      counts = next;
    }
    const observed = doubled.reduce((s, v, i) => s + (d[i]! > 0 ? v : 0), 0);
    let atMost = 0n;
    let atLeast = 0n;
    counts.forEach((c, s) => {
      if (s <= observed) atMost += c;
      if (s >= observed) atLeast += c;
    });
    const smaller = atMost < atLeast ? atMost : atLeast;
    // 2·smaller/2^60 to 17 digits, from the integers.
    const reference = Number((2n * smaller * 10n ** 17n) / 2n ** 60n) / 1e17;
    expect(Math.abs(r.pValue - reference) / reference).toBeLessThan(1e-12);

    const large = Array.from({ length: 201 }, (_, i) => (i % 4 === 0 ? -1 : 1) * (i + 1));
    expect(wilcoxonSignedRank(large, { method: 'exact' }).method).toBe('approx');
    expect(wilcoxonSignedRank(large.slice(0, 200), { method: 'exact' }).method).toBe('exact');
  });
});
