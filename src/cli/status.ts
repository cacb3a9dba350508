// `switchyard status [route]`: every route's live split (or one route in detail) from the admin API.
import { parseArgs } from 'node:util';
import { adminClientFrom, adminOptions, adminOptionsUsage, reportCallError } from './admin-client.js';
import { routeDetail, routesTable } from './table.js';

const usage = `Usage: switchyard status [route] [--admin-url URL] [--json]
Shows each route's split: source (policy, flag, override, bootstrap, rollback), flag freshness, shares and state.
${adminOptionsUsage}`;

export async function statusCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: adminOptions, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`switchyard status: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage);
    return 0;
  }
  if (parsed.positionals.length > 1) {
    console.error(`switchyard status: expected at most one route, got ${parsed.positionals.length}\n\n${usage}`);
    return 2;
  }
  const client = adminClientFrom(parsed.values, env);
  const name = parsed.positionals[0];
  try {
    if (name === undefined) {
      const routes = await client.routes();
      console.log(parsed.values.json ? JSON.stringify({ routes }, null, 2) : routesTable(routes));
    } else {
      const route = await client.route(name);
      console.log(parsed.values.json ? JSON.stringify(route, null, 2) : routeDetail(route));
    }
    return 0;
  } catch (err) {
    return reportCallError('status', err);
  }
}
