// The human-readable `switchyard analysis` output: coordination, arms with this replica's share, shadow gates, A/B winners.
import { describe, expect, it } from 'vitest';
import type { RouteAnalysis } from '../../../src/control/controller.js';
import type { AbReport, ShadowGateReport } from '../../../src/control/experiment-report.js';
import { abWinnerLine, analysisText, approvalLine, coordinationLine, divergenceLine, driftLine, shadowGateLine } from '../../../src/cli/control.js';

const arm = (name: string, role: string, requests: number) => ({ name, role, requests, failures: 0, errorRate: requests > 0 ? 0 : null, medianLatencyMs: requests > 0 ? 1.25 : null });

function analysis(overrides: Partial<RouteAnalysis> = {}): RouteAnalysis {
  const local = [arm('iris-v1', 'champion', 101), arm('iris-v2', 'challenger', 12)];
  return {
    route: 'iris', phase: 'collecting', decision: 'collecting', challenger: 'iris-v2', servedPercent: 10, step: null, rollbackReason: null,
    arms: local, guardrails: [], srm: { pValue: 1, ok: true }, p95ThresholdMs: null,
    coordination: 'off', instanceId: 'host-1234', role: 'alone', leader: null, epoch: null,
    counts: { local, pooled: null, replicas: null }, shadowGates: [], abWinners: [], approval: null, divergence: [], drift: [],
    ...overrides,
  };
}

const gate = (overrides: Partial<ShadowGateReport> = {}): ShadowGateReport => ({
  challenger: 'iris-v3',
  agreement: { agree: 1800, of: 2000, rate: 0.9, disagreementUpper: 0.123, maxDisagreement: 0.05, state: 'not_yet' },
  verdicts: [], ready: false, reason: 'disagreement is not yet confidently under 5% (upper bound 12.3%)', agreementShared: false,
  ...overrides,
});

const ab = (overrides: Partial<AbReport> = {}): AbReport => ({
  metric: 'accuracy', champion: { variant: 'iris-v1', n: 400, correct: 320 }, challenger: { variant: 'iris-v2', n: 400, correct: 360 },
  estimate: 0.1, csLower: 0.0412, csUpper: 0.1588, state: 'winner', winner: 'iris-v2', alpha: 0.05, minLabelled: 50,
  ...overrides,
});

describe('coordinationLine', () => {
  it.each([
    { what: 'off', a: analysis(), line: 'coordination off: replica host-1234 decides alone (no Redis)' },
    {
      what: 'ok, follower',
      a: analysis({ coordination: 'ok', instanceId: 'sy-a', role: 'follower', leader: 'sy-b', epoch: 'bb9b8e5183.0.iris-v2', counts: { local: [], pooled: [], replicas: 3 } }),
      line: 'coordination ok: replica sy-a is follower; leader sy-b; statistics pooled over 3 replicas; epoch bb9b8e5183.0.iris-v2',
    },
    {
      what: 'ok, the only replica leading',
      a: analysis({ coordination: 'ok', instanceId: 'sy-a', role: 'leader', leader: 'sy-a', epoch: 'e.0.x', counts: { local: [], pooled: [], replicas: 1 } }),
      line: 'coordination ok: replica sy-a is leader; leader sy-a; statistics pooled over 1 replica; epoch e.0.x',
    },
    {
      what: 'ok before a lease is known',
      a: analysis({ coordination: 'ok', instanceId: 'sy-a', role: 'follower', leader: null, epoch: 'e.0.x', counts: { local: [], pooled: [], replicas: 2 } }),
      line: 'coordination ok: replica sy-a is follower; no leader yet; statistics pooled over 2 replicas; epoch e.0.x',
    },
    {
      what: 'degraded',
      a: analysis({ coordination: 'degraded', instanceId: 'sy-a', role: 'degraded', leader: null, epoch: 'e.0.x' }),
      line: 'coordination DEGRADED (Redis unreachable or slow: deciding on own statistics, rollback only, rollout steps wait): replica sy-a is degraded; statistics not pooled (this replica only); epoch e.0.x',
    },
    {
      what: 'starting',
      a: analysis({ coordination: 'starting', instanceId: 'sy-a', role: 'degraded' }),
      line: 'coordination starting (no exchange with Redis yet): replica sy-a is degraded; statistics not pooled (this replica only)',
    },
  ])('$what', ({ a, line }) => {
    expect(coordinationLine(a)).toBe(line);
  });
});

describe('analysisText', () => {
  it('prints the coordination line under the headline, and no experiment lines for a plain canary', () => {
    const lines = analysisText(analysis()).split('\n');
    expect(lines[0]).toBe('route iris: collecting; challenger iris-v2 at 10%; SRM p 1.0000');
    expect(lines[1]).toBe('coordination off: replica host-1234 decides alone (no Redis)');
    expect(lines[3]).toMatch(/^arm\s+role\s+requests\s+failures\s+error rate\s+median ms$/);
    expect(analysisText(analysis())).not.toMatch(/shadow gate|A\/B/);
  });

  it('adds a "this replica" column next to the pooled requests when the statistics are pooled', () => {
    const local = [arm('iris-v1', 'champion', 101), arm('iris-v2', 'challenger', 12)];
    const pooled = [arm('iris-v1', 'champion', 305), arm('iris-v2', 'challenger', 33), arm('iris-v3', 'shadow', 40)];
    const text = analysisText(analysis({ coordination: 'ok', role: 'leader', leader: 'host-1234', epoch: 'e.0.iris-v2', arms: pooled, counts: { local, pooled, replicas: 3 } }));
    const table = text.split('\n\n')[1]!.split('\n').map((line) => line.split(/\s{2,}/));
    expect(table[0]).toEqual(['arm', 'role', 'requests', 'this replica', 'failures', 'error rate', 'median ms']);
    expect(table.slice(1).map((row) => row.slice(0, 4))).toEqual([['iris-v1', 'champion', '305', '101'], ['iris-v2', 'challenger', '33', '12'], ['iris-v3', 'shadow', '40', '0']]);
  });

  it('ends with one line per shadow gate and per A/B winner', () => {
    const text = analysisText(analysis({ shadowGates: [gate()], abWinners: [ab()] }));
    const last = text.split('\n\n').at(-1)!.split('\n');
    expect(last).toEqual([shadowGateLine(gate()), abWinnerLine(ab())]);
  });

  it('still renders an answer from a server without coordination or experiment fields', () => {
    const old = analysis() as Partial<RouteAnalysis>;
    for (const key of ['coordination', 'instanceId', 'role', 'leader', 'epoch', 'counts', 'shadowGates', 'abWinners'] as const) delete old[key];
    const text = analysisText(old as RouteAnalysis);
    expect(text).not.toContain('coordination');
    expect(text.split('\n')[2]).toMatch(/^arm\s+role\s+requests\s+failures/);
  });
});

describe('shadowGateLine', () => {
  it('says whether the shadow is ready, with its agreement and the reason', () => {
    expect(shadowGateLine(gate())).toBe('shadow gate iris-v3: not ready; agreement 90.0% of 2000 parsed pairs, max disagreement 5.0%; disagreement is not yet confidently under 5% (upper bound 12.3%)');
    expect(shadowGateLine(gate({ ready: true, reason: 'ready for a canary' }))).toMatch(/^shadow gate iris-v3: ready; /);
    expect(shadowGateLine(gate({ agreement: { agree: 0, of: 0, rate: null, disagreementUpper: null, maxDisagreement: 0.05, state: 'collecting' }, reason: '0 of 50 parsed pairs needed' })))
      .toBe('shadow gate iris-v3: not ready; agreement - of 0 parsed pairs, max disagreement 5.0%; 0 of 50 parsed pairs needed');
    expect(shadowGateLine(gate({ agreementShared: true }))).toContain('of 2000 parsed pairs (all shadows of the route)');
  });
});

describe('abWinnerLine', () => {
  it('names the winner with both accuracies and the always-valid interval of the difference', () => {
    expect(abWinnerLine(ab())).toBe('A/B iris-v2 vs iris-v1: winner iris-v2; accuracy iris-v2 90.0% of 400 vs iris-v1 80.0% of 400 labelled; difference +10.0 pts (always-valid CI +4.1 pts .. +15.9 pts, alpha 0.05)');
  });

  it('says when there is no winner yet, or how many labels are still needed', () => {
    expect(abWinnerLine(ab({ state: 'no_winner_yet', winner: null, estimate: -0.005, csLower: -0.06, csUpper: 0.05 }))).toMatch(/^A\/B iris-v2 vs iris-v1: no winner yet; .*difference -0\.5 pts \(always-valid CI -6\.0 pts \.\. \+5\.0 pts/);
    expect(abWinnerLine(ab({ state: 'collecting', winner: null, estimate: null, csLower: null, csUpper: null, champion: { variant: 'iris-v1', n: 0, correct: 0 }, challenger: { variant: 'iris-v2', n: 12, correct: 9 } })))
      .toBe('A/B iris-v2 vs iris-v1: collecting; accuracy iris-v2 75.0% of 12 vs iris-v1 - of 0 labelled (50 per arm needed)');
  });
});

describe('divergence and drift lines', () => {
  it('prints the state, the action and the noise floor', () => {
    const line = divergenceLine({
      challenger: 'iris-v3', mode: 'shadow', action: 'report', kind: 'class', compared: 'pairs', state: 'not_divergent',
      champion: { n: 900, distribution: {} }, challengerSide: { n: 900, distribution: {} }, jensenShannon: 0.001, logEValue: -3, pValue: 1, alpha: 0.05,
      evidence: 'e', reason: 'no divergence detected',
      noiseFloor: { floor: 'iris-v1-floor', disagreement: 0.21, floorDisagreement: 0.2, pairs: 900, floorPairs: 300, state: 'at_floor', pValue: 0.8 },
    });
    expect(line).toBe('divergence iris-v3 (report, pairs): not_divergent; no divergence detected; noise floor: at_floor (disagreement 21.0% vs 20.0% for iris-v1-floor)');
    const drift = driftLine({ variant: 'iris-v1', feature: 'petal_length', window: 3, endedAt: '2026-01-01T00:00:00.000Z', psi: 0.41, jensenShannon: 0.09, psiThreshold: 0.2, jsThreshold: 0.05, noiseBound: 0.1, drifted: true, nReference: 500, nCurrent: 400 });
    expect(drift).toBe('drift iris-v1 petal_length: window 3 PSI 0.410 (threshold 0.200), JS 0.0900; drifted');
    expect(analysisText(analysis({ drift: [] }))).not.toContain('drift ');
  });
});

describe('approvalLine', () => {
  const waiting = { step: 2, percent: 50, since: '2026-12-07T21:00:00.000Z', waitingFor: ['person' as const], person: true, approvedBy: null, webhook: null };
  it('names the gate, since when it waits, and the command that approves it', () => {
    const a = analysis({ phase: 'awaiting_approval', decision: 'awaiting_approval', approval: waiting });
    expect(approvalLine(a)).toBe('approval gate before step 2 (50 %): waiting since 2026-12-07T21:00:00.000Z for person; a person: `switchyard approve iris --step 2`');
    expect(analysisText(a).split('\n')[1]).toBe(approvalLine(a));
  });
  it('shows the webhook\'s asks and the approvals already in', () => {
    const webhook = { url: 'http://ci/confirm', attempts: 3, lastStatus: 503, lastError: null, confirmed: false };
    expect(approvalLine(analysis({ approval: { ...waiting, step: 'promote', percent: 100, waitingFor: ['webhook'], approvedBy: 'alice', webhook } })))
      .toBe('approval gate before the promotion: waiting since 2026-12-07T21:00:00.000Z for webhook; approved by alice; the confirm webhook http://ci/confirm (3 asks, last answer 503)');
  });
  it('is absent without a gate, and for servers from before gates', () => {
    expect(approvalLine(analysis())).toBeNull();
    const old = analysis() as Partial<RouteAnalysis>;
    delete old.approval;
    expect(approvalLine(old as RouteAnalysis)).toBeNull();
  });
});
