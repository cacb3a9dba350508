// The offline pairs report: agreement interval, McNemar on labelled pairs, score and latency tests, from log records.
import { expect, it } from 'vitest';
import { buildPairsReport, type LogRecord } from '../../../src/analysis/pairs-report.js';

function pair(i: number, champion: string, challenger: string, latencies: [number, number]): LogRecord {
  return {
    type: 'pair', route: 'iris', requestId: `r${i}`, complete: true,
    served: { variant: 'v1', latencyMs: latencies[0], prediction: champion, error: null },
    shadow: { variant: 'v2', latencyMs: latencies[1], prediction: challenger, error: null },
    comparison: { kind: 'class', agree: champion === challenger },
  };
}

it('reports agreement with a Wilson interval, McNemar from joined feedback, and a paired latency test', () => {
  const records: LogRecord[] = [];
  for (let i = 0; i < 100; i++) {
    const disagree = i % 10 === 0;
    records.push(pair(i, 'a', disagree ? 'b' : 'a', [5 + (i % 3), 8 + (i % 3)]));
    // Labels: on disagreements the champion is right 9 times out of 10.
    if (disagree) records.push({ type: 'feedback', route: 'iris', requestId: `r${i}`, correct: { v1: i !== 0, v2: i === 0 } });
  }
  records.push({ type: 'pair', route: 'iris', requestId: 'x', complete: false, served: null, shadow: null, comparison: null });
  const [report] = buildPairsReport(records);
  expect(report).toMatchObject({ route: 'iris', pairs: 101, complete: 100, agreement: { agree: 90, of: 100, rate: 0.9 } });
  expect(report!.agreement.ci95![0]).toBeCloseTo(0.8256, 3);
  expect(report!.agreement.ci95![1]).toBeCloseTo(0.9448, 3);
  expect(report!.labelled).toMatchObject({ n: 10, mcNemar: { b: 9, c: 1 } });
  // Exact McNemar: 2·P(X <= 1 | n = 10, p = ½) = 22/1024.
  expect(report!.labelled.mcNemar.pValue).toBeCloseTo(22 / 1024, 10);
  expect(report!.latency).toMatchObject({ n: 100, championMedianMs: 6, challengerMedianMs: 9, meanDiffMs: 3 });
  expect(report!.latency.wilcoxonPValue).toBeLessThan(1e-10);
  expect(report!.latency.wilcoxonMethod).toBe('approx');
});

it('uses the exact Wilcoxon distribution for a few pairs with tied and equal latencies, and says so', () => {
  // Challenger − champion: 2, 2, 0, 2, 2, 3 ms. The zero is dropped; ranks 2.5 (×4) and 5, all positive, so R+ is the
  // largest of the 2^5 equally likely sign outcomes: exact two-sided p = 2/32. The normal approximation would say 0.034.
  const latencies: Array<[number, number]> = [[10, 12], [11, 13], [10, 10], [12, 14], [9, 11], [10, 13]];
  const [report] = buildPairsReport(latencies.map((l, i) => pair(i, 'a', 'a', l)));
  expect(report!.latency).toMatchObject({ n: 6, wilcoxonMethod: 'exact', wilcoxonPValue: 2 / 32 });
});

it('returns nothing for no records and ignores records without a route', () => {
  expect(buildPairsReport([])).toEqual([]);
  expect(buildPairsReport([{ type: 'pair' }])).toEqual([]);
});

it('reports streaming columns per variant from served records and both sides of pairs', () => {
  const stream = (ttftMs: number, gapsOver: number, interrupted: boolean) => ({ ttftMs, gaps: 9, gapsOver, maxGapMs: gapsOver > 0 ? 1500 : 40, interrupted, tokens: 10, tokensFromUsage: true, tokensPerSecond: 25 });
  const records: LogRecord[] = [];
  for (let i = 0; i < 20; i++) {
    records.push({ type: 'served', route: 'chat', requestId: `s${i}`, variant: 'v1', status: 200, latencyMs: 400, stream: stream(50 + i, 0, false) });
    records.push({ type: 'served', route: 'chat', requestId: `t${i}`, variant: 'v2', status: 200, latencyMs: 400, stream: stream(350 + i, i < 2 ? 1 : 0, i === 19) });
  }
  records.push({ type: 'served', route: 'chat', requestId: 'plain', variant: 'v3', status: 200, latencyMs: 5 });
  const [report] = buildPairsReport(records);
  expect(Object.keys(report!.streaming)).toEqual(['v1', 'v2']);
  expect(report!.streaming.v1).toMatchObject({ streams: 20, ttftMedianMs: 59.5, ttftP95Ms: 68, gapsOverShare: 0, stalledShare: 0, interruptedShare: 0, tokensMedian: 10, tokensPerSecondMedian: 25 });
  expect(report!.streaming.v2).toMatchObject({ streams: 20, ttftMedianMs: 359.5, gapsOverShare: 2 / 180, stalledShare: 0.1, maxGapP95Ms: 1500, interruptedShare: 0.05 });
});
