// Shadow mirrors and the paired-prediction log through real sockets: isolation from the client, bounds, pairing, sinks.
import { readFile, readdir, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';

interface PairRecord {
  type: string;
  requestId: string;
  complete: boolean;
  key: string | null;
  served: { variant: string; status: number; prediction: unknown; latencyMs: number } | null;
  shadow: { variant: string; status: number; prediction: unknown; error: string | null } | null;
  comparison: { kind: string; agree: boolean | null; exactMatch?: boolean; absDiff?: number } | null;
  input?: unknown;
  variant?: string;
  prediction?: unknown;
}

function shadowPolicy(champion: string, shadow: string, extra: Record<string, unknown> = {}, percent = 100) {
  return {
    routes: [
      {
        name: 'iris',
        match: { pathPrefix: '/v1/models/iris', methods: ['POST', 'GET'] },
        champion: { name: 'iris-v1', url: champion },
        challengers: [{ name: 'iris-v2', url: shadow, mode: 'shadow', percent }],
        stickiness: { header: 'x-user-id' },
        predictions: { protocol: 'json', pointer: '/prediction', kind: 'class' },
        ...extra,
      },
    ],
  };
}

async function post(base: string, body = '{"instances":[[5.1,3.5,1.4,0.2]]}', headers: Record<string, string> = {}) {
  const res = await request(`${base}/v1/models/iris:predict`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

async function readRecords(dir: string): Promise<PairRecord[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.ndjson'));
  const lines: PairRecord[] = [];
  for (const f of files) {
    for (const line of (await readFile(path.join(dir, f), 'utf8')).split('\n')) if (line) lines.push(JSON.parse(line) as PairRecord);
  }
  return lines;
}

async function metricsText(swy: RunningSwitchyard): Promise<string> {
  return (await request(`${swy.adminUrl}/metrics`)).body.text();
}

describe('shadow mode', () => {
  let champion: Upstream;
  let shadow: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
    shadow = await startUpstream(behave.json('versicolor'), { name: 'shadow' });
    swy = await startSwitchyard(shadowPolicy(champion.url, shadow.url, { shadow: { maxInFlight: 4, methods: ['POST'], maxBodyBytes: 1000 } }));
  });
  afterAll(async () => {
    await swy.close();
    await champion.close();
    await shadow.close();
  });
  afterEach(() => {
    champion.clear();
    shadow.clear();
    champion.setBehaviour(behave.json('setosa'));
    shadow.setBehaviour(behave.json('versicolor'));
  });

  it('serves the champion, mirrors the same body to the challenger, and logs one pair per request', async () => {
    const res = await post(swy.dataUrl, undefined, { 'x-user-id': 'u1' });
    expect(res.status).toBe(200);
    expect(res.headers['x-switchyard-variant']).toBe('iris-v1');
    expect(JSON.parse(res.text)).toMatchObject({ prediction: 'setosa' });
    const [mirrored] = await shadow.waitForRequests(1);
    expect(mirrored!.body.toString()).toBe('{"instances":[[5.1,3.5,1.4,0.2]]}');
    expect(mirrored!.headers['x-switchyard-shadow']).toBe('1');
    expect(mirrored!.headers['x-request-id']).toBe(res.headers['x-request-id']);
    // Only mirrors carry the marker: the served request has none.
    expect(champion.requests).toHaveLength(1);
    expect(champion.requests[0]!.headers['x-switchyard-shadow']).toBeUndefined();
    await swy.app.recorder.flush();
    const records = (await readRecords(path.join(swy.dir, 'pairs'))).filter((r) => r.requestId === res.headers['x-request-id']);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      type: 'pair',
      complete: true,
      served: { variant: 'iris-v1', status: 200, prediction: 'setosa' },
      shadow: { variant: 'iris-v2', status: 200, prediction: 'versicolor' },
      comparison: { kind: 'class', agree: false },
    });
    // Sticky keys are hashed by default, never logged raw.
    expect(records[0]!.key).toMatch(/^[0-9a-f]{24}$/);
    expect(records[0]!.input).toBeUndefined();
  });

  it('writes every mirrored request id exactly once, with both predictions', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const batch = await Promise.all(Array.from({ length: 4 }, (_, j) => post(swy.dataUrl, undefined, { 'x-user-id': `k${i}-${j}` })));
      ids.push(...batch.map((r) => String(r.headers['x-request-id'])));
      await shadow.waitForRequests(ids.length);
    }
    // Every mirror has answered and reported before the log is read (a record is written once both halves arrived).
    await expect.poll(() => swy.app.mirror.inFlight('iris'), { timeout: 5_000, interval: 10 }).toBe(0);
    await swy.app.recorder.flush();
    const records = (await readRecords(path.join(swy.dir, 'pairs'))).filter((r) => ids.includes(r.requestId));
    expect(records.map((r) => r.requestId).sort()).toEqual([...ids].sort());
    expect(records.every((r) => r.complete && r.served?.prediction === 'setosa' && r.shadow?.prediction === 'versicolor')).toBe(true);
    const metrics = await metricsText(swy);
    expect(metrics).toMatch(/switchyard_pairs_total\{route="iris",result="disagree"\} \d+/);
    expect(metrics).toContain('switchyard_prediction_agreement_ratio{route="iris"} 0');
    expect(metrics).toMatch(/switchyard_shadow_duration_seconds_count\{route="iris",variant="iris-v2"\} \d+/);
  });

  it('never lets a shadow failure reach the client', async () => {
    for (const behaviour of [behave.status(500), behave.reset()]) {
      shadow.setBehaviour(behaviour);
      const res = await post(swy.dataUrl);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text)).toMatchObject({ prediction: 'setosa' });
    }
  });

  it('bounds mirrors in flight per route and drops and counts the rest', async () => {
    shadow.setBehaviour(behave.hang());
    const before = await metricsText(swy);
    const dropsBefore = Number(/switchyard_shadow_dropped_total\{route="iris",reason="in_flight_full"\} (\d+)/.exec(before)?.[1] ?? 0);
    for (let i = 0; i < 10; i++) expect((await post(swy.dataUrl)).status).toBe(200);
    expect(swy.app.mirror.inFlight('iris')).toBe(4);
    const after = await metricsText(swy);
    expect(Number(/switchyard_shadow_dropped_total\{route="iris",reason="in_flight_full"\} (\d+)/.exec(after)?.[1])).toBe(dropsBefore + 6);
  });

  it('serves but does not mirror bodies over shadow.maxBodyBytes or methods not marked safe', async () => {
    const res = await post(swy.dataUrl, JSON.stringify({ pad: 'x'.repeat(2000) }));
    expect(res.status).toBe(200);
    const get = await request(`${swy.dataUrl}/v1/models/iris`, { method: 'GET' });
    expect(get.statusCode).toBe(200);
    await get.body.dump();
    expect(shadow.count).toBe(0);
    const metrics = await metricsText(swy);
    expect(metrics).toContain('switchyard_shadow_dropped_total{route="iris",reason="body_too_large"} 1');
    expect(metrics).toContain('switchyard_shadow_dropped_total{route="iris",reason="method"} 1');
  });
});

function dropped(metrics: string, reason: string): number {
  return Number(new RegExp(`switchyard_shadow_dropped_total\\{route="[^"]+",reason="${reason}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
}

describe('mirror rewrites: one endpoint serving two models', () => {
  let endpoint: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    endpoint = await startUpstream(behave.json('answer'), { name: 'llm' });
    swy = await startSwitchyard({
      routes: [
        {
          name: 'chat',
          match: { pathPrefix: '/v1/chat/completions' },
          champion: { name: 'gpt-a', url: endpoint.url },
          challengers: [{
            name: 'gpt-b', url: endpoint.url, mode: 'shadow', percent: 100,
            rewrite: { json: { '/model': 'gpt-challenger', '/metadata/arm': 'b' }, headers: { set: { 'X-Api-Key': 'challenger-key' }, remove: ['x-debug'] } },
          }],
        },
      ],
    });
  });
  afterAll(async () => {
    await swy.close();
    await endpoint.close();
  });
  afterEach(() => endpoint.clear());

  async function chat(body: string, headers: Record<string, string> = {}) {
    const res = await request(`${swy.dataUrl}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    return { status: res.statusCode, headers: res.headers, json: (await res.body.json()) as { body: string; headers: Record<string, string> } };
  }

  it('sends the challenger a copy with the model and headers rewritten, and the client\'s request unchanged to the champion', async () => {
    const body = '{"model":"gpt-a","messages":[{"role":"user","content":"hi"}],"metadata":{}}';
    // A client cannot pass its request off as a mirror: its own x-switchyard-shadow is not forwarded.
    const res = await chat(body, { 'x-debug': '1', 'x-api-key': 'client-key', 'x-switchyard-shadow': '1' });
    expect(res.status).toBe(200);
    expect(res.json.body).toBe(body);
    expect(res.json.headers['x-switchyard-shadow']).toBeUndefined();
    expect(res.json.headers).toMatchObject({ 'x-debug': '1', 'x-api-key': 'client-key', 'content-length': String(body.length) });
    const requests = await endpoint.waitForRequests(2);
    const mirrors = requests.filter((r) => r.headers['x-switchyard-shadow'] === '1');
    expect(mirrors).toHaveLength(1);
    const mirror = mirrors[0]!;
    expect(JSON.parse(mirror.body.toString())).toEqual({ model: 'gpt-challenger', messages: [{ role: 'user', content: 'hi' }], metadata: { arm: 'b' } });
    expect(mirror.headers['content-length']).toBe(String(mirror.body.length));
    expect(mirror.headers['x-api-key']).toBe('challenger-key');
    expect(mirror.headers['x-debug']).toBeUndefined();
    expect(mirror.headers['x-request-id']).toBe(res.headers['x-request-id']);
  });

  it('serves but does not mirror a body it cannot rewrite, and counts why', async () => {
    const before = await metricsText(swy);
    expect((await chat('model=gpt-a')).status).toBe(200);
    expect((await chat('{"model":"gpt-a"}')).status).toBe(200);
    // The pointer /metadata/arm needs a metadata object; without one, setting /model alone would pass off the champion's answer as the challenger's.
    const ok = await chat('{"model":"gpt-a","metadata":{}}');
    expect(ok.status).toBe(200);
    await expect.poll(() => swy.app.mirror.inFlight('chat'), { timeout: 5_000, interval: 10 }).toBe(0);
    const after = await metricsText(swy);
    expect(dropped(after, 'rewrite_not_json')).toBe(dropped(before, 'rewrite_not_json') + 1);
    expect(dropped(after, 'rewrite_no_target')).toBe(dropped(before, 'rewrite_no_target') + 1);
    const mirrors = endpoint.requests.filter((r) => r.headers['x-switchyard-shadow'] === '1');
    expect(mirrors.map((r) => JSON.parse(r.body.toString()) as unknown)).toEqual([{ model: 'gpt-challenger', metadata: { arm: 'b' } }]);
  });
});

describe('the shadow budget: mirrors are shed while the champion is slow', () => {
  let champion: Upstream;
  let shadow: Upstream;
  let swy: RunningSwitchyard;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
    shadow = await startUpstream(behave.json('versicolor'), { name: 'shadow' });
    swy = await startSwitchyard(shadowPolicy(champion.url, shadow.url, { shadow: { maxInFlight: 64, methods: ['POST'], maxBodyBytes: 10_000, shed: { latencyMs: 60, samples: 3 } } }));
  });
  afterAll(async () => {
    await swy.close();
    await champion.close();
    await shadow.close();
  });

  it('sheds and counts mirrors once the champion slows down, and mirrors again once it recovers', async () => {
    for (let i = 0; i < 5; i++) expect((await post(swy.dataUrl)).status).toBe(200);
    await shadow.waitForRequests(5);
    expect(dropped(await metricsText(swy), 'shed')).toBe(0);

    // A real slow champion: 150 ms per answer, far above the 60 ms bound.
    champion.setBehaviour(behave.delay(150, 'setosa'));
    await expect.poll(async () => {
      expect((await post(swy.dataUrl)).status).toBe(200);
      return dropped(await metricsText(swy), 'shed');
    }, { timeout: 10_000, interval: 1 }).toBeGreaterThan(0);
    // While it stays slow, every request is served and none is mirrored.
    await expect.poll(() => swy.app.mirror.inFlight('iris'), { timeout: 5_000, interval: 10 }).toBe(0);
    const mirroredBefore = shadow.count;
    const shedBefore = dropped(await metricsText(swy), 'shed');
    for (let i = 0; i < 3; i++) expect((await post(swy.dataUrl)).status).toBe(200);
    expect(dropped(await metricsText(swy), 'shed')).toBe(shedBefore + 3);
    await expect.poll(() => swy.app.mirror.inFlight('iris'), { timeout: 5_000, interval: 10 }).toBe(0);
    expect(shadow.count).toBe(mirroredBefore);

    // The champion recovers: the shed requests' own fast answers bring the estimate down, and mirrors resume.
    champion.setBehaviour(behave.json('setosa'));
    await expect.poll(async () => {
      expect((await post(swy.dataUrl)).status).toBe(200);
      return shadow.count;
    }, { timeout: 10_000, interval: 1 }).toBeGreaterThan(mirroredBefore);
    const shedAfterRecovery = dropped(await metricsText(swy), 'shed');
    for (let i = 0; i < 3; i++) expect((await post(swy.dataUrl)).status).toBe(200);
    expect(dropped(await metricsText(swy), 'shed')).toBe(shedAfterRecovery);
  });
});

describe('champion latency is independent of the shadow', () => {
  let champion: Upstream;
  let slowShadow: Upstream;
  let deadShadowUrl: string;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('a'));
    slowShadow = await startUpstream(behave.delay(200, 'b'));
    const dead = await startUpstream();
    deadShadowUrl = dead.url;
    await dead.close();
  });
  afterAll(async () => {
    await champion.close();
    await slowShadow.close();
  });

  async function p99(shadowUrl: string, percent: number): Promise<number> {
    const swy = await startSwitchyard(shadowPolicy(champion.url, shadowUrl, { shadow: { maxInFlight: 64, methods: ['POST'], maxBodyBytes: 10_000 } }, percent));
    try {
      for (let i = 0; i < 30; i++) await post(swy.dataUrl); // warm-up
      const latencies: number[] = [];
      for (let i = 0; i < 300; i++) {
        const t0 = performance.now();
        const res = await post(swy.dataUrl);
        latencies.push(performance.now() - t0);
        expect(res.status).toBe(200);
      }
      latencies.sort((a, b) => a - b);
      return latencies[Math.floor(latencies.length * 0.99)]!;
    } finally {
      await swy.close();
    }
  }

  it('keeps the champion p99 with a 200 ms-slow or dead shadow close to the no-shadow p99', async () => {
    const baseline = await p99(slowShadow.url, 0);
    const slow = await p99(slowShadow.url, 100);
    const dead = await p99(deadShadowUrl, 100);
    // Generous bound: shared 2-core CI machines are noisy, but awaiting a 200 ms shadow would blow far past it.
    expect(slow).toBeLessThan(baseline * 3 + 20);
    expect(dead).toBeLessThan(baseline * 3 + 20);
  });
});

describe('prediction records: canary sampling, inputs, redaction, unpaired expiry, OpenAI streams', () => {
  let champion: Upstream;
  let challenger: Upstream;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('setosa'));
    challenger = await startUpstream(behave.json('virginica'));
  });
  afterAll(async () => {
    await champion.close();
    await challenger.close();
  });

  it('writes a record per served canary request with variant, status, latency and prediction; inputs only when opted in, redacted', async () => {
    const swy = await startSwitchyard({
      routes: [
        {
          name: 'iris',
          match: { pathPrefix: '/v1/models/iris' },
          champion: { name: 'iris-v1', url: champion.url },
          challengers: [{ name: 'iris-v2', url: challenger.url, mode: 'canary', percent: 50 }],
          stickiness: { header: 'x-user-id' },
          predictions: { protocol: 'json', pointer: '/prediction', sampleRate: 1, logInputs: true, redact: ['/user/email'], rawKeys: true },
        },
      ],
    });
    try {
      const served = [];
      for (let i = 0; i < 20; i++) served.push(await post(swy.dataUrl, JSON.stringify({ instances: [[1, 2, 3, 4]], user: { email: 'a@b.c', tier: 'gold' } }), { 'x-user-id': `user-${i}` }));
      await swy.app.recorder.flush();
      const records = await readRecords(path.join(swy.dir, 'pairs'));
      expect(records).toHaveLength(20);
      for (const r of served) {
        const record = records.find((x) => x.requestId === r.headers['x-request-id'])!;
        expect(record).toMatchObject({ type: 'served', variant: r.headers['x-switchyard-variant'], status: 200 });
        expect(record.prediction).toBe(r.headers['x-switchyard-variant'] === 'iris-v1' ? 'setosa' : 'virginica');
        expect(record.input).toEqual({ instances: [[1, 2, 3, 4]], user: { email: '[redacted]', tier: 'gold' } });
        expect(record.key).toMatch(/^user-\d+$/);
      }
    } finally {
      await swy.close();
    }
  });

  it('writes a pair whose shadow never answers as unpaired when its TTL expires, and counts it', async () => {
    const hanging = await startUpstream(behave.hang());
    const swy = await startSwitchyard(shadowPolicy(champion.url, hanging.url, { pairs: { ttlMs: 150 }, timeouts: { connectMs: 1000, requestMs: 5000, shadowMs: 60_000 } }));
    try {
      const res = await post(swy.dataUrl);
      await hanging.waitForRequests(1);
      await expect.poll(async () => metricsText(swy), { timeout: 5_000, interval: 100 }).toContain('switchyard_pairs_total{route="iris",result="unpaired"} 1');
      await swy.app.recorder.flush();
      const records = await readRecords(path.join(swy.dir, 'pairs'));
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ requestId: res.headers['x-request-id'], complete: false, served: { prediction: 'setosa' }, shadow: null });
    } finally {
      await swy.close();
      await hanging.close();
    }
  });

  it('passes an OpenAI event stream through and pairs the assembled texts', async () => {
    const tokens = (words: string[]) => [...words.map((w) => JSON.stringify({ choices: [{ delta: { content: w } }] })), '[DONE]'];
    const llmA = await startUpstream(behave.sse(tokens(['Hel', 'lo', ' world'])));
    const llmB = await startUpstream(behave.sse(tokens(['Hel', 'lo', ' there', '!'])));
    const swy = await startSwitchyard({
      routes: [
        {
          name: 'chat',
          match: { pathPrefix: '/v1/chat/completions' },
          champion: { name: 'gpt-a', url: llmA.url },
          challengers: [{ name: 'gpt-b', url: llmB.url, mode: 'shadow', percent: 100 }],
          predictions: { protocol: 'openai' },
        },
      ],
    });
    try {
      const res = await request(`${swy.dataUrl}/v1/chat/completions`, { method: 'POST', body: '{"stream":true}', headers: { 'content-type': 'application/json' } });
      expect(res.headers['content-type']).toContain('text/event-stream');
      const chunks: string[] = [];
      for await (const chunk of res.body) chunks.push(String(chunk));
      expect(chunks.length).toBeGreaterThan(1);
      expect(chunks.join('')).toContain('" world"');
      await llmB.waitForRequests(1);
      await expect.poll(async () => {
        await swy.app.recorder.flush();
        return (await readRecords(path.join(swy.dir, 'pairs'))).length;
      }, { timeout: 5_000, interval: 50 }).toBe(1);
      const [record] = await readRecords(path.join(swy.dir, 'pairs'));
      expect(record).toMatchObject({ served: { prediction: 'Hello world' }, shadow: { prediction: 'Hello there!' }, comparison: { kind: 'text', agree: false, exactMatch: false, lengthDiff: 1 } });
    } finally {
      await swy.close();
      await llmA.close();
      await llmB.close();
    }
  });
});

describe('sink failures never affect serving', () => {
  it('keeps serving when the log directory cannot be created, and counts the lost records', async () => {
    const champion = await startUpstream(behave.json('a'));
    const shadow = await startUpstream(behave.json('b'));
    const base = await mkdtemp(path.join(tmpdir(), 'swy-sink-'));
    const blocker = path.join(base, 'not-a-dir');
    await writeFile(blocker, 'a file where the log directory should be');
    const swy = await startSwitchyard(shadowPolicy(champion.url, shadow.url), { pairs: { dir: path.join(blocker, 'pairs') } });
    try {
      for (let i = 0; i < 20; i++) expect((await post(swy.dataUrl)).status).toBe(200);
      await shadow.waitForRequests(20);
      await expect.poll(async () => {
        await swy.app.recorder.flush();
        return metricsText(swy);
      }, { timeout: 5_000, interval: 50 }).toMatch(/switchyard_pairs_dropped_total\{sink="ndjson",reason="disk_error"\} (1\d|20)/);
    } finally {
      await swy.close();
      await champion.close();
      await shadow.close();
    }
  });
});
