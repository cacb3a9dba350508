// Admin API for release engineers: change a route's split, pause and resume it, read the audit log.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { challengerModes, type ChallengerMode } from '../config/policy-schema.js';
import type { AuditEvent, AuditLog } from '../control/audit.js';
import type { LiveSplits } from '../control/live-splits.js';
import type { StateStore } from '../control/state-store.js';
import type { ChallengerShare, CompiledRoute, RouteDecision } from '../decision/snapshot.js';
import { SWY_ERR_BAD_REQUEST, SWY_ERR_FLAG_WRITE_DISABLED, SWY_ERR_ROUTE_UNKNOWN } from '../errors.js';
import type { FlagSource } from '../flags/source.js';
import type { UnleashAdminClient } from '../flags/unleash-admin.js';
import { writeSplitToUnleash, type FlagWriteResult } from '../flags/write-through.js';
import { adminNameOf, type AdminAuth } from './auth.js';
import { routeView } from './route-view.js';

/** What the splits API reads and changes. */
export interface SplitsApiDeps {
  splits: LiveSplits;
  flags: FlagSource;
  state: StateStore;
  audit: AuditLog;
  auth: AdminAuth;
  /** Admin API client for write-through; null when UNLEASH_ADMIN_TOKEN is not set. */
  unleashAdmin: UnleashAdminClient | null;
  /** The Unleash environment the router reads (UNLEASH_ENVIRONMENT); write-through changes it. */
  unleashEnvironment: string;
  logger?: Logger;
}

const splitBody = z.strictObject({
  challenger: z.string().min(1, { message: 'must name a challenger of the route' }),
  percent: z.number({ message: 'must be a number' }).int({ message: 'must be a whole number from 0 to 100' }).min(0, { message: 'must be at least 0' }).max(100, { message: 'must be at most 100' }),
  mode: z.enum(challengerModes, { message: `must be one of ${challengerModes.join(', ')}` }).optional(),
});

const eventsQuery = z.strictObject({
  route: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** Turns zod issues into one 400 whose message names each field, e.g. "percent: must be at most 100". */
function badRequest(error: z.ZodError, where: string, input: unknown, allowed: string): Error {
  const given = input !== null && typeof input === 'object' ? (input as Record<string, unknown>) : {};
  const lines = error.issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.join('.') : where;
    if (issue.code === 'unrecognized_keys') return `${issue.keys.join(', ')}: unknown field${issue.keys.length > 1 ? 's' : ''} (allowed: ${allowed})`;
    if (issue.code === 'invalid_type' && issue.path.length === 0) return `${where}: must be a JSON object such as {"challenger":"iris-v2","percent":10}`;
    if (issue.code === 'invalid_type' && issue.path.length === 1 && given[String(issue.path[0])] === undefined) return `${field}: is required`;
    return `${field}: ${issue.message}`;
  });
  return new SWY_ERR_BAD_REQUEST(lines.join('; '));
}

/** The route's live state as recorded in audit events. */
function stateOf(decision: RouteDecision | undefined): unknown {
  if (decision === undefined) return null;
  const { state } = decision;
  return {
    source: state.source,
    groupId: state.groupId,
    challengers: state.challengers.map((c) => ({ name: c.name, mode: c.mode, percent: c.percent })),
    servedPercent: decision.servedTotal,
    paused: state.paused,
    rolledBack: state.rolledBack,
  };
}

/**
 * Registers the routes API's mutating half. Every mutation needs the bearer token, runs one at a time per route,
 * and is recorded in the audit log with who, before and after.
 */
export function splitsApi(deps: SplitsApiDeps): (app: FastifyInstance) => Promise<void> {
  const locks = new Map<string, Promise<unknown>>();
  /** Serializes changes per route so before/after in the audit log describe one change each. */
  const exclusive = <T>(route: string, work: () => Promise<T>): Promise<T> => {
    const previous = locks.get(route) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.catch(() => undefined);
    locks.set(route, tail);
    void tail.then(() => {
      if (locks.get(route) === tail) locks.delete(route);
    });
    return run;
  };
  const routeNamed = (name: string): CompiledRoute => {
    const route = deps.splits.routes.find((r) => r.name === name);
    if (route === undefined) throw new SWY_ERR_ROUTE_UNKNOWN(name);
    return route;
  };
  const decisionOf = (name: string): RouteDecision | undefined => deps.splits.snapshot.byName.get(name);
  const viewOf = (name: string) => {
    const decision = decisionOf(name);
    return decision === undefined ? null : routeView(decision, deps.flags.status(name));
  };
  const record = (who: string, action: string, route: string, before: unknown, detail?: unknown): AuditEvent => {
    const event = deps.audit.append({ who, action, route, before, after: stateOf(decisionOf(route)), ...(detail === undefined ? {} : { detail }) });
    deps.logger?.info({ who, action, route, eventId: event.id }, 'admin change');
    return event;
  };

  return async (app) => {
    app.get('/v1/events', async (request) => {
      const query = eventsQuery.safeParse(request.query);
      if (!query.success) throw badRequest(query.error, 'query', request.query, 'route, limit');
      return { events: deps.audit.list({ route: query.data.route, limit: query.data.limit }) };
    });

    app.put<{ Params: { route: string } }>('/v1/routes/:route/split', { preHandler: deps.auth.preHandler }, async (request) => {
      const who = adminNameOf(request);
      const route = routeNamed(request.params.route);
      const body = splitBody.safeParse(request.body);
      if (!body.success) throw badRequest(body.error, 'body', request.body, 'challenger, percent, mode');
      const { challenger, percent } = body.data;
      const policyChallenger = route.policy.challengers.find((c) => c.name === challenger);
      if (policyChallenger === undefined) {
        const known = route.policy.challengers.map((c) => c.name).join(', ') || 'none';
        const what = challenger === route.arms[0]!.name ? 'is the champion (set the challengers to 0 to serve only the champion)' : `is not a challenger of route ${route.name}`;
        throw new SWY_ERR_BAD_REQUEST(`challenger: "${challenger}" ${what} (challengers: ${known})`);
      }
      return exclusive(route.name, async () => {
        const before = decisionOf(route.name);
        const live = before?.state.challengers.find((c) => c.name === challenger);
        const mode: ChallengerMode = body.data.mode ?? live?.mode ?? policyChallenger.mode;
        let writeThrough: FlagWriteResult | null = null;
        if (deps.flags.drives(route.name)) {
          if (deps.unleashAdmin === null) throw new SWY_ERR_FLAG_WRITE_DISABLED(route.name, route.flagName);
          writeThrough = await writeSplitToUnleash(deps.unleashAdmin, { route, challenger, mode, percent, environment: deps.unleashEnvironment });
          // The flag is the truth for this route now; an old local override would hide it.
          if (deps.state.override(route.name) !== undefined) deps.state.setOverride(route.name, null);
          deps.flags.expect(route.name, writeThrough.overlay);
        } else {
          const current: readonly ChallengerShare[] = before?.state.challengers ?? route.policy.challengers.map((c) => ({ name: c.name, mode: c.mode, percent: c.percent }));
          const next = route.policy.challengers.map((c) => {
            if (c.name === challenger) return { name: c.name, mode, percent };
            return current.find((s) => s.name === c.name) ?? { name: c.name, mode: c.mode, percent: 0 };
          });
          const served = next.filter((c) => c.mode !== 'shadow').reduce((sum, c) => sum + c.percent, 0);
          if (served > 100) {
            throw new SWY_ERR_BAD_REQUEST(`percent: canary and ab challengers would add up to ${served} %; at most 100 (lower another challenger first)`);
          }
          deps.state.setOverride(route.name, { challengers: next, groupId: before?.groupId ?? route.flagName ?? route.name });
        }
        const detail = writeThrough === null
          ? { kind: 'override', challenger, mode, percent }
          : { kind: 'unleash', challenger, mode, percent, flag: writeThrough.flag, environment: writeThrough.environment, strategyId: writeThrough.strategyId, operation: writeThrough.operation, createdFlag: writeThrough.createdFlag, enabledFlag: writeThrough.enabled };
        const event = record(who, 'split.set', route.name, stateOf(before), detail);
        return { route: viewOf(route.name), change: detail, eventId: event.id };
      });
    });

    app.post<{ Params: { route: string } }>('/v1/routes/:route/pause', { preHandler: deps.auth.preHandler }, async (request) => {
      const who = adminNameOf(request);
      const route = routeNamed(request.params.route);
      return exclusive(route.name, async () => {
        const before = decisionOf(route.name);
        if (deps.state.isPaused(route.name)) return { route: viewOf(route.name), changed: false, eventId: null };
        deps.state.setPaused(route.name, true);
        const event = record(who, 'pause', route.name, stateOf(before));
        return { route: viewOf(route.name), changed: true, eventId: event.id };
      });
    });

    app.post<{ Params: { route: string } }>('/v1/routes/:route/resume', { preHandler: deps.auth.preHandler }, async (request) => {
      const who = adminNameOf(request);
      const route = routeNamed(request.params.route);
      return exclusive(route.name, async () => {
        const before = decisionOf(route.name);
        const paused = deps.state.isPaused(route.name) || before?.state.paused === true;
        const rolledBack = deps.state.isRolledBack(route.name) || before?.state.rolledBack === true;
        if (!paused && !rolledBack) return { route: viewOf(route.name), changed: false, eventId: null };
        // Resuming is the person's decision that ends a rollback too: the route returns to its flag/override/policy split.
        if (paused) deps.state.setPaused(route.name, false);
        if (rolledBack) deps.state.setRolledBack(route.name, false);
        const event = record(who, 'resume', route.name, stateOf(before), { clearedPause: paused, clearedRollback: rolledBack });
        return { route: viewOf(route.name), changed: true, eventId: event.id };
      });
    });
  };
}
