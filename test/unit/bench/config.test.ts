// The bench's BENCH_* settings: target lists are checked, so a typo cannot silently drop a target from a 20-minute run.
import { describe, expect, it } from 'vitest';
import { benchConfig } from '../../../bench/run.js';

describe('benchConfig target lists', () => {
  it('measures every target and runs the stall-excluded runs for the canary, the floor and nginx by default', () => {
    const config = benchConfig({});
    expect(config.targets).toBeNull();
    expect(config.quietTargets).toEqual(['switchyard-canary', 'bare-dispatch', 'nginx']);
  });

  it('reads comma lists with spaces, and "none" for no stall-excluded runs', () => {
    expect(benchConfig({ BENCH_TARGETS: 'switchyard-canary, nginx' }).targets).toEqual(['switchyard-canary', 'nginx']);
    expect(benchConfig({ BENCH_QUIET_TARGETS: 'none' }).quietTargets).toEqual([]);
    expect(benchConfig({ BENCH_QUIET_TARGETS: 'haproxy' }).quietTargets).toEqual(['haproxy']);
  });

  it('refuses an unknown target, naming the variable and the ids there are', () => {
    expect(() => benchConfig({ BENCH_TARGETS: 'switchyard-canary,ngnix' })).toThrow('BENCH_TARGETS: unknown target "ngnix"; use a comma list of direct, switchyard-p0, switchyard-canary, fastify-proxy, bare-dispatch, nginx, haproxy');
    expect(() => benchConfig({ BENCH_QUIET_TARGETS: 'floor' })).toThrow(/^BENCH_QUIET_TARGETS: unknown target "floor"/);
  });
});
