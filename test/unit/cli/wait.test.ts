// `switchyard wait`: which analysis reaches which target, and how --for and the durations are read.
import { describe, expect, it } from 'vitest';
import { parseDuration, parseTarget, waitOutcome, type WaitTarget } from '../../../src/cli/wait.js';

const at = (phase: string, index: number | null = null) => ({ phase, step: index === null ? null : { index, percent: [10, 50, 100][index]!, of: [10, 50, 100] } }) as Parameters<typeof waitOutcome>[1];

describe('waitOutcome(target, analysis)', () => {
  const cases: [string, WaitTarget, Parameters<typeof waitOutcome>[1], 'reached' | 'other' | 'pending'][] = [
    ['promoted reached', { kind: 'promoted' }, at('promoted', 2), 'reached'],
    ['promoted, still rolling out', { kind: 'promoted' }, at('healthy', 1), 'pending'],
    ['promoted, waiting at a gate', { kind: 'promoted' }, at('awaiting_approval', 1), 'pending'],
    ['promoted, but rolled back', { kind: 'promoted' }, at('rolled_back', 1), 'other'],
    ['rolled back reached', { kind: 'rolled_back' }, at('rolled_back'), 'reached'],
    ['rolled back, but promoted', { kind: 'rolled_back' }, at('promoted'), 'other'],
    ['rolled back, paused meanwhile', { kind: 'rolled_back' }, at('paused', 0), 'pending'],
    ['awaiting approval reached', { kind: 'awaiting_approval' }, at('awaiting_approval', 0), 'reached'],
    ['awaiting approval, but rolled back', { kind: 'awaiting_approval' }, at('rolled_back'), 'other'],
    ['awaiting approval, but promoted', { kind: 'awaiting_approval' }, at('promoted'), 'other'],
    ['step 1 reached', { kind: 'step', index: 1 }, at('collecting', 1), 'reached'],
    ['step 1 passed', { kind: 'step', index: 1 }, at('healthy', 2), 'reached'],
    ['step 1 not yet (waiting at its gate)', { kind: 'step', index: 1 }, at('awaiting_approval', 0), 'pending'],
    ['step 1, promoted past it', { kind: 'step', index: 1 }, at('promoted', null), 'reached'],
    ['step 1, rolled back', { kind: 'step', index: 1 }, at('rolled_back', 1), 'other'],
  ];
  for (const [name, target, analysis, outcome] of cases) it(name, () => expect(waitOutcome(target, analysis)).toBe(outcome));
});

describe('arguments', () => {
  it('reads --for', () => {
    expect(['promoted', 'rolled-back', 'rolled_back', 'awaiting-approval', 'step=3', 'step=x', 'done'].map(parseTarget)).toEqual([
      { kind: 'promoted' }, { kind: 'rolled_back' }, { kind: 'rolled_back' }, { kind: 'awaiting_approval' }, { kind: 'step', index: 3 }, null, null,
    ]);
  });
  it('reads durations; a bare number is seconds', () => {
    expect(['500ms', '30s', '10m', '1h', '2', '0.5', 'soon', '-1s'].map(parseDuration)).toEqual([500, 30_000, 600_000, 3_600_000, 2_000, 500, null, null]);
  });
});
