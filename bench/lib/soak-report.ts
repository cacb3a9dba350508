// The soak bench's verdicts (RSS flat after the first minute, peak under the memory setting) and its markdown report.

/** Resident memory of the Switchyard process at `tS` seconds after the load started. */
export interface RssSample {
  tS: number;
  rssMiB: number;
}

/** What /metrics said at `tS` seconds after the load started (counters since the process started). */
export interface MetricsSample {
  tS: number;
  /** switchyard_recorder_buffer_bytes by buffer. */
  bufferBytes: Record<string, number>;
  /** switchyard_recorder_budget_bytes by buffer. */
  budgetBytes: Record<string, number>;
  /** switchyard_pairs_dropped_total by `sink/reason`. */
  dropped: Record<string, number>;
  /** switchyard_records_written_total by sink. */
  recordsWritten: Record<string, number>;
  /** switchyard_pairs_total by result (agree, disagree, unparsed, unpaired). */
  pairs: Record<string, number>;
  /** switchyard_shadow_dropped_total by reason. */
  shadowDropped: Record<string, number>;
  /** The serving thread's V8 heap by space (nodejs_heap_space_size_total_bytes); the recorder worker's is not in it. */
  heapSpaceBytes: Record<string, number>;
  /** The serving thread's memory outside the V8 heap that V8 knows of (Buffers): nodejs_external_memory_bytes. */
  externalBytes: number;
}

export type Verdict = 'PASS' | 'MISS' | 'n/a';

/** Growth allowed after the first minute: the issue's "flat within 10 %". */
export const flatTolerance = 0.1;

/** RSS after the settling time against RSS when it ended. */
export interface Flatness {
  settleSeconds: number;
  /** The first sample at or after the settling time; null when the run was shorter. */
  atSettleMiB: number | null;
  maxAfterMiB: number | null;
  lastMiB: number | null;
  /** maxAfterMiB / atSettleMiB. */
  ratio: number | null;
  verdict: Verdict;
}

/**
 * Is RSS flat after `settleSeconds`? The largest sample from then on may exceed the one taken then by at most
 * `tolerance` (a share). Falling RSS passes: the target is that memory does not grow, not that it never shrinks.
 */
export function flatness(samples: readonly RssSample[], settleSeconds: number, tolerance = flatTolerance): Flatness {
  const after = samples.filter((s) => s.tS >= settleSeconds).sort((a, b) => a.tS - b.tS);
  const first = after[0];
  if (first === undefined || after.length < 2) return { settleSeconds, atSettleMiB: first?.rssMiB ?? null, maxAfterMiB: null, lastMiB: null, ratio: null, verdict: 'n/a' };
  const maxAfterMiB = Math.max(...after.map((s) => s.rssMiB));
  const ratio = maxAfterMiB / first.rssMiB;
  return { settleSeconds, atSettleMiB: first.rssMiB, maxAfterMiB, lastMiB: after[after.length - 1]!.rssMiB, ratio, verdict: ratio <= 1 + tolerance ? 'PASS' : 'MISS' };
}

/** The peak RSS of the whole run against the memory setting. */
export interface BudgetCheck {
  memoryMb: number;
  /** The larger of the sampled maximum and the kernel's high-water mark (VmHWM), which a 1 s sampler can miss. */
  peakMiB: number;
  sampledMaxMiB: number;
  share: number;
  verdict: Verdict;
}

/** Peak RSS (MiB) must stay at or under the memory setting, the figure a container limit would be set to. */
export function budgetCheck(samples: readonly RssSample[], highWaterMiB: number | null, memoryMb: number): BudgetCheck {
  const sampledMaxMiB = samples.length === 0 ? Number.NaN : Math.max(...samples.map((s) => s.rssMiB));
  const peakMiB = Math.max(sampledMaxMiB, highWaterMiB ?? Number.NEGATIVE_INFINITY);
  if (!Number.isFinite(peakMiB)) return { memoryMb, peakMiB: Number.NaN, sampledMaxMiB, share: Number.NaN, verdict: 'n/a' };
  return { memoryMb, peakMiB, sampledMaxMiB, share: peakMiB / memoryMb, verdict: peakMiB <= memoryMb ? 'PASS' : 'MISS' };
}

/**
 * Mean and largest RSS of each minute of the run: shows a trend that single samples hide. The sample taken as the
 * load ends (t = 180.0x s) counts in the last minute rather than opening one of its own.
 */
export function rssByMinute(samples: readonly RssSample[]): { minute: number; meanMiB: number; maxMiB: number }[] {
  const lastMinute = Math.max(0, Math.floor((Math.round(Math.max(0, ...samples.map((s) => s.tS))) - 1) / 60));
  const minutes = new Map<number, number[]>();
  for (const s of samples) {
    const minute = Math.min(lastMinute, Math.floor(s.tS / 60));
    minutes.set(minute, [...(minutes.get(minute) ?? []), s.rssMiB]);
  }
  return [...minutes.entries()].sort(([a], [b]) => a - b).map(([minute, values]) => ({ minute, meanMiB: values.reduce((a, b) => a + b, 0) / values.length, maxMiB: Math.max(...values) }));
}

/** One row of the RSS-over-time table, with the log's counters as last scraped at or before that time. */
export interface TimelineRow {
  tS: number;
  rssMiB: number;
  heapMiB: number | null;
  newSpaceMiB: number | null;
  externalMiB: number | null;
  bufferedMiB: number | null;
  written: number | null;
  dropped: number | null;
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** The samples nearest to every `everyS` seconds (0, 15, 30, …), plus the last one. */
export function timeline(rss: readonly RssSample[], metrics: readonly MetricsSample[], everyS = 15): TimelineRow[] {
  const sorted = [...rss].sort((a, b) => a.tS - b.tS);
  const last = sorted[sorted.length - 1];
  if (last === undefined) return [];
  const picked: RssSample[] = [];
  for (let t = 0; t <= last.tS; t += everyS) {
    const nearest = sorted.reduce((best, s) => (Math.abs(s.tS - t) < Math.abs(best.tS - t) ? s : best));
    if (!picked.includes(nearest)) picked.push(nearest);
  }
  if (!picked.includes(last)) picked.push(last);
  return picked.map((s) => {
    const scraped = metrics.filter((m) => m.tS <= s.tS + 0.5).sort((a, b) => b.tS - a.tS)[0];
    return {
      tS: s.tS,
      rssMiB: s.rssMiB,
      heapMiB: scraped === undefined ? null : total(scraped.heapSpaceBytes) / 1_048_576,
      newSpaceMiB: scraped === undefined ? null : (scraped.heapSpaceBytes.new ?? 0) / 1_048_576,
      externalMiB: scraped === undefined ? null : scraped.externalBytes / 1_048_576,
      bufferedMiB: scraped === undefined ? null : total(scraped.bufferBytes) / 1_048_576,
      written: scraped === undefined ? null : total(scraped.recordsWritten),
      dropped: scraped === undefined ? null : total(scraped.dropped),
    };
  });
}

/** Everything one soak run measured. */
export interface SoakResult {
  startedAt: string;
  machine: Record<string, string | number>;
  config: { seconds: number; rate: number; bodyBytes: { min: number; max: number }; memoryMb: number; settleSeconds: number; maxResponseBytes: number; nodeFlags: string[] };
  requests: { sent: number; answered: number; ok2xx: number; non2xx: number; errors: number; unanswered: number; errorCodes: Record<string, number>; p50Ms: number; p99Ms: number };
  rss: RssSample[];
  highWaterMiB: number | null;
  metrics: MetricsSample[];
  /** Bytes of the prediction log on disk at the end (NDJSON and rotated .gz files). */
  logBytesOnDisk: number;
  /** CPU in percent of one core over the load, by process. */
  cpuPct: Record<string, number>;
  /** Set when Switchyard exited during the run (e.g. killed for memory): its exit code or signal and last output. */
  exited: string | null;
  flatness: Flatness;
  budget: BudgetCheck;
}

const int = (v: number) => Math.round(v).toLocaleString('en-US');
const mib = (v: number | null) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(0));
const counts = (c: Record<string, number>) => (Object.keys(c).length === 0 ? 'none' : Object.entries(c).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${int(n)}`).join(', ') || 'none');

/** The run as markdown: the two verdicts, requests, the log's counters, buffers against budgets, and RSS over time. */
export function soakMarkdown(r: SoakResult): string {
  const c = r.config;
  const kb = (b: number) => (b / 1024).toFixed(0);
  const body = c.bodyBytes.min === c.bodyBytes.max ? `${kb(c.bodyBytes.min)} kB` : `${kb(c.bodyBytes.min)}-${kb(c.bodyBytes.max)} kB`;
  const f = r.flatness;
  const b = r.budget;
  const end = r.metrics[r.metrics.length - 1];
  const lines = [
    `### Soak: ${c.rate} req/s for ${c.seconds} s, 100 % shadow, ${body} text predictions, SWITCHYARD_MEMORY_MB=${c.memoryMb}${c.nodeFlags.length > 0 ? `, node ${c.nodeFlags.join(' ')}` : ''}`,
    '',
    '| target | measured | verdict |',
    '|---|---|---|',
    `| RSS flat after ${c.settleSeconds} s (max ≤ ${(1 + flatTolerance).toFixed(2)} × RSS at ${c.settleSeconds} s) | at ${c.settleSeconds} s ${mib(f.atSettleMiB)} MiB, max after ${mib(f.maxAfterMiB)} MiB, last ${mib(f.lastMiB)} MiB, ratio ${f.ratio === null ? '–' : f.ratio.toFixed(3)} | ${f.verdict} |`,
    `| peak RSS ≤ SWITCHYARD_MEMORY_MB | peak ${mib(b.peakMiB)} MiB (sampled max ${mib(b.sampledMaxMiB)}, VmHWM ${mib(r.highWaterMiB)}) of ${b.memoryMb} MiB, ${Number.isFinite(b.share) ? (100 * b.share).toFixed(0) : '–'} % | ${b.verdict} |`,
    '',
    `Requests: sent ${int(r.requests.sent)}, answered ${int(r.requests.answered)} (2xx ${int(r.requests.ok2xx)}, other ${int(r.requests.non2xx)}), transport errors ${int(r.requests.errors)}${r.requests.errors > 0 ? ` (${counts(r.requests.errorCodes)})` : ''}, unanswered ${int(r.requests.unanswered)}; served latency p50 ${r.requests.p50Ms.toFixed(1)} ms, p99 ${r.requests.p99Ms.toFixed(1)} ms.`,
    ...(r.exited === null ? [] : [`**Switchyard exited during the run: ${r.exited}.**`]),
  ];
  if (end !== undefined) {
    lines.push(
      `Prediction log: records written ${counts(end.recordsWritten)}; pairs ${counts(end.pairs)}; ${(r.logBytesOnDisk / 1_048_576).toFixed(0)} MiB on disk.`,
      `Drops by sink/reason: ${counts(end.dropped)}. Mirrors not sent: ${counts(end.shadowDropped)}.`,
      `CPU (% of one core over the load): ${Object.entries(r.cpuPct).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}.`,
      '',
      '| buffer | max seen MiB (10 s scrapes) | budget MiB |',
      '|---|---|---|',
      ...Object.keys(end.budgetBytes).map((buffer) => `| ${buffer} | ${(Math.max(0, ...r.metrics.map((m) => m.bufferBytes[buffer] ?? 0)) / 1_048_576).toFixed(1)} | ${((end.budgetBytes[buffer] ?? 0) / 1_048_576).toFixed(1)} |`),
    );
  }
  const one = (v: number | null, digits = 0) => (v === null ? '–' : v.toFixed(digits));
  lines.push(
    '',
    `RSS by minute, mean / max MiB: ${rssByMinute(r.rss).map((m) => `${m.minute}-${m.minute + 1} min ${m.meanMiB.toFixed(0)} / ${m.maxMiB.toFixed(0)}`).join('; ')}.`,
    '',
    'RSS every 15 s; the other columns from the last /metrics scrape (every 10 s) before it. Serving heap: the serving thread\'s V8 heap as committed, not all of it resident (new space: its young generation); external: its Buffers.',
    '',
    '| t s | RSS MiB | serving heap MiB (new space) | external MiB | buffered MiB | records written | dropped |',
    '|---|---|---|---|---|---|---|',
  );
  for (const row of timeline(r.rss, r.metrics)) lines.push(`| ${row.tS.toFixed(0)} | ${row.rssMiB.toFixed(0)} | ${one(row.heapMiB)} (${one(row.newSpaceMiB)}) | ${one(row.externalMiB)} | ${one(row.bufferedMiB, 1)} | ${row.written === null ? '–' : int(row.written)} | ${row.dropped === null ? '–' : int(row.dropped)} |`);
  return lines.join('\n');
}
