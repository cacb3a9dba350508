// The soak bench's verdicts: RSS flat within 10 % after the first minute, the peak under the memory setting, and the report.
import { describe, expect, it } from 'vitest';
import { budgetCheck, flatness, rssByMinute, soakMarkdown, timeline, type MetricsSample, type RssSample, type SoakResult } from '../../../bench/lib/soak-report.js';
import { parseLargeKb } from '../../../bench/lib/payload.js';
import { maxResponseBytesFor, soakConfig } from '../../../bench/soak.js';

/** One sample a second from 0 to `seconds`, RSS given by `rss(t)`. */
function series(seconds: number, rss: (t: number) => number): RssSample[] {
  return Array.from({ length: seconds + 1 }, (_, t) => ({ tS: t, rssMiB: rss(t) }));
}

function scrape(tS: number, written: number, dropped: number): MetricsSample {
  return {
    tS,
    bufferBytes: { join_table: 10 * 1_048_576, sink: 1_048_576 },
    budgetBytes: { join_table: 20 * 1_048_576, sink: 8 * 1_048_576 },
    dropped: { 'join_table/memory_budget': dropped },
    recordsWritten: { ndjson: written },
    pairs: { agree: written },
    shadowDropped: {},
    heapSpaceBytes: { new: 32 * 1_048_576, old: 40 * 1_048_576 },
    externalBytes: 8 * 1_048_576,
  };
}

describe('flatness', () => {
  it('passes when RSS after the first minute stays within 10 % of RSS at 60 s, and says by how much', () => {
    const f = flatness(series(180, (t) => (t < 60 ? 100 + t : 200 + (t % 10))), 60);
    expect(f).toMatchObject({ atSettleMiB: 200, maxAfterMiB: 209, verdict: 'PASS' });
    expect(f.ratio).toBeCloseTo(1.045, 3);
  });

  it('misses when RSS grows more than 10 % after the first minute, even if it ends lower', () => {
    const f = flatness(series(180, (t) => (t === 150 ? 221 : 200)), 60);
    expect(f).toMatchObject({ atSettleMiB: 200, maxAfterMiB: 221, lastMiB: 200, verdict: 'MISS' });
    expect(flatness(series(180, (t) => (t === 150 ? 220 : 200)), 60).verdict).toBe('PASS');
  });

  it('ignores growth during the first minute and passes falling RSS', () => {
    expect(flatness(series(180, (t) => (t < 60 ? 50 + 5 * t : 400 - t)), 60).verdict).toBe('PASS');
  });

  it('has no verdict for a run that ends before the settling time', () => {
    expect(flatness(series(30, () => 100), 60)).toMatchObject({ atSettleMiB: null, ratio: null, verdict: 'n/a' });
  });
});

describe('budgetCheck', () => {
  it('judges the peak against the memory setting, counting the kernel high-water mark a 1 s sampler can miss', () => {
    const samples = series(180, () => 240);
    expect(budgetCheck(samples, 250, 256)).toMatchObject({ peakMiB: 250, sampledMaxMiB: 240, verdict: 'PASS' });
    expect(budgetCheck(samples, 256, 256).verdict).toBe('PASS');
    expect(budgetCheck(samples, 300, 256)).toMatchObject({ peakMiB: 300, verdict: 'MISS' });
    expect(budgetCheck(series(10, (t) => (t === 5 ? 257 : 100)), null, 256)).toMatchObject({ peakMiB: 257, verdict: 'MISS' });
  });

  it('has no verdict without any sample', () => {
    expect(budgetCheck([], null, 256).verdict).toBe('n/a');
  });
});

describe('timeline and rssByMinute', () => {
  it('takes a row every 15 s plus the last sample, with the scrape taken at or before it', () => {
    const rows = timeline(series(40, (t) => 100 + t), [scrape(0, 0, 0), scrape(10, 500, 400), scrape(20, 1_000, 900), scrape(30, 1_500, 1_400), scrape(40, 2_000, 1_900)]);
    expect(rows.map((r) => r.tS)).toEqual([0, 15, 30, 40]);
    expect(rows[1]).toMatchObject({ rssMiB: 115, written: 500, dropped: 400, bufferedMiB: 11, heapMiB: 72, newSpaceMiB: 32, externalMiB: 8 });
    expect(rows[2]!.written).toBe(1_500);
  });

  it('gives each minute its mean and largest RSS, the sample at the very end counting in the last minute', () => {
    expect(rssByMinute(series(119, (t) => (t < 60 ? 100 : 200 + (t === 90 ? 50 : 0))))).toEqual([
      { minute: 0, meanMiB: 100, maxMiB: 100 },
      { minute: 1, meanMiB: 200 + 50 / 60, maxMiB: 250 },
    ]);
    const ending = [...series(119, () => 100), { tS: 120.03, rssMiB: 160 }];
    expect(rssByMinute(ending).map((m) => [m.minute, m.maxMiB])).toEqual([[0, 100], [1, 160]]);
  });
});

describe('soakMarkdown', () => {
  const result = (exited: string | null): SoakResult => {
    const rss = series(180, (t) => (t < 60 ? 150 : 240));
    return {
      startedAt: '2026-12-07T00:00:00.000Z',
      machine: {},
      config: { seconds: 180, rate: 50, bodyBytes: { min: 65_536, max: 204_800 }, memoryMb: 256, settleSeconds: 60, maxResponseBytes: 4_194_304, nodeFlags: ['--max-semi-space-size=64'] },
      requests: { sent: 9_000, answered: 9_000, ok2xx: 9_000, non2xx: 0, errors: 0, unanswered: 0, errorCodes: {}, p50Ms: 12, p99Ms: 80 },
      rss,
      highWaterMiB: 300,
      metrics: [scrape(0, 0, 0), scrape(180, 9_000, 8_900)],
      logBytesOnDisk: 1_048_576_000,
      cpuPct: { switchyard: 100 },
      exited,
      flatness: flatness(rss, 60),
      budget: budgetCheck(rss, 300, 256),
    };
  };

  it('states both verdicts with their figures, the counters and the RSS table', () => {
    const md = soakMarkdown(result(null));
    expect(md).toContain('| RSS flat after 60 s (max ≤ 1.10 × RSS at 60 s) | at 60 s 240 MiB, max after 240 MiB, last 240 MiB, ratio 1.000 | PASS |');
    expect(md).toContain('| peak RSS ≤ SWITCHYARD_MEMORY_MB | peak 300 MiB (sampled max 240, VmHWM 300) of 256 MiB, 117 % | MISS |');
    expect(md).toContain('64-200 kB text predictions, SWITCHYARD_MEMORY_MB=256, node --max-semi-space-size=64');
    expect(md).toContain('Drops by sink/reason: join_table/memory_budget 8,900.');
    expect(md).toContain('| join_table | 10.0 | 20.0 |');
    expect(md).toContain('| 180 | 240 | 72 (32) | 8 | 11.0 | 9,000 | 8,900 |');
    expect(md).not.toContain('exited during the run');
  });

  it('says so when Switchyard exited during the run', () => {
    expect(soakMarkdown(result('exit SIGKILL'))).toContain('**Switchyard exited during the run: exit SIGKILL.**');
  });
});

describe('soak settings', () => {
  it('defaults to 3 minutes at 50 req/s, 64-200 kB bodies, 256 MiB and the production V8 flag', () => {
    expect(soakConfig({})).toMatchObject({ seconds: 180, rate: 50, bodyBytes: { min: 65_536, max: 204_800 }, memoryMb: 384, settleSeconds: 60, nodeFlags: ['--max-semi-space-size=32'] });
    expect(soakConfig({ SOAK_MEMORY_MB: '256' })).toMatchObject({ memoryMb: 256, nodeFlags: ['--max-semi-space-size=16'] });
    expect(soakConfig({ SOAK_BODY_KB: '1024', SOAK_NODE_FLAGS: '' })).toMatchObject({ bodyBytes: { min: 1_048_576, max: 1_048_576 }, nodeFlags: [] });
  });

  it('refuses a bad size or number, naming the variable', () => {
    expect(() => soakConfig({ SOAK_BODY_KB: '200-64' })).toThrow(/^SOAK_BODY_KB: "200-64" is not a body size/);
    expect(() => parseLargeKb('lots')).toThrow(/^--large-kb: "lots"/);
    expect(() => soakConfig({ SOAK_RATE: 'fast' })).toThrow('SOAK_RATE must be a non-negative number, got "fast"');
  });

  it('lets the largest body through whole to extraction', () => {
    expect(maxResponseBytesFor({ max: 204_800 })).toBe(4 * 1_048_576);
    expect(maxResponseBytesFor({ max: 8 * 1_048_576 })).toBe(8 * 1_048_576 + 65_536);
    expect(maxResponseBytesFor({ max: 64 * 1_048_576 })).toBe(16 * 1_048_576);
  });
});
