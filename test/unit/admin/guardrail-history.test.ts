// The status page's interval history: bounded per route, evenly thinned as an experiment grows, reset by a new experiment, breach moments kept.
import { describe, expect, it } from 'vitest';
import { GuardrailHistory, HISTORY_CAPACITY } from '../../../src/admin/guardrail-history.js';
import type { RouteTick } from '../../../src/control/route-tick.js';
import type { GuardrailVerdict } from '../../../src/control/guardrails.js';

function verdict(name: GuardrailVerdict['name'], n: number, state: GuardrailVerdict['state'], width: number | null): GuardrailVerdict {
  return {
    name, kind: name.endsWith('ceiling') ? 'breaker' : 'statistical', state, nChampion: n, nChallenger: n, estimate: 0.001, threshold: 0.01, pValue: null,
    csLower: width === null ? null : -width, csUpper: width === null ? null : width, alpha: 0.045, reason: '',
  };
}

function tick(at: number, n: number, state: GuardrailVerdict['state'] = 'healthy', experiment = 1): RouteTick {
  return { route: 'iris', experiment, at, phase: state === 'breach' ? 'rolled_back' : 'healthy', challenger: 'v2', servedPercent: 10, step: null, verdicts: [verdict('error_ceiling', n, state === 'breach' ? 'breach' : 'healthy', null), verdict('error_rate', n, state, n < 50 ? null : 1 / Math.sqrt(n))] };
}

describe('GuardrailHistory', () => {
  it('keeps at most the capacity, thinning evenly so the whole experiment stays in view', () => {
    const history = new GuardrailHistory();
    for (let i = 0; i < 10_000; i++) history.record(tick(1_000_000 + i * 250, 10 + i));
    const view = history.view('iris');
    expect(view.t.length).toBeLessThanOrEqual(HISTORY_CAPACITY);
    expect(view.t.length).toBeGreaterThan(HISTORY_CAPACITY / 2);
    expect(view.t[0]).toBe(1_000_000);
    expect(view.since).toBe(1_000_000);
    expect(Math.log2(view.stride) % 1).toBe(0);
    const gaps = new Set(view.t.slice(1).map((t, i) => t - view.t[i]!));
    expect([...gaps]).toEqual([250 * view.stride]);
    // The band narrows as evidence comes in; before minRequests there is none (null, not 0).
    const band = view.guardrails.find((g) => g.name === 'error_rate')!;
    expect(band.lower[0]).toBeNull();
    const last = band.upper.at(-1)!;
    expect(last).toBeGreaterThan(0);
    expect(last).toBeLessThan(band.upper.find((u) => u !== null)!);
    expect(view.guardrails.map((g) => g.name)).toEqual(['error_ceiling', 'error_rate']);
  });

  it('marks each turn to breach once, and starts afresh when a new experiment begins', () => {
    const history = new GuardrailHistory();
    history.record(tick(1000, 100));
    history.record(tick(1250, 120, 'breach'));
    history.record(tick(1500, 130, 'breach'));
    let view = history.view('iris');
    expect(view.breaches).toEqual([
      { guardrail: 'error_ceiling', at: 1250, estimate: 0.001, threshold: 0.01 },
      { guardrail: 'error_rate', at: 1250, estimate: 0.001, threshold: 0.01 },
    ]);
    expect(view.phase).toEqual(['healthy', 'rolled_back', 'rolled_back']);
    // Fewer requests within one experiment (a replica left the pool) is not a new experiment.
    history.record(tick(1750, 90, 'breach'));
    expect(history.view('iris').t).toEqual([1000, 1250, 1500, 1750]);
    history.record(tick(2000, 5, 'healthy', 2));
    view = history.view('iris');
    expect(view.t).toEqual([2000]);
    expect(view.breaches).toEqual([]);
  });

  it('takes no ring for a route without requests, keeps its latest tick for the overview, and forgets removed routes', () => {
    const history = new GuardrailHistory();
    history.record(tick(1000, 0, 'collecting'));
    expect(history.view('iris').t).toEqual([]);
    expect(history.latest('iris')?.guardrails.map((g) => g.state)).toEqual(['healthy', 'collecting']);
    history.retain(new Set(['other']));
    expect(history.latest('iris')).toBeUndefined();
  });
});
