// Notification settings: sinks (Slack-compatible, CloudEvents, signed JSON), the events each wants and the retry policy; validated with zod, errors naming the field.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SWY_ERR_ENV_INVALID } from '../errors.js';

/** The audit actions that are notified (docs/notifications.md); a sink's `events` picks among them. */
export const notifyEvents = ['rollback', 'promote', 'step', 'approval.needed', 'breach', 'flag.stale', 'drift'] as const;
export type NotifyEvent = (typeof notifyEvents)[number];

export const sinkKinds = ['slack', 'cloudevents', 'json'] as const;

const httpUrl = z.string({ error: 'must be an http(s) URL' }).refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}, { error: 'must be an http(s) URL such as https://hooks.example.com/switchyard' });

const sinkSchema = z.strictObject({
  /** Unique; the `sink` label of switchyard_notifications_total. */
  name: z.string({ error: 'must be a name of letters, digits, "-" or "_"' }).regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'must be 1-64 letters, digits, "-" or "_"' }),
  kind: z.enum(sinkKinds, { error: `must be one of ${sinkKinds.join(', ')}` }),
  url: httpUrl,
  /** Which events this sink receives; default all. */
  events: z.array(z.enum(notifyEvents, { error: `must be one of ${notifyEvents.join(', ')}` })).min(1, { error: 'must name at least one event (omit it for all)' }).optional(),
  /** Only these routes; default all. */
  routes: z.array(z.string().min(1)).min(1, { error: 'must name at least one route (omit it for all)' }).optional(),
  /** HMAC-SHA256 key of `json` sinks, given directly or (better) as the name of an environment variable holding it. */
  secret: z.string().min(16, { error: 'must be at least 16 characters' }).optional(),
  secretEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name' }).optional(),
  /** Extra request headers (e.g. an Authorization header a receiver expects). */
  headers: z.record(z.string(), z.string()).optional(),
});

export const notifySchema = z.strictObject({
  sinks: z.array(sinkSchema).default([]),
  retry: z
    .strictObject({
      attempts: z.number().int().min(1, { error: 'must be at least 1' }).max(20, { error: 'must be at most 20' }).default(5),
      baseDelayMs: z.number().int().min(1).max(60_000, { error: 'must be at most 60000' }).default(500),
      maxDelayMs: z.number().int().min(1).max(600_000, { error: 'must be at most 600000' }).default(30_000),
      timeoutMs: z.number().int().min(100, { error: 'must be at least 100' }).max(120_000, { error: 'must be at most 120000' }).default(5_000),
    })
    .prefault({}),
  /** Deliveries waiting per sink; beyond it new ones are dropped and counted. */
  queue: z.strictObject({ maxPerSink: z.number().int().min(1).max(100_000).default(1_000) }).prefault({}),
});

export type NotifyInput = z.input<typeof notifySchema>;
export type NotifySink = z.infer<typeof sinkSchema> & { /** The resolved HMAC key (json sinks), from `secret` or `secretEnv`. */ key?: string };
export type NotifyConfig = Omit<z.infer<typeof notifySchema>, 'sinks'> & { sinks: NotifySink[] };

/**
 * Validates notification settings; throws SWY_ERR_ENV_INVALID listing every problem as `<where>: <field>: <what>`.
 * `where` names the source (the file, or the variable) so the message says which setting to fix.
 */
export function parseNotifyConfig(input: unknown, where: string, env: NodeJS.ProcessEnv = process.env): Readonly<NotifyConfig> {
  const result = notifySchema.safeParse(input ?? {});
  const problems: string[] = [];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const field = issue.path.length > 0 ? issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('') : '(top level)';
      problems.push(`${where}: ${field}: ${issue.code === 'unrecognized_keys' ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}` : issue.message}`);
    }
    throw new SWY_ERR_ENV_INVALID(problems.join('\n'));
  }
  const names = new Set<string>();
  const sinks = result.data.sinks.map((sink, i) => {
    if (names.has(sink.name)) problems.push(`${where}: sinks[${i}].name: "${sink.name}" is used twice; names must be unique`);
    names.add(sink.name);
    if (sink.secret !== undefined && sink.secretEnv !== undefined) problems.push(`${where}: sinks[${i}]: give secret or secretEnv, not both`);
    let key: string | undefined = sink.secret;
    if (sink.secretEnv !== undefined) {
      key = env[sink.secretEnv];
      if (key === undefined || key.length < 16) problems.push(`${where}: sinks[${i}].secretEnv: the variable ${sink.secretEnv} must be set to a secret of at least 16 characters`);
    }
    if (key !== undefined && sink.kind !== 'json') problems.push(`${where}: sinks[${i}]: only json sinks are signed; drop the secret from this ${sink.kind} sink`);
    if (sink.kind === 'json' && key === undefined) problems.push(`${where}: sinks[${i}]: a json sink is signed: set secretEnv (or secret) to its HMAC key`);
    return Object.freeze({ ...sink, ...(key !== undefined ? { key } : {}) });
  });
  if (result.data.retry.maxDelayMs < result.data.retry.baseDelayMs) problems.push(`${where}: retry.maxDelayMs: must be at least retry.baseDelayMs (${result.data.retry.baseDelayMs})`);
  if (problems.length > 0) throw new SWY_ERR_ENV_INVALID(problems.join('\n'));
  return Object.freeze({ ...result.data, sinks });
}

/**
 * The settings from the environment: SWITCHYARD_NOTIFY_FILE (YAML or JSON, see docs/notifications.md) plus, for
 * compatibility, SWITCHYARD_WEBHOOK_URLS (comma separated): each URL becomes a json sink `webhook-<n>` for every event,
 * signed with SWITCHYARD_WEBHOOK_SECRET when it is set and unsigned otherwise.
 */
export async function notifyConfigFromEnv(env: { SWITCHYARD_NOTIFY_FILE?: string | undefined; SWITCHYARD_WEBHOOK_URLS?: string | undefined; SWITCHYARD_WEBHOOK_SECRET?: string | undefined }, processEnv: NodeJS.ProcessEnv = process.env): Promise<Readonly<NotifyConfig>> {
  let input: Record<string, unknown> = {};
  let where = 'notifications';
  if (env.SWITCHYARD_NOTIFY_FILE !== undefined) {
    where = `SWITCHYARD_NOTIFY_FILE ${env.SWITCHYARD_NOTIFY_FILE}`;
    let text: string;
    try {
      text = await readFile(env.SWITCHYARD_NOTIFY_FILE, 'utf8');
    } catch (err) {
      throw new SWY_ERR_ENV_INVALID(`${where}: cannot be read (${(err as { code?: string }).code ?? (err as Error).message}); point it at a YAML or JSON file`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (err) {
      throw new SWY_ERR_ENV_INVALID(`${where}: is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
    }
    if (parsed !== null && parsed !== undefined && (typeof parsed !== 'object' || Array.isArray(parsed))) throw new SWY_ERR_ENV_INVALID(`${where}: must hold an object such as {sinks: [...]}`);
    input = (parsed ?? {}) as Record<string, unknown>;
  }
  const config = parseNotifyConfig(input, where, processEnv);
  const legacy = legacySinks(env.SWITCHYARD_WEBHOOK_URLS, env.SWITCHYARD_WEBHOOK_SECRET);
  const taken = new Set(config.sinks.map((s) => s.name));
  for (const sink of legacy) if (taken.has(sink.name)) throw new SWY_ERR_ENV_INVALID(`${where}: sink name ${sink.name} is reserved for SWITCHYARD_WEBHOOK_URLS; rename it`);
  return Object.freeze({ ...config, sinks: [...config.sinks, ...legacy] });
}

function legacySinks(urls: string | undefined, secret: string | undefined): NotifySink[] {
  if (urls === undefined || urls.trim() === '') return [];
  if (secret !== undefined && secret.length < 16) throw new SWY_ERR_ENV_INVALID('SWITCHYARD_WEBHOOK_SECRET: must be at least 16 characters');
  return urls.split(',').map((u) => u.trim()).filter((u) => u !== '').map((u, i) => {
    const parsed = httpUrl.safeParse(u);
    if (!parsed.success) throw new SWY_ERR_ENV_INVALID(`SWITCHYARD_WEBHOOK_URLS: entry ${i + 1} (${JSON.stringify(u.slice(0, 40))}) is not an http(s) URL`);
    return Object.freeze({ name: `webhook-${i + 1}`, kind: 'json' as const, url: new URL(u).toString(), ...(secret !== undefined ? { key: secret } : {}) });
  });
}
