// Reads Switchyard's admin /metrics and counts the requests each variant served (proves a split really happened).
import http from 'node:http';

/** Requests answered per serving variant, summed over routes, roles and status classes. */
export async function servedByVariant(adminUrl: string): Promise<Record<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    http
      .get(`${adminUrl}/metrics`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^switchyard_requests_total\{([^}]*)\} (\S+)$/gm)) {
    const variant = /variant="([^"]*)"/.exec(match[1] ?? '')?.[1] ?? '?';
    counts[variant] = (counts[variant] ?? 0) + Number(match[2]);
  }
  return counts;
}

/** Turns counts into shares of the total (0 when nothing was served). */
export function shares(counts: Record<string, number>): Record<string, number> {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(counts).map(([variant, n]) => [variant, total > 0 ? n / total : 0]));
}
