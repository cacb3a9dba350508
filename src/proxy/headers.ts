// Request and response header rewriting for the data path: hop-by-hop stripping (RFC 9110 §7.6.1) in one pass over raw headers.

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1) plus fields the proxy sets itself. `host` is dropped so undici sends the
 * upstream's own authority; `trailer` goes because we re-frame bodies and do not forward trailers.
 */
const requestDropped = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);
const responseDropped = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'x-request-id', 'x-switchyard-variant']);

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
  let forwardedFor: string | null = null;
  let connectionTokens: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (requestDropped.has(name)) {
      if (name === 'transfer-encoding') chunked = true;
      else if (name === 'host') host = value;
      else if (name === 'x-forwarded-for') forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
      else if (name === 'connection') connectionTokens = value;
      continue;
    }
    if (name === 'x-request-id') {
      if (requestIdPattern.test(value)) requestId = value;
      continue;
    }
    if (name === 'content-length') contentLength = Number(value);
    else if (name === 'cookie') cookie = cookie === null ? value : `${cookie}; ${value}`;
    if (name === stickyHeader && stickyValue === null) stickyValue = value;
    forward.push(raw[i]!, value);
  }
  if (connectionTokens !== null && !isPlainConnection(connectionTokens)) dropConnectionOptions(forward, connectionTokens);
  return { forward, requestId, stickyValue, cookie, contentLength, chunked, host, forwardedFor };
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
 * Builds the client response headers from an upstream's raw headers, without hop-by-hop fields, plus ours, and notes
 * the framing fields on the way (one pass: the request path converts each raw name once).
 */
export function responseHeaders(raw: readonly Buffer[] | readonly string[], variant: string, requestId: string, framing: ResponseFraming): string[] {
  const out: string[] = [];
  let connection: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (responseDropped.has(lower)) {
      if (lower === 'connection') connection = raw[i + 1]!.toString('latin1');
      continue;
    }
    const value = raw[i + 1]!.toString('latin1');
    if (lower === 'content-length') framing.expectedBytes = Number(value);
    else if (lower === 'content-type') framing.contentType = value;
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
