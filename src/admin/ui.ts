// The live status page on the admin listener: GET /ui (the page), its scripts, and the APIs it reads (/v1/overview, /v1/routes/:route/history, /v1/whoami).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { LiveSplits } from '../control/live-splits.js';
import type { CoordinationStatus } from '../coordination/coordination.js';
import { SWY_ERR_NOT_FOUND, SWY_ERR_ROUTE_UNKNOWN } from '../errors.js';
import { version } from '../version.js';
import { adminNameOf, type AdminAuth } from './auth.js';
import type { GuardrailHistory, LatestTick } from './guardrail-history.js';
import { routeView, type RouteView } from './route-view.js';
import { statusPageHtml } from './ui-page.js';

/** What the status page's server side reads. */
export interface UiDeps {
  splits: LiveSplits;
  history: GuardrailHistory;
  auth: AdminAuth;
  flagStatus: (route: string) => string | null;
  /** This replica and its Redis coordination (docs/replicas.md). */
  instance: () => { instanceId: string; coordination: CoordinationStatus };
  /** Where the built page scripts are (default: dist/src/ui next to this module's build). */
  assetsDir?: string;
}

/** One route in GET /v1/overview: its live split plus the controller's latest verdicts. */
export interface OverviewRoute extends Omit<RouteView, 'phase'> {
  /** rolled_back while the live split says so, else the latest tick's phase (or breach), else inactive. */
  phase: string;
  step: LatestTick['step'];
  guardrails: LatestTick['guardrails'];
  /** When the controller last judged the route (ms since the epoch), null before its first tick. */
  judgedAt: number | null;
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/ui, found from both src/admin (tests run the TypeScript) and dist/src/admin (built). */
export const defaultAssetsDir = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../ui' : '../../dist/src/ui');
const ASSET_NAME = /^[a-z][a-z0-9-]*\.js$/;

/** Content-Security-Policy of the page: its own scripts only, no inline script, no other origin. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

function etagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
}

function sendCached(reply: FastifyReply, ifNoneMatch: string | undefined, body: string, type: string, etag: string): FastifyReply {
  // no-cache: revalidate each load (a rebuilt page is picked up at once), answered 304 while unchanged.
  void reply.header('cache-control', 'no-cache').header('etag', etag).header('x-content-type-options', 'nosniff');
  if (ifNoneMatch === etag) return reply.status(304).send();
  return reply.type(type).send(body);
}

/** Registers the status page and its read APIs. */
export function uiApi(deps: UiDeps): (app: FastifyInstance) => void {
  const assetsDir = deps.assetsDir ?? defaultAssetsDir;
  const assets = new Map<string, Promise<{ body: string; etag: string } | null>>();
  const asset = (name: string) => {
    let cached = assets.get(name);
    if (cached === undefined) {
      cached = readFile(path.join(assetsDir, name), 'utf8').then(
        (body) => ({ body, etag: etagOf(body) }),
        () => null,
      );
      // A missing file is not remembered: it may be built while the server runs (npm run build in another terminal).
      void cached.then((found) => found === null && assets.delete(name));
      assets.set(name, cached);
    }
    return cached;
  };
  const html = statusPageHtml(version);
  const htmlEtag = etagOf(html);

  return (app) => {
    app.get('/ui', async (request, reply) => {
      void reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
      return sendCached(reply, request.headers['if-none-match'], html, 'text/html; charset=utf-8', htmlEtag);
    });
    // Relative, so a proxy that serves the admin API under a prefix keeps it.
    app.get('/ui/', async (_request, reply) => reply.redirect('../ui', 308));

    app.get<{ Params: { file: string } }>('/ui/assets/:file', async (request, reply) => {
      const name = request.params.file;
      const found = ASSET_NAME.test(name) ? await asset(name) : null;
      if (found === null) {
        const err = new SWY_ERR_NOT_FOUND('GET', `${request.url} (the page's scripts are built by \`npm run build\` into ${assetsDir})`);
        return reply.status(404).send({ error: { code: err.code, message: err.message } });
      }
      return sendCached(reply, request.headers['if-none-match'], found.body, 'text/javascript; charset=utf-8', found.etag);
    });

    app.get('/v1/overview', async () => {
      const snapshot = deps.splits.snapshot;
      deps.history.retain(new Set(snapshot.byName.keys()));
      const routes: OverviewRoute[] = snapshot.decisions
        .map((d) => {
          const view = routeView(d, deps.flagStatus(d.route.name));
          const latest = deps.history.latest(d.route.name);
          const phase = d.state.rolledBack ? 'rolled_back' : (latest?.phase ?? 'inactive');
          return { ...view, phase, step: latest?.step ?? null, guardrails: latest?.guardrails ?? [], judgedAt: latest?.at ?? null };
        })
        .sort((a, b) => a.name.localeCompare(b.name));
      return { version, policyVersion: snapshot.version, now: Date.now(), ...deps.instance(), changesEnabled: deps.auth.enabled, routes };
    });

    app.get<{ Params: { route: string } }>('/v1/routes/:route/history', async (request) => {
      if (!deps.splits.snapshot.byName.has(request.params.route)) throw new SWY_ERR_ROUTE_UNKNOWN(request.params.route);
      return deps.history.view(request.params.route);
    });

    app.get('/v1/whoami', { preHandler: deps.auth.preHandler }, async (request) => ({ name: adminNameOf(request) }));
  };
}
