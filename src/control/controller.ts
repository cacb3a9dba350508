// The effectful shell around the pure controller: every tick it judges each route's live windows and carries out the actions.
import type { Logger } from 'pino';
import { defaultGuardrails, type ChallengerMode, type GuardrailPolicy } from '../config/policy-schema.js';
import type { CompiledRoute, RouteDecision } from '../decision/snapshot.js';
import type { LiveWindows, RouteWindow } from '../analysis/window.js';
import { emptyTotals } from '../analysis/window.js';
import { sequentialSrm } from '../analysis/stats/index.js';
import type { Metrics } from '../metrics/registry.js';
import type { AuditLog } from './audit.js';
import { evaluateGuardrails, type GuardrailInputs, type GuardrailMemory, type GuardrailVerdict } from './guardrails.js';
import type { LiveSplits } from './live-splits.js';
import { initialControlState, next, type ControlAction, type ControlState } from './phases.js';
import type { SplitChanger } from './split-changer.js';
import type { StateStore } from './state-store.js';
import type { Webhooks } from './webhooks.js';

/** Per-route memory of the shell (the pure state plus path-dependent statistics). */
interface RouteMemory {
  state: ControlState;
  guardrails: GuardrailMemory;
  /** Running always-valid SRM p-value for the current step, and the counts when the step started. */
  srmP: number;
  srmBase: [number, number];
  srmStep: number | null;
  lastVerdicts: GuardrailVerdict[];
  challenger: string | null;
  /** Reference of the policy route this memory belongs to: a reload starts a new experiment. */
  route: CompiledRoute;
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
  arms: { name: string; role: string; requests: number; failures: number; errorRate: number | null; medianLatencyMs: number | null }[];
  guardrails: GuardrailVerdict[];
  srm: { pValue: number; ok: boolean | null };
  p95ThresholdMs: number | null;
}

const stateValue: Record<GuardrailVerdict['state'], number> = { collecting: 0, healthy: 1, within: 1, breach: 2 };

/** Judges every route with a served challenger each tick and acts (rollback, next step, promote). */
export class Controller {
  readonly #deps: ControllerDeps;
  readonly #memory = new Map<string, RouteMemory>();
  readonly #clock: () => number;
  #timer: NodeJS.Timeout | null = null;
  #ticking = false;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? Date.now;
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
    if (!memory || memory.route !== decision.route) {
      memory = { state: initialControlState(), guardrails: {}, srmP: 1, srmBase: [0, 0], srmStep: null, lastVerdicts: [], challenger: null, route: decision.route };
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
      const canary = decision.route.policy.challengers.find((c) => c.mode === 'canary') ?? decision.route.policy.challengers.find((c) => c.mode !== 'shadow');
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
    const controlled = this.#controlled(decision);
    if (controlled && controlled.name !== memory.challenger) {
      // A different challenger is a different experiment: start its statistics afresh. (Losing the challenger, as in
      // a rollback, keeps the statistics: they are the evidence shown by the analysis.)
      memory.challenger = controlled.name;
      memory.guardrails = {};
      this.#deps.windows.reset(name);
    }
    const inputs = this.#inputs(name, controlled?.name ?? memory.challenger, policy);
    const window = this.#deps.windows.window(name);
    const evaluated = evaluateGuardrails(inputs, policy, memory.guardrails);
    memory.guardrails = evaluated.memory;
    memory.lastVerdicts = evaluated.verdicts;
    for (const v of evaluated.verdicts) this.#deps.metrics.guardrailState.labels(name, v.name).set(stateValue[v.state]);

    const srmOk = this.#srm(memory, window, controlled?.servedPercent ?? 0, inputs.challenger.errors.n);
    const wasRolledBack = memory.state.phase === 'rolled_back';
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
      },
      { rollout: decision.route.policy.rollout ?? null },
    );
    if (wasRolledBack && result.state.phase !== 'rolled_back') {
      // A person resumed the route: new experiment, fresh statistics.
      memory.guardrails = {};
      this.#deps.windows.reset(name);
    }
    memory.state = result.state;
    this.#deps.metrics.rolloutStep.labels(name).set(result.state.step ?? -1);
    for (const action of result.actions) this.#act(decision.route, action, controlled?.mode ?? 'canary');
  }

  /** What the guardrails judge: the champion's and the controlled challenger's live statistics. */
  #inputs(route: string, challenger: string | null, policy: GuardrailPolicy): GuardrailInputs {
    const window = this.#deps.windows.window(route);
    const challengerWindow = challenger ? window.challengers.get(challenger) : undefined;
    return {
      champion: window.champion.totals,
      challenger: challengerWindow?.totals ?? emptyTotals(),
      recent: {
        failures: challengerWindow?.recent.failuresInLast(policy.errorRate.window) ?? { count: 0, of: 0 },
        p99: challengerWindow?.recent.p99OfLast(policy.latency.window) ?? { p99: 0, of: 0 },
      },
      p95ThresholdMs: window.p95ThresholdMs,
    };
  }

  /** Sequential SRM on the current step's split (METHODS.md §4.5 condition 2): ok while its always-valid p > 0.001. */
  #srm(memory: RouteMemory, window: RouteWindow, servedPercent: number, challengerN: number): boolean | null {
    if (memory.srmStep !== memory.state.step) {
      memory.srmStep = memory.state.step;
      memory.srmBase = [window.champion.totals.errors.n, challengerN];
      memory.srmP = 1;
    }
    if (servedPercent <= 0 || servedPercent >= 100) return null;
    const counts = [window.champion.totals.errors.n - memory.srmBase[0], challengerN - memory.srmBase[1]];
    // Other served challengers take traffic too; the check compares only these two arms, so weight by their shares.
    const result = sequentialSrm(counts, [100 - servedPercent, servedPercent]);
    if (result.status !== 'ok') return null;
    memory.srmP = Math.min(memory.srmP, result.pLook);
    return memory.srmP > 0.001;
  }

  #act(route: CompiledRoute, action: ControlAction, mode: ChallengerMode): void {
    switch (action.type) {
      case 'rollback':
        this.rollback(route.name, action.reason, action.evidence, 'controller');
        return;
      case 'set-percent':
        void this.#deps.changer.change(route, action.challenger, action.percent, mode, 'controller', 'rollout.step', { step: action.step }).catch((err: unknown) => this.#deps.logger.error({ err, route: route.name }, 'rollout step failed'));
        return;
      case 'promote':
        this.#deps.metrics.promotions.labels(route.name).inc();
        void this.#deps.changer
          .change(route, action.challenger, 100, mode, 'controller', 'promote', {})
          .then(() => this.#deps.webhooks.send({ type: 'promotion', route: route.name, challenger: action.challenger, at: new Date().toISOString() }))
          .catch((err: unknown) => this.#deps.logger.error({ err, route: route.name }, 'promotion failed'));
        return;
    }
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
    this.#deps.state.setRolledBack(routeName, true);
    const memory = this.#memory.get(routeName);
    if (memory) memory.state = { ...memory.state, phase: 'rolled_back', rollbackReason: reason };
    this.#deps.metrics.rollbacks.labels(routeName, reason).inc();
    const window = this.#deps.windows.window(routeName);
    const arms = this.#arms(window);
    this.#deps.audit.append({ who, action: 'rollback', route: routeName, before, after: { servedPercent: 0, rolledBack: true }, detail: { reason, evidence, arms } });
    this.#deps.logger.warn({ route: routeName, reason, who }, 'rolled back');
    const controlled = this.#controlled(decision);
    if (controlled) {
      void this.#deps.changer.writeThroughRollback(decision.route, controlled.name, controlled.mode).catch((err: unknown) => this.#deps.logger.error({ err, route: routeName }, 'rollback write-through to Unleash failed; this replica holds the rollback locally'));
    }
    this.#deps.webhooks.send({ type: 'rollback', route: routeName, reason, who, at: new Date().toISOString(), evidence, arms });
    return { changed: true };
  }

  #arms(window: RouteWindow): RouteAnalysis['arms'] {
    const arm = (name: string, role: string, totals: typeof window.champion.totals) => ({
      name,
      role,
      requests: totals.errors.n,
      failures: totals.errors.events,
      errorRate: totals.errors.n > 0 ? totals.errors.events / totals.errors.n : null,
      medianLatencyMs: totals.logLatency.n > 0 ? Math.exp(totals.logLatency.mean) : null,
    });
    return [
      arm('champion', 'champion', window.champion.totals),
      ...[...window.challengers].map(([name, w]) => arm(name, 'challenger', w.totals)),
      ...[...window.shadows].map(([name, w]) => arm(name, 'shadow', w.totals)),
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
    const verdicts = memory.lastVerdicts.length > 0 ? memory.lastVerdicts : evaluateGuardrails(this.#inputs(routeName, controlled?.name ?? memory.challenger, policy), policy, memory.guardrails).verdicts;
    const decisionState: RouteAnalysis['decision'] = verdicts.some((v) => v.state === 'breach') && phase !== 'rolled_back' ? 'breach' : phase;
    const arms = this.#arms(window);
    const championName = decision.route.arms[0]!.name;
    return {
      route: routeName,
      phase,
      decision: decisionState,
      challenger: controlled?.name ?? memory.challenger,
      servedPercent: controlled?.servedPercent ?? 0,
      step: rollout && memory.state.step !== null ? { index: memory.state.step, percent: rollout.steps[memory.state.step]!, of: [...rollout.steps] } : null,
      rollbackReason: memory.state.rollbackReason,
      arms: arms.map((a) => (a.role === 'champion' ? { ...a, name: championName } : a)),
      guardrails: verdicts,
      srm: { pValue: memory.srmP, ok: memory.srmP > 0.001 },
      p95ThresholdMs: window.p95ThresholdMs,
    };
  }
}
