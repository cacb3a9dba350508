// `npm run bench:routes`: idle CPU, CPU per request and RSS of one `switchyard serve` at 1, 100 and 1,000 routes.
//
// One process per route count runs side by side, each with the same origin (nginx unless BENCH_ORIGIN=stub) and a
// policy of N routes, every one a champion with a canary challenger at 10 %. The measured route is the one the old
// matcher met last (the same prefix length as the others, last in the file). Each repetition first measures every
// process with no traffic at all over the same window (CPU from /proc, % of one core), then loads each in turn (the
// order alternates between repetitions) at a fixed rate after an unrecorded lead-in, and reads its CPU per request and
// its RSS. The figures are ratios to the 1-route process within the same repetition; the table gives their median.
// BENCH_SWITCHYARD_ROOT runs another checkout's build (its dist/src/cli.js), e.g. main's, for the "before" row.
// BENCH_REDIS=1 gives each process its own redis-server (SWITCHYARD_REDIS_URL) and counts the commands it receives.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { machine, numberFrom } from './lib/env.js';
import { startOrigin, startSwitchyardProcess } from './lib/fleet.js';
import { predictPath, requestBody, requestHeaders } from './lib/payload.js';
import { cpuDelta, cpuSnapshot, treeRssMiB } from './lib/proc-stat.js';
import { freePort, waitForHttp, withProcessGroup, type ProcessGroup } from './lib/processes.js';
import { findRepoRoot } from './lib/repo.js';
import { spread } from './lib/stats.js';

const median = (values: readonly number[]) => spread(values).median;

/** Settings read from BENCH_* environment variables. */
export interface RoutesBenchConfig {
  routeCounts: number[];
  reps: number;
  idleSeconds: number;
  /** Seconds of no traffic before each idle window, so routes loaded in the previous repetition have gone quiet. */
  quietSeconds: number;
  seconds: number;
  leadInSeconds: number;
  rate: number;
  connections: number;
  origin: 'nginx' | 'stub';
  switchyardRoot: string | null;
  redis: boolean;
}

export function routesBenchConfig(env: NodeJS.ProcessEnv = process.env): RoutesBenchConfig {
  const quick = env.BENCH_QUICK === '1';
  const counts = (env.BENCH_ROUTES ?? '1,100,1000').split(',').map((s) => Number(s.trim()));
  if (counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_ROUTES must be a comma list of route counts >= 1, got "${env.BENCH_ROUTES}"`);
  if (counts[0] !== 1) throw new Error('BENCH_ROUTES must start with 1: the other counts are reported as ratios to one route');
  const origin = env.BENCH_ORIGIN ?? 'nginx';
  if (origin !== 'nginx' && origin !== 'stub') throw new Error(`BENCH_ORIGIN must be nginx or stub, got "${origin}"`);
  return {
    routeCounts: counts,
    reps: Math.max(1, Math.round(numberFrom(env, 'BENCH_REPS', quick ? 1 : 5))),
    idleSeconds: numberFrom(env, 'BENCH_IDLE_SECONDS', quick ? 3 : 10),
    quietSeconds: numberFrom(env, 'BENCH_QUIET_SECONDS', quick ? 1 : 20),
    seconds: numberFrom(env, 'BENCH_SECONDS', quick ? 2 : 6),
    leadInSeconds: numberFrom(env, 'BENCH_LEADIN', quick ? 1 : 2),
    rate: numberFrom(env, 'BENCH_RATE', 1000),
    connections: Math.round(numberFrom(env, 'BENCH_CONNECTIONS', 16)),
    origin,
    switchyardRoot: env.BENCH_SWITCHYARD_ROOT ?? null,
    redis: env.BENCH_REDIS === '1',
  };
}

/** Prefix of the measured route; the benchmarked call `/v1/models/m:predict` falls under it. */
const targetPrefix = '/v1/models/m';

/**
 * N routes, each a champion with a canary challenger at 10 %. The other routes come first in the file and have longer
 * prefixes (`/v1/models/route-<i>`), none of them a prefix of the benchmarked path, so a matcher that scans by
 * descending prefix length meets the target last.
 */
export function routesPolicy(count: number, champion: string, challenger: string): string {
  const lines = ['routes:'];
  for (let i = 0; i < count; i++) {
    const last = i === count - 1;
    const name = last ? 'target' : `route-${i}`;
    lines.push(
      `  - name: ${name}`,
      `    match: { pathPrefix: ${last ? targetPrefix : `/v1/models/${name}`}, methods: [POST, GET] }`,
      `    champion: { name: ${name}-v1, url: ${champion} }`,
      '    challengers:',
      `      - { name: ${name}-v2, url: ${challenger}, mode: canary, percent: 10 }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A private redis-server (no persistence) on a free port; its command count is this process's alone. */
async function startRedis(group: ProcessGroup, dir: string, name: string): Promise<{ url: string; commands: () => number }> {
  const port = await freePort();
  group.start(`redis ${name}`, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  const cli = (...args: string[]) => execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  for (let i = 0; ; i++) {
    try {
      if (cli('ping').trim() === 'PONG') break;
    } catch {
      if (i > 100) throw new Error(`redis-server on port ${port} did not start`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The count includes this INFO call itself; over a window that is 1 command, against hundreds per second.
  return { url: `redis://127.0.0.1:${port}`, commands: () => Number(/total_commands_processed:(\d+)/.exec(cli('info', 'stats'))?.[1] ?? Number.NaN) };
}

interface Served {
  routes: number;
  pid: number;
  url: string;
  redis: { commands: () => number } | null;
}

/** One repetition's figures for one process. */
interface RepFigures {
  rep: number;
  routes: number;
  idleCorePct: number;
  idleRedisOpsPerS: number | null;
  cpuUsPerReq: number;
  loadRedisOpsPerS: number | null;
  rssMiB: number;
  completed: number;
  non2xx: number;
  foreignPct: number;
}

async function load(url: string, seconds: number, config: RoutesBenchConfig): Promise<{ completed: number; non2xx: number }> {
  const result = await autocannon({ url, connections: config.connections, duration: seconds, overallRate: config.rate, method: 'POST', body: requestBody, headers: requestHeaders });
  return { completed: result.requests.total, non2xx: result.non2xx + result.errors };
}

const log = (line: string) => console.log(line);
const fixed = (v: number | null, digits: number) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits));

/** Runs the bench and returns the path of its results file. */
export async function runRoutesBench(config: RoutesBenchConfig): Promise<string> {
  const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
  const switchyardRoot = config.switchyardRoot ?? repoRoot;
  const startedAt = new Date();
  return withProcessGroup('swy-routes-', async (group, dir) => {
    const origin = await startOrigin(group, { repoRoot, dir, origin: config.origin, stubDelayMs: 0 });
    const m = machine();
    log(`Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}; origin ${origin.version}`);
    log(`Switchyard build: ${path.join(switchyardRoot, 'dist/src/cli.js')}${config.redis ? ', each with its own redis-server' : ''}`);
    const served: Served[] = [];
    for (const routes of config.routeCounts) {
      const redis = config.redis ? await startRedis(group, dir, `${routes}`) : null;
      const env: Record<string, string> = redis === null ? {} : { SWITCHYARD_REDIS_URL: redis.url, SWITCHYARD_INSTANCE_ID: `routes-${routes}` };
      const started = await startSwitchyardProcess(group, { repoRoot: switchyardRoot, dir, nodeFlags: ['--max-semi-space-size=64'] }, `routes-${routes}`, routesPolicy(routes, origin.champion, origin.challenger), env);
      const url = started.url + predictPath;
      await waitForHttp(url, { status: 200, member: started.member });
      served.push({ routes, pid: started.member.pid, url, redis });
    }
    const roots = [process.pid, origin.pid, ...served.map((s) => s.pid)];
    log(`Plan: ${config.reps} reps × (${config.quietSeconds} s quiet + ${config.idleSeconds} s idle, all at once; then per process ${config.leadInSeconds} s lead-in + ${config.seconds} s at ${config.rate} req/s)`);
    log('Warm-up (not recorded): every process loaded once');
    for (const s of served) await load(s.url, config.leadInSeconds + config.seconds, config);

    const figures: RepFigures[] = [];
    for (let rep = 0; rep < config.reps; rep++) {
      await new Promise((resolve) => setTimeout(resolve, config.quietSeconds * 1000));
      const idleRedisBefore = served.map((s) => s.redis?.commands() ?? null);
      const idleBefore = cpuSnapshot(roots);
      await new Promise((resolve) => setTimeout(resolve, config.idleSeconds * 1000));
      const idle = cpuDelta(idleBefore, cpuSnapshot(roots));
      const idleRedisAfter = served.map((s) => s.redis?.commands() ?? null);
      const order = rep % 2 === 1 ? [...served].reverse() : served;
      for (const s of order) {
        const i = served.indexOf(s);
        await load(s.url, config.leadInSeconds, config);
        const redisBefore = s.redis?.commands() ?? null;
        const before = cpuSnapshot(roots);
        const result = await load(s.url, config.seconds, config);
        const delta = cpuDelta(before, cpuSnapshot(roots));
        const redisAfter = s.redis?.commands() ?? null;
        const perSecond = (a: number | null, b: number | null, seconds: number) => (a === null || b === null ? null : (b - a) / seconds);
        const row: RepFigures = {
          rep,
          routes: s.routes,
          idleCorePct: (100 * idle.treeSeconds(s.pid)) / idle.seconds,
          idleRedisOpsPerS: perSecond(idleRedisBefore[i]!, idleRedisAfter[i]!, idle.seconds),
          cpuUsPerReq: (delta.treeSeconds(s.pid) * 1e6) / Math.max(1, result.completed),
          loadRedisOpsPerS: perSecond(redisBefore, redisAfter, delta.seconds),
          rssMiB: treeRssMiB(s.pid),
          completed: result.completed,
          non2xx: result.non2xx,
          foreignPct: Math.max(idle.foreignPct, delta.foreignPct),
        };
        figures.push(row);
        log(`[rep ${rep + 1}/${config.reps}] ${String(s.routes).padStart(5)} routes: idle ${fixed(row.idleCorePct, 2)} % of a core, ${fixed(row.cpuUsPerReq, 1)} µs/req (${row.completed} requests, ${row.non2xx} not 2xx), RSS ${fixed(row.rssMiB, 0)} MiB${row.idleRedisOpsPerS === null ? '' : `, Redis ${fixed(row.idleRedisOpsPerS, 0)}/s idle, ${fixed(row.loadRedisOpsPerS, 0)}/s loaded`} | foreign ${fixed(row.foreignPct, 0)} %`);
      }
    }

    const table = routesTable(figures, config.routeCounts);
    const resultsDir = path.join(repoRoot, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `routes-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ startedAt, finishedAt: new Date(), machine: m, config, switchyardRoot, origin: origin.version, figures, markdown: table }, null, 2)}\n`);
    log('');
    log(table);
    log(`Results: ${path.relative(process.cwd(), file)}`);
    return file;
  }, log);
}

/** The Markdown table: medians over repetitions, and each count's median ratio to one route within a repetition. */
export function routesTable(figures: readonly RepFigures[], counts: readonly number[]): string {
  const of = (routes: number) => figures.filter((f) => f.routes === routes);
  const ratio = (routes: number, pick: (f: RepFigures) => number) => {
    const s = spread(of(routes).map((f) => pick(f) / pick(figures.find((g) => g.rep === f.rep && g.routes === counts[0])!)));
    return `${fixed(s.median, 3)}, ${fixed(s.min, 3)}-${fixed(s.max, 3)}`;
  };
  const withRedis = figures.some((f) => f.idleRedisOpsPerS !== null);
  const lines = [
    `| routes | idle CPU, % of a core | CPU per request, µs (ratio to 1 route: median, min-max) | RSS, MiB (ratio to 1 route: median, min-max) |${withRedis ? ' Redis commands/s idle | loaded |' : ''}`,
    `|---:|---:|---:|---:|${withRedis ? '---:|---:|' : ''}`,
  ];
  for (const routes of counts) {
    const rows = of(routes);
    const redis = withRedis ? ` ${fixed(median(rows.map((f) => f.idleRedisOpsPerS ?? Number.NaN)), 0)} | ${fixed(median(rows.map((f) => f.loadRedisOpsPerS ?? Number.NaN)), 0)} |` : '';
    lines.push(`| ${routes.toLocaleString('en-US')} | ${fixed(median(rows.map((f) => f.idleCorePct)), 2)} | ${fixed(median(rows.map((f) => f.cpuUsPerReq)), 1)} (${ratio(routes, (f) => f.cpuUsPerReq)}) | ${fixed(median(rows.map((f) => f.rssMiB)), 0)} (${ratio(routes, (f) => f.rssMiB)}) |${redis}`);
  }
  return lines.join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await runRoutesBench(routesBenchConfig());
  } catch (err) {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
}
