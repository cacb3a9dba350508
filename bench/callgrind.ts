// Counts the main thread's instructions per request of Switchyard's canary or shadow path under callgrind (method: docs/performance.md, "Measuring CPU per request with callgrind").
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon, { type AutocannonResult } from 'autocannon';
import { benchPolicy, startOrigin } from './lib/fleet.js';
import { requestBody, requestHeaders, predictPath } from './lib/payload.js';
import { freePort, waitForHttp, withProcessGroup } from './lib/processes.js';
import { findRepoRoot } from './lib/repo.js';

/** One measured run: instructions of the main thread (callgrind's thread 1) over the measured requests. */
export interface CallgrindRun {
  requests: number;
  completed: number;
  non2xx: number;
  mainThreadInstructions: number;
  perRequest: number;
}

/** Reads the `totals:` line of a callgrind output file (the first event is Ir; the `summary:` line above it can read 0). */
export function callgrindTotal(text: string): number {
  const match = /^totals:\s+(\d+)/m.exec(text);
  if (match === null) throw new Error('no totals line in the callgrind output');
  return Number(match[1]);
}

/** The policies a run can measure (`BENCH_CG_POLICY`): the bench's canary 10 % (bare, recording predictions, or with divergence and drift on), or a shadow mirroring every request. */
export const callgrindPolicies = ['canary', 'canary-predictions', 'canary-divergence', 'shadow', 'shadow-rewrite-shed'] as const;
export type CallgrindPolicy = (typeof callgrindPolicies)[number];

/**
 * The policy file of a run. `shadow` mirrors 100 % to the challenger; `shadow-rewrite-shed` also rewrites each mirror
 * (a JSON Pointer and a header) and keeps the shadow budget's champion latency estimate, with a bound it never reaches.
 */
export function callgrindPolicy(kind: CallgrindPolicy, champion: string, challenger: string): string {
  if (kind === 'canary') return benchPolicy(champion, challenger, 10);
  if (kind === 'canary-predictions' || kind === 'canary-divergence') {
    // The canary 10 % with its predictions recorded (every answer sampled); `canary-divergence` adds the class
    // comparison and prediction drift, which the recorder worker computes: the request path should not notice.
    const lines = [
      benchPolicy(champion, challenger, 10).trimEnd(),
      '    predictions: { protocol: json, pointer: /predictions/0/label, kind: class, sampleRate: 1 }',
    ];
    if (kind === 'canary-divergence') lines.push('    divergence: { action: report, classes: 3 }', '    drift: { windowMs: 60s, predictions: true }');
    return `${lines.join('\n')}\n`;
  }
  const lines = [
    'routes:',
    '  - name: bench',
    '    match: { pathPrefix: /v1/models/m, methods: [POST, GET] }',
    `    champion: { name: m-v1, url: ${champion} }`,
    '    challengers:',
    `      - name: m-v2`,
    `        url: ${challenger}`,
    '        mode: shadow',
    '        percent: 100',
  ];
  if (kind === 'shadow-rewrite-shed') {
    lines.push(
      '        rewrite: { json: { /parameters/threshold: 0.6 }, headers: { set: { x-model: m-v2 } } }',
      '    shadow: { shed: { latencyMs: 60000 } }',
    );
  }
  lines.push('    stickiness: { header: x-user-id }', '');
  return lines.join('\n');
}

function sendFixed(url: string, connections: number, amount: number): Promise<AutocannonResult> {
  return autocannon({ url, connections, amount, pipelining: 1, method: 'POST', body: requestBody, headers: { ...requestHeaders }, timeout: 60 });
}

function control(args: string[]): void {
  const out = spawnSync('callgrind_control', args, { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`callgrind_control ${args.join(' ')} failed: ${out.stderr}${out.stdout}`);
}

async function main(): Promise<void> {
  const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
  const warmup = Number(process.env.BENCH_CG_WARMUP ?? 16_000);
  const measured = Number(process.env.BENCH_CG_REQUESTS ?? 6_000);
  const connections = Number(process.env.BENCH_CG_CONNECTIONS ?? 8);
  // The build to measure (a copy of another build's dist/ lets two builds be compared on one machine).
  const cli = path.resolve(process.env.BENCH_CG_CLI ?? path.join(repoRoot, 'dist/src/cli.js'));
  const extraEnv = Object.fromEntries((process.env.BENCH_CG_ENV ?? '').split(',').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  await withProcessGroup('swy-callgrind-', async (group, dir) => {
    const origin = await startOrigin(group, { repoRoot, dir, origin: 'stub', stubDelayMs: 0 }, null);
    const port = await freePort();
    const adminPort = await freePort();
    const policyFile = path.join(dir, 'policy.yaml');
    const policyKind = (process.env.BENCH_CG_POLICY ?? 'canary') as CallgrindPolicy;
    if (!callgrindPolicies.includes(policyKind)) throw new Error(`BENCH_CG_POLICY must be one of ${callgrindPolicies.join(', ')}, not ${policyKind}`);
    writeFileSync(policyFile, callgrindPolicy(policyKind, origin.champion, origin.challenger));
    const dataDir = path.join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, SWITCHYARD_PORT: String(port), SWITCHYARD_ADMIN_PORT: String(adminPort), SWITCHYARD_HOST: '127.0.0.1', SWITCHYARD_LOG_LEVEL: 'warn', SWITCHYARD_DATA_DIR: dataDir, SWITCHYARD_CONTROL_INTERVAL_MS: '60000', ...extraEnv };
    const outFile = path.join(dir, 'callgrind.out');
    const args = ['--tool=callgrind', '--separate-threads=yes', '--instr-atstart=no', `--callgrind-out-file=${outFile}`, process.execPath, '--max-semi-space-size=64', cli, 'serve', '--config', policyFile];
    const sy = group.start('switchyard under callgrind', 'valgrind', args, env);
    await waitForHttp(`http://127.0.0.1:${adminPort}/readyz`, { status: 200, member: sy, timeoutMs: 300_000 });
    const url = `http://127.0.0.1:${port}${predictPath}`;
    console.log(`${path.relative(repoRoot, cli)} under callgrind (pid ${sy.pid}), policy ${policyKind}, ${connections} connections: ${warmup} warm-up requests, then ${measured} measured`);
    await sendFixed(url, connections, warmup);
    control(['-i', 'on', String(sy.pid)]);
    const result = await sendFixed(url, connections, measured);
    control(['-i', 'off', String(sy.pid)]);
    // SIGTERM drains and exits; callgrind writes one file per thread then (instrumentation is off, so shutdown is not counted).
    await group.stop(sy, 120_000);
    const mainFile = readdirSync(dir).find((f) => f.startsWith('callgrind.out') && f.endsWith('-01'));
    if (mainFile === undefined) throw new Error(`no main-thread callgrind file in ${dir}: ${readdirSync(dir).join(', ')}\n${sy.output()}`);
    const total = callgrindTotal(readFileSync(path.join(dir, mainFile), 'utf8'));
    const run: CallgrindRun = { requests: measured, completed: result.requests.total, non2xx: result.non2xx, mainThreadInstructions: total, perRequest: total / result.requests.total };
    console.log(JSON.stringify(run));
    if (process.env.BENCH_CG_KEEP !== undefined) {
      const keep = path.resolve(process.env.BENCH_CG_KEEP);
      writeFileSync(keep, readFileSync(path.join(dir, mainFile)));
      console.log(`main-thread profile kept at ${keep} (callgrind_annotate ${keep})`);
    }
    console.log(`main thread: ${(run.perRequest / 1000).toFixed(1)}k instructions per request (${result.requests.total} requests, ${result.non2xx} non-2xx)`);
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await main();
  } catch (err) {
    console.error(`callgrind run failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
}
