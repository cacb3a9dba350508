// The controller shell's pure decisions (control/route-control.ts) and its active set (control/active-routes.ts), table-tested.
import { describe, expect, it } from 'vitest';
import { validatePolicyText } from '../../../src/config/load.js';
import { compilePolicy } from '../../../src/decision/compile.js';
import { buildSnapshot, decideRoute, type DecisionSnapshot, type RouteState } from '../../../src/decision/snapshot.js';
import { emptyTotals } from '../../../src/analysis/window.js';
import { ActiveRoutes } from '../../../src/control/active-routes.js';
import { controlledChallenger, followerBreach, freshSrm, roleOutcome, servedShares, snapshotChanges, srmLook, type Controlled } from '../../../src/control/route-control.js';
import { initialControlState, type ControlAction, type ControlState } from '../../../src/control/phases.js';
import type { GuardrailVerdict } from '../../../src/control/guardrails.js';
import type { RouteLink } from '../../../src/coordination/coordination.js';

const champion = { name: 'v1', url: 'http://127.0.0.1:9001' };
const canary = { name: 'v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent: 10 };
const ab = { name: 'v3', url: 'http://127.0.0.1:9003', mode: 'ab', percent: 20 };
const shadow = { name: 'v4', url: 'http://127.0.0.1:9004', mode: 'shadow', percent: 100 };

function routes(...defs: Record<string, unknown>[]) {
  const { policy, problems } = validatePolicyText('route-control.test.yaml', JSON.stringify({ routes: defs }));
  if (!policy) throw new Error(`test policy invalid: ${JSON.stringify(problems)}`);
  return compilePolicy(policy);
}

function state(challengers: { name: string; mode: 'canary' | 'ab' | 'shadow'; percent: number }[], extra: Partial<RouteState> = {}): RouteState {
  return { challengers, groupId: 'g', source: 'policy', paused: false, rolledBack: false, ...extra };
}

describe('controlledChallenger and servedShares', () => {
  const plain = routes({ name: 'plain', match: { pathPrefix: '/p' }, champion, challengers: [ab, canary, shadow] })[0]!;
  const rollout = routes({ name: 'rollout', match: { pathPrefix: '/r' }, champion, challengers: [ab, { ...canary, percent: 0 }], rollout: { steps: [10, 50], minDuration: '30s', minRequests: 100 } })[0]!;
  const rows: { name: string; route: typeof plain; live: RouteState; want: Controlled | null; shares: [string, number][] }[] = [
    { name: 'without a rollout: the first served challenger, with its own share (not the cumulative bound)', route: plain, live: state([{ name: 'v3', mode: 'ab', percent: 20 }, { name: 'v2', mode: 'canary', percent: 10 }]), want: { name: 'v3', mode: 'ab', servedPercent: 20 }, shares: [['v3', 20], ['v2', 10]] },
    { name: 'a shadow is never controlled', route: plain, live: state([{ name: 'v4', mode: 'shadow', percent: 100 }]), want: null, shares: [] },
    { name: 'rolled back: nothing served, nothing controlled', route: plain, live: state([{ name: 'v3', mode: 'ab', percent: 20 }], { rolledBack: true }), want: null, shares: [] },
    { name: 'with a rollout: the canary, even at 0 %', route: rollout, live: state([{ name: 'v3', mode: 'ab', percent: 20 }, { name: 'v2', mode: 'canary', percent: 0 }]), want: { name: 'v2', mode: 'canary', servedPercent: 0 }, shares: [['v3', 20]] },
    { name: 'with a rollout: the canary at its live share behind another challenger', route: rollout, live: state([{ name: 'v3', mode: 'ab', percent: 20 }, { name: 'v2', mode: 'canary', percent: 50 }]), want: { name: 'v2', mode: 'canary', servedPercent: 50 }, shares: [['v3', 20], ['v2', 50]] },
  ];
  it.each(rows)('$name', ({ route, live, want, shares }) => {
    const decision = decideRoute(route, live);
    expect(controlledChallenger(decision)).toEqual(want);
    expect([...servedShares(decision)]).toEqual(shares);
  });
});

describe('srmLook', () => {
  const controlled: Controlled = { name: 'v2', mode: 'canary', servedPercent: 10 };
  const inputs = (champion: number, challenger: number) => ({ champion: { ...emptyTotals(), units: champion }, challenger: { ...emptyTotals(), units: challenger }, strata: [], p95ThresholdMs: null });

  it('starts an epoch on the first look and on any change of share, champion share or step, counting units from there', () => {
    const first = srmLook(freshSrm, controlled, 10, 0, inputs(500, 50));
    expect(first.newEpoch).toBe('v2|10|90|0');
    expect(first.memory.base).toEqual([500, 50]);
    const same = srmLook(first.memory, controlled, 10, 0, inputs(1400, 150));
    expect(same.newEpoch).toBeNull();
    expect(same.ok).toBe(true);
    for (const [c, total, step] of [[{ ...controlled, servedPercent: 20 }, 20, 0], [controlled, 30, 0], [controlled, 10, 1]] as const) {
      const moved = srmLook(same.memory, c, total, step, inputs(2000, 200));
      expect(moved.newEpoch).not.toBeNull();
      expect([moved.memory.base, moved.memory.p]).toEqual([[2000, 200], 1]);
    }
  });

  it('flags a mismatch and keeps the lowest running p-value; cannot judge a 0 % or 100 % split', () => {
    const start = srmLook(freshSrm, controlled, 10, null, inputs(0, 0));
    const broken = srmLook(start.memory, controlled, 10, null, inputs(900, 300));
    expect(broken.ok).toBe(false);
    const healed = srmLook(broken.memory, controlled, 10, null, inputs(1800, 310));
    expect(healed.memory.p).toBe(broken.memory.p);
    expect(healed.ok).toBe(false);
    expect(srmLook(freshSrm, { ...controlled, servedPercent: 0 }, 0, null, inputs(100, 0)).ok).toBeNull();
    expect(srmLook(freshSrm, { ...controlled, servedPercent: 100 }, 100, null, inputs(0, 100)).ok).toBeNull();
  });
});

describe('roleOutcome', () => {
  const current: ControlState = { ...initialControlState(), phase: 'healthy', step: 0 };
  const stepped: ControlState = { ...current, step: 1 };
  const rollback: ControlAction = { type: 'rollback', reason: 'error_rate', evidence: [] };
  const step: ControlAction = { type: 'set-percent', challenger: 'v2', percent: 50, step: 1 };
  const leaderState: ControlState = { ...current, step: 2 };
  const link = (role: RouteLink<ControlState>['role'], leader: ControlState | null = null): RouteLink<ControlState> => ({ role, pooled: null, leader: null, leaderState: leader });
  const rows: { name: string; role: RouteLink<ControlState>['role']; result: { state: ControlState; actions: ControlAction[] }; leader?: ControlState; want: { state: ControlState; actions: ControlAction[]; report: boolean; followerBreakers: boolean } }[] = [
    { name: 'alone: acts on everything', role: 'alone', result: { state: stepped, actions: [step] }, want: { state: stepped, actions: [step], report: false, followerBreakers: false } },
    { name: 'leader: acts and reports its state', role: 'leader', result: { state: stepped, actions: [step] }, want: { state: stepped, actions: [step], report: true, followerBreakers: false } },
    { name: 'degraded: a rollback happens at once', role: 'degraded', result: { state: { ...current, phase: 'rolled_back' }, actions: [rollback] }, want: { state: { ...current, phase: 'rolled_back' }, actions: [rollback], report: false, followerBreakers: false } },
    { name: 'degraded: a step waits for the fleet (state unchanged)', role: 'degraded', result: { state: stepped, actions: [step] }, want: { state: current, actions: [], report: false, followerBreakers: false } },
    { name: 'degraded: judging without acting moves the state', role: 'degraded', result: { state: { ...current, phase: 'promotable' }, actions: [] }, want: { state: { ...current, phase: 'promotable' }, actions: [], report: false, followerBreakers: false } },
    { name: 'follower: follows the leader\'s state, acts on nothing, runs its own breakers', role: 'follower', result: { state: stepped, actions: [step] }, leader: leaderState, want: { state: leaderState, actions: [], report: false, followerBreakers: true } },
    { name: 'follower without a published leader state: never assumes a step it did not take', role: 'follower', result: { state: stepped, actions: [step] }, want: { state: current, actions: [], report: false, followerBreakers: true } },
    { name: 'follower while the leader\'s rollback is on its way: keeps its state', role: 'follower', result: { state: stepped, actions: [] }, leader: { ...leaderState, phase: 'rolled_back' }, want: { state: current, actions: [], report: false, followerBreakers: true } },
  ];
  it.each(rows)('$name', ({ role, result, leader, want }) => {
    expect(roleOutcome(role, current, result, link(role, leader ?? null), false)).toEqual(want);
  });

  it('follower on a rolled-back route: the leader\'s step with the rolled_back phase', () => {
    expect(roleOutcome('follower', current, { state: current, actions: [] }, link('follower', leaderState), true).state).toEqual({ ...leaderState, phase: 'rolled_back' });
  });
});

describe('followerBreach', () => {
  const verdict = (state: GuardrailVerdict['state']) => ({ name: 'error_ceiling', kind: 'breaker', state }) as GuardrailVerdict;
  const rows: { name: string; since: number | null; state: GuardrailVerdict['state']; now: number; want: { breachSince: number | null; rolls: boolean } }[] = [
    { name: 'no breach: nothing pending', since: 900, state: 'healthy', now: 1000, want: { breachSince: null, rolls: false } },
    { name: 'a new breach starts the grace period', since: null, state: 'breach', now: 1000, want: { breachSince: 1000, rolls: false } },
    { name: 'within the grace period: waits for the leader', since: 1000, state: 'breach', now: 1749, want: { breachSince: 1000, rolls: false } },
    { name: 'beyond it: rolls back on the breaker', since: 1000, state: 'breach', now: 1750, want: { breachSince: null, rolls: true } },
  ];
  it.each(rows)('$name', ({ since, state, now, want }) => {
    const result = followerBreach(since, [verdict(state)], now, 750);
    expect({ breachSince: result.breachSince, rolls: result.rollBackOn !== null }).toEqual(want);
  });
});

describe('snapshotChanges', () => {
  const base = { match: { pathPrefix: '/a' }, champion, challengers: [canary] };
  const snap = (defs: Record<string, unknown>[], states: Record<string, RouteState> = {}): DecisionSnapshot => {
    const compiled = routes(...defs);
    return buildSnapshot(compiled, new Map(compiled.map((r) => [r.name, states[r.name] ?? state([{ name: 'v2', mode: 'canary', percent: 10 }])])), 'v');
  };
  const a = { ...base, name: 'a' };
  const b = { ...base, name: 'b', match: { pathPrefix: '/b' } };
  const previous = snap([a, b]);
  const rows: { name: string; next: DecisionSnapshot; changed: string[]; removed: string[] }[] = [
    { name: 'the first snapshot: every route is new', next: previous, changed: ['a', 'b'], removed: [] },
    { name: 'a reload with the same policies (recompiled objects): nothing', next: snap([a, b]), changed: [], removed: [] },
    { name: 'a changed policy', next: snap([{ ...a, timeouts: { requestMs: 5_000 } }, b]), changed: ['a'], removed: [] },
    { name: 'a live split change', next: snap([a, b], { b: state([{ name: 'v2', mode: 'canary', percent: 30 }]) }), changed: ['b'], removed: [] },
    { name: 'a pause and a rollback', next: snap([a, b], { a: state([{ name: 'v2', mode: 'canary', percent: 10 }], { paused: true }), b: state([{ name: 'v2', mode: 'canary', percent: 10 }], { rolledBack: true, source: 'rollback' }) }), changed: ['a', 'b'], removed: [] },
    { name: 'a route added and one removed', next: snap([b, { ...base, name: 'c', match: { pathPrefix: '/c' } }]), changed: ['c'], removed: ['a'] },
  ];
  it.each(rows)('$name', ({ name, next, changed, removed }) => {
    const result = snapshotChanges(name.startsWith('the first') ? null : previous, next);
    expect(result.changed.map((d) => d.route.name).sort()).toEqual(changed);
    expect(result.removed).toEqual(removed);
  });
});

describe('ActiveRoutes', () => {
  it('keeps a route until its latest time, then lets it go once nothing is pending', () => {
    const active = new ActiveRoutes();
    active.touch('a', 1000);
    active.touch('b', 500);
    active.touch('a', 800); // an earlier time never shortens the stay
    expect(active.due(0, () => true)).toEqual(['a', 'b']);
    expect(active.due(500, () => true)).toEqual(['a']);
    let pending = true;
    expect(active.due(1000, () => !pending)).toEqual(['a']);
    pending = false;
    expect(active.due(1000, () => !pending)).toEqual([]);
    expect(active.size).toBe(0);
    active.touch('a', 2000);
    expect([active.has('a'), active.due(1500, () => true)]).toEqual([true, ['a']]);
  });
});
