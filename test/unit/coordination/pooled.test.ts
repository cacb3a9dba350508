// Pooling per-replica windows: equals one window that saw everything, idempotent re-sends, liveness, pooled breakers, validation.
import { describe, expect, it } from 'vitest';
import { RouteWindow } from '../../../src/analysis/window.js';
import { defaultGuardrails } from '../../../src/config/policy-schema.js';
import { evaluateGuardrails } from '../../../src/control/guardrails.js';
import { encodeWindow, parsePayload, poolPayloads, pooledInputs, type ReplicaPayload } from '../../../src/coordination/pooled.js';
import { createPrng } from '../../../src/demo/prng.js';

const policy = { ...defaultGuardrails, latency: { ...defaultGuardrails.latency, baselineRequests: 20 } };

interface Outcome {
  arm: 'champion' | 'iris-v2';
  failed: boolean;
  latencyMs: number;
}

function outcomes(seed: number, n: number, challengerErrorRate = 0.02): Outcome[] {
  const random = createPrng(seed);
  return Array.from({ length: n }, () => {
    const challenger = random() < 0.5;
    return { arm: challenger ? 'iris-v2' : 'champion', failed: random() < (challenger ? challengerErrorRate : 0.01), latencyMs: 5 * Math.exp(0.4 * (random() + random() - 1)) };
  });
}

function feed(window: RouteWindow, list: readonly Outcome[]): void {
  for (const o of list) {
    if (o.arm === 'champion') window.record(window.champion, o.failed, o.latencyMs, true, null, 0);
    else window.record(window.arm('challenger', o.arm), o.failed, o.latencyMs, false, null, 0);
  }
}

/** The wire: what a replica writes and another reads back. */
function viaJson(payload: ReplicaPayload): ReplicaPayload {
  const parsed = parsePayload(JSON.stringify(payload));
  if (parsed === null) throw new Error('payload did not parse');
  return parsed;
}

describe('poolPayloads', () => {
  it('pools three replicas into exactly the counts, and to 1e-12 the moments, of one window that saw every request', () => {
    const all = outcomes(7, 3_000);
    const single = new RouteWindow(policy, 0);
    feed(single, all);
    const replicas = [0, 1, 2].map(() => new RouteWindow(policy, 0));
    all.forEach((o, i) => feed(replicas[i % 3]!, [o]));
    // Each replica fixes its own p95 threshold from its first champion requests, so exceedance is not compared here.
    const pooled = poolPayloads('e', replicas.map((w, i) => viaJson(encodeWindow(w, `r${i}`, 1_000))), 0);
    for (const key of ['champion', 'challenger:iris-v2']) {
      const arm = key === 'champion' ? single.champion : single.challengers.get('iris-v2')!;
      const got = pooled.arms.get(key)!;
      expect(got.errors).toEqual(arm.totals.errors);
      expect(got.overCeiling).toEqual(arm.totals.overCeiling);
      expect(got.units).toBe(arm.totals.units);
      expect(got.logLatency.n).toBe(arm.totals.logLatency.n);
      expect(got.logLatency.mean).toBeCloseTo(arm.totals.logLatency.mean, 12);
      expect(got.logLatency.m2 / arm.totals.logLatency.m2).toBeCloseTo(1, 12);
    }
    expect(pooled.replicas).toBe(3);
    expect(pooled.fields).toBe(3);
  });

  it('never double counts: a replica re-sends its absolute totals into its own field, so lost or repeated sends change nothing', () => {
    const hash = new Map<string, string>(); // HSET semantics: one field per replica window
    const window = new RouteWindow(policy, 0);
    const list = outcomes(11, 600);
    feed(window, list.slice(0, 200));
    hash.set('r0/a.1', JSON.stringify(encodeWindow(window, 'r0', 1)));
    hash.set('r0/a.1', JSON.stringify(encodeWindow(window, 'r0', 2))); // a retry after a timeout
    feed(window, list.slice(200, 400)); // sends lost while Redis was down
    feed(window, list.slice(400));
    hash.set('r0/a.1', JSON.stringify(encodeWindow(window, 'r0', 3))); // the rejoin
    const pooled = poolPayloads('e', [...hash.values()].map((t) => parsePayload(t)!), 0);
    const requests = (pooled.arms.get('champion')?.errors.n ?? 0) + (pooled.arms.get('challenger:iris-v2')?.errors.n ?? 0);
    expect(requests).toBe(600);
  });

  it('keeps the totals of a dead replica (valid evidence) but counts only live replicas', () => {
    const dead = new RouteWindow(policy, 0);
    const live = new RouteWindow(policy, 0);
    for (let i = 0; i < 20; i++) dead.record(dead.arm('challenger', 'iris-v2'), true, 9, false, null, 0);
    for (let i = 0; i < 20; i++) live.record(live.arm('challenger', 'iris-v2'), false, 3, false, null, 0);
    const pooled = poolPayloads('e', [encodeWindow(dead, 'gone', 1_000), encodeWindow(live, 'here', 9_000)], 5_000);
    expect(pooled.arms.get('challenger:iris-v2')!.errors).toEqual({ n: 40, events: 20 });
    expect(pooled.replicas).toBe(1);
  });
});

describe('pooled breakers', () => {
  it('trip the error ceiling on pooled failures before any single replica has enough evidence', () => {
    const windows = [0, 1, 2].map(() => new RouteWindow(defaultGuardrails, 0));
    for (const w of windows) for (let i = 0; i < 12; i++) w.record(w.arm('challenger', 'iris-v2'), true, 4, false, null, 0);
    const local = evaluateGuardrails(pooledInputs(poolPayloads('e', [encodeWindow(windows[0]!, 'r0', 1)], 0), 'iris-v2', null), defaultGuardrails, {});
    expect(local.verdicts.find((v) => v.name === 'error_ceiling')!.state).toBe('healthy');
    const pooled = poolPayloads('e', windows.map((w, i) => encodeWindow(w, `r${i}`, 1)), 0);
    const verdict = evaluateGuardrails(pooledInputs(pooled, 'iris-v2', null), defaultGuardrails, {}).verdicts.find((v) => v.name === 'error_ceiling')!;
    expect(verdict.state).toBe('breach');
    expect(verdict.nChallenger).toBe(36);
  });
});

describe('parsePayload', () => {
  const good = encodeWindow(new RouteWindow(policy, 0), 'r0', 1);
  it('round-trips a payload', () => {
    expect(parsePayload(JSON.stringify(good))).toEqual(good);
  });
  it.each([
    ['not JSON', '{'],
    ['another format version', JSON.stringify({ ...good, v: 1 })],
    ['more events than requests', JSON.stringify({ ...good, arms: { champion: { ...good.arms.champion, errors: { n: 1, events: 2 } } } })],
    ['a negative M2', JSON.stringify({ ...good, arms: { champion: { ...good.arms.champion, logLatency: { n: 2, mean: 1, m2: -1 } } } })],
    ['a negative unit count', JSON.stringify({ ...good, arms: { champion: { ...good.arms.champion, units: -1 } } })],
    ['a missing ceiling count', JSON.stringify({ ...good, arms: { champion: { ...good.arms.champion, overCeiling: undefined } } })],
    ['a missing instance', JSON.stringify({ ...good, instance: 7 })],
    ['more correct outcomes than labelled ones', JSON.stringify({ ...good, outcomes: { 'iris-v2': { n: 3, correct: 4 } } })],
    ['a negative outcome count', JSON.stringify({ ...good, outcomes: { 'iris-v2': { n: -1, correct: 0 } } })],
    ['a fractional outcome count', JSON.stringify({ ...good, outcomes: { 'iris-v2': { n: 2.5, correct: 1 } } })],
    ['outcomes that are not an object', JSON.stringify({ ...good, outcomes: [1, 2] })],
    ['more agreeing pairs than parsed ones', JSON.stringify({ ...good, agreement: { agree: 3, parsed: 2 } })],
    ['a missing parsed count', JSON.stringify({ ...good, agreement: { agree: 0 } })],
  ])('rejects %s', (_why, text) => {
    expect(parsePayload(text)).toBeNull();
  });
});

describe('pooled labelled outcomes and pair agreement', () => {
  const window = new RouteWindow(policy, 0);
  it('travel with the window and sum over every payload, dead replicas and payloads without outcomes included', () => {
    const a = viaJson(encodeWindow(window, 'r0', 5_000, { outcomes: { 'iris-v1': { n: 10, correct: 2 }, 'iris-v2': { n: 8, correct: 7 } }, agreement: { agree: 30, parsed: 40 } }));
    const dead = viaJson(encodeWindow(window, 'r1', 1, { outcomes: { 'iris-v2': { n: 4, correct: 3 } }, agreement: { agree: 5, parsed: 6 } }));
    // A replica of the previous format writes neither: its payload still pools, adding none.
    const { outcomes: _outcomes, agreement: _agreement, ...older } = encodeWindow(window, 'r2', 5_000);
    const pooled = poolPayloads('e', [a, dead, viaJson(older as ReplicaPayload)], 1_000);
    expect(pooled.outcomes).toEqual({ 'iris-v1': { n: 10, correct: 2 }, 'iris-v2': { n: 12, correct: 10 } });
    expect(pooled.agreement).toEqual({ agree: 35, parsed: 46 });
    expect(pooled.replicas).toBe(2);
  });

  it('are a copy: later changes to the caller\'s counts do not alter a payload already encoded', () => {
    const snapshot = { outcomes: { 'iris-v1': { n: 1, correct: 1 } }, agreement: { agree: 1, parsed: 2 } };
    const payload = encodeWindow(window, 'r0', 1, snapshot);
    snapshot.outcomes['iris-v1'].n = 99;
    snapshot.agreement.parsed = 99;
    expect(payload.outcomes).toEqual({ 'iris-v1': { n: 1, correct: 1 } });
    expect(payload.agreement).toEqual({ agree: 1, parsed: 2 });
  });
});
