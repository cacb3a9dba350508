// The error registry: exactly these stable codes with these statuses, each code equal to its export name and documented in README.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as errors from '../../src/errors.js';

/**
 * Clients switch on these codes, so the list is pinned: removing or renaming a code, or changing its status, fails
 * here; a new code is added here, to src/errors.ts and to README's error table together.
 */
const registry: Record<string, number> = {
  SWY_ERR_ADMIN_DISABLED: 403,
  SWY_ERR_BAD_REQUEST: 400,
  SWY_ERR_BODY_TOO_LARGE: 413,
  SWY_ERR_CHUNK_EXTENSIONS_TOO_LARGE: 413,
  SWY_ERR_CLIENT_TIMEOUT: 408,
  SWY_ERR_CONFLICT: 409,
  SWY_ERR_DRAINING: 503,
  SWY_ERR_ENV_INVALID: 500,
  SWY_ERR_FLAG_READ: 500,
  SWY_ERR_FLAG_WRITE: 502,
  SWY_ERR_FLAG_WRITE_DISABLED: 409,
  SWY_ERR_HEADERS_TIMEOUT: 408,
  SWY_ERR_HEADERS_TOO_LARGE: 431,
  SWY_ERR_INTERNAL: 500,
  SWY_ERR_METHOD_NOT_ALLOWED: 405,
  SWY_ERR_NOT_FOUND: 404,
  SWY_ERR_NO_ROUTE: 404,
  SWY_ERR_POLICY_INVALID: 500,
  SWY_ERR_POLICY_READ: 500,
  SWY_ERR_ROUTE_UNKNOWN: 404,
  SWY_ERR_SCENARIO_INVALID: 500,
  SWY_ERR_STATE_READ: 500,
  SWY_ERR_STATE_WRITE: 500,
  SWY_ERR_UNAUTHORIZED: 401,
  SWY_ERR_UPSTREAM_BUSY: 503,
  SWY_ERR_UPSTREAM_CONNECT: 502,
  SWY_ERR_UPSTREAM_RESET: 502,
  SWY_ERR_UPSTREAM_TIMEOUT: 504,
  SWY_ERR_UPSTREAM_UNAVAILABLE: 503,
};

const constructors = Object.entries(errors).filter(([name]) => name.startsWith('SWY_ERR_'));

it('exports exactly the pinned codes, with their statuses', () => {
  const statusOf = (ErrorClass: unknown) => new (ErrorClass as new (...args: unknown[]) => Error & { statusCode: number })('a', 'b').statusCode;
  expect(Object.fromEntries(constructors.map(([name, ErrorClass]) => [name, statusOf(ErrorClass)]))).toStrictEqual(registry);
});

it('exports nothing else than the codes and errorCode, the one reader of err.code', () => {
  expect(Object.keys(errors).filter((name) => !name.startsWith('SWY_ERR_'))).toStrictEqual(['errorCode']);
  expect(errors.errorCode(new errors.SWY_ERR_CONFLICT('x'))).toBe('SWY_ERR_CONFLICT');
  expect(errors.errorCode(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
  expect(errors.errorCode(new Error('no code'))).toBeUndefined();
  expect(errors.errorCode(null)).toBeUndefined();
});

it('gives every code its own name as code, and documents it in README', () => {
  const readme = readFileSync('README.md', 'utf8');
  for (const [name, ErrorClass] of constructors) {
    const instance = new (ErrorClass as new (...args: unknown[]) => Error & { code: string })('a', 'b');
    expect(instance.code).toBe(name);
    expect(readme, `${name} is missing from README's error table`).toContain(`\`${name}\``);
  }
});
