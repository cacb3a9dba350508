// Bearer-token authentication for mutating admin calls: named tokens, constant-time comparison, clear refusals.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SWY_ERR_ADMIN_DISABLED, SWY_ERR_ENV_INVALID, SWY_ERR_UNAUTHORIZED } from '../errors.js';

/** A configured admin token and the name it is audited under. */
export interface AdminToken {
  readonly name: string;
  readonly secret: string;
}

const TOKEN_NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/**
 * Parses the admin tokens: SWITCHYARD_ADMIN_TOKEN (named "admin") and SWITCHYARD_ADMIN_TOKENS
 * ("alice:secret1,ci:secret2"). Throws SWY_ERR_ENV_INVALID naming the bad entry; never echoes a secret.
 */
export function parseAdminTokens(input: { token?: string | undefined; tokens?: string | undefined }): AdminToken[] {
  const out: AdminToken[] = [];
  if (input.token !== undefined && input.token.trim() !== '') out.push({ name: 'admin', secret: input.token.trim() });
  const list = input.tokens?.trim() ?? '';
  if (list !== '') {
    list.split(',').forEach((entry, index) => {
      const colon = entry.indexOf(':');
      const name = colon === -1 ? '' : entry.slice(0, colon).trim();
      const secret = colon === -1 ? '' : entry.slice(colon + 1).trim();
      if (!TOKEN_NAME.test(name) || secret === '') {
        throw new SWY_ERR_ENV_INVALID(`SWITCHYARD_ADMIN_TOKENS: entry ${index + 1} must be name:secret with a name of letters, digits, ".", "_", "@" or "-"`);
      }
      out.push({ name, secret });
    });
  }
  const names = new Set<string>();
  for (const token of out) {
    if (names.has(token.name)) throw new SWY_ERR_ENV_INVALID(`SWITCHYARD_ADMIN_TOKENS: the name "${token.name}" is used twice`);
    names.add(token.name);
  }
  return out;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Checks bearer tokens against the configured ones in time independent of where (or whether) they differ. */
export class AdminAuth {
  readonly #tokens: readonly { name: string; digest: Buffer }[];

  constructor(tokens: readonly AdminToken[]) {
    this.#tokens = tokens.map((t) => ({ name: t.name, digest: digest(t.secret) }));
  }

  /** False when no token is configured: mutations are then refused outright. */
  get enabled(): boolean {
    return this.#tokens.length > 0;
  }

  /**
   * Returns the token's name, or null. Comparing SHA-256 digests makes both sides 32 bytes, so timingSafeEqual never
   * sees a length difference, and every configured token is compared (no early exit reveals which one matched).
   */
  identify(presented: string): string | null {
    const candidate = digest(presented);
    let match: string | null = null;
    for (const token of this.#tokens) {
      if (timingSafeEqual(candidate, token.digest) && match === null) match = token.name;
    }
    return match;
  }

  /** Name for an `Authorization: Bearer <token>` header value; throws SWY_ERR_ADMIN_DISABLED or SWY_ERR_UNAUTHORIZED. */
  authorize(header: string | undefined): string {
    if (!this.enabled) throw new SWY_ERR_ADMIN_DISABLED();
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
    const name = match ? this.identify(match[1]!) : null;
    if (name === null) throw new SWY_ERR_UNAUTHORIZED();
    return name;
  }

  /** Fastify preHandler for mutating routes: sets `request.adminName` (the audit's "who") or answers 401/403. */
  readonly preHandler = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      (request as FastifyRequest & { adminName?: string }).adminName = this.authorize(request.headers.authorization);
    } catch (err) {
      if ((err as { code?: string }).code === 'SWY_ERR_UNAUTHORIZED') void reply.header('www-authenticate', 'Bearer realm="switchyard-admin"');
      throw err;
    }
  };
}

/** The authenticated admin name set by {@link AdminAuth.preHandler}. */
export function adminNameOf(request: FastifyRequest): string {
  return (request as FastifyRequest & { adminName?: string }).adminName ?? 'unknown';
}
