// Public surface of the statistics engine (package export `switchyard/stats`): pure functions, no I/O.
//
// Fixed-horizon tests are for final reports at a pre-declared sample size; gate continuously only with the
// always-valid tests in sequential.ts and srm.ts. Every result carries a `status`: switch on it
// (docs/statistics.md, "Fixed-horizon and always-valid tests").

export type { Alternative, Interval, TestStatus } from './types.js';

export {
  betaQuantile,
  binomialCdf,
  binomialPmf,
  binomialSf,
  chiSquareSf,
  erf,
  erfc,
  erfcx,
  incompleteBeta,
  incompleteGamma,
  logBeta,
  logChoose,
  logGamma,
  logIncompleteBeta,
  logPochhammer,
  normalCdf,
  normalIsf,
  normalLogCdf,
  normalLogSf,
  normalPdf,
  normalQuantile,
  normalSf,
  studentTCdf,
  studentTQuantile,
  studentTSf,
} from './special.js';
export type { BetaTails, GammaTails, LogBetaTails } from './special.js';

export {
  countsRate,
  createCategoryCounts,
  createCoMoments,
  createCounts,
  createMoments,
  createPairedOutcomes,
  mergeCategoryCounts,
  mergeCoMoments,
  mergeCounts,
  mergeMoments,
  mergePairedOutcomes,
  momentsFromSums,
  momentsOf,
  momentsVariance,
  pairedOutcomeRates,
  parseCategoryCounts,
  parseCoMoments,
  parseCounts,
  parseMoments,
  parsePairedOutcomes,
  pushCategory,
  pushCoMoment,
  pushCount,
  pushMoment,
  pushPairedOutcome,
} from './streaming.js';
export type { CategoryCounts, CoMoments, Counts, Moments, PairedOutcomes } from './streaming.js';

export { chiSquare2x2, fisherExact, normalPValue, twoProportionZTest } from './proportions.js';
export type {
  ChiSquare2x2Result,
  FisherExactOptions,
  FisherExactResult,
  ProportionTestOptions,
  Table2x2,
  TwoProportionZTestResult,
} from './proportions.js';

export { binomialPValue, binomialTest, clopperPearsonInterval, wilsonInterval } from './binomial.js';
export type { BinomialTestOptions, BinomialTestResult } from './binomial.js';

export { pairedTTest, pairedTTestSamples, relativeLift, tPValue, welchTTest, welchTTestSamples } from './means.js';
export type { PairedTTestResult, RelativeLift, TTestOptions, WelchTTestResult } from './means.js';

export { averageRanks, hodgesLehmannShift, mannWhitneyU, quickSelect, wilcoxonSignedRank, wilcoxonSignedRankSamples } from './ranks.js';
export type { MannWhitneyOptions, MannWhitneyResult, RankResult, WilcoxonOptions, WilcoxonResult } from './ranks.js';

export { mcNemarTest } from './paired.js';
export type { McNemarResult } from './paired.js';

export { benjaminiHochberg, bonferroni, holm, rejectedAt } from './multiple.js';

export { cuped } from './cuped.js';
export type { CupedResult } from './cuped.js';

export { dirichletMultinomialLogBayesFactor, sequentialSrm, srmChiSquare } from './srm.js';
export type { SequentialSrmResult, SrmChiSquareResult } from './srm.js';

export {
  confidenceSequenceHalfWidth,
  createAlwaysValidState,
  eppoSequentialBound,
  growthBookRho,
  growthBookTau2,
  meanDifferenceMsprt,
  mixtureLook,
  normalMixtureLogLambda,
  observeLook,
  oneSidedMixtureLogLambda,
  pairedMeanMsprt,
  parseAlwaysValidState,
  proportionDifferenceMsprt,
  sequentialMcNemar,
  sloEValue,
} from './sequential.js';
export type { AlwaysValidState, EppoBound, EValueLook, Mixing, MixtureLook, MixtureOptions, SloOptions } from './sequential.js';

export { categoricalDivergence, chiSquareQuantile, jensenShannon, judgeDrift, populationStabilityIndex } from './divergence.js';
export type { CategoricalDivergenceLook, DriftJudgement } from './divergence.js';
