// Backtest over a prediction log written by the real pair recorder and NDJSON sink: a bad challenger is rolled back, a good one is not.
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicy } from '../../../src/config/load.js';
import { Metrics } from '../../../src/metrics/registry.js';
import { PairRecorder } from '../../../src/record/pair-recorder.js';
import type { ServedObservation } from '../../../src/record/port.js';
import { NdjsonSink } from '../../../src/record/sinks/ndjson.js';
import { expand, readRecords } from '../../../src/cli/report.js';
import { emptyCounts, replay, toReplayRecords, type RecordedLine } from '../../../src/simulate/backtest.js';
import { Rng } from '../../../src/simulate/rng.js';

const policyYaml = `routes:
  - name: iris
    match: { pathPrefix: /v1/models/iris }
    champion: { name: iris-v1, url: http://127.0.0.1:9001 }
    challengers:
      - { name: iris-v2, url: http://127.0.0.1:9002, mode: canary, percent: 50 }
    stickiness: { header: x-user-id }
    predictions: { protocol: json, pointer: /prediction, sampleRate: 1 }
`;

const START = Date.parse('2026-03-02T10:00:00.000Z');

/**
 * Writes `count` served requests, 10 per second, half to each arm, through the recorder as the router would hand
 * them over, and returns the directory of the log.
 */
async function recordLog(dir: string, count: number, challengerErrorRate: number, seed: number): Promise<string> {
  const loaded = await loadPolicy(path.join(dir, 'policy.yaml'));
  const routePolicy = loaded.policy.routes[0]!;
  const metrics = new Metrics({ defaultMetrics: false });
  const logDir = path.join(dir, 'pairs');
  const recorder = new PairRecorder({ policies: { policyOf: (route) => (route === 'iris' ? routePolicy : undefined) }, metrics, sink: new NdjsonSink(metrics, { dir: logDir }) });
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) {
    const challenger = i % 2 === 1;
    const failed = rng.next() < (challenger ? challengerErrorRate : 0.01);
    const observation: ServedObservation = {
      route: 'iris',
      requestId: `r${i}`,
      joinId: 0,
      stickyKey: `user-${i % 500}`,
      variant: challenger ? 'iris-v2' : 'iris-v1',
      role: challenger ? 'challenger' : 'champion',
      mode: challenger ? 'canary' : 'champion',
      status: failed ? 503 : 200,
      errorKind: failed ? 'status_5xx' : null,
      latencyMs: 40 * Math.exp(0.3 * rng.normal()),
      fellBack: false,
      fallbackFor: null,
      startedAt: START + i * 100,
      mirrored: 0,
      requestBody: null,
      responseBody: Buffer.from(failed ? '{"error":"unavailable"}' : `{"prediction":"setosa"}`),
      responseTruncated: false,
      contentType: 'application/json',
    };
    recorder.served(observation);
  }
  await recorder.close();
  return logDir;
}

/** A challenger that fails every request, each answered by the champion instead (fallback), as the recorder logs it. */
async function recordFallbacks(dir: string, count: number): Promise<string> {
  const loaded = await loadPolicy(path.join(dir, 'policy.yaml'));
  const routePolicy = loaded.policy.routes[0]!;
  const metrics = new Metrics({ defaultMetrics: false });
  const logDir = path.join(dir, 'pairs');
  const recorder = new PairRecorder({ policies: { policyOf: () => routePolicy }, metrics, sink: new NdjsonSink(metrics, { dir: logDir }) });
  const common = { route: 'iris', joinId: 0, stickyKey: null, mirrored: 0, requestBody: null, responseTruncated: false, contentType: 'application/json' } as const;
  for (let i = 0; i < count; i++) {
    const startedAt = START + i * 100;
    const body = Buffer.from('{"prediction":"setosa"}');
    if (i % 2 === 0) {
      recorder.served({ ...common, requestId: `r${i}`, variant: 'iris-v1', role: 'champion', mode: 'champion', status: 200, errorKind: null, latencyMs: 30, fellBack: false, fallbackFor: null, startedAt, responseBody: body });
      continue;
    }
    // The data plane reports the challenger's failure (the recorder skips it) and then the champion's answer.
    recorder.served({ ...common, requestId: `r${i}`, variant: 'iris-v2', role: 'challenger', mode: 'canary', status: 503, errorKind: 'status_5xx', latencyMs: 20, fellBack: true, fallbackFor: null, startedAt, responseBody: null });
    recorder.served({ ...common, requestId: `r${i}`, variant: 'iris-v1', role: 'champion', mode: 'champion', status: 200, errorKind: null, latencyMs: 30, fellBack: false, fallbackFor: 'iris-v2', startedAt, responseBody: body });
  }
  await recorder.close();
  return logDir;
}

async function backtest(dir: string, logDir: string) {
  const loaded = await loadPolicy(path.join(dir, 'policy.yaml'));
  const lines: RecordedLine[] = [];
  for await (const record of readRecords(await expand([logDir]), { lines: 0 })) lines.push(record as RecordedLine);
  const counts = emptyCounts();
  const records = toReplayRecords(lines, new Set(['iris']), counts);
  return replay(loaded.policy, loaded.version, records, { intervalMs: 250, counts });
}

describe('switchyard backtest', () => {
  it('reports the rollback of a challenger that fails a third of its requests, with the evidence', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'swy-backtest-bad-'));
    await writeFile(path.join(dir, 'policy.yaml'), policyYaml);
    const logDir = await recordLog(dir, 4_000, 0.3, 1);
    expect((await readdir(logDir)).some((name) => name.endsWith('.ndjson'))).toBe(true);
    const result = await backtest(dir, logDir);
    expect(result.counts.read).toBe(4_000);
    const route = result.routes[0]!;
    expect(route.challenger).toBe('iris-v2');
    const rollback = route.events.find((e) => e.type === 'rollback');
    expect(rollback, JSON.stringify(route.events)).toBeDefined();
    expect(rollback!.reason).toMatch(/^error_(rate|ceiling)$/);
    expect(rollback!.evidence.find((v) => v.name === rollback!.reason)!.state).toBe('breach');
    expect(rollback!.at >= '2026-03-02T10:00:00.000Z').toBe(true);
    // Nothing after the rollback is replayed: the challenger would not have served it.
    expect(result.counts.afterOutcome).toBe(4_000 - result.counts.replayed);
    expect(result.counts.afterOutcome).toBeGreaterThan(0);
    expect(route.final?.phase).toBe('rolled_back');
  });

  it('reports no rollback for a challenger as good as the champion, and its guardrails at the end', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'swy-backtest-good-'));
    await writeFile(path.join(dir, 'policy.yaml'), policyYaml);
    const logDir = await recordLog(dir, 4_000, 0.01, 2);
    const result = await backtest(dir, logDir);
    const route = result.routes[0]!;
    expect(route.events.filter((e) => e.type === 'rollback')).toEqual([]);
    expect(result.counts.replayed).toBe(4_000);
    expect(result.from).toBe('2026-03-02T10:00:00.000Z');
    expect(result.to).toBe('2026-03-02T10:06:39.900Z');
    expect(route.final?.phase).not.toBe('rolled_back');
    expect(route.final?.arms.map((a) => a.requests)).toEqual([2_000, 2_000]);
    expect(route.final?.guardrails.find((v) => v.name === 'error_rate')?.state).not.toBe('collecting');
  });

  it("counts a champion answer given in place of a failed challenger as the challenger's failure", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'swy-backtest-fallback-'));
    await writeFile(path.join(dir, 'policy.yaml'), policyYaml);
    const result = await backtest(dir, await recordFallbacks(dir, 400));
    const route = result.routes[0]!;
    const rollback = route.events.find((e) => e.type === 'rollback');
    expect(rollback?.reason).toBe('error_ceiling');
    const challenger = route.final!.arms.find((a) => a.role === 'challenger')!;
    expect(challenger.failures).toBe(challenger.requests);
    expect(challenger.requests).toBeGreaterThanOrEqual(10);
    expect(route.final!.arms.find((a) => a.role === 'champion')!.failures).toBe(0);
  });
});
