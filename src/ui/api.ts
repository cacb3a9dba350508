// Calls to the admin API from the page: reads without a token, changes with the session's bearer token.
import type { ApiError } from './types.js';

const TOKEN_KEY = 'switchyard.adminToken';

/** A failed call: the server's error code and message, or SWY_UI_UNREACHABLE when no answer came. */
export class CallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }
}

export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value: string | null) {
    if (value === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, value);
  },
};

/** One call; `auth` sends the session's token. Throws CallError with the server's code and message. */
export async function call<T>(method: string, path: string, options: { body?: unknown; auth?: boolean; token?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = options.token ?? (options.auth ? session.token : null);
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    // Relative to the page (/ui), so the page also works behind a proxy that serves the admin API under a prefix.
    res = await fetch(path.replace(/^\//, ''), { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body), cache: 'no-store' });
  } catch (err) {
    throw new CallError('SWY_UI_UNREACHABLE', `the admin API did not answer (${(err as Error).message})`, null);
  }
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const error = (parsed as ApiError | null)?.error;
    throw new CallError(error?.code ?? `HTTP_${res.status}`, error?.message ?? `${method} ${path} answered ${res.status}`, res.status);
  }
  return parsed as T;
}
