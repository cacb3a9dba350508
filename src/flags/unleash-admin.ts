// Unleash Admin API client: writes rollout changes and rollbacks through to Unleash so every replica converges.
import { Pool, request } from 'undici';
import { z } from 'zod';
import type { FastifyError } from '@fastify/error';
import { errorCode, SWY_ERR_BAD_REQUEST, SWY_ERR_FLAG_WRITE } from '../errors.js';

/** Flag types accepted by Unleash 7.x (anything else is a 400 there). */
export const FLAG_TYPES = ['experiment', 'kill-switch', 'release', 'operational', 'permission'] as const;
export type FlagType = (typeof FLAG_TYPES)[number];

/** Unleash's "URL friendly" rule for flag, environment and context field names (RFC 3986 unreserved characters). */
const URL_FRIENDLY_NAME = /^[A-Za-z0-9._~-]+$/;
const MAX_NAME_LENGTH = 100;
const VARIANT_PAYLOAD_TYPES = ['json', 'string', 'csv', 'number'] as const;
/** Strategy variant weights are per mille: Unleash requires them to sum to 1000. */
const TOTAL_VARIANT_WEIGHT = 1000;
/** Unleash's error bodies are short JSON; cap what goes into messages so a proxy's HTML page cannot flood logs. */
const MAX_BODY_IN_MESSAGE = 600;
/** Codes undici (or the OS) reports when the peer closed a pooled keep-alive socket under us (docs/flags.md, Unleash behaviours, item 6). */
const SOCKET_RESET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

const variantPayloadSchema = z.object({ type: z.enum(VARIANT_PAYLOAD_TYPES), value: z.string() });
const strategyVariantSchema = z.object({
  name: z.string(),
  weight: z.number(),
  weightType: z.enum(['variable', 'fix']).default('variable'),
  stickiness: z.string().default('default'),
  payload: variantPayloadSchema.optional(),
});
const constraintSchema = z.object({
  contextName: z.string(),
  operator: z.string(),
  values: z.array(z.string()).optional(),
  value: z.string().optional(),
  inverted: z.boolean().optional(),
  caseInsensitive: z.boolean().optional(),
});
const strategySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    title: z.string().nullish().transform((title) => title ?? null),
    disabled: z.boolean().nullish().transform((disabled) => disabled === true),
    sortOrder: z.number().nullish().transform((order) => order ?? 0),
    // Unleash stores parameters as strings; a number sent for `rollout` comes back as "50" (docs/flags.md, Unleash behaviours, item 3).
    parameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
    constraints: z.array(constraintSchema).default([]),
    variants: z.array(strategyVariantSchema).default([]),
  })
  .transform((strategy) => ({ ...strategy, rollout: parseRollout(strategy.parameters.rollout) }));
const environmentSchema = z.object({
  name: z.string(),
  enabled: z.boolean(),
  strategies: z.array(strategySchema).default([]),
});
const flagSchema = z
  .object({
    name: z.string(),
    project: z.string(),
    type: z.string(),
    description: z.string().nullish().transform((description) => description ?? null),
    archived: z.boolean().default(false),
    stale: z.boolean().default(false),
    environments: z.array(environmentSchema),
  })
  .transform((flag) => ({
    ...flag,
    environments: Object.fromEntries(flag.environments.map((env) => [env.name, env])) as Readonly<Record<string, FlagEnvironment>>,
  }));
const strategyIdSchema = z.object({ id: z.string() });

/** A strategy variant as Unleash stores it (weights per mille; variants come back sorted by name). */
export type StrategyVariant = z.infer<typeof strategyVariantSchema>;
/** A JSON/string/csv/number payload; `value` is always a string (JSON payloads must parse). */
export type VariantPayload = z.infer<typeof variantPayloadSchema>;
/** A strategy constraint (kept for completeness; Switchyard's own strategies carry none). */
export type StrategyConstraint = z.infer<typeof constraintSchema>;
/** One activation strategy in one environment; `rollout` is parameters.rollout parsed (null when absent). */
export type FlagStrategy = z.infer<typeof strategySchema>;
/** One environment of a flag: the kill switch (`enabled`) and its strategies in evaluation order. */
export type FlagEnvironment = z.infer<typeof environmentSchema>;
/** The admin view of a flag, with environments keyed by name. */
export type UnleashFlag = z.infer<typeof flagSchema>;

/** A variant to write. `weightType` defaults so that the given weights are exact (see `toWireVariants`). */
export interface StrategyVariantInput {
  name: string;
  /** Per mille (0..1000). */
  weight: number;
  weightType?: 'variable' | 'fix';
  /** Defaults to the strategy's stickiness so variant assignment follows the same key as the rollout. */
  stickiness?: string;
  payload?: VariantPayload;
}

/** Parameters of a flexibleRollout (gradual rollout) strategy. */
export interface FlexibleRolloutInput {
  /** Percentage of keys enabled: integer 0..100. */
  rollout: number;
  /** Context field the bucketing hashes, e.g. 'requestKey'; the client must send it (docs/flags.md, Unleash behaviours, item 4). */
  stickiness: string;
  /** Hash salt; keep it stable across rollout changes so enabled keys stay enabled. */
  groupId: string;
  variants?: StrategyVariantInput[];
  title?: string;
}

/** Same as FlexibleRolloutInput but variants are mandatory: a PUT without them wipes them (docs/flags.md, Unleash behaviours, item 2). */
export interface ReplaceStrategyInput extends FlexibleRolloutInput {
  variants: StrategyVariantInput[];
}

/** Options of {@link UnleashAdminClient}. */
export interface UnleashAdminClientOptions {
  /** Server root (where the UI is), e.g. http://127.0.0.1:4242 or https://unleash.example/base-path. */
  baseUrl: string;
  /** An admin token (`*:*.<secret>`) or a personal access token. Sent as `Authorization: <token>`. */
  adminToken: string;
  /** Unleash project; OSS only has 'default'. */
  project?: string;
  /**
   * Per-request limit on waiting for response headers and between body chunks (ms). Default 5000. undici checks
   * these with its ~1 s resolution timer, so a limit fires up to about 1 s late (200 ms measured as 1008 ms).
   */
  timeoutMs?: number;
  /** TCP connect limit (ms). Default 2000. */
  connectTimeoutMs?: number;
  /** Upper bound on how long an idle socket is kept (ms). Must stay under Unleash's 15 s keepAliveTimeout. Default 10000. */
  keepAliveMaxTimeoutMs?: number;
  /** Max sockets to Unleash. Default 4: admin writes are rare. */
  connections?: number;
  /** Sent as User-Agent so Unleash's access logs show who wrote. */
  userAgent?: string;
}

/** Result of {@link UnleashAdminClient.ensureContextField}. */
export type ContextFieldResult = 'created' | 'exists';

/** SWY_ERR_FLAG_WRITE enriched with what Unleash answered. `unleashStatus` is null when no HTTP answer arrived. */
export type UnleashAdminError = FastifyError & {
  code: 'SWY_ERR_FLAG_WRITE';
  /** 401 = unknown/missing token, 403 = token lacks permission (e.g. a backend token), 404/409/400 as Unleash says. */
  unleashStatus: number | null;
  /** Response body (truncated), '' for transport failures. */
  unleashBody: string;
  /** Client method that failed, e.g. 'setRollout'. */
  operation: string;
};

/** SWY_ERR_BAD_REQUEST naming the argument that is wrong. */
export type UnleashAdminInputError = FastifyError & { code: 'SWY_ERR_BAD_REQUEST'; field: string };

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface CallSpec {
  operation: string;
  method: HttpMethod;
  path: string;
  body?: unknown;
  /** Safe to send twice: only these are retried (once) after a reset on a reused keep-alive socket. */
  idempotent: boolean;
  /** Non-2xx statuses the caller handles itself (e.g. 409 = already exists). */
  acceptStatuses?: readonly number[];
}

interface CallResult {
  status: number;
  text: string;
}

/**
 * Client for the Unleash Admin API (verified against unleash-server 7.5.1).
 * Owns one undici Pool to the Unleash origin; call {@link close} when done.
 */
export class UnleashAdminClient {
  readonly #pool: Pool;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #projectPath: string;
  readonly #headers: Readonly<Record<string, string>>;
  #closing: Promise<void> | undefined;

  constructor(options: UnleashAdminClientOptions) {
    const base = parseBaseUrl(options.baseUrl);
    requireNonEmpty('constructor', 'adminToken', options.adminToken);
    const project = options.project ?? 'default';
    requireName('constructor', 'project', project);
    const timeoutMs = positiveInteger('constructor', 'timeoutMs', options.timeoutMs ?? 5_000);
    const connectTimeoutMs = positiveInteger('constructor', 'connectTimeoutMs', options.connectTimeoutMs ?? 2_000);
    const keepAliveMaxTimeoutMs = positiveInteger('constructor', 'keepAliveMaxTimeoutMs', options.keepAliveMaxTimeoutMs ?? 10_000);
    if (keepAliveMaxTimeoutMs >= 15_000) {
      throw inputError('constructor', 'keepAliveMaxTimeoutMs', `must be below Unleash's 15000 ms keep-alive timeout, got ${keepAliveMaxTimeoutMs}`);
    }
    this.#origin = base.origin;
    this.#basePath = base.pathname.replace(/\/+$/, '');
    this.#projectPath = `/api/admin/projects/${encodeURIComponent(project)}`;
    this.#headers = Object.freeze({
      authorization: options.adminToken,
      accept: 'application/json',
      'user-agent': options.userAgent ?? 'switchyard-unleash-admin',
    });
    this.#pool = new Pool(this.#origin, {
      connections: positiveInteger('constructor', 'connections', options.connections ?? 4),
      // Unleash advertises `Keep-Alive: timeout=15`; undici would keep sockets ~14 s. Capping lower leaves margin for
      // event-loop stalls, and the single retry below covers the stall that outlives even that (docs/flags.md, Unleash behaviours, item 6).
      keepAliveTimeout: Math.min(4_000, keepAliveMaxTimeoutMs),
      keepAliveMaxTimeout: keepAliveMaxTimeoutMs,
      connectTimeout: connectTimeoutMs,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  /** Creates a context field usable as stickiness (e.g. 'requestKey'); an existing one is left as is. */
  async ensureContextField(name: string, options: { description?: string; stickiness?: boolean } = {}): Promise<ContextFieldResult> {
    requireName('ensureContextField', 'name', name);
    // 409 means it exists, so a repeated POST is harmless and the call may be retried.
    const { status } = await this.#call({
      operation: 'ensureContextField',
      method: 'POST',
      path: '/api/admin/context',
      body: { name, description: options.description ?? '', stickiness: options.stickiness ?? true, legalValues: [] },
      idempotent: true,
      acceptStatuses: [409],
    });
    return status === 409 ? 'exists' : 'created';
  }

  /** Creates a flag in the project; a 409 (name exists, also when archived) is an error. */
  async createFlag(name: string, options: { type: FlagType; description?: string; impressionData?: boolean }): Promise<void> {
    requireName('createFlag', 'name', name);
    if (!FLAG_TYPES.includes(options.type)) {
      throw inputError('createFlag', 'type', `must be one of ${FLAG_TYPES.join(', ')}, got ${String(options.type)}`);
    }
    await this.#call({
      operation: 'createFlag',
      method: 'POST',
      path: `${this.#projectPath}/features`,
      body: { name, type: options.type, description: options.description ?? '', impressionData: options.impressionData ?? false },
      idempotent: false,
    });
  }

  /** Reads a flag with its environments and strategies; undefined when the project has no such (live) flag. */
  async getFlag(name: string): Promise<UnleashFlag | undefined> {
    requireName('getFlag', 'name', name);
    const result = await this.#call({
      operation: 'getFlag',
      method: 'GET',
      path: this.#flagPath(name),
      idempotent: true,
      acceptStatuses: [404],
    });
    if (result.status === 404) return undefined;
    return this.#parse('getFlag', 'GET', this.#flagPath(name), result, flagSchema);
  }

  /** Adds a flexibleRollout strategy (optionally with variants) to one environment; returns the strategy id. */
  async addFlexibleRollout(name: string, environment: string, input: FlexibleRolloutInput): Promise<string> {
    requireName('addFlexibleRollout', 'name', name);
    requireName('addFlexibleRollout', 'environment', environment);
    const path = `${this.#environmentPath(name, environment)}/strategies`;
    // Not idempotent: a replayed POST would add a second strategy, so no retry.
    const result = await this.#call({
      operation: 'addFlexibleRollout',
      method: 'POST',
      path,
      body: flexibleRolloutBody('addFlexibleRollout', input),
      idempotent: false,
    });
    return this.#parse('addFlexibleRollout', 'POST', path, result, strategyIdSchema).id;
  }

  /**
   * Changes only the rollout percentage of a strategy through a JSON patch, so variants and other parameters stay
   * untouched (a PUT would wipe variants it does not repeat). This is the rollback write path.
   */
  async setRollout(name: string, environment: string, strategyId: string, percent: number): Promise<FlagStrategy> {
    requireName('setRollout', 'name', name);
    requireName('setRollout', 'environment', environment);
    requireNonEmpty('setRollout', 'strategyId', strategyId);
    const rollout = rolloutPercent('setRollout', 'percent', percent);
    const path = this.#strategyPath(name, environment, strategyId);
    const result = await this.#call({
      operation: 'setRollout',
      method: 'PATCH',
      path,
      body: [{ op: 'replace', path: '/parameters/rollout', value: String(rollout) }],
      idempotent: true,
    });
    return this.#parse('setRollout', 'PATCH', path, result, strategySchema);
  }

  /** Replaces a whole flexibleRollout strategy (PUT); use when variants must change. `variants: []` removes them. */
  async replaceStrategy(name: string, environment: string, strategyId: string, input: ReplaceStrategyInput): Promise<FlagStrategy> {
    requireName('replaceStrategy', 'name', name);
    requireName('replaceStrategy', 'environment', environment);
    requireNonEmpty('replaceStrategy', 'strategyId', strategyId);
    if (!Array.isArray(input.variants)) {
      throw inputError('replaceStrategy', 'variants', 'must be given (an empty array removes them): a PUT without variants wipes them');
    }
    const path = this.#strategyPath(name, environment, strategyId);
    const result = await this.#call({
      operation: 'replaceStrategy',
      method: 'PUT',
      path,
      body: flexibleRolloutBody('replaceStrategy', input),
      idempotent: true,
    });
    return this.#parse('replaceStrategy', 'PUT', path, result, strategySchema);
  }

  /** Turns the flag on in one environment (its strategies then decide). */
  async enable(name: string, environment: string): Promise<void> {
    await this.#toggle('enable', name, environment, 'on');
  }

  /** Turns the flag off in one environment: the kill switch, every key evaluates to disabled. */
  async disable(name: string, environment: string): Promise<void> {
    await this.#toggle('disable', name, environment, 'off');
  }

  /** Archives the flag, then hard-deletes it so the name can be reused. A flag that is already gone is not an error. */
  async archiveAndDelete(name: string): Promise<void> {
    requireName('archiveAndDelete', 'name', name);
    // Archiving an archived flag answers 202 again, and 404 means there is no live flag: both are safe to repeat.
    await this.#call({ operation: 'archiveAndDelete', method: 'DELETE', path: this.#flagPath(name), idempotent: true, acceptStatuses: [404] });
    await this.#call({
      operation: 'archiveAndDelete',
      method: 'DELETE',
      path: `/api/admin/archive/${encodeURIComponent(name)}`,
      idempotent: true,
      acceptStatuses: [404],
    });
  }

  /** Closes the connection pool after in-flight requests finish. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#pool.close();
    return this.#closing;
  }

  async #toggle(operation: string, name: string, environment: string, state: 'on' | 'off'): Promise<void> {
    requireName(operation, 'name', name);
    requireName(operation, 'environment', environment);
    // Setting a state is idempotent even though the verb is POST.
    await this.#call({ operation, method: 'POST', path: `${this.#environmentPath(name, environment)}/${state}`, idempotent: true });
  }

  #flagPath(name: string): string {
    return `${this.#projectPath}/features/${encodeURIComponent(name)}`;
  }

  #environmentPath(name: string, environment: string): string {
    return `${this.#flagPath(name)}/environments/${encodeURIComponent(environment)}`;
  }

  #strategyPath(name: string, environment: string, strategyId: string): string {
    return `${this.#environmentPath(name, environment)}/strategies/${encodeURIComponent(strategyId)}`;
  }

  async #call(spec: CallSpec): Promise<CallResult> {
    for (let attempt = 1; ; attempt++) {
      let result: CallResult;
      try {
        result = await this.#send(spec);
      } catch (err) {
        const code = errorCode(err);
        if (spec.idempotent && attempt === 1 && code !== undefined && SOCKET_RESET_CODES.has(code)) continue;
        throw flagWriteError(spec.operation, spec.method, spec.path, null, '', `${code ?? 'transport error'} (${errorMessage(err)})`, err);
      }
      if ((result.status >= 200 && result.status < 300) || spec.acceptStatuses?.includes(result.status)) return result;
      throw flagWriteError(spec.operation, spec.method, spec.path, result.status, result.text, `Unleash answered ${result.status}: ${truncate(result.text)}`);
    }
  }

  async #send(spec: CallSpec): Promise<CallResult> {
    const response = await request(`${this.#origin}${this.#basePath}${spec.path}`, {
      dispatcher: this.#pool,
      method: spec.method,
      headers: spec.body === undefined ? this.#headers : { ...this.#headers, 'content-type': 'application/json' },
      body: spec.body === undefined ? null : JSON.stringify(spec.body),
    });
    // Always drain the body: an unread body keeps the socket busy and out of the pool.
    const text = await response.body.text();
    return { status: response.statusCode, text };
  }

  #parse<T>(operation: string, method: HttpMethod, path: string, result: CallResult, schema: z.ZodType<T>): T {
    let json: unknown;
    try {
      json = JSON.parse(result.text);
    } catch (err) {
      throw flagWriteError(operation, method, path, result.status, result.text, `Unleash answered ${result.status} with a body that is not JSON: ${truncate(result.text)}`, err);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw flagWriteError(operation, method, path, result.status, result.text,
        `unexpected response shape from Unleash (${z.prettifyError(parsed.error).replaceAll('\n', '; ')}): ${truncate(result.text)}`, parsed.error);
    }
    return parsed.data;
  }
}

function flexibleRolloutBody(operation: string, input: FlexibleRolloutInput): unknown {
  const rollout = rolloutPercent(operation, 'rollout', input.rollout);
  requireNonEmpty(operation, 'stickiness', input.stickiness);
  requireNonEmpty(operation, 'groupId', input.groupId);
  if (input.title !== undefined && typeof input.title !== 'string') throw inputError(operation, 'title', 'must be a string');
  return {
    name: 'flexibleRollout',
    title: input.title ?? '',
    disabled: false,
    constraints: [],
    parameters: { rollout: String(rollout), stickiness: input.stickiness, groupId: input.groupId },
    variants: input.variants === undefined ? [] : toWireVariants(operation, input.variants, input.stickiness),
  };
}

/**
 * Validates variants and fills in weightType. Unleash re-spreads every 'variable' weight evenly (700/300 both
 * variable became 500/500; docs/flags.md, Unleash behaviours, item 1), so when no variant says otherwise the first one
 * is 'variable' and the rest 'fix': with weights summing to 1000 every variant then gets exactly its given weight.
 */
function toWireVariants(operation: string, variants: readonly StrategyVariantInput[], strategyStickiness: string): StrategyVariant[] {
  if (variants.length === 0) return [];
  const explicitTypes = variants.some((variant) => variant.weightType !== undefined);
  const seen = new Set<string>();
  let fixTotal = 0;
  let total = 0;
  const wire = variants.map((variant, index): StrategyVariant => {
    const field = `variants[${index}]`;
    requireNonEmpty(operation, `${field}.name`, variant.name);
    if (seen.has(variant.name)) throw inputError(operation, `${field}.name`, `duplicates variant name ${variant.name}`);
    seen.add(variant.name);
    if (!Number.isInteger(variant.weight) || variant.weight < 0 || variant.weight > TOTAL_VARIANT_WEIGHT) {
      throw inputError(operation, `${field}.weight`, `must be an integer per-mille weight 0..${TOTAL_VARIANT_WEIGHT}, got ${String(variant.weight)}`);
    }
    const weightType = variant.weightType ?? (explicitTypes || index === 0 ? 'variable' : 'fix');
    if (weightType !== 'variable' && weightType !== 'fix') {
      throw inputError(operation, `${field}.weightType`, `must be 'variable' or 'fix', got ${String(weightType)}`);
    }
    if (weightType === 'fix') fixTotal += variant.weight;
    total += variant.weight;
    const out: StrategyVariant = { name: variant.name, weight: variant.weight, weightType, stickiness: variant.stickiness ?? strategyStickiness };
    if (variant.payload !== undefined) out.payload = validPayload(operation, `${field}.payload`, variant.payload);
    return out;
  });
  if (!wire.some((variant) => variant.weightType === 'variable')) {
    throw inputError(operation, 'variants', "need at least one variant with weightType 'variable' (Unleash rejects the set otherwise)");
  }
  if (fixTotal > TOTAL_VARIANT_WEIGHT) {
    throw inputError(operation, 'variants', `'fix' weights sum to ${fixTotal}, more than ${TOTAL_VARIANT_WEIGHT}`);
  }
  if (!explicitTypes && total !== TOTAL_VARIANT_WEIGHT) {
    throw inputError(operation, 'variants', `weights must sum to ${TOTAL_VARIANT_WEIGHT} to be exact, got ${total}`);
  }
  return wire;
}

function validPayload(operation: string, field: string, payload: VariantPayload): VariantPayload {
  if (!VARIANT_PAYLOAD_TYPES.includes(payload.type)) {
    throw inputError(operation, `${field}.type`, `must be one of ${VARIANT_PAYLOAD_TYPES.join(', ')}, got ${String(payload.type)}`);
  }
  if (typeof payload.value !== 'string') throw inputError(operation, `${field}.value`, 'must be a string (JSON payloads are sent serialized)');
  if (payload.type === 'json') {
    try {
      JSON.parse(payload.value);
    } catch {
      throw inputError(operation, `${field}.value`, 'is not valid JSON although type is json');
    }
  }
  return { type: payload.type, value: payload.value };
}

function parseRollout(raw: string | undefined): number | null {
  if (raw === undefined || raw.trim() === '') return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

function parseBaseUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw inputError('constructor', 'baseUrl', `must be an absolute http(s) URL, got ${JSON.stringify(baseUrl)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw inputError('constructor', 'baseUrl', `must use http or https, got ${url.protocol}`);
  }
  if (url.search !== '' || url.hash !== '') throw inputError('constructor', 'baseUrl', 'must not carry a query or fragment');
  return url;
}

function rolloutPercent(operation: string, field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 100) {
    throw inputError(operation, field, `must be an integer percentage 0..100, got ${String(value)}`);
  }
  return value;
}

function positiveInteger(operation: string, field: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw inputError(operation, field, `must be a positive integer, got ${String(value)}`);
  return value;
}

function requireNonEmpty(operation: string, field: string, value: string): void {
  if (typeof value !== 'string' || value.trim() === '') throw inputError(operation, field, 'must be a non-empty string');
}

function requireName(operation: string, field: string, value: string): void {
  requireNonEmpty(operation, field, value);
  if (value.length > MAX_NAME_LENGTH || !URL_FRIENDLY_NAME.test(value)) {
    throw inputError(operation, field, `must be 1..${MAX_NAME_LENGTH} URL-friendly characters [A-Za-z0-9._~-], got ${JSON.stringify(value)}`);
  }
}

function inputError(operation: string, field: string, problem: string): UnleashAdminInputError {
  const err = new SWY_ERR_BAD_REQUEST(`unleash-admin ${operation}: ${field} ${problem}`);
  return Object.assign(err, { code: 'SWY_ERR_BAD_REQUEST' as const, field });
}

function flagWriteError(
  operation: string, method: HttpMethod, path: string, status: number | null, body: string, detail: string, cause?: unknown,
): UnleashAdminError {
  const message = `${operation} ${method} ${path}: ${detail}`;
  // @fastify/error takes the cause from a trailing { cause } argument; only pass one when there is a cause.
  const err = cause === undefined ? new SWY_ERR_FLAG_WRITE(message) : new SWY_ERR_FLAG_WRITE(message, { cause });
  return Object.assign(err, { code: 'SWY_ERR_FLAG_WRITE' as const, unleashStatus: status, unleashBody: truncate(body), operation });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function truncate(text: string): string {
  return text.length > MAX_BODY_IN_MESSAGE ? `${text.slice(0, MAX_BODY_IN_MESSAGE)}…` : text;
}
