// `switchyard approve <route>` and `switchyard promote <route>`: a person lets a rollout through its gate, or promotes now.
import { parseArgs } from 'node:util';
import { adminClientFrom, adminOptions, adminOptionsUsage, printWarnings, reportCallError } from './admin-client.js';
import { analysisText } from './control.js';

const approveUsage = `Usage: switchyard approve <route> [--step N|promote] [--note TEXT] [--token T] [--admin-url URL] [--json]
Lets the route's rollout through the approval gate it waits at (phase awaiting_approval): it enters the next step
(or promotes) at the controller's next tick. --step names the gate you mean (the step index shown by
\`switchyard analysis\`, or "promote"), so an approval cannot open a later gate than the one you looked at.
${adminOptionsUsage}`;

const promoteUsage = `Usage: switchyard promote <route> [--note TEXT] [--token T] [--admin-url URL] [--json]
Promotes the route's canary or ab challenger now: it serves 100 % in its mode, skipping the remaining rollout steps
and gates, and the controller stops moving the route. A shadow challenger must be served as a canary first; a rolled
back route must be resumed first.
${adminOptionsUsage}`;

function parse(command: string, args: string[], usage: string, extra: Record<string, { type: 'string' }>) {
  const parsed = parseArgs({ args, options: { ...adminOptions, note: { type: 'string' }, ...extra }, allowPositionals: true, strict: true });
  if (parsed.values.help) return { help: true as const };
  if (parsed.positionals.length !== 1) throw new Error(`expected exactly one <route>\n\n${usage}`);
  return { help: false as const, route: parsed.positionals[0]!, values: parsed.values as typeof parsed.values & { step?: string; note?: string } };
}

export async function approveCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parse('approve', args, approveUsage, { step: { type: 'string' } });
  } catch (err) {
    console.error(`switchyard approve: ${(err as Error).message}`);
    return 2;
  }
  if (parsed.help) {
    console.log(approveUsage);
    return 0;
  }
  const stepText = parsed.values.step;
  if (stepText !== undefined && stepText !== 'promote' && !/^\d+$/.test(stepText)) {
    console.error(`switchyard approve: --step must be a step index (0, 1, ...) or "promote", got "${stepText}"`);
    return 2;
  }
  const step = stepText === undefined ? undefined : stepText === 'promote' ? 'promote' : Number(stepText);
  try {
    const result = await adminClientFrom(parsed.values, env).approve(parsed.route, { ...(step !== undefined ? { step } : {}), ...(parsed.values.note !== undefined ? { note: parsed.values.note } : {}) });
    if (parsed.values.json) console.log(JSON.stringify(result, null, 2));
    else {
      const waiting = result.approval.waitingFor.length === 0 ? 'it goes on at the next tick' : `it still waits for the ${result.approval.waitingFor.join(' and ')}`;
      console.log(`${parsed.route}: approved ${result.approval.step === 'promote' ? 'the promotion' : `step ${result.approval.step} (${result.approval.percent} %)`} as ${result.approval.approvedBy ?? '?'} (audit event ${result.eventId}); ${waiting}`);
    }
    return 0;
  } catch (err) {
    return reportCallError('approve', err);
  }
}

export async function promoteCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parse('promote', args, promoteUsage, {});
  } catch (err) {
    console.error(`switchyard promote: ${(err as Error).message}`);
    return 2;
  }
  if (parsed.help) {
    console.log(promoteUsage);
    return 0;
  }
  try {
    const result = await adminClientFrom(parsed.values, env).promote(parsed.route, parsed.values.note !== undefined ? { note: parsed.values.note } : {});
    if (parsed.values.json) console.log(JSON.stringify(result, null, 2));
    else console.log(`${parsed.route}: ${result.changed ? `promoted ${result.challenger ?? ''}: it serves 100 % (audit event ${String(result.eventId)})` : 'already promoted; nothing changed'}\n\n${analysisText(result.analysis)}`);
    printWarnings(result);
    return 0;
  } catch (err) {
    return reportCallError('promote', err);
  }
}
