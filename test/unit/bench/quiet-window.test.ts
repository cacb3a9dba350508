// The stall filter of the bench: bins marked by the companion alone, padded, and both series kept over the same bins.
import { describe, expect, it } from 'vitest';
import { quietWindow } from '../../../bench/lib/quiet-window.js';

// 1,000 req/s with 10 ms bins: samples 10k..10k+9 fall in bin k.
const options = { rate: 1000, binMs: 10, stallMs: 1, padBins: 1 };

function series(n: number, value: number): Float64Array {
  return new Float64Array(n).fill(value);
}

describe('quietWindow', () => {
  it('keeps every sample when the companion never stalls', () => {
    const target = Float64Array.from({ length: 100 }, (_, i) => 3 - i / 100);
    const result = quietWindow(target, series(100, 0.3), options);
    expect(result).toMatchObject({ bins: 10, stalledBins: 0, excludedShare: 0 });
    expect(result.target).toHaveLength(100);
    // Ascending, so percentiles can be read off directly.
    expect(result.target[0]).toBeCloseTo(2.01);
    expect(result.target[99]).toBe(3);
  });

  it('leaves out a stalled bin and one bin on each side, in both series', () => {
    const companion = series(100, 0.3);
    companion[45] = 4; // bin 4 stalls: bins 3, 4 and 5 go
    const target = series(100, 0.5);
    target[45] = 9;
    target[35] = 8; // bin 3, next to the stall: left out too
    target[75] = 7; // bin 7, quiet: kept although the target alone was slow
    const result = quietWindow(target, companion, options);
    expect(result).toMatchObject({ bins: 10, stalledBins: 1 });
    expect(result.excludedShare).toBeCloseTo(0.3);
    expect(result.target).toHaveLength(70);
    expect(result.companion).toHaveLength(70);
    expect(result.target[69]).toBe(7);
    expect(result.companion[69]).toBe(0.3);
  });

  it('treats an unanswered companion request as a stall and drops unanswered target requests from the kept bins', () => {
    const companion = series(100, 0.3);
    companion[0] = Number.NaN; // bin 0 (and bin 1 as padding)
    const target = series(100, 0.5);
    target[99] = Number.NaN;
    const result = quietWindow(target, companion, options);
    expect(result.stalledBins).toBe(1);
    expect(result.excludedShare).toBeCloseTo(0.2);
    expect(result.target).toHaveLength(79);
    expect(result.companion).toHaveLength(80);
  });

  it('does not pad past either end and counts overlapping padding once', () => {
    const companion = series(100, 0.3);
    companion[95] = 2; // bin 9 (last): bins 8, 9
    companion[85] = 2; // bin 8: bins 7, 8, 9
    const result = quietWindow(series(100, 0.5), companion, options);
    expect(result.stalledBins).toBe(2);
    expect(result.excludedShare).toBeCloseTo(0.3);
  });

  it('rejects series of different lengths and a rate of zero', () => {
    expect(() => quietWindow(series(3, 1), series(4, 1), options)).toThrow(/differ in length/);
    expect(() => quietWindow(series(3, 1), series(3, 1), { ...options, rate: 0 })).toThrow(/positive/);
  });
});
