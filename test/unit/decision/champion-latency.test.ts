// The shadow budget's champion latency estimate: sheds above the bound or the ratio over the baseline, resumes below the hysteresis.
import { describe, expect, it } from 'vitest';
import { ChampionLatency } from '../../../src/decision/champion-latency.js';

const policy = (p: Partial<ConstructorParameters<typeof ChampionLatency>[0]>) => ({ samples: 5, baselineSamples: 1_000, resumeBelow: 0.8, ...p });

function feed(watch: ChampionLatency, latencyMs: number, times: number): boolean[] {
  const states: boolean[] = [];
  for (let i = 0; i < times; i++) {
    watch.observe(latencyMs);
    states.push(watch.shedding);
  }
  return states;
}

describe('ChampionLatency', () => {
  it('sheds while the recent mean is above latencyMs and resumes once it is under resumeBelow × latencyMs', () => {
    const watch = new ChampionLatency(policy({ latencyMs: 100 }));
    expect(feed(watch, 20, 50).some(Boolean)).toBe(false);
    // One slow answer moves the mean by a third of the gap (weight 2/6): not enough to shed.
    watch.observe(250);
    expect(watch.shedding).toBe(false);
    expect(feed(watch, 250, 10).at(-1)).toBe(true);
    // Back to fast answers: the mean passes 100 (still shedding, hysteresis) before it drops under 80.
    const recovering = feed(watch, 20, 20);
    const resumedAt = recovering.indexOf(false);
    expect(resumedAt).toBeGreaterThan(0);
    expect(recovering.slice(resumedAt).every((s) => !s)).toBe(true);
    expect(watch.recentMs).toBeLessThan(80);
  });

  it('sheds above ratio × baseline once warm, and a slowdown that lasts becomes the new baseline', () => {
    const watch = new ChampionLatency(policy({ ratio: 2, baselineSamples: 200 }));
    feed(watch, 10, 100);
    expect(watch.shedding).toBe(false);
    expect(watch.baselineMs).toBeCloseTo(10, 5);
    expect(feed(watch, 40, 10).at(-1)).toBe(true);
    // Still 40 ms after many answers: the baseline has followed (EWMA over about 200 answers) and mirrors resume.
    const lasting = feed(watch, 40, 2_000);
    expect(lasting.at(-1)).toBe(false);
    expect(watch.baselineMs).toBeGreaterThan(30);
  });

  it('does not judge the ratio before the baseline has `samples` answers', () => {
    const watch = new ChampionLatency(policy({ ratio: 1.5, samples: 5 }));
    expect(feed(watch, 1, 1)).toEqual([false]);
    expect(feed(watch, 100, 4).every((s) => !s)).toBe(true);
  });
});
