// Automatic rollback and progressive promotion end to end: real upstreams whose faults are switched on mid-run.
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { runCli } from '../helpers/cli.js';
import { stickyBucket } from '../../src/decision/bucket.js';
import { servingArm } from '../../src/decision/split.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';

const token = 'test-admin-token';


interface Load {
  statuses: Map<number, number>;
  variants: Map<string, number>;
  /** Variants of requests sent after `mark()`. */
  afterMark: Map<string, number>;
  mark(): void;
  stop(): Promise<void>;
}

/** Steady closed-loop load with `concurrency` workers and random sticky keys, until stopped. */
function startLoad(base: string, concurrency = 8): Load {
  let running = true;
  let marked = false;
  const load: Load = {
    statuses: new Map(),
    variants: new Map(),
    afterMark: new Map(),
    mark: () => {
      marked = true;
    },
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
  let n = 0;
  const worker = async () => {
    while (running) {
      const sentAfterMark = marked;
      const res = await request(`${base}/v1/models/iris:predict`, { method: 'POST', body: '{"instances":[[1,2,3,4]]}', headers: { 'content-type': 'application/json', 'x-user-id': `user-${n++}` } });
      await res.body.dump();
      const variant = String(res.headers['x-switchyard-variant']);
      load.statuses.set(res.statusCode, (load.statuses.get(res.statusCode) ?? 0) + 1);
      load.variants.set(variant, (load.variants.get(variant) ?? 0) + 1);
      if (sentAfterMark) load.afterMark.set(variant, (load.afterMark.get(variant) ?? 0) + 1);
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return load;
}

async function routeState(swy: RunningSwitchyard): Promise<{ rolledBack: boolean; challengers: { servedPercent: number }[] }> {
  const res = await request(`${swy.adminUrl}/v1/routes/iris`);
  return (await res.body.json()) as { rolledBack: boolean; challengers: { servedPercent: number }[] };
}

async function analysis(swy: RunningSwitchyard): Promise<{ phase: string; rollbackReason: string | null; step: { index: number } | null; guardrails: { name: string; state: string }[] }> {
  return (await (await request(`${swy.adminUrl}/v1/routes/iris/analysis`)).body.json()) as never;
}

function policy(champion: string, challenger: string, extra: Record<string, unknown> = {}, challengerExtra: Record<string, unknown> = {}) {
  return {
    routes: [
      {
        name: 'iris',
        match: { pathPrefix: '/v1/models/iris' },
        champion: { name: 'iris-v1', url: champion },
        challengers: [{ name: 'iris-v2', url: challenger, mode: 'canary', percent: 50, ...challengerExtra }],
        stickiness: { header: 'x-user-id' },
        timeouts: { connectMs: 1000, requestMs: 5000 },
        ...extra,
      },
    ],
  };
}

describe('automatic rollback', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function setup(extra: Record<string, unknown> = {}, challengerExtra: Record<string, unknown> = {}) {
    const champion = await startUpstream(behave.json('setosa'));
    const challenger = await startUpstream(behave.json('setosa'));
    cleanup.push(() => champion.close(), () => challenger.close());
    const swy = await startSwitchyard(policy(champion.url, challenger.url, extra, challengerExtra), { adminTokens: [{ name: 'ci', secret: token }], controlIntervalMs: 100 });
    cleanup.push(() => swy.close());
    return { champion, challenger, swy };
  }

  async function waitForRollback(swy: RunningSwitchyard, since: number, limitMs: number): Promise<number> {
    await expect.poll(async () => (await routeState(swy)).rolledBack, { timeout: limitMs + 3_000, interval: 25 }).toBe(true);
    return performance.now() - since;
  }

  it('rolls back a challenger that starts returning 500s within 2 s, and with fallback no client sees an error', async () => {
    const { challenger, swy } = await setup({}, { fallback: true });
    const load = startLoad(swy.dataUrl);
    cleanup.push(() => load.stop());
    await challenger.waitForRequests(50);
    const faultAt = performance.now();
    challenger.setBehaviour(behave.status(500));
    const elapsed = await waitForRollback(swy, faultAt, 2_000);
    expect(elapsed).toBeLessThan(2_000);
    load.mark();
    const servedBefore = challenger.count;
    await challenger.waitForRequests(0);
    // After the swap, no request reaches the challenger.
    const afterMarkStart = load.afterMark.get('iris-v2') ?? 0;
    await expect.poll(() => [...load.afterMark.values()].reduce((a, b) => a + b, 0), { timeout: 5_000 }).toBeGreaterThan(100);
    await load.stop();
    expect(load.afterMark.get('iris-v2') ?? 0).toBe(afterMarkStart);
    expect(challenger.count - servedBefore).toBeLessThanOrEqual(8); // at most the requests in flight at the swap
    expect([...load.statuses.keys()]).toEqual([200]);
    expect((await routeState(swy)).challengers[0]!.servedPercent).toBe(0);
    const a = await analysis(swy);
    expect(a.phase).toBe('rolled_back');
    expect(['error_ceiling', 'error_rate']).toContain(a.rollbackReason);
    const events = (await (await request(`${swy.adminUrl}/v1/events?route=iris`)).body.json()) as { events: { action: string; who: string; detail: { reason: string; evidence: unknown[]; arms: { requests: number }[] } }[] };
    const rollback = events.events.find((e) => e.action === 'rollback')!;
    expect(rollback.who).toBe('controller');
    expect(rollback.detail.evidence.length).toBeGreaterThan(0);
    expect(rollback.detail.arms[0]!.requests).toBeGreaterThan(0);
    const metrics = await (await request(`${swy.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/switchyard_rollbacks_total\{route="iris",reason="error_(ceiling|rate)"\} 1/);
    // The gauge follows the verdict: it was set to 0 (collecting) or 1 before the fault, and must now say breach.
    expect(metrics).toMatch(/switchyard_guardrail_state\{route="iris",guardrail="error_(ceiling|rate)"\} 2/);
  });

  it('rolls back a challenger that becomes 100 ms slower with a latency guardrail', async () => {
    const { challenger, swy } = await setup({ guardrails: { minRequests: 30, latency: { baselineRequests: 50 } } });
    const load = startLoad(swy.dataUrl, 16);
    cleanup.push(() => load.stop());
    await challenger.waitForRequests(60);
    challenger.setBehaviour(behave.delay(100, 'setosa'));
    const faultAt = performance.now();
    const elapsed = await waitForRollback(swy, faultAt, 5_000);
    await load.stop();
    const a = await analysis(swy);
    expect(['latency_log_mean', 'latency_exceedance', 'p99_ceiling']).toContain(a.rollbackReason);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('keeps a rolled-back challenger at 0 after a restart, until a person resumes it', async () => {
    const champion = await startUpstream(behave.json('a'));
    const challenger = await startUpstream(behave.json('b'));
    cleanup.push(() => champion.close(), () => challenger.close());
    const first = await startSwitchyard(policy(champion.url, challenger.url), { adminTokens: [{ name: 'ci', secret: token }] });
    const unauthorized = await request(`${first.adminUrl}/v1/routes/iris/rollback`, { method: 'POST' });
    expect(unauthorized.statusCode).toBe(401);
    await unauthorized.body.dump();
    const cli = await runCli(['rollback', 'iris', '--admin-url', first.adminUrl, '--token', token]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('iris: rolled back');
    expect(cli.stdout).toContain('error_rate');
    await first.app.state.flush();
    await first.app.close();
    const second = await startSwitchyard(policy(champion.url, challenger.url), { adminTokens: [{ name: 'ci', secret: token }], dataDir: first.dir });
    cleanup.push(() => second.close());
    expect(await routeState(second)).toMatchObject({ rolledBack: true, challengers: [{ servedPercent: 0 }] });
    const shown = await runCli(['analysis', 'iris', '--admin-url', second.adminUrl, '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ route: 'iris', decision: 'rolled_back', servedPercent: 0 });
    for (let i = 0; i < 50; i++) {
      const r = await request(`${second.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers: { 'x-user-id': `k${i}` } });
      await r.body.dump();
      expect(r.headers['x-switchyard-variant']).toBe('iris-v1');
    }
    const resumed = await request(`${second.adminUrl}/v1/routes/iris/resume`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    await resumed.body.dump();
    expect(await routeState(second)).toMatchObject({ rolledBack: false, challengers: [{ servedPercent: 50 }] });
  });
});

describe('resume and the sample-ratio check', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function start(extra: Record<string, unknown> = {}) {
    const champion = await startUpstream(behave.json('setosa'));
    const challenger = await startUpstream(behave.json('setosa'));
    cleanup.push(() => champion.close(), () => challenger.close());
    // No timer: the test ticks the controller itself, so "the next tick" is exact.
    const swy = await startSwitchyard(policy(champion.url, challenger.url, extra), { adminTokens: [{ name: 'ci', secret: token }], controlIntervalMs: 3_600_000 });
    cleanup.push(() => swy.close());
    swy.app.controller.tick();
    return { challenger, swy };
  }

  /** One request per key, 32 at a time. */
  async function send(swy: RunningSwitchyard, keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 32) {
      await Promise.all(keys.slice(i, i + 32).map(async (key) => {
        const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-user-id': key } });
        await res.body.dump();
      }));
    }
  }

  /** Keys the route's current split serves from `arm`. */
  function keysOn(swy: RunningSwitchyard, arm: string, n: number, prefix: string): string[] {
    const decision = swy.app.splits.snapshot.byName.get('iris')!;
    const keys: string[] = [];
    for (let i = 0; keys.length < n; i++) if (servingArm(decision, stickyBucket(`${prefix}-${i}`, decision.groupId)).name === arm) keys.push(`${prefix}-${i}`);
    return keys;
  }

  const srmOf = async (swy: RunningSwitchyard) => ((await analysis(swy)) as unknown as { srm: { pValue: number; ok: boolean } }).srm;

  const admin = (swy: RunningSwitchyard, method: 'POST' | 'PUT', path: string, body?: unknown) =>
    request(`${swy.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  it('keeps a resume after a breaker rollback: the evidence that rolled back is gone before the next tick', async () => {
    const { challenger, swy } = await start({ guardrails: { minRequests: 20 } });
    challenger.setBehaviour(behave.status(500));
    await send(swy, Array.from({ length: 200 }, (_, i) => `u${i}`));
    swy.app.controller.tick();
    expect(await routeState(swy)).toMatchObject({ rolledBack: true });
    challenger.setBehaviour(behave.json('setosa'));
    const resumed = await admin(swy, 'POST', '/v1/routes/iris/resume');
    expect(resumed.statusCode).toBe(200);
    await resumed.body.dump();
    // Main's controller judged the resumed route on the old failures at its next tick and rolled it back again.
    for (let i = 0; i < 5; i++) swy.app.controller.tick();
    expect(await routeState(swy)).toMatchObject({ rolledBack: false, challengers: [{ servedPercent: 50 }] });
    const a = await analysis(swy);
    expect(a.phase).not.toBe('rolled_back');
    expect(a.guardrails.filter((g) => g.state === 'breach')).toEqual([]);
    await send(swy, Array.from({ length: 100 }, (_, i) => `v${i}`));
    swy.app.controller.tick();
    expect(await routeState(swy)).toMatchObject({ rolledBack: false });
  });

  it('judges the sample ratio over the current split only: a manual split change clears a stale mismatch', async () => {
    const { swy } = await start();
    // A skewed client population: nearly only users the bucketing puts on the champion, so the 50 % split looks broken.
    await send(swy, [...keysOn(swy, 'iris-v1', 500, 'skew'), ...keysOn(swy, 'iris-v2', 20, 'skew')]);
    swy.app.controller.tick();
    expect((await srmOf(swy)).ok).toBe(false);
    const set = await admin(swy, 'PUT', '/v1/routes/iris/split', { challenger: 'iris-v2', percent: 40 });
    expect(set.statusCode).toBe(200);
    await set.body.dump();
    swy.app.controller.tick();
    // Main kept the stale failure (p 3e-13 in the issue) through every later split and blocked promotion with it.
    expect(await srmOf(swy)).toEqual({ pValue: 1, ok: true });
  });

  it('counts randomisation units, not requests: a few very active users are no mismatch', async () => {
    const { swy } = await start();
    const busy = keysOn(swy, 'iris-v1', 10, 'busy');
    const quiet = keysOn(swy, 'iris-v2', 10, 'quiet');
    // 1,000 champion requests against 40 challenger ones (counted as requests: p about 1e-19), from 10 users each side.
    await send(swy, Array.from({ length: 100 }, () => busy).flat());
    await send(swy, Array.from({ length: 4 }, () => quiet).flat());
    swy.app.controller.tick();
    expect((await srmOf(swy)).ok).toBe(true);
    const arms = ((await analysis(swy)) as unknown as { arms: { name: string; requests: number }[] }).arms;
    expect(arms.map((a) => a.requests)).toEqual([1000, 40]);
  });
});

describe('progressive rollout', () => {
  let champion: Upstream;
  let challenger: Upstream;
  let swy: RunningSwitchyard;
  afterEach(async () => {
    await swy?.close();
    await champion?.close();
    await challenger?.close();
  });

  it('advances an A/A challenger through every step under steady load and promotes it, never rolling back', async () => {
    champion = await startUpstream(behave.json('a'));
    challenger = await startUpstream(behave.json('a'));
    swy = await startSwitchyard(
      policy(champion.url, challenger.url, { rollout: { steps: [10, 50, 100], minDuration: '300ms', minRequests: 60 }, guardrails: { minRequests: 40, latency: { baselineRequests: 50, ratio: 1.5 } } }, { percent: 0 }),
      { controlIntervalMs: 100 },
    );
    const load = startLoad(swy.dataUrl, 16);
    const seenSteps = new Set<number>();
    try {
      await expect.poll(async () => {
        const a = await analysis(swy);
        if (a.step) seenSteps.add(a.step.index);
        expect(a.phase).not.toBe('rolled_back');
        return a.phase;
      }, { timeout: 60_000, interval: 100 }).toBe('promoted');
    } finally {
      await load.stop();
    }
    expect([...seenSteps].sort()).toEqual([0, 1, 2]);
    expect((await routeState(swy)).challengers[0]!.servedPercent).toBe(100);
    expect([...load.statuses.keys()]).toEqual([200]);
    const metrics = await (await request(`${swy.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain('switchyard_promotions_total{route="iris"} 1');
    // Pre-created at 0 for every reason (so an alert sees the first rollback), and still 0.
    const rollbacks = [...metrics.matchAll(/^switchyard_rollbacks_total\{route="iris",reason="([a-z0-9_]+)"\} (\d+)$/gm)];
    expect(rollbacks.length).toBeGreaterThan(0);
    expect(rollbacks.every((m) => m[2] === '0')).toBe(true);
    // The step gauge moved with the rollout (it starts at -1 or 0) and says what the analysis says now.
    const step = (await analysis(swy)).step?.index ?? -1;
    expect(metrics).toContain(`switchyard_rollout_step{route="iris"} ${step}`);
    // An A/A challenger breaches nothing: every guardrail series is set, and none says breach.
    const states = [...metrics.matchAll(/^switchyard_guardrail_state\{route="iris",guardrail="([a-z0-9_]+)"\} (\d)$/gm)];
    expect(states.length).toBeGreaterThanOrEqual(5);
    expect(states.filter((m) => m[2] === '2')).toEqual([]);
  }, 90_000);
});
