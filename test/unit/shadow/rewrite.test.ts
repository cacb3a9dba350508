// Mirror rewrites: the policy's errors name the field, and a compiled rewrite sets JSON Pointers and header fields on the mirror's copy only.
import { describe, expect, it } from 'vitest';
import { loadPolicy, validatePolicyText } from '../../../src/config/load.js';
import { compileMirrorRewrite, compilePolicy, policyState } from '../../../src/decision/compile.js';
import { decideRoute } from '../../../src/decision/snapshot.js';
import { rewriteBody, rewriteHeaders } from '../../../src/shadow/rewrite.js';

function route(challenger: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    routes: [{
      name: 'chat', match: { pathPrefix: '/v1/chat/completions' }, champion: { name: 'gpt-a', url: 'http://127.0.0.1:9001' },
      challengers: [{ name: 'gpt-b', url: 'http://127.0.0.1:9001', mode: 'shadow', percent: 100, ...challenger }], ...extra,
    }],
  });
}

const problems = (challenger: Record<string, unknown>, extra: Record<string, unknown> = {}) => validatePolicyText('policy.json', route(challenger, extra)).problems.map((p) => `${p.path}: ${p.message}`);

describe('rewrite and shed in the policy', () => {
  it('accepts a rewrite of a shadow challenger and compiles it into the snapshot', () => {
    const { policy, problems: found } = validatePolicyText('policy.json', route({ rewrite: { json: { '/model': 'gpt-challenger', '/parameters/n': 1 }, headers: { set: { Authorization: 'Bearer b' }, remove: ['x-debug'] } } }));
    expect(found).toEqual([]);
    const [compiled] = compilePolicy(policy!);
    const decision = decideRoute(compiled!, policyState(compiled!));
    const rewrite = decision.shadows![0]!.rewrite!;
    expect(rewrite.json).toEqual([{ tokens: ['model'], value: 'gpt-challenger' }, { tokens: ['parameters', 'n'], value: 1 }]);
    expect([...rewrite.dropHeaders].sort()).toEqual(['authorization', 'content-length', 'x-debug']);
    expect(rewrite.addHeaders).toEqual(['authorization', 'Bearer b']);
    expect(compiled!.championLatency).toBeNull();
  });

  it('loads examples/llm-shadow-one-endpoint.yaml: a rewrite and a shadow budget', async () => {
    const { policy } = await loadPolicy('examples/llm-shadow-one-endpoint.yaml');
    const [compiled] = compilePolicy(policy);
    expect(compiled!.mirrorRewrites.get('gpt-b')!.json).toEqual([{ tokens: ['model'], value: 'gpt-b' }]);
    expect(compiled!.championLatency).not.toBeNull();
    expect(policy.routes[0]!.shadow.shed).toEqual({ latencyMs: 2000, ratio: 2, samples: 20, baselineSamples: 1000, resumeBelow: 0.8 });
  });

  const cases: { name: string; challenger: Record<string, unknown>; extra?: Record<string, unknown>; problem: RegExp }[] = [
    { name: 'a rewrite on a canary challenger', challenger: { mode: 'canary', percent: 10, rewrite: { json: { '/model': 'b' } } }, problem: /^routes\[0\]\.challengers\[0\]\.rewrite: rewrite applies only to mirrors: set mode: shadow/ },
    { name: 'a pointer without a leading "/"', challenger: { rewrite: { json: { model: 'b' } } }, problem: /^routes\[0\]\.challengers\[0\]\.rewrite\.json(\.model)?: .*must be a JSON Pointer starting with "\/"/ },
    { name: 'a pointer inside another one', challenger: { rewrite: { json: { '/parameters': {}, '/parameters/n': 1 } } }, problem: /rewrite\.json\.\/parameters\/n: is inside \/parameters/ },
    { name: 'setting Content-Length', challenger: { rewrite: { headers: { set: { 'Content-Length': '3' } } } }, problem: /rewrite\.headers\.set\.Content-Length: Content-Length cannot be rewritten: the proxy frames/ },
    { name: 'removing the shadow marker', challenger: { rewrite: { headers: { remove: ['X-Switchyard-Shadow'] } } }, problem: /rewrite\.headers\.remove\[0\]: X-Switchyard-Shadow cannot be rewritten: every mirror carries it/ },
    { name: 'a field both set and removed', challenger: { rewrite: { headers: { set: { 'x-model': 'b' }, remove: ['X-Model'] } } }, problem: /rewrite\.headers\.remove\[0\]: X-Model is also set/ },
    { name: 'a header value with a line break', challenger: { rewrite: { headers: { set: { 'x-model': 'b\r\nx-evil: 1' } } } }, problem: /rewrite\.headers\.set\.x-model: must be a header value without control characters/ },
    { name: 'a rewrite that rewrites nothing', challenger: { rewrite: {} }, problem: /rewrite: rewrites nothing/ },
    { name: 'a shed budget without a bound', challenger: {}, extra: { shadow: { shed: { samples: 10 } } }, problem: /^routes\[0\]\.shadow\.shed: set latencyMs \(e\.g\. 250\), ratio \(e\.g\. 2\) or both/ },
    { name: 'a baseline faster than the recent mean', challenger: {}, extra: { shadow: { shed: { ratio: 2, samples: 50, baselineSamples: 20 } } }, problem: /^routes\[0\]\.shadow\.shed\.baselineSamples: must be larger than samples/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}, naming the field`, () => {
      const found = problems(c.challenger, c.extra);
      expect(found.some((p) => c.problem.test(p)), found.join('\n')).toBe(true);
    });
  }
});

describe('applying a compiled rewrite', () => {
  const rewrite = compileMirrorRewrite({ json: { '/model': 'gpt-b', '/messages/0/role': 'system', '/tags/-': 'shadow', '/__proto__': { polluted: true } }, headers: { set: { Authorization: 'Bearer b' }, remove: ['X-Debug'] } });

  it('sets each pointer in a copy of the JSON body, the served bytes untouched', () => {
    const served = Buffer.from('{"model":"gpt-a","messages":[{"role":"user","content":"hi"}],"tags":[],"stream":true}');
    const before = Buffer.from(served);
    const mirrored = rewriteBody(served, rewrite.json!);
    expect(Buffer.isBuffer(mirrored)).toBe(true);
    const parsed = JSON.parse((mirrored as Buffer).toString()) as Record<string, unknown>;
    expect(parsed).toMatchObject({ model: 'gpt-b', messages: [{ role: 'system', content: 'hi' }], tags: ['shadow'], stream: true });
    // "__proto__" became a plain member, as JSON.parse makes it; no prototype was changed.
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect((mirrored as Buffer).toString()).toContain('"__proto__":{"polluted":true}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(served.equals(before)).toBe(true);
  });

  it('reports a body that is not JSON, and a pointer whose parent is missing, so the mirror is dropped', () => {
    expect(rewriteBody(Buffer.from('model=gpt-a'), rewrite.json!)).toBe('rewrite_not_json');
    expect(rewriteBody(null, rewrite.json!)).toBe('rewrite_not_json');
    expect(rewriteBody(Buffer.from('{"model":"gpt-a","tags":[]}'), rewrite.json!)).toBe('rewrite_no_target');
    expect(rewriteBody(Buffer.from('[1,2]'), compileMirrorRewrite({ json: { '/model': 'b' } }).json!)).toBe('rewrite_no_target');
    expect(rewriteBody(Buffer.from('{"a":[1]}'), compileMirrorRewrite({ json: { '/a/1': 2 } }).json!)).toBe('rewrite_no_target');
    expect(rewriteBody(Buffer.from('{"a":[1]}'), compileMirrorRewrite({ json: { '/a/0': 2 } }).json!)).toEqual(Buffer.from('{"a":[2]}'));
  });

  it('sets and removes header fields in any capitalisation, drops the stale Content-Length and adds the shadow marker', () => {
    const served = ['Content-Type', 'application/json', 'Content-Length', '91', 'AUTHORIZATION', 'Bearer a', 'x-debug', '1', 'x-request-id', 'r1'];
    expect(rewriteHeaders(served, rewrite)).toEqual(['Content-Type', 'application/json', 'x-request-id', 'r1', 'authorization', 'Bearer b', 'x-switchyard-shadow', '1']);
    expect(served).toHaveLength(10);
    // Without a body rewrite the client's Content-Length still frames the unchanged body.
    expect(rewriteHeaders(served, compileMirrorRewrite({ headers: { remove: ['x-debug'] } }))).toContain('Content-Length');
  });
});
