// The demo model server over real sockets: KServe v1 and Open Inference v2 endpoints, errors and fault injection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { loadIris, trainIrisModels } from '../../../src/demo/iris.js';
import { startModelServer, type ModelServer } from '../../../src/demo/model-server.js';

const { logisticRegression, decisionTree } = trainIrisModels();

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: Record<string, unknown>;
}

async function call(url: string, method: 'GET' | 'POST' | 'PUT', body?: unknown): Promise<Reply> {
  const res = await request(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, headers: res.headers, json: (await res.body.json()) as Record<string, unknown> };
}

const predict = (server: ModelServer, body: unknown, path = '/v1/models/iris:predict'): Promise<Reply> =>
  call(server.url + path, 'POST', body);

describe('model server endpoints', () => {
  let champion: ModelServer;
  let challenger: ModelServer;
  beforeAll(async () => {
    champion = await startModelServer({ name: 'iris', version: 'champion-lr', model: logisticRegression });
    challenger = await startModelServer({ name: 'iris', version: 'challenger-tree', model: decisionTree });
  });
  afterAll(async () => {
    await Promise.all([champion.close(), challenger.close()]);
  });

  it('answers KServe v1 predict for array and object instances, with x-model-version', async () => {
    const reply = await predict(champion, {
      instances: [
        [5.1, 3.5, 1.4, 0.2],
        { sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 },
      ],
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['x-model-version']).toBe('champion-lr');
    expect(reply.json.model_name).toBe('iris');
    expect(reply.json.model_version).toBe('champion-lr');
    const predictions = reply.json.predictions as { label: string; class_index: number; probabilities: number[] }[];
    expect(predictions.map((p) => p.label)).toEqual(['setosa', 'virginica']);
    expect(predictions.map((p) => p.class_index)).toEqual([0, 2]);
    expect(predictions[0]?.probabilities).toEqual(logisticRegression.predict([5.1, 3.5, 1.4, 0.2]).probabilities);
  });

  it('routes any path under /v1/models/<name> ending in :predict, and only that name', async () => {
    expect((await predict(champion, { instances: [[5.1, 3.5, 1.4, 0.2]] }, '/v1/models/iris/versions/x:predict?trace=1')).status).toBe(200);
    const other = await predict(champion, { instances: [[5.1, 3.5, 1.4, 0.2]] }, '/v1/models/irises:predict');
    expect(other.status).toBe(404);
    expect(other.json.error).toContain('/v1/models/irises:predict');
  });

  it('answers Open Inference v2 infer with flat or nested data and echoes the id', async () => {
    const flat = await call(`${champion.url}/v2/models/iris/infer`, 'POST', {
      id: 'req-7',
      inputs: [{ name: 'iris_features', shape: [2, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] }],
    });
    expect(flat.status).toBe(200);
    expect(flat.headers['x-model-version']).toBe('champion-lr');
    expect(flat.json).toMatchObject({ model_name: 'iris', model_version: 'champion-lr', id: 'req-7' });
    const outputs = flat.json.outputs as { name: string; shape: number[]; data: unknown[] }[];
    expect(outputs.map((o) => [o.name, o.shape])).toEqual([['label', [2]], ['class_index', [2]], ['probabilities', [2, 3]]]);
    expect(outputs[0]?.data).toEqual(['setosa', 'virginica']);
    expect(outputs[2]?.data).toHaveLength(6);

    const nested = await call(`${challenger.url}/v2/models/iris/versions/challenger-tree/infer`, 'POST', {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [[5.9, 3.0, 4.2, 1.5]] }],
    });
    expect(nested.status).toBe(200);
    expect((nested.json.outputs as { data: unknown[] }[])[0]?.data).toEqual(['versicolor']);
  });

  it('serves metadata, v2 metadata and health', async () => {
    const meta = await call(`${challenger.url}/v1/models/iris`, 'GET');
    expect(meta.status).toBe(200);
    expect(meta.json).toMatchObject({
      name: 'iris', version: 'challenger-tree', ready: true, kind: 'decision-tree',
      classes: ['setosa', 'versicolor', 'virginica'], held_out_accuracy: decisionTree.heldOutAccuracy,
    });
    const v2 = await call(`${challenger.url}/v2/models/iris`, 'GET');
    expect(v2.json).toMatchObject({ name: 'iris', versions: ['challenger-tree'] });
    const health = await call(`${challenger.url}/healthz`, 'GET');
    expect(health.status).toBe(200);
    expect(health.json.status).toBe('ok');
    expect(health.headers['x-model-version']).toBe('challenger-tree');
  });

  it('keeps connections alive for 65 s', async () => {
    const res = await request(`${champion.url}/healthz`);
    await res.body.dump();
    expect(res.headers.connection).toBe('keep-alive');
    expect(res.headers['keep-alive']).toBe('timeout=65');
  });

  it('champion and challenger give different answers on some real rows over HTTP', async () => {
    const instances = loadIris().rows;
    const [a, b] = await Promise.all([predict(champion, { instances }), predict(challenger, { instances })]);
    const labelsA = (a.json.predictions as { label: string }[]).map((p) => p.label);
    const labelsB = (b.json.predictions as { label: string }[]).map((p) => p.label);
    expect(labelsA).toHaveLength(150);
    expect(labelsA.filter((label, i) => label !== labelsB[i]).length).toBeGreaterThan(0);
  });

  it.each([
    ['bad JSON', '{"instances": [[5.1,', 'JSON'],
    ['no instances', { rows: [] }, 'instances must be a non-empty array'],
    ['empty instances', { instances: [] }, 'instances must be a non-empty array'],
    ['short row', { instances: [[5.1, 3.5, 1.4, 0.2], [1, 2, 3]] }, 'instances[1] must have 4 values'],
    ['non-number', { instances: [[5.1, '3.5', 1.4, 0.2]] }, 'instances[0][1] must be a finite number'],
    ['missing key', { instances: [{ sepal_length: 5, sepal_width: 3, petal_length: 1 }] }, 'instances[0].petal_width must be a finite number'],
    ['scalar instance', { instances: [5.1] }, 'instances[0] must be an array'],
    ['array body', [[5.1, 3.5, 1.4, 0.2]], 'body must be a JSON object'],
  ])('v1 rejects %s with 400 naming the field', async (_, body, message) => {
    const before = champion.stats.badRequests;
    const reply = await predict(champion, body);
    expect(reply.status).toBe(400);
    expect(reply.json.error).toContain(message);
    expect(champion.stats.badRequests).toBe(before + 1);
  });

  it.each([
    ['no inputs', {}, 'inputs must be an array'],
    ['wrong datatype', { inputs: [{ name: 'x', shape: [1, 4], datatype: 'INT8', data: [1, 2, 3, 4] }] }, 'inputs[0].datatype'],
    ['wrong shape', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }, 'inputs[0].shape must be [N, 4]'],
    ['data too short', { inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }, 'inputs[0].data must hold 8 values'],
    ['NaN-ish data', { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, null, 4] }] }, 'inputs[0].data[2] must be a finite number'],
  ])('v2 rejects %s with 400 naming the field', async (_, body, message) => {
    const reply = await call(`${champion.url}/v2/models/iris/infer`, 'POST', body);
    expect(reply.status).toBe(400);
    expect(reply.json.error).toContain(message);
  });

  it('answers 405 for a wrong method, 404 for an unknown path, 413 for a huge body', async () => {
    const wrongMethod = await call(`${champion.url}/v1/models/iris:predict`, 'GET');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('POST');
    expect((await call(`${champion.url}/healthz`, 'PUT', {})).status).toBe(405);
    expect((await call(`${champion.url}/nope`, 'GET')).status).toBe(404);
    const huge = await predict(champion, { instances: [], pad: 'x'.repeat(2 * 1024 * 1024) });
    expect(huge.status).toBe(413);
    expect(huge.json.error).toContain('body exceeds');
  });

  it('counts requests, predictions and instances', async () => {
    const server = await startModelServer({ name: 'iris', version: 'v', model: decisionTree });
    try {
      await predict(server, { instances: [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] });
      await predict(server, { instances: [] });
      await call(`${server.url}/healthz`, 'GET');
      expect(server.stats).toEqual({ requests: 3, predictions: 1, instances: 2, badRequests: 1, injectedErrors: 0 });
    } finally {
      await server.close();
    }
  });
});

describe('model server fault injection', () => {
  const body = { instances: [[5.1, 3.5, 1.4, 0.2]] };

  async function statuses(server: ModelServer, n: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await predict(server, body)).status);
    return out;
  }

  it('fails the seeded share of requests with 500, identically for the same seed', async () => {
    const a = await startModelServer({ name: 'iris', version: 'bad', model: logisticRegression, errorRate: 0.3, seed: 11 });
    const b = await startModelServer({ name: 'iris', version: 'bad', model: logisticRegression, errorRate: 0.3, seed: 11 });
    try {
      const first = await statuses(a, 200);
      const second = await statuses(b, 200);
      const failures = first.filter((s) => s === 500).length;
      expect(failures).toBeGreaterThan(40);
      expect(failures).toBeLessThan(80);
      expect(first.filter((s) => s !== 500).every((s) => s === 200)).toBe(true);
      expect(second).toEqual(first);
      expect(a.stats.injectedErrors).toBe(failures);
      expect(a.stats.predictions).toBe(200 - failures);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('errorRate 1 fails everything until setFaults clears it; bad input stays 400', async () => {
    const server = await startModelServer({ name: 'iris', version: 'broken', model: logisticRegression, errorRate: 1 });
    try {
      const failed = await predict(server, body);
      expect(failed.status).toBe(500);
      expect(failed.headers['x-model-version']).toBe('broken');
      expect(failed.json.error).toContain('injected');
      expect((await predict(server, { instances: 'x' })).status).toBe(400);
      server.setFaults({ errorRate: 0 });
      expect((await predict(server, body)).status).toBe(200);
      expect(() => server.setFaults({ errorRate: 2 })).toThrow(RangeError);
    } finally {
      await server.close();
    }
  });

  it('adds latency to predictions but not to health checks', async () => {
    const server = await startModelServer({ name: 'iris', version: 'slow', model: decisionTree, latencyMs: 150 });
    try {
      let started = performance.now();
      expect((await predict(server, body)).status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(145);
      started = performance.now();
      await call(`${server.url}/healthz`, 'GET');
      expect(performance.now() - started).toBeLessThan(145);
    } finally {
      await server.close();
    }
  });

  it('close() does not wait for requests parked on injected latency', async () => {
    const server = await startModelServer({ name: 'iris', version: 'slow', model: decisionTree, latencyMs: 60_000 });
    const pending = predict(server, body).then(
      () => 'answered',
      (err: { code?: string }) => err.code,
    );
    // The request is parked once the server has counted it; wait for that without sleeping.
    await expect.poll(() => server.stats.requests, { interval: 5 }).toBe(1);
    const started = performance.now();
    await server.close();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await pending).toBe('UND_ERR_SOCKET');
  });

  it('rejects invalid fault settings at start', async () => {
    await expect(startModelServer({ name: 'iris', version: 'v', model: decisionTree, errorRate: -0.1 })).rejects.toThrow(RangeError);
    await expect(startModelServer({ name: 'iris', version: 'v', model: decisionTree, latencyMs: Number.NaN })).rejects.toThrow(RangeError);
  });
});
