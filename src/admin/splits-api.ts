// Admin API for release engineers: change a route's split, pause and resume it (the audit log is read in events-api.ts).
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { challengerModes, type ChallengerMode } from '../config/policy-schema.js';
import type { AuditEvent, AuditLog } from '../control/audit.js';
import type { LiveSplits } from '../control/live-splits.js';
import type { StateStore } from '../control/state-store.js';
import type { CompiledRoute, RouteDecision } from '../decision/snapshot.js';
import { SWY_ERR_BAD_REQUEST, SWY_ERR_ROUTE_UNKNOWN } from '../errors.js';
import type { FlagSource } from '../flags/source.js';
import { auditStateOf, type SplitChanger } from '../control/split-changer.js';
import type { ResumeResult } from '../control/controller.js';
import type { Phase } from '../control/phases.js';
import { adminNameOf, type AdminAuth } from './auth.js';
import { routeView } from './route-view.js';

/** What the splits API reads and changes. */
export interface SplitsApiDeps {
  splits: LiveSplits;
  flags: FlagSource;
  state: StateStore;
  audit: AuditLog;
  auth: AdminAuth;
  /** Applies split changes (write-through or local override) the same way the controller does. */
  changer: SplitChanger;
  /** Lifts a pause or rollback and starts the new experiment (Controller.resume). */
  resume: (route: CompiledRoute, who: string) => Promise<ResumeResult>;
  /** The controller's phase of a route (shown as `phase` in the route views it answers with). */
  phaseOf?: (route: string) => Phase;
  logger?: Logger;
}

/** Body of PUT /v1/routes/:route/split (also the OpenAPI document's schema, src/admin/openapi.ts). */
export const splitBody = z.strictObject({
  challenger: z.string().min(1, { message: 'must name a challenger of the route' }),
  percent: z.number({ message: 'must be a number' }).int({ message: 'must be a whole number from 0 to 100' }).min(0, { message: 'must be at least 0' }).max(100, { message: 'must be at most 100' }),
  mode: z.enum(challengerModes, { message: `must be one of ${challengerModes.join(', ')}` }).optional(),
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

/**
 * Registers the routes API's mutating half. Every mutation needs the bearer token, runs one at a time per route,
 * and is recorded in the audit log with who, before and after. Each answer says whether the control state is on disk
 * (`persisted`, with a SWY_ERR_STATE_WRITE warning when not), waiting a bounded time for the save, outside the route lock.
 */
export function splitsApi(deps: SplitsApiDeps): (app: FastifyInstance) => Promise<void> {
  const exclusive = <T>(route: string, work: () => Promise<T>): Promise<T> => deps.changer.exclusive(route, work);
  const routeNamed = (name: string): CompiledRoute => {
    const route = deps.splits.routes.find((r) => r.name === name);
    if (route === undefined) throw new SWY_ERR_ROUTE_UNKNOWN(name);
    return route;
  };
  const decisionOf = (name: string): RouteDecision | undefined => deps.splits.snapshot.byName.get(name);
  const viewOf = (name: string) => {
    const decision = decisionOf(name);
    return decision === undefined ? null : routeView(decision, deps.flags.status(name), deps.phaseOf?.(name) ?? null);
  };
  const record = (who: string, action: string, route: string, before: unknown, detail?: unknown): AuditEvent => {
    const event = deps.audit.append({ who, action, route, before, after: auditStateOf(decisionOf(route)), ...(detail === undefined ? {} : { detail }) });
    deps.logger?.info({ who, action, route, eventId: event.id }, 'admin change');
    return event;
  };

  return async (app) => {
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
      const live = decisionOf(route.name)?.state.challengers.find((c) => c.name === challenger);
      const mode: ChallengerMode = body.data.mode ?? live?.mode ?? policyChallenger.mode;
      const { detail, event } = await deps.changer.change(route, challenger, percent, mode, who);
      const persistence = await deps.state.persisted();
      return { route: viewOf(route.name), change: detail, eventId: event.id, ...persistence };
    });

    app.post<{ Params: { route: string } }>('/v1/routes/:route/pause', { preHandler: deps.auth.preHandler }, async (request) => {
      const who = adminNameOf(request);
      const route = routeNamed(request.params.route);
      const result = await exclusive(route.name, async () => {
        const before = decisionOf(route.name);
        if (deps.state.isPaused(route.name)) return { route: viewOf(route.name), changed: false, eventId: null };
        deps.state.setPaused(route.name, true);
        const event = record(who, 'pause', route.name, auditStateOf(before));
        return { route: viewOf(route.name), changed: true, eventId: event.id };
      });
      return { ...result, ...(await deps.state.persisted()) };
    });

    app.post<{ Params: { route: string } }>('/v1/routes/:route/resume', { preHandler: deps.auth.preHandler }, async (request) => {
      const route = routeNamed(request.params.route);
      const { changed, eventId, restored } = await deps.resume(route, adminNameOf(request));
      const persistence = await deps.state.persisted();
      return { route: viewOf(route.name), changed, eventId, ...(restored.length > 0 ? { restored } : {}), ...persistence };
    });
  };
}
