// `switchyard report <pairs.ndjson>...` (formerly `analyze`): reads prediction logs (plain or gzip-rotated) and prints an offline per-route report.
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createGunzip } from 'node:zlib';
import { buildPairsReport, type LogRecord, type RouteReport } from '../analysis/pairs-report.js';
import { readJetStreamRecords } from '../record/sinks/jetstream-reader.js';
import { helpOption } from './options.js';

const usage = [
  'Usage: switchyard report <file-or-dir>... [--json]',
  '       switchyard report --nats <nats://host:port> --stream <name> [--subject <subject>] [--json]',
  'Offline report over prediction logs: reads pairs-*.ndjson and pairs-*.ndjson.gz files (a directory means every such',
  'file in it), or every record stored in a JetStream stream that the jetstream sink wrote (--subject: one replica\'s',
  'records only). For the live guardrails of a running route use `switchyard analysis <route>`.',
].join('\n');

/** The log files behind the arguments: files as given, and every .ndjson/.ndjson.gz file of a directory (sorted). */
export async function expand(targets: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const target of targets) {
    const info = await stat(target);
    if (info.isDirectory()) {
      for (const name of (await readdir(target)).sort()) if (/\.ndjson(\.gz)?$/.test(name)) files.push(path.join(target, name));
    } else files.push(target);
  }
  return files;
}

/** Every record of the files in order (gzip by extension); unreadable lines are counted in `skipped`. */
export async function* readRecords(files: string[], skipped: { lines: number }): AsyncGenerator<LogRecord> {
  for (const file of files) {
    const raw = createReadStream(file);
    const input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      if (line.trim() === '') continue;
      try {
        yield JSON.parse(line) as LogRecord;
      } catch {
        // A torn last line (crash mid-write) is skipped and reported, not fatal.
        skipped.lines++;
      }
    }
  }
}

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const num = (x: number | null, digits = 3) => (x === null ? '-' : x.toFixed(digits));
const p = (x: number | null) => (x === null ? '-' : x < 1e-4 ? x.toExponential(1) : x.toFixed(4));

/** The exact distribution and the normal approximation answer differently for small samples: say which one was used. */
function wilcoxonMethodLabel(method: RouteReport['latency']['wilcoxonMethod']): string {
  return method === 'exact' ? ' (exact)' : method === 'approx' ? ' (normal approx.)' : '';
}

function render(report: RouteReport): string {
  const a = report.agreement;
  const l = report.labelled;
  const lines = [
    `route ${report.route}: ${report.pairs} pairs (${report.complete} complete, ${report.unparsed} unparsed)`,
    `  agreement        ${a.agree}/${a.of} = ${pct(a.rate)}  95% CI ${a.ci95 ? `${pct(a.ci95[0])} .. ${pct(a.ci95[1])}` : '-'}`,
    `  labelled pairs   ${l.n}: champion ${pct(l.championAccuracy)}, challenger ${pct(l.challengerAccuracy)}; McNemar b=${l.mcNemar.b} c=${l.mcNemar.c} p=${p(l.mcNemar.pValue)}`,
    `  score diff       n=${report.scoreDifference.n} mean ${num(report.scoreDifference.meanDiff)} (challenger - champion) p=${p(report.scoreDifference.pValue)}`,
    `  latency          n=${report.latency.n} median champion ${num(report.latency.championMedianMs, 2)} ms, challenger ${num(report.latency.challengerMedianMs, 2)} ms; Wilcoxon p=${p(report.latency.wilcoxonPValue)}${wilcoxonMethodLabel(report.latency.wilcoxonMethod)}`,
  ];
  for (const [variant, s] of Object.entries(report.served)) lines.push(`  served ${variant.padEnd(10)} ${s.requests} requests, ${s.failures} failures`);
  for (const [variant, s] of Object.entries(report.streaming)) {
    lines.push(`  stream ${variant.padEnd(10)} ${s.streams} streams: TTFT median ${num(s.ttftMedianMs, 1)} ms, p95 ${num(s.ttftP95Ms, 1)} ms; gaps over threshold ${pct(s.gapsOverShare)} (streams stalled ${pct(s.stalledShare)}, longest gap p95 ${num(s.maxGapP95Ms, 1)} ms); interrupted ${pct(s.interruptedShare)}; tokens median ${num(s.tokensMedian, 0)}, ${num(s.tokensPerSecondMedian, 1)} tokens/s`);
  }
  return lines.join('\n');
}

export async function reportCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { json: { type: 'boolean' }, nats: { type: 'string' }, stream: { type: 'string' }, subject: { type: 'string' }, ...helpOption }, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`switchyard report: ${(err as Error).message}`);
    return 2;
  }
  const { nats, stream, subject } = parsed.values;
  if (parsed.values.help || (parsed.positionals.length === 0 && nats === undefined && stream === undefined)) {
    console.log(usage);
    return parsed.values.help ? 0 : 2;
  }
  if ((nats === undefined) !== (stream === undefined) || (nats !== undefined && parsed.positionals.length > 0)) {
    console.error('switchyard report: --nats and --stream go together, and read a stream instead of files (give one or the other)');
    return 2;
  }
  if (nats !== undefined && stream !== undefined) {
    const skipped = { lines: 0 };
    const records: LogRecord[] = [];
    try {
      for await (const record of readJetStreamRecords<LogRecord>({ servers: nats, stream, ...(subject === undefined ? {} : { subject }) }, skipped)) records.push(record);
    } catch (err) {
      console.error(`switchyard report: cannot read stream ${stream} at ${nats}: ${(err as Error).message}`);
      return 1;
    }
    print({ source: { nats, stream, subject: subject ?? null } }, records, skipped.lines, parsed.values.json === true);
    return 0;
  }
  let files: string[];
  try {
    files = await expand(parsed.positionals);
  } catch (err) {
    console.error(`switchyard report: ${(err as Error).message}`);
    return 1;
  }
  const skipped = { lines: 0 };
  const records: LogRecord[] = [];
  for await (const record of readRecords(files, skipped)) records.push(record);
  print({ files }, records, skipped.lines, parsed.values.json === true);
  return 0;
}

/** Prints the report of `records` as text, or as JSON with `source` (where they came from) on top. */
function print(source: Record<string, unknown>, records: LogRecord[], skippedLines: number, json: boolean): void {
  const reports = buildPairsReport(records);
  if (json) console.log(JSON.stringify({ ...source, skippedLines, routes: reports }, null, 2));
  else {
    console.log(reports.length === 0 ? 'no records found' : reports.map(render).join('\n\n'));
    if (skippedLines > 0) console.log(`\n(${skippedLines} unreadable lines skipped)`);
  }
}
