// Seeded simulation: sequential tests keep the false-alarm rate <= alpha under continuous monitoring, classic tests peeked at the same way do not, and real effects are found.
//
// Every scenario streams data into the same accumulators production uses and looks after every batch. A run
// "alarms" the first time a test rejects at any look. A/A (or boundary-of-null) runs measure false alarms;
// runs with a real effect measure power. Fixed seeds make the outcome identical on every run.
import { afterAll, describe, expect, it } from 'vitest';
import {
  binomialPValue,
  createCategoryCounts,
  createCounts,
  createMoments,
  mcNemarTest,
  meanDifferenceMsprt,
  momentsVariance,
  normalSf,
  proportionDifferenceMsprt,
  pushCount,
  pushMoment,
  sequentialMcNemar,
  sequentialSrm,
  sloEValue,
  srmChiSquare,
  twoProportionZTest,
  type Moments,
} from '../../../src/analysis/stats/index.js';

const ALPHA = 0.05;
const LOG_THRESHOLD = -Math.log(ALPHA);

/** mulberry32 uniforms plus Box–Muller normals: small, fast, and the same everywhere. */
class SeededRandom {
  #state: number;
  #spare: number | null = null;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  uniform(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  }

  normal(): number {
    if (this.#spare !== null) {
      const value = this.#spare;
      this.#spare = null;
      return value;
    }
    const radius = Math.sqrt(-2 * Math.log(this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.#spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  bernoulli(p: number): boolean {
    return this.uniform() < p;
  }
}

interface Scenario {
  runs: number;
  looks: number;
  /** Creates one run: `step()` adds one batch and reports which tests reject at this look. */
  start: (random: SeededRandom) => { step: () => { sequential: boolean; classic: boolean } };
}

interface Rates {
  sequential: number;
  classic: number;
}

/** Fraction of runs in which each test rejects at some look. */
function simulate(scenario: Scenario, seed: number): Rates {
  const random = new SeededRandom(seed);
  let sequentialAlarms = 0;
  let classicAlarms = 0;
  for (let run = 0; run < scenario.runs; run++) {
    const stream = scenario.start(random);
    let sequential = false;
    let classic = false;
    for (let look = 0; look < scenario.looks && !(sequential && classic); look++) {
      const verdict = stream.step();
      sequential ||= verdict.sequential;
      classic ||= verdict.classic;
    }
    if (sequential) sequentialAlarms++;
    if (classic) classicAlarms++;
  }
  return { sequential: sequentialAlarms / scenario.runs, classic: classicAlarms / scenario.runs };
}

function welchZ(a: Moments, b: Moments): number {
  return (b.mean - a.mean) / Math.sqrt(momentsVariance(a) / a.n + momentsVariance(b) / b.n);
}

// --- Scenarios -------------------------------------------------------------------------------------------

/** Two arms of N(0,1) (think log latency), the challenger shifted by `shift`; 20 per arm per batch. */
function meansScenario(shift: number, mixing: { tau2: number } | { nStar: number }): Scenario {
  return {
    runs: 1000,
    looks: 100,
    start: (random) => {
      const control = createMoments();
      const challenger = createMoments();
      return {
        step: () => {
          for (let i = 0; i < 20; i++) {
            pushMoment(control, random.normal());
            pushMoment(challenger, random.normal() + shift);
          }
          const look = meanDifferenceMsprt(control, challenger, { alpha: ALPHA, mixing });
          return { sequential: look.logLambda >= LOG_THRESHOLD, classic: Math.abs(welchZ(control, challenger)) > 1.959963984540054 };
        },
      };
    },
  };
}

/** One-sided guardrail with harm margin m: H0 is "challenger worse by at most m"; runs sit exactly at the boundary. */
function marginScenario(trueExcess: number, margin: number): Scenario {
  return {
    runs: 1000,
    looks: 100,
    start: (random) => {
      const control = createMoments();
      const challenger = createMoments();
      return {
        step: () => {
          for (let i = 0; i < 20; i++) {
            pushMoment(control, random.normal());
            pushMoment(challenger, random.normal() + trueExcess);
          }
          const look = meanDifferenceMsprt(control, challenger, { alpha: ALPHA, mixing: { tau2: 0.01 }, theta0: margin, alternative: 'greater' });
          const z = (challenger.mean - control.mean - margin) / Math.sqrt(momentsVariance(control) / control.n + momentsVariance(challenger) / challenger.n);
          return { sequential: look.logLambda >= LOG_THRESHOLD, classic: normalSf(z) < ALPHA };
        },
      };
    },
  };
}

/** Error rates per arm; 50 requests per arm per batch. */
function proportionsScenario(pControl: number, pChallenger: number): Scenario {
  return {
    runs: 1000,
    looks: 60,
    start: (random) => {
      const control = createCounts();
      const challenger = createCounts();
      return {
        step: () => {
          for (let i = 0; i < 50; i++) {
            pushCount(control, random.bernoulli(pControl));
            pushCount(challenger, random.bernoulli(pChallenger));
          }
          const look = proportionDifferenceMsprt(control, challenger, { alpha: ALPHA, mixing: { tau2: 1e-4 } });
          const classic = twoProportionZTest(challenger.events, challenger.n, control.events, control.n);
          return { sequential: look.logLambda >= LOG_THRESHOLD, classic: classic.status === 'ok' && classic.pValue < ALPHA };
        },
      };
    },
  };
}

/** Shadow mode: 10% of paired requests are discordant; `cShare` of those favour the challenger. */
function mcNemarScenario(cShare: number): Scenario {
  return {
    runs: 500,
    looks: 80,
    start: (random) => {
      let b = 0;
      let c = 0;
      return {
        step: () => {
          for (let i = 0; i < 50; i++) {
            if (random.bernoulli(0.1)) {
              if (random.bernoulli(cShare)) c++;
              else b++;
            }
          }
          return { sequential: sequentialMcNemar(b, c).logEValue >= LOG_THRESHOLD, classic: mcNemarTest(b, c).exactPValue < ALPHA };
        },
      };
    },
  };
}

/** Challenger error rate against an SLO of 0.5%, prior Beta(1, 99); 200 requests per batch. */
function sloScenario(errorRate: number): Scenario {
  const p0 = 0.005;
  return {
    runs: 500,
    looks: 50,
    start: (random) => {
      let errors = 0;
      let n = 0;
      return {
        step: () => {
          for (let i = 0; i < 200; i++) {
            n++;
            if (random.bernoulli(errorRate)) errors++;
          }
          const e = sloEValue(errors, n, { p0, priorA: 1, priorB: 99 });
          return { sequential: e.logEValue >= LOG_THRESHOLD, classic: binomialPValue(errors, n, p0, 'greater') < ALPHA };
        },
      };
    },
  };
}

/** Router split configured 90/10, actual challenger share `share`; 100 requests per batch. */
function srmScenario(share: number): Scenario {
  const weights = [0.9, 0.1];
  return {
    runs: 500,
    looks: 100,
    start: (random) => {
      const counts = createCategoryCounts(2);
      return {
        step: () => {
          for (let i = 0; i < 100; i++) counts[random.bernoulli(share) ? 1 : 0]! += 1;
          return { sequential: sequentialSrm(counts, weights).pLook <= ALPHA, classic: srmChiSquare(counts, weights).pValue < ALPHA };
        },
      };
    },
  };
}

// --- Assertions ------------------------------------------------------------------------------------------

const report: string[] = [];

function record(name: string, kind: 'false alarms' | 'power', rates: Rates): void {
  report.push(`${name.padEnd(52)} ${kind.padEnd(12)} sequential ${(100 * rates.sequential).toFixed(1).padStart(5)}%   classic peeking ${(100 * rates.classic).toFixed(1).padStart(5)}%`);
}

describe(`sequential tests under continuous monitoring (alpha = ${ALPHA})`, () => {
  afterAll(() => console.log(`sequential-validity:\n${report.join('\n')}`));

  const nullCases: Array<[string, Scenario, number]> = [
    ['means mSPRT, fixed tau2 = 0.05 (100 looks x 20/arm)', meansScenario(0, { tau2: 0.05 }), 101],
    ['means mSPRT, GrowthBook N* = 4000 (100 looks x 20/arm)', meansScenario(0, { nStar: 4000 }), 102],
    ['one-sided with margin 0.1, at the boundary', marginScenario(0.1, 0.1), 103],
    ['Bernoulli mSPRT, 5% errors (60 looks x 50/arm)', proportionsScenario(0.05, 0.05), 104],
    ['sequential McNemar, b ~ c (80 looks x 50 pairs)', mcNemarScenario(0.5), 105],
    ['SLO e-value, error rate = SLO 0.5% (50 looks x 200)', sloScenario(0.005), 106],
    ['sequential SRM 90/10, correct split (100 looks x 100)', srmScenario(0.1), 107],
  ];
  for (const [name, scenario, seed] of nullCases) {
    it(`${name}: false alarms <= alpha, classic peeking above 2·alpha`, () => {
      const rates = simulate(scenario, seed);
      record(name, 'false alarms', rates);
      expect(rates.sequential).toBeLessThanOrEqual(ALPHA);
      expect(rates.classic).toBeGreaterThan(2 * ALPHA);
    });
  }

  const powerCases: Array<[string, Scenario, number]> = [
    ['means mSPRT, shift 0.2 sd', meansScenario(0.2, { tau2: 0.05 }), 201],
    ['one-sided with margin 0.1, true excess 0.35', marginScenario(0.35, 0.1), 202],
    ['Bernoulli mSPRT, 5% -> 8% errors', proportionsScenario(0.05, 0.08), 203],
    ['sequential McNemar, c twice b', mcNemarScenario(2 / 3), 204],
    ['SLO e-value, error rate 1.5%', sloScenario(0.015), 205],
    ['sequential SRM, actual split 88/12', srmScenario(0.12), 206],
  ];
  for (const [name, scenario, seed] of powerCases) {
    it(`${name}: detected in at least 80% of runs`, () => {
      const rates = simulate(scenario, seed);
      record(name, 'power', rates);
      expect(rates.sequential).toBeGreaterThanOrEqual(0.8);
    });
  }
});
