// Prediction divergence and drift plumbing: the policy's errors, the worker's counts within a budget, pooling through replica payloads, the guardrail family.
import { describe, expect, it } from 'vitest';
import { RouteWindow } from '../../../src/analysis/window.js';
import { judgeDivergence, newDivergenceMemory, predictionsSince, type DivergenceInputs } from '../../../src/analysis/divergence.js';
import { judgeWindows } from '../../../src/analysis/drift.js';
import { defaultGuardrails, routeSchema } from '../../../src/config/policy-schema.js';
import { emptyTotals } from '../../../src/analysis/window.js';
import { evaluateGuardrails, type ExtraGuardrail, type GuardrailVerdict } from '../../../src/control/guardrails.js';
import { settleDivergence } from '../../../src/control/divergence-guardrail.js';
import { next } from '../../../src/control/phases.js';
import { Metrics } from '../../../src/metrics/registry.js';
import type { DivergenceReport } from '../../../src/analysis/divergence.js';
import { encodeWindow, noExperiment, parsePayload, poolPayloads } from '../../../src/coordination/pooled.js';
import { OTHER_LABEL, PredictionStats, scoreBucket, type ArmPredictionCounts } from '../../../src/record/prediction-stats.js';

const route = (extra: Record<string, unknown>) => ({ name: 'r', match: { pathPrefix: '/' }, champion: { name: 'a', url: 'http://127.0.0.1:1' }, ...extra });

describe('policy', () => {
  it('takes divergence and drift blocks with defaults', () => {
    const parsed = routeSchema.parse(route({ predictions: { sampleRate: 1 }, divergence: { action: 'rollback' }, drift: { windowMs: '10m', features: [{ pointer: '/instances/0/1', kind: 'numeric' }] } }));
    expect(parsed.divergence).toEqual({ action: 'rollback', classes: 16, minAnswers: 100, referenceAnswers: 500, bins: 10 });
    expect(parsed.drift).toMatchObject({ windowMs: 600_000, minCount: 200, psi: 0.2, jensenShannon: 0.05, alpha: 0.01, bins: 10, predictions: true });
  });

  it.each([
    [{ predictions: { sampleRate: 1 }, divergence: { action: 'revert' } }, ['divergence', 'action'], 'must be rollback, hold or report'],
    [{ divergence: { action: 'hold' } }, ['divergence'], 'add a predictions block with sampleRate > 0'],
    [{ predictions: { sampleRate: 0 }, drift: {} }, ['drift'], 'add a predictions block with sampleRate > 0'],
    [{ predictions: { sampleRate: 1 }, drift: { features: [{ pointer: 'age', kind: 'numeric' }] } }, ['drift', 'features', 0, 'pointer'], 'must be a JSON Pointer'],
    [{ predictions: { sampleRate: 1 }, drift: { features: [{ pointer: '/age', kind: 'number' }] } }, ['drift', 'features', 0, 'kind'], 'must be numeric or categorical'],
    [{ predictions: { sampleRate: 1 }, divergence: { classes: 1 } }, ['divergence', 'classes'], ''],
    [{ predictions: { sampleRate: 1 }, divergence: { noiseFloor: 'self' }, challengers: [{ name: 'self', url: 'http://127.0.0.1:2', mode: 'shadow', percent: 5 }] }, ['divergence', 'noiseFloor'], "must name a shadow challenger whose url is the champion's"],
  ])('refuses %j at the field that is wrong', (extra, path, message) => {
    const result = routeSchema.safeParse(route(extra));
    expect(result.success).toBe(false);
    const issue = result.error!.issues.find((i) => JSON.stringify(i.path) === JSON.stringify(path));
    expect(issue, JSON.stringify(result.error!.issues)).toBeDefined();
    expect(issue!.message).toContain(message);
  });
});

describe('PredictionStats (recorder worker)', () => {
  it('counts classes per arm, an array as one per element, and pools labels beyond its cap as other', () => {
    const stats = new PredictionStats({ budgetBytes: 1 << 20 });
    stats.observePrediction('r', 'champion', ['a', 'b', 'a'], 'class', undefined);
    for (let i = 0; i < 70; i++) stats.observePrediction('r', 'challenger:x', `label-${i}`, 'class', undefined);
    const totals = stats.totalsOf('r')!;
    expect(totals.arms.champion).toEqual({ n: 3, classes: { a: 2, b: 1 }, scores: {} });
    // At most max(64, 2 x classes) labels are kept per arm.
    expect(Object.keys(totals.arms['challenger:x']!.classes)).toHaveLength(65);
    expect(totals.arms['challenger:x']!.classes[OTHER_LABEL]).toBe(6);
  });

  it('stays within its byte budget and counts what it could not keep', () => {
    let dropped = 0;
    const stats = new PredictionStats({ budgetBytes: 1_000, onDrop: () => dropped++ });
    for (let i = 0; i < 200; i++) stats.observePrediction('r', 'champion', i * 1.37, 'score', undefined);
    expect(stats.bytes).toBeLessThanOrEqual(1_000);
    expect(dropped).toBeGreaterThan(0);
  });

  it('puts scores in fixed log buckets, ordered like the scores', () => {
    expect(scoreBucket(0)).toBe(0);
    expect(scoreBucket(1e-12)).toBe(0);
    const values = [-5, -0.5, 1e-6, 0.1, 0.11, 0.5, 0.9, 1, 10, 1e12];
    const buckets = values.map(scoreBucket);
    expect([...buckets].sort((a, b) => a - b)).toEqual(buckets);
    expect(scoreBucket(0.1)).not.toBe(scoreBucket(0.5));
  });

  it('freezes bins from the reference window and closes tumbling windows on time', () => {
    let now = 0;
    const stats = new PredictionStats({ budgetBytes: 1 << 20, clock: () => now });
    const drift = routeSchema.parse(route({ predictions: { sampleRate: 1 }, drift: { windowMs: 1_000, minCount: 50, predictions: false, features: [{ pointer: '/x', kind: 'numeric' }, { pointer: '/c', kind: 'categorical' }] } })).drift!;
    const feed = (x: number, c: string) => stats.observeDrift('r', 'v1', drift, null, 'class', Buffer.from(JSON.stringify({ x, c })));
    for (let i = 0; i < 200; i++) feed(i % 100, i % 4 === 0 ? 'red' : 'blue');
    now = 1_000;
    for (let i = 0; i < 200; i++) feed(i % 100, i % 4 === 0 ? 'red' : 'blue');
    now = 2_000;
    for (let i = 0; i < 200; i++) feed(50 + (i % 100), i % 2 === 0 ? 'red' : 'blue');
    now = 3_000;
    stats.tick(new Map([['r', drift]]));
    const windows = stats.totalsOf('r')!.drift;
    expect(windows.map((w) => [w.feature, w.window])).toEqual([['/x', 2], ['/c', 2]]);
    const judged = judgeWindows(windows, drift);
    expect(judged.every((j) => j.drifted)).toBe(true);
    expect(judged[0]!.nReference).toBe(200);
    expect('reference' in judged[0]!).toBe(false);
  });
});

const counts = (classes: Record<string, number>): ArmPredictionCounts => ({ n: Object.values(classes).reduce((a, b) => a + b, 0), classes, scores: {} });

describe('judgeDivergence', () => {
  const input = (c: Record<string, ArmPredictionCounts>, action: 'rollback' | 'hold' | 'report' = 'report'): DivergenceInputs => ({
    policy: { action, classes: 3, minAnswers: 50, referenceAnswers: 100, bins: 10 },
    guardrails: defaultGuardrails,
    kind: 'class',
    challengers: [{ name: 'v2', mode: 'canary' }, { name: 'v3', mode: 'shadow' }],
    counts: c,
    familyAlpha: 0.045,
  });

  it('compares served arms for canaries and the two sides of the pairs for shadows', () => {
    const memory = newDivergenceMemory(null, 'r');
    const reports = judgeDivergence(input({ champion: counts({ a: 1000, b: 600, c: 400 }), 'challenger:v2': counts({ a: 1200, b: 400, c: 400 }), 'paired:v3': counts({ a: 100, b: 100 }), 'shadow:v3': counts({ a: 100, b: 100 }) }), memory);
    expect(reports.map((r) => [r.challenger, r.compared, r.state])).toEqual([['v2', 'served', 'divergent'], ['v3', 'pairs', 'not_divergent']]);
    expect(reports[0]!.champion.distribution).toEqual({ a: 0.5, b: 0.3, c: 0.2 });
  });

  it('freezes score bins from the champion side and tests only what came after', () => {
    const memory = newDivergenceMemory(null, 'r');
    const scores = (shift: number, n: number): ArmPredictionCounts => {
      const s: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const b = String(scoreBucket(0.1 + ((i * 0.618) % 1) * 0.8 + shift));
        s[b] = (s[b] ?? 0) + 1;
      }
      return { n, classes: {}, scores: s };
    };
    const first = judgeDivergence({ ...input({ champion: scores(0, 80), 'challenger:v2': scores(0.2, 80) }), kind: 'score', challengers: [{ name: 'v2', mode: 'canary' }] }, memory);
    expect(first[0]!.state).toBe('collecting');
    expect(first[0]!.reason).toContain('fixing the bins');
    judgeDivergence({ ...input({ champion: scores(0, 100), 'challenger:v2': scores(0.2, 100) }), kind: 'score', challengers: [{ name: 'v2', mode: 'canary' }] }, memory);
    const later = judgeDivergence({ ...input({ champion: scores(0, 2_000), 'challenger:v2': scores(0.2, 2_000) }), kind: 'score', challengers: [{ name: 'v2', mode: 'canary' }] }, memory);
    expect(later[0]!.champion.n).toBeLessThan(2_000);
    expect(later[0]!.state).toBe('divergent');
    expect(Object.keys(later[0]!.champion.distribution).length).toBeGreaterThan(5);
  });

  it('judges a shadow\'s disagreement against the champion\'s disagreement with itself', () => {
    const memory = newDivergenceMemory(null, 'r');
    const agreement = (agree: number, disagree: number): ArmPredictionCounts => counts({ agree, disagree });
    const reports = judgeDivergence(
      {
        ...input({ 'agreement:self': agreement(800, 200), 'agreement:v2': agreement(790, 210), 'agreement:v3': agreement(600, 400) }),
        policy: { action: 'report', classes: 3, minAnswers: 50, referenceAnswers: 100, bins: 10, noiseFloor: 'self' },
        challengers: [{ name: 'self', mode: 'shadow' }, { name: 'v2', mode: 'shadow' }, { name: 'v3', mode: 'shadow' }],
      },
      memory,
    );
    expect(reports[0]!.noiseFloor).toBeUndefined();
    expect(reports[1]!.noiseFloor).toMatchObject({ floor: 'self', state: 'at_floor', disagreement: 0.21, floorDisagreement: 0.2, pairs: 1000 });
    expect(reports[2]!.noiseFloor).toMatchObject({ state: 'above_floor', disagreement: 0.4 });
  });

  it('counts since the experiment began', () => {
    const source = { predictionsOf: () => ({ arms: { champion: counts({ a: 10, b: 5 }) }, drift: [] }) };
    const memory = newDivergenceMemory(source, 'r');
    const later = { predictionsOf: () => ({ arms: { champion: counts({ a: 15, b: 5, c: 1 }) }, drift: [] }) };
    expect(predictionsSince(later, memory, 'r')).toEqual({ champion: { n: 6, classes: { a: 5, c: 1 }, scores: {} } });
  });
});

describe('the divergence guardrail', () => {
  const base = { champion: emptyTotals(), challenger: emptyTotals(), p95ThresholdMs: null };
  const extra = (logEValue: number | null): ExtraGuardrail => ({ name: 'prediction_divergence', logEValue, nChampion: 1000, nChallenger: 1000, estimate: 0.01, describe: 'test' });

  it('joins the statistical family under Holm: E must reach k/(family alpha) with four tests', () => {
    const familyAlpha = defaultGuardrails.alpha * 0.9;
    const below = evaluateGuardrails({ ...base, extra: [extra(Math.log(4 / familyAlpha) - 0.01)] }, defaultGuardrails, {});
    expect(below.verdicts.find((v) => v.name === 'prediction_divergence')!.state).toBe('healthy');
    const above = evaluateGuardrails({ ...base, extra: [extra(Math.log(4 / familyAlpha) + 0.01)] }, defaultGuardrails, {});
    const verdict = above.verdicts.find((v) => v.name === 'prediction_divergence')!;
    expect(verdict).toMatchObject({ kind: 'divergence', state: 'breach' });
    // The running p-value is kept: a later, weaker look does not undo the breach.
    const again = evaluateGuardrails({ ...base, extra: [extra(0)] }, defaultGuardrails, above.memory);
    expect(again.verdicts.find((v) => v.name === 'prediction_divergence')!.state).toBe('breach');
  });

  it('is collecting while there are too few answers', () => {
    const result = evaluateGuardrails({ ...base, extra: [extra(null)] }, defaultGuardrails, {});
    expect(result.verdicts.find((v) => v.name === 'prediction_divergence')!.state).toBe('collecting');
  });
});

describe('pooling prediction counts through replica payloads', () => {
  it('sums each arm\'s counts over replicas and refuses malformed ones', () => {
    const window = new RouteWindow({ ...defaultGuardrails }, 0);
    const a = encodeWindow(window, 'a', 1, { ...noExperiment, predictions: { champion: counts({ x: 3 }), 'challenger:v2': counts({ x: 1, y: 2 }) } });
    const b = encodeWindow(window, 'b', 1, { ...noExperiment, predictions: { champion: counts({ x: 1, y: 1 }) } });
    const parsed = [parsePayload(JSON.stringify(a))!, parsePayload(JSON.stringify(b))!];
    const pooled = poolPayloads('e', parsed, 0);
    expect(pooled.predictions).toEqual({ champion: { n: 5, classes: { x: 4, y: 1 }, scores: {} }, 'challenger:v2': { n: 3, classes: { x: 1, y: 2 }, scores: {} } });
    expect(parsePayload(JSON.stringify({ ...a, predictions: { champion: { n: 1, classes: { x: -1 }, scores: {} } } }))).toBeNull();
  });
});

describe('action: hold', () => {
  const within = (name: string): GuardrailVerdict => ({ name: name as GuardrailVerdict['name'], kind: 'statistical', state: 'within', nChampion: 1, nChallenger: 1, estimate: 0, threshold: 0, pValue: 1, csLower: 0, csUpper: 0, alpha: 0.045, reason: '' });
  const report = (state: DivergenceReport['state']): DivergenceReport => ({
    challenger: 'v2', mode: 'canary', action: 'hold', kind: 'class', compared: 'served', state,
    champion: { n: 500, distribution: {} }, challengerSide: { n: 500, distribution: {} }, jensenShannon: 0.02, logEValue: 9, pValue: 1e-4, alpha: 0.05, evidence: '', reason: 'r',
  });
  const rollout = { steps: [10, 50], minDuration: 0, minRequests: 1, promote: true, approve: [] };
  const advance = (verdicts: GuardrailVerdict[]) => next({ phase: 'healthy', step: 0, stepStartedAt: 0, stepStartRequests: 0, rollbackReason: null, gate: null }, { now: 1, rolledBack: false, paused: false, servedPercent: 10, challenger: 'v2', challengerRequests: 100, verdicts, srmOk: true }, { rollout }).actions;

  it('keeps the rollout at its step while divergent, never rolls back, and lets it advance otherwise', () => {
    const base = [within('error_rate'), within('latency_log_mean'), within('latency_exceedance')];
    const metrics = new Metrics({ defaultMetrics: false });
    const held = settleDivergence('r', { reports: [report('divergent')], extra: [] }, base, 'v2', metrics).verdicts;
    expect(advance(held)).toEqual([]);
    const free = settleDivergence('r', { reports: [report('not_divergent')], extra: [] }, base, 'v2', metrics).verdicts;
    expect(advance(free)).toEqual([{ type: 'set-percent', challenger: 'v2', percent: 50, step: 1 }]);
    expect(advance(base)).toEqual(advance(free));
  });
});
