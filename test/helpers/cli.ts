// Test helper: runs the built `switchyard` CLI (dist/src/cli.js) as a real process and collects its output.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

const cli = path.resolve('dist/src/cli.js');

/** Runs `switchyard <args>` with extra env; resolves with the exit code and both outputs. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** One JSON line of the router's log (pino). */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A running `switchyard serve` child. */
export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  dataUrl: string;
  adminUrl: string;
  /** Every log line the child has written so far (read on, so the child never blocks on a full pipe). */
  lines: LogLine[];
}

/**
 * Starts `switchyard serve --config <policy>` on free loopback ports with exactly `env` (callers pass PATH and the
 * SWITCHYARD_* they want; SWITCHYARD_LOG_LEVEL should be info or lower), and resolves with its URLs from the
 * "switchyard listening" log line. Rejects, naming `label` and quoting stderr, if the child exits first.
 */
export async function startServe(policyFile: string, env: NodeJS.ProcessEnv, label = 'switchyard serve'): Promise<ServeProcess> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const child = spawn(process.execPath, [cli, 'serve', '--config', policyFile, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'], { env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const lines: LogLine[] = [];
  let listening: (line: LogLine) => void = () => undefined;
  const listened = new Promise<LogLine>((resolve) => (listening = resolve));
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as LogLine;
    lines.push(line);
    if (line.msg === 'switchyard listening') listening(line);
  });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`${label} exited (${String(code)}) before listening: ${stderr}${JSON.stringify(lines.slice(-5))}`);
  });
  const line = await Promise.race([listened, exited]);
  exited.catch(() => undefined);
  return { child, dataUrl: line.dataUrl as string, adminUrl: line.adminUrl as string, lines };
}
