// Applies a shadow challenger's compiled rewrite to its copy of one request; the served request is never touched.
import type { JsonSet, MirrorRewrite } from '../decision/snapshot.js';

/**
 * Why a mirror could not be rewritten; it is then not sent, and counted under this reason in
 * switchyard_shadow_dropped_total: sent unchanged it would ask the shared endpoint for the champion's model, and its
 * answer would be paired as the challenger's.
 */
export type RewriteFailure = 'rewrite_not_json' | 'rewrite_no_target';

/** The header field marking every mirror (value "1"), so upstreams can tell mirrors from served requests and skip side effects. */
export const shadowHeader = 'x-switchyard-shadow';

/** The mirror's header fields: the served request's, less those the rewrite drops, plus those it sets and the marker. */
export function rewriteHeaders(headers: readonly string[], rewrite: MirrorRewrite): string[] {
  const drop = rewrite.dropHeaders;
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (drop.size > 0 && drop.has(name.toLowerCase())) continue;
    out.push(name, headers[i + 1]!);
  }
  for (const field of rewrite.addHeaders) out.push(field);
  out.push(shadowHeader, '1');
  return out;
}

/** The mirror's body with every pointer set, or why that was impossible (not JSON, or a pointer's parent missing). */
export function rewriteBody(body: Buffer | null, sets: readonly JsonSet[]): Buffer | RewriteFailure {
  if (body === null || body.length === 0) return 'rewrite_not_json';
  let document: unknown;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch {
    return 'rewrite_not_json';
  }
  for (const set of sets) if (!setAt(document, set.tokens, set.value)) return 'rewrite_no_target';
  return Buffer.from(JSON.stringify(document));
}

/** An RFC 6901 array index ("0", or digits without a leading zero), or -1. */
function arrayIndex(token: string): number {
  return /^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : -1;
}

/** The member or element a token names, or undefined (inherited properties such as __proto__ are never followed). */
function child(parent: unknown, token: string): unknown {
  if (Array.isArray(parent)) {
    const index = arrayIndex(token);
    return index >= 0 && index < parent.length ? parent[index] : undefined;
  }
  if (parent === null || typeof parent !== 'object' || !Object.hasOwn(parent, token)) return undefined;
  return (parent as Record<string, unknown>)[token];
}

/**
 * Sets the value at a pointer like JSON Patch's "add" (RFC 6902 §4.1): the parent must exist; an object member is
 * added or replaced, an array element replaced, and "-" appends. `value` is shared between mirrors and frozen: it is
 * placed, never changed (the policy refuses a pointer inside another, so none is walked into).
 */
function setAt(document: unknown, tokens: readonly string[], value: unknown): boolean {
  let parent = document;
  const last = tokens.length - 1;
  for (let i = 0; i < last; i++) {
    parent = child(parent, tokens[i]!);
    if (parent === undefined) return false;
  }
  const token = tokens[last]!;
  if (Array.isArray(parent)) {
    if (token === '-') {
      parent.push(value);
      return true;
    }
    const index = arrayIndex(token);
    if (index < 0 || index >= parent.length) return false;
    parent[index] = value;
    return true;
  }
  if (parent === null || typeof parent !== 'object') return false;
  // Assigned "__proto__" would replace the prototype: defined, it becomes a member, as JSON.parse would have made it.
  // Only then, since defineProperty takes V8's slow path for the object.
  if (token === '__proto__') Object.defineProperty(parent, token, { value, enumerable: true, writable: true, configurable: true });
  else (parent as Record<string, unknown>)[token] = value;
  return true;
}
