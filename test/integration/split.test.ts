// Sticky splits: Unleash-identical bucketing (client-specification), proportions over 10,000 keys, monotonic percent changes.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { compileRoute, policyState } from '../../src/decision/compile.js';
import { routeSchema } from '../../src/config/policy-schema.js';
import { stickyBucket } from '../../src/decision/bucket.js';
import { decideRoute, type RouteState } from '../../src/decision/snapshot.js';
import { servingArm } from '../../src/decision/split.js';
import { behave, startUpstream, type Upstream } from '../helpers/upstream.js';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../helpers/switchyard.js';

interface SpecStrategy { name: string; parameters?: Record<string, string>; constraints?: unknown[]; segments?: unknown[]; variants?: unknown[] }
interface SpecFeature { name: string; enabled: boolean; strategies: SpecStrategy[]; dependencies?: unknown[] }
interface SpecCase { description: string; context: { userId?: string; sessionId?: string; properties?: Record<string, string> }; toggleName: string; expectedResult?: boolean }

const specDir = path.join(path.dirname(createRequire(import.meta.url).resolve('@unleash/client-specification/package.json')), 'specifications');

/** The flexibleRollout/gradualRollout cases a router can evaluate: one unconstrained strategy and a sticky key in the context. */
function rolloutCases(): { file: string; test: SpecCase; rollout: number; groupId: string; key: string | null }[] {
  const out = [];
  for (const file of readdirSync(specDir).filter((f) => /^\d+-.*\.json$/.test(f))) {
    const spec = JSON.parse(readFileSync(path.join(specDir, file), 'utf8')) as { state?: { features?: SpecFeature[] }; tests?: SpecCase[] };
    const features = new Map((spec.state?.features ?? []).map((f) => [f.name, f]));
    for (const test of spec.tests ?? []) {
      const feature = features.get(test.toggleName);
      if (!feature || !feature.enabled || feature.strategies.length !== 1 || feature.dependencies?.length || typeof test.expectedResult !== 'boolean') continue;
      const strategy = feature.strategies[0]!;
      if (strategy.constraints?.length || strategy.segments?.length) continue;
      const p = strategy.parameters ?? {};
      let rollout: number;
      let stickiness: string;
      if (strategy.name === 'flexibleRollout') {
        rollout = Number(p.rollout);
        stickiness = p.stickiness ?? 'default';
      } else if (strategy.name === 'gradualRolloutUserId') {
        rollout = Number(p.percentage);
        stickiness = 'userId';
      } else if (strategy.name === 'gradualRolloutSessionId') {
        rollout = Number(p.percentage);
        stickiness = 'sessionId';
      } else continue;
      const ctx = test.context;
      const key = stickiness === 'default' ? (ctx.userId ?? ctx.sessionId ?? null) : stickiness === 'userId' ? (ctx.userId ?? null) : stickiness === 'sessionId' ? (ctx.sessionId ?? null) : (ctx.properties?.[stickiness] ?? null);
      // Without a key Unleash picks a random bucket; only 0 % and 100 % are then deterministic.
      if (key === null && rollout !== 0 && rollout !== 100) continue;
      if (key === null && stickiness !== 'default') continue;
      out.push({ file, test, rollout, groupId: p.groupId ?? feature.name, key });
    }
  }
  return out;
}

describe('bucketing equals Unleash gradual rollout (@unleash/client-specification)', () => {
  const cases = rolloutCases();
  it('finds the rollout cases (guards against an empty, always-green loop)', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });
  for (const c of cases) {
    it(`${c.file}: ${c.test.description}`, () => {
      const enabled = c.rollout > 0 && (c.key === null ? c.rollout === 100 : stickyBucket(c.key, c.groupId) <= c.rollout);
      expect(enabled).toBe(c.test.expectedResult);
    });
  }
});

function route(percent: number, extra: { name: string; mode: 'canary' | 'ab'; percent: number }[] = []) {
  return compileRoute(
    routeSchema.parse({
      name: 'iris',
      match: { pathPrefix: '/v1/models/iris' },
      champion: { name: 'v1', url: 'http://127.0.0.1:9001' },
      challengers: [{ name: 'v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent }, ...extra.map((e) => ({ ...e, url: 'http://127.0.0.1:9003' }))],
    }),
  );
}

function withPercent(percent: number): RouteState {
  const r = route(percent);
  return policyState(r);
}

describe('split decisions over 10,000 keys', () => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
  const compiled = route(10);

  it('serves each percent within ±1.5 points (5 binomial standard deviations at n = 10,000)', () => {
    for (const percent of [1, 10, 25, 50, 90]) {
      const decision = decideRoute(compiled, { ...withPercent(percent) });
      const toChallenger = keys.filter((k) => servingArm(decision, stickyBucket(k, decision.groupId)).name === 'v2').length;
      expect(Math.abs(toChallenger / keys.length - percent / 100)).toBeLessThan(0.015);
    }
  });

  it('is sticky, and raising the percent only moves keys from champion to challenger', () => {
    const steps = [0, 1, 5, 10, 25, 50, 100];
    let previous = new Set<string>();
    for (const percent of steps) {
      const decision = decideRoute(compiled, withPercent(percent));
      const challenger = new Set(keys.filter((k) => servingArm(decision, stickyBucket(k, decision.groupId)).name === 'v2'));
      for (const key of previous) expect(challenger.has(key)).toBe(true);
      // Same key, same percent: same answer every time.
      const again = new Set(keys.filter((k) => servingArm(decision, stickyBucket(k, decision.groupId)).name === 'v2'));
      expect(again).toEqual(challenger);
      previous = challenger;
    }
    expect(previous.size).toBe(keys.length);
  });

  it('splits several served challengers into disjoint consecutive ranges', () => {
    const multi = route(10, [{ name: 'v3', mode: 'ab', percent: 30 }]);
    const decision = decideRoute(multi, policyState(multi));
    const counts = new Map<string, number>();
    for (const k of keys) {
      const arm = servingArm(decision, stickyBucket(k, decision.groupId)).name;
      counts.set(arm, (counts.get(arm) ?? 0) + 1);
    }
    expect(Math.abs(counts.get('v2')! / keys.length - 0.1)).toBeLessThan(0.015);
    expect(Math.abs(counts.get('v3')! / keys.length - 0.3)).toBeLessThan(0.015);
    expect(Math.abs(counts.get('v1')! / keys.length - 0.6)).toBeLessThan(0.015);
  });

  it('sends nothing to a rolled-back route\'s challengers', () => {
    const decision = decideRoute(compiled, { ...withPercent(100), rolledBack: true });
    expect(keys.every((k) => servingArm(decision, stickyBucket(k, decision.groupId)).name === 'v1')).toBe(true);
  });
});

describe('split through real sockets', () => {
  let champion: Upstream;
  let challenger: Upstream;
  let swy: RunningSwitchyard;
  const percent = 30;
  beforeAll(async () => {
    champion = await startUpstream(behave.json('v1'), { name: 'v1' });
    challenger = await startUpstream(behave.json('v2'), { name: 'v2' });
    swy = await startSwitchyard(routePolicy(champion.url, [{ url: challenger.url, percent }], { stickiness: { header: 'x-user-id' } }));
  });
  afterAll(async () => {
    await swy.close();
    await champion.close();
    await challenger.close();
  });

  async function variantFor(headers: Record<string, string>): Promise<string> {
    const res = await request(`${swy.dataUrl}/v1/models/iris:predict`, { method: 'POST', body: '{}', headers });
    await res.body.dump();
    return String(res.headers['x-switchyard-variant']);
  }

  it('serves every keyed request exactly as the bucketing decides, and the upstreams see the same split', async () => {
    const keys = Array.from({ length: 2_000 }, (_, i) => `socket-user-${i}`);
    const observed = new Map<string, string>();
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map(async (k) => observed.set(k, await variantFor({ 'x-user-id': k }))));
    }
    const expected = keys.map((k) => (stickyBucket(k, 'iris') <= percent ? 'iris-v2' : 'iris-v1'));
    expect(keys.map((k) => observed.get(k))).toEqual(expected);
    expect(challenger.count).toBe(expected.filter((v) => v === 'iris-v2').length);
    expect(champion.count).toBe(expected.filter((v) => v === 'iris-v1').length);
  });

  it('splits requests without a key at random in the same proportion', async () => {
    champion.clear();
    challenger.clear();
    const n = 2_000;
    for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: 50 }, () => variantFor({})));
    // 30 % of 2,000: standard deviation 20.5; ±100 is about 5 deviations.
    expect(Math.abs(challenger.count - n * 0.3)).toBeLessThan(100);
    expect(champion.count + challenger.count).toBe(n);
  });
});
