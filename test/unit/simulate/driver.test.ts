// The simulator drives the real controller: seeded and reproducible, a harmful challenger is rolled back, A/A is sane.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { runReplicate, runScenario } from '../../../src/simulate/driver.js';
import { resolveScenario, type ScenarioInput } from '../../../src/simulate/scenario.js';
import { summarize } from '../../../src/simulate/summary.js';

const route = {
  name: 'iris',
  match: { pathPrefix: '/v1/models/iris' },
  champion: { name: 'iris-v1', url: 'http://127.0.0.1:9001' },
  challengers: [{ name: 'iris-v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent: 10 }],
  stickiness: { header: 'x-user-id' },
};
const latency = { dist: 'lognormal', median: 80, sigma: 0.5 } as const;
const healthy = { errorRate: 0.01, latencyMs: latency };

function scenario(overrides: Partial<ScenarioInput> & { routeExtra?: Record<string, unknown> } = {}) {
  const { routeExtra, ...rest } = overrides;
  return resolveScenario(
    { policy: { routes: [{ ...route, ...routeExtra }] }, seed: 11, replicates: 6, durationSeconds: 300, ratePerSecond: 50, arms: { 'iris-v1': healthy, 'iris-v2': healthy }, ...rest },
    { baseDir: os.tmpdir(), source: 'test' },
  );
}

describe('switchyard simulate', () => {
  it('gives the same replicates for the same seed, and replicate i alone equals replicate i of a run', async () => {
    const s = await scenario({ users: { count: 2_000, activitySigma: 1 }, replicates: 4 });
    const first = await runScenario(s, { workers: 1 });
    const second = await runScenario(s, { workers: 1 });
    expect(second).toEqual(first);
    expect(await runReplicate(s, 2)).toEqual(first[2]);
    const other = await runScenario({ ...s, seed: 12 }, { workers: 1 });
    expect(other.map((r) => r.seed)).not.toEqual(first.map((r) => r.seed));
    expect(other.map((r) => r.requests)).not.toEqual(first.map((r) => r.requests));
    // Poisson arrivals at 50/s for 300 s: about 15,000 requests, 10 % of them to the challenger's buckets.
    for (const r of first) {
      const total = r.requests['iris-v1']! + r.requests['iris-v2']!;
      expect(Math.abs(total - 15_000)).toBeLessThan(5 * Math.sqrt(15_000));
      expect(r.requests['iris-v2']! / total).toBeGreaterThan(0.03);
      expect(r.requests['iris-v2']! / total).toBeLessThan(0.2);
    }
  });

  it('rolls a challenger with 50 % errors back in every replicate, naming the guardrail', async () => {
    const s = await scenario({ arms: { 'iris-v1': healthy, 'iris-v2': { errorRate: 0.5, latencyMs: latency } }, replicates: 8 });
    const results = await runScenario(s, { workers: 1 });
    for (const r of results) {
      expect(r.outcome).toBe('rolled_back');
      expect(r.reason).toMatch(/^error_(ceiling|rate)$/);
      expect(r.atSeconds).toBeLessThan(60);
      expect(r.highestPercent).toBe(10);
    }
    const summary = summarize(results);
    expect(summary.counts).toEqual({ promoted: 0, rolled_back: 8, running: 0 });
    expect(summary.intervals95.rolled_back![0]).toBeGreaterThan(0.6);
    expect(summary.medianChallengerRequestsToRollback).toBeGreaterThan(0);
  });

  it('rolls back only after a change makes the challenger fail', async () => {
    const s = await scenario({ changes: [{ atSeconds: 120, arm: 'iris-v2', errorRate: 0.6 }], replicates: 4 });
    for (const r of await runScenario(s, { workers: 1 })) {
      expect(r.outcome).toBe('rolled_back');
      expect(r.atSeconds).toBeGreaterThanOrEqual(120);
      expect(r.atSeconds).toBeLessThan(180);
    }
  });

  it('runs an A/A rollout to promotion through its steps, and counts every replicate once', async () => {
    const s = await scenario({
      routeExtra: { challengers: [{ ...route.challengers[0]!, percent: 0 }], rollout: { steps: [10, 50, 100], minDuration: '30s', minRequests: 200 } },
      durationSeconds: 900,
      replicates: 8,
    });
    const results = await runScenario(s, { workers: 1 });
    const summary = summarize(results);
    expect(summary.counts.promoted + summary.counts.rolled_back + summary.counts.running).toBe(8);
    expect(summary.counts.promoted).toBeGreaterThanOrEqual(6);
    for (const r of results.filter((x) => x.outcome === 'promoted')) {
      expect(r.highestPercent).toBe(100);
      // Two advances (to 50 %, then 100 %), each after the minimum duration of its step.
      expect(r.steps.map((step) => step.percent)).toEqual([50, 100]);
      expect(r.steps[0]!.atSeconds).toBeGreaterThanOrEqual(30);
      expect(r.steps[1]!.atSeconds - r.steps[0]!.atSeconds).toBeGreaterThanOrEqual(30);
      expect(r.atSeconds).toBe(r.steps[1]!.atSeconds);
    }
    for (const r of results.filter((x) => x.outcome === 'rolled_back')) expect(r.reason).not.toBeNull();
  });

  it('takes approval gates as granted at once and never asks the confirm webhook', async () => {
    let asked = 0;
    const hook = createServer((_req, res) => {
      asked++;
      res.writeHead(503).end();
    });
    hook.listen(0, '127.0.0.1');
    await once(hook, 'listening');
    try {
      const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/confirm`;
      const s = await scenario({
        routeExtra: { challengers: [{ ...route.challengers[0]!, percent: 0 }], rollout: { steps: [10, 50, 100], minDuration: '30s', minRequests: 200, approve: [50, 'promote'], confirm: { url, before: [100] } } },
        durationSeconds: 900,
        replicates: 3,
      });
      const results = await runScenario(s, { workers: 1 });
      expect(results.filter((r) => r.outcome === 'promoted').length).toBeGreaterThanOrEqual(2);
      expect(asked).toBe(0);
    } finally {
      await new Promise((resolve) => hook.close(resolve));
    }
  });

  it('judges a fixed split without a rollout as promotable, never promoting it', async () => {
    const results = await runScenario(await scenario({ replicates: 4, durationSeconds: 600 }), { workers: 1 });
    for (const r of results) {
      expect(r.outcome).not.toBe('promoted');
      expect(r.highestPercent).toBe(10);
    }
    expect(results.some((r) => r.promotableAtSeconds !== null)).toBe(true);
  });
});
