// The callgrind bench reads the main thread's instruction total from callgrind's output format.
import { describe, expect, it } from 'vitest';
import { callgrindTotal } from '../../../bench/callgrind.js';

describe('callgrindTotal', () => {
  it('reads the totals line, not the summary line callgrind writes as 0 when collection starts late', () => {
    const text = ['# callgrind format', 'version: 1', 'thread: 1', 'events: Ir', 'summary: 0', '', 'fn=(1) main', '0 5', '', 'totals: 1247272005', ''].join('\n');
    expect(callgrindTotal(text)).toBe(1_247_272_005);
  });

  it('refuses output without a totals line', () => {
    expect(() => callgrindTotal('events: Ir\nsummary: 12\n')).toThrow(/no totals line/);
  });
});
