// Streaming guardrails on seeded streams fed through the real window: in the family only with a policy, A/A safe, and each one detects its fault.
import { describe, expect, it } from 'vitest';
import { routeSchema, type RoutePolicy } from '../../../src/config/policy-schema.js';
import { RouteWindow } from '../../../src/analysis/window.js';
import { evaluateGuardrails, type GuardrailVerdict } from '../../../src/control/guardrails.js';
import { createPrng as prng } from '../../../src/demo/prng.js';
import type { StreamSummary } from '../../../src/record/port.js';

function route(extra: Record<string, unknown> = {}): RoutePolicy {
  return routeSchema.parse({ name: 'chat', match: { pathPrefix: '/' }, champion: { name: 'a', url: 'http://127.0.0.1:1' }, guardrails: { plannedRequests: 1000 }, ...extra });
}

interface ArmShape {
  ttftMs: number;
  stallShare: number;
  cutShare: number;
}

/** n streamed answers per arm: lognormal latency and TTFT around their medians, stalls and cuts with the given shares. */
function feed(window: RouteWindow, random: () => number, n: number, arms: { champion: ArmShape; challenger: ArmShape }): void {
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const summary = (shape: ArmShape): StreamSummary => {
    const stalled = random() < shape.stallShare;
    return { ttftMs: shape.ttftMs * Math.exp(0.3 * normal()), gaps: 9, gapsOver: stalled ? 1 : 0, maxGapMs: stalled ? 1_500 : 20, gapThresholdMs: 1_000, interrupted: random() < shape.cutShare, tokens: 10, tokensFromUsage: true, tokensPerSecond: 50 };
  };
  const challenger = window.arm('challenger', 'b');
  for (let i = 0; i < n; i++) {
    window.record(window.champion, false, 400 * Math.exp(0.3 * normal()), true, null, i, summary(arms.champion));
    window.record(challenger, false, 400 * Math.exp(0.3 * normal()), false, null, i, summary(arms.challenger));
  }
}

function judge(window: RouteWindow, policy: RoutePolicy) {
  window.refreshThreshold();
  return evaluateGuardrails({ champion: window.champion.totals, challenger: window.challengers.get('b')!.totals, p95ThresholdMs: window.p95ThresholdMs, streaming: policy.streaming ?? null }, policy.guardrails!, {}).verdicts;
}

const byName = (verdicts: GuardrailVerdict[], name: string) => verdicts.find((v) => v.name === name)!;
const healthy: ArmShape = { ttftMs: 50, stallShare: 0.01, cutShare: 0.002 };
const streamingNames = ['ttft_log_mean', 'stream_gap_exceedance', 'stream_interruptions'];

describe('streaming guardrails', () => {
  it('are judged only on a route with a streaming policy, so other routes keep their family of three', () => {
    const plain = route();
    const window = new RouteWindow(plain.guardrails!, 0);
    feed(window, prng(1), 200, { champion: healthy, challenger: healthy });
    const verdicts = judge(window, plain);
    expect(verdicts.map((v) => v.name)).toEqual(['error_ceiling', 'p99_ceiling', 'error_rate', 'latency_log_mean', 'latency_exceedance']);
    const streaming = route({ streaming: {} });
    expect(judge(window, streaming).map((v) => v.name)).toEqual([...verdicts.map((v) => v.name), ...streamingNames]);
  });

  it('never alarm on A/A streams, and judge every streaming guardrail', () => {
    const policy = route({ streaming: {} });
    for (let seed = 1; seed <= 5; seed++) {
      const window = new RouteWindow(policy.guardrails!, 0);
      feed(window, prng(seed), 2_000, { champion: healthy, challenger: healthy });
      const verdicts = judge(window, policy);
      expect(verdicts.filter((v) => v.state === 'breach')).toEqual([]);
      for (const name of streamingNames) expect(byName(verdicts, name).state).not.toBe('collecting');
    }
  });

  it('detect a first token 300 ms later, stalls on 5 % of streams and 5 % cut streams, each on its own guardrail', () => {
    const policy = route({ streaming: {} });
    const cases: [string, ArmShape][] = [
      ['ttft_log_mean', { ...healthy, ttftMs: 350 }],
      ['stream_gap_exceedance', { ...healthy, stallShare: 0.06 }],
      ['stream_interruptions', { ...healthy, cutShare: 0.052 }],
    ];
    for (const [name, challenger] of cases) {
      const window = new RouteWindow(policy.guardrails!, 0);
      feed(window, prng(7), 2_000, { champion: healthy, challenger });
      const verdicts = judge(window, policy);
      expect(byName(verdicts, name).state).toBe('breach');
      expect(verdicts.filter((v) => v.state === 'breach').map((v) => v.name)).toEqual([name]);
    }
  });
});

describe('the streaming policy', () => {
  it('applies its defaults', () => {
    expect(route({ streaming: {} }).streaming).toEqual({ terminal: '[DONE]', ttft: { ratio: 1.2 }, gaps: { thresholdMs: 1_000, margin: 0.01 }, interruptions: { margin: 0.01 } });
  });

  it('names the field that is wrong', () => {
    const bad = (streaming: unknown) => routeSchema.safeParse({ name: 'chat', match: { pathPrefix: '/' }, champion: { name: 'a', url: 'http://127.0.0.1:1' }, streaming }).error!.issues[0]!;
    expect(bad({ gaps: { thresholdMs: 0 } }).path).toEqual(['streaming', 'gaps', 'thresholdMs']);
    expect(bad({ ttft: { ratio: 1 } }).path).toEqual(['streaming', 'ttft', 'ratio']);
    expect(bad({ terminator: '[DONE]' }).message).toContain('terminator');
    expect(bad({ terminal: 'x'.repeat(65) }).message).toContain('at most 64 characters');
  });
});
