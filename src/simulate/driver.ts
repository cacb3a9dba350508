// Runs simulation replicates: synthetic traffic through the real decision, window and controller code on a virtual clock.
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Arm, RouteDecision } from '../decision/snapshot.js';
import { stickyBucket } from '../decision/bucket.js';
import { servingArm } from '../decision/split.js';
import type { ServedObservation, ShadowObservation } from '../record/port.js';
import { samplerFor, type Sampler } from './distributions.js';
import { buildControlPlane, eventsAfter, servedShare, tickAndSettle, VirtualClock } from './plane.js';
import { replicateSeed, Rng } from './rng.js';
import type { ResolvedScenario } from './scenario.js';

/** How a replicate ended. */
export type Outcome = 'promoted' | 'rolled_back' | 'running';
export const outcomes: readonly Outcome[] = ['promoted', 'rolled_back', 'running'];

/** A rollout step the controller took (beyond the first step it starts at). */
export interface StepTaken {
  atSeconds: number;
  step: number;
  percent: number;
}

/** The result of one replicate. */
export interface ReplicateResult {
  index: number;
  /** The seed of this replicate's random stream (derived from the scenario seed and the index). */
  seed: number;
  outcome: Outcome;
  /** The guardrail or breaker behind a rollback (null otherwise). */
  reason: string | null;
  /** Virtual seconds at the rollback or promotion; the scenario's duration when still running. */
  atSeconds: number;
  /** The highest share (percent) the steered challenger was served. */
  highestPercent: number;
  /** Requests routed to each variant (a fallen-back challenger request counts for the challenger). */
  requests: Record<string, number>;
  /** The challenger the controller steered (null when the route has none). */
  challenger: string | null;
  /** Rollout steps taken after the first. */
  steps: StepTaken[];
  /** Without a rollout: the first look at which the controller judged the challenger promotable (null: never). */
  promotableAtSeconds: number | null;
  /** The first look at which the sample-ratio check flagged the split (null: never). */
  srmFlaggedAtSeconds: number | null;
}

/** The virtual epoch every replicate starts at (fixed, so audit times and anything derived from them repeat). */
const EPOCH_MS = Date.UTC(2026, 0, 1);

/**
 * Walker's alias table over lognormal activity weights: O(1) per draw, so a population of millions costs the same
 * per request as one of ten.
 */
class UserPopulation {
  readonly count: number;
  readonly #probability: Float64Array;
  readonly #alias: Int32Array;

  constructor(count: number, sigma: number, rng: Rng) {
    this.count = count;
    const weights = new Float64Array(count);
    let total = 0;
    for (let i = 0; i < count; i++) total += weights[i] = sigma === 0 ? 1 : Math.exp(sigma * rng.normal());
    // Vose's construction: scaled weights below 1 borrow the rest of their cell from one above 1.
    const scaledWeights = new Float64Array(count);
    const small = new Int32Array(count);
    const large = new Int32Array(count);
    let smallN = 0;
    let largeN = 0;
    for (let i = 0; i < count; i++) {
      scaledWeights[i] = (weights[i]! * count) / total;
      if (scaledWeights[i]! < 1) small[smallN++] = i;
      else large[largeN++] = i;
    }
    this.#probability = new Float64Array(count);
    this.#alias = new Int32Array(count);
    while (smallN > 0 && largeN > 0) {
      const s = small[--smallN]!;
      const l = large[largeN - 1]!;
      this.#probability[s] = scaledWeights[s]!;
      this.#alias[s] = l;
      scaledWeights[l] = scaledWeights[l]! + scaledWeights[s]! - 1;
      if (scaledWeights[l]! < 1) {
        largeN--;
        small[smallN++] = l;
      }
    }
    while (largeN > 0) this.#probability[large[--largeN]!] = 1;
    while (smallN > 0) this.#probability[small[--smallN]!] = 1;
  }

  draw(rng: Rng): number {
    const i = rng.below(this.count);
    return rng.next() < this.#probability[i]! ? i : this.#alias[i]!;
  }
}

/** One arm's current behaviour in a replicate (changes replace it). */
interface ArmBehaviour {
  errorRate: number;
  sample: Sampler;
}

/** Runs replicate `index` of a scenario. The same scenario and index always give the same result. */
export async function runReplicate(scenario: ResolvedScenario, index: number): Promise<ReplicateResult> {
  const seed = replicateSeed(scenario.seed, index);
  const rng = new Rng(seed);
  const clock = new VirtualClock(EPOCH_MS);
  const intervalMs = scenario.controlIntervalMs;
  const plane = await buildControlPlane(scenario.policy, scenario.policyVersion, clock, intervalMs);
  const { splits, windows, controller, audit } = plane;
  const routeName = scenario.route;
  const route = splits.snapshot.byName.get(routeName)!.route;
  const arms = route.arms;
  const behaviour: ArmBehaviour[] = arms.map((arm) => ({ errorRate: scenario.arms[arm.name]!.errorRate, sample: samplerFor(scenario.arms[arm.name]!.latencyMs) }));
  const requests = new Float64Array(arms.length);
  const modes: ServedObservation['mode'][] = arms.map(() => 'champion');
  const endMs = EPOCH_MS + scenario.durationSeconds * 1000;
  const rollout = route.policy.rollout !== undefined;

  // Sticky users: keys unique to this replicate (so replicates do not share one bucket assignment), each key's
  // bucket computed by the real stickyBucket on first use and kept, as it depends only on key and group.
  const population = scenario.users ? new UserPopulation(scenario.users.count, scenario.users.activitySigma, rng) : null;
  const keyPrefix = `u${seed.toString(36)}-`;
  const keys: (string | undefined)[] = population ? new Array<string | undefined>(population.count) : [];
  const buckets = new Uint8Array(population?.count ?? 0);
  let bucketGroup = '';

  // One observation object for all requests: LiveWindows.served reads its fields and keeps nothing of it.
  const served: ServedObservation = {
    route: routeName,
    // Analysis does not read request ids; a constant keeps strings off the per-request path.
    requestId: 'simulated',
    joinId: 0,
    stickyKey: null,
    variant: '',
    role: 'champion',
    mode: 'champion',
    status: 200,
    errorKind: null,
    latencyMs: 0,
    fellBack: false,
    fallbackFor: null,
    startedAt: 0,
    mirrored: 0,
    requestBody: null,
    responseBody: null,
    responseTruncated: false,
    contentType: null,
  };
  const shadowed: ShadowObservation = { route: routeName, requestId: 'simulated', joinId: 0, variant: '', status: 200, errorKind: null, latencyMs: 0, startedAt: 0, responseBody: null, responseTruncated: false, contentType: null };

  let ratePerMs = scenario.ratePerSecond / 1000;
  let nextArrival = EPOCH_MS + rng.exponential(ratePerMs);
  let changeIndex = 0;
  const changes = scenario.changes;
  let nextChangeAt = changes.length > 0 ? EPOCH_MS + changes[0]!.atSeconds * 1000 : Infinity;
  const applyChange = (): void => {
    const change = changes[changeIndex++]!;
    const at = EPOCH_MS + change.atSeconds * 1000;
    if (change.arm !== null) {
      const target = behaviour[route.armByName.get(change.arm)!.index]!;
      if (change.errorRate !== null) target.errorRate = change.errorRate;
      if (change.latencyMs !== null) target.sample = samplerFor(change.latencyMs);
    }
    if (change.ratePerSecond !== null) {
      ratePerMs = change.ratePerSecond / 1000;
      // Poisson arrivals are memoryless: the next one after a rate change is drawn afresh from the change.
      nextArrival = at + rng.exponential(ratePerMs);
    }
    nextChangeAt = changeIndex < changes.length ? EPOCH_MS + changes[changeIndex]!.atSeconds * 1000 : Infinity;
  };

  let outcome: Outcome = 'running';
  let reason: string | null = null;
  let atSeconds = scenario.durationSeconds;
  let highestPercent = 0;
  let promotableAtSeconds: number | null = null;
  let srmFlaggedAtSeconds: number | null = null;
  const steps: StepTaken[] = [];
  let lastEventId = 0;
  let challenger: string | null = null;
  let startedBelow100 = false;

  /** Reads what the last tick did: audit events (rollback, steps, promotion) and the live split. */
  const look = (): boolean => {
    const seconds = (clock.now - EPOCH_MS) / 1000;
    for (const event of eventsAfter(audit, lastEventId)) {
      lastEventId = event.id;
      const detail = (event.detail ?? {}) as { reason?: string; step?: number; percent?: number };
      if (event.action === 'rollback') {
        outcome = 'rolled_back';
        reason = detail.reason ?? null;
      } else if (event.action === 'promote') outcome = 'promoted';
      else if (event.action === 'rollout.step' && (detail.step ?? 0) >= 1) steps.push({ atSeconds: seconds, step: detail.step!, percent: detail.percent ?? 0 });
    }
    const decision = splits.snapshot.byName.get(routeName)!;
    if (challenger !== null) {
      const share = servedShare(decision, challenger);
      if (share > highestPercent) highestPercent = share;
      // Serving 100 % is a promotion when the controller got it there (a policy that starts at 100 % is not one).
      if (share >= 100 && outcome === 'running' && startedBelow100) outcome = 'promoted';
    }
    if (decision.state.rolledBack && outcome !== 'rolled_back') {
      outcome = 'rolled_back';
      reason ??= controller.analysis(routeName)?.rollbackReason ?? null;
    }
    if (outcome === 'running') {
      // What the analysis endpoint would show after this look: the phase (a fixed split never promotes, it becomes
      // promotable) and the sample-ratio check, which holds a rollout without rolling back.
      const analysis = controller.analysis(routeName);
      if (!rollout && promotableAtSeconds === null && challenger !== null && analysis?.phase === 'promotable') promotableAtSeconds = seconds;
      if (srmFlaggedAtSeconds === null && analysis?.srm.ok === false) srmFlaggedAtSeconds = seconds;
      return false;
    }
    atSeconds = seconds;
    return true;
  };

  // The first look happens before any traffic, as a starting router's would: a rollout starts at its first step.
  await tickAndSettle(plane);
  challenger = controller.analysis(routeName)?.challenger ?? null;
  startedBelow100 = challenger !== null && servedShare(splits.snapshot.byName.get(routeName)!, challenger) < 100;
  let done = look();

  for (let tickAt = EPOCH_MS + intervalMs; !done && tickAt - intervalMs < endMs; tickAt += intervalMs) {
    const until = Math.min(tickAt, endMs);
    // The split only changes at a tick, so one decision serves the whole interval.
    const decision: RouteDecision = splits.snapshot.byName.get(routeName)!;
    const groupId = decision.groupId;
    if (population && groupId !== bucketGroup) {
      buckets.fill(0);
      bucketGroup = groupId;
    }
    const shadows = decision.shadows;
    // Each arm's mode in this split, as the data plane reports it (a served challenger is canary or ab).
    for (let i = 1; i < arms.length; i++) modes[i] = modeOf(decision, arms[i]!);
    for (;;) {
      if (nextChangeAt <= nextArrival && nextChangeAt < until) {
        applyChange();
        continue;
      }
      if (nextArrival >= until) break;
      const now = nextArrival;
      nextArrival += rng.exponential(ratePerMs);
      clock.now = now;
      let bucket: number;
      let key: string | null = null;
      if (population) {
        const user = population.draw(rng);
        key = keys[user] ??= keyPrefix + user;
        bucket = buckets[user]!;
        if (bucket === 0) bucket = buckets[user] = stickyBucket(key, groupId);
      } else {
        // A request without a key: the data plane buckets it uniformly at random (decision/bucket.ts randomBucket).
        bucket = rng.below(100) + 1;
      }
      const arm: Arm = servingArm(decision, bucket);
      let mirrored = 0;
      if (shadows !== null) {
        for (let i = 0; i < shadows.length; i++) {
          const shadow = shadows[i]!;
          if (bucket > shadow.upTo) continue;
          mirrored++;
          const b = behaviour[shadow.arm.index]!;
          const failed = rng.next() < b.errorRate;
          shadowed.variant = shadow.arm.name;
          shadowed.status = failed ? 503 : 200;
          shadowed.errorKind = failed ? 'status_5xx' : null;
          shadowed.latencyMs = b.sample(rng);
          shadowed.startedAt = now;
          windows.shadowed(shadowed);
        }
      }
      requests[arm.index] = requests[arm.index]! + 1;
      const b = behaviour[arm.index]!;
      const failed = rng.next() < b.errorRate;
      served.stickyKey = key;
      served.variant = arm.name;
      served.role = arm.role;
      served.mode = modes[arm.index]!;
      served.status = failed ? 503 : 200;
      served.errorKind = failed ? 'status_5xx' : null;
      served.latencyMs = b.sample(rng);
      served.startedAt = now;
      served.mirrored = mirrored;
      const fallsBack = failed && arm.fallback;
      served.fellBack = fallsBack;
      windows.served(served);
      if (fallsBack) {
        // The champion answers in place of the failed challenger, as the data plane's fallback does.
        const champion = arms[0]!;
        const c = behaviour[0]!;
        const championFailed = rng.next() < c.errorRate;
        served.variant = champion.name;
        served.role = 'champion';
        served.mode = 'champion';
        served.status = championFailed ? 503 : 200;
        served.errorKind = championFailed ? 'status_5xx' : null;
        served.latencyMs = c.sample(rng);
        served.fellBack = false;
        served.fallbackFor = arm.name;
        served.mirrored = 0;
        windows.served(served);
        served.fallbackFor = null;
      }
    }
    // The last interval may be cut short by the end of the scenario; it still ends with a look.
    clock.now = until;
    await tickAndSettle(plane);
    done = look();
  }

  return {
    index,
    seed,
    outcome,
    reason,
    atSeconds,
    highestPercent,
    requests: Object.fromEntries(arms.map((arm) => [arm.name, requests[arm.index]!])),
    challenger,
    steps,
    promotableAtSeconds,
    srmFlaggedAtSeconds,
  };
}

function modeOf(decision: RouteDecision, arm: Arm): 'canary' | 'ab' {
  const served = decision.served;
  for (let i = 0; i < served.length; i++) if (served[i]!.arm === arm) return served[i]!.mode === 'ab' ? 'ab' : 'canary';
  return 'canary';
}

/** Options of {@link runScenario}. */
export interface RunOptions {
  /** Replicates to run (default: the scenario's). */
  replicates?: number;
  /** Worker threads (default: one per core; 1 runs in this thread). */
  workers?: number;
  /** Called as each replicate finishes (in completion order). */
  onResult?: (result: ReplicateResult) => void;
}

/** The compiled worker next to this module (absent when running from TypeScript sources, e.g. under vitest). */
const workerUrl = new URL('./worker.js', import.meta.url);

/** The default number of workers: one per core. */
export function defaultWorkers(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Messages to a simulation worker: a scenario (once per worker), then replicate indices of it. */
export type WorkerRequest = { type: 'scenario'; id: number; scenario: ResolvedScenario } | { type: 'run'; id: number; index: number };
/** Messages from a simulation worker. */
export type WorkerReply = { result: ReplicateResult } | { error: string };

interface Job {
  scenarioId: number;
  scenario: ResolvedScenario;
  index: number;
  done: (result: ReplicateResult) => void;
  fail: (err: Error) => void;
}

/**
 * Worker threads that run replicates from one queue, whatever scenario they belong to: several scenarios (the
 * validity bench's cells) share the threads without idling at each scenario's tail. Each worker takes the next job
 * when it finishes one; results are placed by index, so they do not depend on which worker ran what.
 */
export class ReplicatePool {
  readonly size: number;
  readonly #inProcess: boolean;
  readonly #queue: Job[] = [];
  readonly #idle: Worker[] = [];
  readonly #known = new Map<Worker, Set<number>>();
  readonly #running = new Map<Worker, Job>();
  #nextScenarioId = 1;
  #draining = false;
  #failure: Error | null = null;

  constructor(workers = defaultWorkers()) {
    this.size = Math.max(1, workers);
    this.#inProcess = this.size === 1 || !existsSync(fileURLToPath(workerUrl));
    if (this.#inProcess) return;
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(workerUrl);
      this.#known.set(worker, new Set());
      worker.on('message', (reply: WorkerReply) => this.#settle(worker, reply));
      worker.on('error', (err) => this.#fail(err));
      worker.unref();
      this.#idle.push(worker);
    }
  }

  /** Runs `count` replicates of `scenario` (indices 0..count-1) and resolves with them in index order. */
  run(scenario: ResolvedScenario, count: number, onResult?: (result: ReplicateResult) => void): Promise<ReplicateResult[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    const scenarioId = this.#nextScenarioId++;
    const results = new Array<ReplicateResult>(count);
    if (count === 0) return Promise.resolve(results);
    return new Promise((resolve, reject) => {
      let left = count;
      for (let index = 0; index < count; index++) {
        this.#queue.push({
          scenarioId,
          scenario,
          index,
          done: (result) => {
            results[result.index] = result;
            onResult?.(result);
            if (--left === 0) resolve(results);
          },
          fail: reject,
        });
      }
      this.#pump();
    });
  }

  /** Stops the workers (queued jobs fail). */
  async close(): Promise<void> {
    const workers = [...this.#known.keys()];
    this.#known.clear();
    this.#idle.length = 0;
    for (const job of this.#queue.splice(0)) job.fail(new Error('the simulation pool was closed'));
    await Promise.all(workers.map((w) => w.terminate()));
  }

  #pump(): void {
    if (this.#inProcess) {
      if (this.#draining) return;
      this.#draining = true;
      void (async () => {
        for (let job = this.#queue.shift(); job !== undefined; job = this.#queue.shift()) {
          try {
            job.done(await runReplicate(job.scenario, job.index));
          } catch (err) {
            job.fail(err as Error);
          }
        }
        this.#draining = false;
      })();
      return;
    }
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const worker = this.#idle.pop()!;
      const job = this.#queue.shift()!;
      const known = this.#known.get(worker)!;
      if (!known.has(job.scenarioId)) {
        known.add(job.scenarioId);
        worker.postMessage({ type: 'scenario', id: job.scenarioId, scenario: job.scenario } satisfies WorkerRequest);
      }
      this.#running.set(worker, job);
      worker.ref();
      worker.postMessage({ type: 'run', id: job.scenarioId, index: job.index } satisfies WorkerRequest);
    }
  }

  #settle(worker: Worker, reply: WorkerReply): void {
    const job = this.#running.get(worker);
    this.#running.delete(worker);
    // An idle worker must not keep the process alive.
    worker.unref();
    if (!this.#known.has(worker)) return;
    this.#idle.push(worker);
    if (job) {
      if ('error' in reply) job.fail(new Error(`simulation replicate ${job.index} failed: ${reply.error}`));
      else job.done(reply.result);
    }
    this.#pump();
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const job of [...this.#running.values(), ...this.#queue.splice(0)]) job.fail(err);
    this.#running.clear();
  }
}

/** Runs every replicate of a scenario on a pool of its own and returns the results ordered by index. */
export async function runScenario(scenario: ResolvedScenario, options: RunOptions = {}): Promise<ReplicateResult[]> {
  const count = options.replicates ?? scenario.replicates;
  const pool = new ReplicatePool(Math.min(options.workers ?? defaultWorkers(), Math.max(1, count)));
  try {
    return await pool.run(scenario, count, options.onResult);
  } finally {
    await pool.close();
  }
}
