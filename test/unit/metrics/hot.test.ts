// The request-path counters and histograms expose exactly what prom-client's own would for the same observations.
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter, HotHistogram } from '../../../src/metrics/hot.js';

const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// Values on, between, below and above the bounds, including 0 and a value past the last bound.
const observations = [0, 0.0005, 0.001, 0.0011, 0.0025, 0.004, 0.01, 0.2, 0.25, 0.9999, 1, 7, 30, 31, 1e6];

function pair() {
  const reference = new Registry();
  const ours = new Registry();
  const options = { name: 'x_seconds', help: 'Latency.', labelNames: ['route', 'variant'] as const, buckets };
  return {
    reference,
    ours,
    referenceHistogram: new Histogram({ ...options, registers: [reference] }),
    hotHistogram: new HotHistogram({ ...options, registers: [ours] }),
    referenceCounter: new Counter({ name: 'x_total', help: 'Requests.', labelNames: ['route', 'code_class'] as const, registers: [reference] }),
    hotCounter: new HotCounter({ name: 'x_total', help: 'Requests.', labelNames: ['route', 'code_class'] as const, registers: [ours] }),
  };
}

describe('HotHistogram and HotCounter', () => {
  it('write the same exposition text as prom-client for the same observations', async () => {
    const p = pair();
    for (const [i, value] of observations.entries()) {
      const variant = i % 3 === 0 ? 'v2' : 'v1';
      p.referenceHistogram.labels('iris', variant).observe(value);
      p.hotHistogram.labels('iris', variant).observe(value);
      p.referenceCounter.labels('iris', i % 2 === 0 ? '2xx' : '5xx').inc();
      p.hotCounter.labels('iris', i % 2 === 0 ? '2xx' : '5xx').inc();
    }
    p.referenceCounter.labels('iris', '2xx').inc(3);
    p.hotCounter.labels('iris', '2xx').inc(3);
    expect(await p.ours.metrics()).toBe(await p.reference.metrics());
  });

  it('merge with a worker registry through AggregatorRegistry like prom-client metrics', async () => {
    const p = pair();
    p.referenceHistogram.labels('iris', 'v1').observe(0.02);
    p.hotHistogram.labels('iris', 'v1').observe(0.02);
    const worker = new Registry();
    new Counter({ name: 'y_total', help: 'Other.', registers: [worker] }).inc(2);
    const merged = async (registry: Registry) => AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), await worker.getMetricsAsJSON()]).metrics();
    expect(await merged(p.ours)).toBe(await merged(p.reference));
  });

  it('keeps a bound series counting after a reset, from zero', async () => {
    const p = pair();
    const series = p.hotCounter.labels('iris', '2xx');
    series.inc(5);
    p.ours.resetMetrics();
    series.inc();
    expect(await p.ours.metrics()).toContain('x_total{route="iris",code_class="2xx"} 1\n');
  });

  it('returns the same series for the same label values and refuses a wrong number of them', () => {
    const p = pair();
    expect(p.hotHistogram.labels('iris', 'v1')).toBe(p.hotHistogram.labels('iris', 'v1'));
    expect(p.hotHistogram.labels('iris', 'v1')).not.toBe(p.hotHistogram.labels('iris', 'v2'));
    expect(() => p.hotCounter.labels('iris')).toThrow(/x_total takes 2 label values \(route, code_class\), got 1/);
  });

  it('refuses duplicate or non-finite buckets when it is defined', () => {
    expect(() => new HotHistogram({ name: 'z', help: 'z', labelNames: [], buckets: [1, 1], registers: [] })).toThrow(/buckets must be distinct finite numbers/);
    expect(() => new HotHistogram({ name: 'z', help: 'z', labelNames: [], buckets: [Infinity], registers: [] })).toThrow(/buckets must be distinct finite numbers/);
  });
});
