// HTTP client for the admin API used by the release-engineer commands (status, set, pause, resume, events), with CLI error mapping.
import { request } from 'undici';
import type { ApproveResult, PromoteResult, RouteAnalysis } from '../control/controller.js';
import type { EventPage } from '../control/audit.js';
import type { EventsQuery } from '../admin/events-api.js';
import type { RouteView } from '../admin/route-view.js';
import { helpOption } from './options.js';

/** Options shared by every admin command. */
export const adminOptions = {
  'admin-url': { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  ...helpOption,
} as const;

export const adminOptionsUsage = `Options:
  --admin-url URL   admin API (env SWITCHYARD_ADMIN_URL, default http://127.0.0.1:9090)
  --token TOKEN     bearer token for changes (env SWITCHYARD_ADMIN_TOKEN)
  --json            print JSON instead of tables
Exit codes: 0 ok, 1 the call failed (unreachable, refused, unknown route), 2 usage error.`;

const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9090';
const TIMEOUT_MS = 10_000;

/** A failed admin call: `code` is the server's error code, or SWY_CLI_UNREACHABLE when no answer came. */
export interface AdminCallError extends Error {
  code: string;
  status: number | null;
}

/** What a change answers about the control state on disk (servers from before it answer without these fields). */
export interface PersistenceFields {
  persisted?: boolean;
  /** SWY_ERR_STATE_WRITE when the change is live but could not be saved (it would be lost on restart). */
  warnings?: { code: string; message: string }[];
}

/** Prints a change's warnings to stderr (stdout stays the result, JSON or table): the change itself was made. */
export function printWarnings(result: PersistenceFields): void {
  for (const warning of result.warnings ?? []) console.error(`warning: ${warning.code}: ${warning.message}`);
}

/** Result of PUT /v1/routes/:route/split. */
export interface SplitResult extends PersistenceFields {
  route: RouteView;
  change: { kind: 'override' | 'unleash'; challenger: string; mode: string; percent: number; flag?: string; environment?: string; operation?: string };
  eventId: number;
}

/** Result of pause and resume. */
export interface ToggleResult extends PersistenceFields {
  route: RouteView;
  changed: boolean;
  eventId: number | null;
}

/** Result of POST /v1/routes/:route/rollback. */
export interface RollbackResult extends PersistenceFields {
  route: string;
  changed: boolean;
  analysis: RouteAnalysis;
}

/** Result of POST /v1/routes/:route/approve. */
export interface ApproveCallResult extends ApproveResult {
  analysis: RouteAnalysis;
}

/** Result of POST /v1/routes/:route/promote. */
export interface PromoteCallResult extends PromoteResult, PersistenceFields {
  analysis: RouteAnalysis;
}

/** Talks to one Switchyard admin listener. */
export class AdminApiClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;

  constructor(options: { baseUrl: string; token?: string | undefined }) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
  }

  async routes(): Promise<RouteView[]> {
    return ((await this.#call('GET', '/v1/routes')) as { routes: RouteView[] }).routes;
  }

  async route(name: string): Promise<RouteView> {
    return (await this.#call('GET', `/v1/routes/${encodeURIComponent(name)}`)) as RouteView;
  }

  async setSplit(route: string, body: { challenger: string; percent: number; mode?: string }): Promise<SplitResult> {
    return (await this.#call('PUT', `/v1/routes/${encodeURIComponent(route)}/split`, body)) as SplitResult;
  }

  async pause(route: string): Promise<ToggleResult> {
    return (await this.#call('POST', `/v1/routes/${encodeURIComponent(route)}/pause`)) as ToggleResult;
  }

  async resume(route: string): Promise<ToggleResult> {
    return (await this.#call('POST', `/v1/routes/${encodeURIComponent(route)}/resume`)) as ToggleResult;
  }

  async rollback(route: string): Promise<RollbackResult> {
    return (await this.#call('POST', `/v1/routes/${encodeURIComponent(route)}/rollback`)) as RollbackResult;
  }

  async approve(route: string, body: { step?: number | 'promote'; note?: string }): Promise<ApproveCallResult> {
    return (await this.#call('POST', `/v1/routes/${encodeURIComponent(route)}/approve`, body)) as ApproveCallResult;
  }

  async promote(route: string, body: { step?: number; note?: string }): Promise<PromoteCallResult> {
    return (await this.#call('POST', `/v1/routes/${encodeURIComponent(route)}/promote`, body)) as PromoteCallResult;
  }

  async analysis(route: string): Promise<RouteAnalysis> {
    return (await this.#call('GET', `/v1/routes/${encodeURIComponent(route)}/analysis`)) as RouteAnalysis;
  }

  /** One page of the audit trail (GET /v1/events; admin/events-api.ts says what each parameter does). */
  async events(filter: EventsQuery = {}): Promise<EventPage> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) if (value !== undefined) query.set(key, String(value));
    const suffix = query.size > 0 ? `?${query}` : '';
    return (await this.#call('GET', `/v1/events${suffix}`)) as EventPage;
  }

  async #call(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await request(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: TIMEOUT_MS,
        bodyTimeout: TIMEOUT_MS,
      });
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'error';
      throw callError('SWY_CLI_UNREACHABLE', null, `cannot reach the admin API at ${this.baseUrl} (${code}); is Switchyard running there? Set --admin-url or SWITCHYARD_ADMIN_URL`);
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      throw callError('SWY_CLI_BAD_RESPONSE', res.statusCode, `${this.baseUrl}${path} answered ${res.statusCode} with a body that is not JSON; is --admin-url the admin port?`);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return json;
    const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
    throw callError(error?.code ?? `HTTP_${res.statusCode}`, res.statusCode, error?.message ?? `admin API answered ${res.statusCode}`);
  }
}

function callError(code: string, status: number | null, message: string): AdminCallError {
  return Object.assign(new Error(message), { code, status });
}

/** Builds the client from flags and env; flags win. */
export function adminClientFrom(values: { 'admin-url'?: string | undefined; token?: string | undefined }, env: NodeJS.ProcessEnv): AdminApiClient {
  return new AdminApiClient({
    baseUrl: values['admin-url'] ?? env.SWITCHYARD_ADMIN_URL ?? DEFAULT_ADMIN_URL,
    token: values.token ?? env.SWITCHYARD_ADMIN_TOKEN,
  });
}

/** Prints a failed call as one clear line (with a hint for the usual causes) and returns exit code 1. */
export function reportCallError(command: string, err: unknown): number {
  const e = err as Partial<AdminCallError>;
  let hint = '';
  switch (e.code) {
    case 'SWY_ERR_UNAUTHORIZED':
      hint = ' (pass --token or set SWITCHYARD_ADMIN_TOKEN to a token the server accepts; `npm start` prints the demo\'s)';
      break;
    case 'SWY_ERR_ROUTE_UNKNOWN':
      hint = " (run 'switchyard status' to list routes)";
      break;
    case 'SWY_ERR_ADMIN_DISABLED':
      break;
    default:
      break;
  }
  console.error(`switchyard ${command}: ${e.message ?? String(err)}${hint}`);
  return 1;
}
