// The bench's goal check: verdicts from medians, and the added-p99 verdict flagged when the direct runs themselves stall.
import { describe, expect, it } from 'vitest';
import { checkGoals, stallingDirectP99Us, type TargetSummary } from '../../../bench/lib/report.js';
import { spread } from '../../../bench/lib/stats.js';
import type { TargetId } from '../../../bench/lib/fleet.js';

/** A summary whose latency figures are given; the rest are single values that no goal below depends on. */
function summary(id: TargetId, p99Us: number, addedP99Us: number, addedP50Us = 200): TargetSummary {
  const one = spread([1]);
  return {
    id,
    label: id,
    capacityRps: one,
    rpsVsDirect: one,
    rpsVsNginx: null,
    rpsVsFastify: null,
    cpuUsPerReqSaturation: spread([70]),
    cpuUsPerReqAtRate: one,
    cpuVsNginxSaturation: null,
    p50Us: one,
    p99Us: spread([p99Us]),
    p999Us: one,
    addedP50Us: spread([addedP50Us]),
    addedP99Us: spread([addedP99Us]),
    addedP999Us: one,
    addedP99WholeRunUs: one,
    failures: 0,
    foreignPct: one,
    rssMiB: one,
  };
}

const addedP99Goal = (direct: number, added: number) => checkGoals([summary('direct', direct, 0), summary('switchyard-canary', direct + added, added)], 2000).find((g) => g.goal.startsWith('added p99'))!;

describe('checkGoals', () => {
  it('judges the added p99 on its median and adds no note when the direct runs are quiet', () => {
    expect(addedP99Goal(640, 1_400)).toMatchObject({ verdict: 'met', measured: { median: 1.4 } });
    expect(addedP99Goal(640, 1_600).verdict).toBe('missed');
    expect(addedP99Goal(640, 1_600).note).toBeUndefined();
  });

  it('keeps the verdict but says so when the direct p99 shows the machine stalling', () => {
    const goal = addedP99Goal(stallingDirectP99Us + 2_600, 1_600);
    expect(goal.verdict).toBe('missed');
    expect(goal.note).toContain('direct p99 3.90 ms');
    expect(addedP99Goal(stallingDirectP99Us, 1_000).note).toBeUndefined();
  });

  it('judges CPU and added p50 against their bounds', () => {
    const goals = checkGoals([summary('direct', 640, 0), summary('switchyard-canary', 2_000, 1_000, 400)], 2000);
    expect(goals.find((g) => g.goal.startsWith('CPU per request at saturation <= 80'))!.verdict).toBe('met');
    expect(goals.find((g) => g.goal.startsWith('added p50'))!.verdict).toBe('missed');
  });
});
