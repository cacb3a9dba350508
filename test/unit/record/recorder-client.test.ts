// The recorder worker through its client: pairing, totals, feedback and metrics cross the thread; bounds and loss are counted.
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { routeSchema } from '../../../src/config/policy-schema.js';
import { Metrics } from '../../../src/metrics/registry.js';
import { recorderBudgets } from '../../../src/record/budgets.js';
import { RecorderClient } from '../../../src/record/recorder-client.js';
import type { ServedObservation, ShadowObservation } from '../../../src/record/port.js';

const policy = routeSchema.parse({
  name: 'iris',
  match: { pathPrefix: '/v1/models/iris' },
  champion: { name: 'iris-v1', url: 'http://127.0.0.1:1' },
  challengers: [{ name: 'iris-v2', url: 'http://127.0.0.1:2', mode: 'shadow', percent: 100 }],
  predictions: { protocol: 'json', pointer: '/prediction', kind: 'class' },
});

/** The data plane gives each mirrored request a process-unique join id; here each test request id gets its own. */
const joinIds = new Map<string, number>();
function joinIdOf(requestId: string): number {
  let id = joinIds.get(requestId);
  if (id === undefined) joinIds.set(requestId, (id = joinIds.size + 1));
  return id;
}

function served(requestId: string, prediction: string, mirrored = 1): ServedObservation {
  return {
    route: 'iris', requestId, joinId: mirrored > 0 ? joinIdOf(requestId) : 0, stickyKey: 'user-1', variant: 'iris-v1', role: 'champion', mode: 'champion', status: 200, errorKind: null, latencyMs: 4.2,
    fellBack: false, fallbackFor: null, startedAt: Date.now(), mirrored, requestBody: Buffer.from('{"instances":[[1,2,3,4]]}'),
    // A view into a larger buffer, as undici hands out: only its own bytes may cross the thread.
    responseBody: Buffer.from(`xxxx{"prediction":"${prediction}"}yyyy`).subarray(4, -4), responseTruncated: false, contentType: 'application/json',
  };
}

function shadowed(requestId: string, prediction: string): ShadowObservation {
  return { route: 'iris', requestId, joinId: joinIdOf(requestId), variant: 'iris-v2', status: 200, errorKind: null, latencyMs: 50, startedAt: Date.now(), responseBody: Buffer.from(`{"prediction":"${prediction}"}`), responseTruncated: false, contentType: 'application/json' };
}

async function readLog(dir: string): Promise<Record<string, unknown>[]> {
  const files = await readdir(dir);
  const lines = (await Promise.all(files.map((f) => readFile(path.join(dir, f), 'utf8')))).join('').split('\n').filter(Boolean);
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

const clients: RecorderClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function start(options: { maxQueue?: number; restartMs?: number; onError?: (err: Error) => void } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'swy-recorder-'));
  const metrics = new Metrics({ defaultMetrics: false });
  const client = new RecorderClient({ policies: { policyOf: (route) => (route === 'iris' ? policy : undefined) }, metrics, settings: { sink: 'ndjson', dir, budgets: recorderBudgets(256) }, ...options });
  client.setPolicies([['iris', { predictions: policy.predictions, pairs: policy.pairs }]]);
  clients.push(client);
  return { client, dir, metrics };
}

describe('RecorderClient and the recorder worker', () => {
  it('pairs the served and shadow answers in the worker, writes one record, and reports the agreement totals', async () => {
    const { client, dir } = await start();
    client.shadowed(shadowed('r1', 'setosa'));
    client.served(served('r1', 'setosa'));
    client.served(served('r2', 'setosa'));
    client.shadowed(shadowed('r2', 'virginica'));
    await client.flush();
    const records = await readLog(dir);
    expect(records.map((r) => [r.requestId, r.complete, (r.comparison as { agree: boolean }).agree])).toEqual([['r1', true, true], ['r2', true, false]]);
    expect(records[0]!.served).toMatchObject({ variant: 'iris-v1', prediction: 'setosa' });
    expect(records[0]!.input).toBeUndefined();
    expect(client.agreementOf('iris')).toEqual({ agree: 1, parsed: 2 });
    const series = (await client.metricsJSON()) as { name: string; values: { labels: Record<string, string>; value: number }[] }[];
    const pairs = series.find((m) => m.name === 'switchyard_pairs_total')!;
    expect(pairs.values.map((v) => [v.labels.result, v.value]).sort()).toEqual([['agree', 1], ['disagree', 1]]);
  });

  it('reports the totals of a burst once the worker has worked through all of it, without a flush', async () => {
    // 4,000 pairs take the worker many 32-item batches, longer than its 20 ms ack delay: an ack sent mid-burst must be
    // followed by one with the final totals, or the controller would publish a short count until the next request.
    const { client } = await start();
    const pairs = 4_000;
    for (let i = 0; i < pairs; i++) {
      client.served(served(`b${i}`, 'setosa'));
      client.shadowed(shadowed(`b${i}`, 'setosa'));
    }
    await expect.poll(() => client.agreementOf('iris'), { timeout: 10_000, interval: 20 }).toEqual({ agree: pairs, parsed: pairs });
  });

  it('joins feedback in the worker with one status per item', async () => {
    const { client } = await start();
    client.served(served('r1', 'setosa'));
    client.shadowed(shadowed('r1', 'versicolor'));
    await client.flush();
    const results = await client.feedback([{ requestId: 'r1', label: 'versicolor' }, { requestId: 'nope', label: 'setosa' }]);
    expect(results).toEqual([
      { requestId: 'r1', status: 'joined', correct: { 'iris-v1': false, 'iris-v2': true } },
      { requestId: 'nope', status: 'unknown_request' },
    ]);
  });

  it('drops and counts observations beyond the bound instead of queueing without limit', async () => {
    const { client, metrics } = await start({ maxQueue: 2 });
    for (let i = 0; i < 5; i++) client.shadowed(shadowed(`r${i}`, 'setosa'));
    const dropped = await metrics.recordsDropped.get();
    expect(dropped.values.find((v) => v.labels.reason === 'queue_full')?.value).toBe(3);
  });

  it('restarts a failed worker, counts what arrived meanwhile as lost, and records again', async () => {
    const errors: Error[] = [];
    const { client, dir, metrics } = await start({ restartMs: 50, onError: (err) => errors.push(err) });
    client.setPolicies([1] as never); // a message the worker cannot handle: it fails
    await expect.poll(() => client.down, { timeout: 5_000, interval: 5 }).toBe(true);
    client.served(served('lost', 'setosa', 0));
    client.setPolicies([['iris', { predictions: policy.predictions, pairs: policy.pairs }]]); // what the new worker gets
    await expect.poll(() => client.down, { timeout: 5_000, interval: 5 }).toBe(false);
    client.served(served('r1', 'setosa', 0));
    await client.flush();
    expect((await readLog(dir)).map((r) => r.requestId)).toEqual(['r1']);
    const dropped = await metrics.recordsDropped.get();
    expect(dropped.values.find((v) => v.labels.reason === 'worker_down')?.value).toBe(1);
    expect(errors).toHaveLength(1);
  });

  it('records no client fault: an aborted or oversized request is neither a prediction nor a model failure', async () => {
    const { client, dir } = await start();
    client.served({ ...served('gone', 'setosa', 0), errorKind: 'client_abort' });
    client.served({ ...served('oversized', 'setosa', 0), status: 0, errorKind: 'body_too_large', responseBody: null });
    client.served({ ...served('failed', 'setosa', 0), status: 503, errorKind: 'status_5xx' });
    await client.flush();
    expect((await readLog(dir)).map((r) => [r.type, r.requestId, r.error])).toEqual([['served', 'failed', 'status_5xx']]);
  });

  it('counts observations that arrive after close as lost, and closes once', async () => {
    const { client, metrics, dir } = await start();
    client.served(served('r1', 'setosa', 0));
    await Promise.all([client.close(), client.close()]);
    client.served(served('r2', 'setosa', 0));
    const dropped = await metrics.recordsDropped.get();
    expect(dropped.values.find((v) => v.labels.reason === 'worker_down')?.value).toBe(1);
    // What was sent before close was written: a served record (sampled at rate 1) for r1.
    expect((await readLog(dir)).map((r) => [r.type, r.requestId])).toEqual([['served', 'r1']]);
    expect(await client.metricsJSON()).toEqual([]);
  });
});
