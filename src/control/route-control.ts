// Pure per-route decisions of the controller shell: which challenger it controls, the sample-ratio epoch, what each
// coordination role may do with the state machine's result, a follower's breaker grace, and which routes a snapshot
// change touched. The shell (controller.ts) only gathers inputs and carries out what these return.
import type { ChallengerMode } from '../config/policy-schema.js';
import type { CompiledRoute, DecisionSnapshot, RouteDecision, RouteState } from '../decision/snapshot.js';
import type { CoordinationRole, RouteLink } from '../coordination/coordination.js';
import { routeVersion } from '../coordination/keys.js';
import { sequentialSrm } from '../analysis/stats/index.js';
import type { GuardrailInputs, GuardrailVerdict } from './guardrails.js';
import type { ControlAction, ControlState } from './phases.js';

/** Each served challenger's share of the route (its bucket range's width), by arm name. */
export function servedShares(decision: RouteDecision): Map<string, number> {
  let previous = 0;
  const served = new Map<string, number>();
  for (const range of decision.served) {
    served.set(range.arm.name, range.upTo - previous);
    previous = range.upTo;
  }
  return served;
}

/** The challenger a progressive rollout moves: the route's canary, else its first served (non-shadow) challenger. */
export function rolloutChallenger(route: CompiledRoute): { name: string; mode: ChallengerMode } | undefined {
  return route.policy.challengers.find((c) => c.mode === 'canary') ?? route.policy.challengers.find((c) => c.mode !== 'shadow');
}

/** The challenger the controller judges and moves, with its live served share. */
export interface Controlled {
  readonly name: string;
  readonly mode: ChallengerMode;
  readonly servedPercent: number;
}

/** The controlled challenger: the rollout's canary challenger, else the first challenger with a served share. */
export function controlledChallenger(decision: RouteDecision): Controlled | null {
  const served = servedShares(decision);
  if (decision.route.policy.rollout) {
    const canary = rolloutChallenger(decision.route);
    return canary ? { name: canary.name, mode: canary.mode, servedPercent: served.get(canary.name) ?? 0 } : null;
  }
  const first = decision.served[0];
  if (!first) return null;
  return { name: first.arm.name, mode: first.mode, servedPercent: served.get(first.arm.name) ?? 0 };
}

/** The running sample-ratio check of one split epoch: its key, the unit counts when it began, its running p-value. */
export interface SrmMemory {
  readonly key: string | null;
  readonly base: readonly [number, number];
  readonly p: number;
}

export const freshSrm: SrmMemory = Object.freeze({ key: null, base: Object.freeze([0, 0] as const), p: 1 });

/**
 * One look of the sequential sample-ratio check (docs/statistics.md, "Sample ratio"): it counts randomisation units,
 * not requests, and judges only the current split. A new challenger share, champion share or step is a new epoch
 * (`newEpoch`: the shell then starts a new split epoch in the window) with fresh unit counts and a fresh running
 * p-value. `ok` is null when the split cannot be judged (a 0 % or 100 % share, too few units).
 */
export function srmLook(memory: SrmMemory, controlled: Controlled | null, servedTotal: number, step: number | null, inputs: GuardrailInputs): { memory: SrmMemory; ok: boolean | null; newEpoch: string | null } {
  const servedPercent = controlled?.servedPercent ?? 0;
  const championPercent = 100 - servedTotal;
  const key = `${controlled?.name ?? ''}|${servedPercent}|${championPercent}|${step ?? ''}`;
  const newEpoch = memory.key !== key ? key : null;
  let next = newEpoch !== null ? { key, base: [inputs.champion.units, inputs.challenger.units] as const, p: 1 } : memory;
  if (servedPercent <= 0 || championPercent <= 0) return { memory: next, ok: null, newEpoch };
  const counts = [inputs.champion.units - next.base[0], inputs.challenger.units - next.base[1]];
  // Other served challengers take traffic too; the check compares only these two arms, so weight by their shares.
  const result = sequentialSrm(counts, [championPercent, servedPercent]);
  if (result.status !== 'ok') return { memory: next, ok: null, newEpoch };
  next = { ...next, p: Math.min(next.p, result.pLook) };
  return { memory: next, ok: next.p > 0.001, newEpoch };
}

/**
 * A follower's rollout state: the leader's (so a new leader continues at the same step instead of starting over), or
 * its own judgment when no leader has published one, never a state that assumes an action it did not take.
 */
export function followerState(current: ControlState, link: RouteLink<ControlState>, result: { state: ControlState; actions: readonly ControlAction[] }, rolledBack: boolean): ControlState {
  const leader = link.leaderState;
  if (leader !== null) {
    if (rolledBack) return { ...leader, phase: 'rolled_back' };
    // The leader rolled back and the change is still on its way here: keep the current state until it lands.
    return leader.phase === 'rolled_back' ? current : leader;
  }
  return result.actions.length === 0 ? result.state : current;
}

/** What a replica in `role` does with the state machine's result. */
export interface RoleOutcome {
  readonly state: ControlState;
  /** Actions to carry out, in order. */
  readonly actions: readonly ControlAction[];
  /** The leader publishes its state, so a new leader continues from it. */
  readonly report: boolean;
  /** A follower runs its own breakers as a safety net. */
  readonly followerBreakers: boolean;
}

/**
 * Alone or leading: everything. Degraded (Redis configured but away): a rollback still happens at once; rollout steps
 * wait for the fleet. Follower: acts on nothing itself (see `followerBreach`) and follows the leader's state.
 */
export function roleOutcome(role: CoordinationRole, current: ControlState, result: { state: ControlState; actions: readonly ControlAction[] }, link: RouteLink<ControlState>, rolledBack: boolean): RoleOutcome {
  switch (role) {
    case 'alone':
    case 'leader':
      return { state: result.state, actions: result.actions, report: role === 'leader', followerBreakers: false };
    case 'degraded': {
      const rollback = result.actions.find((a) => a.type === 'rollback');
      if (rollback) return { state: result.state, actions: [rollback], report: false, followerBreakers: false };
      return { state: result.actions.length === 0 ? result.state : current, actions: [], report: false, followerBreakers: false };
    }
    case 'follower':
      return { state: followerState(current, link, result, rolledBack), actions: [], report: false, followerBreakers: true };
  }
}

/**
 * A follower's own hard breakers: the leader sees the same failures pooled within one exchange, so a follower acts
 * only when its breach outlasts `graceMs` (the leader is gone or stuck, or the failure is local to this replica).
 * Returns when the breach began (null: none) and the breaker to roll back on, once the grace is over.
 */
export function followerBreach(breachSince: number | null, breakers: readonly GuardrailVerdict[], now: number, graceMs: number): { breachSince: number | null; rollBackOn: GuardrailVerdict | null } {
  const breach = breakers.find((v) => v.state === 'breach');
  if (!breach) return { breachSince: null, rollBackOn: null };
  const since = breachSince ?? now;
  if (now - since < graceMs) return { breachSince: since, rollBackOn: null };
  return { breachSince: null, rollBackOn: breach };
}

/** Whether two live states of a route differ in anything that serves or controls traffic. */
export function sameRouteState(a: RouteState, b: RouteState): boolean {
  if (a.paused !== b.paused || a.rolledBack !== b.rolledBack || a.groupId !== b.groupId || a.source !== b.source || a.challengers.length !== b.challengers.length) return false;
  return a.challengers.every((c, i) => {
    const d = b.challengers[i]!;
    return c.name === d.name && c.mode === d.mode && c.percent === d.percent;
  });
}

/**
 * The routes a snapshot swap touched: new ones, ones whose policy changed (a reload recompiles every route; an
 * unchanged policy keeps its content hash), ones whose live split, pause or rollback changed; and the names of those
 * it removed. O(routes), once per swap (building the snapshot is O(routes) already), never per tick.
 */
export function snapshotChanges(previous: DecisionSnapshot | null, next: DecisionSnapshot): { changed: RouteDecision[]; removed: string[] } {
  const changed: RouteDecision[] = [];
  for (const decision of next.decisions) {
    const before = previous?.byName.get(decision.route.name);
    if (before === undefined) changed.push(decision);
    else if (before.route !== decision.route && routeVersion(before.route.policy) !== routeVersion(decision.route.policy)) changed.push(decision);
    else if (!sameRouteState(before.state, decision.state)) changed.push(decision);
  }
  const removed: string[] = [];
  if (previous !== null) for (const name of previous.byName.keys()) if (!next.byName.has(name)) removed.push(name);
  return { changed, removed };
}
