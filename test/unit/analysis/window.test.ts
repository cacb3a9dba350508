// The breakers' recent ring: exact p99 and failure counts over the last N outcomes, before and after the ring wraps.
import { describe, expect, it } from 'vitest';
import { ArmWindow } from '../../../src/analysis/window.js';

/** The reference: the ceil(0.99·n)-th smallest of the last n latencies, by a plain sort. */
function referenceP99(all: readonly number[], n: number): { p99: number; of: number } {
  const last = all.slice(-n);
  if (last.length === 0) return { p99: 0, of: 0 };
  const sorted = [...last].sort((a, b) => a - b);
  return { p99: sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!, of: last.length };
}

/** Deterministic latencies with a heavy tail (a linear congruential generator; no Math.random in tests). */
function latencies(count: number, seed = 7): number[] {
  const out: number[] = [];
  let state = seed;
  for (let i = 0; i < count; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const u = state / 2 ** 31;
    out.push(u < 0.02 ? 200 + u * 1000 : 5 + u * 10);
  }
  return out;
}

describe('recent window of an arm', () => {
  it('gives the exact p99 of the last n latencies as the ring fills and wraps', () => {
    const arm = new ArmWindow(200);
    const seen: number[] = [];
    for (const latency of latencies(1_000)) {
      arm.recent.push(false, latency);
      seen.push(latency);
      if (seen.length % 37 === 0) {
        expect(arm.recent.p99OfLast(200)).toEqual(referenceP99(seen, 200));
        expect(arm.recent.p99OfLast(50)).toEqual(referenceP99(seen, 50));
      }
    }
  });

  it('answers a repeated look from the unchanged ring, and a new outcome changes the answer at once', () => {
    const arm = new ArmWindow(100);
    for (let i = 0; i < 100; i++) arm.recent.push(false, 10);
    expect(arm.recent.p99OfLast(100)).toEqual({ p99: 10, of: 100 });
    expect(arm.recent.p99OfLast(100)).toEqual({ p99: 10, of: 100 });
    // One slow answer is the 100th of 100: the p99 (the 99th) stays; a second one moves it.
    arm.recent.push(false, 900);
    expect(arm.recent.p99OfLast(100)).toEqual({ p99: 10, of: 100 });
    arm.recent.push(false, 800);
    expect(arm.recent.p99OfLast(100)).toEqual({ p99: 800, of: 100 });
    // A different n over the same ring is its own look.
    expect(arm.recent.p99OfLast(2)).toEqual({ p99: 900, of: 2 });
    expect(arm.recent.p99OfLast(100)).toEqual({ p99: 800, of: 100 });
  });

  it('answers zero for an empty ring and counts failures over the last n', () => {
    const arm = new ArmWindow(20);
    expect(arm.recent.p99OfLast(20)).toEqual({ p99: 0, of: 0 });
    for (let i = 0; i < 30; i++) arm.recent.push(i % 3 === 0, 1);
    // The last 20 of 30 are i = 10..29, of which 12, 15, 18, 21, 24, 27 failed.
    expect(arm.recent.failuresInLast(20)).toEqual({ count: 6, of: 20 });
    expect(arm.recent.failuresInLast(4)).toEqual({ count: 1, of: 4 });
  });
});
