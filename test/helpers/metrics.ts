// Test helper: series values from a running Switchyard's Prometheus text on its admin /metrics.
import { request } from 'undici';

/** The /metrics text of the admin server at `adminUrl` (open without a token). */
export async function metricsText(adminUrl: string): Promise<string> {
  return (await request(`${adminUrl}/metrics`)).body.text();
}

/** The value of one series, named with its labels as Prometheus prints them, in /metrics text (0 when absent). */
export function seriesValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** The value of one series on the admin server at `adminUrl` (0 when absent). */
export async function metric(adminUrl: string, series: string): Promise<number> {
  return seriesValue(await metricsText(adminUrl), series);
}
