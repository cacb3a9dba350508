// Test helper: runs the built `switchyard` CLI (dist/src/cli.js) as a real process and collects its output.
import { spawn } from 'node:child_process';
import path from 'node:path';

/** Runs `switchyard <args>` with extra env; resolves with the exit code and both outputs. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('dist/src/cli.js'), ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
