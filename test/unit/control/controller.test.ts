// The controller shell, table-tested on the real splits, windows, state store, changer and audit log with a virtual clock.
//
// Nothing here is mocked: the policy goes through the project's loader and compiler, traffic is fed to LiveWindows as
// the data plane feeds it (bucketed by the live snapshot, sticky keys hashed as Unleash does), and every tick is called
// directly, so time only moves when a test moves it. The timer is never started.
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { validatePolicyText } from '../../../src/config/load.js';
import { compilePolicy } from '../../../src/decision/compile.js';
import { emptySnapshot, SnapshotRef, type CompiledRoute } from '../../../src/decision/snapshot.js';
import { stickyBucket } from '../../../src/decision/bucket.js';
import { servingArm } from '../../../src/decision/split.js';
import { LiveSplits } from '../../../src/control/live-splits.js';
import { StateStore } from '../../../src/control/state-store.js';
import { AuditLog } from '../../../src/control/audit.js';
import { Metrics } from '../../../src/metrics/registry.js';
import { SplitChanger } from '../../../src/control/split-changer.js';
import { NopFlagSource } from '../../../src/flags/nop.js';
import { LiveWindows } from '../../../src/analysis/window.js';
import { Controller, type RouteAnalysis } from '../../../src/control/controller.js';
import { fanOut, type ServedObservation } from '../../../src/record/port.js';
import { PairRecorder } from '../../../src/record/pair-recorder.js';
import { nopSink } from '../../../src/record/sinks/sink.js';
import { createPrng } from '../../../src/demo/prng.js';
import { sequentialSrm } from '../../../src/analysis/stats/index.js';

const ROUTE = 'iris';
const TICK_MS = 250;

/** The route every case starts from: a canary rollout of v2 over v1 in three steps; rows override top-level fields. */
const baseRoute = {
  name: ROUTE,
  match: { pathPrefix: '/predict' },
  champion: { name: 'v1', url: 'http://127.0.0.1:9001' },
  challengers: [{ name: 'v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent: 0 }],
  stickiness: { header: 'x-user' },
  // A short tail baseline so the exceedance guardrail judges within seconds of virtual time.
  guardrails: { latency: { baselineRequests: 200 } },
  rollout: { steps: [10, 50, 100], minDuration: '30s', minRequests: 300 },
} as const;

/** How one arm behaves: its failure share, lognormal latency (median, sigma), broken timings and labelled accuracy. */
interface ArmSpec {
  errorRate?: number;
  latencyMs?: number;
  sigma?: number;
  /** A share of requests whose timing is broken (NaN, Infinity, negative), as a faulty clock would report it. */
  broken?: { rate: number; value: number };
  /** ab: share of answers whose predicted label is right (feedback is given for every answer). */
  accuracy?: number;
}

/** Traffic: how each arm behaves and where the sticky keys come from (a fresh key per request by default). */
interface TrafficSpec {
  champion?: ArmSpec;
  challenger?: ArmSpec;
  /** The sticky key of the i-th request of a batch (default: a fresh key, so every request is its own unit). */
  keys?: (i: number) => string;
  /** A broken split the sample-ratio check must flag: this share of the challenger's requests is served by the champion. */
  misrouted?: number;
}

const healthy: TrafficSpec = { champion: { errorRate: 0.01, latencyMs: 50 }, challenger: { errorRate: 0.01, latencyMs: 50 } };

interface RigOptions {
  seed?: number;
  recorder?: boolean;
  /** More routes in the same policy file. */
  others?: readonly Record<string, unknown>[];
}

/** Everything the app wires around a Controller (src/app.ts), in memory, on a virtual clock. */
class Rig {
  now = 1_700_000_000_000;
  readonly clock = () => this.now;
  readonly logger = pino({ level: 'silent' });
  readonly splits = new LiveSplits(new SnapshotRef(emptySnapshot()));
  readonly metrics = new Metrics({ defaultMetrics: false });
  readonly audit = new AuditLog({ file: null });
  readonly windows = new LiveWindows(this.clock);
  readonly recorder: PairRecorder | null;
  state!: StateStore;
  changer!: SplitChanger;
  controller!: Controller;
  readonly #random: () => number;
  #seq = 0;
  #labelled: { requestId: string; label: string }[] = [];
  /** Broken timings fed so far, per role. */
  readonly broken = { champion: 0, challenger: 0 };

  private constructor(seed: number, withRecorder: boolean) {
    this.#random = createPrng(seed);
    this.recorder = withRecorder ? new PairRecorder({ policies: { policyOf: (route) => this.splits.snapshot.byName.get(route)?.route.policy }, metrics: this.metrics, sink: nopSink }) : null;
  }

  static async create(overrides: Record<string, unknown> = {}, options: RigOptions = {}): Promise<Rig> {
    const rig = new Rig(options.seed ?? 1, options.recorder ?? false);
    rig.state = await StateStore.open({ file: null, target: rig.splits, logger: rig.logger });
    rig.splits.setPolicy(compile(overrides, options.others), 'v1');
    rig.changer = new SplitChanger({ splits: rig.splits, flags: new NopFlagSource(rig.logger), state: rig.state, audit: rig.audit, flagWriter: null, logger: rig.logger });
    rig.controller = new Controller({
      splits: rig.splits,
      windows: rig.windows,
      state: rig.state,
      changer: rig.changer,
      audit: rig.audit,
      metrics: rig.metrics,
      logger: rig.logger,
      clock: rig.clock,
      intervalMs: TICK_MS,
      ...(rig.recorder ? { experiments: rig.recorder } : {}),
    });
    // The controller looks once before traffic starts (its first look starts the experiment with fresh windows).
    await rig.tick();
    return rig;
  }

  get route(): CompiledRoute {
    return this.splits.snapshot.byName.get(ROUTE)!.route;
  }

  /** The challenger's live served percent (what the data plane would route now). */
  get percent(): number {
    return this.splits.snapshot.byName.get(ROUTE)!.servedTotal;
  }

  advance(ms: number): void {
    this.now += ms;
  }

  /** One controller tick, then whatever split change it started has landed (the changer serialises them per route). */
  async tick(): Promise<void> {
    this.controller.tick();
    await this.changer.exclusive(ROUTE, async () => undefined);
  }

  /** n requests, each routed by the live snapshot exactly as the data plane routes it, observed as it observes them. */
  traffic(n: number, spec: TrafficSpec = healthy): void {
    const ports = fanOut(this.recorder ? [this.windows, this.recorder] : [this.windows]);
    for (let i = 0; i < n; i++) {
      const decision = this.splits.snapshot.byName.get(ROUTE)!;
      const seq = this.#seq++;
      const key = spec.keys ? spec.keys(i) : `user-${seq}`;
      const bucket = stickyBucket(key, decision.groupId);
      const bucketed = servingArm(decision, bucket);
      const arm = bucketed.role === 'challenger' && this.#random() < (spec.misrouted ?? 0) ? decision.route.arms[0]! : bucketed;
      const champion = arm.role === 'champion';
      const behaviour = (champion ? spec.champion : spec.challenger) ?? {};
      const failed = this.#random() < (behaviour.errorRate ?? 0);
      const normal = Math.sqrt(-2 * Math.log(1 - this.#random())) * Math.cos(2 * Math.PI * this.#random());
      const broken = this.#random() < (behaviour.broken?.rate ?? 0);
      if (broken) this.broken[champion ? 'champion' : 'challenger']++;
      const latencyMs = broken ? behaviour.broken!.value : (behaviour.latencyMs ?? 50) * Math.exp((behaviour.sigma ?? 0.3) * normal);
      const requestId = `req-${seq}`;
      let responseBody: Buffer | null = null;
      if (behaviour.accuracy !== undefined && !failed) {
        responseBody = Buffer.from(JSON.stringify({ label: this.#random() < behaviour.accuracy ? 'setosa' : 'virginica' }));
        this.#labelled.push({ requestId, label: 'setosa' });
      }
      const served = decision.served.find((r) => r.arm === arm);
      const observation: ServedObservation = {
        route: ROUTE,
        requestId,
        joinId: 0,
        stickyKey: key,
        variant: arm.name,
        role: champion ? 'champion' : 'challenger',
        mode: champion ? 'champion' : served?.mode === 'ab' ? 'ab' : 'canary',
        status: failed ? 503 : 200,
        errorKind: failed ? 'status_5xx' : null,
        latencyMs,
        fellBack: false,
        fallbackFor: null,
        startedAt: this.now,
        mirrored: 0,
        requestBody: null,
        responseBody,
        responseTruncated: false,
        contentType: responseBody === null ? null : 'application/json',
      };
      ports.served(observation);
    }
  }

  /** `seconds` of virtual time at `rps` requests per second, one tick every 250 ms as the timer would run it. */
  async run(seconds: number, spec: TrafficSpec = healthy, rps = 200): Promise<void> {
    for (let t = 0; t < seconds * 1000; t += TICK_MS) {
      this.traffic((rps * TICK_MS) / 1000, spec);
      this.advance(TICK_MS);
      await this.feedback();
      await this.tick();
    }
  }

  /** Runs ticks until `done` holds (a condition in virtual time, never a sleep); returns the seconds it took. */
  async runUntil(done: () => boolean, spec: TrafficSpec = healthy, options: { rps?: number; maxSeconds?: number } = {}): Promise<number> {
    const started = this.now;
    const limit = (options.maxSeconds ?? 600) * 1000;
    while (!done()) {
      if (this.now - started >= limit) throw new Error(`condition not reached within ${limit / 1000} s of virtual time`);
      await this.run(TICK_MS / 1000, spec, options.rps);
    }
    return (this.now - started) / 1000;
  }

  /** Ground truth for every labelled answer so far (the recorder joins it as POST /v1/feedback would). */
  async feedback(): Promise<void> {
    if (this.recorder === null || this.#labelled.length === 0) return;
    await this.recorder.flush();
    this.recorder.feedback(this.#labelled);
    this.#labelled = [];
  }

  analysis(): RouteAnalysis {
    return this.controller.analysis(ROUTE)!;
  }

  verdict(name: string): RouteAnalysis['guardrails'][number] | undefined {
    return this.analysis().guardrails.find((v) => v.name === name);
  }

  /** The controller's audited actions, oldest first (rollout.step, promote, rollback). */
  actions(): string[] {
    return this.audit.list({ route: ROUTE, limit: 1000 }).reverse().map((e) => e.action);
  }

  async counter(metric: 'rollbacks' | 'promotions', labels: Record<string, string> = {}): Promise<number> {
    const { values } = await this.metrics[metric].get();
    return values.filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want)).reduce((sum, v) => sum + v.value, 0);
  }

  /** Resume as POST /v1/routes/:route/resume does. */
  async resume(): Promise<void> {
    await this.controller.resume(this.route, 'alice');
  }

  /** A policy reload that changed the file: every route compiled anew (as Switchyard.reload installs a new version). */
  reload(overrides: Record<string, unknown> = {}, others: readonly Record<string, unknown>[] = []): void {
    this.splits.setPolicy(compile(overrides, others), `v${++this.#seq}`);
  }

  close(): Promise<void> {
    return this.recorder?.close() ?? Promise.resolve();
  }
}

/**
 * The base route with top-level fields replaced (undefined removes one), plus any other routes of the same policy file,
 * validated and compiled as a policy file is.
 */
function compile(overrides: Record<string, unknown>, others: readonly Record<string, unknown>[] = []): CompiledRoute[] {
  const { policy, problems } = validatePolicyText('controller.test.yaml', JSON.stringify({ routes: [{ ...baseRoute, ...overrides }, ...others] }));
  if (!policy) throw new Error(`test policy invalid: ${JSON.stringify(problems)}`);
  return compilePolicy(policy);
}

const rigs: Rig[] = [];
async function rig(overrides: Record<string, unknown> = {}, options: RigOptions = {}): Promise<Rig> {
  const created = await Rig.create(overrides, options);
  rigs.push(created);
  return created;
}
afterEach(async () => {
  await Promise.all(rigs.splice(0).map((r) => r.close()));
});

type Verdict = RouteAnalysis['guardrails'][number];
const statistical = (a: RouteAnalysis) => a.guardrails.filter((v) => v.kind === 'statistical').map((v) => v.state);
const challengerRequests = (a: RouteAnalysis) => a.arms.find((arm) => arm.role === 'challenger')?.requests ?? 0;

/** One tick as the analysis API shows it right after the tick (its verdicts and SRM are what that tick judged). */
interface Look {
  t: number;
  phase: string;
  step: number | null;
  percent: number;
  statistical: string[];
  srmOk: boolean | null;
  challengerRequests: number;
}

describe('progressive rollout, A/A', () => {
  it('advances one step at a time only once minDuration, minRequests, every guardrail within and the SRM check all hold, then promotes', async () => {
    const r = await rig();
    const looks: Look[] = [];
    await r.runUntil(() => {
      const a = r.analysis();
      looks.push({ t: r.now, phase: a.phase, step: a.step?.index ?? null, percent: r.percent, statistical: statistical(a), srmOk: a.srm.ok, challengerRequests: challengerRequests(a) });
      return a.phase === 'promoted';
    });
    // Every step change (and the promotion) happened at the first tick that met all four conditions, counted from the
    // tick that started the step; the tick before it missed at least one.
    const starts = [looks.findIndex((l) => l.step === 0)];
    for (let i = starts[0]! + 1; i < looks.length; i++) if (looks[i]!.step !== looks[i - 1]!.step || looks[i]!.phase === 'promoted') starts.push(i);
    expect(starts.map((i) => looks[i]!.step)).toEqual([0, 1, 2, 2]);
    const ready = (look: Look, start: Look) => look.t - start.t >= 30_000 && look.challengerRequests - start.challengerRequests >= 300 && look.statistical.every((s) => s === 'within') && look.srmOk !== false;
    for (let k = 1; k < starts.length; k++) {
      const start = looks[starts[k - 1]!]!;
      expect(ready(looks[starts[k]!]!, start)).toBe(true);
      expect(ready(looks[starts[k]! - 1]!, start)).toBe(false);
    }
    // The step the rollout waited longest on was the first: the error-rate guardrail needs about 1,400 challenger
    // requests to be confidently within a 1 pp margin; later steps only wait for their own duration and requests.
    const seconds = starts.slice(1).map((s, k) => (looks[s]!.t - looks[starts[k]!]!.t) / 1000);
    expect(seconds[0]).toBeGreaterThan(30);
    expect(seconds.slice(1)).toEqual([30, 30]);
    expect(looks.map((l) => l.percent).filter((p, i, all) => p !== all[i - 1])).toEqual([10, 50, 100]);

    expect(r.actions()).toEqual(['rollout.step', 'rollout.step', 'rollout.step', 'promote']);
    const events = r.audit.list({ route: ROUTE }).reverse();
    expect(events.map((e) => [e.who, (e.detail as { percent: number }).percent])).toEqual([['controller', 10], ['controller', 50], ['controller', 100], ['controller', 100]]);
    expect(events.slice(0, 3).map((e) => (e.detail as { step: number }).step)).toEqual([0, 1, 2]);
    const a = r.analysis();
    expect([a.phase, a.step?.index, r.percent, a.rollbackReason]).toEqual(['promoted', 2, 100, null]);
    expect(await r.counter('promotions', { route: ROUTE })).toBe(1);
    expect(await r.counter('rollbacks')).toBe(0);
    expect((await r.metrics.rolloutStep.get()).values.find((v) => v.labels.route === ROUTE)?.value).toBe(2);

    // Promoted is terminal: more time and traffic change nothing.
    await r.run(120);
    expect(r.actions()).toHaveLength(4);
    expect([r.analysis().phase, r.percent]).toEqual(['promoted', 100]);
  });

  // Each row: a step held by one missing condition while the others hold, and, where the condition comes with time or
  // traffic, when the step may advance at the earliest.
  const rollout = { steps: [10, 50], minDuration: '30s', minRequests: 300 };
  const holds: { name: string; rollout: object; traffic: TrafficSpec; rps: number; holdSeconds: number; held: { statistical: string[]; srmOk: boolean }; release?: { seconds: number; requests: number } }[] = [
    { name: 'minDuration not reached: plenty of requests, no advance', rollout: { ...rollout, minDuration: '10m' }, traffic: healthy, rps: 200, holdSeconds: 590, held: { statistical: ['within', 'within', 'within'], srmOk: true }, release: { seconds: 600, requests: 300 } },
    { name: 'minRequests not reached: a long time, no advance', rollout: { ...rollout, minRequests: 4000 }, traffic: healthy, rps: 20, holdSeconds: 1800, held: { statistical: ['within', 'within', 'within'], srmOk: true }, release: { seconds: 30, requests: 4000 } },
    { name: 'error rate exactly at its margin (2 % against 1 %, margin 1 pp), never confidently within: no advance', rollout, traffic: { ...healthy, challenger: { errorRate: 0.02 } }, rps: 200, holdSeconds: 600, held: { statistical: ['healthy', 'within', 'within'], srmOk: true } },
    { name: 'a flagged sample ratio (30 % of the challenger\'s requests served by the champion): no advance', rollout, traffic: { ...healthy, misrouted: 0.3 }, rps: 200, holdSeconds: 300, held: { statistical: ['within', 'within', 'within'], srmOk: false } },
  ];
  it.each(holds)('$name', async ({ rollout, traffic, rps, holdSeconds, held, release }) => {
    const r = await rig({ rollout });
    const start = { t: r.now, requests: challengerRequests(r.analysis()) };
    await r.run(holdSeconds, traffic, rps);
    const a = r.analysis();
    expect([a.phase, a.step?.index, r.percent]).toEqual(['healthy', 0, 10]);
    // Only the held condition is missing.
    expect(statistical(a)).toEqual(held.statistical);
    expect(a.srm.ok).toBe(held.srmOk);
    // The rows about a guardrail or the split have had far more than the step's minimum duration and requests.
    if (!release) expect(challengerRequests(a) - start.requests).toBeGreaterThan(3000);
    expect(r.actions()).toEqual(['rollout.step']);
    if (!release) return;
    // Then it advances, no earlier than the held condition allows.
    await r.runUntil(() => r.analysis().step?.index === 1, traffic, { rps, maxSeconds: 3600 });
    const advanced = r.audit.list({ route: ROUTE })[0]!;
    expect([advanced.action, (advanced.detail as { percent: number }).percent]).toEqual(['rollout.step', 50]);
    expect(r.now - start.t).toBeGreaterThanOrEqual(release.seconds * 1000);
    expect(challengerRequests(r.analysis()) - start.requests).toBeGreaterThanOrEqual(release.requests);
  });
});

describe('a harmful challenger', () => {
  // Each row: how the challenger misbehaves (the champion is healthy) and the guardrail that must catch it first.
  const harmful: { name: string; policy?: Record<string, unknown>; challenger: ArmSpec; reason: Verdict['name'] }[] = [
    { name: 'every request fails → the error breaker', challenger: { errorRate: 1 }, reason: 'error_ceiling' },
    { name: '10 % errors against 1 % → the error-rate guardrail', challenger: { errorRate: 0.1 }, reason: 'error_rate' },
    { name: 'three times slower → the typical-latency guardrail', challenger: { errorRate: 0.01, latencyMs: 150 }, reason: 'latency_log_mean' },
    { name: 'same median, much heavier tail → the tail guardrail', challenger: { errorRate: 0.01, latencyMs: 50, sigma: 1.2 }, reason: 'latency_exceedance' },
    { name: 'slower than the p99 ceiling → the latency breaker', policy: { guardrails: { latency: { baselineRequests: 200, p99CeilingMs: 400 } } }, challenger: { errorRate: 0.01, latencyMs: 1000, sigma: 0.1 }, reason: 'p99_ceiling' },
  ];
  it.each(harmful)('$name', async ({ policy, challenger, reason }) => {
    const r = await rig(policy);
    const seconds = await r.runUntil(() => r.analysis().phase === 'rolled_back', { champion: healthy.champion!, challenger }, { maxSeconds: 60 });
    // Caught within seconds at 20 challenger requests a second, before the first step could have ended.
    expect(seconds).toBeLessThan(10);
    const a = r.analysis();
    expect([a.phase, a.rollbackReason, a.servedPercent, r.percent, a.step?.index]).toEqual(['rolled_back', reason, 0, 0, 0]);
    expect(r.state.isRolledBack(ROUTE)).toBe(true);
    // The breach that caused it is audited (and so notified) once, just before the rollback.
    expect(r.actions().filter((a) => a !== 'breach')).toEqual(['rollout.step', 'rollback']);
    const breaches = r.audit.list({ route: ROUTE, limit: 1000 }).filter((e) => e.action === 'breach');
    expect(breaches.map((e) => (e.detail as { guardrail: string }).guardrail)).toContain(reason);
    expect(new Set(breaches.map((e) => (e.detail as { guardrail: string }).guardrail)).size).toBe(breaches.length);
    expect(r.actions().at(-2)).toBe('breach');
    const event = r.audit.list({ route: ROUTE, limit: 1000 }).find((e) => e.action === 'rollback')!;
    const detail = event.detail as { reason: string; evidence: Verdict[]; arms: { role: string; requests: number }[] };
    expect([event.who, event.before, event.after]).toEqual(['controller', { servedPercent: 10, challengers: [{ name: 'v2', mode: 'canary', percent: 10 }] }, { servedPercent: 0, rolledBack: true }]);
    expect(detail.reason).toBe(reason);
    expect(detail.evidence.find((v) => v.name === reason)?.state).toBe('breach');
    expect(detail.evidence.map((v) => v.name)).toEqual(['error_ceiling', 'p99_ceiling', 'error_rate', 'latency_log_mean', 'latency_exceedance']);
    expect(detail.arms.find((arm) => arm.role === 'challenger')!.requests).toBeGreaterThan(0);
    expect(await r.counter('rollbacks', { route: ROUTE, reason })).toBe(1);

    // Nothing else happens afterwards: the challenger gets no traffic, the step is not retried, nothing is promoted.
    await r.run(300, { champion: healthy.champion!, challenger });
    const after = r.analysis();
    expect([after.phase, after.rollbackReason, r.percent, after.step?.index]).toEqual(['rolled_back', reason, 0, 0]);
    expect(challengerRequests(after)).toBe(detail.arms.find((arm) => arm.role === 'challenger')!.requests);
    expect(r.actions().filter((a) => a !== 'breach')).toEqual(['rollout.step', 'rollback']);
    expect(r.audit.list({ route: ROUTE, limit: 1000 }).filter((e) => e.action === 'breach')).toEqual(breaches);
    expect(await r.counter('rollbacks')).toBe(1);
    expect(await r.counter('promotions')).toBe(0);
  });
});

describe('a new experiment', () => {
  const failing: TrafficSpec = { champion: healthy.champion!, challenger: { errorRate: 1 } };
  // Each row: how the route got to 50 % (and maybe rolled back), and the event that must start the experiment afresh.
  // `starts`: the audited action that puts the challenger back at the first step (the resume itself sets it).
  const triggers: { name: string; setup: (r: Rig) => Promise<void>; trigger: (r: Rig) => Promise<void> | void; before: { phase: string; percent: number }; starts: string }[] = [
    {
      // Regression: the first resume after a breaker rollback used to be undone 50-240 ms later by the same evidence.
      name: 'a resume after a breaker rollback sticks (the old evidence is gone before the next tick reads it)',
      setup: async (r) => {
        await r.runUntil(() => r.analysis().step?.index === 1);
        await r.runUntil(() => r.analysis().phase === 'rolled_back', failing);
        expect(r.analysis().rollbackReason).toBe('error_ceiling');
      },
      trigger: (r) => r.resume(),
      before: { phase: 'rolled_back', percent: 0 },
      starts: 'resume',
    },
    {
      name: 'a policy reload (newly compiled route) restarts the rollout',
      setup: async (r) => {
        await r.runUntil(() => r.analysis().step?.index === 1);
      },
      trigger: (r) => r.reload({ rollout: { ...baseRoute.rollout, minRequests: 301 } }),
      before: { phase: 'healthy', percent: 50 },
      starts: 'rollout.step',
    },
  ];
  it.each(triggers)('$name', async ({ setup, trigger, before, starts }) => {
    const r = await rig();
    await setup(r);
    const stale = r.analysis();
    expect([stale.phase, r.percent]).toEqual([before.phase, before.percent]);
    expect(challengerRequests(stale)).toBeGreaterThan(0);
    const actionsBefore = r.actions();

    await trigger(r);
    await r.tick(); // at once: no traffic in between
    const fresh = r.analysis();
    expect([fresh.phase, fresh.step?.index, r.percent, fresh.rollbackReason]).toEqual(['collecting', 0, 10, null]);
    expect(fresh.arms.map((arm) => [arm.role, arm.requests])).toEqual([['champion', 0]]);
    expect(fresh.guardrails.map((v) => v.state)).toEqual(['collecting', 'collecting', 'collecting', 'collecting', 'collecting']);
    expect(fresh.srm.pValue).toBe(1);
    // The rollout starts over at its first step (10 %), audited like any step.
    expect(r.actions()).toEqual([...actionsBefore, starts]);
    if (starts === 'rollout.step') expect(r.audit.list({ route: ROUTE })[0]!.detail).toMatchObject({ percent: 10, step: 0 });

    // The next ticks judge only what came after: healthy traffic is never rolled back, and the rollout goes on.
    await r.run(1);
    expect(r.analysis().phase).not.toBe('rolled_back');
    await r.runUntil(() => r.analysis().step?.index === 1);
    expect(r.actions()).toEqual([...actionsBefore, starts, 'rollout.step']);
    expect(await r.counter('rollbacks')).toBe(before.phase === 'rolled_back' ? 1 : 0); // only the one before the trigger
  });

  // Regression: a reload compiles every route anew, and the controller took the new object for a new experiment, so a
  // reload that left this route's policy as it was (a route added elsewhere, a comment) restarted its rollout.
  it('a reload that leaves the route policy unchanged keeps its experiment', async () => {
    const r = await rig();
    await r.runUntil(() => r.analysis().step?.index === 1);
    const before = { actions: r.actions(), requests: challengerRequests(r.analysis()) };
    const other = { name: 'other', match: { pathPrefix: '/other' }, champion: { name: 'o1', url: 'http://127.0.0.1:9003' } };
    r.reload({}, [{ ...other, timeouts: { requestMs: 5_000 } }]);
    await r.tick();
    expect([r.analysis().step?.index, r.percent]).toEqual([1, 50]);
    expect(r.actions()).toEqual(before.actions);
    expect(challengerRequests(r.analysis())).toBe(before.requests);
  });

  // Regression: a resume used to take effect in the split at once (at the pre-rollback 50 %) but in the controller only
  // at its next tick; until then the analysis reported the old experiment.
  it('the analysis right after a resume, before the next tick, no longer reports the rollback, and the split is the first step', async () => {
    const r = await rig();
    await r.runUntil(() => r.analysis().step?.index === 1);
    await r.runUntil(() => r.analysis().phase === 'rolled_back', { champion: healthy.champion!, challenger: { errorRate: 1 } });
    await r.resume();
    const a = r.analysis();
    expect([a.phase, a.rollbackReason, challengerRequests(a), r.percent]).toEqual(['collecting', null, 0, 10]);
  });
});

describe('the sample-ratio check', () => {
  const noRollout = { rollout: undefined, challengers: [{ ...baseRoute.challengers[0], percent: 50 }] };
  // Each row: the manual split change that must start a new sample-ratio epoch.
  const changes: { name: string; change: (r: Rig) => Promise<unknown> }[] = [
    { name: 'SplitChanger.change (PUT /v1/routes/:route/split)', change: (r) => r.changer.change(r.route, 'v2', 30, 'canary', 'alice') },
    { name: 'StateStore.setOverride', change: async (r) => r.state.setOverride(ROUTE, { challengers: [{ name: 'v2', mode: 'canary', percent: 30 }] }) },
  ];
  it.each(changes)('a stale mismatch is cleared by a manual split change: $name', async ({ change }) => {
    const r = await rig(noRollout);
    await r.runUntil(() => r.analysis().phase === 'promotable');
    // A broken split: requests whose keys belong to the challenger are served by the champion.
    await r.runUntil(() => r.analysis().srm.ok === false, { ...healthy, misrouted: 1 }, { maxSeconds: 60 });
    const flagged = r.analysis();
    expect(flagged.srm.pValue).toBeLessThanOrEqual(0.001);
    // A flagged split blocks the verdict even though every guardrail is within.
    expect([flagged.phase, statistical(flagged)]).toEqual(['healthy', ['within', 'within', 'within']]);
    // It stays flagged while nothing changes, even once the split is healthy again.
    await r.run(30);
    expect(r.analysis().srm.ok).toBe(false);

    await change(r);
    await r.tick();
    const reset = r.analysis();
    expect([reset.srm.pValue, reset.srm.ok, reset.servedPercent]).toEqual([1, true, 30]);
    await r.run(60);
    const judged = r.analysis();
    expect(judged.srm.ok).toBe(true);
    expect(judged.srm.pValue).toBeGreaterThan(0.001);
    expect(judged.phase).toBe('promotable');
  });

  it('counts randomisation units: one very active sticky user does not make a mismatch', async () => {
    const r = await rig(noRollout);
    // Every other request comes from the same user; the rest from fresh users.
    await r.run(60, { ...healthy, keys: (i) => (i % 2 === 0 ? 'heavy-user' : `light-${r.now}-${i}`) });
    const a = r.analysis();
    const [champion, challenger] = a.arms.map((arm) => arm.requests) as [number, number];
    // By requests the split is far from 50/50 (the heavy user sticks to one arm): a request count would flag it ...
    expect(Math.max(champion, challenger) / Math.min(champion, challenger)).toBeGreaterThan(2.5);
    expect(sequentialSrm([champion, challenger], [50, 50]).pLook).toBeLessThan(1e-6);
    // ... by units it is fine, and the route is judged.
    expect(a.srm.ok).toBe(true);
    expect(a.srm.pValue).toBeGreaterThan(0.01);
    expect(a.phase).toBe('promotable');
  });
});

describe('pause', () => {
  it('holds the step while paused (a breach still rolls back) and advances once resumed', async () => {
    const r = await rig();
    await r.run(10);
    r.state.setPaused(ROUTE, true);
    await r.run(300);
    const paused = r.analysis();
    // Without the pause the first step would have ended after about 75 s (see the A/A case).
    expect([paused.phase, paused.step?.index, r.percent]).toEqual(['paused', 0, 10]);
    expect(statistical(paused)).toEqual(['within', 'within', 'within']);
    expect(r.actions()).toEqual(['rollout.step']);

    await r.resume();
    await r.tick();
    expect([r.analysis().step?.index, r.percent]).toEqual([1, 50]);
    expect(r.actions()).toEqual(['rollout.step', 'resume', 'rollout.step']);

    r.state.setPaused(ROUTE, true);
    await r.runUntil(() => r.analysis().phase === 'rolled_back', { champion: healthy.champion!, challenger: { errorRate: 1 } }, { maxSeconds: 10 });
    expect([r.analysis().rollbackReason, r.percent]).toEqual(['error_ceiling', 0]);
  });
});

describe('latency samples', () => {
  const noRollout = { rollout: undefined, challengers: [{ ...baseRoute.challengers[0], percent: 50 }] };
  // Each row: a broken timing some requests report; they are refused and counted, and the latency is still judged.
  const broken = [
    { name: 'NaN', value: Number.NaN },
    { name: 'Infinity', value: Number.POSITIVE_INFINITY },
    { name: 'negative', value: -5 },
  ];
  it.each(broken)('refuses $name latencies, counts them, and still judges the latency guardrails', async ({ value }) => {
    const r = await rig(noRollout);
    const arm: ArmSpec = { errorRate: 0.01, latencyMs: 50, broken: { rate: 0.1, value } };
    await r.runUntil(() => r.analysis().phase === 'promotable', { champion: arm, challenger: arm });
    const window = r.windows.window(ROUTE);
    for (const [role, totals] of [['champion', window.champion.totals], ['challenger', window.challengers.get('v2')!.totals]] as const) {
      expect(r.broken[role]).toBeGreaterThan(50);
      expect(totals.rejectedLatencies).toBe(r.broken[role]);
      // The request still counts (for errors); its timing does not poison the moments.
      expect(totals.errors.n - totals.logLatency.n).toBe(r.broken[role]);
      expect(Number.isFinite(totals.logLatency.mean) && Number.isFinite(totals.logLatency.m2)).toBe(true);
    }
    expect(r.verdict('latency_log_mean')?.state).toBe('within');
    for (const arm of r.analysis().arms) expect(Math.abs(arm.medianLatencyMs! - 50)).toBeLessThan(3);
  });

  it('judges a constant latency in both arms (zero variance) instead of collecting for ever', async () => {
    const r = await rig(noRollout);
    const constant: TrafficSpec = { champion: { errorRate: 0.01, latencyMs: 80, sigma: 0 }, challenger: { errorRate: 0.01, latencyMs: 80, sigma: 0 } };
    await r.run(120, constant);
    const a = r.analysis();
    expect(statistical(a)).toEqual(['within', 'within', 'within']);
    expect(a.phase).toBe('promotable');
    for (const arm of a.arms) expect(arm.medianLatencyMs).toBeCloseTo(80, 9);
  });
});

describe('an A/B route with guardrails.ab.promote', () => {
  const abRoute = {
    rollout: undefined,
    challengers: [{ ...baseRoute.challengers[0], mode: 'ab', percent: 50 }],
    predictions: { pointer: '/label' },
    guardrails: { ...baseRoute.guardrails, ab: { promote: true } },
  };

  it('never promotes by itself without labelled outcomes (no pair recorder): it only reports promotable', async () => {
    const r = await rig(abRoute);
    await r.run(300, { champion: { errorRate: 0.01, accuracy: 0.6 }, challenger: { errorRate: 0.01, accuracy: 0.95 } });
    const a = r.analysis();
    expect([a.phase, a.servedPercent, r.percent, a.abWinners]).toEqual(['promotable', 50, 50, []]);
    expect(statistical(a)).toEqual(['within', 'within', 'within']);
    expect(r.actions()).toEqual([]);
    expect(await r.counter('promotions')).toBe(0);
  });

  // Each row: the labelled accuracy of each arm (feedback through the real pair recorder) and what must happen.
  const outcomes = [
    { name: 'a challenger that wins on labelled accuracy is promoted', champion: 0.6, challenger: 0.95, winner: 'v2', actions: ['promote'], phase: 'promoted', percent: 100, promotions: 1 },
    { name: 'a champion that wins is reported, never acted on', champion: 0.95, challenger: 0.6, winner: 'v1', actions: [], phase: 'promotable', percent: 50, promotions: 0 },
  ];
  it.each(outcomes)('$name', async ({ champion, challenger, winner, actions, phase, percent, promotions }) => {
    const r = await rig(abRoute, { recorder: true });
    await r.runUntil(() => r.analysis().abWinners[0]?.winner === winner, { champion: { errorRate: 0.01, accuracy: champion }, challenger: { errorRate: 0.01, accuracy: challenger } }, { maxSeconds: 120 });
    await r.run(120, { champion: { errorRate: 0.01, accuracy: champion }, challenger: { errorRate: 0.01, accuracy: challenger } });
    const a = r.analysis();
    expect([a.phase, r.percent, a.abWinners[0]?.winner]).toEqual([phase, percent, winner]);
    expect(r.actions()).toEqual(actions);
    expect(await r.counter('promotions', { route: ROUTE })).toBe(promotions);
    expect(await r.counter('rollbacks')).toBe(0);
  });
});


describe('idle routes cost nothing; reads change nothing', () => {
  /** A route of its own with a canary challenger, as a platform with many models has them. */
  const model = (i: number) => ({ name: `m${i}`, match: { pathPrefix: `/v1/models/m${i}` }, champion: { name: `m${i}-v1`, url: 'http://127.0.0.1:9011' }, challengers: [{ name: `m${i}-v2`, url: 'http://127.0.0.1:9012', mode: 'canary', percent: 10 }] });
  const others = Array.from({ length: 999 }, (_, i) => model(i));

  /** One served request of `route`'s champion, observed as the data plane observes it. */
  function observe(r: Rig, route: string, latencyMs = 20): void {
    const arm = r.splits.snapshot.byName.get(route)!.route.arms[0]!;
    r.windows.served({ route, requestId: `x-${route}-${r.now}`, joinId: 0, stickyKey: null, variant: arm.name, role: 'champion', mode: 'champion', status: 200, errorKind: null, latencyMs, fellBack: false, fallbackFor: null, startedAt: r.now, mirrored: 0, requestBody: null, responseBody: null, responseTruncated: false, contentType: null });
  }

  it('1,000 routes: all are looked at after the start, then only those with traffic or a change; quiet ones leave', async () => {
    const r = await rig({}, { others });
    // The first look covers every route (it starts iris's rollout, and would seed the fleet's state with Redis).
    expect(r.controller.activeRoutes).toBe(1000);
    expect(r.percent).toBe(10);
    r.advance(1_000);
    await r.tick();
    // The others rested; iris's first step (a split change) is looked at for a moment.
    expect(r.controller.activeRoutes).toBe(1);
    r.advance(1_000);
    await r.tick();
    expect(r.controller.activeRoutes).toBe(0);

    // Traffic on one route makes it active, and only it; 10 s after its last request it leaves again.
    await r.run(5);
    expect(r.controller.activeRoutes).toBe(1);
    r.advance(9_750);
    await r.tick();
    expect(r.controller.activeRoutes).toBe(1);
    r.advance(250);
    await r.tick();
    expect(r.controller.activeRoutes).toBe(0);

    // A split change on an idle route is looked at for a moment (here: by the next tick), then the route rests.
    r.state.setOverride('m7', { challengers: [{ name: 'm7-v2', mode: 'canary', percent: 30 }] });
    await r.tick();
    expect(r.controller.activeRoutes).toBe(1);
    expect(r.controller.analysis('m7')).toMatchObject({ servedPercent: 30, challenger: 'm7-v2', phase: 'collecting' });
    r.advance(1_000);
    await r.tick();
    expect(r.controller.activeRoutes).toBe(0);

    // Resting changed no judgment: iris's rollout is where it was and no action was taken meanwhile.
    expect([r.analysis().step?.index, r.percent, r.actions()]).toEqual([0, 10, ['rollout.step']]);
  });

  it('a route a reload adds starts its rollout at once, without waiting for traffic', async () => {
    const r = await rig();
    r.reload({}, [{ ...model(1), challengers: [{ ...model(1).challengers[0], percent: 0 }], rollout: { steps: [5, 50], minDuration: '30s', minRequests: 100 } }]);
    await r.tick();
    await r.changer.exclusive('m1', async () => undefined);
    expect(r.splits.snapshot.byName.get('m1')!.servedTotal).toBe(5);
    expect(r.audit.list({ route: 'm1' }).map((e) => e.action)).toEqual(['rollout.step']);
  });

  it('analysis() is a read: before the controller looked at a route it shows the route\'s traffic and creates nothing', async () => {
    const r = await rig();
    r.reload({}, [model(2), model(3)]);
    // Traffic on m2 before any tick saw the new routes.
    for (let i = 0; i < 5; i++) observe(r, 'm2');
    const window = r.windows.peek('m2');
    const first = r.controller.analysis('m2')!;
    const second = r.controller.analysis('m2')!;
    expect(first).toEqual(second);
    expect(first.arms.map((a) => [a.role, a.requests])).toEqual([['champion', 5]]);
    expect([first.phase, first.srm.pValue]).toEqual(['inactive', 1]);
    expect(r.windows.peek('m2')).toBe(window);
    expect(window!.champion.totals.errors.n).toBe(5);
    // A route without traffic gets no window from being read.
    expect(r.controller.analysis('m3')!.arms.map((a) => a.requests)).toEqual([0]);
    expect(r.windows.peek('m3')).toBeUndefined();
  });

  it('reading the analysis between ticks changes no judgment (same traffic, read or not, same verdicts and actions)', async () => {
    const [read, unread] = [await rig(), await rig()];
    for (let t = 0; t < 400; t++) {
      for (const r of [read, unread]) {
        r.traffic(50);
        r.advance(TICK_MS);
        await r.tick();
      }
      for (let i = 0; i < 3; i++) read.analysis();
    }
    expect(read.analysis()).toEqual(unread.analysis());
    expect(read.actions()).toEqual(unread.actions());
    expect(read.actions().length).toBeGreaterThan(1);
  });
});
