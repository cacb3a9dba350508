// Reads Switchyard's admin /metrics: the Prometheus text once, and the samples of one metric with their labels.
import http from 'node:http';

/** One sample of a metric: its labels and value. */
export interface MetricSample {
  labels: Record<string, string>;
  value: number;
}

/** The /metrics text of an admin URL, fetched once on a fresh connection. */
export function scrapeMetrics(adminUrl: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    http
      .get(`${adminUrl}/metrics`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** Every sample of the metric `name` in a Prometheus text exposition (label values never contain `"` in ours). */
export function metricSamples(text: string, name: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sums the samples of `name` per value of the `by` labels joined with "/" (e.g. `ndjson/memory_budget`). */
export function sumBy(text: string, name: string, by: readonly string[]): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const sample of metricSamples(text, name)) {
    const key = by.map((label) => sample.labels[label] ?? '?').join('/');
    sums[key] = (sums[key] ?? 0) + sample.value;
  }
  return sums;
}
