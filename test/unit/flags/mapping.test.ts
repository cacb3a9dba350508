// Flag → split mapping: every documented rule, and per-key agreement with unleash-client's own evaluation.
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { InMemStorageProvider, Unleash, UnleashEvents } from 'unleash-client';
import { compileRoute } from '../../../src/decision/compile.js';
import { routeSchema } from '../../../src/config/policy-schema.js';
import { stickyBucket } from '../../../src/decision/bucket.js';
import { decideRoute, type RouteState } from '../../../src/decision/snapshot.js';
import { servingArm } from '../../../src/decision/split.js';
import { apportion, overlayFromFlag, sameSplit, type FlagDefinitionLike, type FlagVariantLike } from '../../../src/flags/mapping.js';

const route = compileRoute(
  routeSchema.parse({
    name: 'iris',
    match: { pathPrefix: '/v1/models/iris' },
    champion: { name: 'iris-v1', url: 'http://127.0.0.1:9001' },
    challengers: [
      { name: 'iris-v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent: 5 },
      { name: 'iris-v3', url: 'http://127.0.0.1:9003', mode: 'ab' },
    ],
    flag: { name: 'iris-rollout' },
  }),
);

function flag(rollout: unknown, extra: { groupId?: string; variants?: FlagVariantLike[]; enabled?: boolean; flagVariants?: FlagVariantLike[]; constraints?: unknown[] } = {}): FlagDefinitionLike {
  return {
    name: 'iris-rollout',
    enabled: extra.enabled ?? true,
    strategies: [{ name: 'flexibleRollout', parameters: { rollout, stickiness: 'default', ...(extra.groupId === undefined ? {} : { groupId: extra.groupId }) }, constraints: extra.constraints ?? [], variants: extra.variants ?? [] }],
    ...(extra.flagVariants ? { variants: extra.flagVariants } : {}),
  };
}

const json = (value: unknown) => ({ type: 'json', value: JSON.stringify(value) });
const shares = (def: FlagDefinitionLike | undefined) => Object.fromEntries(overlayFromFlag(route, def).overlay.challengers.map((c) => [c.name, `${c.mode} ${c.percent}`]));

describe('overlayFromFlag', () => {
  it('serves the champion only when the flag is absent (with a warning), disabled, or has no flexibleRollout', () => {
    const missing = overlayFromFlag(route, undefined);
    expect(missing.kind).toBe('missing');
    expect(missing.warnings.join()).toContain('does not exist');
    expect(shares(undefined)).toEqual({ 'iris-v2': 'canary 0', 'iris-v3': 'ab 0' });
    expect(overlayFromFlag(route, flag('50', { enabled: false })).kind).toBe('disabled');
    expect(shares(flag('50', { enabled: false }))).toEqual({ 'iris-v2': 'canary 0', 'iris-v3': 'ab 0' });
    const noRollout = overlayFromFlag(route, { name: 'iris-rollout', enabled: true, strategies: [{ name: 'default' }] });
    expect(noRollout.kind).toBe('no-rollout');
    expect(noRollout.overlay.challengers.every((c) => c.percent === 0)).toBe(true);
  });

  it('gives the rollout to the first challenger in its policy mode, bucketing on groupId (unset: "" like unleash-client)', () => {
    const result = overlayFromFlag(route, flag('30'));
    expect(result.kind).toBe('rollout');
    expect(result.overlay).toMatchObject({ groupId: '', source: 'flag' });
    expect(shares(flag('30'))).toEqual({ 'iris-v2': 'canary 30', 'iris-v3': 'ab 0' });
    expect(overlayFromFlag(route, flag(30, { groupId: 'exp-7' })).overlay.groupId).toBe('exp-7');
  });

  it('reads challenger and mode from a strategy variant payload, else from flag variants', () => {
    expect(shares(flag('40', { variants: [{ name: 'x', weight: 1000, payload: json({ challenger: 'iris-v3', mode: 'shadow' }) }] }))).toEqual({ 'iris-v2': 'canary 0', 'iris-v3': 'shadow 40' });
    expect(shares(flag('40', { flagVariants: [{ name: 'iris-v3', weight: 1000 }] }))).toEqual({ 'iris-v2': 'canary 0', 'iris-v3': 'ab 40' });
    expect(shares(flag('40', { variants: [{ name: 'x', weight: 1000, payload: json({ mode: 'ab' }) }] }))).toEqual({ 'iris-v2': 'ab 40', 'iris-v3': 'ab 0' });
  });

  it('ignores unknown challenger names and modes with a warning, never failing open', () => {
    const unknown = overlayFromFlag(route, flag('60', { variants: [{ name: 'x', weight: 1000, payload: json({ challenger: 'iris-v9' }) }] }));
    expect(unknown.warnings.join()).toContain('"iris-v9", which is not a challenger');
    expect(unknown.overlay.challengers.every((c) => c.percent === 0)).toBe(true);
    const badMode = overlayFromFlag(route, flag('60', { variants: [{ name: 'x', weight: 1000, payload: json({ challenger: 'iris-v3', mode: 'blue-green' }) }] }));
    expect(badMode.warnings.join()).toContain('mode "blue-green"');
    expect(shares(flag('60', { variants: [{ name: 'x', weight: 1000, payload: json({ challenger: 'iris-v3', mode: 'blue-green' }) }] }))['iris-v3']).toBe('ab 60');
    const notJson = overlayFromFlag(route, flag('60', { variants: [{ name: 'x', weight: 1000, payload: { type: 'json', value: '{' } }] }));
    expect(notJson.warnings.join()).toContain('not valid JSON');
  });

  it('splits the rollout by variant weight; champion-named variants keep their share on the champion', () => {
    const split = flag('50', { variants: [{ name: 'a', weight: 700, payload: json({ challenger: 'iris-v1' }) }, { name: 'b', weight: 300, payload: json({ challenger: 'iris-v2' }) }] });
    expect(shares(split)).toEqual({ 'iris-v2': 'canary 15', 'iris-v3': 'ab 0' });
    const two = flag('31', { variants: [{ name: 'a', weight: 500, payload: json({ challenger: 'iris-v2' }) }, { name: 'b', weight: 500, payload: json({ challenger: 'iris-v3' }) }] });
    const overlay = overlayFromFlag(route, two).overlay;
    expect(overlay.challengers.reduce((s, c) => s + c.percent, 0)).toBe(31);
  });

  it('floors fractional rollouts (Unleash compares integer buckets) and clamps nonsense to a closed split', () => {
    expect(shares(flag('30.7'))['iris-v2']).toBe('canary 30');
    const bad = overlayFromFlag(route, flag('lots'));
    expect(bad.warnings.join()).toContain('not a number');
    expect(shares(flag('lots'))['iris-v2']).toBe('canary 0');
    expect(shares(flag('150'))['iris-v2']).toBe('canary 100');
  });

  it('warns that constraints are not evaluated', () => {
    const constrained = overlayFromFlag(route, flag('10', { constraints: [{ contextName: 'region', operator: 'IN', values: ['eu'] }] }));
    expect(constrained.warnings.join()).toContain('constraints');
  });
});

describe('apportion and sameSplit', () => {
  it('apportions whole percents that add up exactly', () => {
    expect(apportion(31, [500, 500])).toEqual([16, 15]);
    expect(apportion(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(apportion(0, [1])).toEqual([0]);
    expect(apportion(7, [])).toEqual([]);
  });

  it('compares what routes, not where it came from', () => {
    const a = overlayFromFlag(route, flag('20')).overlay;
    expect(sameSplit(a, { ...a, source: 'bootstrap' })).toBe(true);
    expect(sameSplit(a, overlayFromFlag(route, flag('21')).overlay)).toBe(false);
    expect(sameSplit(a, overlayFromFlag(route, flag('20', { groupId: 'other' })).overlay)).toBe(false);
  });
});

describe('agreement with unleash-client', () => {
  it('routes to the challenger exactly the keys unleash-client enables, for several rollouts and group ids', async () => {
    const features = [10, 33, 75].flatMap((rollout) => ['', 'grp-a'].map((groupId) => ({
      name: `iris-rollout-${rollout}-${groupId || 'default'}`,
      enabled: true,
      strategies: [{ name: 'flexibleRollout', parameters: { rollout: String(rollout), stickiness: 'requestKey', groupId }, constraints: [] }],
    })));
    // Offline client: bootstrap data and refreshInterval 0, so it never fetches (recipe §6).
    const client = new Unleash({
      url: 'http://127.0.0.1:1/api/', appName: 'mapping-test', refreshInterval: 0, disableMetrics: true,
      storageProvider: new InMemStorageProvider(), bootstrap: { data: features }, skipInstanceCountWarning: true,
    });
    try {
      await once(client, UnleashEvents.Ready);
      const keys = Array.from({ length: 5_000 }, (_, i) => `key-${i}`);
      for (const feature of features) {
        const flagRoute = compileRoute({ ...route.policy, flag: { name: feature.name } } as typeof route.policy);
        const { overlay } = overlayFromFlag(flagRoute, feature);
        const state: RouteState = { challengers: overlay.challengers, groupId: overlay.groupId!, source: 'flag', paused: false, rolledBack: false };
        const decision = decideRoute(flagRoute, state);
        const ours = keys.map((k) => servingArm(decision, stickyBucket(k, decision.groupId)).name === 'iris-v2');
        const theirs = keys.map((k) => client.isEnabled(feature.name, { properties: { requestKey: k } }));
        expect(ours).toEqual(theirs);
        expect(ours.filter(Boolean).length).toBeGreaterThan(0);
      }
    } finally {
      client.destroy();
    }
  });
});
