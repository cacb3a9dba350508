// `switchyard set <route> <challenger> <percent> [--mode canary|ab|shadow]`: change a split through the admin API.
import { parseArgs } from 'node:util';
import { challengerModes } from '../config/policy-schema.js';
import { adminClientFrom, adminOptions, adminOptionsUsage, printWarnings, reportCallError } from './admin-client.js';
import { routesTable } from './table.js';

const usage = `Usage: switchyard set <route> <challenger> <percent> [--mode ${challengerModes.join('|')}] [--token T] [--admin-url URL] [--json]
Sets the challenger's share of the route. Flag-driven routes are changed in Unleash (every replica follows);
other routes get a local override on this instance (persisted across restarts).
${adminOptionsUsage}`;

export async function setCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...adminOptions, mode: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`switchyard set: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage);
    return 0;
  }
  const [route, challenger, percentText, ...extra] = parsed.positionals;
  if (route === undefined || challenger === undefined || percentText === undefined || extra.length > 0) {
    console.error(`switchyard set: expected <route> <challenger> <percent>\n\n${usage}`);
    return 2;
  }
  const percent = Number(percentText.replace(/%$/, ''));
  if (!/^\d+%?$/.test(percentText) || !Number.isInteger(percent) || percent < 0 || percent > 100) {
    console.error(`switchyard set: percent must be a whole number from 0 to 100, got "${percentText}"`);
    return 2;
  }
  const mode = parsed.values.mode;
  if (mode !== undefined && !(challengerModes as readonly string[]).includes(mode)) {
    console.error(`switchyard set: --mode must be one of ${challengerModes.join(', ')}, got "${mode}"`);
    return 2;
  }
  const client = adminClientFrom(parsed.values, env);
  try {
    const result = await client.setSplit(route, { challenger, percent, ...(mode === undefined ? {} : { mode }) });
    if (parsed.values.json) {
      console.log(JSON.stringify(result, null, 2));
    } else {
      const where = result.change.kind === 'unleash'
        ? `written to Unleash flag ${result.change.flag} (${result.change.environment}, ${result.change.operation}); every replica follows within its refresh interval`
        : 'local override on this instance';
      console.log(`${route}: ${challenger} ${result.change.mode} ${percent}% — ${where} (audit event ${result.eventId})\n\n${routesTable([result.route])}`);
    }
    printWarnings(result);
    return 0;
  } catch (err) {
    return reportCallError('set', err);
  }
}
