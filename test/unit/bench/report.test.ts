// The bench's goal check: verdicts from medians, the added-p99 verdict flagged when the direct runs stall, and the stall-excluded row.
import { describe, expect, it } from 'vitest';
import { checkGoals, markdown, stallingDirectP99Us, type StallExcludedSummary, type TargetSummary } from '../../../bench/lib/report.js';
import { spread } from '../../../bench/lib/stats.js';
import type { TargetId } from '../../../bench/lib/fleet.js';

/** A summary whose latency figures are given; the rest are single values that no goal below depends on. */
function summary(id: TargetId, p99Us: number, addedP99Us: number, addedP50Us = 200, stallExcluded: StallExcludedSummary | null = null): TargetSummary {
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
    stallExcluded,
  };
}

/** Stall-excluded figures of three runs whose added p99 were the given µs. */
function stallExcluded(addedP99Us: number[]): StallExcludedSummary {
  return {
    excludedPct: spread([20, 30, 40]),
    p99Us: spread(addedP99Us.map((a) => a + 600)),
    directP99Us: spread([600, 600, 600]),
    addedP50Us: spread([150, 160, 170]),
    addedP99Us: spread(addedP99Us),
    sameRunAddedP99Us: spread([4_000, 5_000, 6_000]),
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

  it('adds a stall-excluded added-p99 row, judged on its median, only when such runs exist', () => {
    const direct = summary('direct', 4_000, 0);
    expect(checkGoals([direct, summary('switchyard-canary', 9_000, 5_000)], 2000).some((g) => g.goal.includes('stall-excluded'))).toBe(false);
    const goals = checkGoals([direct, summary('switchyard-canary', 9_000, 5_000, 200, stallExcluded([500, 700, 1_600]))], 2000);
    const row = goals.find((g) => g.goal.includes('stall-excluded'))!;
    expect(row).toMatchObject({ verdict: 'met', measured: { median: 0.7, min: 0.5, max: 1.6 } });
    expect(row.note).toContain('30 % of the time left out');
    // The plain row keeps its own verdict from the separate direct runs.
    expect(goals.find((g) => g.goal === 'added p99 at 2000 req/s <= 1.5 ms')!.verdict).toBe('missed');
    expect(checkGoals([direct, summary('switchyard-canary', 9_000, 5_000, 200, stallExcluded([1_400, 1_600, 1_700]))], 2000).find((g) => g.goal.includes('stall-excluded'))!.verdict).toBe('missed');
  });

  it('prints the stall-excluded table for the targets that have such runs', () => {
    const summaries = [summary('direct', 4_000, 0), summary('switchyard-canary', 9_000, 5_000, 200, stallExcluded([500, 700, 1_600])), summary('nginx', 5_000, 1_000)];
    const table = markdown(summaries, checkGoals(summaries, 2000), 2000);
    expect(table).toContain('| switchyard-canary | 30 [20…40] | 1.300 [1.100…2.200] | 0.600 [0.600…0.600] | +0.160 [+0.150…+0.170] | +0.700 [+0.500…+1.600] | +5.000 [+4.000…+6.000] |');
    expect(table.split('\n').filter((line) => line.startsWith('| nginx |'))).toHaveLength(2);
  });
});
