// Scenario validation: every problem names its field and what is allowed; a policy is a file or inline.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenario, resolveScenario } from '../../../src/simulate/scenario.js';

const policy = {
  routes: [
    {
      name: 'iris',
      match: { pathPrefix: '/v1/models/iris' },
      champion: { name: 'iris-v1', url: 'http://127.0.0.1:9001' },
      challengers: [{ name: 'iris-v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent: 10 }],
    },
  ],
};
const arm = { errorRate: 0.01, latencyMs: { dist: 'lognormal', median: 80, sigma: 0.5 } };
const valid = { policy, durationSeconds: 60, ratePerSecond: 10, arms: { 'iris-v1': arm, 'iris-v2': arm } };

/** The SWY_ERR_SCENARIO_INVALID message of resolving `input` (fails the test if it resolves). */
async function problems(input: unknown): Promise<string> {
  const err = (await resolveScenario(input, { baseDir: os.tmpdir(), source: 'scenario.json' }).then(
    () => null,
    (e: unknown) => e,
  )) as (Error & { code?: string }) | null;
  expect(err, 'the scenario should have been refused').not.toBeNull();
  expect(err!.code).toBe('SWY_ERR_SCENARIO_INVALID');
  return err!.message;
}

describe('simulation scenarios', () => {
  it('resolves an inline policy with defaults applied', async () => {
    const resolved = await resolveScenario(valid, { baseDir: os.tmpdir(), source: 'scenario.json' });
    expect(resolved).toMatchObject({ route: 'iris', seed: 1, replicates: 100, controlIntervalMs: 250, users: null, changes: [] });
    expect(Object.keys(resolved.arms)).toEqual(['iris-v1', 'iris-v2']);
  });

  it('names the field of a wrong distribution, a missing arm, an unknown arm and an unknown key', async () => {
    expect(await problems({ ...valid, arms: { 'iris-v1': arm, 'iris-v2': { latencyMs: { dist: 'gamma', shape: 2 } } } })).toMatch(/arms\.iris-v2\.latencyMs\.dist: dist must be one of lognormal \{median, sigma\}, pareto \{scale, shape\}, constant \{value\}, mixture/);
    expect(await problems({ ...valid, arms: { 'iris-v1': arm } })).toContain('arms.iris-v2: missing: describe arm "iris-v2" with errorRate and latencyMs (allowed: the arms of route iris: iris-v1, iris-v2)');
    expect(await problems({ ...valid, arms: { ...valid.arms, 'iris-v3': arm } })).toContain('arms.iris-v3: "iris-v3" is not an arm of route iris');
    expect(await problems({ ...valid, ratePerSecnd: 5 })).toMatch(/ratePerSecnd: .*\(allowed: known fields: policy, route, seed, replicates, durationSeconds, ratePerSecond/);
    expect(await problems({ ...valid, arms: { ...valid.arms, 'iris-v2': { ...arm, errorrate: 0.1 } } })).toMatch(/arms\.iris-v2\.errorrate: .*\(allowed: known fields: errorRate, latencyMs\)/);
    expect(await problems({ ...valid, arms: { ...valid.arms, 'iris-v2': { errorRate: 1.5, latencyMs: arm.latencyMs } } })).toMatch(/arms\.iris-v2\.errorRate: .*\(allowed: at most 1\)/);
    expect(await problems({ ...valid, users: { count: 0 } })).toMatch(/users\.count: .*\(allowed: at least 1\)/);
    expect(await problems({ ...valid, changes: [{ atSeconds: 10, errorRate: 0.5 }] })).toContain('changes[0].arm: name the arm whose errorRate or latencyMs changes');
    expect(await problems({ ...valid, changes: [{ atSeconds: 120, arm: 'iris-v2', errorRate: 0.5 }] })).toContain('changes[0].atSeconds: 120 is after the end of the scenario');
    expect(await problems({ ...valid, durationSeconds: undefined })).toMatch(/durationSeconds: /);
  });

  it('lists an inline policy\'s problems with the loader\'s paths under "policy"', async () => {
    const broken = { routes: [{ ...policy.routes[0]!, champion: { name: 'iris-v1', url: 'ftp://x' } }] };
    expect(await problems({ ...valid, policy: broken })).toContain('policy.routes[0].champion.url: protocol ftp: is not allowed; use http:// or https://');
    expect(await problems({ ...valid, policy: 42 })).toContain('policy: must be a path to a policy file (YAML or JSON, relative to the scenario file) or the policy object inline');
    expect(await problems({ ...valid, route: 'nope' })).toContain('route: the policy has no route "nope" (allowed: one of: iris)');
  });

  it('reads a policy file relative to the scenario file, and refuses an unreadable scenario by name', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'swy-scenario-'));
    await writeFile(path.join(dir, 'policy.json'), JSON.stringify(policy));
    await writeFile(path.join(dir, 'scenario.json'), JSON.stringify({ ...valid, policy: 'policy.json' }));
    const resolved = await loadScenario(path.join(dir, 'scenario.json'));
    expect(resolved.route).toBe('iris');
    expect(resolved.policyVersion).toMatch(/^[0-9a-f]{12}$/);
    await writeFile(path.join(dir, 'torn.json'), '{"policy": ');
    await expect(loadScenario(path.join(dir, 'torn.json'))).rejects.toThrow(/torn\.json: \(syntax\): /);
    await writeFile(path.join(dir, 'missing.json'), JSON.stringify({ ...valid, policy: 'nowhere.yaml' }));
    await expect(loadScenario(path.join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'SWY_ERR_POLICY_READ' });
  });
});

describe('the README\'s example scenarios', () => {
  it.each(['iris-rollout-50rps.json', 'base5-absolute-margin.json', 'base5-relative-margin.json'])('examples/%s loads, with its policy', async (file) => {
    const scenario = await loadScenario(path.join(import.meta.dirname, '../../../examples', file));
    expect(scenario.replicates).toBeGreaterThanOrEqual(100);
  });
});
