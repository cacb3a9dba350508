// The effectful shell around the pure controller: every tick it judges each route's live windows and carries out the actions.
import type { Logger } from 'pino';
import { defaultGuardrails, type ChallengerMode, type GuardrailPolicy } from '../config/policy-schema.js';
import type { ChallengerShare, CompiledRoute, RouteDecision } from '../decision/snapshot.js';
import type { LiveWindows, RouteWindow } from '../analysis/window.js';
import { armKey, emptyTotals, stratumPairs } from '../analysis/window.js';
import { sequentialSrm } from '../analysis/stats/index.js';
import type { Metrics } from '../metrics/registry.js';
import type { AuditLog } from './audit.js';
import { abWinnerSince, countsBaseline, experimentReports, outcomesSince, pairsSince, type AbReport, type CountsBaseline, type ExperimentCounts, type ShadowGateReport } from './experiment-report.js';
import { evaluateGuardrails, type GuardrailInputs, type GuardrailMemory, type GuardrailVerdict } from './guardrails.js';
import type { LiveSplits } from './live-splits.js';
import { initialControlState, next, type ControlAction, type ControlState } from './phases.js';
import { auditStateOf, type SplitChanger } from './split-changer.js';
import type { StateStore } from './state-store.js';
import type { Webhooks } from './webhooks.js';
import type { Coordination, CoordinationRole, CoordinationStatus, RouteLink } from '../coordination/coordination.js';
import { LocalCoordination } from '../coordination/nop.js';
import { routeVersion } from '../coordination/keys.js';
import { pooledInputs, type ExperimentSnapshot, type Outcome, type PooledView } from '../coordination/pooled.js';
import type { ArmTotals } from '../analysis/window.js';
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
  srm: { key: string | null; base: [number, number]; p: number };
  lastVerdicts: GuardrailVerdict[];
  challenger: string | null;
  /** The compiled route this memory belongs to: a reload that changes the route's policy starts a new experiment. */
  route: CompiledRoute;
  /** The fleet's experiment epoch (coordination); when it moves, this replica starts the new experiment too. */
  epoch: string | null;
  /** Running always-valid state of the guardrails judged on the pooled statistics (`guardrails`: on this replica's own). */
  pooledGuardrails: GuardrailMemory;
  /** The last tick's coordination view of the route. */
  link: RouteLink | null;
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
  webhooks: Webhooks;
  logger: Logger;
  intervalMs?: number;
  clock?: () => number;
  /** Redis coordination between replicas; absent: this replica decides alone. */
  coordination?: Coordination;
  /** Parsed pairs and labelled outcomes (the pair recorder) for the shadow gate and A/B winner; absent: neither is reported. */
  experiments?: ExperimentCounts & Partial<PredictionCounts>;
}

/** The analysis of one route, as served by GET /v1/routes/:route/analysis. */
export interface RouteAnalysis {
  route: string;
  phase: string;
  decision: 'collecting' | 'healthy' | 'breach' | 'promotable' | 'rolled_back' | 'promoted' | 'inactive' | 'paused';
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

/**
 * A follower's rollout state: the leader's (so a new leader continues at the same step instead of starting over), or
 * its own judgment when no leader has published one, never a state that assumes an action it did not take.
 */
function followerState(current: ControlState, link: RouteLink, result: { state: ControlState; actions: readonly ControlAction[] }, rolledBack: boolean): ControlState {
  const leader = link.leaderState;
  if (leader !== null) {
    if (rolledBack) return { ...leader, phase: 'rolled_back' };
    // The leader rolled back and the change is still on its way here: keep the current state until it lands.
    return leader.phase === 'rolled_back' ? current : leader;
  }
  return result.actions.length === 0 ? result.state : current;
}

/** The challenger a progressive rollout moves: the route's canary, else its first served (non-shadow) challenger. */
function rolloutChallenger(route: CompiledRoute): { name: string; mode: ChallengerMode } | undefined {
  return route.policy.challengers.find((c) => c.mode === 'canary') ?? route.policy.challengers.find((c) => c.mode !== 'shadow');
}

/** What a resume did. */
export interface ResumeResult {
  changed: boolean;
  eventId: number | null;
  /** Split changes written to Unleash so that a flag-driven route resumes where it was (or at the first rollout step). */
  restored: Record<string, unknown>[];
}

/** Judges every route with a served challenger each tick and acts (rollback, next step, promote). */
export class Controller {
  readonly #deps: ControllerDeps;
  readonly #memory = new Map<string, RouteMemory>();
  readonly #clock: () => number;
  readonly #coordination: Coordination;
  #timer: NodeJS.Timeout | null = null;
  #ticking = false;
  readonly #driftEvents: DriftEvents;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? Date.now;
    this.#coordination = deps.coordination ?? new LocalCoordination('local');
    this.#driftEvents = new DriftEvents(deps.audit, deps.metrics);
    // A lifted rollback starts a new experiment in the same synchronous step (a resume here or from the fleet), so
    // neither a tick nor GET .../analysis can judge the resumed route with the evidence that rolled it back.
    deps.state.onNewExperiment((route) => {
      const memory = this.#memory.get(route);
      if (memory !== undefined) this.#restart(route, memory);
    });
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), this.#deps.intervalMs ?? 250);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One evaluation of every route (also callable directly). */
  tick(): void {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      for (const decision of this.#deps.splits.snapshot.decisions) this.#tickRoute(decision);
    } catch (err) {
      this.#deps.logger.error({ err }, 'controller tick failed');
    } finally {
      this.#ticking = false;
    }
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
      memory = {
        state: initialControlState(), guardrails: {}, srm: { key: null, base: [0, 0], p: 1 }, lastVerdicts: [], challenger: null, route: decision.route,
        epoch: null, pooledGuardrails: {}, link: null, generation: this.#deps.state.generation(name), breachSince: null, followerGuardrails: {},
        baseline: countsBaseline(this.#deps.experiments ?? null, name),
        published: new Map(),
        divergence: newDivergenceMemory(this.#predictionCounts, name), divergenceReports: [],
      };
      this.#driftEvents.forget(name);
      this.#memory.set(name, memory);
      this.#deps.windows.setPolicy(name, decision.route.policy.guardrails ?? defaultGuardrails);
      this.#deps.windows.reset(name);
    }
    return memory;
  }

  /** The controlled challenger: the rollout's canary challenger, else the first challenger with a served share. */
  #controlled(decision: RouteDecision): { name: string; mode: ChallengerMode; servedPercent: number } | null {
    const rollout = decision.route.policy.rollout;
    let previous = 0;
    const served = new Map<string, number>();
    for (const range of decision.served) {
      served.set(range.arm.name, range.upTo - previous);
      previous = range.upTo;
    }
    if (rollout) {
      const canary = rolloutChallenger(decision.route);
      return canary ? { name: canary.name, mode: canary.mode, servedPercent: served.get(canary.name) ?? 0 } : null;
    }
    const first = decision.served[0];
    if (!first) return null;
    return { name: first.arm.name, mode: first.mode, servedPercent: served.get(first.arm.name) ?? 0 };
  }

  #tickRoute(decision: RouteDecision): void {
    const name = decision.route.name;
    const memory = this.#memoryFor(decision);
    const policy: GuardrailPolicy = decision.route.policy.guardrails ?? defaultGuardrails;
    // A resumed rollback (here, or applied from another replica) moved the generation: a new experiment starts before
    // anything is judged, so the evidence behind the rollback cannot undo the resume.
    if (memory.generation !== this.#deps.state.generation(name)) this.#restart(name, memory);
    this.#deps.windows.window(name).refreshThreshold();
    const controlled = this.#controlled(decision);
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
    const inputs = { ...this.#inputs(name, challenger, link.pooled), extra: divergence.extra };
    // Running always-valid states are kept per source: looks at the pooled and at the local statistics are different sequences.
    const evaluated = evaluateGuardrails(inputs, policy, link.pooled !== null ? memory.pooledGuardrails : memory.guardrails);
    if (link.pooled !== null) memory.pooledGuardrails = evaluated.memory;
    else memory.guardrails = evaluated.memory;
    const settled = settleDivergence(name, divergence, evaluated.verdicts, challenger, this.#deps.metrics);
    evaluated.verdicts = settled.verdicts;
    memory.divergenceReports = settled.reports;
    this.#driftEvents.publish(name, decision.route.policy.drift, this.#predictionCounts);
    memory.lastVerdicts = evaluated.verdicts;
    for (const v of evaluated.verdicts) {
      const value = stateValue[v.state];
      if (memory.published.get(v.name) !== value) {
        memory.published.set(v.name, value);
        this.#deps.metrics.guardrailState.labels(name, v.name).set(value);
      }
    }

    const srmOk = this.#srm(name, memory, decision, controlled, inputs);
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
      },
      { rollout: decision.route.policy.rollout ?? null, abPromote: policy.ab.promote },
    );
    const mode = controlled?.mode ?? 'canary';
    switch (link.role) {
      case 'alone':
      case 'leader':
        memory.state = result.state;
        for (const action of result.actions) this.#act(decision.route, action, mode, link.role);
        if (link.role === 'leader') this.#coordination.reportState(name, memory.state);
        break;
      case 'degraded': {
        // Deciding alone while Redis is away: a rollback still happens at once; rollout steps wait for the fleet.
        const rollback = result.actions.find((a) => a.type === 'rollback');
        if (rollback) {
          memory.state = result.state;
          this.#act(decision.route, rollback, mode, link.role);
        } else if (result.actions.length === 0) memory.state = result.state;
        break;
      }
      case 'follower':
        memory.state = followerState(memory.state, link, result, decision.state.rolledBack);
        this.#followerBreakers(decision, memory, challenger, controlled?.servedPercent ?? 0);
        break;
    }
    const step = memory.state.step ?? -1;
    // prom-client hashes the label set on every set, and this runs on every tick of every route: set on change only.
    if (memory.published.get('rollout step') !== step) {
      memory.published.set('rollout step', step);
      this.#deps.metrics.rolloutStep.labels(name).set(step);
    }
  }

  /** The A/B winner on the pooled (else this replica's) labelled outcomes, for an ab challenger whose policy promotes (else null). */
  #abWinner(route: string, champion: string, controlled: { name: string; mode: string } | null, policy: GuardrailPolicy, memory: RouteMemory, pooled: Readonly<Record<string, Outcome>> | null): string | null {
    const counts = this.#deps.experiments;
    if (!counts || !policy.ab.promote || controlled?.mode !== 'ab') return null;
    return abWinnerSince(counts, memory.baseline, route, champion, controlled.name, policy, pooled).winner;
  }

  /** What the pair recorder counted in the route's current experiment, for the pool (undefined without a recorder). */
  #experimentSnapshot(route: string, memory: RouteMemory): ExperimentSnapshot | undefined {
    const counts = this.#deps.experiments;
    return counts ? { outcomes: outcomesSince(counts, memory.baseline, route), agreement: pairsSince(counts, memory.baseline, route), predictions: predictionsSince(this.#predictionCounts, memory.divergence, route) } : undefined;
  }

  /** The recorder's prediction counts and drift results, when it keeps them. */
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
    memory.srm = { key: null, base: [0, 0], p: 1 };
    memory.lastVerdicts = [];
    memory.baseline = countsBaseline(this.#deps.experiments ?? null, route);
    memory.divergence = newDivergenceMemory(this.#predictionCounts, route);
    memory.divergenceReports = [];
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
    const evaluated = evaluateGuardrails(this.#inputs(decision.route.name, challenger, null), policy, memory.followerGuardrails);
    memory.followerGuardrails = evaluated.memory;
    const breakers = evaluated.verdicts.filter((v) => v.kind === 'breaker');
    const breach = breakers.find((v) => v.state === 'breach');
    if (!breach) {
      memory.breachSince = null;
      return;
    }
    const now = this.#clock();
    memory.breachSince ??= now;
    if (now - memory.breachSince < this.#coordination.followerGraceMs) return;
    memory.breachSince = null;
    this.#deps.logger.warn({ route: decision.route.name, breaker: breach.name, graceMs: this.#coordination.followerGraceMs }, 'own hard breaker in breach beyond the grace period and the leader has not acted: rolling back');
    this.rollback(decision.route.name, breach.name, breakers, 'controller');
  }

  /** What the guardrails judge: the pooled statistics when coordinated, else this replica's live ones. */
  #inputs(route: string, challenger: string | null, pooled: PooledView | null): GuardrailInputs {
    const window = this.#deps.windows.window(route);
    if (pooled !== null) return pooledInputs(pooled, challenger, window.p95ThresholdMs);
    const challengerWindow = challenger ? window.challengers.get(challenger) : undefined;
    return { champion: window.champion.totals, challenger: challengerWindow?.totals ?? emptyTotals(), strata: challenger ? stratumPairs(window.strata(), armKey('challenger', challenger)) : [], p95ThresholdMs: window.p95ThresholdMs };
  }

  /**
   * Sequential sample-ratio check of the split the route serves now (docs/statistics.md, "Sample ratio"): it counts
   * randomisation units (a sticky key once, a request without a key as its own unit), not requests, so a few very
   * active users cannot fake a mismatch, and it judges only the current split: a new challenger share, champion share
   * or step starts a new epoch with fresh unit counts and a fresh running p-value. Ok while that p-value is > 0.001.
   */
  #srm(route: string, memory: RouteMemory, decision: RouteDecision, controlled: { name: string; servedPercent: number } | null, inputs: GuardrailInputs): boolean | null {
    const servedPercent = controlled?.servedPercent ?? 0;
    const championPercent = 100 - decision.servedTotal;
    const key = `${controlled?.name ?? ''}|${servedPercent}|${championPercent}|${memory.state.step ?? ''}`;
    if (memory.srm.key !== key) {
      this.#deps.windows.window(route).newSplitEpoch(key);
      memory.srm = { key, base: [inputs.champion.units, inputs.challenger.units], p: 1 };
    }
    if (servedPercent <= 0 || championPercent <= 0) return null;
    const counts = [inputs.champion.units - memory.srm.base[0], inputs.challenger.units - memory.srm.base[1]];
    // Other served challengers take traffic too; the check compares only these two arms, so weight by their shares.
    const result = sequentialSrm(counts, [championPercent, servedPercent]);
    if (result.status !== 'ok') return null;
    memory.srm.p = Math.min(memory.srm.p, result.pLook);
    return memory.srm.p > 0.001;
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
      case 'promote':
        this.#fenced(route.name, role, action.type, () => {
          this.#deps.metrics.promotions.labels(route.name).inc();
          void this.#deps.changer
            .change(route, action.challenger, 100, mode, 'controller', 'promote', {})
            .then(() => this.#deps.webhooks.send({ type: 'promotion', route: route.name, challenger: action.challenger, at: new Date().toISOString() }))
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
   * keeps it), then the evidence is audited and counted, the flag is written through and webhooks are fired.
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
      memory.state = { ...memory.state, phase: 'rolled_back', rollbackReason: reason };
    }
    const arms = memory?.link?.pooled ? pooledArmViews(memory.link.pooled) : this.#arms(this.#deps.windows.window(routeName));
    const replica = coordination.enabled ? { role, instanceId: coordination.instanceId } : {};
    this.#deps.audit.append({ who, action: 'rollback', route: routeName, before, after: { servedPercent: 0, rolledBack: true }, detail: { reason, evidence, arms, ...replica } });
    this.#deps.logger.warn({ route: routeName, reason, who, ...replica }, 'rolled back');
    const controlled = this.#controlled(decision);
    const effects = () => {
      this.#deps.metrics.rollbacks.labels(routeName, reason).inc();
      if (controlled) {
        void this.#deps.changer.writeThroughRollback(decision.route, controlled.name, controlled.mode).catch((err: unknown) => this.#deps.logger.error({ err, route: routeName }, 'rollback write-through to Unleash failed; this replica holds the rollback locally'));
      }
      this.#deps.webhooks.send({ type: 'rollback', route: routeName, reason, who, at: new Date().toISOString(), evidence, arms });
    };
    if (!coordination.enabled) {
      effects();
      return { changed: true };
    }
    // With Redis the rollback goes to the fleet first (fenced by the lease when it is the leader's decision). Only the
    // replica that published it counts it and does the external effects, so Unleash and webhooks see it once.
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

  #arms(window: RouteWindow): ArmView[] {
    return [
      armView('champion', 'champion', window.champion.totals),
      ...[...window.challengers].map(([name, w]) => armView(name, 'challenger', w.totals)),
      ...[...window.shadows].map(([name, w]) => armView(name, 'shadow', w.totals)),
    ];
  }

  /** The live analysis of a route (null for an unknown route). */
  analysis(routeName: string): RouteAnalysis | null {
    const decision = this.#deps.splits.snapshot.byName.get(routeName);
    if (!decision) return null;
    const memory = this.#memoryFor(decision);
    const controlled = this.#controlled(decision);
    const window = this.#deps.windows.window(routeName);
    const rollout = decision.route.policy.rollout;
    // The live split is the truth for a rollback (restored from disk, or set by another replica) even before a tick.
    const phase = decision.state.rolledBack ? 'rolled_back' : memory.state.phase;
    // Before the first tick (just started or restored) judge now, without advancing the running statistics.
    const policy = decision.route.policy.guardrails ?? defaultGuardrails;
    // A fresh view: the pooled counts include this replica's requests up to now and the others' last exchange.
    const link = this.#coordination.link(routeName, memory.epoch, window, this.#experimentSnapshot(routeName, memory));
    const verdicts = memory.lastVerdicts.length > 0 ? memory.lastVerdicts : evaluateGuardrails(this.#inputs(routeName, controlled?.name ?? memory.challenger, link.pooled), policy, link.pooled !== null ? memory.pooledGuardrails : memory.guardrails).verdicts;
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
    };
  }
}
