// Shadow gate and A/B winner reports on synthetic windows and outcome counts, and their selection per experiment.
import { describe, expect, it } from 'vitest';
import { defaultGuardrails } from '../../../src/config/policy-schema.js';
import { RouteWindow } from '../../../src/analysis/window.js';
import { abWinner, countsBaseline, emptyBaseline, experimentReports, shadowGate, type ExperimentCounts } from '../../../src/control/experiment-report.js';
import { createPrng } from '../../../src/demo/prng.js';

function filledWindow(shadowLatencyMs: number, shadowErrorRate: number): RouteWindow {
  const random = createPrng(9);
  const window = new RouteWindow(defaultGuardrails, 0);
  const shadow = window.arm('shadow', 'v2');
  for (let i = 0; i < 2000; i++) {
    if (i % 100 === 0) window.refreshThreshold(); // the controller does this every tick
    window.record(window.champion, false, 5 * (0.8 + 0.4 * random()), true, null, i);
    window.record(shadow, random() < shadowErrorRate, shadowLatencyMs * (0.8 + 0.4 * random()), false, null, i);
  }
  return window;
}

describe('shadowGate', () => {
  it('is ready when the models agree well and the shadow is as fast and reliable as the champion', () => {
    const gate = shadowGate(filledWindow(5, 0), 'v2', { agree: 1980, parsed: 2000 }, defaultGuardrails);
    expect(gate.agreement.state).toBe('within');
    expect(gate.ready).toBe(true);
  });

  it('is not ready when the models disagree too often, or the shadow is slow', () => {
    expect(shadowGate(filledWindow(5, 0), 'v2', { agree: 1800, parsed: 2000 }, defaultGuardrails)).toMatchObject({ ready: false, agreement: { state: 'not_yet' } });
    const slow = shadowGate(filledWindow(50, 0), 'v2', { agree: 2000, parsed: 2000 }, defaultGuardrails);
    expect(slow.ready).toBe(false);
    expect(slow.verdicts.find((v) => v.name === 'latency_log_mean')?.state).toBe('breach');
  });

  it('collects until enough pairs are parsed', () => {
    expect(shadowGate(filledWindow(5, 0), 'v2', { agree: 10, parsed: 10 }, defaultGuardrails).agreement.state).toBe('collecting');
  });

  it('judges the pooled totals when given, even on a replica that mirrored nothing itself', () => {
    const fleet = filledWindow(50, 0);
    const pooled = { champion: fleet.champion.totals, shadow: fleet.shadows.get('v2')!.totals };
    const idle = new RouteWindow(defaultGuardrails, 0);
    // Alone, the idle replica has no shadow statistics at all.
    expect(shadowGate(idle, 'v2', { agree: 2000, parsed: 2000 }, defaultGuardrails).verdicts).toEqual([]);
    const gate = shadowGate(idle, 'v2', { agree: 2000, parsed: 2000 }, defaultGuardrails, pooled);
    expect(gate.verdicts.find((v) => v.name === 'latency_log_mean')?.state).toBe('breach');
    expect(gate.ready).toBe(false);
    // The pooled view of a shadow that nobody has mirrored yet is no evidence either.
    expect(shadowGate(idle, 'v2', { agree: 0, parsed: 0 }, defaultGuardrails, { champion: fleet.champion.totals, shadow: undefined }).verdicts).toEqual([]);
  });
});

describe('abWinner', () => {
  it('names the more accurate variant once its always-valid interval excludes no difference', () => {
    expect(abWinner({ v1: { n: 2000, correct: 1600 }, v2: { n: 2000, correct: 1800 } }, 'v1', 'v2', defaultGuardrails)).toMatchObject({ state: 'winner', winner: 'v2' });
    expect(abWinner({ v1: { n: 2000, correct: 1800 }, v2: { n: 2000, correct: 1795 } }, 'v1', 'v2', defaultGuardrails)).toMatchObject({ state: 'no_winner_yet', winner: null });
    expect(abWinner({ v1: { n: 5, correct: 5 } }, 'v1', 'v2', defaultGuardrails).state).toBe('collecting');
  });
});

describe('experimentReports', () => {
  /** A counts source whose totals the test moves forward, like the pair recorder does. */
  function counts(initial: { agree: number; parsed: number }, outcomes: Record<string, { n: number; correct: number }>) {
    const state = { agreement: { ...initial }, outcomes: structuredClone(outcomes) };
    const source: ExperimentCounts = {
      agreementOf: (route) => (route === 'iris' ? { ...state.agreement } : { agree: 0, parsed: 0 }),
      outcomesOf: (route) => (route === 'iris' ? structuredClone(state.outcomes) : {}),
    };
    return { source, state };
  }
  const base = { route: 'iris', champion: 'v1', window: filledWindow(5, 0), policy: defaultGuardrails };

  it('reports a shadow gate per shadow challenger and an A/B winner per ab challenger, nothing for canaries', () => {
    const { source } = counts({ agree: 1980, parsed: 2000 }, { v1: { n: 2000, correct: 1600 }, v3: { n: 2000, correct: 1800 } });
    const reports = experimentReports({ ...base, counts: source, baseline: emptyBaseline, challengers: [{ name: 'v2', mode: 'shadow', percent: 100 }, { name: 'v3', mode: 'ab', percent: 50 }, { name: 'v4', mode: 'canary', percent: 10 }] });
    expect(reports.shadowGates).toHaveLength(1);
    expect(reports.shadowGates[0]).toMatchObject({ challenger: 'v2', ready: true, agreementShared: false, agreement: { agree: 1980, of: 2000 } });
    expect(reports.abWinners).toHaveLength(1);
    expect(reports.abWinners[0]).toMatchObject({ challenger: { variant: 'v3', n: 2000, correct: 1800 }, champion: { variant: 'v1' }, state: 'winner', winner: 'v3', minLabelled: defaultGuardrails.minRequests });
    expect(experimentReports({ ...base, counts: source, baseline: emptyBaseline, challengers: [{ name: 'v4', mode: 'canary', percent: 10 }] })).toEqual({ shadowGates: [], abWinners: [] });
  });

  it('judges only what came after the experiment began', () => {
    const { source, state } = counts({ agree: 100, parsed: 1000 }, { v1: { n: 1000, correct: 0 }, v3: { n: 1000, correct: 1000 } });
    const baseline = countsBaseline(source, 'iris');
    const challengers = [{ name: 'v2', mode: 'shadow', percent: 100 }, { name: 'v3', mode: 'ab', percent: 50 }] as const;
    const fresh = experimentReports({ ...base, counts: source, baseline, challengers });
    expect(fresh.shadowGates[0]?.agreement).toMatchObject({ agree: 0, of: 0, state: 'collecting', rate: null });
    expect(fresh.abWinners[0]).toMatchObject({ state: 'collecting', champion: { n: 0, correct: 0 }, challenger: { n: 0, correct: 0 } });

    state.agreement = { agree: 100 + 1990, parsed: 1000 + 2000 };
    state.outcomes = { v1: { n: 1000 + 2000, correct: 1800 }, v3: { n: 1000 + 2000, correct: 1000 + 1795 } };
    const later = experimentReports({ ...base, counts: source, baseline, challengers });
    expect(later.shadowGates[0]).toMatchObject({ ready: true, agreement: { agree: 1990, of: 2000, state: 'within' } });
    // Before the baseline v3 was always right and v1 always wrong; since then they are level, so there is no winner.
    expect(later.abWinners[0]).toMatchObject({ state: 'no_winner_yet', winner: null, champion: { n: 2000, correct: 1800 }, challenger: { n: 2000, correct: 1795 } });
  });

  it('counts from zero when the source restarted below its baseline', () => {
    const { source, state } = counts({ agree: 500, parsed: 500 }, { v1: { n: 500, correct: 500 } });
    const baseline = countsBaseline(source, 'iris');
    state.agreement = { agree: 60, parsed: 70 };
    state.outcomes = { v1: { n: 70, correct: 7 } };
    const reports = experimentReports({ ...base, counts: source, baseline, challengers: [{ name: 'v2', mode: 'shadow', percent: 100 }, { name: 'v3', mode: 'ab', percent: 50 }] });
    expect(reports.shadowGates[0]?.agreement).toMatchObject({ agree: 60, of: 70 });
    expect(reports.abWinners[0]?.champion).toEqual({ variant: 'v1', n: 70, correct: 7 });
  });

  it('marks the agreement as shared when a route mirrors to several shadows', () => {
    const { source } = counts({ agree: 1980, parsed: 2000 }, {});
    const reports = experimentReports({ ...base, counts: source, baseline: emptyBaseline, challengers: [{ name: 'v2', mode: 'shadow', percent: 100 }, { name: 'v5', mode: 'shadow', percent: 10 }] });
    expect(reports.shadowGates.map((g) => [g.challenger, g.agreementShared])).toEqual([['v2', true], ['v5', true]]);
    // v5 mirrored nothing on this replica yet: no errors or latency to judge, so it is not ready whatever the agreement.
    expect(reports.shadowGates[1]).toMatchObject({ ready: false, verdicts: [] });
    // A shadow at 0 % that mirrored nothing in this experiment shares nothing.
    const alone = experimentReports({ ...base, counts: source, baseline: emptyBaseline, challengers: [{ name: 'v2', mode: 'shadow', percent: 100 }, { name: 'v5', mode: 'shadow', percent: 0 }] });
    expect(alone.shadowGates.map((g) => g.agreementShared)).toEqual([false, false]);
  });

  it('takes an empty baseline without a counts source', () => {
    expect(countsBaseline(null, 'iris')).toBe(emptyBaseline);
  });
});
