// The admin listener (fastify, its own port): health, readiness, metrics and the routes API.
import Fastify, { type FastifyInstance } from 'fastify';
import { AggregatorRegistry } from 'prom-client';
import type { Metrics } from '../metrics/registry.js';
import type { LiveSplits } from '../control/live-splits.js';
import type { Phase } from '../control/phases.js';
import { SWY_ERR_NOT_FOUND, SWY_ERR_ROUTE_UNKNOWN } from '../errors.js';
import { routeView } from './route-view.js';
import { collectRoutes, openApiDocument } from './openapi.js';
import { version } from '../version.js';

/** What the admin API reads and controls. */
export interface AdminDeps {
  metrics: Metrics;
  /** Series kept outside this registry (the recorder worker's), merged into /metrics at scrape time. */
  extraMetrics?: () => Promise<unknown[]>;
  splits: LiveSplits;
  /** Readiness: policies compiled and not draining. */
  readiness(): { ready: boolean; reasons: string[]; policyVersion: string };
  /** Flag status of a route (null when it follows no flag); shown as `flags` in the routes API. */
  flagStatus?: (route: string) => string | null;
  /** The controller's phase of a route, shown as `phase` in the routes API. */
  phaseOf?: (route: string) => Phase;
  /** Extra route plugins registered by later layers (flags, control). */
  plugins?: ((app: FastifyInstance) => void | Promise<void>)[];
}

/** Builds the admin fastify instance (not listening). */
export async function buildAdmin(deps: AdminDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, return503OnClosing: false });
  const registered = collectRoutes(app);

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, _request, reply) => {
    const status = err.statusCode ?? 500;
    const code = err.validation ? 'SWY_ERR_BAD_REQUEST' : (err.code ?? 'SWY_ERR_INTERNAL');
    void reply.status(status).send({ error: { code, message: err.message } });
  });
  app.setNotFoundHandler((request, reply) => {
    const err = new SWY_ERR_NOT_FOUND(request.method, request.url);
    void reply.status(404).send({ error: { code: err.code, message: err.message } });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const readiness = deps.readiness();
    return reply.status(readiness.ready ? 200 : 503).send({ status: readiness.ready ? 'ready' : 'not-ready', reasons: readiness.reasons, policyVersion: readiness.policyVersion });
  });

  app.get('/metrics', async (_request, reply) => {
    const registry = deps.metrics.registry;
    const extra = deps.extraMetrics ? await deps.extraMetrics().catch(() => []) : [];
    // Same-named series of both registries are summed; each counter is incremented on one side only.
    const body = extra.length === 0 ? await registry.metrics() : await AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), extra]).metrics();
    return reply.header('content-type', deps.metrics.registry.contentType).send(body);
  });

  app.get('/v1/routes', async () => ({
    policyVersion: deps.splits.snapshot.version,
    routes: deps.splits.snapshot.decisions.map((d) => routeView(d, deps.flagStatus?.(d.route.name) ?? null, deps.phaseOf?.(d.route.name) ?? null)).sort((a, b) => a.name.localeCompare(b.name)),
  }));

  app.get<{ Params: { route: string } }>('/v1/routes/:route', async (request) => {
    const decision = deps.splits.snapshot.byName.get(request.params.route);
    if (!decision) throw new SWY_ERR_ROUTE_UNKNOWN(request.params.route);
    return routeView(decision, deps.flagStatus?.(decision.route.name) ?? null, deps.phaseOf?.(decision.route.name) ?? null);
  });

  for (const plugin of deps.plugins ?? []) await plugin(app);
  app.get('/v1/openapi.json', async () => openApiDocument(registered, version));
  return app;
}
