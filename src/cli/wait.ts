// `switchyard wait <route> --for ...`: polls the route's analysis until an outcome, for CI pipelines (the exit code says which).
import { parseArgs } from 'node:util';
import type { RouteAnalysis } from '../control/controller.js';
import { adminClientFrom, adminOptions, type AdminCallError } from './admin-client.js';

/** Exit codes of `switchyard wait`. */
export const waitExit = { reached: 0, otherOutcome: 1, timeout: 2, error: 3 } as const;

const usage = `Usage: switchyard wait <route> --for promoted|rolled-back|awaiting-approval|step=N [--timeout 10m] [--interval 1s]
                       [--admin-url URL] [--json]
Waits until the route reaches the outcome, polling GET /v1/routes/<route>/analysis.
  --for promoted            the challenger was promoted (phase promoted)
  --for rolled-back         the route was rolled back (phase rolled_back)
  --for awaiting-approval   the rollout waits at an approval gate (then: switchyard approve)
  --for step=N              the rollout entered step N (the 0-based step index of the analysis) or a later one
  --timeout D               give up after D (500ms, 30s, 10m, 1h; a bare number is seconds; default 10m)
  --interval D              time between polls (default 1s)
Exit codes: 0 reached; 1 another final outcome came first (rolled back while waiting for promoted or a step, promoted
while waiting for rolled-back or awaiting-approval); 2 timed out; 3 error (bad arguments, unknown route, the admin API
unreachable at the start or at the timeout).`;

/** What to wait for. */
export type WaitTarget = { kind: 'promoted' } | { kind: 'rolled_back' } | { kind: 'awaiting_approval' } | { kind: 'step'; index: number };

/** Parses --for; null when it is none of the documented forms. */
export function parseTarget(text: string): WaitTarget | null {
  if (text === 'promoted') return { kind: 'promoted' };
  if (text === 'rolled-back' || text === 'rolled_back') return { kind: 'rolled_back' };
  if (text === 'awaiting-approval' || text === 'awaiting_approval') return { kind: 'awaiting_approval' };
  const step = /^step=(\d+)$/.exec(text);
  return step ? { kind: 'step', index: Number(step[1]) } : null;
}

/** Parses 500ms, 30s, 10m, 1h or a bare number of seconds into ms; null when it is none of these. */
export function parseDuration(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return null;
  const unit = match[2] ?? 's';
  return Math.round(Number(match[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1_000 : unit === 'm' ? 60_000 : 3_600_000));
}

/**
 * Whether the analysis shows the target reached, another final outcome (promoted and rolled_back end a rollout), or
 * neither yet. A promoted route has passed every step, so it reaches any step=N.
 */
export function waitOutcome(target: WaitTarget, a: Pick<RouteAnalysis, 'phase' | 'step'>): 'reached' | 'other' | 'pending' {
  switch (target.kind) {
    case 'promoted':
      return a.phase === 'promoted' ? 'reached' : a.phase === 'rolled_back' ? 'other' : 'pending';
    case 'rolled_back':
      return a.phase === 'rolled_back' ? 'reached' : a.phase === 'promoted' ? 'other' : 'pending';
    case 'awaiting_approval':
      return a.phase === 'awaiting_approval' ? 'reached' : a.phase === 'rolled_back' || a.phase === 'promoted' ? 'other' : 'pending';
    case 'step':
      if (a.phase === 'rolled_back') return 'other';
      if (a.phase === 'promoted') return 'reached';
      return a.step !== null && a.step.index >= target.index ? 'reached' : 'pending';
  }
}

const describe = (a: Pick<RouteAnalysis, 'phase' | 'step' | 'servedPercent'>) => `${a.phase}${a.step ? ` at step ${a.step.index} (${a.step.percent} %)` : ''}, challenger serving ${a.servedPercent} %`;

export async function waitCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...adminOptions, for: { type: 'string' }, timeout: { type: 'string' }, interval: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`switchyard wait: ${(err as Error).message}\n\n${usage}`);
    return waitExit.error;
  }
  if (parsed.values.help) {
    console.log(usage);
    return 0;
  }
  const problems: string[] = [];
  if (parsed.positionals.length !== 1) problems.push('expected exactly one <route>');
  const target = parsed.values.for === undefined ? null : parseTarget(parsed.values.for);
  if (target === null) problems.push(parsed.values.for === undefined ? '--for is required' : `--for must be promoted, rolled-back, awaiting-approval or step=N, got "${parsed.values.for}"`);
  const timeoutMs = parseDuration(parsed.values.timeout ?? '10m');
  if (timeoutMs === null) problems.push(`--timeout must be a duration such as 30s, 10m or 1h, got "${parsed.values.timeout}"`);
  const intervalMs = parseDuration(parsed.values.interval ?? '1s');
  if (intervalMs === null || intervalMs < 10) problems.push(`--interval must be a duration of at least 10ms such as 500ms or 2s, got "${parsed.values.interval}"`);
  if (problems.length > 0 || target === null || timeoutMs === null || intervalMs === null) {
    console.error(`switchyard wait: ${problems.join('; ')}\n\n${usage}`);
    return waitExit.error;
  }
  const route = parsed.positionals[0]!;
  const client = adminClientFrom(parsed.values, env);
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last: RouteAnalysis | null = null;
  let lastError: AdminCallError | null = null;
  let shown = '';
  const finish = (code: number, line: string): number => {
    if (parsed.values.json) console.log(JSON.stringify({ route, for: parsed.values.for, result: Object.keys(waitExit).find((k) => waitExit[k as keyof typeof waitExit] === code), elapsedMs: Date.now() - started, analysis: last }, null, 2));
    else (code === waitExit.reached ? console.log : console.error)(`switchyard wait: ${line}`);
    return code;
  };
  for (;;) {
    try {
      last = await client.analysis(route);
      lastError = null;
    } catch (err) {
      const e = err as AdminCallError;
      // An unknown route, a refused call or a non-JSON answer will not change by waiting; an unreachable API may.
      if (e.code !== 'SWY_CLI_UNREACHABLE' || last === null) return finish(waitExit.error, `${route}: ${e.message}`);
      lastError = e;
    }
    if (last !== null && lastError === null) {
      const now = describe(last);
      if (now !== shown && !parsed.values.json) console.log(`${route}: ${now}`);
      shown = now;
      const outcome = waitOutcome(target, last);
      const after = `after ${((Date.now() - started) / 1000).toFixed(1)} s`;
      if (outcome === 'reached') return finish(waitExit.reached, `${route}: reached ${parsed.values.for} ${after}`);
      if (outcome === 'other') return finish(waitExit.otherOutcome, `${route}: ${last.phase} ${after}, so ${parsed.values.for} cannot be reached${last.rollbackReason ? ` (rolled back: ${last.rollbackReason})` : ''}`);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      if (lastError !== null) return finish(waitExit.error, `${route}: ${lastError.message}`);
      return finish(waitExit.timeout, `${route}: timed out after ${parsed.values.timeout ?? '10m'} waiting for ${parsed.values.for}; it is ${shown}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
}
