// Guardrail evaluation on synthetic, seeded arm statistics: collecting, breaches, confident non-inferiority, A/A safety.
import { describe, expect, it } from 'vitest';
import { defaultGuardrails } from '../../../src/config/policy-schema.js';
import { emptyTotals, mergeTotals as merge, type ArmTotals } from '../../../src/analysis/window.js';
import { evaluateGuardrails, type GuardrailMemory } from '../../../src/control/guardrails.js';
import { pushCount, pushMoment } from '../../../src/analysis/stats/index.js';
import { createPrng as prng } from '../../../src/demo/prng.js';

function arm(random: () => number, n: number, errorRate: number, medianMs: number, p95Ms: number | null): ArmTotals {
  const t = emptyTotals();
  for (let i = 0; i < n; i++) {
    const latency = medianMs * Math.exp(0.3 * (random() + random() + random() - 1.5));
    pushCount(t.errors, random() < errorRate);
    pushMoment(t.logLatency, Math.log(latency));
    if (p95Ms !== null) pushCount(t.exceedance, latency > p95Ms);
  }
  return t;
}

const recentOk = { failures: { count: 0, of: 20 }, p99: { p99: 10, of: 200 } };

describe('evaluateGuardrails', () => {
  it('says collecting (never pass, never fail) below the minimum per arm', () => {
    const r = prng(1);
    const { verdicts } = evaluateGuardrails({ champion: arm(r, 10, 0, 5, 6), challenger: arm(r, 10, 1, 50, 6), recent: { failures: { count: 3, of: 3 }, p99: { p99: 99, of: 3 } }, p95ThresholdMs: 6 }, defaultGuardrails, {});
    expect(verdicts.map((v) => v.state)).toEqual(['collecting', 'collecting', 'collecting', 'collecting', 'collecting']);
    expect(verdicts.every((v) => v.estimate === null || Number.isFinite(v.estimate))).toBe(true);
  });

  it('trips the error ceiling breaker on the recent window', () => {
    const r = prng(2);
    const { verdicts } = evaluateGuardrails({ champion: arm(r, 100, 0, 5, 6), challenger: arm(r, 12, 0, 5, 6), recent: { failures: { count: 11, of: 20 }, p99: { p99: 10, of: 12 } }, p95ThresholdMs: 6 }, defaultGuardrails, {});
    expect(verdicts.find((v) => v.name === 'error_ceiling')?.state).toBe('breach');
  });

  it('detects a worse error rate and a slower challenger with the sequential tests', () => {
    const r = prng(3);
    const errors = evaluateGuardrails({ champion: arm(r, 2000, 0.01, 5, 6), challenger: arm(r, 400, 0.1, 5, 6), recent: recentOk, p95ThresholdMs: 6 }, defaultGuardrails, {});
    expect(errors.verdicts.find((v) => v.name === 'error_rate')).toMatchObject({ state: 'breach' });
    const slow = evaluateGuardrails({ champion: arm(r, 2000, 0, 5, 6.5), challenger: arm(r, 400, 0, 105, 6.5), recent: recentOk, p95ThresholdMs: 6.5 }, defaultGuardrails, {});
    expect(slow.verdicts.find((v) => v.name === 'latency_log_mean')?.state).toBe('breach');
    expect(slow.verdicts.find((v) => v.name === 'latency_exceedance')?.state).toBe('breach');
  });

  it('never alarms across 200 looks of A/A data, and ends confidently within every margin', () => {
    const r = prng(4);
    let champion = emptyTotals();
    let challenger = emptyTotals();
    let memory: GuardrailMemory = {};
    let states: string[] = [];
    for (let look = 0; look < 200; look++) {
      const a = arm(r, 50, 0.02, 5, 6.5);
      const b = arm(r, 50, 0.02, 5, 6.5);
      champion = merge(champion, a);
      challenger = merge(challenger, b);
      const result = evaluateGuardrails({ champion, challenger, recent: recentOk, p95ThresholdMs: 6.5 }, defaultGuardrails, memory);
      memory = result.memory;
      states = result.verdicts.map((v) => v.state);
      expect(states).not.toContain('breach');
    }
    expect(states.slice(2)).toEqual(['within', 'within', 'within']);
  });
});

describe('rate guardrails with zero events', () => {
  it('can still be confidently within the margin when neither arm has an error', () => {
    const r = prng(5);
    const { verdicts } = evaluateGuardrails({ champion: arm(r, 3000, 0, 5, 6.5), challenger: arm(r, 3000, 0, 5, 6.5), recent: recentOk, p95ThresholdMs: 6.5 }, defaultGuardrails, {});
    expect(verdicts.find((v) => v.name === 'error_rate')?.state).toBe('within');
  });
});
