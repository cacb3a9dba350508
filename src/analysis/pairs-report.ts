// Offline report over prediction logs: agreement with a confidence interval, McNemar on labelled pairs, paired score and latency tests.
import { mcNemarTest, pairedTTestSamples, wilcoxonSignedRankSamples, wilsonInterval, type Interval, type WilcoxonResult } from './stats/index.js';

/** A streamed answer's fields as the recorder writes them (src/record/pair-recorder.ts, StreamRecord). */
export interface LogStream {
  ttftMs?: number;
  gaps?: number;
  gapsOver?: number;
  maxGapMs?: number;
  interrupted?: boolean;
  tokens?: number;
  tokensPerSecond?: number | null;
}

/** The fields of a log record the report reads (records are written by src/record/pair-recorder.ts). */
export interface LogRecord {
  type?: string;
  route?: string;
  requestId?: string;
  complete?: boolean;
  served?: { variant?: string; latencyMs?: number; prediction?: unknown; error?: string | null; stream?: LogStream | null } | null;
  shadow?: { variant?: string; latencyMs?: number; prediction?: unknown; error?: string | null; stream?: LogStream | null } | null;
  comparison?: { kind?: string; agree?: boolean | null } | null;
  correct?: Record<string, boolean | null>;
  variant?: string;
  status?: number;
  latencyMs?: number;
  stream?: LogStream | null;
}

/** One variant's streamed answers in the log (served records and both sides of pairs). */
export interface StreamingColumns {
  streams: number;
  ttftMedianMs: number | null;
  ttftP95Ms: number | null;
  /** Gaps between chunks over the route's threshold, of all gaps. */
  gapsOverShare: number | null;
  /** Streams with at least one gap over the threshold. */
  stalledShare: number | null;
  /** The p95 over streams of each stream's longest gap. */
  maxGapP95Ms: number | null;
  interruptedShare: number | null;
  tokensMedian: number | null;
  tokensPerSecondMedian: number | null;
}

/** Report for one route. */
export interface RouteReport {
  route: string;
  pairs: number;
  complete: number;
  unparsed: number;
  agreement: { agree: number; of: number; rate: number | null; ci95: Interval | null };
  labelled: { n: number; championAccuracy: number | null; challengerAccuracy: number | null; mcNemar: { b: number; c: number; pValue: number | null } };
  scoreDifference: { n: number; meanDiff: number | null; ci95: Interval | null; pValue: number | null };
  latency: {
    n: number;
    championMedianMs: number | null;
    challengerMedianMs: number | null;
    wilcoxonPValue: number | null;
    /** How the p-value was computed: scipy's `auto` rule (exact for small samples, ties and zeros included; see docs/statistics.md). */
    wilcoxonMethod: WilcoxonResult['method'] | null;
    meanDiffMs: number | null;
  };
  served: Record<string, { requests: number; failures: number }>;
  /** Per variant, only for variants with streamed answers in the log. */
  streaming: Record<string, StreamingColumns>;
}

/** The nearest-rank quantile (q in (0, 1]) of unsorted values. */
function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Sums a variant's streamed answers into the report's columns. */
function streamingColumns(streams: readonly LogStream[]): StreamingColumns {
  const ttft: number[] = [];
  const maxGap: number[] = [];
  const tokens: number[] = [];
  const rates: number[] = [];
  let gaps = 0;
  let gapsOver = 0;
  let stalled = 0;
  let interrupted = 0;
  for (const s of streams) {
    if (typeof s.ttftMs === 'number') ttft.push(s.ttftMs);
    if (typeof s.maxGapMs === 'number') maxGap.push(s.maxGapMs);
    if (typeof s.tokens === 'number') tokens.push(s.tokens);
    if (typeof s.tokensPerSecond === 'number') rates.push(s.tokensPerSecond);
    gaps += s.gaps ?? 0;
    gapsOver += s.gapsOver ?? 0;
    if ((s.gapsOver ?? 0) > 0) stalled++;
    if (s.interrupted === true) interrupted++;
  }
  const n = streams.length;
  return {
    streams: n,
    ttftMedianMs: median(ttft),
    ttftP95Ms: quantile(ttft, 0.95),
    gapsOverShare: gaps > 0 ? gapsOver / gaps : null,
    stalledShare: n > 0 ? stalled / n : null,
    maxGapP95Ms: quantile(maxGap, 0.95),
    interruptedShare: n > 0 ? interrupted / n : null,
    tokensMedian: median(tokens),
    tokensPerSecondMedian: median(rates),
  };
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const finiteOrNull = (x: number | undefined): number | null => (x !== undefined && Number.isFinite(x) ? x : null);

/** Builds per-route reports from parsed records (pairs, served records and feedback records, in any order). */
export function buildPairsReport(records: Iterable<LogRecord>): RouteReport[] {
  const byRoute = new Map<string, { pairs: LogRecord[]; feedback: Map<string, LogRecord>; served: LogRecord[] }>();
  const bucket = (route: string) => {
    let found = byRoute.get(route);
    if (!found) {
      found = { pairs: [], feedback: new Map(), served: [] };
      byRoute.set(route, found);
    }
    return found;
  };
  for (const record of records) {
    if (typeof record.route !== 'string') continue;
    if (record.type === 'pair') bucket(record.route).pairs.push(record);
    else if (record.type === 'feedback' && record.requestId) bucket(record.route).feedback.set(record.requestId, record);
    else if (record.type === 'served') bucket(record.route).served.push(record);
  }
  const reports: RouteReport[] = [];
  for (const [route, data] of [...byRoute].sort(([a], [b]) => a.localeCompare(b))) {
    let agree = 0;
    let compared = 0;
    let unparsed = 0;
    let complete = 0;
    const scoreX: number[] = [];
    const scoreY: number[] = [];
    const latX: number[] = [];
    const latY: number[] = [];
    let labelled = 0;
    let championRight = 0;
    let challengerRight = 0;
    let b = 0;
    let c = 0;
    for (const pair of data.pairs) {
      if (!pair.complete || !pair.served || !pair.shadow) continue;
      complete++;
      const agreement = pair.comparison?.agree;
      if (agreement === true || agreement === false) {
        compared++;
        if (agreement) agree++;
      } else unparsed++;
      if (typeof pair.served.prediction === 'number' && typeof pair.shadow.prediction === 'number') {
        scoreX.push(pair.shadow.prediction);
        scoreY.push(pair.served.prediction);
      }
      if (typeof pair.served.latencyMs === 'number' && typeof pair.shadow.latencyMs === 'number' && !pair.served.error && !pair.shadow.error) {
        latX.push(pair.shadow.latencyMs);
        latY.push(pair.served.latencyMs);
      }
      const feedback = pair.requestId ? data.feedback.get(pair.requestId) : undefined;
      const championOk = feedback?.correct?.[pair.served.variant ?? ''];
      const challengerOk = feedback?.correct?.[pair.shadow.variant ?? ''];
      if (typeof championOk === 'boolean' && typeof challengerOk === 'boolean') {
        labelled++;
        if (championOk) championRight++;
        if (challengerOk) challengerRight++;
        if (championOk && !challengerOk) b++;
        if (!championOk && challengerOk) c++;
      }
    }
    const mcnemar = mcNemarTest(b, c);
    const scores = scoreX.length > 1 ? pairedTTestSamples(scoreX, scoreY) : null;
    const latency = latX.length > 0 ? wilcoxonSignedRankSamples(latX, latY) : null;
    const streamsOf = new Map<string, LogStream[]>();
    const addStream = (variant: string | undefined, stream: LogStream | null | undefined) => {
      if (typeof stream !== 'object' || stream === null) return;
      const key = variant ?? 'unknown';
      const list = streamsOf.get(key);
      if (list === undefined) streamsOf.set(key, [stream]);
      else list.push(stream);
    };
    for (const pair of data.pairs) {
      addStream(pair.served?.variant, pair.served?.stream);
      addStream(pair.shadow?.variant, pair.shadow?.stream);
    }
    for (const s of data.served) addStream(s.variant, s.stream);
    const streaming: RouteReport['streaming'] = {};
    for (const [variant, streams] of [...streamsOf].sort(([a], [b]) => a.localeCompare(b))) streaming[variant] = streamingColumns(streams);
    const served: RouteReport['served'] = {};
    for (const s of data.served) {
      const v = s.variant ?? 'unknown';
      served[v] ??= { requests: 0, failures: 0 };
      served[v].requests++;
      if ((s.status ?? 0) >= 500 || (s.status ?? 0) === 0) served[v].failures++;
    }
    reports.push({
      route,
      pairs: data.pairs.length,
      complete,
      unparsed,
      agreement: { agree, of: compared, rate: compared > 0 ? agree / compared : null, ci95: compared > 0 ? wilsonInterval(agree, compared, 0.95) : null },
      labelled: {
        n: labelled,
        championAccuracy: labelled > 0 ? championRight / labelled : null,
        challengerAccuracy: labelled > 0 ? challengerRight / labelled : null,
        mcNemar: { b, c, pValue: mcnemar.status === 'ok' ? mcnemar.exactPValue : null },
      },
      scoreDifference: {
        n: scoreX.length,
        meanDiff: scores && scores.status === 'ok' ? scores.meanDiff : null,
        ci95: scores && scores.status === 'ok' ? scores.diffInterval : null,
        pValue: scores && scores.status === 'ok' ? finiteOrNull(scores.pValue) : null,
      },
      latency: {
        n: latX.length,
        championMedianMs: median(latY),
        challengerMedianMs: median(latX),
        wilcoxonPValue: latency && latency.status === 'ok' ? finiteOrNull(latency.pValue) : null,
        wilcoxonMethod: latency && latency.status === 'ok' ? latency.method : null,
        meanDiffMs: latX.length > 0 ? latX.reduce((s, x, i) => s + x - latY[i]!, 0) / latX.length : null,
      },
      served,
      streaming,
    });
  }
  return reports;
}
