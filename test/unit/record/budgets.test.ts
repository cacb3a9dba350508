// The memory rule: byte budgets, the worker's heap and the serving thread's semi-space, all from one memory setting.
import { describe, expect, it } from 'vitest';
import { budgetShares, idleBaselineMb, recorderBudgets, semiSpaceMbFor, startedSemiSpaceMb, trafficAreaMb } from '../../../src/record/budgets.js';

describe('trafficAreaMb', () => {
  it.each([
    { memoryMb: 64, area: 16 },
    { memoryMb: 160, area: 40 },
    { memoryMb: 256, area: 128 },
    { memoryMb: 512, area: 384 },
    { memoryMb: 1024, area: 896 },
  ])('leaves $area MiB of $memoryMb MiB above the idle baseline (at least a quarter)', ({ memoryMb, area }) => {
    expect(trafficAreaMb(memoryMb)).toBe(area);
  });
});

describe('recorderBudgets', () => {
  it('gives every buffer its share of the traffic area, together 20 %', () => {
    const budgets = recorderBudgets(512);
    const area = (512 - idleBaselineMb) * 1_048_576;
    for (const [buffer, share] of Object.entries(budgetShares)) expect(budgets[buffer as keyof typeof budgetShares]).toBe(Math.floor(area * share));
    expect(Object.values(budgetShares).reduce((a, b) => a + b, 0)).toBeCloseTo(0.21, 10);
  });

  it('bounds the worker: old generation 40 % of the area (at least 48 MiB), young generation 4 to 16 MiB', () => {
    expect(recorderBudgets(256)).toMatchObject({ workerHeapMb: 51, workerYoungMb: 4 });
    expect(recorderBudgets(64)).toMatchObject({ workerHeapMb: 48, workerYoungMb: 4 });
    expect(recorderBudgets(4096)).toMatchObject({ workerYoungMb: 16 });
  });

  it('refuses a setting out of range, naming the variable', () => {
    expect(() => recorderBudgets(32)).toThrow(/SWITCHYARD_MEMORY_MB/);
  });
});

describe('semiSpaceMbFor', () => {
  it.each([
    { memoryMb: 256, semi: 16 },
    { memoryMb: 384, semi: 32 },
    { memoryMb: 512, semi: 48 },
    { memoryMb: 1024, semi: 64 },
    { memoryMb: 64, semi: 2 },
  ])('keeps two semi-spaces within a quarter of the traffic area: $memoryMb MiB -> $semi MiB', ({ memoryMb, semi }) => {
    expect(semiSpaceMbFor(memoryMb)).toBe(semi);
    expect(2 * semiSpaceMbFor(memoryMb)).toBeLessThanOrEqual(Math.max(2, trafficAreaMb(memoryMb) / 4));
  });
});

describe('startedSemiSpaceMb', () => {
  it('reads the flag from NODE_OPTIONS and the command line, the command line winning', () => {
    expect(startedSemiSpaceMb([], undefined)).toBeNull();
    expect(startedSemiSpaceMb([], '--max-semi-space-size=64')).toBe(64);
    expect(startedSemiSpaceMb(['--max-semi-space-size', '16'], '--max-semi-space-size=64')).toBe(16);
    expect(startedSemiSpaceMb(['--enable-source-maps'], '--max-old-space-size=300')).toBeNull();
  });
});
