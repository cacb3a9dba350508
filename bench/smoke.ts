// Bench smoke check: a 1-2 s autocannon run through a real Switchyard must see 0 errors, 0 non-2xx and both variants.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildApp } from '../src/app.js';
import { runCapacity, type CapacityResult } from './lib/capacity.js';
import { benchPolicy, startSwitchyardProcess } from './lib/fleet.js';
import { predictPath, requestBody, requestHeaders } from './lib/payload.js';
import { ProcessGroup } from './lib/processes.js';
import { findRepoRoot } from './lib/repo.js';
import { servedByVariant } from './lib/served.js';
import { startUpstreamStub } from './upstream-stub.js';

/** Options for {@link runSmoke}. */
export interface SmokeOptions {
  /** Length of the autocannon run in whole seconds; default 1. */
  seconds?: number;
  /** Concurrent connections; default 10. */
  connections?: number;
  /**
   * `in-process` (default) builds Switchyard with buildApp() in this process, so it needs no build step and works under
   * vitest; `process` spawns the built CLI (`dist/src/cli.js serve`), the exact production start path.
   */
  mode?: 'in-process' | 'process';
  /** Challenger share; default 50 so both variants certainly serve traffic. */
  percent?: number;
  /** Upstreams to route to instead of the built-in stub (e.g. a dead port, to see the check fail). */
  upstreams?: { champion: string; challenger: string };
}

/** What the smoke run saw. */
export interface SmokeResult {
  mode: 'in-process' | 'process';
  capacity: CapacityResult;
  /** Requests per serving variant, from Switchyard's /metrics. */
  served: Record<string, number>;
}

/** Error thrown when the smoke run saw a failure; `result` holds the counts. */
export interface SmokeError extends Error {
  code: 'BENCH_SMOKE_FAILED';
  result: SmokeResult;
}

function smokeFailure(problems: string[], result: SmokeResult): SmokeError {
  return Object.assign(new Error(`bench smoke failed: ${problems.join('; ')}`), { code: 'BENCH_SMOKE_FAILED' as const, result });
}

/**
 * Starts a node:http stub model (champion and challenger, unless `upstreams` is given) and Switchyard in front of it, runs autocannon through it,
 * stops everything, and throws a {@link SmokeError} unless there were 0 errors, 0 timeouts, 0 non-2xx, at least one
 * 2xx, and every variant with a non-zero share served traffic.
 */
export async function runSmoke(options: SmokeOptions = {}): Promise<SmokeResult> {
  const mode = options.mode ?? 'in-process';
  const percent = options.percent ?? 50;
  const stub = options.upstreams === undefined ? await startUpstreamStub({ delayMs: 0 }) : null;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'swy-smoke-'));
  const group = new ProcessGroup();
  let close: () => Promise<void> = async () => undefined;
  try {
    const [champion = '', challenger = ''] = stub?.urls ?? [options.upstreams?.champion, options.upstreams?.challenger];
    const policy = benchPolicy(champion, challenger, percent);
    let dataUrl: string;
    let adminUrl: string;
    if (mode === 'in-process') {
      const policyFile = path.join(dir, 'policy.yaml');
      await writeFile(policyFile, policy);
      const app = await buildApp({ configPath: policyFile, host: '127.0.0.1', port: 0, adminPort: 0, defaultMetrics: false });
      close = () => app.close();
      ({ dataUrl, adminUrl } = await app.listen());
    } else {
      const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
      const started = await startSwitchyardProcess(group, { repoRoot, dir, nodeFlags: [] }, 'switchyard-smoke', policy);
      dataUrl = started.url;
      adminUrl = started.adminUrl;
    }
    const capacity = await runCapacity({ url: dataUrl + predictPath, connections: options.connections ?? 10, seconds: options.seconds ?? 1, method: 'POST', body: requestBody, headers: { ...requestHeaders } });
    const result: SmokeResult = { mode, capacity, served: await servedByVariant(adminUrl) };
    const problems: string[] = [];
    if (capacity.errors > 0) problems.push(`${capacity.errors} errors`);
    if (capacity.timeouts > 0) problems.push(`${capacity.timeouts} timeouts`);
    if (capacity.non2xx > 0) problems.push(`${capacity.non2xx} non-2xx responses`);
    if (capacity.ok2xx === 0) problems.push('no 2xx response');
    for (const variant of percent >= 100 ? ['m-v2'] : percent <= 0 ? ['m-v1'] : ['m-v1', 'm-v2']) {
      if (!(result.served[variant] && result.served[variant] > 0)) problems.push(`variant ${variant} served nothing`);
    }
    if (problems.length > 0) throw smokeFailure(problems, result);
    return result;
  } finally {
    await close();
    await group.stopAll();
    await stub?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const mode = process.argv.includes('--process') ? 'process' : 'in-process';
  try {
    const result = await runSmoke({ mode });
    console.log(`bench smoke ok (${mode}): ${result.capacity.ok2xx} 2xx in ${result.capacity.durationS} s, served ${JSON.stringify(result.served)}`);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}
