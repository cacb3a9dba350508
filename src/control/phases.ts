// The rollout controller as a pure state machine: next(state, observation, policy) → { state, actions }.
import { z } from 'zod';
import type { RolloutPolicy } from '../config/policy-schema.js';
import type { GuardrailVerdict } from './guardrails.js';

/**
 * The closed set of phases, the one list of them: the leader's state published to other replicas is checked against
 * it, so a phase added here is one every replica accepts. rolled_back and promoted only end by a person's action
 * (resume) or a new policy; awaiting_approval ends when the gate's approvals are in (or a breach rolls back).
 */
export const phases = ['inactive', 'collecting', 'healthy', 'promotable', 'paused', 'awaiting_approval', 'rolled_back', 'promoted'] as const;
export type Phase = (typeof phases)[number];

/** Where a route waits for approval: the step it will enter next (index into rollout.steps), or the promotion. */
export type GateStep = number | 'promote';

/** An open approval gate: the route finished its step and waits before entering the next one (or promoting). */
export const approvalGateSchema = z.object({
  target: z.union([z.number().int().min(0), z.literal('promote')]),
  /** Share the challenger serves once through the gate (100 for the promotion). */
  percent: z.number().min(0).max(100),
  /** Clock ms when the gate opened. */
  since: z.number(),
  /** A person must approve (rollout.approve names this step). */
  person: z.boolean(),
  /** The confirm webhook must answer 2xx (rollout.confirm.before names this step). */
  webhook: z.boolean(),
  /** Token name of the person who approved; null while no one has. */
  approvedBy: z.string().nullable(),
  /** The confirm webhook answered 2xx for this gate. */
  confirmed: z.boolean(),
}).readonly();
export type ApprovalGate = z.infer<typeof approvalGateSchema>;

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
  /** The open approval gate (phase awaiting_approval, or paused while one is open); null otherwise. */
  // A leader from before approval gates publishes no gate.
  gate: approvalGateSchema.nullable().default(null),
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
  /** The confirm webhook answered 2xx for the open gate (the shell polls it off the tick). */
  confirmed?: boolean;
}

/** Effects the shell carries out, in order. A rollback always comes first and alone. */
export type ControlAction =
  | { type: 'rollback'; reason: string; evidence: readonly GuardrailVerdict[] }
  | { type: 'set-percent'; challenger: string; percent: number; step: number }
  | { type: 'promote'; challenger: string }
  /** A gate opened: the shell audits approval.needed and starts asking the confirm webhook when the gate needs it. */
  | { type: 'await-approval'; gate: ApprovalGate };

export interface ControlPolicy {
  rollout: RolloutPolicy | null;
  /** guardrails.ab.promote: an A/B challenger that wins is promoted instead of only reported. */
  abPromote?: boolean;
}

export function initialControlState(): ControlState {
  return { phase: 'inactive', step: null, stepStartedAt: 0, stepStartRequests: 0, rollbackReason: null, gate: null };
}

/** Who must let the route through before it enters `target` (null: nobody, the step is not gated). */
export function gateNeeds(rollout: RolloutPolicy, target: GateStep): { person: boolean; webhook: boolean } | null {
  const key = target === 'promote' ? 'promote' : rollout.steps[target];
  const person = rollout.approve.includes(key as number | 'promote');
  const webhook = rollout.confirm?.before.includes(key as number | 'promote') ?? false;
  return person || webhook ? { person, webhook } : null;
}

function openGate(rollout: RolloutPolicy, target: GateStep, needs: { person: boolean; webhook: boolean }, now: number): ApprovalGate {
  return { target, percent: target === 'promote' ? 100 : rollout.steps[target]!, since: now, ...needs, approvedBy: null, confirmed: false };
}

/** Every approval the gate needs is in. */
export function gateSatisfied(gate: ApprovalGate): boolean {
  return (!gate.person || gate.approvedBy !== null) && (!gate.webhook || gate.confirmed);
}

/** What the gate still waits for, in words for people and machines: "person", "webhook". */
export function gateWaitingFor(gate: ApprovalGate): ('person' | 'webhook')[] {
  return [...(gate.person && gate.approvedBy === null ? (['person'] as const) : []), ...(gate.webhook && !gate.confirmed ? (['webhook'] as const) : [])];
}

/** Why a person's approval was refused (the admin API answers 409 with it). */
export type ApproveRefusal =
  | { reason: 'not_awaiting'; phase: Phase }
  | { reason: 'wrong_step'; awaiting: GateStep }
  | { reason: 'webhook_only'; awaiting: GateStep }
  | { reason: 'already_approved'; by: string; awaiting: GateStep };

/**
 * A person approves the open gate. `expected` (optional) is the step the person means to let the route enter, so an
 * approval given for a gate that has since closed cannot open a later one. Pure: the next tick moves the route.
 */
export function approveGate(state: ControlState, who: string, expected?: GateStep): { ok: true; state: ControlState; gate: ApprovalGate } | ({ ok: false } & ApproveRefusal) {
  const gate = state.gate;
  if (gate === null) return { ok: false, reason: 'not_awaiting', phase: state.phase };
  if (expected !== undefined && expected !== gate.target) return { ok: false, reason: 'wrong_step', awaiting: gate.target };
  if (!gate.person) return { ok: false, reason: 'webhook_only', awaiting: gate.target };
  if (gate.approvedBy !== null) return { ok: false, reason: 'already_approved', by: gate.approvedBy, awaiting: gate.target };
  const approved = { ...gate, approvedBy: who };
  return { ok: true, state: { ...state, gate: approved }, gate: approved };
}

/** Which challenger a person's promote serves at 100 %, or why there is none (the admin API answers 409). */
export type PromotionPlan =
  | { ok: true; challenger: string; mode: 'canary' | 'ab' }
  | { ok: false; reason: 'rolled_back' | 'already_promoted' | 'no_challenger' }
  | { ok: false; reason: 'shadow_only'; shadow: string };

/**
 * A person promotes now: the controlled challenger (the rollout's canary, else the served canary or ab challenger)
 * serves 100 % in its mode and the route is promoted, the same end state as an automatic promotion, skipping the
 * remaining steps and gates. A shadow serves no client, so it has no served evidence and cannot be promoted: it
 * starts as a canary first (switchyard set). A rolled-back route must be resumed first.
 */
export function planPromotion(input: { phase: Phase; rolledBack: boolean; controlled: { name: string; mode: string } | null; shadows: readonly string[] }): PromotionPlan {
  if (input.rolledBack || input.phase === 'rolled_back') return { ok: false, reason: 'rolled_back' };
  if (input.phase === 'promoted') return { ok: false, reason: 'already_promoted' };
  const c = input.controlled;
  if (c !== null && (c.mode === 'canary' || c.mode === 'ab')) return { ok: true, challenger: c.name, mode: c.mode };
  if (input.shadows.length > 0) return { ok: false, reason: 'shadow_only', shadow: input.shadows[0]! };
  return { ok: false, reason: 'no_challenger' };
}

/** Leaves the open gate for `target`: the next step starts (or the route is promoted). */
function passGate(state: ControlState, target: GateStep, obs: ControlObservation, challenger: string, rollout: RolloutPolicy): { state: ControlState; actions: ControlAction[] } {
  if (target === 'promote') return { state: { ...state, phase: 'promoted', gate: null }, actions: [{ type: 'promote', challenger }] };
  return {
    state: { ...state, phase: 'healthy', step: target, stepStartedAt: obs.now, stepStartRequests: obs.challengerRequests, gate: null },
    actions: [{ type: 'set-percent', challenger, percent: rollout.steps[target]!, step: target }],
  };
}

/** The open gate with the webhook's answer applied. */
function withConfirmation(gate: ApprovalGate, obs: ControlObservation): ApprovalGate {
  return gate.webhook && !gate.confirmed && obs.confirmed === true ? { ...gate, confirmed: true } : gate;
}

/** The next state and the actions to take. Pure: same inputs, same outputs. */
export function next(state: ControlState, obs: ControlObservation, policy: ControlPolicy): { state: ControlState; actions: ControlAction[] } {
  if (obs.rolledBack) return { state: { ...state, phase: 'rolled_back', gate: null }, actions: [] };
  if (state.phase === 'rolled_back') {
    // The live split no longer says rolled back: a person resumed the route. Start over.
    state = { ...initialControlState() };
  }
  if (state.phase === 'promoted') return { state, actions: [] };

  const rollout = policy.rollout;
  if (obs.challenger === null) return { state: { ...state, phase: 'inactive' }, actions: [] };

  // Start a progressive rollout at its first step (after its gate, when the first step has one).
  if (rollout && state.step === null) {
    const first = rollout.steps[0]!;
    const needs = gateNeeds(rollout, 0);
    if (needs !== null) {
      if (state.gate === null) {
        const gate = openGate(rollout, 0, needs, obs.now);
        return { state: { ...state, phase: 'awaiting_approval', gate }, actions: [{ type: 'await-approval', gate }] };
      }
      const gate = withConfirmation(state.gate, obs);
      if (!gateSatisfied(gate) || obs.paused) return { state: { ...state, phase: obs.paused ? 'paused' : 'awaiting_approval', gate }, actions: [] };
      state = { ...state, gate: null };
    }
    return {
      state: { ...state, phase: 'collecting', step: 0, stepStartedAt: obs.now, stepStartRequests: obs.challengerRequests },
      actions: obs.servedPercent === first ? [] : [{ type: 'set-percent', challenger: obs.challenger, percent: first, step: 0 }],
    };
  }

  if (obs.servedPercent <= 0) return { state: { ...state, phase: rollout ? state.phase : 'inactive' }, actions: [] };

  const breach = obs.verdicts.find((v) => v.state === 'breach');
  if (breach) {
    return {
      state: { ...state, phase: 'rolled_back', rollbackReason: breach.name, gate: null },
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
    // A rollout whose promotion is gated asks first, as it would at its last step; the open gate is handled below.
    const needs = rollout ? gateNeeds(rollout, 'promote') : null;
    if (needs === null) return { state: { ...state, phase: 'promoted', gate: null }, actions: [{ type: 'promote', challenger: obs.challenger }] };
    if (state.gate === null) {
      const gate = openGate(rollout!, 'promote', needs, obs.now);
      return { state: { ...state, phase: 'awaiting_approval', gate }, actions: [{ type: 'await-approval', gate }] };
    }
  }

  if (!rollout) {
    return { state: { ...state, phase: collecting ? 'collecting' : allWithin && srmPasses ? 'promotable' : 'healthy' }, actions: [] };
  }
  // An open gate keeps the webhook's answer while paused; a pause holds the route at the gate either way.
  const gate = state.gate === null ? null : withConfirmation(state.gate, obs);
  if (obs.paused) return { state: { ...state, phase: 'paused', gate }, actions: [] };
  if (gate !== null) {
    // Guardrails keep judging while the route waits (a breach rolled back above); once every approval is in, it goes on.
    if (!gateSatisfied(gate)) return { state: { ...state, phase: 'awaiting_approval', gate }, actions: [] };
    return passGate(state, gate.target, obs, obs.challenger, rollout);
  }

  const step = state.step ?? 0;
  const stepDone = obs.now - state.stepStartedAt >= rollout.minDuration && obs.challengerRequests - state.stepStartRequests >= rollout.minRequests;
  if (stepDone && allWithin && srmPasses) {
    const target: GateStep | null = step + 1 < rollout.steps.length ? step + 1 : rollout.promote ? 'promote' : null;
    if (target === null) return { state: { ...state, phase: 'promotable' }, actions: [] };
    const needs = gateNeeds(rollout, target);
    if (needs !== null) {
      const opened = openGate(rollout, target, needs, obs.now);
      return { state: { ...state, phase: 'awaiting_approval', gate: opened }, actions: [{ type: 'await-approval', gate: opened }] };
    }
    return passGate(state, target, obs, obs.challenger, rollout);
  }
  return { state: { ...state, phase: collecting ? 'collecting' : 'healthy' }, actions: [] };
}
