// The rollout controller as a pure state machine: next(state, observation, policy) → { state, actions }.
import { z } from 'zod';
import type { RolloutPolicy } from '../config/policy-schema.js';
import type { GuardrailVerdict } from './guardrails.js';

/**
 * The closed set of phases, the one list of them: the leader's state published to other replicas is checked against
 * it, so a phase added here is one every replica accepts. rolled_back and promoted only end by a person's action
 * (resume) or a new policy.
 */
export const phases = ['inactive', 'collecting', 'healthy', 'promotable', 'paused', 'rolled_back', 'promoted'] as const;
export type Phase = (typeof phases)[number];

/** Per-route controller state; plain data so it can be logged, persisted, replicated and table-tested. */
export const controlStateSchema = z.object({
  phase: z.enum(phases),
  /** Index into rollout.steps, or null before the rollout started (or without a rollout). */
  step: z.number().int().min(0).nullable(),
  stepStartedAt: z.number(),
  /** Challenger requests seen when the current step started. */
  stepStartRequests: z.number().min(0),
  /** Why the last rollback happened (guardrail name or "manual"). */
  rollbackReason: z.string().nullable(),
});
export type ControlState = z.infer<typeof controlStateSchema>;

/** What the shell observed at one tick. */
export interface ControlObservation {
  now: number;
  /** The live split says rolled back (by us earlier, a person, or another replica). */
  rolledBack: boolean;
  paused: boolean;
  /** Share of traffic the controlled challenger is served right now. */
  servedPercent: number;
  challenger: string | null;
  challengerRequests: number;
  verdicts: readonly GuardrailVerdict[];
  /** Sequential SRM check on the router's own split: true passes, false flags, null not judged. */
  srmOk: boolean | null;
  /** ab routes: the variant that won on labelled outcomes in this experiment (null: no winner yet, or not an A/B). */
  abWinner?: string | null;
}

/** Effects the shell carries out, in order. A rollback always comes first and alone. */
export type ControlAction =
  | { type: 'rollback'; reason: string; evidence: readonly GuardrailVerdict[] }
  | { type: 'set-percent'; challenger: string; percent: number; step: number }
  | { type: 'promote'; challenger: string };

export interface ControlPolicy {
  rollout: RolloutPolicy | null;
  /** guardrails.ab.promote: an A/B challenger that wins is promoted instead of only reported. */
  abPromote?: boolean;
}

export function initialControlState(): ControlState {
  return { phase: 'inactive', step: null, stepStartedAt: 0, stepStartRequests: 0, rollbackReason: null };
}

/** The next state and the actions to take. Pure: same inputs, same outputs. */
export function next(state: ControlState, obs: ControlObservation, policy: ControlPolicy): { state: ControlState; actions: ControlAction[] } {
  if (obs.rolledBack) return { state: { ...state, phase: 'rolled_back' }, actions: [] };
  if (state.phase === 'rolled_back') {
    // The live split no longer says rolled back: a person resumed the route. Start over.
    state = { ...initialControlState() };
  }
  if (state.phase === 'promoted') return { state, actions: [] };

  const rollout = policy.rollout;
  if (obs.challenger === null) return { state: { ...state, phase: 'inactive' }, actions: [] };

  // Start a progressive rollout at its first step.
  if (rollout && state.step === null) {
    const first = rollout.steps[0]!;
    return {
      state: { ...state, phase: 'collecting', step: 0, stepStartedAt: obs.now, stepStartRequests: obs.challengerRequests },
      actions: obs.servedPercent === first ? [] : [{ type: 'set-percent', challenger: obs.challenger, percent: first, step: 0 }],
    };
  }

  if (obs.servedPercent <= 0) return { state: { ...state, phase: rollout ? state.phase : 'inactive' }, actions: [] };

  const breach = obs.verdicts.find((v) => v.state === 'breach');
  if (breach) {
    return {
      state: { ...state, phase: 'rolled_back', rollbackReason: breach.name },
      actions: [{ type: 'rollback', reason: breach.name, evidence: obs.verdicts }],
    };
  }

  const statistical = obs.verdicts.filter((v) => v.kind === 'statistical');
  const collecting = statistical.some((v) => v.state === 'collecting') || obs.verdicts.some((v) => v.kind === 'breaker' && v.state === 'collecting');
  const allWithin = statistical.length > 0 && statistical.every((v) => v.state === 'within');
  // null: the split cannot be checked (a 0 % or 100 % step, too little data); only a flagged mismatch blocks.
  const srmPasses = obs.srmOk !== false;

  // An A/B winner is promoted only when the policy says so, nothing is collecting or breaching, the split checks out
  // and no one paused the route; a champion that wins is reported, never acted on.
  if (policy.abPromote && obs.abWinner === obs.challenger && !obs.paused && !collecting && srmPasses) {
    return { state: { ...state, phase: 'promoted' }, actions: [{ type: 'promote', challenger: obs.challenger }] };
  }

  if (!rollout) {
    return { state: { ...state, phase: collecting ? 'collecting' : allWithin && srmPasses ? 'promotable' : 'healthy' }, actions: [] };
  }
  if (obs.paused) return { state: { ...state, phase: 'paused' }, actions: [] };

  const step = state.step ?? 0;
  const stepDone = obs.now - state.stepStartedAt >= rollout.minDuration && obs.challengerRequests - state.stepStartRequests >= rollout.minRequests;
  if (stepDone && allWithin && srmPasses) {
    if (step + 1 < rollout.steps.length) {
      const percent = rollout.steps[step + 1]!;
      return {
        state: { ...state, phase: 'healthy', step: step + 1, stepStartedAt: obs.now, stepStartRequests: obs.challengerRequests },
        actions: [{ type: 'set-percent', challenger: obs.challenger, percent, step: step + 1 }],
      };
    }
    if (rollout.promote) return { state: { ...state, phase: 'promoted' }, actions: [{ type: 'promote', challenger: obs.challenger }] };
    return { state: { ...state, phase: 'promotable' }, actions: [] };
  }
  return { state: { ...state, phase: collecting ? 'collecting' : 'healthy' }, actions: [] };
}
