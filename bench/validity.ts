// `npm run bench:validity`: how often the real controller rolls back a good model, advances at the margin, and catches a bad one.
//
// Every cell is a `switchyard simulate` scenario run through the simulate driver (src/simulate/driver.ts): the route's
// compiled policy with default guardrails, the real windows and controller on a virtual clock looking every 250 ms,
// Poisson traffic, many seeded replicates. The grid: A/A with lognormal, bimodal and Pareto latency; fixed canary
// splits 50/50, 10/90 and 1/99 and the progressive rollout [1, 5, 25, 50, 100]; requests without keys and sticky
// users with heavy-tailed activity (lognormal sigma 1 and 2); a challenger exactly at each margin (error rate +margin,
// latency x ratio); harmful challengers (+2 and +5 pp errors, latency x1.5 and x2). Cells and replicate counts are
// chosen by environment variables (see benchValidityConfig); the markdown goes to stdout and everything to
// bench/results/<timestamp>-validity.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defaultGuardrails } from '../src/config/policy-schema.js';
import { scaled, type LatencyDistribution } from '../src/simulate/distributions.js';
import { defaultWorkers, ReplicatePool, type ReplicateResult } from '../src/simulate/driver.js';
import { resolveScenario, type ScenarioInput } from '../src/simulate/scenario.js';
import { median, proportion, summarize, type Proportion, type SimulationSummary } from '../src/simulate/summary.js';
import { findRepoRoot } from './lib/repo.js';

export const latencies = ['lognormal', 'bimodal', 'pareto'] as const;
export const splits = ['50/50', '10/90', '1/99', 'rollout'] as const;
type LatencyName = (typeof latencies)[number];
type SplitName = (typeof splits)[number];
type Users = 'per-request' | 'sticky σ1' | 'sticky σ2';
type Kind = 'aa' | 'margin' | 'harmful';

/** One cell of the grid: a scenario and what it measures. */
export interface Cell {
  name: string;
  kind: Kind;
  latency: LatencyName;
  split: SplitName;
  users: Users;
  effect: string;
  ratePerSecond: number;
  durationSeconds: number;
  scenario: ScenarioInput;
}

/** Settings read from the environment. */
export interface ValidityConfig {
  replicates: number;
  workers: number;
  seed: number;
  /** Comma list of substrings; a cell runs when its name contains one (empty: every cell). */
  cells: string[];
  /** Multiplies every cell's duration (a smoke run can shorten them). */
  durationScale: number;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number, integer = true): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0) || (integer && !Number.isInteger(value))) throw new Error(`${name} must be a positive ${integer ? 'whole ' : ''}number, got "${raw}"`);
  return value;
}

/** Reads VALIDITY_REPLICATES (400), VALIDITY_WORKERS (one per core), VALIDITY_SEED, VALIDITY_CELLS, VALIDITY_DURATION_SCALE. */
export function benchValidityConfig(env: NodeJS.ProcessEnv = process.env): ValidityConfig {
  const cells = (env.VALIDITY_CELLS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const config = {
    replicates: positive(env, 'VALIDITY_REPLICATES', 400),
    workers: positive(env, 'VALIDITY_WORKERS', defaultWorkers()),
    seed: positive(env, 'VALIDITY_SEED', 20_260_101),
    cells,
    durationScale: positive(env, 'VALIDITY_DURATION_SCALE', 1, false),
  };
  const names = grid(config.durationScale).map((c) => c.name);
  for (const filter of cells) if (!names.some((n) => n.includes(filter))) throw new Error(`VALIDITY_CELLS: "${filter}" matches no cell; cells are ${names.join(', ')}`);
  return config;
}

/** The champion's behaviour in every cell: 1 % errors and the cell's latency. */
const BASE_ERROR_RATE = 0.01;
const latencyOf: Record<LatencyName, LatencyDistribution> = {
  lognormal: { dist: 'lognormal', median: 80, sigma: 0.5 },
  // Two modes (a cache hit and a miss, say): 90 % around 60 ms, 10 % around 400 ms.
  bimodal: {
    dist: 'mixture',
    components: [
      { weight: 0.9, dist: 'lognormal', median: 60, sigma: 0.3 },
      { weight: 0.1, dist: 'lognormal', median: 400, sigma: 0.3 },
    ],
  },
  // Tail index 1.5 from 50 ms: p99 about 1.08 s, infinite variance; the issue's heavy-tailed case.
  pareto: { dist: 'pareto', scale: 50, shape: 1.5 },
};
const percentOf: Record<Exclude<SplitName, 'rollout'>, number> = { '50/50': 50, '10/90': 10, '1/99': 1 };
/** The progressive rollout every rollout cell uses (the policy schema's example), with its default step length. */
const ROLLOUT_STEPS = [1, 5, 25, 50, 100];

function routePolicy(split: SplitName): Record<string, unknown> {
  return {
    name: 'bench',
    match: { pathPrefix: '/v1/models/m' },
    champion: { name: 'm-v1', url: 'http://127.0.0.1:9001' },
    challengers: [{ name: 'm-v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent: split === 'rollout' ? 0 : percentOf[split] }],
    stickiness: { header: 'x-user-id' },
    ...(split === 'rollout' ? { rollout: { steps: ROLLOUT_STEPS } } : {}),
  };
}

/**
 * The cells. Fixed splits get 50 req/s for 30 minutes (A/A and at the margin: the false-alarm horizon). Rollouts get
 * 200 req/s for up to an hour (an A/A rollout should finish well within it). Harmful challengers get 200 req/s for up
 * to an hour: each replicate stops at its rollback, so the horizon only bounds the undetected ones.
 */
export function grid(durationScale = 1): Cell[] {
  const cells: Cell[] = [];
  // The tolerated error rate over the champion's: absolute margin plus the relative one on the champion's rate.
  const margin = defaultGuardrails.errorRate.margin + defaultGuardrails.errorRate.relativeMargin * BASE_ERROR_RATE;
  const ratio = defaultGuardrails.latency.ratio;
  const add = (kind: Kind, latency: LatencyName, split: SplitName, users: Users, effect: string, challenger: { errorRate: number; latencyMs: LatencyDistribution }) => {
    const fixedAa = kind !== 'harmful' && split !== 'rollout';
    const ratePerSecond = fixedAa ? 50 : 200;
    const durationSeconds = Math.max(1, Math.round((fixedAa ? 1_800 : 3_600) * durationScale));
    const name = [kind, latency, split.replace('/', '-'), users === 'per-request' ? '' : users.replace('sticky σ', 'sticky'), effect === 'none' ? '' : effect.replace(/[^a-z0-9.]+/gi, '')].filter((s) => s !== '').join('-');
    cells.push({
      name,
      kind,
      latency,
      split,
      users,
      effect,
      ratePerSecond,
      durationSeconds,
      scenario: {
        policy: { routes: [routePolicy(split)] },
        route: 'bench',
        durationSeconds,
        ratePerSecond,
        ...(users === 'per-request' ? {} : { users: { count: 20_000, activitySigma: users === 'sticky σ1' ? 1 : 2 } }),
        arms: { 'm-v1': { errorRate: BASE_ERROR_RATE, latencyMs: latencyOf[latency] }, 'm-v2': challenger },
      },
    });
  };
  const base = (latency: LatencyName) => ({ errorRate: BASE_ERROR_RATE, latencyMs: latencyOf[latency] });
  for (const latency of latencies) for (const split of splits) add('aa', latency, split, 'per-request', 'none', base(latency));
  for (const users of ['sticky σ1', 'sticky σ2'] as const) for (const split of ['50/50', '10/90', 'rollout'] as const) add('aa', 'lognormal', split, users, 'none', base('lognormal'));
  for (const split of splits) {
    add('margin', 'lognormal', split, 'per-request', `errors +${(margin * 100).toFixed(0)}pp`, { ...base('lognormal'), errorRate: BASE_ERROR_RATE + margin });
    add('margin', 'lognormal', split, 'per-request', `latency x${ratio}`, { ...base('lognormal'), latencyMs: scaled(latencyOf.lognormal, ratio) });
  }
  for (const split of splits) {
    add('harmful', 'lognormal', split, 'per-request', 'errors +2pp', { ...base('lognormal'), errorRate: BASE_ERROR_RATE + 0.02 });
    add('harmful', 'lognormal', split, 'per-request', 'errors +5pp', { ...base('lognormal'), errorRate: BASE_ERROR_RATE + 0.05 });
    add('harmful', 'lognormal', split, 'per-request', 'latency x1.5', { ...base('lognormal'), latencyMs: scaled(latencyOf.lognormal, 1.5) });
    add('harmful', 'lognormal', split, 'per-request', 'latency x2', { ...base('lognormal'), latencyMs: scaled(latencyOf.lognormal, 2) });
  }
  return cells;
}

/** A median with a distribution-free 95 % interval from order statistics (undetected replicates count as infinite). */
export interface MedianEstimate {
  median: number | null;
  ci95: [number, number] | null;
  of: number;
}

export function medianWithInterval(values: readonly number[]): MedianEstimate {
  const n = values.length;
  if (n === 0) return { median: null, ci95: null, of: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  // Ranks n/2 ± 0.98·√n (normal approximation to Binomial(n, 1/2)), 1-based.
  const half = 0.98 * Math.sqrt(n);
  const lower = Math.max(1, Math.floor(n / 2 - half));
  const upper = Math.min(n, Math.ceil(n / 2 + 1 + half));
  return { median: median(sorted), ci95: [sorted[lower - 1]!, sorted[upper - 1]!], of: n };
}

/** What a cell measured. */
export interface CellResult {
  cell: Omit<Cell, 'scenario'>;
  replicates: number;
  seconds: number;
  summary: SimulationSummary;
  /** Rolled back (a false rollback in A/A and at-margin cells; a detection in harmful ones). */
  rollbacks: Proportion;
  /** Advanced a rollout step (rollout) or judged promotable (fixed split): the decision "confidently within the margin". */
  advanced: Proportion;
  /** Promoted (rollout) or judged promotable (fixed split). */
  promoted: Proportion;
  srmFlagged: Proportion;
  /** Challenger requests before the rollback; infinite when never rolled back. */
  requestsToDetect: MedianEstimate;
  secondsToDetect: MedianEstimate;
  secondsToPromote: number | null;
}

export function measure(cell: Cell, results: readonly ReplicateResult[], seconds: number): CellResult {
  const n = results.length;
  const summary = summarize(results);
  const rollout = cell.split === 'rollout';
  const count = (f: (r: ReplicateResult) => boolean) => results.filter(f).length;
  const { scenario: _scenario, ...described } = cell;
  return {
    cell: described,
    replicates: n,
    seconds,
    summary,
    rollbacks: proportion(summary.counts.rolled_back, n),
    advanced: proportion(count((r) => (rollout ? r.steps.length > 0 || r.outcome === 'promoted' : r.promotableAtSeconds !== null)), n),
    promoted: proportion(count((r) => (rollout ? r.outcome === 'promoted' : r.promotableAtSeconds !== null)), n),
    srmFlagged: summary.srmFlagged,
    requestsToDetect: medianWithInterval(results.map((r) => (r.outcome === 'rolled_back' ? (r.requests['m-v2'] ?? 0) : Infinity))),
    secondsToDetect: medianWithInterval(results.map((r) => (r.outcome === 'rolled_back' ? r.atSeconds : Infinity))),
    secondsToPromote: summary.medianSeconds.promoted,
  };
}

/** A target and whether it was met. */
export interface TargetCheck {
  target: string;
  cell: string;
  value: string;
  pass: boolean;
  /** True when the replicate count is below what the target asks for (the verdict is indicative only). */
  underpowered: boolean;
}

const FULL = 400;
const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const rateWithCi = (p: Proportion) => (p.rate === null ? '-' : `${pct(p.rate)} [${pct(p.ci95![0])}, ${pct(p.ci95![1])}]`);
const finite = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : '∞');
const medianText = (m: MedianEstimate) => (m.median === null ? '-' : `${finite(m.median)} [${finite(m.ci95![0])}, ${finite(m.ci95![1])}]`);

/** Checks the issue's targets against the measured cells. */
export function checkTargets(results: readonly CellResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const bounded = (p: Proportion) => p.rate !== null && p.rate <= 0.05 && (p.of < FULL || p.ci95![1] <= 0.08);
  for (const r of results) {
    const name = r.cell.name;
    const underpowered = r.replicates < FULL;
    if (r.cell.kind === 'aa' || r.cell.kind === 'margin') {
      checks.push({ target: 'false rollbacks ≤ 5 % (upper 95 % bound ≤ 8 % with ≥ 400 replicates)', cell: name, value: rateWithCi(r.rollbacks), pass: bounded(r.rollbacks), underpowered });
    }
    if (r.cell.kind === 'margin') {
      checks.push({ target: 'P(advance | exactly at the margin) ≤ 5 % (upper bound ≤ 8 %)', cell: name, value: rateWithCi(r.advanced), pass: bounded(r.advanced), underpowered });
    }
    if (r.cell.kind === 'aa' && r.cell.users !== 'per-request') {
      checks.push({ target: 'sample-ratio false flags ≤ 0.1 % (sticky users)', cell: name, value: rateWithCi(r.srmFlagged), pass: r.srmFlagged.rate !== null && r.srmFlagged.rate <= 0.001, underpowered: r.replicates < 1_000 });
    }
    if (r.cell.kind === 'harmful') {
      checks.push({ target: 'no harmful challenger promoted (fixed split: judged promotable)', cell: name, value: `${r.promoted.count} of ${r.promoted.of}`, pass: r.promoted.count === 0, underpowered });
      if (r.cell.effect === 'errors +2pp' && r.cell.split === '10/90') {
        checks.push({ target: '+2 pp errors at 10/90 detected in ≥ 99 %', cell: name, value: rateWithCi(r.rollbacks), pass: r.rollbacks.rate !== null && r.rollbacks.rate >= 0.99, underpowered });
      }
      if (r.cell.effect === 'latency x1.5') {
        checks.push({ target: 'latency x1.5 detected within 300 challenger requests (median)', cell: name, value: medianText(r.requestsToDetect), pass: r.requestsToDetect.median !== null && r.requestsToDetect.median <= 300, underpowered });
      }
    }
  }
  return checks;
}

function byCause(r: CellResult): string {
  const entries = Object.entries(r.summary.rollbacksByReason);
  return entries.length === 0 ? '-' : entries.map(([reason, p]) => `${reason} ${pct(p.rate)}`).join(', ');
}

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  // A "|" inside a cell (as in "P(advance | at the margin)") would end the cell.
  const line = (cells: readonly string[]) => `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(headers), `|${headers.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/** The markdown report: one table per kind of cell, then the targets. */
export function renderMarkdown(results: readonly CellResult[], checks: readonly TargetCheck[], header: string): string {
  const parts = [header];
  const of = (kind: Kind) => results.filter((r) => r.cell.kind === kind);
  const describe = (r: CellResult) => [r.cell.latency, r.cell.split, r.cell.users];
  if (of('aa').length > 0) {
    parts.push(
      '',
      '### A/A: false rollbacks',
      '',
      table(
        ['latency', 'split', 'users', 'n', 'false rollbacks [95% CI]', 'by cause', 'SRM flagged [95% CI]', 'promoted or promotable [95% CI]', 'median time to promote'],
        of('aa').map((r) => [...describe(r), String(r.replicates), rateWithCi(r.rollbacks), byCause(r), rateWithCi(r.srmFlagged), rateWithCi(r.promoted), r.secondsToPromote === null ? '-' : `${(r.secondsToPromote / 60).toFixed(1)} min`]),
      ),
    );
  }
  if (of('margin').length > 0) {
    parts.push(
      '',
      '### Exactly at the margin: rollbacks and advances are both errors',
      '',
      table(
        ['challenger', 'split', 'n', 'rolled back [95% CI]', 'by cause', 'P(advance a step) [95% CI]', 'SRM flagged [95% CI]'],
        of('margin').map((r) => [r.cell.effect, r.cell.split, String(r.replicates), rateWithCi(r.rollbacks), byCause(r), rateWithCi(r.advanced), rateWithCi(r.srmFlagged)]),
      ),
    );
  }
  if (of('harmful').length > 0) {
    parts.push(
      '',
      '### Harmful challengers: power, requests to detect, promotions',
      '',
      table(
        ['challenger', 'split', 'n', 'power (rolled back) [95% CI]', 'by cause', 'median challenger requests to detect [95% CI]', 'median seconds to detect [95% CI]', 'promoted or promotable [95% CI]'],
        of('harmful').map((r) => [r.cell.effect, r.cell.split, String(r.replicates), rateWithCi(r.rollbacks), byCause(r), medianText(r.requestsToDetect), medianText(r.secondsToDetect), rateWithCi(r.promoted)]),
      ),
    );
  }
  parts.push(
    '',
    '### Targets',
    '',
    table(
      ['target', 'cell', 'measured', 'verdict'],
      checks.map((c) => [c.target, c.cell, c.value, `${c.pass ? 'PASS' : 'MISS'}${c.underpowered ? ' (too few replicates to confirm)' : ''}`]),
    ),
  );
  const missed = checks.filter((c) => !c.pass).length;
  parts.push('', `${checks.length - missed} of ${checks.length} target checks pass${missed > 0 ? `; ${missed} MISS` : ''}.`);
  return parts.join('\n');
}

/** A cell's seed: the run's seed mixed with the cell's name (FNV-1a), so a cell repeats whichever other cells run. */
export function cellSeed(seed: number, name: string): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** Runs the selected cells on one worker pool and writes the report. */
export async function runValidityBench(config: ValidityConfig): Promise<{ file: string; markdown: string; results: CellResult[] }> {
  const cells = grid(config.durationScale).filter((c) => config.cells.length === 0 || config.cells.some((f) => c.name.includes(f)));
  const started = Date.now();
  const pool = new ReplicatePool(config.workers);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`validity bench: ${cells.length} cells x ${config.replicates} replicates on ${pool.size} worker${pool.size === 1 ? '' : 's'}`);
  let results: CellResult[];
  try {
    results = await Promise.all(
      cells.map(async (cell) => {
        const scenario = await resolveScenario({ ...cell.scenario, seed: cellSeed(config.seed, cell.name), replicates: config.replicates }, { baseDir: process.cwd(), source: `cell ${cell.name}` });
        const cellStarted = Date.now();
        const replicates = await pool.run(scenario, config.replicates);
        const result = measure(cell, replicates, (Date.now() - cellStarted) / 1000);
        log(`  ${cell.name}: rolled back ${pct(result.rollbacks.rate)}, advanced ${pct(result.advanced.rate)}, promoted ${pct(result.promoted.rate)} (done at ${((Date.now() - started) / 1000).toFixed(0)} s)`);
        return result;
      }),
    );
  } finally {
    await pool.close();
  }
  const checks = checkTargets(results);
  const elapsed = (Date.now() - started) / 1000;
  const header = [
    `## Validity bench (${new Date().toISOString()})`,
    '',
    `${cells.length} cells, ${config.replicates} replicates each, seed ${config.seed}, ${elapsed.toFixed(0)} s on ${pool.size} worker${pool.size === 1 ? '' : 's'} (${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}).`,
    `Default guardrails (alpha ${defaultGuardrails.alpha}, error margin ${defaultGuardrails.errorRate.margin} + ${defaultGuardrails.errorRate.relativeMargin} × the champion's rate, latency ratio ${defaultGuardrails.latency.ratio}); looks every 250 ms; champion 1 % errors.`,
    'Fixed splits: 50 req/s for 30 min; rollouts [1, 5, 25, 50, 100] and harmful challengers: 200 req/s for up to 60 min' + (config.durationScale !== 1 ? ` (durations scaled by ${config.durationScale})` : '') + '.',
  ].join('\n');
  const markdown = renderMarkdown(results, checks, header);
  const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
  const dir = path.join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}-validity.json`);
  writeFileSync(file, `${JSON.stringify({ config, elapsedSeconds: elapsed, machine: { cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version }, guardrails: defaultGuardrails, cells: results, targets: checks, markdown }, null, 2)}\n`);
  return { file, markdown, results };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const { file, markdown } = await runValidityBench(benchValidityConfig());
    console.log(markdown);
    console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
  } catch (err) {
    console.error(`bench:validity: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
