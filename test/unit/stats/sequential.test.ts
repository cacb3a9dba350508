// Unit tests of the always-valid tests: closed-form identities, running-min state, and the no-NaN contract on insufficient data.
import { describe, expect, it } from 'vitest';
import {
  confidenceSequenceHalfWidth,
  createAlwaysValidState,
  dirichletMultinomialLogBayesFactor,
  growthBookRho,
  growthBookTau2,
  meanDifferenceMsprt,
  mixtureLook,
  normalIsf,
  normalMixtureLogLambda,
  observeLook,
  oneSidedMixtureLogLambda,
  pairedMeanMsprt,
  parseAlwaysValidState,
  proportionDifferenceMsprt,
  sequentialMcNemar,
  sequentialSrm,
  sloEValue,
  type MixtureLook,
} from '../../../src/analysis/stats/index.js';

/** The sequential contract: no NaN anywhere in a look, whatever the input. */
function expectNoNaN(look: object): void {
  for (const [key, value] of Object.entries(look)) {
    if (typeof value === 'number') expect(Number.isNaN(value), key).toBe(false);
  }
}

describe('normal-mixture closed forms', () => {
  it('splits Λ into its one-sided halves: Λ⁺ + Λ⁻ = 2Λ, and Λ± = Λ at Δ̂ = θ₀', () => {
    for (const [delta, v, tau2, theta0] of [
      [0.5, 0.01, 0.04, 0],
      [-0.3, 0.02, 0.01, 0.1],
      [0.05, 1e-4, 1e-4, 0.02],
    ] as const) {
      const lambda = Math.exp(normalMixtureLogLambda(delta, v, tau2, theta0));
      const plus = Math.exp(oneSidedMixtureLogLambda(delta, v, tau2, theta0, 'greater'));
      const minus = Math.exp(oneSidedMixtureLogLambda(delta, v, tau2, theta0, 'less'));
      expect((plus + minus) / (2 * lambda)).toBeCloseTo(1, 13);
    }
    const atNull = normalMixtureLogLambda(0.2, 0.01, 0.05, 0.2);
    expect(oneSidedMixtureLogLambda(0.2, 0.01, 0.05, 0.2, 'greater')).toBeCloseTo(atNull, 14);
  });

  it('stays finite in log space where Λ overflows a double', () => {
    const logLambda = normalMixtureLogLambda(10, 0.01, 1, 0);
    expect(logLambda).toBeGreaterThan(709);
    expect(Number.isFinite(logLambda)).toBe(true);
    expect(Number.isFinite(oneSidedMixtureLogLambda(10, 0.01, 1, 0, 'less'))).toBe(true);
  });

  it('always pays for peeking: the CS is wider than the fixed-horizon z interval', () => {
    for (const v of [1e-6, 1e-3, 1, 100]) {
      for (const tau2 of [1e-4, 1, 1e3]) {
        expect(confidenceSequenceHalfWidth(v, tau2, 0.05)).toBeGreaterThan(normalIsf(0.025) * Math.sqrt(v));
      }
    }
  });

  it('maps N* to the GrowthBook mixing variance', () => {
    const rho = growthBookRho(0.05, 5000);
    expect(rho).toBeCloseTo(0.03984006677137368, 15);
    expect(growthBookTau2(2, 1000, 0.05, 5000)).toBeCloseTo(rho * rho * 1000 * 2, 15);
  });
});

describe('insufficient data', () => {
  const options = { alpha: 0.05, mixing: { tau2: 1 } };
  const growthBook = { alpha: 0.05, mixing: { nStar: 5000 } };

  it('gives Λ = 1, p = 1 and an unbounded CS, never NaN', () => {
    const looks: MixtureLook[] = [
      meanDifferenceMsprt({ n: 1, mean: 3, m2: 0 }, { n: 5, mean: 1, m2: 4 }, options),
      meanDifferenceMsprt({ n: 5, mean: 3, m2: 0 }, { n: 5, mean: 3, m2: 0 }, options), // zero variance
      meanDifferenceMsprt({ n: 5, mean: 3, m2: 0 }, { n: 5, mean: 3, m2: 0 }, growthBook),
      meanDifferenceMsprt({ n: 5, mean: NaN, m2: 1 }, { n: 5, mean: 3, m2: 1 }, options),
      proportionDifferenceMsprt({ n: 100, events: 0 }, { n: 100, events: 0 }, options), // V = 0
      proportionDifferenceMsprt({ n: 0, events: 0 }, { n: 10, events: 1 }, options),
      pairedMeanMsprt({ n: 1, mean: 0.3, m2: 0 }, options),
      mixtureLook(0.1, 0.01, 100, { alpha: 0.05, mixing: { tau2: 0 } }),
    ];
    for (const look of looks) {
      expect(look.status).toBe('insufficient-data');
      expect(look).toMatchObject({ logLambda: 0, lambda: 1, pLook: 1, reject: false, csLower: -Infinity, csUpper: Infinity });
      expectNoNaN(look);
    }
  });

  it('gives e = 1 for count e-values without data', () => {
    for (const look of [sequentialMcNemar(0, 0), sloEValue(0, 0, { p0: 0.01 }), sequentialSrm([0, 0], [0.5, 0.5])]) {
      expect(look.status).toBe('insufficient-data');
      expect(look.pLook).toBe(1);
      expectNoNaN(look);
    }
  });
});

describe('always-valid state', () => {
  it('keeps the running minimum of 1/Λ, the first rejection and the intersected CS', () => {
    let state = createAlwaysValidState();
    state = observeLook(state, Math.log(4), 0.05, { csLower: -1, csUpper: 3 });
    state = observeLook(state, Math.log(25), 0.05, { csLower: 0.5, csUpper: 4 });
    state = observeLook(state, Math.log(2), 0.05, { csLower: -2, csUpper: 2 });
    state = observeLook(state, NaN, 0.05);
    expect(state).toMatchObject({ looks: 4, maxLogLambda: Math.log(25), firstRejectLook: 2, csLower: 0.5, csUpper: 2 });
    expect(state.pValue).toBeCloseTo(1 / 25, 15);
    expect(parseAlwaysValidState(JSON.parse(JSON.stringify(state)))).toEqual(state);
  });

  it('round-trips through JSON from the first look on, even after an infinite e-value', () => {
    const initial = createAlwaysValidState();
    expect(parseAlwaysValidState(JSON.parse(JSON.stringify(initial)))).toEqual(initial);
    const certain = observeLook(initial, Infinity, 0.05, { csLower: -Infinity, csUpper: Infinity });
    expect(certain).toMatchObject({ pValue: 0, firstRejectLook: 1, csLower: null, csUpper: null });
    expect(parseAlwaysValidState(JSON.parse(JSON.stringify(certain)))).toEqual(certain);
    expect(parseAlwaysValidState({ ...initial, pValue: 2 })).toBeNull();
    expect(parseAlwaysValidState({ ...initial, csLower: 'x' })).toBeNull();
  });

  it('caps the p-value at 1 when Λ < 1', () => {
    expect(observeLook(createAlwaysValidState(), -3, 0.05).pValue).toBe(1);
  });
});

describe('count e-values', () => {
  it('sequential McNemar is symmetric in (b, c) and grows with imbalance', () => {
    expect(sequentialMcNemar(5, 40).logEValue).toBeCloseTo(sequentialMcNemar(40, 5).logEValue, 12);
    expect(sequentialMcNemar(5, 40).logEValue).toBeGreaterThan(sequentialMcNemar(15, 30).logEValue);
  });

  it('SLO e-value rises with errors and stays finite at very large n', () => {
    const options = { p0: 0.005, priorA: 1, priorB: 99 };
    let previous = -Infinity;
    for (const errors of [0, 5, 10, 20, 40]) {
      const e = sloEValue(errors, 2000, options).logEValue;
      expect(e).toBeGreaterThan(previous);
      previous = e;
    }
    const huge = sloEValue(600_000, 100_000_000, options);
    expect(Number.isFinite(huge.logEValue)).toBe(true);
    expect(huge.pLook).toBeLessThan(1e-6); // 0.6% against a 0.5% SLO at 1e8 requests
  });

  it('sequential SRM: traffic in a zero-weight arm is certain mismatch; the right split gains no evidence', () => {
    expect(dirichletMultinomialLogBayesFactor([10, 1], [1, 0])).toBe(Infinity);
    expect(sequentialSrm([10, 1], [1, 0]).pLook).toBe(0);
    expect(sequentialSrm([50_000, 50_000], [0.5, 0.5]).pLook).toBe(1);
    // Weights need not sum to 1.
    expect(dirichletMultinomialLogBayesFactor([900, 100], [90, 10])).toBeCloseTo(dirichletMultinomialLogBayesFactor([900, 100], [0.9, 0.1]), 13);
  });
});

describe('malformed input', () => {
  it('never throws and never returns NaN from the sequential tests', () => {
    const looks = [
      mixtureLook(0.1, 0.01, 100, { alpha: 0, mixing: { tau2: 1 } }),
      mixtureLook(0.1, 0.01, 100, { alpha: -1, mixing: { nStar: 100 } }),
      mixtureLook(Infinity, 0.01, 100, { alpha: 0.05, mixing: { tau2: 1 } }),
      mixtureLook(0.1, 0.01, 100, { alpha: 0.05, mixing: { tau2: 1 }, theta0: NaN }),
    ];
    for (const look of looks) {
      expect(look.status).toBe('insufficient-data');
      expectNoNaN(look);
    }
    for (const look of [
      sequentialMcNemar(-3, 2),
      sequentialMcNemar(3, 2, 0),
      sloEValue(12, 10, { p0: 0.01 }),
      sloEValue(1, 10, { p0: 0.01, priorA: -1 }),
      sequentialSrm([10, 10], [0, 0]),
      sequentialSrm([10, 10], [0.5, NaN]),
      sequentialSrm([10, 10], [0.5, 0.5], 0),
    ]) {
      expect(look.status).toBe('insufficient-data');
      expectNoNaN(look);
    }
  });
});
