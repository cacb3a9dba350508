// Guardrail evaluation on seeded arm statistics fed through the real window: collecting, breakers, margins, A/A safety, degenerate data.
import { describe, expect, it } from 'vitest';
import { defaultGuardrails, routeSchema, type GuardrailPolicy } from '../../../src/config/policy-schema.js';
import { RouteWindow, stratumPairs, type ArmTotals } from '../../../src/analysis/window.js';
import { breakerStep, evaluateGuardrails, rateMarginLooks, type GuardrailMemory, type GuardrailVerdict } from '../../../src/control/guardrails.js';
import { createPrng as prng } from '../../../src/demo/prng.js';
import { mixtureLook } from '../../../src/analysis/stats/index.js';

/** Guardrail settings as a policy file would give them (defaults applied by the real schema). */
function guardrails(overrides: Record<string, unknown> = {}): GuardrailPolicy {
  return routeSchema.parse({ name: 'r', match: { pathPrefix: '/' }, champion: { name: 'a', url: 'http://127.0.0.1:1' }, guardrails: overrides }).guardrails!;
}

/** Feeds n requests per arm into one real window; latency is lognormal around the median. */
function feed(window: RouteWindow, random: () => number, n: number, arms: { champion: [number, number]; challenger: [number, number] }, sigma = 0.5): void {
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const challenger = window.arm('challenger', 'b');
  for (let i = 0; i < n; i++) {
    if (i % 100 === 0) window.refreshThreshold(); // the controller does this every tick
    window.record(window.champion, random() < arms.champion[0], arms.champion[1] * Math.exp(sigma * normal()), true, null, i);
    window.record(challenger, random() < arms.challenger[0], arms.challenger[1] * Math.exp(sigma * normal()), false, null, i);
  }
}

function judge(window: RouteWindow, policy: GuardrailPolicy, memory: GuardrailMemory = {}) {
  window.refreshThreshold(); // the controller does this every tick
  return evaluateGuardrails({ champion: window.champion.totals, challenger: window.challengers.get('b')?.totals ?? window.champion.totals, p95ThresholdMs: window.p95ThresholdMs }, policy, memory);
}

const byName = (verdicts: GuardrailVerdict[], name: string) => verdicts.find((v) => v.name === name)!;

describe('evaluateGuardrails', () => {
  it('says collecting (never pass, never fail) below the minimum per arm', () => {
    const window = new RouteWindow(defaultGuardrails, 0);
    feed(window, prng(1), 5, { champion: [0, 5], challenger: [1, 50] });
    const { verdicts } = judge(window, defaultGuardrails);
    expect(verdicts.map((v) => v.state)).toEqual(['collecting', 'collecting', 'collecting', 'collecting', 'collecting']);
    expect(verdicts.every((v) => v.estimate === null || Number.isFinite(v.estimate))).toBe(true);
  });

  it('detects a worse error rate, a slower challenger and a heavier tail with the sequential tests', () => {
    const policy = guardrails({ latency: { baselineRequests: 200 } });
    const errors = new RouteWindow(policy, 0);
    feed(errors, prng(3), 1500, { champion: [0.01, 5], challenger: [0.1, 5] });
    expect(byName(judge(errors, policy).verdicts, 'error_rate').state).toBe('breach');
    const slow = new RouteWindow(policy, 0);
    feed(slow, prng(4), 1500, { champion: [0, 5], challenger: [0, 10] });
    const verdicts = judge(slow, policy).verdicts;
    expect(byName(verdicts, 'latency_log_mean').state).toBe('breach');
    expect(byName(verdicts, 'latency_exceedance').state).toBe('breach');
  });

  it('never alarms across 400 looks of A/A data, and ends confidently within every margin', () => {
    const policy = guardrails({ latency: { baselineRequests: 200 } });
    const window = new RouteWindow(policy, 0);
    const random = prng(5);
    let memory: GuardrailMemory = {};
    let states: string[] = [];
    for (let look = 0; look < 400; look++) {
      feed(window, random, 25, { champion: [0.02, 5], challenger: [0.02, 5] });
      const result = judge(window, policy, memory);
      memory = result.memory;
      states = result.verdicts.map((v) => v.state);
      expect(states).not.toContain('breach');
    }
    expect(states).toEqual(['healthy', 'healthy', 'within', 'within', 'within']);
  });

  it('judges a constant latency (zero variance) instead of collecting for ever', () => {
    const same = new RouteWindow(defaultGuardrails, 0);
    feed(same, prng(6), 300, { champion: [0, 80], challenger: [0, 80] }, 0);
    expect(byName(judge(same, defaultGuardrails).verdicts, 'latency_log_mean').state).toBe('within');
    const slower = new RouteWindow(defaultGuardrails, 0);
    feed(slower, prng(7), 300, { champion: [0, 80], challenger: [0, 160] }, 0);
    expect(byName(judge(slower, defaultGuardrails).verdicts, 'latency_log_mean').state).toBe('breach');
  });

  it('is confidently within the error margin when neither arm has an error', () => {
    const window = new RouteWindow(defaultGuardrails, 0);
    feed(window, prng(8), 3000, { champion: [0, 5], challenger: [0, 5] });
    expect(byName(judge(window, defaultGuardrails).verdicts, 'error_rate').state).toBe('within');
  });
});

describe('ramps and drift', () => {
  it('compares the arms within each split epoch, so a slowdown that hits both arms during a ramp is no breach', () => {
    // Epoch 1: 10 % challenger, both arms at 5 ms. Epoch 2: 50 %, both at 10 ms. Pooled over time, the challenger
    // looks 1.6x slower, only because more of its requests fell into the slow period.
    const window = new RouteWindow(defaultGuardrails, 0);
    const random = prng(21);
    const challenger = window.arm('challenger', 'b');
    const noise = () => Math.exp(0.3 * (random() + random() - 1));
    window.newSplitEpoch('b|10');
    for (let i = 0; i < 9000; i++) window.record(window.champion, false, 5 * noise(), true, null, i);
    for (let i = 0; i < 1000; i++) window.record(challenger, false, 5 * noise(), false, null, i);
    window.newSplitEpoch('b|50');
    for (let i = 0; i < 5000; i++) {
      window.record(window.champion, false, 10 * noise(), true, null, i);
      window.record(challenger, false, 10 * noise(), false, null, i);
    }
    const totalsOnly = evaluateGuardrails({ champion: window.champion.totals, challenger: challenger.totals, p95ThresholdMs: null }, defaultGuardrails, {});
    expect(byName(totalsOnly.verdicts, 'latency_log_mean').state).toBe('breach');
    const stratified = evaluateGuardrails({ champion: window.champion.totals, challenger: challenger.totals, strata: stratumPairs(window.strata(), 'challenger:b'), p95ThresholdMs: null }, defaultGuardrails, {});
    expect(byName(stratified.verdicts, 'latency_log_mean').state).toBe('within');
  });
});

describe('the error-rate margin', () => {
  it('does not call a small arm with few events "within" when its rate sits at the margin', () => {
    // 1/99 split: champion 1 % of 39,600; the challenger truly at the 2 % boundary, with a lucky 2 events in 400.
    const champion = { n: 39_600, events: 396 };
    const challenger = { n: 400, events: 2 };
    const looks = rateMarginLooks([[champion, challenger]], 1, 0.01, { worse: 0.045, within: 0.05 }, 10_000)!;
    expect(looks.interval.csUpper).toBeGreaterThan(0.01);
    // The variance of the (smoothed) observed rates, as main used, would have called it confidently within.
    const smoothed = (c: { n: number; events: number }) => (c.events + 0.5) / (c.n + 1);
    const plugIn = (smoothed(champion) * (1 - smoothed(champion))) / champion.n + (smoothed(challenger) * (1 - smoothed(challenger))) / challenger.n;
    const old = mixtureLook(0.005 - 0.01, plugIn, 40_000, { alpha: 0.05, mixing: { nStar: 10_000 }, theta0: 0.01 });
    expect(old.csUpper).toBeLessThan(0.01);
  });

  it('accepts a relative margin: 5 % against 5 % is within "× 1.2", 7 % is a breach', () => {
    const policy = guardrails({ errorRate: { relativeMargin: 0.2 } });
    expect(policy.errorRate).toMatchObject({ relativeMargin: 0.2, margin: 0 });
    const same = new RouteWindow(policy, 0);
    feed(same, prng(9), 20_000, { champion: [0.05, 5], challenger: [0.05, 5] });
    expect(byName(judge(same, policy).verdicts, 'error_rate').state).toBe('within');
    const worse = new RouteWindow(policy, 0);
    feed(worse, prng(10), 20_000, { champion: [0.05, 5], challenger: [0.08, 5] });
    expect(byName(judge(worse, policy).verdicts, 'error_rate').state).toBe('breach');
  });

  it('refuses the removed breaker window with what to do instead', () => {
    const result = routeSchema.safeParse({ name: 'r', match: { pathPrefix: '/' }, champion: { name: 'a', url: 'http://127.0.0.1:1' }, guardrails: { errorRate: { window: 20 } } });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path).toEqual(['guardrails', 'errorRate', 'window']);
    expect(result.error!.issues[0]!.message).toMatch(/no longer used: .*sequential.*delete this field/);
  });
});

describe('breakers', () => {
  const totals = (window: RouteWindow): ArmTotals => window.challengers.get('b')!.totals;

  it('trip when a challenger that was healthy for 20,000 requests starts failing, within about 40 requests', () => {
    const policy = defaultGuardrails;
    const window = new RouteWindow(policy, 0);
    const random = prng(11);
    let memory: GuardrailMemory = {};
    for (let look = 0; look < 200; look++) {
      feed(window, random, 100, { champion: [0.01, 5], challenger: [0.01, 5] });
      memory = judge(window, policy, memory).memory;
    }
    const before = totals(window).errors.n;
    let tripped = false;
    while (!tripped) {
      feed(window, random, 5, { champion: [0.01, 5], challenger: [1, 5] });
      const result = judge(window, policy, memory);
      memory = result.memory;
      tripped = byName(result.verdicts, 'error_ceiling').state === 'breach';
    }
    expect(totals(window).errors.n - before).toBeLessThanOrEqual(50);
  });

  it('do not trip on a heavy tail below the ceiling share, then trip when the challenger hangs', () => {
    const policy = guardrails({ latency: { p99CeilingMs: 1000 } });
    const window = new RouteWindow(policy, 0);
    const challenger = window.arm('challenger', 'b');
    const random = prng(12);
    let memory: GuardrailMemory = {};
    // Pareto(scale 20, shape 1.5): 0.2 % of requests over 1 s, a "p99" of about 430 ms, max of 50 often over 1 s.
    const pareto = () => 20 / Math.pow(1 - random(), 1 / 1.5);
    for (let look = 0; look < 2000; look++) {
      for (let i = 0; i < 10; i++) {
        window.record(window.champion, false, pareto(), true, null, look);
        window.record(challenger, false, pareto(), false, null, look);
      }
      const result = judge(window, policy, memory);
      memory = result.memory;
      expect(byName(result.verdicts, 'p99_ceiling').state).not.toBe('breach');
    }
    let hung = 0;
    for (;;) {
      window.record(challenger, false, 6_000, false, null, 0);
      hung++;
      const result = judge(window, policy, memory);
      memory = result.memory;
      if (byName(result.verdicts, 'p99_ceiling').state === 'breach') break;
    }
    expect(hung).toBeLessThanOrEqual(12);
  });

  it('restart their evidence when the counts go back (a new experiment)', () => {
    const first = breakerStep(undefined, { n: 100, events: 100 }, 0.5, 0.9, 0.0025);
    expect(first.state.cusum).toBeGreaterThan(first.threshold);
    const after = breakerStep(first.state, { n: 10, events: 0 }, 0.5, 0.9, 0.0025);
    expect(after.state.cusum).toBe(0);
  });
});
