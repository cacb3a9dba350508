// `switchyard backtest --config <policy> <pair-logs>...`: what this policy would have done with the recorded traffic.
import { parseArgs } from 'node:util';
import { loadPolicy } from '../config/load.js';
import type { GuardrailVerdict } from '../control/guardrails.js';
import { emptyCounts, replay, toReplayRecords, type BacktestEvent, type BacktestResult, type RecordedLine, type RouteBacktest } from '../simulate/backtest.js';
import { expand, readRecords } from './report.js';
import { helpOption } from './options.js';
import { renderTable } from './table.js';

const usage = `Usage: switchyard backtest --config <policy-file-or-dir> <pair-logs>... [--route r] [--json] [--interval-ms N]
Replays the served and pair records of prediction logs (pairs-*.ndjson, also .gz; a directory means every such file
in it) in time order through the policy's real windows and controller, ticking every control interval of record
time, and prints when the policy would have rolled back, advanced a rollout step or promoted, with the evidence.
The records keep the split they were served with: where the policy's rollout step differs from it, the
sample-ratio check says so and holds the rollout. The log holds what the recorder wrote: sampled served records
(predictions.sampleRate) and every pair, but no served record of a request that got no response at all (connect, timeout
or reset without fallback), so such failures cannot count here. The records are held in memory to be sorted.
  --route r         replay only this route (default: every route of the policy found in the logs)
  --interval-ms N   the control interval (default 250, as SWITCHYARD_CONTROL_INTERVAL_MS)
  --json            the events, the evidence and the final analysis as JSON`;

const num = (x: number | null, digits = 4) => (x === null || !Number.isFinite(x) ? '-' : Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(digits) : x.toExponential(2));
const pValue = (x: number | null) => (x === null ? '-' : x < 1e-4 ? x.toExponential(1) : x.toFixed(4));

function evidenceTable(verdicts: readonly GuardrailVerdict[]): string {
  return renderTable(
    ['GUARDRAIL', 'STATE', 'ESTIMATE', 'THRESHOLD', 'INTERVAL', 'P', 'N CHAMPION', 'N CHALLENGER'],
    verdicts.map((v) => [v.name, v.state, num(v.estimate), num(v.threshold), v.csLower === null || v.csUpper === null ? '-' : `${num(v.csLower)} .. ${num(v.csUpper)}`, pValue(v.pValue), String(v.nChampion), String(v.nChallenger)]),
  )
    .split('\n')
    .map((line) => `      ${line}`)
    .join('\n');
}

function describe(event: BacktestEvent): string {
  const when = `${event.at}  (+${event.atSeconds.toFixed(1)} s)`;
  switch (event.type) {
    case 'rollback':
      return `${when}  ROLLBACK by ${event.reason ?? 'unknown'}`;
    case 'promote':
      return `${when}  PROMOTE (the challenger serves 100%)`;
    case 'step':
      return event.step === 0 ? `${when}  rollout starts at step 0 (${event.percent ?? '?'}%)` : `${when}  advance to step ${event.step ?? '?'} (${event.percent ?? '?'}%)`;
  }
}

function renderRoute(report: RouteBacktest): string {
  const lines = [`route ${report.route}${report.challenger ? ` (challenger ${report.challenger})` : ''}:`];
  if (report.events.length === 0) lines.push('  no rollback, step or promotion');
  for (const event of report.events) {
    lines.push(`  ${describe(event)}`);
    // The first step is taken before any evidence; later ones and the outcome show what the controller judged.
    if (event.type !== 'step' || event.step !== 0) {
      lines.push(evidenceTable(event.evidence));
      if (event.srm) lines.push(`      sample-ratio check: p ${pValue(event.srm.pValue)} (${event.srm.ok === false ? 'flagged' : 'ok'})`);
    }
  }
  const final = report.final;
  if (final) {
    const last = report.events[report.events.length - 1];
    if (!last || (last.type !== 'rollback' && last.type !== 'promote')) {
      lines.push(`  at the end: phase ${final.phase}, decision ${final.decision}, challenger served ${final.servedPercent}%`);
      lines.push(evidenceTable(final.guardrails));
      lines.push(`      sample-ratio check: p ${pValue(final.srm.pValue)} (${final.srm.ok === false ? 'flagged: the records keep the split they were served with' : 'ok'})`);
    }
    lines.push(`  counted: ${final.arms.map((a) => `${a.name} ${a.requests} requests, ${a.failures} failures`).join('; ')}`);
  }
  return lines.join('\n');
}

function render(result: BacktestResult, files: number, skipped: number): string {
  const c = result.counts;
  const left = [
    c.otherType > 0 ? `${c.otherType} feedback or other records` : '',
    c.otherRoute > 0 ? `${c.otherRoute} of other routes` : '',
    c.unknownVariant > 0 ? `${c.unknownVariant} by variants the policy's route does not have` : '',
    c.malformed > 0 ? `${c.malformed} malformed` : '',
    c.afterOutcome > 0 ? `${c.afterOutcome} after the rollback or promotion` : '',
    skipped > 0 ? `${skipped} unreadable lines` : '',
  ].filter((s) => s !== '');
  const header = `replayed ${c.replayed} of ${c.read} records from ${files} file${files === 1 ? '' : 's'}${result.from ? `, ${result.from} .. ${result.to}` : ''}${left.length > 0 ? ` (left out: ${left.join(', ')})` : ''}`;
  return [header, ...result.routes.map(renderRoute)].join('\n\n');
}

export async function backtestCommand(args: string[]): Promise<number> {
  let parsed;
  let intervalMs = 250;
  try {
    parsed = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, route: { type: 'string' }, json: { type: 'boolean' }, 'interval-ms': { type: 'string' }, ...helpOption }, allowPositionals: true, strict: true });
    const interval = parsed.values['interval-ms'];
    if (interval !== undefined) {
      intervalMs = Number(interval);
      if (!Number.isInteger(intervalMs) || intervalMs < 1) throw new Error(`--interval-ms must be a whole number of milliseconds of at least 1, got "${interval}"`);
    }
  } catch (err) {
    console.error(`switchyard backtest: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage);
    return 0;
  }
  if (parsed.values.config === undefined || parsed.positionals.length === 0) {
    console.error(`switchyard backtest: ${parsed.values.config === undefined ? '--config <policy> is required' : 'name at least one prediction log file or directory'}\n\n${usage}`);
    return 2;
  }
  let loaded;
  let files: string[];
  try {
    loaded = await loadPolicy(parsed.values.config);
    files = await expand(parsed.positionals);
  } catch (err) {
    console.error(`switchyard backtest: ${(err as Error).message}`);
    return 1;
  }
  const names = loaded.policy.routes.map((r) => r.name);
  const wanted = parsed.values.route;
  if (wanted !== undefined && !names.includes(wanted)) {
    console.error(`switchyard backtest: --route: the policy has no route "${wanted}" (its routes: ${names.join(', ')})`);
    return 2;
  }
  const routes = new Set(wanted !== undefined ? [wanted] : names);
  const skipped = { lines: 0 };
  const lines: RecordedLine[] = [];
  for await (const record of readRecords(files, skipped)) lines.push(record as RecordedLine);
  const counts = emptyCounts();
  const records = toReplayRecords(lines, routes, counts);
  lines.length = 0;
  const seen = new Set(records.map((r) => r.route));
  const policy = { routes: loaded.policy.routes.filter((r) => seen.has(r.name) || r.name === wanted) };
  const result = policy.routes.length === 0 ? { from: null, to: null, counts, routes: [] } : await replay(policy, loaded.version, records, { intervalMs, counts });
  if (parsed.values.json) console.log(JSON.stringify({ files, skippedLines: skipped.lines, ...result }, null, 2));
  else console.log(result.routes.length === 0 ? `no served or pair records of ${[...routes].join(', ')} in ${files.length} file${files.length === 1 ? '' : 's'}` : render(result, files.length, skipped.lines));
  return 0;
}
