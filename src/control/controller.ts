// The effectful shell around the pure controller: every tick it judges the active routes' windows and carries out the actions.
import type { Logger } from 'pino';
import { defaultGuardrails, type ChallengerMode, type GuardrailPolicy } from '../config/policy-schema.js';
import type { ChallengerShare, CompiledRoute, DecisionSnapshot, RouteDecision } from '../decision/snapshot.js';
import type { LiveWindows } from '../analysis/window.js';
import { armKey, emptyTotals, RouteWindow, stratumPairs } from '../analysis/window.js';
import type { Metrics } from '../metrics/registry.js';
import type { AuditLog } from './audit.js';
import { abWinnerSince, countsBaseline, experimentReports, outcomesSince, pairsSince, type AbReport, type CountsBaseline, type ExperimentCounts, type ShadowGateReport } from './experiment-report.js';
import { evaluateGuardrails, type GuardrailInputs, type GuardrailMemory, type GuardrailVerdict } from './guardrails.js';
import type { LiveSplits } from './live-splits.js';
import { ConfirmGates, type ConfirmView } from './confirm-gate.js';
import { approveGate, gateWaitingFor, initialControlState, next, planPromotion, type ApprovalGate, type ControlAction, type ControlState, type GateStep, type Phase } from './phases.js';
import { SWY_ERR_CONFLICT, SWY_ERR_ROUTE_UNKNOWN } from '../errors.js';
import { ActiveRoutes } from './active-routes.js';
import { controlledChallenger, followerBreach, freshSrm, roleOutcome, rolloutChallenger, snapshotChanges, srmLook, type Controlled, type SrmMemory } from './route-control.js';
import { auditStateOf, type SplitChanger } from './split-changer.js';
import type { StateStore } from './state-store.js';
import type { Coordination, CoordinationRole, CoordinationStatus, RouteLink } from '../coordination/coordination.js';
import { LocalCoordination } from '../coordination/nop.js';
import { routeVersion } from '../coordination/keys.js';
import { pooledInputs, type ExperimentSnapshot, type Outcome, type PooledView } from '../coordination/pooled.js';
import type { ArmTotals } from '../analysis/window.js';
import type { RouteTick } from './route-tick.js';
import { newDivergenceMemory, predictionsSince, type DivergenceMemory, type DivergenceReport, type PredictionCounts } from '../analysis/divergence.js';
import { routeDivergence, settleDivergence } from './divergence-guardrail.js';
import { DriftEvents } from './drift-events.js';
import { judgeWindows, type DriftResult } from '../analysis/drift.js';

/** Per-route memory of the shell (the pure state plus path-dependent statistics). */
interface RouteMemory {
  state: ControlState;
  guardrails: GuardrailMemory;
  /**
   * The sample-ratio epoch: the split it judges (challenger, served and champion shares, step), the randomisation units
   * per arm when it began, and its running always-valid p-value. Any change of the split starts a new epoch.
   */
  srm: SrmMemory;
  lastVerdicts: GuardrailVerdict[];
  challenger: string | null;
  /** The compiled route this memory belongs to: a reload that changes the route's policy starts a new experiment. */
  route: CompiledRoute;
  /** The fleet's experiment epoch (coordination); when it moves, this replica starts the new experiment too. */
  epoch: string | null;
  /** Running always-valid state of the guardrails judged on the pooled statistics (`guardrails`: on this replica's own). */
  pooledGuardrails: GuardrailMemory;
  /** The last tick's coordination view of the route. */
  link: RouteLink<ControlState> | null;
  /** The route's experiment generation (StateStore) this memory judges; it moves when a rollback is resumed. */
  generation: number;
  /** Since when (clock ms) a follower's own hard breaker has been in breach. */
  breachSince: number | null;
  /** The running state of a follower's own breakers (on this replica's counts). */
  followerGuardrails: GuardrailMemory;
  /** The pair and feedback counts when the experiment began (the shadow gate and A/B winner judge what came after). */
  baseline: CountsBaseline;
  /** Gauge values last set for this route (guardrail states, rollout step), so an unchanged value is not set again. */
  published: Map<string, number>;
  /** Which experiment this is (a process-wide counter): listeners of onTick start a new history when it changes. */
  experiment: number;
  /** Prediction divergence of the current experiment (src/analysis/divergence.ts) and its last reports. */
  divergence: DivergenceMemory;
  divergenceReports: DivergenceReport[];
}

/** Dependencies of the controller. */
export interface ControllerDeps {
  splits: LiveSplits;
  windows: LiveWindows;
  state: StateStore;
  changer: SplitChanger;
  audit: AuditLog;
  metrics: Metrics;
  logger: Logger;
  intervalMs?: number;
  clock?: () => number;
  /** Redis coordination between replicas; absent: this replica decides alone. */
  coordination?: Coordination<ControlState>;
  /** Parsed pairs and labelled outcomes (the pair recorder) for the shadow gate and A/B winner; absent: neither is reported. */
  experiments?: ExperimentCounts & Partial<PredictionCounts>;
  /** How long a route stays active after its last observed request (ms, default 10 s). */
  quietMs?: number;
}

/** The analysis of one route, as served by GET /v1/routes/:route/analysis. */
export interface RouteAnalysis {
  route: string;
  phase: Phase;
  /** The phase, or breach while a guardrail is breached and the route is not rolled back yet. */
  decision: Phase | 'breach';
  challenger: string | null;
  servedPercent: number;
  step: { index: number; percent: number; of: number[] } | null;
  rollbackReason: string | null;
  arms: ArmView[];
  guardrails: GuardrailVerdict[];
  srm: { pValue: number; ok: boolean | null };
  p95ThresholdMs: number | null;
  /** Redis coordination: off (no Redis: this replica decides alone), starting, ok, or degraded (deciding locally). */
  coordination: CoordinationStatus;
  /** This replica (SWITCHYARD_INSTANCE_ID) and its role for the route. */
  instanceId: string;
  role: CoordinationRole;
  /** Instance id of the replica leading the route (null without Redis or while no lease is known). */
  leader: string | null;
  epoch: string | null;
  /** Requests per arm seen by this replica, and pooled over the fleet (null when not pooled); `arms` is what was judged. */
  counts: { local: ArmView[]; pooled: ArmView[] | null; replicas: number | null };
  /**
   * One per challenger in shadow mode: ready for a canary? Judged on this replica's pairs and mirrors since the
   * experiment began (not pooled across replicas).
   */
  shadowGates: ShadowGateReport[];
  /** One per challenger in ab mode: the winner on labelled accuracy, from the feedback this replica joined (not pooled). */
  abWinners: AbReport[];
  /** Routes with a `divergence` policy: each challenger's predictions against the champion's (pooled when coordinated). */
  divergence: DivergenceReport[];
  /** Routes with a `drift` policy: the last judged window per variant and feature, on this replica's traffic. */
  drift: DriftResult[];
  /** The approval gate the route waits at (phase awaiting_approval, or paused at one); null otherwise. */
  approval: ApprovalView | null;
}

/** An open approval gate as the analysis shows it. */
export interface ApprovalView {
  /** The step the route enters once through (index into the rollout's steps), or "promote". */
  step: GateStep;
  /** Share the challenger serves once through. */
  percent: number;
  since: string;
  /** What it still waits for: a person (switchyard approve) and/or the confirm webhook. */
  waitingFor: ('person' | 'webhook')[];
  person: boolean;
  approvedBy: string | null;
  webhook: ConfirmView | null;
}

/** What a person's approval did. */
export interface ApproveResult {
  route: string;
  /** The gate as it is now (its approvals so far). */
  approval: ApprovalView;
  eventId: number;
}

/** What a person's promotion did. */
export interface PromoteResult {
  route: string;
  changed: boolean;
  challenger: string | null;
  eventId: number | null;
  change: Record<string, unknown> | null;
}

/** One arm's counts in the analysis. */
export interface ArmView {
  name: string;
  role: string;
  requests: number;
  failures: number;
  errorRate: number | null;
  medianLatencyMs: number | null;
}

function armView(name: string, role: string, totals: ArmTotals): ArmView {
  return {
    name,
    role,
    requests: totals.errors.n,
    failures: totals.errors.events,
    errorRate: totals.errors.n > 0 ? totals.errors.events / totals.errors.n : null,
    medianLatencyMs: totals.logLatency.n > 0 ? Math.exp(totals.logLatency.mean) : null,
  };
}

/** Pooled arms in the analysis' order: champion, served challengers, shadows. */
function pooledArmViews(view: PooledView): ArmView[] {
  const order = { champion: 0, challenger: 1, shadow: 2 } as Record<string, number>;
  return [...view.arms]
    .map(([key, totals]) => {
      const colon = key.indexOf(':');
      return colon < 0 ? armView(key, key, totals) : armView(key.slice(colon + 1), key.slice(0, colon), totals);
    })
    .sort((a, b) => (order[a.role] ?? 3) - (order[b.role] ?? 3));
}

const stateValue: Record<GuardrailVerdict['state'], number> = { collecting: 0, healthy: 1, within: 1, breach: 2 };

/** What a resume did. */
export interface ResumeResult {
  changed: boolean;
  eventId: number | null;
  /** Split changes written to Unleash so that a flag-driven route resumes where it was (or at the first rollout step). */
  restored: Record<string, unknown>[];
}

/** A new experiment's memory of a route (nothing judged yet). */
function freshMemory(route: CompiledRoute, generation: number, baseline: CountsBaseline, divergence: DivergenceMemory, experiment = 0): RouteMemory {
  return {
    state: initialControlState(), guardrails: {}, srm: freshSrm, lastVerdicts: [], challenger: null, route,
    epoch: null, pooledGuardrails: {}, link: null, generation, breachSince: null, followerGuardrails: {},
    baseline, published: new Map(), experiment, divergence, divergenceReports: [],
  };
}

/**
 * Judges the active routes each tick and acts (rollback, next step, promote). A route is active while it has a
 * challenger and recent traffic, or right after a change (active-routes.ts); an idle route costs nothing per tick.
 */
export class Controller {
  readonly #deps: ControllerDeps;
  readonly #memory = new Map<string, RouteMemory>();
  readonly #clock: () => number;
  readonly #coordination: Coordination<ControlState>;
  readonly #active = new ActiveRoutes();
  readonly #intervalMs: number;
  readonly #quietMs: number;
  /** The snapshot the last tick saw: a different one means a swap, whose changed routes become active. */
  #seen: DecisionSnapshot | null = null;
  /** Told after each route's evaluation (the status page's interval history); never on the request path. */
  readonly #tickListeners = new Set<(tick: RouteTick) => void>();
  #experiments = 0;
  #timer: NodeJS.Timeout | null = null;
  #ticking = false;
  readonly #driftEvents: DriftEvents;
  /** Polls the confirm webhooks of open gates off the tick. */
  readonly #confirm: ConfirmGates;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? Date.now;
    this.#coordination = deps.coordination ?? new LocalCoordination('local');
    this.#driftEvents = new DriftEvents(deps.audit, deps.metrics);
    this.#confirm = new ConfirmGates({
      metrics: deps.metrics,
      logger: deps.logger,
      clock: this.#clock,
      onConfirmed: (route, url, status) => {
        const gate = this.#memory.get(route)?.state.gate ?? null;
        const event = deps.audit.append({ who: 'confirm-webhook', action: 'approve', route, before: null, after: null, detail: { step: gate?.target ?? null, percent: gate?.percent ?? null, url, status } });
        deps.logger.info({ route, url, status, eventId: event.id }, 'confirm webhook confirmed the gate');
      },
    });
    this.#intervalMs = deps.intervalMs ?? 250;
    this.#quietMs = deps.quietMs ?? 10_000;
    // A lifted rollback starts a new experiment in the same synchronous step (a resume here or from the fleet), so
    // neither a tick nor GET .../analysis can judge the resumed route with the evidence that rolled it back.
    deps.state.onNewExperiment((route) => {
      const memory = this.#memory.get(route);
      if (memory !== undefined) this.#restart(route, memory);
    });
  }

  /** Follows every route's evaluation; returns the unsubscribe function. A listener must be cheap and must not throw. */
  onTick(listener: (tick: RouteTick) => void): () => void {
    this.#tickListeners.add(listener);
    return () => this.#tickListeners.delete(listener);
  }

  start(): void {
    if (this.#timer) return;
    // Every route with a challenger starts its experiment now, before the first request can arrive: the first tick
    // would otherwise open it later and drop what was observed before it (a fresh experiment starts from an empty
    // window). One pass at start; afterwards only routes a snapshot swap changes start one (tick).
    for (const decision of this.#deps.splits.snapshot.byName.values()) if (decision.route.arms.length > 1) this.#memoryFor(decision);
    this.#timer = setInterval(() => this.tick(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** How many routes the controller is working on now (the others are idle). */
  get activeRoutes(): number {
    return this.#active.size;
  }

  /** One evaluation of every active route (also callable directly). */
  tick(): void {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const now = this.#clock();
      const snapshot = this.#deps.splits.snapshot;
      if (snapshot !== this.#seen) this.#noteSwap(snapshot, now);
      for (const route of this.#deps.windows.takeTouched()) {
        // Only a route with a challenger has anything to judge; a champion-only route's traffic costs no tick.
        if ((snapshot.byName.get(route)?.route.arms.length ?? 0) > 1) this.#active.touch(route, now + this.#quietMs);
      }
      for (const route of this.#active.due(now, (name) => this.#canRest(name))) {
        const decision = snapshot.byName.get(route);
        if (decision === undefined) this.#active.delete(route);
        else this.#tickRoute(decision);
      }
      // Drift is watched on every route that asks for it, with or without a challenger (drift-events.ts).
      this.#driftEvents.publishAll(snapshot, this.#predictionCounts);
    } catch (err) {
      this.#deps.logger.error({ err }, 'controller tick failed');
    } finally {
      this.#ticking = false;
    }
  }

  /**
   * A new snapshot: the routes it changed are looked at for a few ticks (a rollout's first step, a resumed route's new
   * experiment, the fleet's first exchange), and removed routes are forgotten. O(routes), once per swap.
   */
  #noteSwap(snapshot: DecisionSnapshot, now: number): void {
    const { changed, removed } = snapshotChanges(this.#seen, snapshot);
    this.#seen = snapshot;
    const until = now + Math.max(1_000, 4 * this.#intervalMs);
    for (const decision of changed) {
      if (decision.route.arms.length > 1) this.#active.touch(decision.route.name, until);
      else this.#deps.windows.setPolicy(decision.route.name, decision.route.policy.guardrails ?? defaultGuardrails);
    }
    for (const name of removed) {
      this.#active.delete(name);
      this.#memory.delete(name);
      this.#coordination.forget(name);
    }
  }

  /** A quiet route may rest unless something is pending on it: a follower's breaker breach still in its grace period. */
  #canRest(route: string): boolean {
    return (this.#memory.get(route)?.breachSince ?? null) === null;
  }

  #memoryFor(decision: RouteDecision): RouteMemory {
    const name = decision.route.name;
    let memory = this.#memory.get(name);
    if (memory !== undefined && memory.route !== decision.route && routeVersion(memory.route.policy) === routeVersion(decision.route.policy)) {
      // A reload recompiles every route; one whose policy is unchanged keeps its experiment (the fleet's epoch is keyed
      // by the same version, docs/replicas.md).
      memory.route = decision.route;
    }
    if (!memory || memory.route !== decision.route) {
      memory = freshMemory(decision.route, this.#deps.state.generation(name), countsBaseline(this.#deps.experiments ?? null, name), newDivergenceMemory(this.#predictionCounts, name), ++this.#experiments);
      // The experiment opened here is the controlled challenger's: the first tick must not take it for a change of
      // challenger and open another, dropping what was observed in between.
      memory.challenger = controlledChallenger(decision)?.name ?? null;
      this.#memory.set(name, memory);
      this.#deps.windows.setPolicy(name, decision.route.policy.guardrails ?? defaultGuardrails);
      // Series an alert or dashboard reads exist at 0 before anything happens, so increase() sees the first change.
      if (decision.route.policy.rollout?.confirm !== undefined) for (const result of ['confirmed', 'refused', 'failed']) this.#deps.metrics.confirmRequests.labels(name, result).inc(0);
      this.#deps.windows.reset(name);
    }
    return memory;
  }

  #tickRoute(decision: RouteDecision): void {
    const name = decision.route.name;
    const memory = this.#memoryFor(decision);
    const policy: GuardrailPolicy = decision.route.policy.guardrails ?? defaultGuardrails;
    // A resumed rollback (here, or applied from another replica) moved the generation: a new experiment starts before
    // anything is judged, so the evidence behind the rollback cannot undo the resume.
    if (memory.generation !== this.#deps.state.generation(name)) this.#restart(name, memory);
    this.#deps.windows.window(name).refreshThreshold();
    const controlled = controlledChallenger(decision);
    if (controlled && controlled.name !== memory.challenger) {
      // A different challenger is a different experiment: start its statistics afresh. (Losing the challenger, as in
      // a rollback, keeps the statistics: they are the evidence shown by the analysis.)
      memory.challenger = controlled.name;
      this.#newExperiment(name, memory);
    }
    const challenger = controlled?.name ?? memory.challenger;
    // The fleet's epoch (route policy version, generation, challenger). When it moves without a local cause (a resume
    // on another replica), this replica starts the new experiment too, so no statistics cross epochs.
    const epoch = this.#coordination.epoch(decision.route, challenger);
    if (epoch !== null) {
      if (memory.epoch !== null && memory.epoch !== epoch) this.#newExperiment(name, memory);
      memory.epoch = epoch;
    }
    // This replica's labelled outcomes and pairs travel with its window, so the leader judges the fleet's.
    const link = this.#coordination.link(name, memory.epoch, this.#deps.windows.window(name), this.#experimentSnapshot(name, memory));
    memory.link = link;
    const divergence = routeDivergence(decision, policy, this.#predictionCounts, memory.divergence, link.pooled?.predictions ?? null, challenger);
    const inputs = { ...this.#inputs(this.#deps.windows.window(name), challenger, link.pooled), extra: divergence.extra, streaming: decision.route.policy.streaming ?? null };
    // Running always-valid states are kept per source: looks at the pooled and at the local statistics are different sequences.
    const evaluated = evaluateGuardrails(inputs, policy, link.pooled !== null ? memory.pooledGuardrails : memory.guardrails);
    if (link.pooled !== null) memory.pooledGuardrails = evaluated.memory;
    else memory.guardrails = evaluated.memory;
    const settled = settleDivergence(name, divergence, evaluated.verdicts, challenger, this.#deps.metrics);
    evaluated.verdicts = settled.verdicts;
    memory.divergenceReports = settled.reports;
    memory.lastVerdicts = evaluated.verdicts;
    for (const v of evaluated.verdicts) {
      const value = stateValue[v.state];
      const previous = memory.published.get(v.name);
      if (previous !== value) {
        memory.published.set(v.name, value);
        this.#deps.metrics.guardrailState.labels(name, v.name).set(value);
        // A guardrail entering breach is audited (and so notified) once, by the replica that acts on it.
        if (value === stateValue.breach && link.role !== 'follower' && !decision.state.rolledBack) {
          this.#deps.audit.append({ who: 'controller', action: 'breach', route: name, before: null, after: null, detail: { guardrail: v.name, challenger, reason: v.reason, verdict: v } });
        }
      }
    }

    const srm = srmLook(memory.srm, controlled, decision.servedTotal, memory.state.step, inputs);
    if (srm.newEpoch !== null) this.#deps.windows.window(name).newSplitEpoch(srm.newEpoch);
    memory.srm = srm.memory;
    const srmOk = srm.ok;
    const confirmed = this.#confirmed(decision, memory, controlled);
    const result = next(
      memory.state,
      {
        now: this.#clock(),
        rolledBack: decision.state.rolledBack,
        paused: decision.state.paused,
        servedPercent: controlled?.servedPercent ?? 0,
        challenger: controlled?.name ?? null,
        challengerRequests: inputs.challenger.errors.n,
        verdicts: evaluated.verdicts,
        srmOk,
        abWinner: this.#abWinner(name, decision.route.arms[0]!.name, controlled, policy, memory, link.pooled?.outcomes ?? null),
        confirmed,
      },
      { rollout: decision.route.policy.rollout ?? null, abPromote: policy.ab.promote },
    );
    const mode = controlled?.mode ?? 'canary';
    const outcome = roleOutcome(link.role, memory.state, result, link, decision.state.rolledBack);
    memory.state = outcome.state;
    for (const action of outcome.actions) this.#act(decision.route, action, mode, link.role);
    if (outcome.report) this.#coordination.reportState(name, memory.state);
    if (outcome.followerBreakers) this.#followerBreakers(decision, memory, challenger, controlled?.servedPercent ?? 0);
    if (this.#tickListeners.size > 0) {
      const rollout = decision.route.policy.rollout;
      const tick: RouteTick = {
        route: name, experiment: memory.experiment, at: this.#clock(), phase: decision.state.rolledBack ? 'rolled_back' : memory.state.phase, challenger, servedPercent: controlled?.servedPercent ?? 0,
        step: rollout && memory.state.step !== null ? { index: memory.state.step, percent: rollout.steps[memory.state.step]!, of: rollout.steps } : null,
        verdicts: evaluated.verdicts,
      };
      for (const listener of this.#tickListeners) listener(tick);
    }
    const step = memory.state.step ?? -1;
    // prom-client hashes the label set on every set, and this runs on every tick of every route: set on change only.
    if (memory.published.get('rollout step') !== step) {
      memory.published.set('rollout step', step);
      this.#deps.metrics.rolloutStep.labels(name).set(step);
    }
    const awaiting = memory.state.phase === 'awaiting_approval' ? 1 : 0;
    if (memory.published.get('awaiting approval') !== awaiting) {
      memory.published.set('awaiting approval', awaiting);
      this.#deps.metrics.awaitingApproval.labels(name).set(awaiting);
    }
  }

  /** The confirm webhook answered 2xx for the route's open gate; asks it (off the tick) while it has not. */
  #confirmed(decision: RouteDecision, memory: RouteMemory, controlled: { name: string; servedPercent: number } | null): boolean {
    const gate = memory.state.gate;
    const settings = decision.route.policy.rollout?.confirm;
    if (gate === null || !gate.webhook || settings === undefined) {
      this.#confirm.forget(decision.route.name);
      return false;
    }
    // Only the replica that acts asks; a follower takes the leader's state, gate included.
    if (memory.link?.role === 'follower') return false;
    return this.#confirm.check(decision.route.name, this.#gateKey(memory, gate), settings, {
      type: 'confirm',
      route: decision.route.name,
      challenger: controlled?.name ?? memory.challenger,
      servedPercent: controlled?.servedPercent ?? 0,
      step: gate.target,
      percent: gate.percent,
      waitingSince: new Date(gate.since).toISOString(),
    });
  }

  #gateKey(memory: RouteMemory, gate: ApprovalGate): string {
    return `${memory.generation}|${String(gate.target)}|${gate.since}`;
  }

  #approvalView(route: string, memory: RouteMemory): ApprovalView | null {
    const gate = memory.state.gate;
    if (gate === null) return null;
    return {
      step: gate.target,
      percent: gate.percent,
      since: new Date(gate.since).toISOString(),
      waitingFor: gateWaitingFor(gate),
      person: gate.person,
      approvedBy: gate.approvedBy,
      webhook: gate.webhook ? (this.#confirm.view(route, this.#gateKey(memory, gate)) ?? { url: this.#deps.splits.snapshot.byName.get(route)?.route.policy.rollout?.confirm?.url ?? '', attempts: 0, lastStatus: null, lastError: null, confirmed: gate.confirmed }) : null,
    };
  }

  /** The route's phase as the controller sees it now (rolled_back as soon as the live split says so). */
  phase(routeName: string): Phase {
    const decision = this.#deps.splits.snapshot.byName.get(routeName);
    if (decision?.state.rolledBack) return 'rolled_back';
    return this.#memory.get(routeName)?.state.phase ?? 'inactive';
  }

  /** A replica that follows the leader must not decide: approvals and promotions go to the leader. */
  #refuseOnFollower(routeName: string, what: string): void {
    const link = this.#memory.get(routeName)?.link;
    if (link?.role === 'follower') {
      throw new SWY_ERR_CONFLICT(`this replica follows the leader of route ${routeName}${link.leader !== null ? ` (${link.leader})` : ''}; send the ${what} to the leader's admin API, which decides the rollout`);
    }
  }

  /**
   * A person approves the gate the route waits at. The next tick lets the route through once every approval the gate
   * needs is in. Refused (SWY_ERR_CONFLICT, 409) when the route waits at no gate, at another step than `step`, only for
   * the confirm webhook, or was approved already.
   */
  approve(routeName: string, who: string, step?: GateStep, note?: string): ApproveResult {
    const decision = this.#deps.splits.snapshot.byName.get(routeName);
    if (!decision) throw new SWY_ERR_ROUTE_UNKNOWN(routeName);
    this.#refuseOnFollower(routeName, 'approval');
    const memory = this.#memoryFor(decision);
    // The live split is the truth for a rollback, even before the next tick closes the gate.
    const outcome = decision.state.rolledBack ? ({ ok: false, reason: 'not_awaiting', phase: 'rolled_back' } as const) : approveGate(memory.state, who, step);
    if (!outcome.ok) {
      const at = (target: GateStep) => (target === 'promote' ? 'the promotion' : `step ${target} (${decision.route.policy.rollout?.steps[target] ?? '?'} %)`);
      switch (outcome.reason) {
        case 'not_awaiting':
          throw new SWY_ERR_CONFLICT(`route ${routeName} is not waiting for approval (phase ${outcome.phase}); approve applies when its rollout waits at a step listed in rollout.approve`);
        case 'wrong_step':
          throw new SWY_ERR_CONFLICT(`step: route ${routeName} waits for approval before ${at(outcome.awaiting)}, not step ${String(step)}; check \`switchyard analysis ${routeName}\` and approve that step`);
        case 'webhook_only':
          throw new SWY_ERR_CONFLICT(`route ${routeName} waits for its confirm webhook before ${at(outcome.awaiting)}, not for a person; to go on without it use \`switchyard set\` or \`switchyard promote\``);
        case 'already_approved':
          throw new SWY_ERR_CONFLICT(`route ${routeName} was already approved before ${at(outcome.awaiting)} by ${outcome.by}; ${memory.state.gate?.webhook === true && !memory.state.gate.confirmed ? 'it still waits for the confirm webhook' : 'it goes on at the next tick'}`);
      }
    }
    memory.state = outcome.state;
    const event = this.#deps.audit.append({ who, action: 'approve', route: routeName, before: null, after: null, detail: { step: outcome.gate.target, percent: outcome.gate.percent, waitingFor: gateWaitingFor(outcome.gate), ...(note !== undefined ? { note } : {}) } });
    this.#deps.logger.info({ who, route: routeName, step: outcome.gate.target, eventId: event.id }, 'approved');
    return { route: routeName, approval: this.#approvalView(routeName, memory)!, eventId: event.id };
  }

  /**
   * A person promotes the route now (phases.ts planPromotion says what that means per mode): the challenger serves
   * 100 %, the route is promoted and the controller stops moving it, audited as `promote` with who did it.
   */
  async promote(name: string, who: string, note?: string, step?: number): Promise<PromoteResult> {
    const decision = this.#deps.splits.snapshot.byName.get(name);
    if (!decision) throw new SWY_ERR_ROUTE_UNKNOWN(name);
    const route = decision.route;
    this.#refuseOnFollower(name, 'promotion');
    const memory = this.#memoryFor(decision);
    if (step !== undefined && memory.state.step !== step && memory.state.phase !== 'promoted') {
      throw new SWY_ERR_CONFLICT(`step: route ${name} is at step ${memory.state.step ?? 'none (no rollout step yet)'}, not step ${step}; check \`switchyard analysis ${name}\` and promote again`);
    }
    const controlled = controlledChallenger(decision);
    const shadows = decision.state.challengers.filter((c) => c.mode === 'shadow').map((c) => c.name);
    const plan = planPromotion({ phase: memory.state.phase, rolledBack: decision.state.rolledBack, controlled: controlled ?? null, shadows });
    if (!plan.ok) {
      switch (plan.reason) {
        case 'already_promoted':
          return { route: name, changed: false, challenger: memory.challenger, eventId: null, change: null };
        case 'rolled_back':
          throw new SWY_ERR_CONFLICT(`route ${name} is rolled back; \`switchyard resume ${name}\` first, then promote`);
        case 'shadow_only':
          throw new SWY_ERR_CONFLICT(`route ${name} has no served challenger: ${plan.shadow} is a shadow, which serves no client and so has no served evidence; start a canary first (\`switchyard set ${name} ${plan.shadow} 5 --mode canary\`)`);
        case 'no_challenger':
          throw new SWY_ERR_CONFLICT(`route ${name} has no canary or ab challenger to promote`);
      }
    }
    // The route stops moving before the write, so no rollout step queued after it can undo the promotion.
    const before = memory.state;
    memory.state = { ...memory.state, phase: 'promoted', gate: null };
    this.#confirm.forget(name);
    try {
      const { detail, event } = await this.#deps.changer.change(route, plan.challenger, 100, plan.mode, who, 'promote', { manual: true, ...(note !== undefined ? { note } : {}) });
      this.#deps.metrics.promotions.labels(name).inc();
      this.#deps.logger.info({ who, route: name, challenger: plan.challenger, eventId: event.id }, 'promoted by a person');
      return { route: name, changed: true, challenger: plan.challenger, eventId: event.id, change: detail };
    } catch (err) {
      if (memory.state.phase === 'promoted') memory.state = before;
      throw err;
    }
  }

  /** The A/B winner on the pooled (else this replica's) labelled outcomes, for an ab challenger whose policy promotes (else null). */
  #abWinner(route: string, champion: string, controlled: Controlled | null, policy: GuardrailPolicy, memory: RouteMemory, pooled: Readonly<Record<string, Outcome>> | null): string | null {
    const counts = this.#deps.experiments;
    if (!counts || !policy.ab.promote || controlled?.mode !== 'ab') return null;
    return abWinnerSince(counts, memory.baseline, route, champion, controlled.name, policy, pooled).winner;
  }

  /** What the pair recorder counted in the route's current experiment, for the pool (undefined without a recorder). */
  #experimentSnapshot(route: string, memory: RouteMemory): ExperimentSnapshot | undefined {
    const counts = this.#deps.experiments;
    return counts ? { outcomes: outcomesSince(counts, memory.baseline, route), agreement: pairsSince(counts, memory.baseline, route), predictions: predictionsSince(this.#predictionCounts, memory.divergence, route) } : undefined;
  }

  /** The recorder's prediction counts and drift windows, when it keeps them. */
  get #predictionCounts(): PredictionCounts | null {
    const counts = this.#deps.experiments;
    return counts?.predictionsOf ? (counts as PredictionCounts) : null;
  }

  /** A new generation of the route (a lifted rollback): a new experiment from the first step, and the fleet told at once. */
  #restart(route: string, memory: RouteMemory): void {
    memory.generation = this.#deps.state.generation(route);
    this.#newExperiment(route, memory);
    memory.state = { ...initialControlState(), phase: 'collecting' };
    memory.epoch = null;
    this.#coordination.syncNow(route);
  }

  /** A new experiment for the route: fresh windows and running statistics. */
  #newExperiment(route: string, memory: RouteMemory): void {
    memory.guardrails = {};
    memory.pooledGuardrails = {};
    memory.followerGuardrails = {};
    memory.breachSince = null;
    memory.srm = freshSrm;
    memory.lastVerdicts = [];
    memory.baseline = countsBaseline(this.#deps.experiments ?? null, route);
    memory.divergence = newDivergenceMemory(this.#predictionCounts, route);
    memory.divergenceReports = [];
    memory.experiment = ++this.#experiments;
    this.#deps.windows.reset(route);
  }

  /**
   * A follower's safety net: its own hard breakers. The leader sees the same failures pooled within one exchange, so a
   * follower acts only when its breach outlasts the grace period (the leader is gone or stuck, or the failure is local
   * to this replica), and its rollback then reaches the fleet like any other.
   */
  #followerBreakers(decision: RouteDecision, memory: RouteMemory, challenger: string | null, servedPercent: number): void {
    if (decision.state.rolledBack || servedPercent <= 0 || challenger === null) {
      memory.breachSince = null;
      return;
    }
    const policy = decision.route.policy.guardrails ?? defaultGuardrails;
    const evaluated = evaluateGuardrails({ ...this.#inputs(this.#deps.windows.window(decision.route.name), challenger, null), streaming: decision.route.policy.streaming ?? null }, policy, memory.followerGuardrails);
    memory.followerGuardrails = evaluated.memory;
    const breakers = evaluated.verdicts.filter((v) => v.kind === 'breaker');
    const { breachSince, rollBackOn } = followerBreach(memory.breachSince, breakers, this.#clock(), this.#coordination.followerGraceMs);
    memory.breachSince = breachSince;
    if (rollBackOn === null) return;
    this.#deps.logger.warn({ route: decision.route.name, breaker: rollBackOn.name, graceMs: this.#coordination.followerGraceMs }, 'own hard breaker in breach beyond the grace period and the leader has not acted: rolling back');
    this.rollback(decision.route.name, rollBackOn.name, breakers, 'controller');
  }

  /** What the guardrails judge: the pooled statistics when coordinated, else this replica's live ones. */
  #inputs(window: RouteWindow, challenger: string | null, pooled: PooledView | null): GuardrailInputs {
    if (pooled !== null) return pooledInputs(pooled, challenger, window.p95ThresholdMs);
    const challengerWindow = challenger ? window.challengers.get(challenger) : undefined;
    return { champion: window.champion.totals, challenger: challengerWindow?.totals ?? emptyTotals(), strata: challenger ? stratumPairs(window.strata(), armKey('challenger', challenger)) : [], p95ThresholdMs: window.p95ThresholdMs };
  }

  #act(route: CompiledRoute, action: ControlAction, mode: ChallengerMode, role: CoordinationRole): void {
    switch (action.type) {
      case 'rollback':
        this.rollback(route.name, action.reason, action.evidence, 'controller');
        return;
      case 'set-percent':
        this.#fenced(route.name, role, action.type, () => {
          void this.#deps.changer.change(route, action.challenger, action.percent, mode, 'controller', 'rollout.step', { step: action.step }).catch((err: unknown) => this.#deps.logger.error({ err, route: route.name }, 'rollout step failed'));
        });
        return;
      case 'await-approval': {
        const { gate } = action;
        const event = this.#deps.audit.append({ who: 'controller', action: 'approval.needed', route: route.name, before: null, after: null, detail: { step: gate.target, percent: gate.percent, waitingFor: gateWaitingFor(gate), ...(gate.webhook ? { url: route.policy.rollout?.confirm?.url } : {}) } });
        this.#deps.logger.info({ route: route.name, step: gate.target, percent: gate.percent, waitingFor: gateWaitingFor(gate), eventId: event.id }, 'rollout waits for approval');
        return;
      }
      case 'promote':
        this.#fenced(route.name, role, action.type, () => {
          this.#deps.metrics.promotions.labels(route.name).inc();
          void this.#deps.changer
            .change(route, action.challenger, 100, mode, 'controller', 'promote', {})
            .catch((err: unknown) => this.#deps.logger.error({ err, route: route.name }, 'promotion failed'));
        });
        return;
    }
  }

  /**
   * Runs a leader's rollout write only after renewing its lease, so a leader deposed while paused skips it. (The write
   * itself goes to Unleash, which Redis cannot fence; the check narrows the window to one round trip.)
   */
  #fenced(route: string, role: CoordinationRole, what: string, write: () => void): void {
    if (role !== 'leader') return write();
    void this.#coordination.confirmLeadership(route).then((stillLeader) => {
      if (stillLeader) write();
      else this.#deps.logger.warn({ route, action: what }, 'lost the lease before a rollout step; the new leader decides');
    });
  }

  /**
   * A person resumes a route: the pause and the rollback are lifted in one snapshot swap, which starts a new
   * experiment (see the constructor). The resumed route serves the split it had before the rollback, or, with a
   * rollout, the rollout's first step. A flag-driven route gets that split written to Unleash first, while it is still
   * rolled back (the rollback wrote rollout 0 there), so it resumes at the right share and never at a stale one.
   */
  async resume(route: CompiledRoute, who: string): Promise<ResumeResult> {
    const { changer, state, audit, splits } = this.#deps;
    const name = route.name;
    const plan = await changer.exclusive(name, async () => {
      const before = splits.snapshot.byName.get(name);
      const paused = state.isPaused(name) || before?.state.paused === true;
      const rolledBack = state.isRolledBack(name) || before?.state.rolledBack === true;
      if (!paused && !rolledBack) return null;
      return { rolledBack, target: rolledBack ? this.#resumeSplit(route, state.rolledBackFrom(name) ?? before?.state.challengers ?? []) : null };
    });
    if (plan === null) return { changed: false, eventId: null, restored: [] };
    const flagDriven = changer.flagDriven(name);
    const restored: Record<string, unknown>[] = [];
    if (flagDriven && plan.target !== null) {
      for (const share of plan.target) {
        const live = splits.snapshot.byName.get(name)?.state.challengers.find((c) => c.name === share.name);
        if (share.mode === 'shadow' || (live?.percent ?? 0) === share.percent) continue;
        try {
          const { detail, event } = await changer.change(route, share.name, share.percent, share.mode, who, 'resume.restore');
          restored.push({ ...detail, eventId: event.id });
        } catch (err) {
          this.#deps.logger.error({ err, route: name, challenger: share.name }, 'restoring the split from before the rollback failed; the route resumes at the flag\'s split');
          restored.push({ challenger: share.name, percent: share.percent, error: { code: (err as { code?: string }).code ?? 'SWY_ERR_INTERNAL', message: (err as Error).message } });
        }
      }
    }
    return changer.exclusive(name, async () => {
      const before = splits.snapshot.byName.get(name);
      const override = !flagDriven && plan.target !== null && route.policy.rollout !== undefined ? { challengers: plan.target, groupId: before?.state.groupId ?? route.flagName ?? name } : undefined;
      const cleared = state.resume(name, override);
      const event = audit.append({ who, action: 'resume', route: name, before: auditStateOf(before), after: auditStateOf(splits.snapshot.byName.get(name)), detail: cleared });
      this.#deps.logger.info({ who, route: name, eventId: event.id, ...cleared }, 'resumed');
      return { changed: true, eventId: event.id, restored };
    });
  }

  /** The split a resumed route serves: what it served before the rollback, with a rollout's challenger at the first step. */
  #resumeSplit(route: CompiledRoute, before: readonly ChallengerShare[]): readonly ChallengerShare[] {
    const rollout = route.policy.rollout;
    const moved = rollout ? rolloutChallenger(route) : undefined;
    if (!rollout || moved === undefined) return before;
    const shares = route.policy.challengers.map((c) => before.find((s) => s.name === c.name) ?? { name: c.name, mode: c.mode, percent: 0 });
    return shares.map((s) => (s.name === moved.name ? { ...s, percent: rollout.steps[0]! } : s));
  }

  /**
   * Rolls a route back: the challenger's served share goes to 0 at once (one snapshot swap, persisted so a restart
   * keeps it), then the evidence is audited (which notifies, control/notifier.ts) and counted, and the flag is written through.
   */
  rollback(routeName: string, reason: string, evidence: readonly GuardrailVerdict[], who: string): { changed: boolean } {
    const decision = this.#deps.splits.snapshot.byName.get(routeName);
    if (!decision) return { changed: false };
    if (decision.state.rolledBack) return { changed: false };
    const before = { servedPercent: decision.servedTotal, challengers: decision.state.challengers };
    // Traffic first: this swap happens before any other effect, so no request after it sees the challenger.
    this.#deps.state.setRolledBack(routeName, true, decision.state.challengers);
    const memory = this.#memory.get(routeName);
    const coordination = this.#coordination;
    const role: CoordinationRole = memory?.link?.role ?? (coordination.enabled ? 'degraded' : 'alone');
    if (memory) {
      memory.state = { ...memory.state, phase: 'rolled_back', rollbackReason: reason, gate: null };
    }
    const arms = memory?.link?.pooled ? pooledArmViews(memory.link.pooled) : this.#arms(this.#windowOf(routeName, memory?.route.policy.guardrails));
    const replica = coordination.enabled ? { role, instanceId: coordination.instanceId } : {};
    this.#deps.audit.append({ who, action: 'rollback', route: routeName, before, after: { servedPercent: 0, rolledBack: true }, detail: { reason, evidence, arms, ...replica } });
    this.#deps.logger.warn({ route: routeName, reason, who, ...replica }, 'rolled back');
    const controlled = controlledChallenger(decision);
    const effects = () => {
      this.#deps.metrics.rollbacks.labels(routeName, reason).inc();
      if (controlled) {
        void this.#deps.changer.writeThroughRollback(decision.route, controlled.name, controlled.mode).catch((err: unknown) => this.#deps.logger.error({ err, route: routeName }, 'rollback write-through to Unleash failed; this replica holds the rollback locally'));
      }
    };
    if (!coordination.enabled) {
      effects();
      return { changed: true };
    }
    // With Redis the rollback goes to the fleet first (fenced by the lease when it is the leader's decision). Only the
    // replica that published it counts it and does the external effects, so Unleash and the counter see it once.
    void coordination.announceRollback(routeName, reason, who === 'controller' && role === 'leader').then((outcome) => {
      switch (outcome) {
        case 'published':
        case 'unavailable':
        case 'alone':
          effects();
          return;
        case 'already':
          this.#deps.logger.info({ route: routeName, reason }, 'the fleet had already rolled back this route');
          return;
        case 'superseded':
          this.#deps.audit.append({ who, action: 'rollback.superseded', route: routeName, before: null, after: null, detail: { reason, why: 'the lease was lost or the route resumed meanwhile; the fleet state was restored' } });
          this.#deps.logger.warn({ route: routeName, reason }, 'rollback superseded by the fleet (lease lost or route resumed meanwhile)');
          return;
      }
    });
    return { changed: true };
  }

  /** The route's current window, or an empty one that is not kept (a read must not create state). */
  #windowOf(route: string, policy: GuardrailPolicy | undefined): RouteWindow {
    return this.#deps.windows.peek(route) ?? new RouteWindow(policy ?? defaultGuardrails, this.#clock());
  }

  #arms(window: RouteWindow): ArmView[] {
    return [
      armView('champion', 'champion', window.champion.totals),
      ...[...window.challengers].map(([name, w]) => armView(name, 'challenger', w.totals)),
      ...[...window.shadows].map(([name, w]) => armView(name, 'shadow', w.totals)),
    ];
  }

  /**
   * The live analysis of a route (null for an unknown route). A read: it changes no memory, window or coordination
   * bookkeeping. A route the controller has not looked at yet (or whose policy changed since) shows a new experiment.
   */
  analysis(routeName: string): RouteAnalysis | null {
    const decision = this.#deps.splits.snapshot.byName.get(routeName);
    if (!decision) return null;
    const kept = this.#memory.get(routeName);
    const current = kept !== undefined && (kept.route === decision.route || routeVersion(kept.route.policy) === routeVersion(decision.route.policy));
    const memory = current ? kept : freshMemory(decision.route, this.#deps.state.generation(routeName), countsBaseline(this.#deps.experiments ?? null, routeName), newDivergenceMemory(this.#predictionCounts, routeName));
    const controlled = controlledChallenger(decision);
    // Outdated memory: the next tick starts a new experiment with a new window, so show that one (empty) already.
    const window = kept === undefined || current ? this.#windowOf(routeName, decision.route.policy.guardrails) : new RouteWindow(decision.route.policy.guardrails ?? defaultGuardrails, this.#clock());
    const rollout = decision.route.policy.rollout;
    // The live split is the truth for a rollback (restored from disk, or set by another replica) even before a tick.
    const phase = decision.state.rolledBack ? 'rolled_back' : memory.state.phase;
    // Before the first tick (just started or restored) judge now, without advancing the running statistics.
    const policy = decision.route.policy.guardrails ?? defaultGuardrails;
    // A fresh view: the pooled counts include this replica's requests up to now and the others' last exchange.
    const link = this.#coordination.view(routeName, memory.epoch, window, this.#experimentSnapshot(routeName, memory));
    const verdicts = memory.lastVerdicts.length > 0 ? memory.lastVerdicts : evaluateGuardrails({ ...this.#inputs(window, controlled?.name ?? memory.challenger, link.pooled), streaming: decision.route.policy.streaming ?? null }, policy, link.pooled !== null ? memory.pooledGuardrails : memory.guardrails).verdicts;
    const decisionState: RouteAnalysis['decision'] = verdicts.some((v) => v.state === 'breach') && phase !== 'rolled_back' ? 'breach' : phase;
    const championName = decision.route.arms[0]!.name;
    const named = (views: ArmView[]) => views.map((a) => (a.role === 'champion' ? { ...a, name: championName } : a));
    const local = named(this.#arms(window));
    const pooled = link.pooled !== null ? named(pooledArmViews(link.pooled)) : null;
    const arms = pooled ?? local;
    const reports = this.#deps.experiments
      ? experimentReports({
          route: routeName,
          champion: championName,
          // Live modes and shares: a flag or an operator can turn a challenger from shadow into ab or canary.
          challengers: decision.route.policy.challengers.map((c) => {
            const live = decision.state.challengers.find((s) => s.name === c.name);
            return { name: c.name, mode: live?.mode ?? c.mode, percent: live?.percent ?? 0 };
          }),
          window,
          policy,
          counts: this.#deps.experiments,
          baseline: memory.baseline,
          pooled: link.pooled,
          streaming: decision.route.policy.streaming ?? null,
        })
      : { shadowGates: [], abWinners: [] };
    return {
      route: routeName,
      phase,
      decision: decisionState,
      challenger: controlled?.name ?? memory.challenger,
      servedPercent: controlled?.servedPercent ?? 0,
      step: rollout && memory.state.step !== null ? { index: memory.state.step, percent: rollout.steps[memory.state.step]!, of: [...rollout.steps] } : null,
      rollbackReason: memory.state.rollbackReason,
      arms,
      guardrails: verdicts,
      srm: { pValue: memory.srm.p, ok: memory.srm.p > 0.001 },
      p95ThresholdMs: window.p95ThresholdMs,
      coordination: this.#coordination.status(),
      instanceId: this.#coordination.instanceId,
      role: link.role,
      leader: link.leader,
      epoch: this.#coordination.enabled ? memory.epoch : null,
      counts: { local, pooled, replicas: link.pooled?.replicas ?? null },
      shadowGates: reports.shadowGates,
      abWinners: reports.abWinners,
      divergence: memory.divergenceReports,
      drift: decision.route.policy.drift === undefined ? [] : judgeWindows(this.#predictionCounts?.predictionsOf(routeName)?.drift ?? [], decision.route.policy.drift),
      approval: this.#approvalView(routeName, memory),
    };
  }
}
