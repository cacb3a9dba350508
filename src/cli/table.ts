// Plain-text tables and route summaries for the release-engineer commands.
import type { RouteView } from '../admin/route-view.js';

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** "iris-v2 canary 20%" per challenger with a share (served share in brackets when it differs, e.g. rolled back). */
export function challengerSummary(route: RouteView): string {
  const parts = route.challengers
    .filter((c) => c.percent > 0 || c.servedPercent > 0)
    .map((c) => `${c.name} ${c.mode} ${c.percent}%${c.mode !== 'shadow' && c.servedPercent !== c.percent ? ` (serving ${c.servedPercent}%)` : ''}`);
  return parts.length > 0 ? parts.join(', ') : '-';
}

/** The controller's phase when it says more than "-" (awaiting_approval, collecting, promoted ...), then paused / rolled back; or "-". */
export function stateSummary(route: RouteView): string {
  // Servers from before the phase field answer without it; inactive, paused and rolled_back are said otherwise.
  const phase = route.phase === undefined || route.phase === null || ['inactive', 'paused', 'rolled_back'].includes(route.phase) ? '' : route.phase;
  const flags = [phase, route.paused ? 'paused' : '', route.rolledBack ? 'rolled back' : ''].filter((s) => s !== '');
  return flags.length > 0 ? flags.join(', ') : '-';
}

/** One row per route for `switchyard status`. */
export function routesTable(routes: readonly RouteView[]): string {
  return renderTable(
    ['ROUTE', 'SOURCE', 'FLAG', 'FLAGS', 'CHAMPION', 'CHALLENGERS', 'STATE'],
    routes.map((r) => [r.name, r.source, r.flag ?? '-', r.flags ?? '-', `${r.champion.name} ${r.champion.servedPercent}%`, challengerSummary(r), stateSummary(r)]),
  );
}

/** The detailed view of one route for `switchyard status <route>`. */
export function routeDetail(route: RouteView): string {
  const facts = renderTable(
    ['FIELD', 'VALUE'],
    [
      ['route', route.name],
      ['path prefix', route.pathPrefix],
      ['methods', route.methods.join(', ')],
      ['source', route.source],
      ['flag', route.flag === null ? '-' : `${route.flag} (${route.flags ?? 'unknown'})`],
      ['group id', route.groupId],
      ['state', stateSummary(route)],
    ],
  );
  const arms = renderTable(
    ['ARM', 'ROLE', 'MODE', 'PERCENT', 'SERVING', 'URL'],
    [
      [route.champion.name, 'champion', '-', '-', `${route.champion.servedPercent}%`, route.champion.url],
      ...route.challengers.map((c) => [c.name, 'challenger', c.mode, `${c.percent}%`, c.mode === 'shadow' ? 'mirror' : `${c.servedPercent}%`, c.url]),
    ],
  );
  return `${facts}\n\n${arms}`;
}
