// Scenario benchmarks: shadow mirroring's cost to the primary (100% mirrored to a 50 ms slower challenger vs canary 0%),
// and the time from a challenger fault to the completed rollback.
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { runOpenLoop, type OpenLoopResult } from './openloop.js';
import { startSwitchyardProcess } from './lib/fleet.js';
import { predictPath, requestBody, requestHeaders } from './lib/payload.js';
import { freePort, ProcessGroup, waitForHttp } from './lib/processes.js';
import { findRepoRoot } from './lib/repo.js';
import { startUpstreamStub } from './upstream-stub.js';

const reps = Number(process.env.BENCH_REPS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
/** Seconds sent before each measured window and left out of its percentiles, as in `npm run bench` (see openloop.ts). */
const leadIn = Number(process.env.BENCH_LEADIN ?? 2);
const rate = Number(process.env.BENCH_SCENARIO_RATE ?? 1000);
const nodeFlags = ['--max-semi-space-size=64'];
/** Which scenarios run (comma list; default all): `shadow`, `rollback`. */
const scenarios = new Set((process.env.BENCH_SCENARIOS ?? 'shadow,rollback').split(',').map((name) => name.trim()));

function policy(champion: string, challenger: string, mode: string, percent: number, extra = ''): string {
  return [
    'routes:',
    '  - name: bench',
    '    match: { pathPrefix: /v1/models/m, methods: [POST] }',
    `    champion: { name: m-v1, url: ${champion} }`,
    '    challengers:',
    `      - { name: m-v2, url: ${challenger}, mode: ${mode}, percent: ${percent}${mode === 'shadow' ? '' : ', fallback: true'} }`,
    '    stickiness: { header: x-user-id }',
    '    shadow: { maxInFlight: 256 }',
    '    predictions: { protocol: json, pointer: /predictions/0 }',
    extra,
    '',
  ].join('\n');
}

const ms = (us: number) => (us / 1000).toFixed(3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Starts the fixed-latency stub in its own process, so its timers do not share the generator's event loop. */
async function stubProcess(group: ProcessGroup, repoRoot: string, delayMs: number): Promise<{ urls: string[]; close(): Promise<void> }> {
  const port = await freePort();
  const member = group.start(`stub-${delayMs}ms`, process.execPath, [path.join(repoRoot, 'dist/bench/upstream-stub.js'), '--port', String(port), '--delay-ms', String(delayMs)]);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url, { member });
  return { urls: [url], close: () => group.stop(member) };
}

async function shadowScenario(group: ProcessGroup, repoRoot: string, dir: string): Promise<string> {
  // Champion answers in 5 ms, the challenger in 55 ms: the mirror is 50 ms slower than the served path.
  const champion = await stubProcess(group, repoRoot, 5);
  const challenger = await stubProcess(group, repoRoot, 55);
  try {
    const baseline = await startSwitchyardProcess(group, { repoRoot, dir, nodeFlags }, 'canary0', policy(champion.urls[0]!, challenger.urls[0]!, 'canary', 0));
    const shadow = await startSwitchyardProcess(group, { repoRoot, dir, nodeFlags }, 'shadow100', policy(champion.urls[0]!, challenger.urls[0]!, 'shadow', 100));
    // The champion stub itself is sent the same requests at the same moments (a companion), so each run can also be read
    // over the 10 ms bins in which the machine did not stall: a direct answer over 5 + 2 ms marks a stall (openloop.ts).
    const quiet = { stallMs: 7 };
    const run = (base: string, s = seconds, leadInSeconds = leadIn): Promise<OpenLoopResult> => runOpenLoop({ url: `${base}${predictPath}`, companionUrl: `${champion.urls[0]!}${predictPath}`, quiet, rate, seconds: s, leadInSeconds, method: 'POST', body: requestBody, headers: { ...requestHeaders }, connections: 64 });
    await run(baseline.url, 2, 0);
    await run(shadow.url, 2, 0);
    const rows: { rep: number; target: string; r: OpenLoopResult }[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? [['canary 0%', baseline.url], ['shadow 100% (+50 ms)', shadow.url]] : [['shadow 100% (+50 ms)', shadow.url], ['canary 0%', baseline.url]];
      for (const [target, url] of order) rows.push({ rep, target: target!, r: await run(url!) });
    }
    const of = (target: string) => rows.filter((x) => x.target === target).map((x) => x.r);
    const base = of('canary 0%');
    const mirrored = of('shadow 100% (+50 ms)');
    const ratios = base.map((b, i) => mirrored[i]!.latencyUs.p99 / b.latencyUs.p99);
    const quietRatios = base.map((b, i) => mirrored[i]!.quiet!.latencyUs.p99 / b.quiet!.latencyUs.p99);
    const leftOut = rows.map((x) => 100 * x.r.quiet!.excludedShare);
    const failures = rows.reduce((sum, x) => sum + x.r.errors + x.r.non2xx + x.r.unfinished, 0);
    const lines = [
      `### Shadow mirroring (open loop ${rate} req/s, champion 5 ms, challenger 55 ms, ${reps} alternating reps of ${seconds} s after a ${leadIn} s lead-in)`,
      '',
      '| scenario | p50 ms | p99 ms | p99.9 ms | p99 ms, stall-excluded | champion direct p99 ms, stall-excluded |',
      '|---|---|---|---|---|---|',
      ...[['canary 0%', base], ['shadow 100% (+50 ms)', mirrored]].map(([name, rs]) => {
        const r = rs as OpenLoopResult[];
        return `| ${name as string} | ${ms(median(r.map((x) => x.latencyUs.p50)))} | ${ms(median(r.map((x) => x.latencyUs.p99)))} | ${ms(median(r.map((x) => x.latencyUs.p999)))} | ${ms(median(r.map((x) => x.quiet!.latencyUs.p99)))} | ${ms(median(r.map((x) => x.quiet!.companionLatencyUs.p99)))} |`;
      }),
      '',
      `primary p99 shadow/canary-0% ratio: median ${median(ratios).toFixed(3)} [${Math.min(...ratios).toFixed(3)}…${Math.max(...ratios).toFixed(3)}] (goal <= 1.10); client failures ${failures}`,
      `the same, stall-excluded: median ${median(quietRatios).toFixed(3)} [${Math.min(...quietRatios).toFixed(3)}…${Math.max(...quietRatios).toFixed(3)}] (time left out as stalled: median ${median(leftOut).toFixed(0)} % [${Math.min(...leftOut).toFixed(0)}…${Math.max(...leftOut).toFixed(0)}])`,
    ];
    return lines.join('\n');
  } finally {
    await champion.close();
    await challenger.close();
  }
}

/** A challenger whose failure can be switched on: answers like a model until `fail` is set, then 500s. */
async function switchableChallenger(): Promise<{ url: string; setFailing(on: boolean): void; close(): Promise<void> }> {
  let failing = false;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (failing) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":"injected"}');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"predictions":["setosa"]}');
      }
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setFailing: (on) => (failing = on),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function rollbackScenario(group: ProcessGroup, repoRoot: string, dir: string): Promise<string> {
  const champion = await startUpstreamStub({ ports: [0], models: ['m'], delayMs: 1 });
  const challenger = await switchableChallenger();
  const times: number[] = [];
  let clientFailures = 0;
  try {
    for (let rep = 0; rep < Math.max(3, reps); rep++) {
      // A fresh instance per repetition: a rolled-back route stays rolled back until a person resumes it.
      challenger.setFailing(false);
      const swy = await startSwitchyardProcess(group, { repoRoot, dir, nodeFlags }, `rollback-${rep}`, policy(champion.urls[0]!, challenger.url, 'canary', 50));
      const load = runOpenLoop({ url: `${swy.url}${predictPath}`, rate: 500, seconds: 5, method: 'POST', body: requestBody, headers: { ...requestHeaders }, connections: 32 });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const faultAt = performance.now();
      challenger.setFailing(true);
      let rolledBackAt = 0;
      while (performance.now() - faultAt < 5_000) {
        const res = await request(`${swy.adminUrl}/v1/routes/bench`);
        const body = (await res.body.json()) as { rolledBack: boolean };
        if (body.rolledBack) {
          rolledBackAt = performance.now();
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const result = await load;
      clientFailures += result.non2xx + result.errors + result.unfinished;
      times.push(rolledBackAt === 0 ? Number.POSITIVE_INFINITY : rolledBackAt - faultAt);
      await group.stop(swy.member);
    }
  } finally {
    await champion.close();
    await challenger.close();
  }
  return [
    '### Fault to rollback (canary 50 %, fallback on, open loop 500 req/s; the challenger starts answering 500)',
    '',
    `time from fault injection to rollback: median ${median(times).toFixed(0)} ms [${Math.min(...times).toFixed(0)}…${Math.max(...times).toFixed(0)}] over ${times.length} reps (goal < 2000 ms); client-visible failures ${clientFailures}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swy-scenarios-'));
  mkdirSync(dir, { recursive: true });
  const group = new ProcessGroup();
  try {
    if (scenarios.has('shadow')) {
      console.log(`${await shadowScenario(group, repoRoot, dir)}\n`);
      await group.stopAll();
    }
    if (scenarios.has('rollback')) console.log(await rollbackScenario(group, repoRoot, dir));
  } finally {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
