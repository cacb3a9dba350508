// `switchyard pause <route>`: hold a route's progressive rollout at its current step (traffic keeps its split).
import { parseArgs } from 'node:util';
import { adminClientFrom, adminOptions, adminOptionsUsage, printWarnings, reportCallError, type AdminApiClient, type ToggleResult } from './admin-client.js';
import { routesTable } from './table.js';

/** Runs pause or resume: same arguments, same output. */
export async function toggleCommand(
  command: 'pause' | 'resume',
  summary: string,
  call: (client: AdminApiClient, route: string) => Promise<ToggleResult>,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const usage = `Usage: switchyard ${command} <route> [--token T] [--admin-url URL] [--json]\n${summary}\n${adminOptionsUsage}`;
  let parsed;
  try {
    parsed = parseArgs({ args, options: adminOptions, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`switchyard ${command}: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage);
    return 0;
  }
  const [route, ...extra] = parsed.positionals;
  if (route === undefined || extra.length > 0) {
    console.error(`switchyard ${command}: expected exactly one <route>\n\n${usage}`);
    return 2;
  }
  try {
    const result = await call(adminClientFrom(parsed.values, env), route);
    if (parsed.values.json) console.log(JSON.stringify(result, null, 2));
    else console.log(`${route}: ${result.changed ? `${command}d (audit event ${result.eventId})` : `already ${command === 'pause' ? 'paused' : 'running'}; nothing changed`}\n\n${routesTable([result.route])}`);
    printWarnings(result);
    return 0;
  } catch (err) {
    return reportCallError(command, err);
  }
}

export function pauseCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return toggleCommand('pause', 'Holds the route\'s progressive rollout at its current step; traffic keeps flowing as split.', (c, r) => c.pause(r), args, env);
}
