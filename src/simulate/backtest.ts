// Replays recorded served and pair records through the real windows and controller on a clock that follows their timestamps.
import type { RouteAnalysis } from '../control/controller.js';
import type { GuardrailVerdict } from '../control/guardrails.js';
import type { Policy } from '../config/policy-schema.js';
import type { UpstreamErrorKind } from '../proxy/error-map.js';
import type { ServedObservation, ShadowObservation } from '../record/port.js';
import { buildControlPlane, eventsAfter, tickAndSettle, VirtualClock } from './plane.js';

/** One answer as the pair recorder writes it (src/record/pair-recorder.ts `#side`). */
interface RecordedSide {
  variant?: string;
  status?: number;
  error?: string | null;
  latencyMs?: number;
  role?: 'champion' | 'challenger';
  mode?: 'champion' | 'canary' | 'ab';
  fallbackFor?: string | null;
}

/** The fields of a `served` or `pair` record the replay reads. */
export interface RecordedLine extends RecordedSide {
  type?: string;
  route?: string;
  at?: string;
  key?: string | null;
  served?: RecordedSide | null;
  shadow?: RecordedSide | null;
}

/** A record ready to replay: its time and what the data plane observed. */
export interface ReplayRecord {
  t: number;
  route: string;
  key: string | null;
  served: RecordedSide | null;
  shadow: RecordedSide | null;
}

/** Why records were not replayed. */
export interface ReplayCounts {
  read: number;
  replayed: number;
  /** Feedback records and anything that is not a served or pair record. */
  otherType: number;
  /** Records of routes not replayed (not in the policy, or not asked for). */
  otherRoute: number;
  /** Records without a valid time or answer. */
  malformed: number;
  /** Answers by a variant the policy's route does not have. */
  unknownVariant: number;
  /** Records after the route's rollback or promotion (the challenger would no longer have served them). */
  afterOutcome: number;
}

/** Something the controller did. */
export interface BacktestEvent {
  at: string;
  /** Seconds since the first replayed record. */
  atSeconds: number;
  type: 'rollback' | 'step' | 'promote';
  /** The rollout step and share for a step; 100 for a promotion. */
  step: number | null;
  percent: number | null;
  /** The guardrail or breaker behind a rollback. */
  reason: string | null;
  /** The verdicts the controller acted on. */
  evidence: readonly GuardrailVerdict[];
  /** Requests and failures per arm in the controller's window at that moment. */
  arms: unknown;
  srm: RouteAnalysis['srm'] | null;
}

/** The backtest of one route. */
export interface RouteBacktest {
  route: string;
  challenger: string | null;
  events: BacktestEvent[];
  /** The controller's analysis after the last record (or at the rollback or promotion). */
  final: RouteAnalysis | null;
}

export interface BacktestResult {
  from: string | null;
  to: string | null;
  counts: ReplayCounts;
  routes: RouteBacktest[];
}

/** Converts parsed log lines to replay records for `routes`, counting what is left out; sorted by time. */
export function toReplayRecords(lines: Iterable<RecordedLine>, routes: ReadonlySet<string>, counts: ReplayCounts): ReplayRecord[] {
  const out: ReplayRecord[] = [];
  for (const line of lines) {
    counts.read++;
    if (line.type !== 'served' && line.type !== 'pair') {
      counts.otherType++;
      continue;
    }
    if (typeof line.route !== 'string' || !routes.has(line.route)) {
      counts.otherRoute++;
      continue;
    }
    const t = typeof line.at === 'string' ? Date.parse(line.at) : NaN;
    const served = line.type === 'served' ? line : (line.served ?? null);
    const shadow = line.type === 'pair' ? (line.shadow ?? null) : null;
    if (!Number.isFinite(t) || (served === null && shadow === null)) {
      counts.malformed++;
      continue;
    }
    out.push({ t, route: line.route, key: line.key ?? null, served, shadow });
  }
  // Records are written when a request completes, a little out of order; `at` is when it started.
  return out.sort((a, b) => a.t - b.t);
}

const latencyOf = (side: RecordedSide) => (typeof side.latencyMs === 'number' ? side.latencyMs : NaN);

/**
 * Replays `records` (sorted) through a control plane built from `policy`: before each record the controller gets every
 * tick due by the record's time (one per `intervalMs` of record time, the first at the first record), so rollout
 * durations, breakers and sequential looks see the recorded pace. A route stops at its rollback or promotion.
 */
export async function replay(policy: Policy, version: string, records: readonly ReplayRecord[], options: { intervalMs: number; counts: ReplayCounts }): Promise<BacktestResult> {
  const counts = options.counts;
  if (records.length === 0) return { from: null, to: null, counts, routes: policy.routes.map((r) => ({ route: r.name, challenger: null, events: [], final: null })) };
  const start = records[0]!.t;
  const clock = new VirtualClock(start);
  const plane = await buildControlPlane(policy, version, clock, options.intervalMs);
  const { splits, windows, controller, audit } = plane;
  const reports = new Map<string, RouteBacktest>(policy.routes.map((r) => [r.name, { route: r.name, challenger: null, events: [], final: null }]));
  const finished = new Set<string>();
  let lastEventId = 0;

  const look = async (): Promise<void> => {
    await tickAndSettle(plane);
    for (const event of eventsAfter(audit, lastEventId)) {
      lastEventId = event.id;
      const report = reports.get(event.route);
      if (!report || finished.has(event.route)) continue;
      const detail = (event.detail ?? {}) as { reason?: string; evidence?: GuardrailVerdict[]; arms?: unknown; step?: number; percent?: number };
      const analysis = controller.analysis(event.route);
      const base = { at: new Date(clock.now).toISOString(), atSeconds: (clock.now - start) / 1000, srm: analysis?.srm ?? null };
      if (event.action === 'rollback') {
        report.events.push({ ...base, type: 'rollback', step: null, percent: null, reason: detail.reason ?? null, evidence: detail.evidence ?? [], arms: detail.arms ?? null });
      } else if (event.action === 'rollout.step' || event.action === 'promote') {
        const promote = event.action === 'promote';
        report.events.push({ ...base, type: promote ? 'promote' : 'step', step: promote ? null : (detail.step ?? null), percent: promote ? 100 : (detail.percent ?? null), reason: null, evidence: analysis?.guardrails ?? [], arms: analysis?.arms ?? null });
      } else continue;
      report.challenger ??= analysis?.challenger ?? null;
      if (event.action === 'rollback' || event.action === 'promote') {
        finished.add(event.route);
        report.final = analysis;
      }
    }
  };

  const served: ServedObservation = { route: '', requestId: 'replayed', joinId: 0, stickyKey: null, variant: '', role: 'champion', mode: 'champion', status: 200, errorKind: null, latencyMs: 0, fellBack: false, fallbackFor: null, startedAt: 0, mirrored: 0, requestBody: null, responseBody: null, responseTruncated: false, contentType: null };
  const shadowed: ShadowObservation = { route: '', requestId: 'replayed', joinId: 0, variant: '', status: 200, errorKind: null, latencyMs: 0, startedAt: 0, responseBody: null, responseTruncated: false, contentType: null };

  let nextTick = start;
  for (const record of records) {
    while (nextTick <= record.t) {
      clock.now = nextTick;
      await look();
      nextTick += options.intervalMs;
    }
    if (finished.has(record.route)) {
      counts.afterOutcome++;
      continue;
    }
    clock.now = record.t;
    const route = splits.snapshot.byName.get(record.route)!.route;
    const side = record.served;
    const shadowSide = record.shadow;
    const arm = side ? route.armByName.get(side.variant ?? '') : undefined;
    const shadowArm = shadowSide ? route.armByName.get(shadowSide.variant ?? '') : undefined;
    if ((side && !arm) || (shadowSide && (!shadowArm || shadowArm.role !== 'challenger'))) {
      counts.unknownVariant++;
      continue;
    }
    counts.replayed++;
    if (shadowSide && shadowArm) {
      shadowed.route = record.route;
      shadowed.variant = shadowArm.name;
      shadowed.status = shadowSide.status ?? 0;
      shadowed.errorKind = (shadowSide.error ?? null) as UpstreamErrorKind | null;
      shadowed.latencyMs = latencyOf(shadowSide);
      shadowed.startedAt = record.t;
      windows.shadowed(shadowed);
    }
    if (!side || !arm) continue;
    served.route = record.route;
    served.stickyKey = record.key;
    served.startedAt = record.t;
    served.mirrored = shadowSide ? 1 : 0;
    const fallbackFor = side.fallbackFor ?? null;
    const failedArm = fallbackFor !== null ? route.armByName.get(fallbackFor) : undefined;
    if (failedArm && failedArm.role === 'challenger') {
      // The log holds the champion's answer in place of a failed challenger, not the failure itself (the recorder
      // skips fallen-back observations): replay the challenger's failure as the data plane reported it. Its own
      // latency was not recorded; the answer's stands in for it.
      served.variant = failedArm.name;
      served.role = 'challenger';
      served.mode = route.policy.challengers.find((c) => c.name === failedArm.name)?.mode === 'ab' ? 'ab' : 'canary';
      served.status = 0;
      served.errorKind = 'other';
      served.latencyMs = latencyOf(side);
      served.fellBack = true;
      served.fallbackFor = null;
      windows.served(served);
    }
    served.variant = arm.name;
    served.role = arm.role;
    served.mode = arm.role === 'champion' ? 'champion' : side.mode === 'ab' ? 'ab' : 'canary';
    served.status = side.status ?? 0;
    served.errorKind = (side.error ?? null) as UpstreamErrorKind | null;
    served.latencyMs = latencyOf(side);
    served.fellBack = false;
    served.fallbackFor = fallbackFor;
    windows.served(served);
  }
  // One more look after the last record, as the next tick would have had.
  clock.now = nextTick;
  await look();
  for (const report of reports.values()) {
    if (report.final === null) report.final = controller.analysis(report.route);
    report.challenger ??= report.final?.challenger ?? null;
  }
  return { from: new Date(start).toISOString(), to: new Date(records[records.length - 1]!.t).toISOString(), counts, routes: [...reports.values()] };
}

export function emptyCounts(): ReplayCounts {
  return { read: 0, replayed: 0, otherType: 0, otherRoute: 0, malformed: 0, unknownVariant: 0, afterOutcome: 0 };
}
