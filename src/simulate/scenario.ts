// The `switchyard simulate` scenario: its zod schema, and resolution of the policy (a file or inline) and the route's arms.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { allowedFor, formatPath, formatProblems, loadPolicy, validatePolicyText, type PolicyProblem } from '../config/load.js';
import type { Policy, RoutePolicy } from '../config/policy-schema.js';
import { SWY_ERR_SCENARIO_INVALID } from '../errors.js';
import { latencySchema, type LatencyDistribution } from './distributions.js';

const armSchema = z.strictObject({
  /** Share of this arm's requests that fail (answered 503). */
  errorRate: z.number().min(0).max(1).default(0),
  latencyMs: latencySchema,
});

const changeSchema = z
  .strictObject({
    atSeconds: z.number().min(0),
    /** The arm whose errorRate or latencyMs change (required with either). */
    arm: z.string().min(1).optional(),
    errorRate: z.number().min(0).max(1).optional(),
    latencyMs: latencySchema.optional(),
    /** A new request rate for all traffic from this time on. */
    ratePerSecond: z.number().gt(0).max(1_000_000).optional(),
  })
  .superRefine((change, ctx) => {
    const armChange = change.errorRate !== undefined || change.latencyMs !== undefined;
    if (armChange && change.arm === undefined) ctx.addIssue({ code: 'custom', path: ['arm'], message: 'name the arm whose errorRate or latencyMs changes' });
    if (!armChange && change.ratePerSecond === undefined) ctx.addIssue({ code: 'custom', path: [], message: 'a change sets errorRate or latencyMs (with arm), or ratePerSecond' });
  });

/** A scenario as written (JSON or YAML). */
export const scenarioSchema = z.strictObject({
  /** A policy file (YAML or JSON, relative to the scenario file) or the policy object inline. */
  policy: z.union([z.string().min(1), z.record(z.string(), z.unknown())], { error: 'must be a path to a policy file (YAML or JSON, relative to the scenario file) or the policy object inline' }),
  /** The simulated route; optional when the policy has one route. */
  route: z.string().min(1).optional(),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  replicates: z.number().int().min(1).max(1_000_000).default(100),
  durationSeconds: z.number().gt(0).max(30 * 86_400),
  ratePerSecond: z.number().gt(0).max(1_000_000),
  /** The controller's cadence (SWITCHYARD_CONTROL_INTERVAL_MS); virtual time advances in these steps. */
  controlIntervalMs: z.number().int().min(1).max(60_000).default(250),
  /**
   * A fixed population of sticky users whose activity weights are lognormal with this sigma. Without it every request
   * comes without a key, so the data plane buckets it at random and it is its own randomisation unit.
   */
  users: z
    .strictObject({
      count: z.number().int().min(1).max(10_000_000),
      activitySigma: z.number().min(0).max(5).default(0),
    })
    .optional(),
  /** Every arm of the route (champion and challengers) by name. */
  arms: z.record(z.string(), armSchema),
  changes: z.array(changeSchema).default([]),
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
type Scenario = z.infer<typeof scenarioSchema>;

/** One arm's behaviour. */
export interface ArmModel {
  errorRate: number;
  latencyMs: LatencyDistribution;
}

/** A change at a point of virtual time. */
export interface ScenarioChange {
  atSeconds: number;
  arm: string | null;
  errorRate: number | null;
  latencyMs: LatencyDistribution | null;
  ratePerSecond: number | null;
}

/** A validated scenario with its policy loaded: plain data, so it travels to worker threads as is. */
export interface ResolvedScenario {
  /** Where it came from (for messages). */
  source: string;
  policy: Policy;
  policyVersion: string;
  route: string;
  seed: number;
  replicates: number;
  durationSeconds: number;
  ratePerSecond: number;
  controlIntervalMs: number;
  users: { count: number; activitySigma: number } | null;
  arms: Record<string, ArmModel>;
  /** Sorted by time. */
  changes: ScenarioChange[];
}

function invalid(problems: readonly PolicyProblem[]): Error {
  const err = new SWY_ERR_SCENARIO_INVALID(formatProblems(problems));
  (err as Error & { problems?: readonly PolicyProblem[] }).problems = problems;
  return err;
}

/** Validates a scenario object; every problem names its field and, where it helps, what is allowed. */
export function parseScenario(input: unknown, source: string): Scenario {
  const result = scenarioSchema.safeParse(input);
  if (result.success) return result.data;
  throw invalid(
    result.error.issues.map((issue) => {
      const where = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] ?? ''] : issue.path;
      const problem: PolicyProblem = { file: source, path: formatPath(where as PropertyKey[]), message: issue.message };
      const allowed = allowedFor(issue, scenarioSchema);
      if (allowed) problem.allowed = allowed;
      return problem;
    }),
  );
}

/** The policy behind `policy`: a file relative to `baseDir` (the project's loader), or an inline object (the same validation). */
async function resolvePolicy(policy: Scenario['policy'], baseDir: string, source: string): Promise<{ policy: Policy; version: string }> {
  if (typeof policy === 'string') {
    const loaded = await loadPolicy(path.resolve(baseDir, policy));
    return { policy: loaded.policy, version: loaded.version };
  }
  // JSON is YAML, so the loader's own validation and problem listing apply; its line numbers would be meaningless here.
  const checked = validatePolicyText(source, JSON.stringify(policy));
  if (!checked.policy) throw invalid(checked.problems.map(({ line: _line, ...p }) => ({ ...p, path: p.path === '(top level)' ? 'policy' : `policy.${p.path}` })));
  return { policy: checked.policy, version: 'inline' };
}

function routeOf(policy: Policy, wanted: string | undefined, source: string): RoutePolicy {
  const names = policy.routes.map((r) => r.name);
  if (wanted === undefined) {
    if (policy.routes.length === 1) return policy.routes[0]!;
    throw invalid([{ file: source, path: 'route', message: `required: the policy has ${names.length} routes`, allowed: `one of: ${names.join(', ')}` }]);
  }
  const found = policy.routes.find((r) => r.name === wanted);
  if (!found) throw invalid([{ file: source, path: 'route', message: `the policy has no route "${wanted}"`, allowed: `one of: ${names.join(', ')}` }]);
  return found;
}

/** Checks the scenario against its policy (every arm of the route described, no unknown arm) and returns it resolved. */
export async function resolveScenario(input: unknown, options: { baseDir: string; source: string }): Promise<ResolvedScenario> {
  const scenario = parseScenario(input, options.source);
  const { policy, version } = await resolvePolicy(scenario.policy, options.baseDir, options.source);
  const route = routeOf(policy, scenario.route, options.source);
  const armNames = [route.champion.name, ...route.challengers.map((c) => c.name)];
  const allowed = `the arms of route ${route.name}: ${armNames.join(', ')}`;
  const problems: PolicyProblem[] = [];
  for (const name of armNames) {
    if (!(name in scenario.arms)) problems.push({ file: options.source, path: `arms.${name}`, message: `missing: describe arm "${name}" with errorRate and latencyMs`, allowed });
  }
  for (const name of Object.keys(scenario.arms)) {
    if (!armNames.includes(name)) problems.push({ file: options.source, path: `arms.${name}`, message: `"${name}" is not an arm of route ${route.name}`, allowed });
  }
  scenario.changes.forEach((change, i) => {
    if (change.arm !== undefined && !armNames.includes(change.arm)) problems.push({ file: options.source, path: `changes[${i}].arm`, message: `"${change.arm}" is not an arm of route ${route.name}`, allowed });
    if (change.atSeconds > scenario.durationSeconds) problems.push({ file: options.source, path: `changes[${i}].atSeconds`, message: `${change.atSeconds} is after the end of the scenario`, allowed: `at most durationSeconds (${scenario.durationSeconds})` });
  });
  if (problems.length > 0) throw invalid(problems);
  return {
    source: options.source,
    policy: { routes: [route] },
    policyVersion: version,
    route: route.name,
    seed: scenario.seed,
    replicates: scenario.replicates,
    durationSeconds: scenario.durationSeconds,
    ratePerSecond: scenario.ratePerSecond,
    controlIntervalMs: scenario.controlIntervalMs,
    users: scenario.users ?? null,
    arms: Object.fromEntries(armNames.map((name) => [name, { errorRate: scenario.arms[name]!.errorRate, latencyMs: scenario.arms[name]!.latencyMs }])),
    changes: scenario.changes
      .map((c) => ({ atSeconds: c.atSeconds, arm: c.arm ?? null, errorRate: c.errorRate ?? null, latencyMs: c.latencyMs ?? null, ratePerSecond: c.ratePerSecond ?? null }))
      .sort((a, b) => a.atSeconds - b.atSeconds),
  };
}

/** Reads a scenario file (JSON, or YAML by extension); a policy path in it is relative to the file. */
export async function loadScenario(file: string): Promise<ResolvedScenario> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw invalid([{ file, path: '(file)', message: `cannot read: ${(err as Error).message}` }]);
  }
  let input: unknown;
  try {
    input = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw invalid([{ file, path: '(syntax)', message: (err as Error).message.split('\n')[0] ?? String(err) }]);
  }
  return resolveScenario(input, { baseDir: path.dirname(path.resolve(file)), source: file });
}
