// Request-path counters and histograms: a labelled series is a plain object the request adds to, read only at scrape time.
import type { Registry } from 'prom-client';

/**
 * Why not prom-client's own Counter and Histogram here: their bound children re-validate and hash the label set on
 * every inc/observe (prom-client 15: `hashObject` per call), which was ≈ 3 % of the canary path's CPU in the profile
 * (bench/README.md). These keep the same exposition (names, types, label order, `le` first, cumulative buckets) and
 * register in the same registry, so /metrics, the worker merge and the metric contract see no difference.
 */
interface HotMetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: readonly Registry[];
}

/** One sample as prom-client's registry reads it from `get()`. */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** A metric as prom-client's registry reads it from `get()` (also the JSON the worker merge aggregates). */
interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Sample[];
  aggregator: 'sum';
}

/** The map key of a label-value tuple: the values joined with a separator that no label value holds. */
function seriesKey(values: readonly string[]): string {
  return values.join('\u0000');
}

function labelsOf(names: readonly string[], values: readonly string[], metric: string): Record<string, string> {
  if (values.length !== names.length) throw new Error(`${metric} takes ${names.length} label values (${names.join(', ')}), got ${values.length}`);
  const labels: Record<string, string> = {};
  names.forEach((name, i) => {
    labels[name] = values[i]!;
  });
  return labels;
}

/** One labelled counter series. */
export class CounterSeries {
  value = 0;
  readonly labels: Record<string, string>;
  constructor(labels: Record<string, string>) {
    this.labels = labels;
  }
  inc(amount = 1): void {
    this.value += amount;
  }
}

/** A counter whose series are bound once (`labels(...)`) and incremented without any lookup. */
export class HotCounter<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly aggregator = 'sum' as const;
  readonly #series = new Map<string, CounterSeries>();

  constructor(options: HotMetricOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = Object.freeze([...options.labelNames]);
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  labels(...values: string[]): CounterSeries {
    const key = seriesKey(values);
    let series = this.#series.get(key);
    if (!series) {
      series = new CounterSeries(labelsOf(this.labelNames, values, this.name));
      this.#series.set(key, series);
    }
    return series;
  }

  get(): Promise<MetricSnapshot> {
    const values: Sample[] = [];
    for (const series of this.#series.values()) values.push({ value: series.value, labels: { ...series.labels } });
    return Promise.resolve({ name: this.name, help: this.help, type: 'counter', values, aggregator: this.aggregator });
  }

  /** Zeroes every series; bound series stay bound (the request path keeps its references). */
  reset(): void {
    for (const series of this.#series.values()) series.value = 0;
  }
}

/** One labelled histogram series: per-bucket (not yet cumulative) counts, sum and count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly labels: Record<string, string>;
  readonly #bounds: Float64Array;
  constructor(labels: Record<string, string>, bounds: Float64Array) {
    this.labels = labels;
    this.#bounds = bounds;
    // One slot per bound plus +Inf.
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** A histogram with fixed buckets whose series are bound once and observed without any lookup. */
export class HotHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly aggregator = 'sum' as const;
  readonly #bounds: Float64Array;
  readonly #series = new Map<string, HistogramSeries>();

  constructor(options: HotMetricOptions<L> & { buckets: readonly number[] }) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = Object.freeze([...options.labelNames]);
    const sorted = [...options.buckets].sort((a, b) => a - b);
    if (sorted.length === 0 || sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) throw new Error(`${this.name}: buckets must be distinct finite numbers`);
    this.#bounds = Float64Array.from(sorted);
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  labels(...values: string[]): HistogramSeries {
    const key = seriesKey(values);
    let series = this.#series.get(key);
    if (!series) {
      series = new HistogramSeries(labelsOf(this.labelNames, values, this.name), this.#bounds);
      this.#series.set(key, series);
    }
    return series;
  }

  get(): Promise<MetricSnapshot> {
    const values: Sample[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const series of this.#series.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += series.counts[i]!;
        // `le` first, as prom-client writes it.
        const le = i < this.#bounds.length ? this.#bounds[i]! : '+Inf';
        values.push({ value: cumulative, metricName: bucketName, labels: { le, ...series.labels } });
      }
      values.push({ value: series.sum, metricName: `${this.name}_sum`, labels: { ...series.labels } });
      values.push({ value: series.count, metricName: `${this.name}_count`, labels: { ...series.labels } });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', values, aggregator: this.aggregator });
  }

  /** Zeroes every series; bound series stay bound (the request path keeps its references). */
  reset(): void {
    for (const series of this.#series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}
