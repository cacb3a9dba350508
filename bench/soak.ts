// `npm run bench:soak`: Switchyard under 100 % shadow with distinct keys and large predictions; RSS over time against the memory setting.
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { request } from 'undici';
import { runOpenLoop } from './openloop.js';
import { machine, numberFrom } from './lib/env.js';
import { startSwitchyardProcess } from './lib/fleet.js';
import { scrapeMetrics, sumBy } from './lib/metrics.js';
import { parseLargeKb, predictPath, requestBody, requestHeaders } from './lib/payload.js';
import { cpuDelta, cpuSnapshot, statusKiB } from './lib/proc-stat.js';
import { freePort, waitForHttp, withProcessGroup, type Managed, type ProcessGroup } from './lib/processes.js';
import { findRepoRoot } from './lib/repo.js';
import { recommendedMinMemoryMb, semiSpaceMbFor } from '../src/record/budgets.js';
import { budgetCheck, flatness, soakMarkdown, type MetricsSample, type RssSample, type SoakResult } from './lib/soak-report.js';

/** Settings read from SOAK_* environment variables. */
export interface SoakConfig {
  seconds: number;
  rate: number;
  /** Whole response bodies of the models, in bytes (each request gets one of 16 sizes spread over the range). */
  bodyBytes: { min: number; max: number };
  memoryMb: number;
  /** RSS must be flat from this many seconds on (the "after the first minute"). */
  settleSeconds: number;
  /** Delay of both models before answering, in ms. */
  modelDelayMs: number;
  /** V8 flags of the Switchyard process: by default the production start command's for this memory setting (Helm chart). */
  nodeFlags: string[];
}

/** Reads the SOAK_* knobs; each defaults to the documented run. */
export function soakConfig(env: NodeJS.ProcessEnv = process.env): SoakConfig {
  const memoryMb = Math.round(numberFrom(env, 'SOAK_MEMORY_MB', recommendedMinMemoryMb));
  const config = {
    seconds: numberFrom(env, 'SOAK_SECONDS', 180),
    rate: numberFrom(env, 'SOAK_RATE', 50),
    bodyBytes: parseLargeKb(env.SOAK_BODY_KB ?? '64-200', 'SOAK_BODY_KB'),
    memoryMb,
    settleSeconds: numberFrom(env, 'SOAK_SETTLE_SECONDS', 60),
    modelDelayMs: numberFrom(env, 'SOAK_MODEL_DELAY_MS', 5),
    nodeFlags: (env.SOAK_NODE_FLAGS ?? `--max-semi-space-size=${semiSpaceMbFor(memoryMb)}`).split(/\s+/).filter((flag) => flag !== ''),
  };
  if (config.seconds < 1 || config.rate <= 0) throw new Error('SOAK_SECONDS and SOAK_RATE must be positive');
  return config;
}

/** Room for the largest body: predictions are extracted from whole answers only (a truncated copy is not parsed). */
export function maxResponseBytesFor(bodyBytes: { max: number }): number {
  return Math.min(16 * 1_048_576, Math.max(4 * 1_048_576, bodyBytes.max + 65_536));
}

/** One route, champion m-v1 and a 100 % shadow m-v2, every pair logged with its text prediction and input. */
export function soakPolicy(champion: string, shadow: string, maxResponseBytes: number): string {
  return [
    'routes:',
    '  - name: soak',
    '    match: { pathPrefix: /v1/models/m, methods: [POST] }',
    `    champion: { name: m-v1, url: ${champion} }`,
    '    challengers:',
    `      - { name: m-v2, url: ${shadow}, mode: shadow, percent: 100 }`,
    '    stickiness: { header: x-user-id }',
    `    predictions: { protocol: json, pointer: /predictions/0/text, kind: text, sampleRate: 1, logInputs: true, maxResponseBytes: ${maxResponseBytes} }`,
    '',
  ].join('\n');
}

/** One model in its own process, answering large text predictions. */
async function startModel(group: ProcessGroup, repoRoot: string, model: string, config: SoakConfig): Promise<{ url: string; member: Managed }> {
  const port = await freePort();
  const kb = `${config.bodyBytes.min / 1024}-${config.bodyBytes.max / 1024}`;
  const member = group.start(model, process.execPath, [path.join(repoRoot, 'dist/bench/upstream-stub.js'), '--port', String(port), '--model', model, '--delay-ms', String(config.modelDelayMs), '--large-kb', kb]);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url + predictPath, { status: 200, member });
  return { url, member };
}

/** The metrics the soak follows, from one scrape. */
function metricsSample(tS: number, text: string): MetricsSample {
  return {
    tS,
    bufferBytes: sumBy(text, 'switchyard_recorder_buffer_bytes', ['buffer']),
    budgetBytes: sumBy(text, 'switchyard_recorder_budget_bytes', ['buffer']),
    dropped: sumBy(text, 'switchyard_pairs_dropped_total', ['sink', 'reason']),
    recordsWritten: sumBy(text, 'switchyard_records_written_total', ['sink']),
    pairs: sumBy(text, 'switchyard_pairs_total', ['result']),
    shadowDropped: sumBy(text, 'switchyard_shadow_dropped_total', ['reason']),
    heapSpaceBytes: sumBy(text, 'nodejs_heap_space_size_total_bytes', ['space']),
    externalBytes: sumBy(text, 'nodejs_external_memory_bytes', [])[''] ?? 0,
  };
}

/** Bytes of all files below a directory. */
function bytesBelow(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) bytes += statSync(path.join(entry.parentPath, entry.name)).size;
  return bytes;
}

/** Samples RSS every second and /metrics every 10 s from the moment the load starts, printing progress every 15 s. */
class Sampler {
  readonly rss: RssSample[] = [];
  readonly metrics: MetricsSample[] = [];
  #t0 = 0;
  #timer: NodeJS.Timeout | undefined;
  #scrapes: Promise<void>[] = [];

  constructor(readonly pid: number, readonly adminUrl: string, readonly untilS: number) {}

  /** Seconds since the load started. */
  now(): number {
    return (performance.now() - this.#t0) / 1000;
  }

  start(): void {
    this.#t0 = performance.now();
    let tick = 0;
    const take = () => {
      const tS = this.now();
      const kib = statusKiB(this.pid, 'VmRSS');
      if (kib !== null && tS <= this.untilS + 0.5) this.rss.push({ tS, rssMiB: kib / 1024 });
      if (tick % 10 === 0) this.scrape();
      if (tick % 15 === 0 && kib !== null) {
        const m = this.metrics[this.metrics.length - 1];
        const sum = (c: Record<string, number> | undefined) => Object.values(c ?? {}).reduce((a, b) => a + b, 0);
        console.error(`[soak ${tS.toFixed(0).padStart(4)} s] RSS ${(kib / 1024).toFixed(0)} MiB; records written ${sum(m?.recordsWritten)}, dropped ${sum(m?.dropped)}`);
      }
      tick++;
    };
    take();
    this.#timer = setInterval(take, 1_000);
  }

  /** One /metrics scrape, kept with the time it was asked for (a failed scrape is left out). */
  scrape(): Promise<void> {
    const tS = this.now();
    const job = scrapeMetrics(this.adminUrl).then(
      (text) => void this.metrics.push(metricsSample(tS, text)),
      () => undefined,
    );
    this.#scrapes.push(job);
    return job;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.#scrapes);
    this.metrics.sort((a, b) => a.tS - b.tS);
  }
}

/** Runs one soak and returns its result (also written to bench/results/<timestamp>-soak.json). */
export async function runSoak(config: SoakConfig): Promise<{ result: SoakResult; markdown: string; file: string }> {
  const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
  const startedAt = new Date();
  return withProcessGroup('swy-soak-', async (group, dir) => {
    const champion = await startModel(group, repoRoot, 'm-v1', config);
    const shadow = await startModel(group, repoRoot, 'm-v2', config);
    const maxResponseBytes = maxResponseBytesFor(config.bodyBytes);
    const swy = await startSwitchyardProcess(group, { repoRoot, dir, nodeFlags: config.nodeFlags }, 'soak', soakPolicy(champion.url, shadow.url, maxResponseBytes), { SWITCHYARD_MEMORY_MB: String(config.memoryMb) });
    let exited: string | null = null;
    void swy.member.exited.then((code) => (exited = `exit ${code}: ${swy.member.output().trim().split('\n').slice(-3).join(' | ')}`));
    const check = await request(swy.url + predictPath, { method: 'POST', body: requestBody, headers: { ...requestHeaders } });
    const checked = Buffer.byteLength(await check.body.text());
    if (check.statusCode !== 200 || checked < config.bodyBytes.min) throw new Error(`the route does not answer large predictions: status ${check.statusCode}, ${checked} bytes`);

    const m = machine();
    console.error(`Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}. Soak: ${config.rate} req/s for ${config.seconds} s, bodies ${config.bodyBytes.min}-${config.bodyBytes.max} bytes, SWITCHYARD_MEMORY_MB=${config.memoryMb}`);
    const sampler = new Sampler(swy.member.pid, swy.adminUrl, config.seconds);
    // The bench's own tree (for foreign CPU: it holds every process it started) and each child apart.
    const children = [swy.member.pid, champion.member.pid, shadow.member.pid];
    let cpuBefore = [cpuSnapshot([process.pid]), cpuSnapshot(children)] as const;
    // Distinct keys and ids: nothing is shared between requests, so every buffer sees only new entries.
    const runId = startedAt.getTime().toString(36);
    const load = await runOpenLoop({
      url: swy.url + predictPath,
      rate: config.rate,
      seconds: config.seconds,
      connections: 64,
      preconnect: 8,
      method: 'POST',
      body: requestBody,
      headers: { ...requestHeaders },
      headersFor: (i) => ({ 'x-user-id': `soak-user-${runId}-${i}`, 'x-request-id': `soak-${runId}-${i}` }),
      requestTimeoutMs: 10_000,
      drainTimeoutMs: 10_000,
      onStart: () => {
        cpuBefore = [cpuSnapshot([process.pid]), cpuSnapshot(children)];
        sampler.start();
      },
    });
    const machineCpu = cpuDelta(cpuBefore[0], cpuSnapshot([process.pid]));
    const cpu = cpuDelta(cpuBefore[1], cpuSnapshot(children));
    const pct = (seconds: number) => (100 * seconds) / cpu.seconds;
    // Let the last pairs reach the sink (the recorder flushes every 10 ms, the sink in batches) before the final scrape.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await sampler.scrape();
    await sampler.stop();
    const highWaterKiB = statusKiB(swy.member.pid, 'VmHWM');
    const highWaterMiB = highWaterKiB === null ? null : highWaterKiB / 1024;
    const result: SoakResult = {
      startedAt: startedAt.toISOString(),
      machine: m,
      config: { seconds: config.seconds, rate: config.rate, bodyBytes: config.bodyBytes, memoryMb: config.memoryMb, settleSeconds: config.settleSeconds, maxResponseBytes, nodeFlags: config.nodeFlags },
      requests: {
        sent: load.scheduled,
        answered: load.completed,
        ok2xx: load.ok2xx,
        non2xx: load.non2xx,
        errors: load.errors,
        unanswered: load.unfinished,
        errorCodes: load.errorCodes,
        p50Ms: load.latencyUs.p50 / 1000,
        p99Ms: load.latencyUs.p99 / 1000,
      },
      rss: sampler.rss,
      highWaterMiB,
      metrics: sampler.metrics,
      logBytesOnDisk: bytesBelow(swy.dataDir),
      cpuPct: {
        switchyard: pct(cpu.treeSeconds(swy.member.pid)),
        models: pct(cpu.treeSeconds(champion.member.pid) + cpu.treeSeconds(shadow.member.pid)),
        generator: pct(machineCpu.treeSeconds(process.pid) - children.reduce((sum, pid) => sum + cpu.treeSeconds(pid), 0)),
        foreign: machineCpu.foreignPct,
      },
      exited,
      flatness: flatness(sampler.rss, config.settleSeconds),
      budget: budgetCheck(sampler.rss, highWaterMiB, config.memoryMb),
    };
    const markdown = `${soakMarkdown(result)}\n\n(${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${m.nproc} vCPU ${m.cpuModel}, Node ${m.node})`;
    const resultsDir = path.join(repoRoot, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-soak.json`);
    writeFileSync(file, `${JSON.stringify({ ...result, markdown }, null, 2)}\n`);
    return { result, markdown, file };
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const { markdown, file } = await runSoak(soakConfig());
    console.log(markdown);
    console.log(`\nResults: ${path.relative(process.cwd(), file)}`);
  } catch (err) {
    console.error(`soak failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
}
