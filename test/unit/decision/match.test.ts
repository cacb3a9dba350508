// Route matching: the longest-prefix rule on compiled policies (table rows), and the radix tree against a linear scan.
import { describe, expect, it } from 'vitest';
import { validatePolicyText } from '../../../src/config/load.js';
import { compilePolicy } from '../../../src/decision/compile.js';
import { buildSnapshot, type DecisionSnapshot, type RouteState } from '../../../src/decision/snapshot.js';
import { PrefixTable } from '../../../src/decision/prefix-table.js';
import { matchRoute } from '../../../src/decision/split.js';
import { createPrng } from '../../../src/demo/prng.js';

/** A snapshot of routes named after their prefixes, compiled as a policy file is. */
function snapshotOf(prefixes: readonly string[]): DecisionSnapshot {
  const routes = prefixes.map((prefix, i) => ({ name: `r${i}`, match: { pathPrefix: prefix }, champion: { name: 'v1', url: 'http://127.0.0.1:9001' } }));
  const { policy, problems } = validatePolicyText('match.test.yaml', JSON.stringify({ routes }));
  if (!policy) throw new Error(`test policy invalid: ${JSON.stringify(problems)}`);
  const compiled = compilePolicy(policy);
  const states = new Map<string, RouteState>(compiled.map((r) => [r.name, { challengers: [], groupId: r.name, source: 'policy', paused: false, rolledBack: false }]));
  return buildSnapshot(compiled, states, 'test');
}

/** The rule as the router always applied it: every prefix the target starts with, the longest wins. */
function linearScan(prefixes: readonly string[], target: string): string | null {
  let best: string | null = null;
  for (const prefix of prefixes) if (target.startsWith(prefix) && (best === null || prefix.length > best.length)) best = prefix;
  return best;
}

const matched = (snapshot: DecisionSnapshot, target: string) => matchRoute(snapshot, target)?.route.prefix ?? null;

describe('matchRoute on a compiled policy', () => {
  const kserve = ['/v1/models', '/v1/models/iris', '/v1/models/iris2', '/v2/models/iris', '/v1/models/iris:', '/abc', '/abd', '/ab'];
  const rows: { target: string; want: string | null }[] = [
    { target: '/v1/models/iris:predict', want: '/v1/models/iris:' },
    { target: '/v1/models/iris', want: '/v1/models/iris' },
    { target: '/v1/models/iris/versions/3', want: '/v1/models/iris' },
    { target: '/v1/models/iris2:predict', want: '/v1/models/iris2' },
    // Prefixes are strings, not segments: a longer name under a shorter prefix still matches it (as it always did).
    { target: '/v1/models/irises:predict', want: '/v1/models/iris' },
    { target: '/v1/models/wine:predict', want: '/v1/models' },
    { target: '/v1/modelsx', want: '/v1/models' },
    { target: '/v2/models/iris/infer', want: '/v2/models/iris' },
    { target: '/v2/models/wine/infer', want: null },
    // The query string is part of what is matched, as sent.
    { target: '/v1/models/iris?explain=1', want: '/v1/models/iris' },
    { target: '/v1/models?x=/iris', want: '/v1/models' },
    // Shorter than every prefix on its branch, or branching inside an edge.
    { target: '/v1/mod', want: null },
    { target: '/abx', want: '/ab' },
    { target: '/abd/1', want: '/abd' },
    { target: '/a', want: null },
    // Percent-encoding is not decoded before matching.
    { target: '/v1/models/ir%69s:predict', want: '/v1/models' },
    { target: '/', want: null },
    { target: '', want: null },
  ];
  const snapshot = snapshotOf(kserve);
  it.each(rows)('$target → $want', ({ target, want }) => {
    expect(matched(snapshot, target)).toBe(want);
    expect(linearScan(kserve, target)).toBe(want);
  });

  it('a "/" route catches whatever no longer prefix claims', () => {
    const withRoot = snapshotOf(['/', ...kserve]);
    expect(matched(withRoot, '/v2/models/wine/infer')).toBe('/');
    expect(matched(withRoot, '/v1/mod')).toBe('/');
    expect(matched(withRoot, '/v1/models/iris:predict')).toBe('/v1/models/iris:');
  });

  it('1,000 routes: each model name finds its own route, whatever the order in the file', () => {
    const names = Array.from({ length: 1000 }, (_, i) => `m${i}`);
    // Names that are prefixes of each other (m1, m10, m100) and a catch-all, in reverse order of length in the file.
    const prefixes = ['/v1/models/', ...names.map((n) => `/v1/models/${n}`).reverse()];
    const snapshot = snapshotOf(prefixes);
    expect(snapshot.byPrefix.size).toBe(1001);
    for (const name of names) {
      expect(matched(snapshot, `/v1/models/${name}:predict`)).toBe(`/v1/models/${name}`);
      expect(matched(snapshot, `/v1/models/${name}x:predict`)).toBe(`/v1/models/${name}`);
    }
    expect(matched(snapshot, '/v1/models/m1000:predict')).toBe('/v1/models/m100');
    expect(matched(snapshot, '/v1/models/x:predict')).toBe('/v1/models/');
    expect(matched(snapshot, '/v1/model')).toBe(null);
  });
});

describe('PrefixTable against a linear scan', () => {
  // A small alphabet, so random prefixes share starts, split each other's edges and are prefixes of one another.
  const alphabet = '/ab:1x';
  function randomString(random: () => number, min: number, max: number): string {
    const length = min + Math.floor(random() * (max - min + 1));
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet[Math.floor(random() * alphabet.length)];
    return s;
  }

  it.each([1, 2, 3, 4, 5])('seed %i: 300 random prefixes, 3,000 random targets', (seed) => {
    const random = createPrng(seed);
    const prefixes = [...new Set(Array.from({ length: 300 }, () => `/${randomString(random, 2, 7)}`))];
    const table = PrefixTable.of(prefixes.map((p) => [p, p] as const));
    expect(table.size).toBe(prefixes.length);
    let hits = 0;
    for (let i = 0; i < 3000; i++) {
      const target = `/${randomString(random, 0, 10)}`;
      const want = linearScan(prefixes, target);
      expect(table.match(target) ?? null, target).toBe(want);
      if (want !== null) hits++;
    }
    // Both outcomes were exercised.
    expect(hits).toBeGreaterThan(100);
    expect(hits).toBeLessThan(3000);
  });

  it('keeps the first value of a prefix given twice, and insertion order does not change any answer', () => {
    const table = PrefixTable.of([['/a', 1], ['/a', 2], ['/ab', 3]] as const);
    expect([table.size, table.match('/a'), table.match('/abc'), table.match('/b')]).toEqual([2, 1, 3, undefined]);
    const reversed = PrefixTable.of([['/ab', 3], ['/a', 1]] as const);
    expect([reversed.match('/a'), reversed.match('/abc'), reversed.match('/ax')]).toEqual([1, 3, 1]);
  });
});
