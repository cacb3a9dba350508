// `switchyard rollback <route>` and `switchyard analysis <route>`: the controller's decisions, over the admin API.
import { parseArgs } from 'node:util';
import type { RouteAnalysis } from '../control/controller.js';
import { adminClientFrom, adminOptions, adminOptionsUsage, reportCallError } from './admin-client.js';
import { renderTable } from './table.js';

const fmt = (x: number | null | undefined, digits = 4) => (x === null || x === undefined ? '-' : !Number.isFinite(x) ? String(x) : Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(digits) : x.toExponential(2));

/** Renders an analysis as the human table: arms, then one row per guardrail with its evidence. */
export function analysisText(a: RouteAnalysis): string {
  const head = `route ${a.route}: ${a.decision}${a.rollbackReason ? ` (rolled back: ${a.rollbackReason})` : ''}; challenger ${a.challenger ?? '-'} at ${a.servedPercent}%${a.step ? `; step ${a.step.index + 1}/${a.step.of.length} (${a.step.of.join(' → ')})` : ''}; SRM p ${fmt(a.srm.pValue)}`;
  const arms = renderTable(['arm', 'role', 'requests', 'failures', 'error rate', 'median ms'], a.arms.map((arm) => [arm.name, arm.role, String(arm.requests), String(arm.failures), arm.errorRate === null ? '-' : `${(arm.errorRate * 100).toFixed(2)}%`, fmt(arm.medianLatencyMs, 2)]));
  const guardrails = renderTable(
    ['guardrail', 'state', 'n (champ/chal)', 'estimate', 'always-valid CI', 'p', 'threshold', 'why'],
    a.guardrails.map((g) => [g.name, g.state, `${g.nChampion}/${g.nChallenger}`, fmt(g.estimate), g.csLower === null ? '-' : `${fmt(g.csLower)} .. ${fmt(g.csUpper)}`, fmt(g.pValue), fmt(g.threshold), g.reason]),
  );
  return `${head}\n\n${arms}\n\n${guardrails}`;
}

function parse(command: string, args: string[]) {
  const usage = `Usage: switchyard ${command} <route> [--token T] [--admin-url URL] [--json]\n${adminOptionsUsage}`;
  const parsed = parseArgs({ args, options: adminOptions, allowPositionals: true, strict: true });
  if (parsed.values.help) return { usage, help: true as const };
  if (parsed.positionals.length !== 1) throw new Error(`expected exactly one <route>\n\n${usage}`);
  return { usage, help: false as const, route: parsed.positionals[0]!, values: parsed.values };
}

async function run(command: 'rollback' | 'analysis', args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let parsed;
  try {
    parsed = parse(command, args);
  } catch (err) {
    console.error(`switchyard ${command}: ${(err as Error).message}`);
    return 2;
  }
  if (parsed.help) {
    console.log(parsed.usage);
    return 0;
  }
  try {
    const client = adminClientFrom(parsed.values, env);
    if (command === 'rollback') {
      const result = await client.rollback(parsed.route);
      if (parsed.values.json) console.log(JSON.stringify(result, null, 2));
      else console.log(`${parsed.route}: ${result.changed ? 'rolled back; the challenger serves 0% until `switchyard resume`' : 'already rolled back; nothing changed'}\n\n${analysisText(result.analysis)}`);
    } else {
      const analysis = await client.analysis(parsed.route);
      console.log(parsed.values.json ? JSON.stringify(analysis, null, 2) : analysisText(analysis));
    }
    return 0;
  } catch (err) {
    return reportCallError(command, err);
  }
}

export const rollbackCommand = (args: string[], env: NodeJS.ProcessEnv = process.env) => run('rollback', args, env);
export const analysisCommand = (args: string[], env: NodeJS.ProcessEnv = process.env) => run('analysis', args, env);
