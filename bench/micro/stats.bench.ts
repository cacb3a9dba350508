// Micro-benchmark of the statistics engine: ns per streaming update and per sequential-test evaluation (npm run bench:stats).
//
// Each case runs a warm-up (so V8 has optimised it), then several timed rounds; the table shows the median
// round in ns/op. Inputs come from pre-generated arrays so the timed loop measures the engine, not the RNG.
// Targets (bench/micro/README.md): < 1 µs per update, < 20 µs per evaluation. Compare figures within one run only.
import {
  createAlwaysValidState,
  createCoMoments,
  createCounts,
  createMoments,
  createPairedOutcomes,
  meanDifferenceMsprt,
  mergeMoments,
  observeLook,
  pairedMeanMsprt,
  proportionDifferenceMsprt,
  pushCategory,
  pushCoMoment,
  pushCount,
  pushMoment,
  pushPairedOutcome,
  sequentialMcNemar,
  sequentialSrm,
  sloEValue,
  type Moments,
} from '../../src/analysis/stats/index.js';

const TABLE_SIZE = 4096; // power of two: index with & (TABLE_SIZE − 1)
const MASK = TABLE_SIZE - 1;

/** Deterministic inputs (mulberry32), so runs are comparable. */
function uniforms(seed: number): Float64Array {
  let state = seed >>> 0;
  const values = new Float64Array(TABLE_SIZE);
  for (let i = 0; i < TABLE_SIZE; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return values;
}

const u = uniforms(1);
const w = uniforms(2);

interface BenchCase {
  name: string;
  kind: 'update' | 'evaluation';
  /** Runs the operation `iterations` times and returns a checksum (kept so the work cannot be optimised away). */
  run: (iterations: number) => number;
}

const TARGET_NS = { update: 1_000, evaluation: 20_000 } as const;

const cases: BenchCase[] = [
  {
    name: 'pushMoment (Welford)',
    kind: 'update',
    run: (iterations) => {
      const m = createMoments();
      for (let i = 0; i < iterations; i++) pushMoment(m, u[i & MASK]!);
      return m.mean;
    },
  },
  {
    name: 'pushCount (Bernoulli)',
    kind: 'update',
    run: (iterations) => {
      const c = createCounts();
      for (let i = 0; i < iterations; i++) pushCount(c, u[i & MASK]! < 0.05);
      return c.events;
    },
  },
  {
    name: 'pushCoMoment (CUPED)',
    kind: 'update',
    run: (iterations) => {
      const m = createCoMoments();
      for (let i = 0; i < iterations; i++) pushCoMoment(m, u[i & MASK]!, w[i & MASK]!);
      return m.cXY;
    },
  },
  {
    name: 'pushPairedOutcome (McNemar cells)',
    kind: 'update',
    run: (iterations) => {
      const o = createPairedOutcomes();
      for (let i = 0; i < iterations; i++) pushPairedOutcome(o, u[i & MASK]! < 0.9, w[i & MASK]! < 0.9, u[i & MASK]! < 0.1);
      return o.b + o.c;
    },
  },
  {
    name: 'pushCategory (SRM split)',
    kind: 'update',
    run: (iterations) => {
      const counts = [0, 0];
      for (let i = 0; i < iterations; i++) pushCategory(counts, u[i & MASK]! < 0.1 ? 1 : 0);
      return counts[1]!;
    },
  },
  {
    name: 'mergeMoments (replica merge)',
    kind: 'update',
    run: (iterations) => {
      let acc: Moments = createMoments();
      for (let i = 0; i < iterations; i++) acc = mergeMoments(acc, { n: 10, mean: u[i & MASK]!, m2: w[i & MASK]! });
      return acc.mean;
    },
  },
  {
    name: 'meanDifferenceMsprt, two-sided, fixed tau2',
    kind: 'evaluation',
    run: (iterations) => {
      const control: Moments = { n: 9000, mean: 132, m2: 3.5e7 };
      const challenger: Moments = { n: 1000, mean: 140, m2: 4.3e6 };
      const options = { alpha: 0.05, mixing: { tau2: 25 } };
      let sum = 0;
      for (let i = 0; i < iterations; i++) {
        challenger.mean = 130 + 10 * u[i & MASK]!;
        sum += meanDifferenceMsprt(control, challenger, options).logLambda;
      }
      return sum;
    },
  },
  {
    name: 'meanDifferenceMsprt, one-sided margin, GrowthBook N*',
    kind: 'evaluation',
    run: (iterations) => {
      const control: Moments = { n: 9000, mean: 132, m2: 3.5e7 };
      const challenger: Moments = { n: 1000, mean: 140, m2: 4.3e6 };
      const options = { alpha: 0.0125, mixing: { nStar: 20_000 }, theta0: 5, alternative: 'greater' as const };
      let sum = 0;
      for (let i = 0; i < iterations; i++) {
        challenger.mean = 130 + 20 * u[i & MASK]!;
        sum += meanDifferenceMsprt(control, challenger, options).logLambda;
      }
      return sum;
    },
  },
  {
    name: 'proportionDifferenceMsprt (error rate)',
    kind: 'evaluation',
    run: (iterations) => {
      const control = { n: 50_000, events: 1000 };
      const challenger = { n: 5000, events: 120 };
      const options = { alpha: 0.025, mixing: { tau2: 1e-4 }, alternative: 'greater' as const };
      let sum = 0;
      for (let i = 0; i < iterations; i++) {
        challenger.events = 100 + ((u[i & MASK]! * 60) | 0);
        sum += proportionDifferenceMsprt(control, challenger, options).logLambda;
      }
      return sum;
    },
  },
  {
    name: 'pairedMeanMsprt (shadow loss differences)',
    kind: 'evaluation',
    run: (iterations) => {
      const differences: Moments = { n: 20_000, mean: 0.01, m2: 400 };
      const options = { alpha: 0.05, mixing: { nStar: 20_000 } };
      let sum = 0;
      for (let i = 0; i < iterations; i++) {
        differences.mean = 0.02 * (u[i & MASK]! - 0.5);
        sum += pairedMeanMsprt(differences, options).logLambda;
      }
      return sum;
    },
  },
  {
    name: 'observeLook (running-min p, CS intersection)',
    kind: 'evaluation',
    run: (iterations) => {
      let state = createAlwaysValidState();
      const interval = { csLower: -1, csUpper: 1 };
      for (let i = 0; i < iterations; i++) state = observeLook(state, 3 * u[i & MASK]!, 0.05, interval);
      return state.pValue;
    },
  },
  {
    name: 'sequentialMcNemar (b, c ~ 1e3)',
    kind: 'evaluation',
    run: (iterations) => {
      let sum = 0;
      for (let i = 0; i < iterations; i++) sum += sequentialMcNemar(1000 + ((u[i & MASK]! * 100) | 0), 1050).logEValue;
      return sum;
    },
  },
  {
    name: 'sloEValue (n = 1e4)',
    kind: 'evaluation',
    run: (iterations) => {
      const options = { p0: 0.005, priorA: 1, priorB: 99 };
      let sum = 0;
      for (let i = 0; i < iterations; i++) sum += sloEValue(40 + ((u[i & MASK]! * 40) | 0), 10_000, options).logEValue;
      return sum;
    },
  },
  {
    name: 'sloEValue (n = 1e6)',
    kind: 'evaluation',
    run: (iterations) => {
      const options = { p0: 0.005, priorA: 1, priorB: 99 };
      let sum = 0;
      for (let i = 0; i < iterations; i++) sum += sloEValue(4900 + ((u[i & MASK]! * 300) | 0), 1_000_000, options).logEValue;
      return sum;
    },
  },
  {
    name: 'sequentialSrm (2 arms, 1e6 requests)',
    kind: 'evaluation',
    run: (iterations) => {
      const counts = [900_000, 100_000];
      const weights = [0.9, 0.1];
      let sum = 0;
      for (let i = 0; i < iterations; i++) {
        counts[1] = 99_500 + ((u[i & MASK]! * 1000) | 0);
        sum += sequentialSrm(counts, weights).logBayesFactor;
      }
      return sum;
    },
  },
  {
    name: 'sequentialSrm (3 arms, 1e6 requests)',
    kind: 'evaluation',
    run: (iterations) => {
      const counts = [800_000, 100_000, 100_000];
      const weights = [0.8, 0.1, 0.1];
      let sum = 0;
      for (let i = 0; i < iterations; i++) {
        counts[2] = 99_500 + ((u[i & MASK]! * 1000) | 0);
        sum += sequentialSrm(counts, weights).logBayesFactor;
      }
      return sum;
    },
  },
];

/** Median ns/op over timed rounds of about `roundMs` each, after a warm-up of the same length. */
function measure(benchCase: BenchCase, roundMs = 60, rounds = 7): { nsPerOp: number; checksum: number } {
  let checksum = 0;
  // Calibrate the iteration count so one round lasts about roundMs.
  let iterations = 1000;
  for (;;) {
    const start = process.hrtime.bigint();
    checksum += benchCase.run(iterations);
    const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
    if (elapsedMs >= roundMs / 4) {
      iterations = Math.max(1000, Math.round((iterations * roundMs) / elapsedMs));
      break;
    }
    iterations *= 4;
  }
  checksum += benchCase.run(iterations); // warm-up at full size
  const samples: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint();
    checksum += benchCase.run(iterations);
    samples.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  samples.sort((a, b) => a - b);
  return { nsPerOp: samples[Math.floor(rounds / 2)]!, checksum };
}

function main(): void {
  const rows: string[][] = [['case', 'kind', 'ns/op', 'target', 'within']];
  let checksum = 0;
  for (const benchCase of cases) {
    const result = measure(benchCase);
    checksum += result.checksum;
    const target = TARGET_NS[benchCase.kind];
    rows.push([benchCase.name, benchCase.kind, result.nsPerOp.toFixed(1), `< ${target}`, result.nsPerOp < target ? 'yes' : 'NO']);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const lines = rows.map((row) => row.map((cell, column) => (column >= 2 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join('  '));
  lines.splice(1, 0, widths.map((width) => '-'.repeat(width)).join('  '));
  console.log(`switchyard stats micro-bench (node ${process.version}, ${process.platform}/${process.arch})`);
  console.log(lines.join('\n'));
  // Printing the checksum keeps every result observable, so no loop can be dropped as dead code.
  console.log(`checksum ${checksum.toPrecision(6)}`);
}

main();
