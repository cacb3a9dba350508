// The control plane the composition root builds (src/app.ts), assembled in memory around a virtual clock for simulate and backtest.
import { pino } from 'pino';
import { LiveWindows } from '../analysis/window.js';
import { compilePolicy } from '../decision/compile.js';
import type { Policy } from '../config/policy-schema.js';
import { AuditLog, type AuditEvent } from '../control/audit.js';
import { Controller } from '../control/controller.js';
import { LiveSplits } from '../control/live-splits.js';
import { SplitChanger } from '../control/split-changer.js';
import { StateStore } from '../control/state-store.js';
import { emptySnapshot, SnapshotRef, type RouteDecision } from '../decision/snapshot.js';
import { NopFlagSource } from '../flags/nop.js';
import { Metrics } from '../metrics/registry.js';

/** Virtual time in ms since the epoch; only the harness moves it. */
export class VirtualClock {
  now: number;
  constructor(start: number) {
    this.now = start;
  }
  /** A closure for the components' `clock` option. */
  readonly read = (): number => this.now;
}

/** The real splits, windows and controller of one instance, wired as src/app.ts wires them, minus I/O. */
export interface ControlPlane {
  clock: VirtualClock;
  splits: LiveSplits;
  windows: LiveWindows;
  state: StateStore;
  audit: AuditLog;
  changer: SplitChanger;
  controller: Controller;
  metrics: Metrics;
}

const silent = pino({ level: 'silent' });

/**
 * The policy with its approval gates taken as granted at once: no person answers a simulation, and its confirm
 * webhook must never be asked by one. The times reported therefore leave out any wait at a gate.
 */
function withoutGates(policy: Policy): Policy {
  return {
    ...policy,
    routes: policy.routes.map((route) => {
      if (route.rollout === undefined) return route;
      const { confirm: _asked, ...rollout } = route.rollout;
      return { ...route, rollout: { ...rollout, approve: [] } };
    }),
  };
}

/**
 * Builds a control plane for a validated policy: no state file, no audit file, no flag server, no webhooks, no
 * Redis (so the controller decides alone), and the controller's and windows' clock is `clock`. Nothing is started:
 * the harness calls `controller.tick()` itself.
 */
export async function buildControlPlane(policy: Policy, version: string, clock: VirtualClock, intervalMs: number): Promise<ControlPlane> {
  const snapshots = new SnapshotRef(emptySnapshot());
  const splits = new LiveSplits(snapshots);
  const metrics = new Metrics({ defaultMetrics: false });
  const windows = new LiveWindows(clock.read);
  const audit = new AuditLog({ file: null, logger: silent });
  const state = await StateStore.open({ file: null, target: splits, logger: silent });
  const flags = new NopFlagSource(silent);
  const routes = compilePolicy(withoutGates(policy));
  splits.setPolicy(routes, version);
  flags.setRoutes(routes);
  const changer = new SplitChanger({ splits, flags, state, audit, flagWriter: null, logger: silent });
  const controller = new Controller({ splits, windows, state, changer, audit, metrics, logger: silent, intervalMs, clock: clock.read });
  return { clock, splits, windows, state, audit, changer, controller, metrics };
}

/**
 * One controller tick, then the split changes it started: a rollout step or a promotion goes through the changer's
 * per-route queue (a promise), so waiting on the queue makes the change visible before the next request.
 */
export async function tickAndSettle(plane: ControlPlane): Promise<void> {
  plane.controller.tick();
  for (const route of plane.splits.routes) await plane.changer.exclusive(route.name, settled);
}

const settled = async (): Promise<void> => undefined;

/** The audit events appended after event id `afterId` (oldest first); checks the newest id first, as most ticks append none. */
export function eventsAfter(audit: AuditLog, afterId: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  if ((audit.list({ limit: 1 })[0]?.id ?? 0) <= afterId) return out;
  for (const event of audit.list({ limit: 1_000 })) {
    if (event.id <= afterId) break;
    out.push(event);
  }
  return out.reverse();
}

/** The share (percent) a challenger is served in a decision. */
export function servedShare(decision: RouteDecision, challenger: string): number {
  let previous = 0;
  for (const range of decision.served) {
    if (range.arm.name === challenger) return range.upTo - previous;
    previous = range.upTo;
  }
  return 0;
}
