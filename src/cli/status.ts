// `switchyard status [route]`: every route's live split (or one route in detail) from the admin API.
import { parseArgs } from 'node:util';
import { adminClientFrom, adminOptions, adminOptionsUsage, reportCallError } from './admin-client.js';
import { routeDetail, routesTable } from './table.js';

const usage = `Usage: switchyard status [route] [--watch] [--interval S] [--admin-url URL] [--json]
Shows each route's split: source (policy, flag, override, bootstrap, rollback), flag freshness, shares and state
(the controller's phase, e.g. awaiting_approval, and paused / rolled back).
  --watch, -w      redraw every S seconds until Ctrl-C (exit 0); with --json, one JSON document per line per redraw
  --interval S     seconds between redraws with --watch (default 2; fractions allowed, at least 0.1)
${adminOptionsUsage}`;

/** Clears the terminal and moves the cursor home, so each frame replaces the last one. */
const CLEAR = '\x1b[H\x1b[2J';

export async function statusCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...adminOptions, watch: { type: 'boolean', short: 'w' }, interval: { type: 'string' } }, allowPositionals: true, strict: true });
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
  const seconds = Number(parsed.values.interval ?? '2');
  if (!Number.isFinite(seconds) || seconds < 0.1) {
    console.error(`switchyard status: --interval must be a number of seconds of at least 0.1, got "${parsed.values.interval}"`);
    return 2;
  }
  const client = adminClientFrom(parsed.values, env);
  const name = parsed.positionals[0];
  const json = parsed.values.json === true;
  const frame = async (indent: number | undefined): Promise<string> => {
    if (name === undefined) {
      const routes = await client.routes();
      return json ? JSON.stringify({ routes }, null, indent) : routesTable(routes);
    }
    const route = await client.route(name);
    return json ? JSON.stringify(route, null, indent) : routeDetail(route);
  };
  if (!parsed.values.watch) {
    try {
      console.log(await frame(2));
      return 0;
    } catch (err) {
      return reportCallError('status', err);
    }
  }
  return watch(frame, seconds * 1000, json, client.baseUrl);
}

/**
 * Redraws until SIGINT or SIGTERM (exit 0). A failed call shows its error in the frame and the watch goes on, so a
 * restarting server does not end it. On a terminal each frame replaces the last; otherwise frames follow each other.
 */
async function watch(frame: (indent: number | undefined) => Promise<string>, intervalMs: number, json: boolean, adminUrl: string): Promise<number> {
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const tty = process.stdout.isTTY === true && !json;
  let running = true;
  void stopped.then(() => (running = false));
  try {
    while (running) {
      let body: string;
      try {
        body = await frame(json ? undefined : 2);
      } catch (err) {
        body = json ? JSON.stringify({ error: { code: (err as { code?: string }).code ?? 'error', message: (err as Error).message } }) : `error: ${(err as Error).message}`;
      }
      if (!running) break;
      if (json) process.stdout.write(`${body}\n`);
      else {
        const header = `switchyard status, ${adminUrl}, ${new Date().toISOString()} (every ${intervalMs / 1000} s; Ctrl-C to stop)`;
        process.stdout.write(`${tty ? CLEAR : '\n'}${header}\n\n${body}\n`);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stopped, new Promise((resolve) => (timer = setTimeout(resolve, intervalMs)))]);
      clearTimeout(timer);
    }
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  return 0;
}
