// Reads policy files (YAML or JSON, one file or a directory), validates them and reports every problem with its location.
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { SWY_ERR_POLICY_INVALID, SWY_ERR_POLICY_READ } from '../errors.js';
import { policySchema, type Policy, type RoutePolicy } from './policy-schema.js';

/** One problem found in a policy: where it is, what is wrong, and what is allowed. */
export interface PolicyProblem {
  file: string;
  line?: number;
  path: string;
  message: string;
  allowed?: string;
}

/** A validated policy together with the files it came from and a content hash used as its version. */
export interface LoadedPolicy {
  policy: Policy;
  files: string[];
  version: string;
}

const policyExtensions = new Set(['.yaml', '.yml', '.json']);

/** Lists the policy files behind a path: the file itself, or every .yaml/.yml/.json file of a directory (sorted). */
export async function listPolicyFiles(target: string): Promise<string[]> {
  let info;
  try {
    info = await stat(target);
  } catch (err) {
    throw new SWY_ERR_POLICY_READ(target, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : String(err));
  }
  if (!info.isDirectory()) return [target];
  const entries = await readdir(target);
  // Kubernetes ConfigMap mounts add "..data" symlinks and dot-directories; only plain policy files count.
  const files = entries.filter((name) => !name.startsWith('.') && policyExtensions.has(path.extname(name))).sort();
  if (files.length === 0) throw new SWY_ERR_POLICY_READ(target, 'the directory holds no .yaml, .yml or .json policy file');
  return files.map((name) => path.join(target, name));
}

/** Formats a path array as `routes[0].challengers[1].percent`. */
export function formatPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out === '' ? '(top level)' : out;
}

type SchemaDef = { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; valueType?: z.ZodType; innerType?: z.ZodType; entries?: Record<string, unknown>; in?: z.ZodType };

function schemaAt(schema: z.ZodType, segments: readonly PropertyKey[]): z.ZodType | undefined {
  let current: z.ZodType | undefined = schema;
  let index = 0;
  while (current) {
    const def: SchemaDef = (current as unknown as { _zod: { def: SchemaDef } })._zod.def;
    if (def.innerType) { current = def.innerType; continue; }
    if (def.type === 'pipe' && def.in) { current = def.in; continue; }
    if (index >= segments.length) return current;
    const segment = segments[index++];
    if (def.type === 'object' && def.shape) current = def.shape[String(segment)];
    else if (def.type === 'array' && def.element) current = def.element;
    else if (def.type === 'record' && def.valueType) current = def.valueType;
    else return undefined;
  }
  return undefined;
}

/** What a field allows, for the problem listing; `root` is the schema the issue's path starts from (default: a policy). */
export function allowedFor(issue: z.core.$ZodIssue, root: z.ZodType = policySchema): string | undefined {
  if (issue.code === 'unrecognized_keys') {
    const target = schemaAt(root, issue.path);
    const def = target ? (target as unknown as { _zod: { def: SchemaDef } })._zod.def : undefined;
    if (def?.shape) return `known fields: ${Object.keys(def.shape).join(', ')}`;
  }
  if (issue.code === 'invalid_value' && 'values' in issue) return `one of: ${issue.values.map(String).join(', ')}`;
  if (issue.code === 'too_big') return `at most ${String(issue.maximum)}`;
  if (issue.code === 'too_small') return `at least ${String(issue.minimum)}`;
  return undefined;
}

function lineOf(doc: ReturnType<typeof parseDocument>, counter: LineCounter, segments: readonly PropertyKey[]): number | undefined {
  for (let depth = segments.length; depth >= 0; depth--) {
    const node = doc.getIn(segments.slice(0, depth) as (string | number)[], true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Validates the text of one policy file; returns the policy or the list of problems. */
export function validatePolicyText(file: string, text: string): { policy?: Policy; problems: PolicyProblem[] } {
  const counter = new LineCounter();
  // YAML is a superset of JSON, so one parser with line tracking serves both formats.
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((err) => ({
        file,
        line: err.linePos?.[0]?.line,
        path: '(syntax)',
        message: err.message.split('\n')[0] ?? err.message,
      })),
    };
  }
  const result = policySchema.safeParse(doc.toJS());
  if (result.success) return { policy: result.data, problems: [] };
  return {
    problems: result.error.issues.map((issue) => {
      const segments = issue.code === 'unrecognized_keys' ? issue.path : issue.path;
      const where = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] ?? ''] : issue.path;
      const problem: PolicyProblem = {
        file,
        line: lineOf(doc, counter, where as PropertyKey[]),
        path: formatPath(segments as PropertyKey[]),
        message: issue.message,
      };
      const allowed = allowedFor(issue);
      if (allowed) problem.allowed = allowed;
      return problem;
    }),
  };
}

/** Checks rules that span files: unique route names and unique path prefixes. */
function crossFileProblems(routes: { route: RoutePolicy; file: string; index: number }[]): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const names = new Map<string, string>();
  const prefixes = new Map<string, string>();
  for (const { route, file, index } of routes) {
    const seenName = names.get(route.name);
    if (seenName) problems.push({ file, path: `routes[${index}].name`, message: `route name "${route.name}" is already used in ${seenName}`, allowed: 'a unique name per route' });
    names.set(route.name, file);
    const seenPrefix = prefixes.get(route.match.pathPrefix);
    if (seenPrefix) problems.push({ file, path: `routes[${index}].match.pathPrefix`, message: `pathPrefix "${route.match.pathPrefix}" is already routed by ${seenPrefix}`, allowed: 'a distinct pathPrefix per route' });
    prefixes.set(route.match.pathPrefix, `route "${route.name}"`);
  }
  return problems;
}

/** Renders problems as the human listing printed by `switchyard validate` and at start-up. */
export function formatProblems(problems: readonly PolicyProblem[]): string {
  return problems
    .map((p) => `${p.file}${p.line ? `:${p.line}` : ''}: ${p.path}: ${p.message}${p.allowed ? ` (allowed: ${p.allowed})` : ''}`)
    .join('\n');
}

/** Loads, validates and merges every policy file behind `target`; throws SWY_ERR_POLICY_INVALID listing all problems. */
export async function loadPolicy(target: string): Promise<LoadedPolicy> {
  const files = await listPolicyFiles(target);
  const problems: PolicyProblem[] = [];
  const routes: { route: RoutePolicy; file: string; index: number }[] = [];
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new SWY_ERR_POLICY_READ(file, String((err as Error).message));
    }
    hash.update(file).update('\0').update(text).update('\0');
    const result = validatePolicyText(file, text);
    problems.push(...result.problems);
    result.policy?.routes.forEach((route, index) => routes.push({ route, file, index }));
  }
  problems.push(...crossFileProblems(routes));
  if (problems.length > 0) {
    const err = new SWY_ERR_POLICY_INVALID(formatProblems(problems));
    (err as Error & { problems?: PolicyProblem[] }).problems = problems;
    throw err;
  }
  return { policy: { routes: routes.map((r) => r.route) }, files, version: hash.digest('hex').slice(0, 12) };
}
