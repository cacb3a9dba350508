// GET /v1/openapi.json: an OpenAPI 3.1 document that lists every route the admin listener registered, with the zod-derived schemas of their input.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { openApiPath } from '../../../src/admin/openapi.js';
import { version } from '../../../src/version.js';
import { routePolicy, startSwitchyard, type RunningSwitchyard } from '../../helpers/switchyard.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';

let upstream: Upstream;
let sy: RunningSwitchyard;
type Doc = { openapi: string; info: { version: string }; paths: Record<string, Record<string, { summary: string; security?: unknown[]; responses: Record<string, unknown>; requestBody?: { content: Record<string, { schema: object }> } }>> };
let doc: Doc;

beforeAll(async () => {
  upstream = await startUpstream();
  sy = await startSwitchyard(routePolicy(upstream.url, [{ url: upstream.url, percent: 10 }]), { adminTokens: [{ name: 'admin', secret: 'x' }] });
  const res = await request(`${sy.adminUrl}/v1/openapi.json`);
  expect(res.statusCode).toBe(200);
  doc = (await res.body.json()) as Doc;
});

afterAll(async () => {
  await sy?.close();
  await upstream?.close();
});

/** Every METHOD path fastify registered, read from its own route tree (printRoutes), not from the document's collector. */
function registeredRoutes(): { method: string; url: string }[] {
  const out: { method: string; url: string }[] = [];
  const stack: string[] = [];
  for (const line of sy.app.admin.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/u.exec(line);
    if (!match) continue;
    const depth = [...match[1]!].length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    for (const method of match[3]?.split(', ') ?? []) if (method !== 'HEAD') out.push({ method, url: stack.join('') });
  }
  return out;
}

describe('GET /v1/openapi.json', () => {
  it('lists every registered admin route, each with a summary of its own, and nothing else', () => {
    const registered = registeredRoutes();
    expect(registered.length).toBeGreaterThan(15);
    for (const { method, url } of ['GET /v1/routes', 'PUT /v1/routes/:route/split', 'GET /ui', 'GET /v1/openapi.json'].map((s) => ({ method: s.split(' ')[0]!, url: s.split(' ')[1]! }))) {
      expect(registered).toContainEqual({ method, url });
    }
    for (const { method, url } of registered) {
      const operation = doc.paths[openApiPath(url)]?.[method.toLowerCase()];
      expect(operation, `${method} ${url}`).toBeDefined();
      // A route added without a line in src/admin/openapi.ts gets a generic summary: describe it there.
      expect(operation!.summary, `${method} ${url} needs a summary in src/admin/openapi.ts`).not.toBe(`${method} ${url}`);
    }
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(registered.map((r) => `${r.method} ${openApiPath(r.url)}`).sort());
  });

  it('is OpenAPI 3.1 with the package version, bearer security on changes, and request schemas that are the validators', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe(version);
    const split = doc.paths['/v1/routes/{route}/split']!.put!;
    expect(split.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(split.responses).sort()).toEqual(['200', '400', '401', '403', '404']);
    expect(doc.paths['/v1/routes']!.get!.security).toBeUndefined();
    const validate = new Ajv2020({ strict: false }).compile(split.requestBody!.content['application/json']!.schema);
    expect(validate({ challenger: 'iris-v2', percent: 10, mode: 'canary' })).toBe(true);
    expect(validate({ challenger: 'iris-v2', percent: 101 })).toBe(false);
    expect(validate({ challenger: 'iris-v2', percent: 10, mode: 'blue-green' })).toBe(false);
    expect(validate({ challenger: 'iris-v2', percent: 10, extra: 1 })).toBe(false);
    const feedback = new Ajv2020({ strict: false }).compile(doc.paths['/v1/feedback']!.post!.requestBody!.content['application/json']!.schema);
    expect(feedback([{ requestId: 'a', label: 'setosa' }])).toBe(true);
    expect(feedback({ requestId: '' , label: 1 })).toBe(false);
  });
});
