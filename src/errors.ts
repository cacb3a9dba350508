// The single registry of Switchyard's error codes (SWY_ERR_*): stable code, HTTP status and message.
import createError from '@fastify/error';

/** The string `code` of any error (ours, Node's, undici's, ioredis'), else undefined: code decides, never message or class. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Requests */
export const SWY_ERR_NO_ROUTE = createError('SWY_ERR_NO_ROUTE', 'No route matches %s %s', 404);
export const SWY_ERR_METHOD_NOT_ALLOWED = createError('SWY_ERR_METHOD_NOT_ALLOWED', 'Route %s does not accept method %s', 405);
export const SWY_ERR_BODY_TOO_LARGE = createError('SWY_ERR_BODY_TOO_LARGE', 'Request body exceeds the limit of %s bytes for route %s', 413);
export const SWY_ERR_HEADERS_TOO_LARGE = createError('SWY_ERR_HEADERS_TOO_LARGE', 'Request headers exceed the limit of %s; send fewer or smaller header fields', 431);
export const SWY_ERR_HEADERS_TIMEOUT = createError('SWY_ERR_HEADERS_TIMEOUT', 'The request headers did not arrive within %s ms', 408);
export const SWY_ERR_CHUNK_EXTENSIONS_TOO_LARGE = createError('SWY_ERR_CHUNK_EXTENSIONS_TOO_LARGE', 'Chunk extensions exceed the limit of 16 KiB per request; send chunks without extensions', 413);
export const SWY_ERR_CLIENT_TIMEOUT = createError('SWY_ERR_CLIENT_TIMEOUT', 'No byte of the request body arrived for %s ms, so the request was dropped; send the body without pausing (the route\'s timeouts.bodyIdleMs sets this limit)', 408);

/** Upstreams */
export const SWY_ERR_UPSTREAM_CONNECT = createError('SWY_ERR_UPSTREAM_CONNECT', 'Could not connect to upstream %s', 502);
export const SWY_ERR_UPSTREAM_TIMEOUT = createError('SWY_ERR_UPSTREAM_TIMEOUT', 'Upstream %s did not answer within %s ms', 504);
export const SWY_ERR_UPSTREAM_RESET = createError('SWY_ERR_UPSTREAM_RESET', 'Upstream %s closed the connection before answering', 502);
export const SWY_ERR_UPSTREAM_UNAVAILABLE = createError('SWY_ERR_UPSTREAM_UNAVAILABLE', 'Upstream %s is unavailable', 503);
export const SWY_ERR_UPSTREAM_BUSY = createError('SWY_ERR_UPSTREAM_BUSY', 'Every connection of route %s to upstream %s stayed busy for %s ms, so the request was not sent; retry later', 503);
export const SWY_ERR_INTERNAL = createError('SWY_ERR_INTERNAL', 'Internal error: %s', 500);
export const SWY_ERR_DRAINING = createError('SWY_ERR_DRAINING', 'Switchyard is shutting down; retry on another replica', 503);

/** Configuration */
export const SWY_ERR_POLICY_INVALID = createError('SWY_ERR_POLICY_INVALID', 'Policy is invalid:\n%s', 500);
export const SWY_ERR_POLICY_READ = createError('SWY_ERR_POLICY_READ', 'Could not read policy %s: %s', 500);
export const SWY_ERR_ENV_INVALID = createError('SWY_ERR_ENV_INVALID', 'Environment is invalid:\n%s', 500);
export const SWY_ERR_SCENARIO_INVALID = createError('SWY_ERR_SCENARIO_INVALID', 'Simulation scenario is invalid:\n%s', 500);

/** Admin */
export const SWY_ERR_UNAUTHORIZED = createError('SWY_ERR_UNAUTHORIZED', 'Missing or wrong bearer token for a mutating admin call', 401);
export const SWY_ERR_NOT_FOUND = createError('SWY_ERR_NOT_FOUND', 'No admin endpoint %s %s', 404);
export const SWY_ERR_ROUTE_UNKNOWN = createError('SWY_ERR_ROUTE_UNKNOWN', 'No route named %s', 404);
export const SWY_ERR_BAD_REQUEST = createError('SWY_ERR_BAD_REQUEST', '%s', 400);
export const SWY_ERR_CONFLICT = createError('SWY_ERR_CONFLICT', '%s', 409);
export const SWY_ERR_FLAG_WRITE = createError('SWY_ERR_FLAG_WRITE', 'Could not write the change through to Unleash: %s', 502);
export const SWY_ERR_ADMIN_DISABLED = createError('SWY_ERR_ADMIN_DISABLED', 'Mutating admin calls are disabled because no admin token is configured: set SWITCHYARD_ADMIN_TOKEN (or SWITCHYARD_ADMIN_TOKENS="name:secret,...") and restart', 403);
export const SWY_ERR_FLAG_WRITE_DISABLED = createError('SWY_ERR_FLAG_WRITE_DISABLED', 'Route %s follows Unleash flag %s, so its split is changed in Unleash; set UNLEASH_ADMIN_TOKEN to let the admin API write it there (a local change would be undone by the next flag update and replicas would disagree)', 409);

/** Flags */
export const SWY_ERR_FLAG_READ = createError('SWY_ERR_FLAG_READ', 'Could not read flags: %s', 500);

/** Control state */
export const SWY_ERR_STATE_READ = createError('SWY_ERR_STATE_READ', 'Could not load persisted control state from %s: %s (fix or remove the file; it holds operator overrides, pauses and rollbacks)', 500);
export const SWY_ERR_STATE_WRITE = createError('SWY_ERR_STATE_WRITE', 'Could not save control state to %s: %s; the change is live in memory but would be lost on restart (free space or make the data dir writable: the save is retried on the next change and with a backoff)', 500);
