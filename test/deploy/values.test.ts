// values.yaml and ci/*-values.yaml against values.schema.json (ajv), plus the rule that every values key is documented.
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { isMap, isScalar, parseDocument, type Node as YamlNode } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { chartDir, ciValuesFiles, effectiveValues, mergeValues, readYaml } from './chart.js';
import { parseRedisUrl } from '../../src/coordination/redis-url.js';

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  $ref?: string;
}

const schemaPath = join(chartDir, 'values.schema.json');
const valuesPath = join(chartDir, 'values.yaml');
/** Subtrees that hold user data rather than chart settings: policy documents follow the router's policy format. */
const freeFormPaths = new Set(['policies.files']);

let validate: ValidateFunction;
let schema: SchemaNode & { $schema?: string };

beforeAll(() => {
  schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as SchemaNode & { $schema?: string };
  // strict: unknown keywords in the schema are errors, not silently ignored; union types are plain draft-07.
  validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);
});

function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n');
}

describe('values.schema.json', () => {
  it('is draft-07', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
  });

  it('accepts values.yaml', () => {
    const ok = validate(readYaml(valuesPath));
    expect(describeErrors(validate.errors)).toBe('');
    expect(ok).toBe(true);
  });

  it.each(ciValuesFiles().map((file) => ({ name: basename(file), file })))('accepts ci/$name merged onto values.yaml', ({ file }) => {
    const ok = validate(effectiveValues(file));
    expect(describeErrors(validate.errors)).toBe('');
    expect(ok).toBe(true);
  });

  it('closes every block it describes (additionalProperties: false), so a typo in a key is an error', () => {
    const open: string[] = [];
    const walk = (node: SchemaNode, path: string): void => {
      if (node.properties === undefined) return;
      if (node.additionalProperties !== false) open.push(path || '(root)');
      for (const [key, child] of Object.entries(node.properties)) walk(child, path ? `${path}.${key}` : key);
    };
    walk(schema, '');
    const definitions = (schema as { definitions?: Record<string, SchemaNode> }).definitions ?? {};
    for (const [name, def] of Object.entries(definitions)) walk(def, `definitions.${name}`);
    expect(open).toEqual([]);
  });

  it('describes no key that values.yaml lacks (every setting has a documented default)', () => {
    const values = readYaml(valuesPath);
    const missing: string[] = [];
    const walk = (node: SchemaNode, value: unknown, path: string): void => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        const here = path ? `${path}.${key}` : key;
        if (typeof value !== 'object' || value === null || !(key in value)) missing.push(here);
        else walk(child, (value as Record<string, unknown>)[key], here);
      }
    };
    walk(schema, values, '');
    expect(missing).toEqual([]);
  });

  it.each([
    { what: 'a string where a port number belongs', values: { service: { port: 'eighty' } }, path: '/service/port', keyword: 'type' },
    { what: 'a misspelt key', values: { image: { tga: 'v1' } }, path: '/image', keyword: 'additionalProperties' },
    { what: 'the latest tag', values: { image: { tag: 'latest' } }, path: '/image/tag', keyword: 'not' },
    { what: 'a ServiceMonitor mode that is not auto/true/false', values: { serviceMonitor: { enabled: 'yes' } }, path: '/serviceMonitor/enabled', keyword: 'enum' },
    { what: 'a policy file name without a YAML or JSON extension', values: { policies: { files: { 'routes.txt': 'routes: []' } } }, path: '/policies/files', keyword: 'propertyNames' },
    { what: 'a Redis URL with the wrong scheme', values: { redis: { url: 'http://redis:6379' } }, path: '/redis/url', keyword: 'pattern' },
    { what: 'a log level the router does not know', values: { server: { logLevel: 'verbose' } }, path: '/server/logLevel', keyword: 'enum' },
    { what: 'a negative drain time', values: { server: { drainMs: -1 } }, path: '/server/drainMs', keyword: 'minimum' },
    { what: 'a Redis key prefix with a space', values: { redis: { prefix: 'my swy' } }, path: '/redis/prefix', keyword: 'pattern' },
    { what: 'an empty Redis key prefix', values: { redis: { prefix: '' } }, path: '/redis/prefix', keyword: 'pattern' },
    { what: 'a coordination cadence under the router\'s 20 ms', values: { redis: { intervalMs: 10 } }, path: '/redis/intervalMs', keyword: 'minimum' },
    { what: 'a fractional coordination cadence', values: { redis: { intervalMs: 250.5 } }, path: '/redis/intervalMs', keyword: 'type' },
    { what: 'a leader lease between 0 and 100 ms', values: { redis: { leaseMs: 50 } }, path: '/redis/leaseMs', keyword: 'anyOf' },
    { what: 'a leader lease over 10 minutes', values: { redis: { leaseMs: 600_001 } }, path: '/redis/leaseMs', keyword: 'anyOf' },
    { what: 'a Redis timeout over 10 s', values: { redis: { timeoutMs: 20_000 } }, path: '/redis/timeoutMs', keyword: 'maximum' },
    { what: 'a Redis Secret name that is not a DNS name', values: { redis: { existingSecret: 'Redis_Creds' } }, path: '/redis/existingSecret', keyword: 'pattern' },
  ])('rejects $what at $path', ({ values, path, keyword }) => {
    const merged = mergeValues(readYaml(valuesPath), values);
    expect(validate(merged)).toBe(false);
    const hit = (validate.errors ?? []).find((e) => e.instancePath === path && e.keyword === keyword);
    expect(hit, describeErrors(validate.errors)).toBeDefined();
    if (keyword === 'additionalProperties') expect(hit?.params).toEqual({ additionalProperty: 'tga' });
  });
});

describe('values.schema.json and the router agree on Redis URLs', () => {
  it.each([
    'redis://redis-master:6379',
    'redis://user:p%40ss@redis-master:6379/2',
    'rediss://redis.example.com:6380',
    'redis+sentinel://:pw@s1:26379,s2:26379/mymaster/0?sentinelPassword=spw',
    'rediss+sentinel://s1:26379/mymaster',
    'redis+cluster://:pw@n1:6379,n2:6379',
    'rediss+cluster://n1:6379',
  ])('accepts %s, which the router parses', (url) => {
    expect(() => parseRedisUrl(url)).not.toThrow();
    const ok = validate(mergeValues(readYaml(valuesPath), { redis: { enabled: true, url } }));
    expect(describeErrors(validate.errors)).toBe('');
    expect(ok).toBe(true);
  });

  it.each(['http://redis:6379', 'redis:6379', 'unix:///tmp/redis.sock', 'redis+socket://x'])('rejects %s, which the router refuses too', (url) => {
    expect(() => parseRedisUrl(url)).toThrow(/SWITCHYARD_REDIS_URL/);
    expect(validate(mergeValues(readYaml(valuesPath), { redis: { enabled: true, url } }))).toBe(false);
    expect((validate.errors ?? []).some((e) => e.instancePath === '/redis/url' && e.keyword === 'pattern')).toBe(true);
  });
});

describe('values.yaml documentation', () => {
  it('has a `# --` comment directly above every key', () => {
    const doc = parseDocument(readFileSync(valuesPath, 'utf8'));
    expect(doc.errors).toEqual([]);
    const undocumented: string[] = [];
    let checked = 0;
    const walk = (node: YamlNode | null | undefined, path: string): void => {
      if (!isMap(node)) return;
      node.items.forEach((pair, index) => {
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        const here = path ? `${path}.${key}` : key;
        // The yaml parser attaches the comment above a map's first key to the map itself.
        const comment = (isScalar(pair.key) ? pair.key.commentBefore : undefined) ?? (index === 0 ? node.commentBefore : undefined);
        const lines = (comment ?? '').split('\n').map((line) => line.trim());
        if (!lines.some((line) => /^-- \S/.test(line))) undocumented.push(here);
        checked += 1;
        if (!freeFormPaths.has(here)) walk(pair.value as YamlNode | null, here);
      });
    };
    walk(doc.contents, '');
    expect(undocumented).toEqual([]);
    expect(checked).toBeGreaterThan(100);
  });
});
