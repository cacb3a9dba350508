// Fault injection on the prediction log: duplicate client request ids, large predictions, and a data dir that fails writes.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
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

async function metricsText(swy: RunningSwitchyard): Promise<string> {
  return (await request(`${swy.adminUrl}/metrics`)).body.text();
}

/** The value of one series in the /metrics text (0 when absent). */
function seriesValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
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
    const metrics = await metricsText(swy);
    expect(seriesValue(metrics, 'switchyard_feedback_total{result="ambiguous_request"}')).toBe(1);
    // No feedback record was written for the ambiguous id: a label is never joined to a guess.
    await swy.app.recorder.flush();
    const feedback = (await readRecords<{ type: string; requestId: string }>(dir)).filter((r) => r.type === 'feedback');
    expect(feedback.map((r) => r.requestId)).toEqual(['unique-1']);
  });
});
