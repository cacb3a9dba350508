// Prediction divergence and drift end to end: real model servers on 127.0.0.1 whose class mixes differ, and inputs that move.
import { afterEach, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { startModelServer, type ModelServer } from '../../src/demo/model-server.js';
import type { Classifier } from '../../src/demo/iris.js';
import { createPrng } from '../../src/demo/prng.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';

const classes = ['setosa', 'versicolor', 'virginica'] as const;

/**
 * A classifier that answers by the first feature, a uniform in [0, 1) sent by the client: below `a` setosa, below
 * `b` versicolor, else virginica. Two of them with different cut points answer the same traffic with different mixes.
 */
function cutClassifier(a: number, b: number, noise = 0, seed = 1): Classifier {
  const random = createPrng(seed);
  return {
    kind: 'decision-tree',
    classes,
    predict: (features) => {
      // With `noise`, a share of answers is a random class (a sampling model disagrees with itself).
      const index = noise > 0 && random() < noise ? Math.floor(random() * 3) : features[0]! < a ? 0 : features[0]! < b ? 1 : 2;
      return { label: classes[index]!, classIndex: index, probabilities: classes.map((_, i) => (i === index ? 1 : 0)) };
    },
  };
}

interface Load {
  sent: number;
  statuses: Map<number, number>;
  /** The second feature's offset (input drift). */
  shift: number;
  stop(): Promise<void>;
}

/** Closed-loop load: the first feature walks a low-discrepancy sequence over [0, 1), so both arms see the same mix. */
function startLoad(base: string, concurrency = 8): Load {
  let running = true;
  let i = 0;
  const load: Load = {
    sent: 0,
    statuses: new Map(),
    shift: 0,
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
  const worker = async () => {
    while (running) {
      const n = i++;
      const x = (n * 0.6180339887498949) % 1;
      const width = 3 + ((n * 0.7548776662466927) % 1) + load.shift;
      const res = await request(`${base}/v1/models/iris:predict`, { method: 'POST', body: JSON.stringify({ instances: [[x, width, 1, 1]] }), headers: { 'content-type': 'application/json', 'x-user-id': `user-${n}` } });
      await res.body.dump();
      load.sent++;
      load.statuses.set(res.statusCode, (load.statuses.get(res.statusCode) ?? 0) + 1);
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return load;
}

interface DivergenceView {
  challenger: string;
  state: string;
  action: string;
  champion: { n: number; distribution: Record<string, number> };
  challengerSide: { n: number; distribution: Record<string, number> };
  reason: string;
  noiseFloor?: { state: string; disagreement: number | null; floorDisagreement: number | null; pairs: number };
}

async function analysis(swy: RunningSwitchyard): Promise<{ phase: string; role: string; rollbackReason: string | null; divergence: DivergenceView[]; guardrails: { name: string; state: string }[]; counts: { local: { role: string; requests: number }[] } }> {
  return (await (await request(`${swy.adminUrl}/v1/routes/iris/analysis`)).body.json()) as never;
}

function policy(champion: string, challenger: string | null, extra: Record<string, unknown>) {
  return {
    routes: [
      {
        name: 'iris',
        match: { pathPrefix: '/v1/models/iris' },
        champion: { name: 'iris-v1', url: champion },
        challengers: challenger === null ? [] : [{ name: 'iris-v2', url: challenger, mode: 'canary', percent: 50 }],
        stickiness: { header: 'x-user-id' },
        predictions: { protocol: 'kserve-v1', sampleRate: 1 },
        ...extra,
      },
    ],
  };
}

describe('prediction divergence', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function setup(extra: Record<string, unknown>, challengerCuts: [number, number] | null = [0.6, 0.8]) {
    // Champion: 50 % setosa, 30 % versicolor, 20 % virginica; challenger: 60 / 20 / 20 (a 10-point shift).
    const champion: ModelServer = await startModelServer({ name: 'iris', version: 'v1', model: cutClassifier(0.5, 0.8), port: 0, host: '127.0.0.1' });
    cleanup.push(() => champion.close());
    let challenger: ModelServer | null = null;
    if (challengerCuts !== null) {
      challenger = await startModelServer({ name: 'iris', version: 'v2', model: cutClassifier(...challengerCuts), port: 0, host: '127.0.0.1' });
      cleanup.push(() => challenger!.close());
    }
    const swy = await startSwitchyard(policy(champion.url, challenger?.url ?? null, extra), { controlIntervalMs: 100 });
    cleanup.push(() => swy.close());
    const load = startLoad(swy.dataUrl);
    cleanup.push(() => load.stop());
    return { swy, load };
  }

  it('rolls back a challenger whose class mix shifts by 10 points, with equal errors and latency', async () => {
    const { swy, load } = await setup({ divergence: { action: 'rollback', classes: 3, minAnswers: 200 } });
    await expect.poll(async () => (await analysis(swy)).phase, { timeout: 60_000, interval: 100 }).toBe('rolled_back');
    await load.stop();
    const a = await analysis(swy);
    expect(a.rollbackReason).toBe('prediction_divergence');
    const report = a.divergence.find((d) => d.challenger === 'iris-v2')!;
    expect(report.state).toBe('divergent');
    expect(report.action).toBe('rollback');
    console.info(`rolled back on divergence after ${report.champion.n} champion and ${report.challengerSide.n} challenger answers: ${report.reason}`);
    expect(report.champion.distribution.setosa).toBeCloseTo(0.5, 1);
    expect(report.challengerSide.distribution.setosa).toBeCloseTo(0.6, 1);
    expect(a.guardrails.find((g) => g.name === 'prediction_divergence')!.state).toBe('breach');
    // Nothing else breached: the rollback is the divergence's alone.
    expect(a.guardrails.filter((g) => g.name !== 'prediction_divergence' && g.state === 'breach')).toEqual([]);
    expect([...load.statuses.keys()]).toEqual([200]);
    const metrics = await (await request(`${swy.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/switchyard_prediction_divergence\{route="iris",variant="iris-v2"\} 0\.0\d+/);
  }, 90_000);

  it('reports the same shift without acting when the action is report', async () => {
    const { swy, load } = await setup({ divergence: { action: 'report', classes: 3, minAnswers: 200 } });
    await expect.poll(async () => (await analysis(swy)).divergence[0]?.state, { timeout: 60_000, interval: 100 }).toBe('divergent');
    await load.stop();
    const a = await analysis(swy);
    expect(a.phase).not.toBe('rolled_back');
    expect(a.guardrails.some((g) => g.name === 'prediction_divergence')).toBe(false);
  }, 90_000);

  it('does not call an identical challenger divergent', async () => {
    const { swy, load } = await setup({ divergence: { action: 'rollback', classes: 3, minAnswers: 200 } }, [0.5, 0.8]);
    await expect.poll(async () => (await analysis(swy)).divergence[0]?.challengerSide.n ?? 0, { timeout: 60_000, interval: 100 }).toBeGreaterThan(1_500);
    await load.stop();
    const a = await analysis(swy);
    expect(a.divergence[0]!.state).toBe('not_divergent');
    expect(a.phase).not.toBe('rolled_back');
  }, 90_000);
});

describe('prediction divergence across replicas (Redis)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it('judges the fleet\'s pooled counts and rolls back every replica', async () => {
    const prefix = `swy-divergence-${randomUUID().slice(0, 8)}`;
    const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    cleanup.push(async () => {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    });
    const champion = await startModelServer({ name: 'iris', version: 'v1', model: cutClassifier(0.5, 0.8), port: 0, host: '127.0.0.1' });
    const challenger = await startModelServer({ name: 'iris', version: 'v2', model: cutClassifier(0.6, 0.8), port: 0, host: '127.0.0.1' });
    cleanup.push(() => champion.close(), () => challenger.close());
    const replicas: RunningSwitchyard[] = [];
    for (const instanceId of ['divergence-a', 'divergence-b']) {
      const swy = await startSwitchyard(policy(champion.url, challenger.url, { divergence: { action: 'rollback', classes: 3, minAnswers: 200 } }), {
        controlIntervalMs: 50,
        coordination: { redisUrl: 'redis://127.0.0.1:6379', prefix, instanceId, intervalMs: 50 },
      });
      cleanup.push(() => swy.close());
      replicas.push(swy);
    }
    await expect.poll(async () => (await Promise.all(replicas.map(analysis))).map((a) => a.role).sort().join(','), { timeout: 10_000 }).toBe('follower,leader');
    const loads = replicas.map((r) => startLoad(r.dataUrl, 4));
    cleanup.push(async () => {
      for (const load of loads) await load.stop();
    });
    for (const swy of replicas) await expect.poll(async () => (await analysis(swy)).phase, { timeout: 60_000, interval: 100 }).toBe('rolled_back');
    for (const load of loads) await load.stop();
    const views = await Promise.all(replicas.map(analysis));
    const leaderIndex = views.findIndex((v) => v.role === 'leader');
    expect(views[leaderIndex]!.rollbackReason).toBe('prediction_divergence');
    // Once the last counts have travelled (worker, then Redis), the leader's test holds both replicas' answers: more
    // champion answers than it served itself.
    const ownChampion = views[leaderIndex]!.counts.local.find((a) => a.role === 'champion')!.requests;
    const otherChampion = views[1 - leaderIndex]!.counts.local.find((a) => a.role === 'champion')!.requests;
    await expect.poll(async () => (await analysis(replicas[leaderIndex]!)).divergence[0]!.champion.n, { timeout: 10_000, interval: 100 }).toBeGreaterThan(ownChampion);
    const pooled = (await analysis(replicas[leaderIndex]!)).divergence[0]!.champion.n;
    expect(pooled).toBeLessThanOrEqual(ownChampion + otherChampion);
    console.info(`pooled divergence: ${pooled} champion answers judged; the replicas served ${ownChampion} and ${otherChampion}`);
  }, 90_000);
});

describe('noise floor', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it('judges shadows against how often the champion disagrees with itself', async () => {
    // A champion that answers a random class 15 % of the time; iris-v2 is the same model, iris-v3 moves a cut point.
    const start = (version: string, a: number, seed: number) => startModelServer({ name: 'iris', version, model: cutClassifier(a, 0.8, 0.15, seed), port: 0, host: '127.0.0.1' });
    const champion = await start('v1', 0.5, 1);
    const same = await start('v2', 0.5, 2);
    const moved = await start('v3', 0.62, 3);
    cleanup.push(() => champion.close(), () => same.close(), () => moved.close());
    const route = {
      name: 'iris',
      match: { pathPrefix: '/v1/models/iris' },
      champion: { name: 'iris-v1', url: champion.url },
      challengers: [
        { name: 'iris-v1-floor', url: champion.url, mode: 'shadow', percent: 100 },
        { name: 'iris-v2', url: same.url, mode: 'shadow', percent: 100 },
        { name: 'iris-v3', url: moved.url, mode: 'shadow', percent: 100 },
      ],
      predictions: { protocol: 'kserve-v1', sampleRate: 1 },
      divergence: { classes: 3, minAnswers: 200, noiseFloor: 'iris-v1-floor' },
    };
    const swy = await startSwitchyard({ routes: [route] }, { controlIntervalMs: 100 });
    cleanup.push(() => swy.close());
    const load = startLoad(swy.dataUrl, 4);
    cleanup.push(() => load.stop());
    const floorOf = async (name: string) => (await analysis(swy)).divergence.find((d) => d.challenger === name)?.noiseFloor;
    await expect.poll(async () => (await floorOf('iris-v3'))?.state, { timeout: 60_000, interval: 100 }).toBe('above_floor');
    await expect.poll(async () => (await floorOf('iris-v2'))?.pairs ?? 0, { timeout: 60_000, interval: 100 }).toBeGreaterThan(2_000);
    await load.stop();
    const v2 = (await floorOf('iris-v2'))!;
    // Against zero the same model looks bad (about 20 % of its pairs disagree); against the floor it is where it should be.
    expect(v2.disagreement!).toBeGreaterThan(0.1);
    expect(v2.floorDisagreement!).toBeGreaterThan(0.1);
    expect(v2.state).toBe('at_floor');
    expect((await analysis(swy)).divergence.find((d) => d.challenger === 'iris-v1-floor')!.noiseFloor).toBeUndefined();
  }, 90_000);
});

describe('drift', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it('appends a drift event when an input feature moves, and none while it stays; the event reaches a webhook', async () => {
    const champion = await startModelServer({ name: 'iris', version: 'v1', model: cutClassifier(0.5, 0.8), port: 0, host: '127.0.0.1' });
    cleanup.push(() => champion.close());
    // A webhook receiver (the notifier forwards audit events to SWITCHYARD_WEBHOOK_URLS).
    const posted: { type: string; action: string; detail: { feature: string } }[] = [];
    const hook = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posted.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as (typeof posted)[number]);
        res.writeHead(200).end();
      });
    }).listen(0, '127.0.0.1');
    await once(hook, 'listening');
    cleanup.push(async () => {
      hook.closeAllConnections();
      hook.close();
    });
    const swy = await startSwitchyard(
      policy(champion.url, null, { drift: { windowMs: 500, minCount: 100, predictions: false, features: [{ pointer: '/instances/0/1', kind: 'numeric', name: 'sepal_width' }] } }),
      { controlIntervalMs: 100, webhookUrls: [`http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`] },
    );
    cleanup.push(() => swy.close());
    const load = startLoad(swy.dataUrl, 4);
    cleanup.push(() => load.stop());
    const events = async () => ((await (await request(`${swy.adminUrl}/v1/events?route=iris`)).body.json()) as { events: { action: string; detail: { feature: string; variant: string; psi: number; drifted: boolean } }[] }).events;
    // A window after the reference is judged, without drift.
    await expect.poll(async () => ((await analysis(swy)) as unknown as { drift: unknown[] }).drift.length, { timeout: 20_000, interval: 100 }).toBeGreaterThan(0);
    expect((await events()).filter((e) => e.action === 'drift')).toEqual([]);
    load.shift = 0.5;
    await expect.poll(async () => (await events()).filter((e) => e.action === 'drift').length, { timeout: 20_000, interval: 100 }).toBeGreaterThan(0);
    await load.stop();
    const drift = (await events()).find((e) => e.action === 'drift')!;
    expect(drift.detail).toMatchObject({ feature: 'sepal_width', variant: 'iris-v1', drifted: true });
    expect(drift.detail.psi).toBeGreaterThan(0.2);
    const metrics = await (await request(`${swy.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/switchyard_drift\{route="iris",variant="iris-v1",feature="sepal_width"\} \d/);
    await expect.poll(() => posted.filter((p) => p.type === 'drift').length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(posted.find((p) => p.type === 'drift')).toMatchObject({ action: 'drift', detail: { feature: 'sepal_width' } });
  }, 60_000);
});
