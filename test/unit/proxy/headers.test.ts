// Header rewriting of the data path: hop-by-hop stripping and field recognition in every capitalisation peers send.
import { util } from 'undici';
import { describe, expect, it } from 'vitest';
import { responseHeaders, scanRequestHeaders, type ResponseFraming } from '../../../src/proxy/headers.js';

/** Raw header fields as the upstream sent them, parsed the way undici hands them to the handler's onResponseStart. */
const parsed = (fields: string[]) => util.parseHeaders(fields.map((s) => Buffer.from(s, 'latin1')));

describe('scanRequestHeaders', () => {
  it('recognises fields in lowercase, Title-Case and any other capitalisation', () => {
    const scanned = scanRequestHeaders(
      ['HOST', 'client.example', 'Content-Length', '5', 'X-Request-ID', 'abc-1', 'TE', 'trailers', 'X-USER-ID', 'u1', 'Cookie', 'a=1', 'COOKIE', 'b=2', 'x-forwarded-for', '10.0.0.1', 'X-Forwarded-For', '10.0.0.2', 'Keep-Alive', 'timeout=5', 'X-Model', 'kept'],
      'x-user-id',
    );
    expect(scanned.host).toBe('client.example');
    expect(scanned.contentLength).toBe(5);
    expect(scanned.requestId).toBe('abc-1');
    expect(scanned.stickyValue).toBe('u1');
    expect(scanned.cookie).toBe('a=1; b=2');
    expect(scanned.forwardedFor).toBe('10.0.0.1, 10.0.0.2');
    expect(scanned.chunked).toBe(false);
    expect(scanned.forward).toEqual(['Content-Length', '5', 'X-USER-ID', 'u1', 'Cookie', 'a=1', 'COOKIE', 'b=2', 'X-Model', 'kept']);
  });

  it('never forwards a client\'s x-switchyard-shadow (only mirrors carry it), in any capitalisation', () => {
    // 19 characters, like content-disposition, which is forwarded.
    const scanned = scanRequestHeaders(['X-Switchyard-Shadow', '1', 'content-disposition', 'inline', 'x-switchyard-shadow', '1', 'X-SWITCHYARD-SHADOW', '1'], null);
    expect(scanned.forward).toEqual(['content-disposition', 'inline']);
  });

  it('forwards names that only share a length or a first letter with a field it acts on', () => {
    // 12 characters like x-request-id, 4 like host, 7 like upgrade and trailer.
    const scanned = scanRequestHeaders(['x-request-ix', 'a', 'Content-Type', 'application/json', 'hose', 'b', 'Trailed', 'c', 'transfer-encoding', 'chunked'], null);
    expect(scanned.requestId).toBeNull();
    expect(scanned.host).toBeNull();
    expect(scanned.chunked).toBe(true);
    expect(scanned.forward).toEqual(['x-request-ix', 'a', 'Content-Type', 'application/json', 'hose', 'b', 'Trailed', 'c']);
  });

  it('drops Expect: node:http answered 100 Continue to the client, and undici refuses to forward it', () => {
    const scanned = scanRequestHeaders(['Expect', '100-continue', 'Accept', 'application/json', 'expect', '100-continue', 'EXPECT', '100-continue', 'Origin', 'o'], null);
    expect(scanned.forward).toEqual(['Accept', 'application/json', 'Origin', 'o']);
  });

  it('drops the fields a Connection header names, whatever their case', () => {
    const scanned = scanRequestHeaders(['Connection', 'close, X-Hop-Secret', 'x-hop-secret', 'nope', 'X-Kept', 'yes'], null);
    expect(scanned.forward).toEqual(['X-Kept', 'yes']);
  });

  it('takes the first stickiness header and matches its name case-insensitively', () => {
    expect(scanRequestHeaders(['x-tenant', 'first', 'X-Tenant', 'second'], 'x-tenant').stickyValue).toBe('first');
    expect(scanRequestHeaders(['X-TENANT', 'upper'], 'x-tenant').stickyValue).toBe('upper');
    expect(scanRequestHeaders(['x-tenanT', 'odd'], 'x-tenant').stickyValue).toBe('odd');
    expect(scanRequestHeaders(['x-tenants', 'longer'], 'x-tenant').stickyValue).toBeNull();
  });
});

describe('responseHeaders', () => {
  it('strips hop-by-hop and our own fields, notes the framing, and appends variant and request id', () => {
    const framing: ResponseFraming = { expectedBytes: -1, contentType: null };
    const out = responseHeaders(
      parsed(['Server', 'nginx', 'Content-Type', 'application/json', 'CONTENT-LENGTH', '17', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'X-Request-Id', 'upstream-id', 'X-SWITCHYARD-VARIANT', 'spoofed', 'Date', 'today', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2']),
      'iris-v2',
      'rid-1',
      framing,
    );
    // undici lowercases names; a repeated field keeps every value, in order.
    expect(out).toEqual(['server', 'nginx', 'content-type', 'application/json', 'content-length', '17', 'date', 'today', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-switchyard-variant', 'iris-v2', 'x-request-id', 'rid-1']);
    expect(framing).toEqual({ expectedBytes: 17, contentType: 'application/json' });
  });

  it('drops response fields named by the upstream Connection header', () => {
    const framing: ResponseFraming = { expectedBytes: -1, contentType: null };
    const out = responseHeaders(parsed(['connection', 'X-Upstream-Hop', 'x-upstream-hop', '1', 'transfer-encoding', 'chunked', 'content-type', 'text/event-stream']), 'v', 'r', framing);
    expect(out).toEqual(['content-type', 'text/event-stream', 'x-switchyard-variant', 'v', 'x-request-id', 'r']);
    expect(framing).toEqual({ expectedBytes: -1, contentType: 'text/event-stream' });
  });
});
