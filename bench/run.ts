// `npm run bench`: one run with paired, alternating repetitions over direct, Switchyard (percent 0, canary 10%) and peers.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runOpenLoop } from './openloop.js';
import { delayHeader } from './upstream-stub.js';
import { runCapacity } from './lib/capacity.js';
import { machine, numberFrom } from './lib/env.js';
import { startFleet, targetIds, type Fleet, type Target, type TargetId } from './lib/fleet.js';
import { requestBody, requestHeaders } from './lib/payload.js';
import { cpuDelta, cpuSnapshot, treeRssMiB, type CpuSnapshot } from './lib/proc-stat.js';
import { withProcessGroup } from './lib/processes.js';
import { checkGoals, markdown, summarise, type CapacityRun, type LatencyRun, type Pair } from './lib/report.js';
import { findRepoRoot } from './lib/repo.js';
import { servedByVariant, shares } from './lib/served.js';

/** Settings read from BENCH_* environment variables. */
export interface BenchConfig {
  reps: number;
  seconds: number;
  /** Seconds at the fixed rate sent before each measured latency window and left out of its percentiles. */
  leadInSeconds: number;
  warmupSeconds: number;
  rate: number;
  connections: number;
  openLoopConnections: number;
  loadgen: 'autocannon' | 'wrk';
  origin: 'nginx' | 'stub';
  stubDelayMs: number;
  noisePct: number;
  retries: number;
  /** Pair repetitions allowed over the whole run, so a noisy machine cannot stretch it without bound. */
  retryBudget: number;
  quietWaitS: number;
  targets: TargetId[] | null;
  /** Targets that also get a stall-excluded latency run (the direct upstream sent alongside as a companion). */
  quietTargets: TargetId[];
  nodeFlags: string[];
}

/** A comma list of target ids; an unknown id is an error naming the variable and the ids there are. */
function targetList(name: string, raw: string): TargetId[] {
  const ids = raw.split(',').map((t) => t.trim()).filter((t) => t !== '');
  const unknown = ids.filter((id) => !(targetIds as readonly string[]).includes(id));
  if (unknown.length > 0) throw new Error(`${name}: unknown target ${unknown.map((u) => `"${u}"`).join(', ')}; use a comma list of ${targetIds.join(', ')}`);
  return ids as TargetId[];
}

/** Reads the BENCH_* knobs; BENCH_QUICK=1 is one short repetition for a smoke run. */
export function benchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const quick = env.BENCH_QUICK === '1';
  const loadgen = env.BENCH_LOADGEN ?? 'autocannon';
  if (loadgen !== 'autocannon' && loadgen !== 'wrk') throw new Error(`BENCH_LOADGEN must be autocannon or wrk, got "${loadgen}"`);
  const origin = env.BENCH_ORIGIN ?? 'nginx';
  if (origin !== 'nginx' && origin !== 'stub') throw new Error(`BENCH_ORIGIN must be nginx or stub, got "${origin}"`);
  return {
    reps: Math.max(1, Math.round(numberFrom(env, 'BENCH_REPS', quick ? 1 : 3))),
    // bench/README.md, BENCH_SECONDS: runs of 6-10 s; a p99 over 5 s rests on its 100 slowest of 10,000 requests and scattered more.
    seconds: numberFrom(env, 'BENCH_SECONDS', quick ? 2 : 8),
    leadInSeconds: numberFrom(env, 'BENCH_LEADIN', quick ? 1 : 2),
    warmupSeconds: numberFrom(env, 'BENCH_WARMUP', quick ? 1 : 5),
    rate: numberFrom(env, 'BENCH_RATE', 2000),
    connections: Math.round(numberFrom(env, 'BENCH_CONNECTIONS', 50)),
    openLoopConnections: Math.round(numberFrom(env, 'BENCH_OPENLOOP_CONNECTIONS', 64)),
    loadgen,
    origin,
    stubDelayMs: numberFrom(env, 'BENCH_STUB_MS', 5),
    noisePct: numberFrom(env, 'BENCH_NOISE_PCT', 15),
    retries: Math.round(numberFrom(env, 'BENCH_RETRIES', quick ? 0 : 1)),
    retryBudget: Math.round(numberFrom(env, 'BENCH_RETRY_BUDGET', 4)),
    quietWaitS: numberFrom(env, 'BENCH_QUIET_WAIT_S', quick ? 1 : 2),
    targets: env.BENCH_TARGETS ? targetList('BENCH_TARGETS', env.BENCH_TARGETS) : null,
    // The goal's target, its stack floor and nginx; BENCH_QUIET_TARGETS=none skips the stall-excluded runs.
    quietTargets: env.BENCH_QUIET_TARGETS === 'none' ? [] : targetList('BENCH_QUIET_TARGETS', env.BENCH_QUIET_TARGETS ?? 'switchyard-canary,bare-dispatch,nginx'),
    nodeFlags: ['--max-semi-space-size=64'],
  };
}

const log = (line: string) => console.log(line);
const num = (v: number, digits = 0) => v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** One bench run: the fleet, its settings and the roots whose CPU is "ours" for the noise guard. */
class Bench {
  readonly roots: number[];
  readonly direct: Target;
  retriesLeft: number;

  constructor(readonly config: BenchConfig, readonly fleet: Fleet) {
    this.roots = [process.pid, fleet.origin.pid, ...fleet.targets.flatMap((t) => (t.pid === null ? [] : [t.pid]))];
    this.direct = fleet.targets.find((t) => t.id === 'direct') as Target;
    this.retriesLeft = config.retryBudget;
  }

  /** Latency runs ask the stub origin for the model delay; nginx ignores the header. */
  get latencyHeaders(): Record<string, string> {
    return this.fleet.origin.kind === 'stub' ? { ...requestHeaders, [delayHeader]: String(this.config.stubDelayMs) } : { ...requestHeaders };
  }

  get capacityHeaders(): Record<string, string> {
    return this.fleet.origin.kind === 'stub' ? { ...requestHeaders, [delayHeader]: '0' } : { ...requestHeaders };
  }

  finishRun(target: Target, before: CpuSnapshot, after: CpuSnapshot, completed: number) {
    const delta = cpuDelta(before, after);
    const proxySeconds = target.pid === null ? null : delta.treeSeconds(target.pid);
    return {
      proxyCpuUsPerReq: proxySeconds === null || completed === 0 ? null : (proxySeconds * 1e6) / completed,
      proxyCorePct: proxySeconds === null ? null : (100 * proxySeconds) / delta.seconds,
      originCpuUsPerReq: completed === 0 ? Number.NaN : (delta.treeSeconds(this.fleet.origin.pid) * 1e6) / completed,
      foreignPct: delta.foreignPct,
      stealPct: delta.stealPct,
      proxyRssMiB: target.pid === null ? null : treeRssMiB(target.pid),
    };
  }

  async capacity(target: Target, rep: number, attempt: number, seconds = this.config.seconds): Promise<CapacityRun> {
    const load = (s: number) => runCapacity({ url: target.url, connections: this.config.connections, seconds: s, method: 'POST', body: requestBody, headers: this.capacityHeaders, tool: this.config.loadgen });
    // A Node proxy that sat idle while the other targets ran needs its first seconds of load to warm up again (measured:
    // 1.6-2x the CPU per request in the first 2 s after 60-90 s idle, the floor as much as Switchyard), which a
    // production proxy under steady traffic never pays. So each measured run starts after an unrecorded lead-in.
    if (rep >= 0 && target.pid !== null && this.config.leadInSeconds > 0) await load(this.config.leadInSeconds);
    const before = cpuSnapshot(this.roots);
    const result = await load(seconds);
    const after = cpuSnapshot(this.roots);
    return { kind: 'capacity', rep, target: target.id, attempt, result, ...this.finishRun(target, before, after, result.completed) };
  }

  async latency(target: Target, rep: number, attempt: number, seconds = this.config.seconds, companionUrl?: string): Promise<LatencyRun> {
    let before: CpuSnapshot | null = null;
    const result = await runOpenLoop({
      url: target.url,
      companionUrl,
      rate: this.config.rate,
      seconds,
      leadInSeconds: this.config.leadInSeconds,
      connections: this.config.openLoopConnections,
      method: 'POST',
      body: requestBody,
      headers: this.latencyHeaders,
      onStart: () => (before = cpuSnapshot(this.roots)),
    });
    const after = cpuSnapshot(this.roots);
    return { kind: 'latency', rep, target: target.id, attempt, result, ...this.finishRun(target, before ?? after, after, result.measuredCompleted) };
  }

  /**
   * The target at the fixed rate with the direct upstream sent the same requests at the same moments, so both share
   * the machine's stalls and the added latency can be read over the moments direct was not stalled (lib/quiet-window.ts).
   */
  async quietLatency(target: Target, rep: number): Promise<LatencyRun> {
    await this.waitForQuiet();
    const run = await this.latency(target, rep, 1, this.config.seconds, this.direct.url);
    this.assertAlive();
    return run;
  }

  /** Waits (bounded) for a sampling window with foreign CPU under the threshold. */
  async waitForQuiet(): Promise<number> {
    const deadline = performance.now() + this.config.quietWaitS * 1000;
    for (;;) {
      const before = cpuSnapshot(this.roots);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const foreign = cpuDelta(before, cpuSnapshot(this.roots)).foreignPct;
      if (foreign < this.config.noisePct || performance.now() > deadline) return foreign;
    }
  }

  /** Direct, then the target; repeated (up to BENCH_RETRIES) when foreign CPU exceeded the threshold in either run. */
  async pair<R extends CapacityRun | LatencyRun>(measure: (target: Target, rep: number, attempt: number) => Promise<R>, target: Target, rep: number): Promise<Pair<R>> {
    for (let attempt = 1; ; attempt++) {
      await this.waitForQuiet();
      const direct = await measure(this.direct, rep, attempt);
      const run = await measure(target, rep, attempt);
      this.assertAlive();
      const foreign = Math.max(direct.foreignPct, run.foreignPct);
      const noisy = foreign > this.config.noisePct;
      if (!noisy || attempt > this.config.retries || this.retriesLeft === 0) return { rep, target: target.id, direct, run, attempts: attempt, noisy };
      this.retriesLeft--;
      log(`    foreign CPU ${num(foreign)}% > ${this.config.noisePct}%: repeating the pair (${this.retriesLeft} repeats left)`);
    }
  }

  assertAlive(): void {
    for (const root of this.roots) {
      try {
        process.kill(root, 0);
      } catch {
        throw new Error(`process ${root} under test died during the run`);
      }
    }
  }
}

/** Runs the whole bench and returns the path of the results file. */
export async function runBench(config: BenchConfig): Promise<string> {
  const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
  const startedAt = new Date();
  return withProcessGroup('swy-bench-', async (group, dir) => {
    const fleet = await startFleet(group, { repoRoot, dir, origin: config.origin, stubDelayMs: 0, nodeFlags: config.nodeFlags });
    for (const notice of fleet.skipped) log(`NOTICE: ${notice.reason}`);
    const measured = fleet.targets.filter((t) => t.id !== 'direct' && (config.targets === null || config.targets.includes(t.id)));
    const bench = new Bench(config, fleet);
    const m = machine();
    log(`Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}`);
    log(`Origin: ${fleet.origin.version}. Targets: ${measured.map((t) => t.id).join(', ')}`);
    const quietTargets = measured.filter((t) => config.quietTargets.includes(t.id));
    const perRep = measured.length * (2 * config.seconds + config.leadInSeconds + 2 * (config.seconds + config.leadInSeconds)) + quietTargets.length * (config.seconds + config.leadInSeconds);
    log(`Plan: ${config.reps} rep(s) × ${measured.length} targets × (capacity + ${config.rate} req/s) × (direct + target) × ${config.seconds} s${quietTargets.length > 0 ? `, + a stall-excluded ${config.rate} req/s run for ${quietTargets.map((t) => t.id).join(', ')}` : ''} ≈ ${Math.round((perRep * config.reps + config.warmupSeconds * (measured.length + 0.5)) / 60 * 10) / 10} min`);

    log('Warm-up (not recorded): saturation per target, then a short open-loop run');
    await bench.capacity(bench.direct, -1, 0, Math.max(1, config.warmupSeconds / 2));
    for (const target of measured) await bench.capacity(target, -1, 0, config.warmupSeconds);
    await bench.latency(bench.direct, -1, 0, 1);

    const capacity: Pair<CapacityRun>[] = [];
    const latency: Pair<LatencyRun>[] = [];
    const quiet: LatencyRun[] = [];
    for (let rep = 0; rep < config.reps; rep++) {
      // Alternate the order so drift over the run (thermal, neighbours) does not always favour the same target.
      const order = rep % 2 === 1 ? [...measured].reverse() : measured;
      for (const target of order) {
        const cap = await bench.pair((t, r, a) => bench.capacity(t, r, a), target, rep);
        capacity.push(cap);
        const lat = await bench.pair((t, r, a) => bench.latency(t, r, a), target, rep);
        latency.push(lat);
        const cpu = (v: number | null) => (v === null ? '–' : num(v, 1));
        const q = quietTargets.includes(target) ? await bench.quietLatency(target, rep) : null;
        if (q !== null) quiet.push(q);
        log(`[rep ${rep + 1}/${config.reps}] ${target.id.padEnd(17)} capacity ${num(cap.run.result.rps)} rps (direct ${num(cap.direct.result.rps)}), ${cpu(cap.run.proxyCpuUsPerReq)} µs/req | ${config.rate}/s: p50 ${num(lat.run.result.latencyUs.p50 / 1000, 3)} ms (direct ${num(lat.direct.result.latencyUs.p50 / 1000, 3)}), p99 ${num(lat.run.result.latencyUs.p99 / 1000, 3)} ms (direct ${num(lat.direct.result.latencyUs.p99 / 1000, 3)}), ${cpu(lat.run.proxyCpuUsPerReq)} µs/req | foreign ${num(Math.max(cap.run.foreignPct, lat.run.foreignPct))}%${cap.noisy || lat.noisy ? ' (noisy)' : ''}${q?.result.quiet ? ` | stall-excluded: added p99 ${num((q.result.quiet.latencyUs.p99 - q.result.quiet.companionLatencyUs.p99) / 1000, 3)} ms, ${num(100 * q.result.quiet.excludedShare)}% of bins left out` : ''}`);
      }
    }

    const shown = fleet.targets.filter((t) => t.id === 'direct' || measured.includes(t));
    const summaries = summarise(shown, capacity, latency, quiet);
    const goals = checkGoals(summaries, config.rate);
    const table = markdown(summaries, goals, config.rate);
    const splits: Record<string, Record<string, number>> = {};
    for (const t of measured) if (t.adminUrl !== null) splits[t.id] = shares(await servedByVariant(t.adminUrl));

    const resultsDir = path.join(repoRoot, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    const finishedAt = new Date();
    writeFileSync(file, `${JSON.stringify({ startedAt, finishedAt, machine: m, config, fleet: { origin: fleet.origin, targets: fleet.targets, skipped: fleet.skipped, versions: fleet.versions }, servedShares: splits, summaries, goals, markdown: table, capacity, latency, quiet }, null, 2)}\n`);

    log('');
    log(table);
    log('');
    for (const [id, shares] of Object.entries(splits)) log(`Served shares ${id}: ${Object.entries(shares).map(([v, s]) => `${v} ${(100 * s).toFixed(1)}%`).join(', ')}`);
    const noisyPairs = [...capacity, ...latency].filter((p) => p.noisy).length;
    if (noisyPairs > 0) log(`Note: ${noisyPairs} pair(s) kept foreign CPU above ${config.noisePct}% after retries; treat their spread with care.`);
    log(`Results: ${path.relative(process.cwd(), file)} (${Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000)} s)`);
    return file;
  }, log);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await runBench(benchConfig());
  } catch (err) {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
}
