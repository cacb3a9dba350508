// `node dist/bench/coordination.js`: throughput and CPU per request of one Switchyard with and without Redis coordination, paired and alternating.
//
// Both processes run side by side with the same policy (canary 10 %, so both arms' windows are fed) and are warmed up
// first; then each repetition runs autocannon against one, then the other, in alternating order (ABBA…), and the cost
// is the median over repetitions of the paired throughput ratio, with the server's CPU time per request (from
// /proc/<pid>/task/*/schedstat) beside it. A pair during which other programs used more than BENCH_NOISE_PCT of a core
// is run again (up to BENCH_RETRIES times). BENCH_AA=1 runs both without Redis: the noise floor of the method.
// Coordination does no per-request work, so its cost is a fixed CPU time per second; that is measured apart, amplified
// (both ticking every 20 ms, then idle) and divided by the measured throughput. Redis is the machine's
// (127.0.0.1:6379 unless BENCH_REDIS_URL).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';

const env = process.env;
const reps = Number(env.BENCH_REPS ?? 20);
const seconds = Number(env.BENCH_SECONDS ?? 2);
const noisePct = Number(env.BENCH_NOISE_PCT ?? 15);
const retries = Number(env.BENCH_RETRIES ?? 3);
const warmupSeconds = Number(env.BENCH_WARMUP ?? 5);
const idleSeconds = Number(env.BENCH_IDLE_SECONDS ?? 20);
const connections = Number(env.BENCH_CONNECTIONS ?? 50);
const redisUrl = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** BENCH_AA=1: the second process runs without Redis too, to see the noise and any bias of the setup itself. */
const aa = env.BENCH_AA === '1';
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repoRoot, 'dist/src/cli.js');
const body = '{"instances":[[5.1,3.5,1.4,0.2]]}';
const CLOCK_TICKS_PER_SECOND = 100;
/** Cadence of the amplified fixed-cost measurement (ms). */
const FAST_MS = 20;
/** Pin the servers to the last CPU and this process (generator, origin) to the others, when taskset exists: less scheduler noise. */
const pin = env.BENCH_PIN !== '0' && os.availableParallelism() >= 2 && spawnSync('taskset', ['--version']).status === 0;
const serverCpu = String(os.availableParallelism() - 1);

interface Served {
  name: 'alone' | 'redis';
  child: ChildProcess;
  dataUrl: string;
  adminUrl: string;
}

interface Run {
  variant: Served['name'];
  rep: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  cpuUsPerRequest: number;
  /** CPU used by other programs during the run, in percent of one core. */
  foreignPct: number;
}

/** A fixed answer on two ports (champion, challenger), in this process: the same origin for both variants. */
async function startOrigin(): Promise<{ urls: string[]; close(): Promise<void> }> {
  const answer = Buffer.from(JSON.stringify({ predictions: [0], model: 'bench' }));
  const servers = [0, 1].map(() =>
    http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
        res.end(answer);
      });
    }),
  );
  const urls = await Promise.all(servers.map(async (server) => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }));
  return { urls, close: async () => void (await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))) };
}

async function serve(name: Served['name'], policyFile: string, dataDir: string, extraEnv: Record<string, string>): Promise<Served> {
  const args = ['--max-semi-space-size=64', cli, 'serve', '--config', policyFile, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'];
  const child = spawn(pin ? 'taskset' : process.execPath, pin ? ['-c', serverCpu, process.execPath, ...args] : args, {
    env: { PATH: env.PATH, SWITCHYARD_LOG_LEVEL: 'info', SWITCHYARD_DATA_DIR: dataDir, SWITCHYARD_PAIRS_SINK: 'none', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg: string; dataUrl?: string; adminUrl?: string };
    if (entry.msg === 'switchyard listening') {
      lines.on('line', () => undefined);
      return { name, child, dataUrl: entry.dataUrl!, adminUrl: entry.adminUrl! };
    }
  }
  throw new Error(`${name} exited before listening: ${stderr}`);
}

/** Busy CPU time of the whole machine in µs (all cores). */
function machineBusyUs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return ((user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_SECOND) * 1e6;
}

/** CPU time of a process in µs, summed over its threads from /proc/<pid>/task/<tid>/schedstat (ns resolution, unlike the 10 ms ticks of /proc/<pid>/stat). */
function cpuUs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return ns / 1_000;
}

async function load(target: Served, durationS: number) {
  return autocannon({ url: `${target.dataUrl}/v1/models/iris:predict`, connections, duration: durationS, method: 'POST', body, headers: { 'content-type': 'application/json' } });
}

async function measure(target: Served, others: readonly Served[], rep: number): Promise<Run> {
  const pid = target.child.pid!;
  const ours = () => cpuUs(process.pid) + others.reduce((sum, o) => sum + cpuUs(o.child.pid!), 0);
  const before = cpuUs(pid);
  const machineBefore = machineBusyUs();
  const oursBefore = ours();
  const started = performance.now();
  const result = await load(target, seconds);
  const used = cpuUs(pid) - before;
  const foreignUs = machineBusyUs() - machineBefore - (ours() - oursBefore) - used;
  return {
    variant: target.name,
    rep,
    requestsPerSecond: result.requests.total / seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    cpuUsPerRequest: used / Math.max(1, result.requests.total),
    foreignPct: Math.max(0, (foreignUs / ((performance.now() - started) * 1_000)) * 100),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const fmt = (v: number, digits = 0) => v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  if (pin) spawnSync('taskset', ['-cp', `0-${Number(serverCpu) - 1}`, String(process.pid)]);
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  await probe.connect().catch(() => {
    throw new Error(`no Redis at ${redisUrl}: start one (redis-server --port 6379 --save "") or set BENCH_REDIS_URL`);
  });
  const prefix = `swy-bench-${randomUUID().slice(0, 8)}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swy-bench-coord-'));
  const origin = await startOrigin();
  const policyFile = path.join(dir, 'policy.yaml');
  writeFileSync(policyFile, `routes:
  - name: iris
    match: { pathPrefix: /v1/models/iris }
    champion: { name: iris-v1, url: ${origin.urls[0]} }
    challengers: [{ name: iris-v2, url: ${origin.urls[1]}, mode: canary, percent: 10 }]
`);
  const procs: Served[] = [];
  try {
    // Started together, so neither gets a head start (in a run with both variants alike, start order showed up as a bias).
    const [alone, redis] = await Promise.all([
      serve('alone', policyFile, path.join(dir, 'alone'), {}),
      serve('redis', policyFile, path.join(dir, 'redis'), aa ? {} : { SWITCHYARD_REDIS_URL: redisUrl, SWITCHYARD_REDIS_PREFIX: prefix, SWITCHYARD_INSTANCE_ID: 'bench' }),
    ]);
    procs.push(alone, redis);
    console.log(`warm-up: ${warmupSeconds} s each, then ${reps} alternating pairs of ${seconds} s, ${connections} connections${pin ? `; servers pinned to CPU ${serverCpu}` : ''}`);
    for (const target of procs) await load(target, warmupSeconds);
    const runs: Run[] = [];
    let repeated = 0;
    for (let rep = 0; rep < reps; rep++) {
      // ABBA: neither variant always runs first (thermal and background drift cancel out over pairs).
      const order = rep % 2 === 0 ? [alone, redis] : [redis, alone];
      for (let attempt = 0; ; attempt++) {
        const pair: Run[] = [];
        for (const target of order) {
          const run = await measure(target, procs.filter((p) => p !== target), rep);
          pair.push(run);
          console.log(`rep ${rep + 1} ${run.variant.padEnd(5)} ${fmt(run.requestsPerSecond)} req/s  p50 ${fmt(run.p50Ms, 1)} ms  p99 ${fmt(run.p99Ms, 1)} ms  cpu ${fmt(run.cpuUsPerRequest, 1)} µs/req  foreign ${fmt(run.foreignPct)} %  errors ${run.errors}`);
        }
        const noisy = pair.some((r) => r.foreignPct > noisePct);
        if (!noisy || attempt >= retries) {
          runs.push(...pair);
          break;
        }
        repeated++;
        console.log(`rep ${rep + 1}: other programs used more than ${noisePct} % of a core; repeating the pair`);
      }
    }
    // The fixed cost, amplified: two more processes tick 12.5 times as often (controller and exchange every 20 ms
    // instead of 250 ms) after a short load that fills their windows, then sit idle. Idle CPU differs by a few ms/s
    // even between identical processes; amplified, the coordination work stands well above that, and scaled back to
    // the default cadence it is what coordination costs per second, whatever the request rate.
    const redisEnv = { SWITCHYARD_REDIS_URL: redisUrl, SWITCHYARD_REDIS_PREFIX: `${prefix}-fast`, SWITCHYARD_INSTANCE_ID: 'bench-fast', SWITCHYARD_COORDINATION_MS: String(FAST_MS) };
    const fast = await Promise.all([
      serve('alone', policyFile, path.join(dir, 'alone-fast'), { SWITCHYARD_CONTROL_INTERVAL_MS: String(FAST_MS) }),
      serve('redis', policyFile, path.join(dir, 'redis-fast'), aa ? { SWITCHYARD_CONTROL_INTERVAL_MS: String(FAST_MS) } : { ...redisEnv, SWITCHYARD_CONTROL_INTERVAL_MS: String(FAST_MS) }),
    ]);
    procs.push(...fast);
    for (const target of fast) await load(target, 1);
    await new Promise((resolve) => setTimeout(resolve, 3_000)); // let the garbage collection after the load pass
    const idleBefore = fast.map((p) => cpuUs(p.child.pid!));
    const idleStarted = performance.now();
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1_000));
    const idleElapsedS = (performance.now() - idleStarted) / 1_000;
    const [idleAlone, idleRedis] = fast.map((p, i) => (cpuUs(p.child.pid!) - idleBefore[i]!) / idleElapsedS) as [number, number];
    console.log(`idle ${fmt(idleSeconds)} s, ticking every ${FAST_MS} ms: no Redis ${fmt(idleAlone / 1_000, 2)} ms CPU/s, with Redis ${fmt(idleRedis / 1_000, 2)} ms CPU/s`);

    const analysis = (await (await fetch(`${redis.adminUrl}/v1/routes/iris/analysis`)).json()) as { coordination: string; role: string; counts: { pooled: { requests: number }[] | null } };
    const pooled = (analysis.counts.pooled ?? []).reduce((sum, arm) => sum + arm.requests, 0);
    if (!aa && (analysis.coordination !== 'ok' || pooled === 0)) throw new Error(`the Redis variant was not coordinating: ${JSON.stringify(analysis)}`);

    const of = (variant: Served['name'], field: keyof Run) => runs.filter((r) => r.variant === variant).map((r) => r[field] as number);
    const ratios = Array.from({ length: reps }, (_, rep) => runs.find((r) => r.rep === rep && r.variant === 'redis')!.requestsPerSecond / runs.find((r) => r.rep === rep && r.variant === 'alone')!.requestsPerSecond);
    const costPct = (1 - median(ratios)) * 100;
    const cpuAlone = median(of('alone', 'cpuUsPerRequest'));
    const cpuRedis = median(of('redis', 'cpuUsPerRequest'));
    // Scaled back from FAST_MS to the default 250 ms cadence (controller and exchange).
    const exchangeUsPerSecond = Math.max(0, idleRedis - idleAlone) * (FAST_MS / 250);
    const rpsRedis = median(of('redis', 'requestsPerSecond'));
    // The exchanges' fixed CPU spread over the requests of one second at the measured throughput.
    const exchangeUsPerRequest = exchangeUsPerSecond / rpsRedis;
    const quartiles = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return [sorted[Math.floor((sorted.length - 1) / 4)]!, sorted[Math.ceil((3 * (sorted.length - 1)) / 4)]!];
    };
    const [q1 = NaN, q3 = NaN] = quartiles(ratios);
    const summary = {
      throughputCostPct: costPct,
      pairedRatios: ratios,
      medianRequestsPerSecond: { alone: median(of('alone', 'requestsPerSecond')), redis: median(of('redis', 'requestsPerSecond')) },
      medianP99Ms: { alone: median(of('alone', 'p99Ms')), redis: median(of('redis', 'p99Ms')) },
      medianCpuUsPerRequest: { alone: cpuAlone, redis: cpuRedis },
      idleCpuMsPerSecondAt20ms: { alone: idleAlone / 1_000, redis: idleRedis / 1_000 },
      coordinationCpuMsPerSecond: exchangeUsPerSecond / 1_000,
      exchangeCpuUsPerRequest: exchangeUsPerRequest,
      exchangeCostPct: (exchangeUsPerRequest / cpuAlone) * 100,
      ratioInterquartile: [q1, q3],
      errors: runs.reduce((sum, r) => sum + r.errors, 0),
      pairsRepeatedForNoise: repeated,
      medianForeignPct: median(runs.map((r) => r.foreignPct)),
      goal: { maxThroughputCostPct: 3, met: costPct < 3 },
      redisRole: analysis.role,
    };
    const table = [
      '| | no Redis | with Redis |',
      '|---|---:|---:|',
      `| req/s (median of ${reps}) | ${fmt(summary.medianRequestsPerSecond.alone)} | ${fmt(summary.medianRequestsPerSecond.redis)} |`,
      `| p99 latency, ms (median) | ${fmt(summary.medianP99Ms.alone, 1)} | ${fmt(summary.medianP99Ms.redis, 1)} |`,
      `| CPU per request, µs (median) | ${fmt(cpuAlone, 1)} | ${fmt(cpuRedis, 1)} |`,
      `| idle CPU ticking every ${FAST_MS} ms, ms per s | ${fmt(idleAlone / 1_000, 2)} | ${fmt(idleRedis / 1_000, 2)} |`,
      '',
      `Fixed cost of coordination at the default 250 ms cadence: ${fmt(exchangeUsPerSecond / 1_000, 2)} ms CPU per second, i.e. ${fmt(exchangeUsPerRequest, 3)} µs per request at ${fmt(rpsRedis)} req/s = ${fmt(summary.exchangeCostPct, 3)} % of the ${fmt(cpuAlone, 1)} µs a request costs.`,
      `Throughput cost of coordination: ${fmt(costPct, 2)} % (median of the ${reps} paired ratios with Redis / without, interquartile ${fmt(q1, 3)}–${fmt(q3, 3)}; goal < 3 %: ${summary.goal.met ? 'met' : 'NOT met'}).`,
      `Other programs used a median ${fmt(summary.medianForeignPct)} % of a core during the runs; ${repeated} noisy pair(s) were repeated.`,
    ].join('\n');
    console.log(`\n${table}`);
    const resultsDir = path.join(repoRoot, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}-coordination.json`);
    writeFileSync(file, `${JSON.stringify({ settings: { aa, reps, seconds, warmupSeconds, idleSeconds, connections, noisePct, retries, pinned: pin, redisUrl: redisUrl.replace(/\/\/[^@]*@/, '//'), node: process.version, nproc: os.availableParallelism() }, runs, summary, markdown: table }, null, 2)}\n`);
    console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
    if (summary.errors > 0) process.exitCode = 1;
  } finally {
    for (const proc of procs) {
      if (proc.child.exitCode === null) {
        const exited = once(proc.child, 'exit');
        proc.child.kill('SIGTERM');
        await exited;
      }
    }
    await origin.close();
    const keys = await probe.keys(`${prefix}*`);
    if (keys.length > 0) await probe.del(...keys);
    probe.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
