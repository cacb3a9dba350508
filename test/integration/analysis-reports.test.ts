// GET /v1/routes/:route/analysis and `switchyard analysis` through real sockets: shadow gates, A/B winners, coordination.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { RouteAnalysis } from '../../src/control/controller.js';
import { runCli } from '../helpers/cli.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';
import { waitFor } from '../helpers/wait-for.js';

const token = 'analysis-test-token';
const predictions = { protocol: 'json', pointer: '/prediction', kind: 'class' };
/** Small enough for a test to reach, large enough for the always-valid tests to mean something. */
const guardrails = { minRequests: 20, plannedRequests: 1_000 };

async function analysis(swy: RunningSwitchyard, route: string): Promise<RouteAnalysis> {
  const res = await request(`${swy.adminUrl}/v1/routes/${route}/analysis`);
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as RouteAnalysis;
}

/** Sends `n` requests to a route, one user each; returns who answered each request id. */
async function send(swy: RunningSwitchyard, path: string, n: number, concurrency = 4): Promise<Map<string, string>> {
  const served = new Map<string, string>();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const res = await request(`${swy.dataUrl}${path}`, { method: 'POST', body: '{"instances":[[5.1,3.5,1.4,0.2]]}', headers: { 'content-type': 'application/json', 'x-user-id': `user-${i}` } });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      served.set(String(res.headers['x-request-id']), String(res.headers['x-switchyard-variant']));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return served;
}

async function admin(swy: RunningSwitchyard, method: 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await request(`${swy.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.statusCode, json: await res.body.json() };
}

/**
 * Posts the labels until every item has joined. Records are joined off the request path, so an id may be unknown for
 * a moment; only unknown ids are sent again (a joined label counts once, so it is never re-sent).
 */
async function feedback(swy: RunningSwitchyard, labels: Map<string, string>): Promise<void> {
  let pending = [...labels];
  await waitFor('every label joined', async () => {
    const { status, json } = await admin(swy, 'POST', '/v1/feedback', pending.map(([requestId, label]) => ({ requestId, label })));
    expect(status).toBe(200);
    const joined = new Set((json as { results: { requestId: string; status: string }[] }).results.filter((r) => r.status === 'joined').map((r) => r.requestId));
    pending = pending.filter(([id]) => !joined.has(id));
    return pending.length === 0;
  }, { timeoutMs: 10_000, intervalMs: 50, lastSeen: () => `${pending.length} labels still unknown` });
}

describe('shadow gate in the analysis', () => {
  const upstreams: Upstream[] = [];
  let swy: RunningSwitchyard;

  beforeAll(async () => {
    const champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
    const twin = await startUpstream(behave.json('setosa'), { name: 'twin' });
    const other = await startUpstream(behave.json('virginica'), { name: 'other' });
    upstreams.push(champion, twin, other);
    const route = (name: string, shadow: Upstream) => ({
      name,
      match: { pathPrefix: `/v1/models/${name}` },
      champion: { name: 'iris-v1', url: champion.url },
      challengers: [{ name: `${name}-v2`, url: shadow.url, mode: 'shadow', percent: 100 }],
      predictions,
      guardrails,
    });
    swy = await startSwitchyard({ routes: [route('agreeing', twin), route('disagreeing', other)] }, { adminTokens: [{ name: 'ci', secret: token }] });
    // The controller starts each route's experiment when it first looks at it (its first tick, or an analysis): start
    // them now, so every request below belongs to it.
    await Promise.all([analysis(swy, 'agreeing'), analysis(swy, 'disagreeing')]);
    await Promise.all([send(swy, '/v1/models/agreeing:predict', 60), send(swy, '/v1/models/disagreeing:predict', 60)]);
  });

  afterAll(async () => {
    await swy.close();
    for (const u of upstreams) await u.close();
  });

  it('reports agreement, the shadow\'s own guardrails and readiness for each shadow challenger', async () => {
    // Pairs are joined off the request path: wait until all 60 are in.
    await expect.poll(async () => (await analysis(swy, 'agreeing')).shadowGates[0]?.agreement.of, { timeout: 10_000 }).toBe(60);
    const agreeing = await analysis(swy, 'agreeing');
    expect(agreeing.abWinners).toEqual([]);
    expect(agreeing.shadowGates).toHaveLength(1);
    const gate = agreeing.shadowGates[0]!;
    expect(gate).toMatchObject({ challenger: 'agreeing-v2', agreementShared: false, agreement: { agree: 60, of: 60, rate: 1, maxDisagreement: 0.05 } });
    expect(['within', 'not_yet']).toContain(gate.agreement.state);
    // The shadow's errors and latency were judged against the champion on this replica's mirrors.
    expect(gate.verdicts.map((v) => v.name)).toEqual(expect.arrayContaining(['error_rate', 'latency_log_mean']));
    for (const name of ['error_rate', 'latency_log_mean']) expect(gate.verdicts.find((v) => v.name === name)?.nChallenger, name).toBe(60);
    expect(gate.reason).toEqual(expect.any(String));

    await expect.poll(async () => (await analysis(swy, 'disagreeing')).shadowGates[0]?.agreement.of, { timeout: 10_000 }).toBe(60);
    const disagreeing = (await analysis(swy, 'disagreeing')).shadowGates[0]!;
    expect(disagreeing).toMatchObject({ challenger: 'disagreeing-v2', ready: false, agreement: { agree: 0, of: 60, rate: 0, state: 'not_yet' } });
    expect(disagreeing.reason).toMatch(/disagreement is not yet confidently under 5%/);
  });

  it('prints one line per shadow gate in `switchyard analysis`', async () => {
    const cli = await runCli(['analysis', 'disagreeing', '--admin-url', swy.adminUrl]);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('coordination off: replica ');
    expect(cli.stdout).toMatch(/^shadow gate disagreeing-v2: not ready; agreement 0\.0% of 60 parsed pairs, max disagreement 5\.0%; disagreement is not yet confidently under 5%/m);
    const json = await runCli(['analysis', 'disagreeing', '--admin-url', swy.adminUrl, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ shadowGates: [{ challenger: 'disagreeing-v2', ready: false }], abWinners: [] });
  });
});

/** A key prefix unique to one test on the machine's Redis; `cleanup` deletes only that test's keys. */
async function scratchPrefix(name: string, cleanup: (() => Promise<void>)[]): Promise<string> {
  const prefix = `swy-${name}-${randomUUID().slice(0, 8)}`;
  const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  cleanup.push(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  return prefix;
}

/** The iris route with one challenger at 50 %, sticky on x-user-id, plus any route fields a test adds. */
function irisRoute(championUrl: string, challengerUrl: string, mode: 'ab' | 'canary', extra: Record<string, unknown> = {}) {
  return {
    name: 'iris',
    match: { pathPrefix: '/v1/models/iris' },
    champion: { name: 'iris-v1', url: championUrl },
    challengers: [{ name: 'iris-v2', url: challengerUrl, mode, percent: 50 }],
    stickiness: { header: 'x-user-id' },
    ...extra,
  };
}

/** A champion that always says setosa and an ab challenger (50 %) that always says versicolor, behind Switchyard. */
async function startAbRoute(upstreams: Upstream[], routeGuardrails: Record<string, unknown>): Promise<RunningSwitchyard> {
  const champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
  const challenger = await startUpstream(behave.json('versicolor'), { name: 'challenger' });
  upstreams.push(champion, challenger);
  return startSwitchyard(
    { routes: [irisRoute(champion.url, challenger.url, 'ab', { predictions: { ...predictions, sampleRate: 1 }, guardrails: routeGuardrails })] },
    { adminTokens: [{ name: 'ci', secret: token }], controlIntervalMs: 50 },
  );
}

describe('A/B winner in the analysis', () => {
  const upstreams: Upstream[] = [];
  let swy: RunningSwitchyard;
  let served: Map<string, string>;

  beforeAll(async () => {
    swy = await startAbRoute(upstreams, guardrails);
    await analysis(swy, 'iris'); // starts the experiment (see above)
    served = await send(swy, '/v1/models/iris:predict', 160);
  });

  afterAll(async () => {
    await swy.close();
    for (const u of upstreams) await u.close();
  });

  it('collects until both arms have labelled outcomes', async () => {
    const a = await analysis(swy, 'iris');
    expect(a.shadowGates).toEqual([]);
    expect(a.abWinners).toEqual([expect.objectContaining({ metric: 'accuracy', state: 'collecting', winner: null, minLabelled: 20, champion: { variant: 'iris-v1', n: 0, correct: 0 }, challenger: { variant: 'iris-v2', n: 0, correct: 0 } })]);
  });

  it('names the more accurate variant once labels arrive, counting each joined label once', async () => {
    // The truth is "versicolor" for 9 of 10 requests: the challenger (always versicolor) is right 90 % of the time, the champion 10 %.
    const labels = new Map([...served.keys()].map((id, i) => [id, i % 10 === 0 ? 'setosa' : 'versicolor']));
    await feedback(swy, labels);
    const expected = (variant: string) => {
      const ids = [...served].filter(([, v]) => v === variant).map(([id]) => id);
      const answer = variant === 'iris-v1' ? 'setosa' : 'versicolor';
      return { variant, n: ids.length, correct: ids.filter((id) => labels.get(id) === answer).length };
    };
    const champion = expected('iris-v1');
    const challenger = expected('iris-v2');
    expect(champion.n).toBeGreaterThanOrEqual(20);
    expect(challenger.n).toBeGreaterThanOrEqual(20);
    const a = await analysis(swy, 'iris');
    expect(a.abWinners).toHaveLength(1);
    const report = a.abWinners[0]!;
    expect(report).toMatchObject({ state: 'winner', winner: 'iris-v2', champion, challenger, alpha: 0.05 });
    expect(report.estimate).toBeCloseTo(challenger.correct / challenger.n - champion.correct / champion.n, 10);
    expect(report.csLower).toBeGreaterThan(0);

    const cli = await runCli(['analysis', 'iris', '--admin-url', swy.adminUrl]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(new RegExp(`^A/B iris-v2 vs iris-v1: winner iris-v2; accuracy iris-v2 [0-9.]+% of ${challenger.n} vs iris-v1 [0-9.]+% of ${champion.n} labelled; difference \\+[0-9.]+ pts \\(always-valid CI \\+[0-9.]+ pts \\.\\. \\+[0-9.]+ pts, alpha 0\\.05\\)$`, 'm'));
  });

  it('keeps the evidence through a rollback, and starts a new experiment when a person resumes', async () => {
    const before = (await analysis(swy, 'iris')).abWinners[0]!;
    expect(before.state).toBe('winner');
    expect((await admin(swy, 'POST', '/v1/routes/iris/rollback')).status).toBe(200);
    // Controller ticks with the route rolled back must keep the experiment's evidence: run three now, so the assertion
    // below is about ticks that certainly ran (a sleep would pass just as well if none had).
    for (let i = 0; i < 3; i++) swy.app.controller.tick();
    expect((await analysis(swy, 'iris')).abWinners[0]).toMatchObject({ champion: before.champion, challenger: before.challenger });

    expect((await admin(swy, 'POST', '/v1/routes/iris/resume')).status).toBe(200);
    await expect.poll(async () => (await analysis(swy, 'iris')).abWinners[0], { timeout: 5_000 })
      .toMatchObject({ state: 'collecting', champion: { n: 0 }, challenger: { n: 0 } });
  });
});

describe('A/B promotion when the policy says so', () => {
  const upstreams: Upstream[] = [];
  let swy: RunningSwitchyard;

  beforeAll(async () => {
    // A small latency baseline, so every guardrail has judged within the test's traffic.
    swy = await startAbRoute(upstreams, { ...guardrails, latency: { baselineRequests: 20, minRequests: 20 }, ab: { alpha: 0.05, promote: true } });
  });

  afterAll(async () => {
    await swy.close();
    for (const u of upstreams) await u.close();
  });

  it('serves the winning challenger to everyone once the labels prove it more accurate, and audits the promotion', async () => {
    await analysis(swy, 'iris'); // starts the experiment
    const served = await send(swy, '/v1/models/iris:predict', 300, 8);
    expect((await analysis(swy, 'iris')).decision).not.toBe('promoted');
    await feedback(swy, new Map([...served.keys()].map((id, i) => [id, i % 10 === 0 ? 'setosa' : 'versicolor'])));
    await expect.poll(async () => (await analysis(swy, 'iris')).decision, { timeout: 5_000, interval: 50 }).toBe('promoted');
    const a = await analysis(swy, 'iris');
    expect(a.servedPercent).toBe(100);
    expect(a.abWinners[0]).toMatchObject({ state: 'winner', winner: 'iris-v2' });
    expect(new Set((await send(swy, '/v1/models/iris:predict', 20)).values())).toEqual(new Set(['iris-v2']));
    const { events } = (await (await request(`${swy.adminUrl}/v1/events`)).body.json()) as { events: { who: string; action: string; route: string }[] };
    expect(events.filter((e) => e.action === 'promote')).toEqual([expect.objectContaining({ who: 'controller', route: 'iris' })]);
  });
});

describe('A/B outcomes and shadow pairs pooled over replicas', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it('judges the fleet\'s labels and pairs: each replica joins its own, every replica reports their sum', async () => {
    const prefix = await scratchPrefix('ab-pool', cleanup);
    const champion = await startUpstream(behave.json('setosa'), { name: 'champion' });
    const challenger = await startUpstream(behave.json('versicolor'), { name: 'challenger' });
    const twin = await startUpstream(behave.json('setosa'), { name: 'twin' });
    cleanup.push(() => champion.close(), () => challenger.close(), () => twin.close());
    const replicas: RunningSwitchyard[] = [];
    for (const instanceId of ['ab-pool-a', 'ab-pool-b']) {
      const swy = await startSwitchyard(
        {
          routes: [irisRoute(champion.url, challenger.url, 'ab', { predictions: { ...predictions, sampleRate: 1 }, guardrails }), {
            name: 'mirror',
            match: { pathPrefix: '/v1/models/mirror' },
            champion: { name: 'iris-v1', url: champion.url },
            challengers: [{ name: 'mirror-v2', url: twin.url, mode: 'shadow', percent: 100 }],
            predictions,
            guardrails,
          }],
        },
        { adminTokens: [{ name: 'ci', secret: token }], controlIntervalMs: 50, coordination: { redisUrl: 'redis://127.0.0.1:6379', prefix, instanceId, intervalMs: 50 } },
      );
      cleanup.push(() => swy.close());
      replicas.push(swy);
    }
    // Outcomes and pairs count from the fleet's epoch on: both replicas must have joined it (one leads) before traffic.
    for (const route of ['iris', 'mirror']) {
      await expect.poll(async () => {
        const views = await Promise.all(replicas.map((r) => analysis(r, route)));
        return views.map((v) => v.role).sort().join(',') + (views[0]!.epoch === views[1]!.epoch ? '' : ' (epochs differ)');
      }, { timeout: 10_000 }).toBe('follower,leader');
    }

    // Labels: the truth is versicolor for 9 of 10 requests, so the challenger is right 90 % of the time.
    const expected = { 'iris-v1': { n: 0, correct: 0 }, 'iris-v2': { n: 0, correct: 0 } };
    const localOf: Record<string, number>[] = [];
    for (const [r, swy] of replicas.entries()) {
      const served = await send(swy, '/v1/models/iris:predict', 60);
      const labels = new Map([...served.keys()].map((id, i) => [id, i % 10 === 0 ? 'setosa' : 'versicolor']));
      await feedback(swy, labels);
      const counts: Record<string, number> = {};
      for (const [id, variant] of served) {
        const o = expected[variant as keyof typeof expected];
        o.n++;
        if (labels.get(id) === (variant === 'iris-v1' ? 'setosa' : 'versicolor')) o.correct++;
        counts[variant] = (counts[variant] ?? 0) + 1;
      }
      localOf[r] = counts;
    }
    // Both replicas served both arms, so neither one alone holds the fleet's outcomes.
    for (const counts of localOf) expect(Object.keys(counts).sort()).toEqual(['iris-v1', 'iris-v2']);
    for (const swy of replicas) {
      await expect.poll(async () => {
        const report = (await analysis(swy, 'iris')).abWinners[0];
        return report ? [report.champion, report.challenger] : null;
      }, { timeout: 5_000 }).toEqual([{ variant: 'iris-v1', ...expected['iris-v1'] }, { variant: 'iris-v2', ...expected['iris-v2'] }]);
    }
    expect((await analysis(replicas[0]!, 'iris')).abWinners[0]).toMatchObject({ state: 'winner', winner: 'iris-v2' });

    // Shadow pairs: 30 mirrored requests through each replica, each pair joined where it was served.
    for (const swy of replicas) await send(swy, '/v1/models/mirror:predict', 30);
    for (const swy of replicas) {
      await expect.poll(async () => {
        const gate = (await analysis(swy, 'mirror')).shadowGates[0];
        return gate ? [gate.agreement.agree, gate.agreement.of] : null;
      }, { timeout: 10_000 }).toEqual([60, 60]);
    }
  });
});

describe('coordination in `switchyard analysis`', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function start(redisUrl: string, prefix: string, instanceId: string): Promise<RunningSwitchyard> {
    const champion = await startUpstream(behave.json('setosa'));
    const challenger = await startUpstream(behave.json('setosa'));
    cleanup.push(() => champion.close(), () => challenger.close());
    const swy = await startSwitchyard(
      { routes: [irisRoute(champion.url, challenger.url, 'canary')] },
      { controlIntervalMs: 50, coordination: { redisUrl, prefix, instanceId, intervalMs: 50 } },
    );
    cleanup.push(() => swy.close());
    return swy;
  }

  it('shows the leader, the pooled replicas and this replica\'s share of the requests', async () => {
    const prefix = await scratchPrefix('analysis', cleanup);
    const swy = await start('redis://127.0.0.1:6379', prefix, 'analysis-a');
    // Statistics count from the fleet's epoch on: wait until this replica has joined it.
    await expect.poll(async () => (await analysis(swy, 'iris')).role, { timeout: 10_000 }).toBe('leader');
    await send(swy, '/v1/models/iris:predict', 40);
    await expect.poll(async () => {
      const a = await analysis(swy, 'iris');
      return [a.coordination, a.role, a.leader, a.counts.replicas, a.arms.reduce((sum, arm) => sum + arm.requests, 0)];
    }, { timeout: 10_000 }).toEqual(['ok', 'leader', 'analysis-a', 1, 40]);

    const cli = await runCli(['analysis', 'iris', '--admin-url', swy.adminUrl]);
    expect(cli.code).toBe(0);
    const lines = cli.stdout.split('\n');
    expect(lines[1]).toMatch(/^coordination ok: replica analysis-a is leader; leader analysis-a; statistics pooled over 1 replica; epoch [0-9a-f]{10}\.\d+\.iris-v2$/);
    expect(lines[3]).toMatch(/^arm\s+role\s+requests\s+this replica\s+failures\s+error rate\s+median ms$/);
    const rows = lines.slice(4, 6).map((line) => line.split(/\s{2,}/));
    for (const row of rows) expect(row[2], row.join(' ')).toBe(row[3]); // one replica: the pool is this replica
    expect(rows.map((row) => row[0])).toEqual(['iris-v1', 'iris-v2']);
  });

  it('says when a replica decides alone because Redis is unreachable', async () => {
    // Nothing listens on port 1: every exchange fails, and the replica degrades within max(1 s, 4 x cadence).
    const swy = await start('redis://127.0.0.1:1', 'swy-unreachable', 'analysis-b');
    await expect.poll(async () => (await analysis(swy, 'iris')).coordination, { timeout: 10_000 }).toBe('degraded');
    const cli = await runCli(['analysis', 'iris', '--admin-url', swy.adminUrl]);
    expect(cli.code).toBe(0);
    expect(cli.stdout.split('\n')[1]).toMatch(/^coordination DEGRADED \(Redis unreachable or slow: deciding on own statistics, rollback only, rollout steps wait\): replica analysis-b is degraded; statistics not pooled \(this replica only\)(; epoch \S+)?$/);
  });
});
