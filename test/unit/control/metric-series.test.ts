// Pre-created series: every counter a rule or panel reads exists at 0 per route and reason, keeps its value across swaps, and the rolled-back gauge follows the route.
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/decision/compile.js';
import { policySchema } from '../../../src/config/policy-schema.js';
import { LiveSplits } from '../../../src/control/live-splits.js';
import { emptySnapshot, SnapshotRef } from '../../../src/decision/snapshot.js';
import { Metrics } from '../../../src/metrics/registry.js';
import { precreateGlobalSeries, precreateRouteSeries, rollbackReasons, upstreamErrorKinds } from '../../../src/control/metric-series.js';

const policy = policySchema.parse({
  routes: [{
    name: 'iris',
    match: { pathPrefix: '/v1/models/iris' },
    champion: { name: 'iris-v1', url: 'http://127.0.0.1:9001' },
    challengers: [{ name: 'iris-v2', url: 'http://127.0.0.1:9002', mode: 'canary', percent: 10 }, { name: 'iris-v3', url: 'http://127.0.0.1:9003', mode: 'shadow', percent: 100 }],
  }],
});

async function value(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await metrics.registry.metrics();
  const wanted = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
  const line = text.split('\n').find((l) => l.startsWith(`${wanted} `));
  return line === undefined ? undefined : Number(line.slice(wanted.length + 1));
}

describe('pre-created series', () => {
  it('exist at 0 for each route, reason and arm, keep their values across swaps, and the gauge follows a rollback', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    precreateGlobalSeries(metrics, { pairSink: 'ndjson' });
    const snapshots = new SnapshotRef(emptySnapshot());
    const splits = new LiveSplits(snapshots);
    snapshots.onSwap((next) => precreateRouteSeries(metrics, next));
    let rolledBack = false;
    splits.attachControl({ override: () => undefined, isPaused: () => false, isRolledBack: () => rolledBack });
    splits.setPolicy(compilePolicy(policy), 'v1');

    for (const reason of rollbackReasons) expect(await value(metrics, 'switchyard_rollbacks_total', { route: 'iris', reason })).toBe(0);
    for (const kind of upstreamErrorKinds) expect(await value(metrics, 'switchyard_upstream_errors_total', { route: 'iris', variant: 'iris-v2', kind })).toBe(0);
    expect(await value(metrics, 'switchyard_fallbacks_total', { route: 'iris', variant: 'iris-v2' })).toBe(0);
    expect(await value(metrics, 'switchyard_shadow_dropped_total', { route: 'iris', reason: 'in_flight_full' })).toBe(0);
    expect(await value(metrics, 'switchyard_policy_reloads_total', { result: 'invalid' })).toBe(0);
    expect(await value(metrics, 'switchyard_pairs_dropped_total', { sink: 'ndjson', reason: 'disk_error' })).toBe(0);
    expect(await value(metrics, 'switchyard_route_rolled_back', { route: 'iris' })).toBe(0);

    metrics.rollbacks.labels('iris', 'error_rate').inc();
    rolledBack = true;
    splits.publish();
    expect(await value(metrics, 'switchyard_route_rolled_back', { route: 'iris' })).toBe(1);
    expect(await value(metrics, 'switchyard_rollbacks_total', { route: 'iris', reason: 'error_rate' })).toBe(1);
    rolledBack = false;
    splits.publish();
    expect(await value(metrics, 'switchyard_route_rolled_back', { route: 'iris' })).toBe(0);
    // A reload compiles the route anew: its series are prepared again without losing a count.
    splits.setPolicy(compilePolicy(policy), 'v2');
    expect(await value(metrics, 'switchyard_rollbacks_total', { route: 'iris', reason: 'error_rate' })).toBe(1);
  });
});
