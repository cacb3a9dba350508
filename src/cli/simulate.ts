// `switchyard simulate <scenario>`: what the policy would do with the scenario's traffic, over many seeded replicates.
import { parseArgs } from 'node:util';
import { defaultWorkers, outcomes, runScenario } from '../simulate/driver.js';
import { loadScenario } from '../simulate/scenario.js';
import { summarize, type Proportion, type SimulationSummary } from '../simulate/summary.js';
import { helpOption } from './options.js';
import { renderTable } from './table.js';

const usage = `Usage: switchyard simulate <scenario.json> [--json] [--replicates N] [--workers N] [--seed N]
Runs the route's real controller, guardrails and windows over the scenario's synthetic traffic on a virtual clock,
once per replicate (each with its own seeded random stream), and reports how often the policy promotes, rolls back
or is still running at the end, how long it takes, and why it rolls back.
  --json            the replicates and the summary as JSON
  --replicates N    override the scenario's replicate count
  --workers N       worker threads (default: one per core)
  --seed N          override the scenario's seed`;

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const ci = (x: readonly [number, number] | null) => (x === null ? '-' : `${pct(x[0])} .. ${pct(x[1])}`);
const duration = (x: number | null) => (x === null ? '-' : x < 120 ? `${x.toFixed(1)} s` : `${(x / 60).toFixed(1)} min`);
const share = (p: Proportion) => `${p.count} of ${p.of} (${pct(p.rate)}, 95% CI ${ci(p.ci95)})`;

/** The readable report: outcomes, rollback reasons, steps. */
export function renderSimulation(summary: SimulationSummary, header: string): string {
  const parts = [header, ''];
  parts.push(renderTable(['OUTCOME', 'REPLICATES', 'RATE', '95% CI', 'MEDIAN TIME'], outcomes.map((o) => [o, String(summary.counts[o]), pct(summary.rates[o]), ci(summary.intervals95[o]), o === 'running' ? '-' : duration(summary.medianSeconds[o])])));
  const reasons = Object.entries(summary.rollbacksByReason);
  if (reasons.length > 0) {
    parts.push('', renderTable(['ROLLBACK REASON', 'REPLICATES', 'RATE', '95% CI'], reasons.map(([reason, p]) => [reason, String(p.count), pct(p.rate), ci(p.ci95)])));
    parts.push('', `median challenger requests before a rollback: ${summary.medianChallengerRequestsToRollback ?? '-'}`);
  } else parts.push('');
  parts.push(`advanced at least one rollout step: ${share(summary.advancedAStep)}`);
  parts.push(`sample-ratio check flagged the split (holds a rollout): ${share(summary.srmFlagged)}`);
  if (summary.judgedPromotable.count > 0) parts.push(`judged promotable (fixed split, no rollout): ${share(summary.judgedPromotable)}`);
  parts.push(`median highest share served to ${summary.challenger ?? 'the challenger'}: ${summary.medianHighestPercent ?? '-'}%`);
  return parts.join('\n');
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < (flag === '--seed' ? 0 : 1)) throw new Error(`${flag} must be a whole number${flag === '--seed' ? '' : ' of at least 1'}, got "${value}"`);
  return n;
}

export async function simulateCommand(args: string[]): Promise<number> {
  let parsed;
  let replicates: number | undefined;
  let workers: number | undefined;
  let seed: number | undefined;
  try {
    parsed = parseArgs({ args, options: { json: { type: 'boolean' }, replicates: { type: 'string' }, workers: { type: 'string' }, seed: { type: 'string' }, ...helpOption }, allowPositionals: true, strict: true });
    replicates = positiveInt(parsed.values.replicates, '--replicates');
    workers = positiveInt(parsed.values.workers, '--workers');
    seed = positiveInt(parsed.values.seed, '--seed');
  } catch (err) {
    console.error(`switchyard simulate: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (parsed.values.help || parsed.positionals.length !== 1) {
    console.log(usage);
    return parsed.values.help ? 0 : 2;
  }
  const file = parsed.positionals[0]!;
  let scenario;
  try {
    scenario = await loadScenario(file);
  } catch (err) {
    const e = err as Error & { code?: string };
    console.error(`switchyard simulate: ${e.message}`);
    return e.code === 'SWY_ERR_SCENARIO_INVALID' || e.code === 'SWY_ERR_POLICY_INVALID' || e.code === 'SWY_ERR_POLICY_READ' ? 1 : 2;
  }
  if (replicates !== undefined) scenario.replicates = replicates;
  if (seed !== undefined) scenario.seed = seed;
  const threads = Math.min(workers ?? defaultWorkers(), scenario.replicates);
  const started = performance.now();
  let finished = 0;
  const progress = process.stderr.isTTY && !parsed.values.json;
  const results = await runScenario(scenario, {
    workers: threads,
    onResult: () => {
      finished++;
      if (progress) process.stderr.write(`\r${finished}/${scenario.replicates} replicates`);
    },
  });
  if (progress) process.stderr.write('\r\x1b[K');
  const elapsedSeconds = (performance.now() - started) / 1000;
  const summary = summarize(results);
  if (parsed.values.json) {
    console.log(
      JSON.stringify(
        {
          scenario: { file, route: scenario.route, seed: scenario.seed, replicates: scenario.replicates, durationSeconds: scenario.durationSeconds, ratePerSecond: scenario.ratePerSecond, users: scenario.users },
          replicates: results.map(({ challenger: _challenger, ...replicate }) => replicate),
          summary,
          elapsedSeconds,
          workers: threads,
        },
        null,
        2,
      ),
    );
    return 0;
  }
  const users = scenario.users ? `${scenario.users.count} sticky users (activity sigma ${scenario.users.activitySigma})` : 'no sticky keys';
  const header = `route ${scenario.route}: ${scenario.replicates} replicates of ${duration(scenario.durationSeconds)} at ${scenario.ratePerSecond} req/s, ${users}, seed ${scenario.seed} (${elapsedSeconds.toFixed(1)} s on ${threads} worker${threads === 1 ? '' : 's'})`;
  console.log(renderSimulation(summary, header));
  return 0;
}
