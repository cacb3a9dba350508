// The controller state machine, table-tested: every transition and the actions it emits.
import { describe, expect, it } from 'vitest';
import { initialControlState, next, type ControlObservation, type ControlState } from '../../../src/control/phases.js';
import type { GuardrailVerdict } from '../../../src/control/guardrails.js';
import type { RolloutPolicy } from '../../../src/config/policy-schema.js';

const verdict = (name: GuardrailVerdict['name'], kind: GuardrailVerdict['kind'], state: GuardrailVerdict['state']): GuardrailVerdict => ({
  name, kind, state, nChampion: 100, nChallenger: 100, estimate: 0, threshold: 0.01, pValue: 1, csLower: null, csUpper: null, alpha: 0.05, reason: '',
});
const within = [verdict('error_ceiling', 'breaker', 'healthy'), verdict('p99_ceiling', 'breaker', 'healthy'), verdict('error_rate', 'statistical', 'within'), verdict('latency_log_mean', 'statistical', 'within'), verdict('latency_exceedance', 'statistical', 'within')];
const collecting = within.map((v) => (v.kind === 'statistical' ? { ...v, state: 'collecting' as const } : v));
const healthy = within.map((v) => (v.name === 'error_rate' ? { ...v, state: 'healthy' as const } : v));
const breach = within.map((v) => (v.name === 'error_ceiling' ? { ...v, state: 'breach' as const } : v));

const rollout: RolloutPolicy = { steps: [1, 5, 25, 100], minDuration: 1_000, minRequests: 10, promote: true };
const obs = (o: Partial<ControlObservation>): ControlObservation => ({ now: 10_000, rolledBack: false, paused: false, servedPercent: 5, challenger: 'v2', challengerRequests: 100, verdicts: within, srmOk: true, ...o });
const at = (o: Partial<ControlState>): ControlState => ({ ...initialControlState(), ...o });

describe('next(state, observation, policy)', () => {
  const cases: { name: string; state: ControlState; obs: ControlObservation; rollout: RolloutPolicy | null; phase: string; actions: unknown[] }[] = [
    { name: 'no served challenger → inactive', state: at({}), obs: obs({ challenger: null }), rollout: null, phase: 'inactive', actions: [] },
    { name: 'too little data → collecting, never a pass', state: at({}), obs: obs({ verdicts: collecting }), rollout: null, phase: 'collecting', actions: [] },
    { name: 'a breach rolls back first and alone', state: at({ phase: 'healthy' }), obs: obs({ verdicts: breach }), rollout: null, phase: 'rolled_back', actions: [{ type: 'rollback', reason: 'error_ceiling' }] },
    { name: 'a breach during a rollout rolls back too', state: at({ phase: 'healthy', step: 2 }), obs: obs({ verdicts: breach, servedPercent: 25 }), rollout, phase: 'rolled_back', actions: [{ type: 'rollback' }] },
    { name: 'rolled back stays rolled back while the split says so', state: at({ phase: 'rolled_back' }), obs: obs({ rolledBack: true, verdicts: breach }), rollout: null, phase: 'rolled_back', actions: [] },
    { name: 'all within margin without a rollout → promotable (reported only)', state: at({}), obs: obs({}), rollout: null, phase: 'promotable', actions: [] },
    { name: 'SRM flagged blocks promotable', state: at({}), obs: obs({ srmOk: false }), rollout: null, phase: 'healthy', actions: [] },
    { name: 'a rollout starts at its first step', state: at({}), obs: obs({ servedPercent: 0 }), rollout, phase: 'collecting', actions: [{ type: 'set-percent', percent: 1, step: 0 }] },
    { name: 'a step is held until its minimum duration', state: at({ phase: 'healthy', step: 0, stepStartedAt: 9_500, stepStartRequests: 0 }), obs: obs({ servedPercent: 1 }), rollout, phase: 'healthy', actions: [] },
    { name: 'a step is held until its minimum requests', state: at({ phase: 'healthy', step: 0, stepStartedAt: 0, stepStartRequests: 95 }), obs: obs({ servedPercent: 1 }), rollout, phase: 'healthy', actions: [] },
    { name: 'a step is held while a guardrail is not confidently within', state: at({ phase: 'healthy', step: 0, stepStartedAt: 0 }), obs: obs({ servedPercent: 1, verdicts: healthy }), rollout, phase: 'healthy', actions: [] },
    { name: 'a finished, confident step advances', state: at({ phase: 'healthy', step: 1, stepStartedAt: 0 }), obs: obs({ servedPercent: 5 }), rollout, phase: 'healthy', actions: [{ type: 'set-percent', percent: 25, step: 2 }] },
    { name: 'pausing holds the step', state: at({ phase: 'healthy', step: 1, stepStartedAt: 0 }), obs: obs({ paused: true }), rollout, phase: 'paused', actions: [] },
    { name: 'the last step promotes', state: at({ phase: 'healthy', step: 3, stepStartedAt: 0 }), obs: obs({ servedPercent: 100 }), rollout, phase: 'promoted', actions: [{ type: 'promote', challenger: 'v2' }] },
    { name: 'the last step without promote is promotable', state: at({ phase: 'healthy', step: 3, stepStartedAt: 0 }), obs: obs({ servedPercent: 100 }), rollout: { ...rollout, promote: false }, phase: 'promotable', actions: [] },
    { name: 'promoted is terminal', state: at({ phase: 'promoted', step: 3 }), obs: obs({ verdicts: breach }), rollout, phase: 'promoted', actions: [] },
    { name: 'a resumed route starts over', state: at({ phase: 'rolled_back', step: 2 }), obs: obs({ servedPercent: 0 }), rollout, phase: 'collecting', actions: [{ type: 'set-percent', percent: 1, step: 0 }] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = next(c.state, c.obs, { rollout: c.rollout });
      expect(result.state.phase).toBe(c.phase);
      expect(result.actions).toHaveLength(c.actions.length);
      c.actions.forEach((a, i) => expect(result.actions[i]).toMatchObject(a as object));
    });
  }

  describe('A/B promotion (guardrails.ab.promote)', () => {
    const ab = (o: Partial<ControlObservation>, abPromote = true) => next(at({ phase: 'healthy' }), obs({ servedPercent: 50, abWinner: 'v2', ...o }), { rollout: null, abPromote });
    it('promotes a challenger that won on labelled outcomes', () => {
      expect(ab({})).toEqual({ state: expect.objectContaining({ phase: 'promoted' }), actions: [{ type: 'promote', challenger: 'v2' }] });
    });
    it('only reports the winner when the policy does not promote', () => {
      expect(ab({}, false)).toMatchObject({ state: { phase: 'promotable' }, actions: [] });
    });
    it('never acts on a champion that wins, nor without a winner', () => {
      expect(ab({ abWinner: 'v1' }).actions).toEqual([]);
      expect(ab({ abWinner: null }).actions).toEqual([]);
      expect(ab({ abWinner: undefined }).actions).toEqual([]);
    });
    it('waits while a guardrail collects, the split is flagged or the route is paused', () => {
      expect(ab({ verdicts: collecting }).actions).toEqual([]);
      expect(ab({ srmOk: false }).actions).toEqual([]);
      expect(ab({ paused: true }).actions).toEqual([]);
    });
    it('rolls back on a breach even when the challenger wins', () => {
      expect(ab({ verdicts: breach }).actions).toMatchObject([{ type: 'rollback', reason: 'error_ceiling' }]);
    });
  });

  it('is pure: the input state is not mutated', () => {
    const state = at({ phase: 'healthy', step: 1, stepStartedAt: 0 });
    const copy = structuredClone(state);
    next(state, obs({}), { rollout });
    expect(state).toEqual(copy);
  });
});
