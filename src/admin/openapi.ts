// The admin API's OpenAPI 3.1 document (GET /v1/openapi.json), built from the routes fastify registered and the zod schemas that validate their input.
import type { FastifyInstance, RouteOptions } from 'fastify';
import { z } from 'zod';
import { challengerModes } from '../config/policy-schema.js';
import { approveBody, promoteBody } from './control-api.js';
import { feedbackBody } from './feedback-api.js';
import { splitBody } from './splits-api.js';

/** A route as fastify registered it. */
export interface RegisteredRoute {
  method: string;
  /** fastify's path, e.g. /v1/routes/:route */
  url: string;
  /** A preHandler guards it: in this API that is the bearer-token check (admin/auth.ts). */
  auth: boolean;
}

/** What the document says about one operation beyond what fastify knows. */
interface Operation {
  summary: string;
  tag: 'health' | 'routes' | 'control' | 'audit' | 'feedback' | 'status page' | 'meta';
  description?: string;
  body?: z.ZodType;
  /** The body may be left out (approve and promote take only optional fields). */
  bodyOptional?: boolean;
  query?: Record<string, { description: string; schema: Record<string, unknown> }>;
  /** The answer is not JSON (metrics text, the page, its scripts). */
  produces?: string;
}

/** The body of every error answer (admin/server.ts's error handler). */
const errorBody = z.object({ error: z.object({ code: z.string().describe('stable code, e.g. SWY_ERR_ROUTE_UNKNOWN'), message: z.string() }) });

const int = (description: string, extra: Record<string, unknown> = {}) => ({ description, schema: { type: 'integer', ...extra } });
const str = (description: string) => ({ description, schema: { type: 'string' } });

/** Operations by "METHOD /path" (fastify's spelling). A registered route missing here still appears, with a generic summary. */
const operations: Record<string, Operation> = {
  'GET /healthz': { summary: 'The process is alive', tag: 'health' },
  'GET /readyz': { summary: 'A policy is loaded and the instance is not draining (503 otherwise)', tag: 'health' },
  'GET /metrics': { summary: 'Prometheus metrics (text exposition format)', tag: 'health', produces: 'text/plain' },
  'GET /v1/routes': { summary: 'Every route with its live split, flag freshness, pause and rollback state', tag: 'routes' },
  'GET /v1/routes/:route': { summary: "One route's live split", tag: 'routes' },
  'GET /v1/routes/:route/analysis': { summary: 'The live analysis: guardrails with always-valid intervals, rollout step, shadow gates, A/B winners, prediction divergence and drift, replicas', tag: 'control' },
  'GET /v1/routes/:route/history': { summary: "Each guardrail's estimate and always-valid interval over the current experiment (at most 240 samples), and breach moments", tag: 'control' },
  'GET /v1/overview': { summary: 'Every route with its split, phase, rollout step and guardrail states in one answer (the status page reads it every second)', tag: 'status page' },
  'PUT /v1/routes/:route/split': { summary: "Change a challenger's share and mode (written through to Unleash for flag-driven routes)", tag: 'control', body: splitBody },
  'POST /v1/routes/:route/pause': { summary: 'Hold the progressive rollout at its current step', tag: 'control' },
  'POST /v1/routes/:route/resume': { summary: 'Lift a pause or a rollback (a new experiment starts)', tag: 'control' },
  'POST /v1/routes/:route/rollback': { summary: 'Send all traffic to the champion now; held until resume', tag: 'control' },
  'POST /v1/routes/:route/promote': { summary: 'Serve the challenger to everyone now', tag: 'control', body: promoteBody, bodyOptional: true, description: 'Optional body: the rollout step the person saw (a route that moved on is refused) and a note for the audit.' },
  'POST /v1/routes/:route/approve': { summary: 'Let a rollout waiting for approval (awaiting_approval) advance', tag: 'control', body: approveBody, bodyOptional: true, description: 'Optional body: the gate the person saw and a note for the audit.' },
  'GET /v1/events': {
    summary: 'The audit trail, newest first: who changed which route, before and after',
    tag: 'audit',
    query: {
      route: str('only events of this route'),
      type: str('only events with this action (split.set, pause, resume, rollback, promote, step, approval.needed, approve, breach, flag.stale)'),
      after: int('only events with a larger id (paging)', { minimum: 0 }),
      since: str('only events at or after this ISO 8601 time'),
      limit: int('at most this many events', { minimum: 1, maximum: 1000, default: 100 }),
    },
  },
  'POST /v1/feedback': { summary: 'Ground-truth labels joined to recent predictions by request id', tag: 'feedback', body: feedbackBody },
  'GET /v1/whoami': { summary: 'The name the bearer token is audited under (the status page checks a token with it)', tag: 'status page' },
  'GET /v1/openapi.json': { summary: 'This document', tag: 'meta' },
  'GET /ui': { summary: 'The live status page (HTML)', tag: 'status page', produces: 'text/html' },
  'GET /ui/': { summary: 'Redirects to /ui', tag: 'status page', produces: 'text/html' },
  'GET /ui/assets/:file': { summary: "The status page's scripts", tag: 'status page', produces: 'text/javascript' },
};

/** Records every route registered on `app` from now on (call before any route is added). */
export function collectRoutes(app: FastifyInstance): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (options: RouteOptions) => {
    const methods = Array.isArray(options.method) ? options.method : [options.method];
    const auth = Array.isArray(options.preHandler) ? options.preHandler.length > 0 : options.preHandler !== undefined;
    // HEAD twins of GET routes are fastify's own; the document lists the GET.
    for (const method of methods) if (method !== 'HEAD') routes.push({ method, url: options.url, auth });
  });
  return routes;
}

/** fastify's /v1/routes/:route → OpenAPI's /v1/routes/{route}. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

/** The OpenAPI 3.1 document of the routes registered so far. */
export function openApiDocument(routes: readonly RegisteredRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorRef = { $ref: '#/components/schemas/Error' };
  const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: errorRef } } });
  for (const route of [...routes].sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method))) {
    const op = operations[`${route.method} ${route.url}`];
    const params = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({ name: m[1]!, in: 'path', required: true, schema: { type: 'string' }, description: m[1] === 'route' ? 'route name, [a-z0-9-]' : m[1] }));
    const query = Object.entries(op?.query ?? {}).map(([name, q]) => ({ name, in: 'query', required: false, description: q.description, schema: q.schema }));
    const responses: Record<string, unknown> = {
      200: op?.produces ? { description: 'OK', content: { [op.produces]: {} } } : { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } },
    };
    if (op?.body || query.length > 0) responses[400] = errorResponse('bad input: the message names each field and what is allowed (SWY_ERR_BAD_REQUEST)');
    if (route.auth) {
      responses[401] = errorResponse('missing or wrong bearer token (SWY_ERR_UNAUTHORIZED)');
      responses[403] = errorResponse('the server has no admin token configured (SWY_ERR_ADMIN_DISABLED)');
    }
    if (params.some((p) => p.name === 'route')) responses[404] = errorResponse('no route of that name (SWY_ERR_ROUTE_UNKNOWN)');
    const operation: Record<string, unknown> = {
      operationId: `${route.method.toLowerCase()}${openApiPath(route.url).replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      summary: op?.summary ?? `${route.method} ${route.url}`,
      tags: [op?.tag ?? 'other'],
      ...(op?.description ? { description: op.description } : {}),
      ...(params.length + query.length > 0 ? { parameters: [...params, ...query] } : {}),
      ...(op?.body ? { requestBody: { required: op.bodyOptional !== true, content: { 'application/json': { schema: jsonSchema(op.body) } } } } : {}),
      responses,
      ...(route.auth ? { security: [{ bearer: [] }] } : {}),
    };
    (paths[openApiPath(route.url)] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard admin API',
      version,
      description: 'The admin listener of Switchyard: live splits, guardrail analysis, control (split, pause, resume, rollback, promote, approve), the audit trail, feedback and the status page. Changes need `Authorization: Bearer <SWITCHYARD_ADMIN_TOKEN>`.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      schemas: { Error: jsonSchema(errorBody), Mode: { type: 'string', enum: [...challengerModes] } },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'SWITCHYARD_ADMIN_TOKEN, or a secret of SWITCHYARD_ADMIN_TOKENS' } },
    },
  };
}
