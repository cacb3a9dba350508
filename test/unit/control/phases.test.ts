// The controller state machine, table-tested: every transition and the actions it emits.
import { describe, expect, it } from 'vitest';
import { approveGate, gateNeeds, gateSatisfied, gateWaitingFor, initialControlState, next, phases, planPromotion, type ApprovalGate, type ControlObservation, type ControlState } from '../../../src/control/phases.js';
import type { GuardrailVerdict } from '../../../src/control/guardrails.js';
import type { RolloutPolicy } from '../../../src/config/policy-schema.js';

const verdict = (name: GuardrailVerdict['name'], kind: GuardrailVerdict['kind'], state: GuardrailVerdict['state']): GuardrailVerdict => ({
  name, kind, state, nChampion: 100, nChallenger: 100, estimate: 0, threshold: 0.01, pValue: 1, csLower: null, csUpper: null, alpha: 0.05, reason: '',
});
const within = [verdict('error_ceiling', 'breaker', 'healthy'), verdict('p99_ceiling', 'breaker', 'healthy'), verdict('error_rate', 'statistical', 'within'), verdict('latency_log_mean', 'statistical', 'within'), verdict('latency_exceedance', 'statistical', 'within')];
const collecting = within.map((v) => (v.kind === 'statistical' ? { ...v, state: 'collecting' as const } : v));
const healthy = within.map((v) => (v.name === 'error_rate' ? { ...v, state: 'healthy' as const } : v));
const breach = within.map((v) => (v.name === 'error_ceiling' ? { ...v, state: 'breach' as const } : v));

const rollout: RolloutPolicy = { steps: [1, 5, 25, 100], minDuration: 1_000, minRequests: 10, promote: true, approve: [] };
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

  describe('approval gates (rollout.approve, rollout.confirm)', () => {
    // Steps 1, 5, 25, 100: a person approves before 25 % and before the promotion; the webhook confirms before 100 %.
    const gated: RolloutPolicy = { ...rollout, approve: [25, 'promote'], confirm: { url: 'http://127.0.0.1:1/confirm', before: [100], interval: 1_000, timeout: 500 } };
    const gate = (o: Partial<ApprovalGate>): ApprovalGate => ({ target: 2, percent: 25, since: 5_000, person: true, webhook: false, approvedBy: null, confirmed: false, ...o });
    const cases: { name: string; state: ControlState; obs: ControlObservation; rollout: RolloutPolicy; phase: string; gate?: Partial<ApprovalGate> | null; actions: unknown[] }[] = [
      { name: 'an ungated step advances as before', state: at({ phase: 'healthy', step: 0, stepStartedAt: 0 }), obs: obs({ servedPercent: 1 }), rollout: gated, phase: 'healthy', gate: null, actions: [{ type: 'set-percent', percent: 5, step: 1 }] },
      { name: 'a finished step before a gated one opens the gate instead of advancing', state: at({ phase: 'healthy', step: 1, stepStartedAt: 0 }), obs: obs({}), rollout: gated, phase: 'awaiting_approval', gate: { target: 2, percent: 25, person: true, webhook: false, since: 10_000 }, actions: [{ type: 'await-approval', gate: { target: 2, percent: 25 } }] },
      { name: 'an unfinished step does not ask for approval yet', state: at({ phase: 'healthy', step: 1, stepStartedAt: 9_500 }), obs: obs({}), rollout: gated, phase: 'healthy', gate: null, actions: [] },
      { name: 'a step not confidently within does not ask for approval', state: at({ phase: 'healthy', step: 1, stepStartedAt: 0 }), obs: obs({ verdicts: healthy }), rollout: gated, phase: 'healthy', gate: null, actions: [] },
      { name: 'the route waits at the gate without a person', state: at({ phase: 'awaiting_approval', step: 1, stepStartedAt: 0, gate: gate({}) }), obs: obs({}), rollout: gated, phase: 'awaiting_approval', gate: { approvedBy: null }, actions: [] },
      { name: 'a breach while waiting still rolls back, and the gate closes', state: at({ phase: 'awaiting_approval', step: 1, stepStartedAt: 0, gate: gate({}) }), obs: obs({ verdicts: breach }), rollout: gated, phase: 'rolled_back', gate: null, actions: [{ type: 'rollback', reason: 'error_ceiling' }] },
      { name: 'a rollback by someone else closes the gate', state: at({ phase: 'awaiting_approval', step: 1, gate: gate({}) }), obs: obs({ rolledBack: true }), rollout: gated, phase: 'rolled_back', gate: null, actions: [] },
      { name: 'a person\'s approval lets the route enter the step', state: at({ phase: 'awaiting_approval', step: 1, stepStartedAt: 0, gate: gate({ approvedBy: 'alice' }) }), obs: obs({ now: 20_000 }), rollout: gated, phase: 'healthy', gate: null, actions: [{ type: 'set-percent', percent: 25, step: 2 }] },
      { name: 'the approved step starts its own minimum duration at the approval', state: at({ phase: 'awaiting_approval', step: 1, stepStartedAt: 0, gate: gate({ approvedBy: 'alice' }) }), obs: obs({ now: 20_000, challengerRequests: 400 }), rollout: gated, phase: 'healthy', actions: [{ type: 'set-percent' }] },
      { name: 'an approved route that is paused stays paused at the gate', state: at({ phase: 'awaiting_approval', step: 1, gate: gate({ approvedBy: 'alice' }) }), obs: obs({ paused: true }), rollout: gated, phase: 'paused', gate: { approvedBy: 'alice' }, actions: [] },
      { name: 'a webhook gate opens with only the webhook to answer', state: at({ phase: 'healthy', step: 2, stepStartedAt: 0 }), obs: obs({ servedPercent: 25 }), rollout: gated, phase: 'awaiting_approval', gate: { target: 3, percent: 100, person: false, webhook: true }, actions: [{ type: 'await-approval' }] },
      { name: 'the webhook not confirming keeps the route waiting', state: at({ phase: 'awaiting_approval', step: 2, gate: gate({ target: 3, percent: 100, person: false, webhook: true }) }), obs: obs({ servedPercent: 25, confirmed: false }), rollout: gated, phase: 'awaiting_approval', gate: { confirmed: false }, actions: [] },
      { name: 'the webhook\'s 2xx lets the route through', state: at({ phase: 'awaiting_approval', step: 2, gate: gate({ target: 3, percent: 100, person: false, webhook: true }) }), obs: obs({ servedPercent: 25, confirmed: true }), rollout: gated, phase: 'healthy', gate: null, actions: [{ type: 'set-percent', percent: 100, step: 3 }] },
      { name: 'a 2xx that arrives while paused is kept for later', state: at({ phase: 'paused', step: 2, gate: gate({ target: 3, percent: 100, person: false, webhook: true }) }), obs: obs({ servedPercent: 25, confirmed: true, paused: true }), rollout: gated, phase: 'paused', gate: { confirmed: true }, actions: [] },
      { name: 'a gate that needs both waits for the person after the webhook', state: at({ phase: 'awaiting_approval', step: 1, gate: gate({ webhook: true }) }), obs: obs({ confirmed: true }), rollout: gated, phase: 'awaiting_approval', gate: { confirmed: true, approvedBy: null }, actions: [] },
      { name: 'the last step gated by "promote" asks before promoting', state: at({ phase: 'healthy', step: 3, stepStartedAt: 0 }), obs: obs({ servedPercent: 100 }), rollout: gated, phase: 'awaiting_approval', gate: { target: 'promote', percent: 100, person: true }, actions: [{ type: 'await-approval' }] },
      { name: 'an approved promotion promotes', state: at({ phase: 'awaiting_approval', step: 3, gate: gate({ target: 'promote', percent: 100, approvedBy: 'bob' }) }), obs: obs({ servedPercent: 100 }), rollout: gated, phase: 'promoted', gate: null, actions: [{ type: 'promote', challenger: 'v2' }] },
      { name: 'an A/B winner asks before a gated promotion', state: at({ phase: 'healthy', step: 1, stepStartedAt: 9_900 }), obs: obs({ abWinner: 'v2' }), rollout: gated, phase: 'awaiting_approval', gate: { target: 'promote', percent: 100, person: true }, actions: [{ type: 'await-approval' }] },
      { name: 'an approved A/B winner is promoted', state: at({ phase: 'awaiting_approval', step: 1, gate: gate({ target: 'promote', percent: 100, approvedBy: 'dan' }) }), obs: obs({ abWinner: 'v2' }), rollout: gated, phase: 'promoted', gate: null, actions: [{ type: 'promote', challenger: 'v2' }] },
      { name: 'a gated first step waits before the rollout starts', state: at({}), obs: obs({ servedPercent: 0 }), rollout: { ...rollout, approve: [1] }, phase: 'awaiting_approval', gate: { target: 0, percent: 1 }, actions: [{ type: 'await-approval' }] },
      { name: 'an approved first step starts the rollout', state: at({ phase: 'awaiting_approval', gate: gate({ target: 0, percent: 1, approvedBy: 'carol' }) }), obs: obs({ servedPercent: 0 }), rollout: { ...rollout, approve: [1] }, phase: 'collecting', gate: null, actions: [{ type: 'set-percent', percent: 1, step: 0 }] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const result = next(c.state, c.obs, { rollout: c.rollout, abPromote: true });
        expect(result.state.phase).toBe(c.phase);
        if (c.gate === null) expect(result.state.gate).toBeNull();
        else if (c.gate !== undefined) expect(result.state.gate).toMatchObject(c.gate);
        expect(result.actions).toHaveLength(c.actions.length);
        c.actions.forEach((a, i) => expect(result.actions[i]).toMatchObject(a as object));
      });
    }

    it('names who a step needs: a person, the webhook, both or nobody', () => {
      const both: RolloutPolicy = { ...gated, approve: [25], confirm: { ...gated.confirm!, before: [25] } };
      expect([0, 1, 2, 3, 'promote'].map((t) => gateNeeds(gated, t as number | 'promote'))).toEqual([null, null, { person: true, webhook: false }, { person: false, webhook: true }, { person: true, webhook: false }]);
      expect(gateNeeds(both, 2)).toEqual({ person: true, webhook: true });
      expect(gateWaitingFor(gate({ webhook: true }))).toEqual(['person', 'webhook']);
      expect(gateSatisfied(gate({ webhook: true, approvedBy: 'a' }))).toBe(false);
      expect(gateSatisfied(gate({ webhook: true, approvedBy: 'a', confirmed: true }))).toBe(true);
    });

    const approvals: { name: string; state: ControlState; expected?: number | 'promote'; result: object }[] = [
      { name: 'records who approved', state: at({ phase: 'awaiting_approval', gate: gate({}) }), result: { ok: true, gate: { approvedBy: 'alice' } } },
      { name: 'accepts the step the route waits at', state: at({ phase: 'awaiting_approval', gate: gate({}) }), expected: 2, result: { ok: true } },
      { name: 'refuses another step (a stale approval cannot open a later gate)', state: at({ phase: 'awaiting_approval', gate: gate({}) }), expected: 3, result: { ok: false, reason: 'wrong_step', awaiting: 2 } },
      { name: 'refuses when no gate is open', state: at({ phase: 'healthy', step: 1 }), result: { ok: false, reason: 'not_awaiting', phase: 'healthy' } },
      { name: 'refuses a gate only the webhook can pass', state: at({ phase: 'awaiting_approval', gate: gate({ person: false, webhook: true }) }), result: { ok: false, reason: 'webhook_only' } },
      { name: 'refuses a second approval', state: at({ phase: 'awaiting_approval', gate: gate({ webhook: true, approvedBy: 'bob' }) }), result: { ok: false, reason: 'already_approved', by: 'bob' } },
    ];
    for (const c of approvals) {
      it(`approveGate ${c.name}`, () => {
        const copy = structuredClone(c.state);
        expect(approveGate(c.state, 'alice', c.expected)).toMatchObject(c.result);
        expect(c.state).toEqual(copy);
      });
    }
  });

  describe('a person\'s promotion (planPromotion)', () => {
    const cases: { name: string; input: Parameters<typeof planPromotion>[0]; result: object }[] = [
      { name: 'a canary is served 100 % in canary mode', input: { phase: 'healthy', rolledBack: false, controlled: { name: 'v2', mode: 'canary' }, shadows: [] }, result: { ok: true, challenger: 'v2', mode: 'canary' } },
      { name: 'an ab challenger is served 100 % in ab mode', input: { phase: 'collecting', rolledBack: false, controlled: { name: 'v2', mode: 'ab' }, shadows: ['v3'] }, result: { ok: true, challenger: 'v2', mode: 'ab' } },
      { name: 'a route waiting at a gate is promoted past it', input: { phase: 'awaiting_approval', rolledBack: false, controlled: { name: 'v2', mode: 'canary' }, shadows: [] }, result: { ok: true } },
      { name: 'a shadow-only route is refused: no served evidence', input: { phase: 'inactive', rolledBack: false, controlled: null, shadows: ['v3'] }, result: { ok: false, reason: 'shadow_only', shadow: 'v3' } },
      { name: 'a rolled-back route is refused until resumed', input: { phase: 'rolled_back', rolledBack: true, controlled: { name: 'v2', mode: 'canary' }, shadows: [] }, result: { ok: false, reason: 'rolled_back' } },
      { name: 'a promoted route changes nothing', input: { phase: 'promoted', rolledBack: false, controlled: { name: 'v2', mode: 'canary' }, shadows: [] }, result: { ok: false, reason: 'already_promoted' } },
      { name: 'a route without challengers has nothing to promote', input: { phase: 'inactive', rolledBack: false, controlled: null, shadows: [] }, result: { ok: false, reason: 'no_challenger' } },
    ];
    for (const c of cases) it(c.name, () => expect(planPromotion(c.input)).toMatchObject(c.result));
  });

  it('lists every phase once, awaiting_approval included', () => {
    expect(new Set(phases).size).toBe(phases.length);
    expect(phases).toContain('awaiting_approval');
  });
});
