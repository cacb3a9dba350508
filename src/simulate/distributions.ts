// Latency distributions of a simulated arm: their schema (lognormal, pareto, constant, mixture) and fast samplers.
import { z } from 'zod';
import type { Rng } from './rng.js';

// zod 4 numbers are finite: Infinity and NaN are refused with the field's path.
const positive = (what: string) => z.number().gt(0, { message: `must be greater than 0 (${what})` });

const lognormalSchema = z.strictObject({
  dist: z.literal('lognormal'),
  /** The median latency in ms: exp(mu). */
  median: positive('ms'),
  /** Standard deviation of the log latency. */
  sigma: z.number().min(0).max(5),
});

const paretoSchema = z.strictObject({
  dist: z.literal('pareto'),
  /** The minimum latency in ms (x_m). */
  scale: positive('ms'),
  /** Tail index alpha: the smaller, the heavier the tail (the mean is infinite at or below 1). */
  shape: positive('tail index'),
});

const constantSchema = z.strictObject({
  dist: z.literal('constant'),
  value: z.number().min(0),
});

const componentSchema = z.discriminatedUnion('dist', [lognormalSchema.extend({ weight: positive('relative weight') }), paretoSchema.extend({ weight: positive('relative weight') }), constantSchema.extend({ weight: positive('relative weight') })], {
  error: 'a mixture component needs dist lognormal {median, sigma}, pareto {scale, shape} or constant {value}, plus a weight',
});

const mixtureSchema = z.strictObject({
  dist: z.literal('mixture'),
  /** Drawn in proportion to their weights (which need not add up to 1). */
  components: z.array(componentSchema).min(1, { message: 'a mixture needs at least one component' }),
});

/** A latency distribution in ms. */
export const latencySchema = z.discriminatedUnion('dist', [lognormalSchema, paretoSchema, constantSchema, mixtureSchema], {
  error: 'dist must be one of lognormal {median, sigma}, pareto {scale, shape}, constant {value}, mixture {components}',
});

export type LatencyDistribution = z.infer<typeof latencySchema>;
type SimpleDistribution = Exclude<LatencyDistribution, { dist: 'mixture' }>;

/** Draws one latency in ms. */
export type Sampler = (rng: Rng) => number;

function simpleSampler(d: SimpleDistribution): Sampler {
  switch (d.dist) {
    case 'lognormal': {
      const { median, sigma } = d;
      return (rng) => median * Math.exp(sigma * rng.normal());
    }
    case 'pareto': {
      const { scale } = d;
      const exponent = -1 / d.shape;
      return (rng) => scale * Math.pow(rng.nextOpen(), exponent);
    }
    case 'constant': {
      const { value } = d;
      return () => value;
    }
  }
}

/** A sampler for a distribution; a mixture picks its component by weight, then draws from it. */
export function samplerFor(d: LatencyDistribution): Sampler {
  if (d.dist !== 'mixture') return simpleSampler(d);
  const total = d.components.reduce((sum, c) => sum + c.weight, 0);
  const samplers = d.components.map((c) => simpleSampler(c));
  const cumulative = new Float64Array(d.components.length);
  let running = 0;
  d.components.forEach((c, i) => (cumulative[i] = running += c.weight / total));
  cumulative[cumulative.length - 1] = 1;
  return (rng) => {
    const u = rng.next();
    let i = 0;
    while (u >= cumulative[i]!) i++;
    return samplers[i]!(rng);
  };
}

/** The median of a distribution when it has a closed form (null for a mixture). */
export function medianOf(d: LatencyDistribution): number | null {
  switch (d.dist) {
    case 'lognormal':
      return d.median;
    case 'pareto':
      return d.scale * Math.pow(2, 1 / d.shape);
    case 'constant':
      return d.value;
    case 'mixture':
      return null;
  }
}

/**
 * The distribution with every latency multiplied by `factor` (what "x1.5 slower" means for the bench): scale and
 * median scale, shape and sigma stay.
 */
export function scaled(d: LatencyDistribution, factor: number): LatencyDistribution {
  switch (d.dist) {
    case 'lognormal':
      return { ...d, median: d.median * factor };
    case 'pareto':
      return { ...d, scale: d.scale * factor };
    case 'constant':
      return { ...d, value: d.value * factor };
    case 'mixture':
      return { ...d, components: d.components.map((c) => scaled(c, factor) as typeof c) };
  }
}
