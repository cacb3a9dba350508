// GET /v1/events: the audit trail, paged (`after`, `before`, `limit`) and filtered (route, type, since); fleet-wide with Redis (control/event-trail.ts).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { EventTrail } from '../control/event-trail.js';
import { SWY_ERR_BAD_REQUEST } from '../errors.js';

const durationUnits = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `since`: an ISO 8601 time, or a duration back from now such as 30s, 15m, 2h, 7d. */
function parseSince(value: string, now: number): number | null {
  const relative = /^(\d{1,9})([smhd])$/.exec(value);
  if (relative) return now - Number(relative[1]) * durationUnits[relative[2] as keyof typeof durationUnits];
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

const id = (what: string) => z.coerce.number({ error: `${what}: must be an event id (a whole number >= 0)` }).int({ error: `${what}: must be an event id (a whole number >= 0)` }).min(0, { error: `${what}: must be an event id (a whole number >= 0)` });

/** The query string of GET /v1/events (exported for the OpenAPI document). */
export const eventsQuery = z.strictObject({
  after: id('after').optional(),
  before: id('before').optional(),
  limit: z.coerce.number({ error: 'limit: must be a whole number from 1 to 1000' }).int({ error: 'limit: must be a whole number from 1 to 1000' }).min(1, { error: 'limit: must be a whole number from 1 to 1000' }).max(1000, { error: 'limit: must be a whole number from 1 to 1000' }).default(100),
  route: z.string().min(1, { error: 'route: must name a route' }).optional(),
  /** One action or several, comma separated (rollback,promote). */
  type: z.string().regex(/^[a-z][a-z0-9._-]*(,[a-z][a-z0-9._-]*)*$/, { error: 'type: must be an action such as rollback, or several separated by commas (rollback,promote)' }).optional(),
  since: z.string().optional(),
});

/** The query string GET /v1/events accepts (also what `switchyard events` sends). */
export type EventsQuery = z.input<typeof eventsQuery>;

/**
 * Registers GET /v1/events. With `after=<id>`: the events after that id, oldest first (follow the trail by passing the
 * answer's `lastId` next time). Without it: the newest events, newest first, or with `before=<id>` those older than
 * it. Filters (route, type, since) apply to both. Read-only, no token.
 */
export function eventsApi(trail: EventTrail) {
  return (app: FastifyInstance) => {
    app.get('/v1/events', async (request) => {
      const parsed = eventsQuery.safeParse(request.query ?? {});
      if (!parsed.success) {
        const lines = parsed.error.issues.map((issue) => {
          if (issue.code === 'unrecognized_keys') return `${issue.keys.join(', ')}: unknown query parameter${issue.keys.length > 1 ? 's' : ''} (allowed: after, before, limit, route, type, since)`;
          return issue.message.includes(':') ? issue.message : `${issue.path.join('.')}: ${issue.message}`;
        });
        throw new SWY_ERR_BAD_REQUEST(lines.join('; '));
      }
      const q = parsed.data;
      if (q.after !== undefined && q.before !== undefined) throw new SWY_ERR_BAD_REQUEST('after, before: give one of them (after follows newer events, before pages back through older ones)');
      let sinceMs: number | undefined;
      if (q.since !== undefined) {
        const since = parseSince(q.since, Date.now());
        if (since === null) throw new SWY_ERR_BAD_REQUEST(`since: must be an ISO 8601 time (2026-01-31T12:00:00Z) or a duration back from now (30s, 15m, 2h, 7d); got ${JSON.stringify(q.since.slice(0, 40))}`);
        sinceMs = since;
      }
      return trail.page({ after: q.after, before: q.before, limit: q.limit, route: q.route, actions: q.type?.split(','), sinceMs });
    });
  };
}
