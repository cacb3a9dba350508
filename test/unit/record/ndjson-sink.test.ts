// The NDJSON sink: batching, size rotation with gzip, bounded queue drops, and recovery after disk errors.
import { mkdtemp, readdir, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Metrics } from '../../../src/metrics/registry.js';
import { NdjsonSink } from '../../../src/record/sinks/ndjson.js';

let dir: string;
let metrics: Metrics;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'swy-sink-'));
  metrics = new Metrics({ defaultMetrics: false });
});
afterEach(async () => {
  await chmod(dir, 0o755).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

async function allLines(): Promise<{ n: number }[]> {
  const out: { n: number }[] = [];
  for (const f of (await readdir(dir)).sort()) {
    const raw = await readFile(path.join(dir, f));
    const text = f.endsWith('.gz') ? gunzipSync(raw).toString() : raw.toString();
    for (const line of text.split('\n')) if (line) out.push(JSON.parse(line) as { n: number });
  }
  return out;
}

async function metric(name: string): Promise<string> {
  return (await metrics.registry.getSingleMetricAsString(name));
}

it('writes every record once, in order, across size-based rotations, gzipping rotated files', async () => {
  const sink = new NdjsonSink(metrics, { dir, maxFileBytes: 2_000 });
  for (let i = 0; i < 500; i++) {
    expect(sink.write({ n: i, pad: 'x'.repeat(20) })).toBe(true);
    if (i % 50 === 49) await sink.flush();
  }
  await sink.close();
  const files = await readdir(dir);
  expect(files.filter((f) => f.endsWith('.ndjson.gz')).length).toBeGreaterThan(3);
  expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
  const lines = await allLines();
  expect(lines.map((l) => l.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i));
  expect(await metric('switchyard_records_written_total')).toContain('switchyard_records_written_total{sink="ndjson"} 500');
});

it('drops and counts (memory_budget) when the in-memory queue is at its byte budget, without blocking', async () => {
  const sink = new NdjsonSink(metrics, { dir, maxQueueBytes: 1_000 });
  let accepted = 0;
  for (let i = 0; i < 100; i++) if (sink.write({ n: i, pad: 'y'.repeat(50) })) accepted++;
  expect(accepted).toBeLessThan(100);
  await sink.close();
  expect((await allLines()).length).toBe(accepted);
  expect(await metric('switchyard_pairs_dropped_total')).toContain(`switchyard_pairs_dropped_total{sink="ndjson",reason="memory_budget"} ${100 - accepted}`);
});

it('counts records lost to an unwritable directory and writes again once it is fixed', async () => {
  const target = path.join(dir, 'logs');
  await writeFile(target, 'a file, not a directory');
  const sink = new NdjsonSink(metrics, { dir: target, retryMs: 0 });
  sink.write({ n: 1 });
  await sink.flush();
  expect(await metric('switchyard_pairs_dropped_total')).toContain('switchyard_pairs_dropped_total{sink="ndjson",reason="disk_error"} 1');
  await rm(target);
  sink.write({ n: 2 });
  await sink.close();
  const files = await readdir(target);
  expect(files).toHaveLength(1);
  expect((await readFile(path.join(target, files[0]!), 'utf8')).trim()).toBe('{"n":2}');
});
