// `switchyard events`: the audit trail (fleet-wide with Redis) as a table or JSON, paged with --after, filtered, or followed live.
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { AuditEvent } from '../control/audit.js';
import { adminClientFrom, adminOptions, adminOptionsUsage, reportCallError } from './admin-client.js';
import { renderTable } from './table.js';

const usage = `Usage: switchyard events [--after ID] [--route R] [--type A[,B]] [--since 15m|ISO] [--limit N] [--follow] [--admin-url URL] [--json]
The audit trail: who changed which route, when (splits, pauses, rollbacks, promotions, steps, approvals, breaches,
stale flags). Without --after: the newest events, newest first. With --after ID: the events after that id, oldest first
(pass the last id shown to read on). --follow keeps printing new events as they come (polling once a second).
${adminOptionsUsage}`;

const idPattern = /^\d{1,15}$/;

/** One short summary of what an event did, from its detail. */
function summary(event: AuditEvent): string {
  const detail = (event.detail ?? {}) as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof detail.reason === 'string') parts.push(`reason ${detail.reason}`);
  if (typeof detail.challenger === 'string') parts.push(`${detail.challenger}${typeof detail.percent === 'number' ? ` → ${detail.percent}%` : ''}`);
  if (typeof detail.guardrail === 'string') parts.push(`guardrail ${detail.guardrail}`);
  if (typeof detail.step === 'number') parts.push(`step ${detail.step}`);
  if (event.instance !== undefined) parts.push(`on ${event.instance}`);
  return parts.join(', ');
}

function table(events: readonly AuditEvent[]): string {
  return renderTable(['id', 'at', 'action', 'route', 'who', 'detail'], events.map((e) => [String(e.id), e.at, e.action, e.route, e.who, summary(e)]));
}

export async function eventsCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...adminOptions, after: { type: 'string' }, route: { type: 'string' }, type: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, follow: { type: 'boolean' } },
      allowPositionals: false,
      strict: true,
    });
  } catch (err) {
    console.error(`switchyard events: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (v.after !== undefined && !idPattern.test(v.after)) {
    console.error(`switchyard events: --after: must be an event id (a whole number >= 0), got ${JSON.stringify(v.after)}`);
    return 2;
  }
  if (v.limit !== undefined && !(/^\d{1,4}$/.test(v.limit) && Number(v.limit) >= 1 && Number(v.limit) <= 1000)) {
    console.error(`switchyard events: --limit: must be a whole number from 1 to 1000, got ${JSON.stringify(v.limit)}`);
    return 2;
  }
  const client = adminClientFrom(v, env);
  const filters = { route: v.route, type: v.type, since: v.since };
  try {
    const page = await client.events({ ...filters, after: v.after === undefined ? undefined : Number(v.after), limit: v.limit === undefined ? undefined : Number(v.limit) });
    if (v.json && !v.follow) {
      console.log(JSON.stringify(page, null, 2));
      return 0;
    }
    const print = (events: readonly AuditEvent[]) => {
      if (events.length === 0) return;
      if (v.json) for (const event of events) console.log(JSON.stringify(event));
      else console.log(table(events));
    };
    if (page.events.length === 0 && !v.follow) console.log('no events');
    // Without --after the page is newest first; followed output reads oldest first.
    print(v.after === undefined && v.follow ? [...page.events].reverse() : page.events);
    if (!v.follow) return 0;
    let after = v.after !== undefined ? Math.max(Number(v.after), ...page.events.map((e) => e.id)) : page.lastId;
    for (;;) {
      await sleep(1_000);
      const next = await client.events({ ...filters, after, limit: 1000 });
      print(next.events);
      after = Math.max(after, ...next.events.map((e) => e.id));
    }
  } catch (err) {
    return reportCallError('events', err);
  }
}
