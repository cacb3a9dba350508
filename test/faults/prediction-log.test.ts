// Fault injection on the prediction log: duplicate client request ids, large predictions, and a data dir that fails writes.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsText, seriesValue } from '../helpers/metrics.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';

const TOKEN = 'prediction-log-token';

/**
 * A model server written for these tests: it answers `{"prediction": "<tag><n>:<padding>"}` for a request body
 * `{"n": n}`, after a delay drawn per request from [0, maxDelayMs] so that concurrent answers come back in any order.
 */
async function startModel(tag: string, options: { maxDelayMs?: number; padBytes?: number } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const padding = 'x'.repeat(options.padBytes ?? 0);
  const maxDelayMs = options.maxDelayMs ?? 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const { n } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { n: number };
      const body = JSON.stringify({ prediction: `${tag}${n}:${padding}` });
      const answer = (): void => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (maxDelayMs > 0) setTimeout(answer, Math.random() * maxDelayMs);
      else answer();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function shadowPolicy(champion: string, shadow: string, extra: Record<string, unknown> = {}) {
  return {
    routes: [
      {
        name: 'iris',
        match: { pathPrefix: '/v1/models/iris', methods: ['POST'] },
        champion: { name: 'iris-v1', url: champion },
        challengers: [{ name: 'iris-v2', url: shadow, mode: 'shadow', percent: 100 }],
        predictions: { protocol: 'json', pointer: '/prediction', kind: 'class', maxResponseBytes: 512 * 1024 },
        shadow: { maxInFlight: 1_000, methods: ['POST'], maxBodyBytes: 1_000 },
        ...extra,
      },
    ],
  };
}

interface PairRecord {
  type: 'pair';
  requestId: string;
  complete: boolean;
  served: { prediction: string } | null;
  shadow: { prediction: string } | null;
}

async function readRecords<T>(dir: string): Promise<T[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.ndjson'));
  const records: T[] = [];
  for (const f of files) for (const line of (await readFile(path.join(dir, f), 'utf8')).split('\n')) if (line) records.push(JSON.parse(line) as T);
  return records;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('duplicate client request ids', () => {
  it('pairs each request with its own shadow answer when concurrent requests share an x-request-id, and says when feedback is ambiguous', async () => {
    const champion = await startModel('c', { maxDelayMs: 20 });
    const shadow = await startModel('s', { maxDelayMs: 20 });
    cleanups.push(() => champion.close(), () => shadow.close());
    const swy = await startSwitchyard(shadowPolicy(champion.url, shadow.url), { adminTokens: [{ name: 'test', secret: TOKEN }] });
    cleanups.push(() => swy.close());
    const agent = new Agent({ connections: 400 });
    cleanups.push(() => agent.close());

    // 200 pairs of concurrent requests; both requests of a pair carry the same client id and different inputs.
    const pairs = 200;
    const sends: Promise<number>[] = [];
    for (let p = 0; p < pairs; p++) {
      for (const n of [2 * p, 2 * p + 1]) {
        sends.push(request(`${swy.dataUrl}/v1/models/iris:predict`, {
          dispatcher: agent, method: 'POST', body: JSON.stringify({ n }), headers: { 'content-type': 'application/json', 'x-request-id': `dup-${p}` },
        }).then(async (res) => {
          await res.body.dump();
          return res.statusCode;
        }));
      }
    }
    // And one request with an id of its own, whose feedback must still join.
    sends.push(request(`${swy.dataUrl}/v1/models/iris:predict`, { dispatcher: agent, method: 'POST', body: JSON.stringify({ n: 9_999 }), headers: { 'x-request-id': 'unique-1' } }).then(async (res) => {
      await res.body.dump();
      return res.statusCode;
    }));
    expect(new Set(await Promise.all(sends))).toEqual(new Set([200]));

    const dir = path.join(swy.dir, 'pairs');
    await expect.poll(async () => {
      await swy.app.recorder.flush();
      return (await readRecords<PairRecord>(dir)).filter((r) => r.type === 'pair' && r.complete).length;
    }, { timeout: 10_000, interval: 50 }).toBe(2 * pairs + 1);
    const records = (await readRecords<PairRecord>(dir)).filter((r) => r.type === 'pair');
    expect(records).toHaveLength(2 * pairs + 1);
    const misjoined = records.filter((r) => r.served!.prediction.slice(1) !== r.shadow!.prediction.slice(1));
    expect(misjoined).toEqual([]);
    // The client's id stays on the record, and each input appears exactly once.
    const inputOf = (r: PairRecord): number => Number(r.served!.prediction.slice(1, r.served!.prediction.indexOf(':')));
    for (const r of records) expect(r.requestId).toBe(inputOf(r) === 9_999 ? 'unique-1' : `dup-${Math.floor(inputOf(r) / 2)}`);
    expect(new Set(records.map(inputOf)).size).toBe(2 * pairs + 1);

    // Feedback for an id two live predictions share cannot pick one: it says so per item; a unique id still joins.
    const res = await request(`${swy.adminUrl}/v1/feedback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ requestId: 'dup-0', label: 'c0:' }, { requestId: 'unique-1', label: 'c9999:' }, { requestId: 'never-seen', label: 'x' }]),
    });
    expect(res.statusCode).toBe(200);
    const answer = (await res.body.json()) as { joined: number; unknown: number; ambiguous: number; results: { requestId: string; status: string }[] };
    expect(answer.results.map((r) => [r.requestId, r.status])).toEqual([['dup-0', 'ambiguous_request'], ['unique-1', 'joined'], ['never-seen', 'unknown_request']]);
    expect([answer.joined, answer.ambiguous, answer.unknown]).toEqual([1, 1, 1]);
    const metrics = await metricsText(swy.adminUrl);
    expect(seriesValue(metrics, 'switchyard_feedback_total{result="ambiguous_request"}')).toBe(1);
    // No feedback record was written for the ambiguous id: a label is never joined to a guess.
    await swy.app.recorder.flush();
    const feedback = (await readRecords<{ type: string; requestId: string }>(dir)).filter((r) => r.type === 'feedback');
    expect(feedback.map((r) => r.requestId)).toEqual(['unique-1']);
  });
});

describe('large predictions with the feedback join table on', () => {
  it('keeps every prediction-log buffer within a byte budget from one memory setting, drops and counts the overflow, and keeps the worker alive', async () => {
    // 200 kB text predictions from both models: each mirrored request carries 400 kB of predictions.
    const champion = await startModel('c', { padBytes: 200_000 });
    const shadow = await startModel('s', { padBytes: 200_000 });
    cleanups.push(() => champion.close(), () => shadow.close());
    const predictions = { protocol: 'json', pointer: '/prediction', kind: 'text', maxResponseBytes: 512 * 1024 };
    const swy = await startSwitchyard(shadowPolicy(champion.url, shadow.url, { predictions }), { memoryMb: 64, adminTokens: [{ name: 'test', secret: TOKEN }] });
    cleanups.push(() => swy.close());
    const agent = new Agent({ connections: 8 });
    cleanups.push(() => agent.close());
    const send = async (n: number): Promise<number> => {
      const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { dispatcher: agent, method: 'POST', body: JSON.stringify({ n }), headers: { 'content-type': 'application/json', 'x-request-id': `big-${n}` } });
      await res.body.dump();
      return res.statusCode;
    };
    const buffers = ['to_worker', 'queue', 'pending', 'join_table', 'sink'];
    const budgets = new Map<string, number>();
    /** Every buffer's bytes against its budget, as /metrics reports them. */
    const checkBudgets = async (): Promise<void> => {
      const text = await metricsText(swy.adminUrl);
      for (const buffer of buffers) {
        const budget = seriesValue(text, `switchyard_recorder_budget_bytes{buffer="${buffer}"}`);
        expect(budget, `budget of ${buffer}`).toBeGreaterThan(0);
        budgets.set(buffer, budget);
        expect(seriesValue(text, `switchyard_recorder_buffer_bytes{buffer="${buffer}"}`), `bytes in ${buffer}`).toBeLessThanOrEqual(budget);
      }
    };

    const requests = 1_000;
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    for (let start = 0; start < requests; start += 50) {
      const statuses = await Promise.all(Array.from({ length: 50 }, (_, i) => send(start + i)));
      expect(new Set(statuses)).toEqual(new Set([200]));
      await checkBudgets();
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
    await swy.app.recorder.flush();
    await checkBudgets();
    const growthMiB = (peakRss - rssBefore) / 1_048_576;

    // The budgets are the documented shares of the one setting (64 MiB here): together a fifth of it.
    const total = [...budgets.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(0.2 * 64 * 1_048_576 + 5);
    const metrics = await metricsText(swy.adminUrl);
    // The overflow was dropped and counted, not kept: the join table alone would have needed 1,000 x 400 kB.
    expect(seriesValue(metrics, 'switchyard_pairs_dropped_total{sink="join_table",reason="memory_budget"}')).toBeGreaterThan(0);
    // The worker never died (before: ERR_WORKER_OUT_OF_MEMORY, and everything it held was lost).
    expect(swy.app.recorder.down).toBe(false);
    expect(seriesValue(metrics, 'switchyard_pairs_dropped_total{sink="recorder",reason="worker_down"}')).toBe(0);
    // Before: about 450 kB of RSS per request, without bound (6.3 GB after 12,000 requests).
    expect(growthMiB).toBeLessThan(256);

    // The oldest predictions were forgotten to stay within budget; a fresh one still joins its feedback.
    expect(await send(requests)).toBe(200);
    await swy.app.recorder.flush();
    const res = await request(`${swy.adminUrl}/v1/feedback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ requestId: 'big-0', label: 'x' }, { requestId: `big-${requests}`, label: 'x' }]),
    });
    const answer = (await res.body.json()) as { results: { requestId: string; status: string }[] };
    expect(answer.results.map((r) => r.status)).toEqual(['unknown_request', 'joined']);
  }, 120_000);
});

/**
 * Sets this process's file size limit (RLIMIT_FSIZE, soft; `unlimited` lifts it) with prlimit(1). The kernel then
 * refuses writes past `bytes` in any file (EFBIG) and shortens the write that crosses it, as a filling disk does; it
 * holds for root too, and the recorder worker is a thread of this process.
 */
async function setFileSizeLimit(bytes: number | 'unlimited'): Promise<void> {
  await promisify(execFile)('prlimit', ['--pid', String(process.pid), `--fsize=${bytes}:`]);
}

/** The prediction log as it is on disk: its files, their sizes, and the whole lines (a torn line fails to parse). */
async function onDisk(dir: string): Promise<{ files: string[]; sizes: number[]; lines: number; torn: string[] }> {
  const files = (await readdir(dir).catch(() => [] as string[])).sort();
  const sizes: number[] = [];
  let lines = 0;
  const torn: string[] = [];
  for (const f of files) {
    const text = await readFile(path.join(dir, f), 'utf8');
    sizes.push((await stat(path.join(dir, f))).size);
    if (text.length > 0 && !text.endsWith('\n')) torn.push(`${f}: no newline at the end`);
    for (const line of text.split('\n').filter(Boolean)) {
      try {
        JSON.parse(line);
        lines++;
      } catch {
        torn.push(`${f}: ${line.slice(0, 40)}...`);
      }
    }
  }
  return { files, sizes, lines, torn };
}

describe('a data dir that refuses writes', () => {
  const retryMs = 200;

  /** Switchyard with shadow on in front of models answering ~10 kB predictions: a pair record is about 20 kB. */
  async function start(): Promise<{ swy: RunningSwitchyard; dir: string; send(count: number): Promise<void>; counters(): Promise<{ written: number; diskErrors: number }> }> {
    const champion = await startModel('c', { padBytes: 10_000 });
    const shadow = await startModel('s', { padBytes: 10_000 });
    cleanups.push(() => champion.close(), () => shadow.close());
    const swy = await startSwitchyard(shadowPolicy(champion.url, shadow.url), { pairs: { retryMs } });
    cleanups.push(() => swy.close());
    let n = 0;
    return {
      swy,
      dir: path.join(swy.dir, 'pairs'),
      async send(count) {
        const statuses = await Promise.all(Array.from({ length: count }, async () => {
          const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: JSON.stringify({ n: n++ }), headers: { 'content-type': 'application/json' } });
          await res.body.dump();
          return res.statusCode;
        }));
        // Serving is never affected by the disk.
        expect(new Set(statuses)).toEqual(new Set([200]));
      },
      async counters() {
        await swy.app.recorder.flush();
        const text = await metricsText(swy.adminUrl);
        return { written: seriesValue(text, 'switchyard_records_written_total{sink="ndjson"}'), diskErrors: seriesValue(text, 'switchyard_pairs_dropped_total{sink="ndjson",reason="disk_error"}') };
      },
    };
  }

  it('counts only whole lines as written, cuts off the torn one, keeps one file across retries, and resumes by itself when space returns', async () => {
    const { swy, dir, send, counters } = await start();
    const limit = 300_000;
    cleanups.push(() => setFileSizeLimit('unlimited'));
    await setFileSizeLimit(limit);

    // Fill the "disk": the write that crosses the limit is cut short, the next ones fail.
    for (let round = 0; (await counters()).diskErrors === 0; round++) {
      expect(round, 'the file size limit was never reached').toBeLessThan(100);
      await send(5);
    }
    let disk = await onDisk(dir);
    let count = await counters();
    expect(disk.torn).toEqual([]);
    expect(disk.files).toHaveLength(1);
    expect(disk.sizes[0]).toBeLessThanOrEqual(limit);
    expect(disk.lines).toBe(count.written);

    // Records keep coming while the disk stays full, across several retries: no new file per retry, nothing torn.
    const fullSince = Date.now();
    while (Date.now() - fullSince < 3 * retryMs) await send(3);
    const stillFull = await counters();
    expect(stillFull.diskErrors).toBeGreaterThan(count.diskErrors);
    disk = await onDisk(dir);
    expect(disk.torn).toEqual([]);
    expect(disk.files).toHaveLength(1);
    expect(disk.lines).toBe(stillFull.written);

    // Space returns: the log resumes on its own, in the same file, and the counters still match the disk.
    await setFileSizeLimit('unlimited');
    for (let round = 0; (await counters()).written === stillFull.written; round++) {
      expect(round, 'the log did not resume').toBeLessThan(100);
      await send(3);
    }
    count = await counters();
    disk = await onDisk(dir);
    expect(disk.torn).toEqual([]);
    expect(disk.files).toHaveLength(1);
    expect(disk.sizes[0]).toBeGreaterThan(limit);
    expect(disk.lines).toBe(count.written);

    await swy.app.close();
    disk = await onDisk(dir);
    expect(disk.files).toHaveLength(1);
    expect(disk.torn).toEqual([]);
  });

  it('leaves no empty or partial file behind when the disk refused every write', async () => {
    const { swy, dir, send, counters } = await start();
    cleanups.push(() => setFileSizeLimit('unlimited'));
    // Full before the first record: the first write gets one byte in, then nothing.
    await setFileSizeLimit(1);
    const fullSince = Date.now();
    while (Date.now() - fullSince < 3 * retryMs) await send(3);
    const count = await counters();
    expect(count.written).toBe(0);
    expect(count.diskErrors).toBeGreaterThan(0);
    const disk = await onDisk(dir);
    expect(disk.torn).toEqual([]);
    expect(disk.files.length).toBeLessThanOrEqual(1);
    await swy.app.close();
    expect((await onDisk(dir)).files).toEqual([]);
  });
});
