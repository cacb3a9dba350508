// Shadow gate and A/B winner reports on synthetic windows and outcome counts.
import { describe, expect, it } from 'vitest';
import { defaultGuardrails } from '../../../src/config/policy-schema.js';
import { RouteWindow } from '../../../src/analysis/window.js';
import { abWinner, shadowGate } from '../../../src/control/experiment-report.js';
import { createPrng } from '../../../src/demo/prng.js';

function filledWindow(shadowLatencyMs: number, shadowErrorRate: number): RouteWindow {
  const random = createPrng(9);
  const window = new RouteWindow(defaultGuardrails, 0);
  const shadow = window.arm('shadow', 'v2');
  for (let i = 0; i < 2000; i++) {
    window.record(window.champion, false, 5 * (0.8 + 0.4 * random()), true, i);
    window.record(shadow, random() < shadowErrorRate, shadowLatencyMs * (0.8 + 0.4 * random()), false, i);
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
});

describe('abWinner', () => {
  it('names the more accurate variant once its always-valid interval excludes no difference', () => {
    expect(abWinner({ v1: { n: 2000, correct: 1600 }, v2: { n: 2000, correct: 1800 } }, 'v1', 'v2', defaultGuardrails)).toMatchObject({ state: 'winner', winner: 'v2' });
    expect(abWinner({ v1: { n: 2000, correct: 1800 }, v2: { n: 2000, correct: 1795 } }, 'v1', 'v2', defaultGuardrails)).toMatchObject({ state: 'no_winner_yet', winner: null });
    expect(abWinner({ v1: { n: 5, correct: 5 } }, 'v1', 'v2', defaultGuardrails).state).toBe('collecting');
  });
});
