// `switchyard rollback <route>` and `switchyard analysis <route>`: the controller's decisions, over the admin API.
import { parseArgs } from 'node:util';
import type { RouteAnalysis } from '../control/controller.js';
import type { AbReport, ShadowGateReport } from '../control/experiment-report.js';
import { adminClientFrom, adminOptions, adminOptionsUsage, printWarnings, reportCallError } from './admin-client.js';
import { renderTable } from './table.js';
import type { DivergenceReport } from '../analysis/divergence.js';
import type { DriftResult } from '../analysis/drift.js';

const fmt = (x: number | null | undefined, digits = 4) => (x === null || x === undefined ? '-' : !Number.isFinite(x) ? String(x) : Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(digits) : x.toExponential(2));
const percent = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(digits)}%`);
/** A difference of two rates in percentage points, signed ("+4.0 pts"). */
const points = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${x > 0 ? '+' : ''}${(x * 100).toFixed(1)} pts`);

/** One line on Redis coordination: status, this replica and its role, the leader, how many replicas pool, the epoch. */
export function coordinationLine(a: RouteAnalysis): string {
  if (a.coordination === 'off') return `coordination off: replica ${a.instanceId} decides alone (no Redis)`;
  const parts = [`replica ${a.instanceId} is ${a.role}`];
  if (a.leader !== null) parts.push(`leader ${a.leader}`);
  else if (a.coordination === 'ok') parts.push('no leader yet');
  parts.push(a.counts.replicas !== null ? `statistics pooled over ${a.counts.replicas} replica${a.counts.replicas === 1 ? '' : 's'}` : 'statistics not pooled (this replica only)');
  if (a.epoch !== null) parts.push(`epoch ${a.epoch}`);
  const note = a.coordination === 'degraded' ? ' (Redis unreachable or slow: deciding on own statistics, rollback only, rollout steps wait)' : a.coordination === 'starting' ? ' (no exchange with Redis yet)' : '';
  return `coordination ${a.coordination === 'degraded' ? 'DEGRADED' : a.coordination}${note}: ${parts.join('; ')}`;
}

/** One line per shadow challenger: whether it is ready for a canary, its agreement with the champion and why. */
export function shadowGateLine(g: ShadowGateReport): string {
  const agreement = `agreement ${percent(g.agreement.rate)} of ${g.agreement.of} parsed pair${g.agreement.of === 1 ? '' : 's'}${g.agreementShared ? ' (all shadows of the route)' : ''}, max disagreement ${percent(g.agreement.maxDisagreement)}`;
  return `shadow gate ${g.challenger}: ${g.ready ? 'ready' : 'not ready'}; ${agreement}; ${g.reason}`;
}

/** One line per ab challenger: the winner on labelled accuracy (or what is still missing). */
export function abWinnerLine(r: AbReport): string {
  const accuracy = (arm: AbReport['champion']) => `${arm.variant} ${arm.n > 0 ? percent(arm.correct / arm.n) : '-'} of ${arm.n}`;
  const arms = `accuracy ${accuracy(r.challenger)} vs ${accuracy(r.champion)} labelled`;
  switch (r.state) {
    case 'collecting':
      return `A/B ${r.challenger.variant} vs ${r.champion.variant}: collecting; ${arms} (${r.minLabelled} per arm needed)`;
    case 'no_winner_yet':
    case 'winner':
      return `A/B ${r.challenger.variant} vs ${r.champion.variant}: ${r.winner !== null ? `winner ${r.winner}` : 'no winner yet'}; ${arms}; difference ${points(r.estimate)} (always-valid CI ${points(r.csLower)} .. ${points(r.csUpper)}, alpha ${r.alpha})`;
  }
}

/** One line on the approval gate the route waits at: which step, since when, what for, and the command that approves it. */
export function approvalLine(a: RouteAnalysis): string | null {
  const g = a.approval;
  if (g === null || g === undefined) return null;
  const where = g.step === 'promote' ? 'before the promotion' : `before step ${g.step} (${g.percent} %)`;
  const parts: string[] = [];
  if (g.person) parts.push(g.approvedBy !== null ? `approved by ${g.approvedBy}` : `a person: \`switchyard approve ${a.route} --step ${String(g.step)}\``);
  if (g.webhook !== null) {
    const w = g.webhook;
    const last = w.lastStatus !== null ? `last answer ${w.lastStatus}` : w.lastError !== null ? `last ask failed (${w.lastError})` : 'not asked yet';
    parts.push(w.confirmed ? `confirmed by ${w.url}` : `the confirm webhook ${w.url} (${w.attempts} ask${w.attempts === 1 ? '' : 's'}, ${last})`);
  }
  const state = g.waitingFor.length === 0 ? 'approved, going on at the next tick' : `waiting since ${g.since} for ${g.waitingFor.join(' and ')}`;
  return `approval gate ${where}: ${state}; ${parts.join('; ')}`;
}

/**
 * Renders an analysis as the human table: the decision, Redis coordination, arms (with this replica's share when the
 * statistics are pooled), one row per guardrail with its evidence, then the shadow gates and A/B winners.
 */
/** One line per challenger compared with the champion's predictions (the route's `divergence` policy). */
export function divergenceLine(r: DivergenceReport): string {
  const floor = r.noiseFloor ? `; noise floor: ${r.noiseFloor.state} (disagreement ${percent(r.noiseFloor.disagreement)} vs ${percent(r.noiseFloor.floorDisagreement)} for ${r.noiseFloor.floor})` : '';
  return `divergence ${r.challenger} (${r.action}, ${r.compared}): ${r.state}; ${r.reason}${floor}`;
}

/** One line per judged drift window that drifted (the route's `drift` policy). */
export function driftLine(d: DriftResult): string {
  return `drift ${d.variant} ${d.feature}: window ${d.window} PSI ${d.psi.toFixed(3)} (threshold ${d.psiThreshold.toFixed(3)}), JS ${d.jensenShannon.toFixed(4)}; ${d.drifted ? 'drifted' : 'stable'}`;
}

export function analysisText(a: RouteAnalysis): string {
  const head = `route ${a.route}: ${a.decision}${a.rollbackReason ? ` (rolled back: ${a.rollbackReason})` : ''}; challenger ${a.challenger ?? '-'} at ${a.servedPercent}%${a.step ? `; step ${a.step.index + 1}/${a.step.of.length} (${a.step.of.join(' → ')})` : ''}; SRM p ${fmt(a.srm.pValue)}`;
  // Servers from before coordination answer without these fields.
  const coordination = a.coordination === undefined ? null : coordinationLine(a);
  const pooled = a.counts?.pooled ?? null;
  const local = new Map((a.counts?.local ?? []).map((arm) => [`${arm.role}:${arm.name}`, arm.requests]));
  const arms = renderTable(
    ['arm', 'role', 'requests', ...(pooled !== null ? ['this replica'] : []), 'failures', 'error rate', 'median ms'],
    a.arms.map((arm) => [
      arm.name, arm.role, String(arm.requests), ...(pooled !== null ? [String(local.get(`${arm.role}:${arm.name}`) ?? 0)] : []),
      String(arm.failures), arm.errorRate === null ? '-' : `${(arm.errorRate * 100).toFixed(2)}%`, fmt(arm.medianLatencyMs, 2),
    ]),
  );
  const guardrails = renderTable(
    ['guardrail', 'state', 'n (champ/chal)', 'estimate', 'always-valid CI', 'p', 'threshold', 'why'],
    a.guardrails.map((g) => [g.name, g.state, `${g.nChampion}/${g.nChallenger}`, fmt(g.estimate), g.csLower === null ? '-' : `${fmt(g.csLower)} .. ${fmt(g.csUpper)}`, fmt(g.pValue), fmt(g.threshold), g.reason]),
  );
  // Servers from before divergence and drift answer without these fields.
  const experiments = [...(a.shadowGates ?? []).map(shadowGateLine), ...(a.abWinners ?? []).map(abWinnerLine), ...(a.divergence ?? []).map(divergenceLine), ...(a.drift ?? []).map(driftLine)];
  const approval = approvalLine(a);
  return [[head, ...(approval !== null ? [approval] : []), ...(coordination !== null ? [coordination] : [])].join('\n'), arms, guardrails, ...(experiments.length > 0 ? [experiments.join('\n')] : [])].join('\n\n');
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
      printWarnings(result);
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
