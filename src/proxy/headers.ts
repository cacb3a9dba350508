// Request and response header rewriting for the data path: hop-by-hop stripping (RFC 9110 §7.6.1) in one pass over raw headers.
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The header fields the data path acts on, grouped by the length of their name. Header names are case-insensitive, but
 * lowercasing every raw name and hashing the fresh string for a `Set` lookup cost ≈ 4,000 instructions per request
 * under callgrind (bench/README.md, "Header names"); a name whose length matches no field needs no look at all, and
 * the rest are compared with the two spellings peers send (lowercase, Title-Case) before any lowercasing.
 */
type FieldTable = readonly (readonly string[] | undefined)[];

function titleCase(lower: string): string {
  return lower.replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** Builds a table: index = name length, entry = [lowercase, Title-Case, lowercase, Title-Case, ...]. */
function fieldTable(lowerNames: readonly string[]): FieldTable {
  const table: string[][] = [];
  for (const lower of lowerNames) (table[lower.length] ??= []).push(lower, titleCase(lower));
  return table;
}

/**
 * Returns the table's lowercase spelling of a raw header name (an interned constant, so later comparisons are cheap),
 * or null when the name is none of the table's fields.
 */
function knownField(name: string, table: FieldTable): string | null {
  const spellings = table[name.length];
  if (spellings === undefined) return null;
  const first = name.charCodeAt(0) | 0x20;
  let sameFirst = false;
  for (let i = 0; i < spellings.length; i += 2) {
    const lower = spellings[i]!;
    if (lower.charCodeAt(0) !== first) continue;
    if (name === lower || name === spellings[i + 1]) return lower;
    sameFirst = true;
  }
  if (!sameFirst) return null;
  // Another capitalisation ("X-Request-ID", "TE", "CONTENT-LENGTH"): compare case-insensitively.
  const lowered = name.toLowerCase();
  for (let i = 0; i < spellings.length; i += 2) if (lowered === spellings[i]) return spellings[i]!;
  return null;
}

/**
 * Request fields: the hop-by-hop ones (RFC 9110 §7.6.1), those the proxy sets itself (`host` is dropped so undici sends
 * the upstream's own authority; `trailer` goes because we re-frame bodies and do not forward trailers), and those read
 * for routing and framing. `expect` is hop-by-hop in practice (RFC 9110 §10.1.1): node:http has already answered
 * "100 Continue" to the client, the body is on its way, and undici refuses to send a request that carries it.
 * `x-switchyard-shadow` marks mirrors only (src/shadow/rewrite.ts): a client's own would make an upstream take a served
 * request for a mirror and skip its side effects.
 */
const requestFields = fieldTable(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id', 'content-length', 'cookie', 'expect', 'x-switchyard-shadow']);
/** Response fields: hop-by-hop ones, the two the proxy sets itself, and the framing ones it notes. */
const responseFields = fieldTable(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'x-request-id', 'x-switchyard-variant', 'content-length', 'content-type']);

/**
 * The most header fields a request may carry. node:http keeps only the first `server.maxHeadersCount` fields of a
 * request and drops the rest unseen (framing fields included), while its parser still frames the body by them: a
 * `Transfer-Encoding` or `Content-Length` behind enough junk fields would go unseen here and the body limit with it. The
 * data server keeps one field more than this (src/app.ts), so a request over the limit is recognisable and refused
 * before any scan; legitimate requests carry a few dozen.
 */
export const maxRequestHeaderFields = 1_000;

/**
 * Which characters a Host value may hold (RFC 9110 §7.2: uri-host [":" port]; RFC 3986 reg-name, IP-literal, IPv4):
 * unreserved, pct-encoded and sub-delims, ":" for the port and "[" "]" around an IPv6 literal. No "@", "/", "?", "#",
 * backslashes or spaces: userinfo, paths and queries in Host are how host-confusion attacks are smuggled to upstreams.
 */
const hostChars = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:[]") hostChars[c.charCodeAt(0)] = 1;

/**
 * The last Host value found valid. Clients send the same few names, and comparing with the last one costs a fifth of
 * checking every character (callgrind: ≈230 against ≈1,200 instructions for a 37-character name).
 */
let lastValidHost = '';

/** True when a Host value is host[:port] and nothing else (an empty value is allowed: RFC 9112 §3.2). */
export function isValidHost(value: string): boolean {
  if (value === lastValidHost) return true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 127 || hostChars[c] === 0) return false;
  }
  lastValidHost = value;
  return true;
}

/** What one pass over the client's raw headers found, plus the headers to forward. */
export interface ScannedRequestHeaders {
  /** Flat [name, value, name, value, ...] list for undici. */
  forward: string[];
  requestId: string | null;
  stickyValue: string | null;
  cookie: string | null;
  contentLength: number;
  chunked: boolean;
  host: string | null;
  /** More than one Host field: RFC 9112 §3.2 says to answer 400, since peers would disagree on which one counts. */
  duplicateHost: boolean;
  forwardedFor: string | null;
}

/** A request id from a client is propagated only when it is short and printable, so it is safe to log and echo. */
const requestIdPattern = /^[\x21-\x7e]{1,200}$/;

/**
 * Scans raw request headers once: collects what routing needs (request id, stickiness header, cookie, body framing)
 * and builds the forwarded list without the hop-by-hop fields.
 */
export function scanRequestHeaders(raw: readonly string[], stickyHeader: string | null): ScannedRequestHeaders {
  const forward: string[] = [];
  let requestId: string | null = null;
  let stickyValue: string | null = null;
  let cookie: string | null = null;
  let contentLength = -1;
  let chunked = false;
  let host: string | null = null;
  let duplicateHost = false;
  let forwardedFor: string | null = null;
  let connectionTokens: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const field = knownField(name, requestFields);
    if (field !== null) {
      if (field === 'content-length') contentLength = Number(value);
      else if (field === 'cookie') cookie = cookie === null ? value : `${cookie}; ${value}`;
      else {
        if (field === 'transfer-encoding') chunked = true;
        else if (field === 'host') {
          if (host !== null) duplicateHost = true;
          host = value;
        }
        else if (field === 'x-forwarded-for') forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
        else if (field === 'connection') connectionTokens = value;
        else if (field === 'x-request-id' && requestIdPattern.test(value)) requestId = value;
        // Every other field of the table is hop-by-hop or set by the proxy: not forwarded.
        continue;
      }
    }
    if (stickyValue === null && stickyHeader !== null && name.length === stickyHeader.length && (name === stickyHeader || name.toLowerCase() === stickyHeader)) stickyValue = value;
    forward.push(name, value);
  }
  if (connectionTokens !== null && !isPlainConnection(connectionTokens)) dropConnectionOptions(forward, connectionTokens);
  return { forward, requestId, stickyValue, cookie, contentLength, chunked, host, duplicateHost, forwardedFor };
}

/** Fast path: "keep-alive" or "close" names no other field, so there is nothing more to strip. */
function isPlainConnection(value: string): boolean {
  if (value.length > 10) return false;
  const lower = value.toLowerCase();
  return lower === 'keep-alive' || lower === 'close';
}

/** Removes the fields a Connection header names (RFC 9110 §7.6.1: they are hop-by-hop for this connection only). */
function dropConnectionOptions(forward: string[], connection: string): void {
  const named = new Set(connection.split(',').map((token) => token.trim().toLowerCase()).filter((token) => token !== 'close' && token !== 'keep-alive' && token !== ''));
  if (named.size === 0) return;
  for (let i = forward.length - 2; i >= 0; i -= 2) {
    if (named.has(forward[i]!.toLowerCase())) forward.splice(i, 2);
  }
}

/** What the response framing fields said; filled in by {@link responseHeaders} in the same pass. */
export interface ResponseFraming {
  /** Content-Length as announced (-1: none, e.g. a chunked answer). */
  expectedBytes: number;
  contentType: string | null;
}

/**
 * Builds the client response headers from an upstream's headers as undici parsed them (lowercase names, repeated
 * fields as arrays), without hop-by-hop fields, plus ours, and notes the framing fields on the way (one pass).
 */
export function responseHeaders(headers: IncomingHttpHeaders, variant: string, requestId: string, framing: ResponseFraming): string[] {
  const out: string[] = [];
  let connection: string | null = null;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const field = knownField(name, responseFields);
    if (field !== null && field !== 'content-length' && field !== 'content-type') {
      if (field === 'connection') connection = typeof value === 'string' ? value : value.join(', ');
      continue;
    }
    if (typeof value !== 'string') {
      // A repeated field (set-cookie, or a framing field sent twice, which then frames nothing we rely on).
      for (const one of value) out.push(name, one);
      continue;
    }
    if (field === 'content-length') framing.expectedBytes = Number(value);
    else if (field === 'content-type') framing.contentType = value;
    out.push(name, value);
  }
  if (connection !== null && !isPlainConnection(connection)) dropConnectionOptions(out, connection);
  out.push('x-switchyard-variant', variant, 'x-request-id', requestId);
  return out;
}

/** Finds a query parameter's value in a raw request target without building a URL object. */
export function queryValue(url: string, name: string): string | null {
  const q = url.indexOf('?');
  if (q === -1) return null;
  const query = url.slice(q + 1);
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq === -1 ? pair : pair.slice(0, eq);
    if (safeDecode(key) === name) return eq === -1 ? '' : safeDecode(pair.slice(eq + 1).replace(/\+/g, ' '));
  }
  return null;
}

/** Finds a cookie's value in a Cookie header (RFC 6265 §5.4 serialisation). */
export function cookieValue(cookieHeader: string | null, name: string): string | null {
  if (cookieHeader === null) return null;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return safeDecode(part.slice(eq + 1).trim());
  }
  return null;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
