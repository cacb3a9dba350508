// The live window: unit counting for the sample-ratio check, refused latency samples, the tail threshold and client faults.
import { describe, expect, it } from 'vitest';
import { defaultGuardrails, type GuardrailPolicy } from '../../../src/config/policy-schema.js';
import { LiveWindows, RouteWindow } from '../../../src/analysis/window.js';
import { quickSelect } from '../../../src/analysis/stats/index.js';
import type { ServedObservation } from '../../../src/record/port.js';

const policy: GuardrailPolicy = { ...defaultGuardrails, latency: { ...defaultGuardrails.latency, baselineRequests: 20, ratio: 2, p99CeilingMs: 100 } };

function served(overrides: Partial<ServedObservation>): ServedObservation {
  return {
    route: 'iris', requestId: 'r', joinId: 0, stickyKey: null, variant: 'v2', role: 'challenger', mode: 'canary', status: 200, errorKind: null, latencyMs: 5,
    fellBack: false, fallbackFor: null, startedAt: 0, mirrored: 0, requestBody: null, responseBody: null, responseTruncated: false, contentType: null,
    ...overrides,
  };
}

describe('route window', () => {
  it('counts a sticky key once per sample-ratio epoch and every unkeyed request as its own unit', () => {
    const window = new RouteWindow(policy, 0);
    const arm = window.arm('challenger', 'v2');
    for (let i = 0; i < 50; i++) window.record(arm, false, 5, false, `user-${i % 10}`, i);
    expect(arm.totals.units).toBe(10);
    expect(arm.totals.errors.n).toBe(50);
    for (let i = 0; i < 7; i++) window.record(arm, false, 5, false, null, i);
    expect(arm.totals.units).toBe(17);
    window.newSplitEpoch('b');
    for (let i = 0; i < 50; i++) window.record(arm, false, 5, false, `user-${i % 10}`, i);
    expect(arm.totals.units).toBe(27);
  });

  it('refuses NaN, Infinity and negative latencies, counts them, and still counts the request', () => {
    const window = new RouteWindow(policy, 0);
    const arm = window.arm('challenger', 'v2');
    for (const latency of [Number.NaN, Infinity, -1, 4, 6]) window.record(arm, latency === 6, latency, false, null, 0);
    expect(arm.totals.rejectedLatencies).toBe(3);
    expect(arm.totals.errors).toEqual({ n: 5, events: 1 });
    expect(arm.totals.logLatency.n).toBe(2);
    expect(Number.isFinite(arm.totals.logLatency.mean) && Number.isFinite(arm.totals.logLatency.m2)).toBe(true);
  });

  it('reads the tail threshold from the champion\'s recent requests, then counts each arm over it and over it divided by the ratio', () => {
    const window = new RouteWindow(policy, 0);
    for (let i = 1; i <= 19; i++) window.record(window.champion, false, 1000 + i, true, null, i);
    window.refreshThreshold();
    expect(window.p95ThresholdMs).toBeNull(); // 19 of the 20 recent requests it reads from
    for (let i = 1; i <= 20; i++) window.record(window.champion, false, i, true, null, i);
    window.refreshThreshold();
    expect(window.p95ThresholdMs).toBe(19);
    expect(window.scaledThresholdMs).toBe(9.5);
    const arm = window.arm('challenger', 'v2');
    for (const latency of [5, 10, 20, 30, 200]) window.record(arm, false, latency, false, null, 0);
    expect(arm.totals.exceedance).toEqual({ n: 5, events: 3 });
    expect(arm.totals.scaledExceedance).toEqual({ n: 5, events: 4 });
    expect(arm.totals.overCeiling).toEqual({ n: 5, events: 1 });
    // The threshold follows the champion: after a quarter of the ring is new (and slower), it is read again.
    for (let i = 0; i < 5; i++) window.record(window.champion, false, 500, true, null, 0);
    window.refreshThreshold();
    expect(window.p95ThresholdMs).toBe(500);
  });
});

describe('live windows', () => {
  it('never counts a client fault, a refusal for want of connections or a fallback answer, and counts a fallen-back challenger request as a failure', () => {
    const windows = new LiveWindows(() => 0);
    windows.setPolicy('iris', policy);
    windows.served(served({ errorKind: 'client_abort' }));
    windows.served(served({ errorKind: 'body_too_large', status: 0 }));
    windows.served(served({ errorKind: 'client_timeout', status: 0 }));
    windows.served(served({ errorKind: 'busy', status: 503 })); // the route's connections were all taken
    windows.served(served({ role: 'champion', variant: 'v1', mode: 'champion', fallbackFor: 'v2' }));
    expect(windows.window('iris').challengers.size).toBe(0);
    expect(windows.window('iris').champion.totals.errors.n).toBe(0);
    windows.served(served({ fellBack: true, status: 503, errorKind: 'status_5xx' }));
    windows.served(served({}));
    expect(windows.window('iris').challengers.get('v2')!.totals.errors).toEqual({ n: 2, events: 1 });
  });
});

describe('split epochs (strata)', () => {
  it('keeps each epoch\'s arm totals apart, names them by the split, and merges the oldest beyond the bound', () => {
    const window = new RouteWindow(policy, 0);
    const arm = window.arm('challenger', 'v2');
    window.newSplitEpoch('v2|10');
    window.record(window.champion, false, 5, true, null, 0);
    window.record(arm, true, 5, false, null, 0);
    window.newSplitEpoch('v2|50');
    window.record(arm, false, 5, false, null, 0);
    const strata = window.strata();
    expect(strata.map((s) => s.key)).toEqual(['v2|10', 'v2|50']);
    expect(strata[0]!.arms.get('challenger:v2')!.errors).toEqual({ n: 1, events: 1 });
    expect(strata[1]!.arms.get('challenger:v2')!.errors).toEqual({ n: 1, events: 0 });
    expect(strata[1]!.arms.has('champion')).toBe(false);
    expect(arm.totals.errors).toEqual({ n: 2, events: 1 });
    for (let i = 0; i < 40; i++) {
      window.newSplitEpoch(`e${i}`);
      window.record(arm, false, 5, false, null, 0);
    }
    const bounded = window.strata();
    expect(bounded.length).toBeLessThanOrEqual(16);
    expect(bounded.reduce((sum, s) => sum + (s.arms.get('challenger:v2')?.errors.n ?? 0), 0)).toBe(42);
  });
});

describe('quickSelect (the tail threshold\'s selection)', () => {
  it('returns the k-th smallest value, as a sort would, for ties, runs and random data', () => {
    const random = (() => {
      let state = 11;
      return () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    })();
    const cases = [
      Array.from({ length: 1000 }, () => random() * 100),
      Array.from({ length: 1000 }, () => Math.floor(random() * 5)),
      Array.from({ length: 999 }, (_, i) => i),
      Array.from({ length: 500 }, (_, i) => 500 - i),
      [7],
    ];
    for (const values of cases) {
      const sorted = [...values].sort((a, b) => a - b);
      for (const k of [0, Math.floor(values.length / 2), Math.ceil(0.95 * values.length) - 1, values.length - 1]) {
        expect(quickSelect(Float64Array.from(values), k)).toBe(sorted[k]);
      }
    }
  });
});
