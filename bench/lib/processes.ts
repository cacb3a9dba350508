// Child processes under test: start, wait until ready, and always stop them (also on error, Ctrl-C or exit).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { processTree } from './proc-stat.js';

/** A started child with its recent output kept for error messages. */
export interface Managed {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** Last lines the process wrote to stdout and stderr. */
  output(): string;
}

const outputTailBytes = 4_000;

/** Asks the kernel for a free TCP port on 127.0.0.1 (closed again before use, so another process could race us). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Owns every process the bench starts, so none outlives it. */
export class ProcessGroup {
  readonly #members: Managed[] = [];
  /** Descendants seen per root (nginx workers): killed too, since an orphaned worker keeps its port. */
  readonly #descendants = new Map<number, number[]>();
  #hooked = false;

  /** The processes still tracked. */
  get members(): readonly Managed[] {
    return this.#members;
  }

  /** Spawns a process and tracks it; stdin is closed, output is kept in a small ring. */
  start(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Managed {
    this.#hookExit();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-outputTailBytes);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      child.once('error', (err) => {
        keep(Buffer.from(`spawn failed: ${err.message}\n`));
        resolve('spawn-error');
      });
    });
    const managed: Managed = { name, pid: child.pid ?? -1, child, exited, output: () => tail };
    this.#members.push(managed);
    return managed;
  }

  /** Records the current descendants of a member (call once it is ready). */
  noteTree(member: Managed): number[] {
    const tree = processTree(member.pid);
    this.#descendants.set(member.pid, tree.slice(1));
    return tree;
  }

  /** Stops one member: SIGTERM, then SIGKILL for it and its recorded descendants after `graceMs`. */
  async stop(member: Managed, graceMs = 3_000): Promise<void> {
    const index = this.#members.indexOf(member);
    if (index === -1) return;
    this.#members.splice(index, 1);
    const family = [...processTree(member.pid).slice(1), ...(this.#descendants.get(member.pid) ?? [])];
    if (member.child.exitCode === null && member.child.signalCode === null) {
      member.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([member.exited, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      if (member.child.exitCode === null && member.child.signalCode === null) member.child.kill('SIGKILL');
    }
    for (const pid of new Set(family)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    this.#descendants.delete(member.pid);
  }

  /** Stops every member (in reverse start order: proxies before origins). */
  async stopAll(): Promise<void> {
    for (const member of [...this.#members].reverse()) await this.stop(member);
  }

  /** Synchronous last resort for process 'exit': SIGKILL everything still tracked. */
  killAllSync(): void {
    for (const member of this.#members) {
      for (const pid of [member.pid, ...(this.#descendants.get(member.pid) ?? [])]) {
        if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
      }
    }
    this.#members.length = 0;
  }

  #hookExit(): void {
    if (this.#hooked) return;
    this.#hooked = true;
    process.once('exit', () => this.killAllSync());
  }
}

/**
 * Runs `body` with a new ProcessGroup and a scratch directory (`<tmp>/<scratchPrefix>XXXXXX`); afterwards every process
 * it started is stopped and the directory removed, also on an error, and on SIGINT or SIGTERM (then exit code 130).
 */
export async function withProcessGroup<T>(scratchPrefix: string, body: (group: ProcessGroup, dir: string) => Promise<T>, log: (line: string) => void = console.error): Promise<T> {
  const group = new ProcessGroup();
  const onSignal = (signal: NodeJS.Signals) => {
    log(`\n${signal}: stopping the processes under test`);
    void group.stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const dir = mkdtempSync(path.join(os.tmpdir(), scratchPrefix));
  try {
    return await body(group, dir);
  } finally {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Fetches a URL once with a fresh connection; resolves with the status code, rejects on a socket error. */
export function httpStatus(url: string, timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * Polls `url` until it answers with `status` (any status when omitted). Fails early with the process output when
 * `member` exits first, and after `timeoutMs` otherwise.
 */
export async function waitForHttp(url: string, options: { status?: number; timeoutMs?: number; member?: Managed } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let exited: number | string | null = null;
  void options.member?.exited.then((code) => (exited = code));
  let last = 'no answer';
  for (;;) {
    if (exited !== null) throw new Error(`${options.member?.name} exited (${exited}) before ${url} was ready:\n${options.member?.output()}`);
    try {
      const status = await httpStatus(url, 1_000);
      if (options.status === undefined || status === options.status) return;
      last = `status ${status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${options.timeoutMs ?? 15_000} ms (${last})${options.member ? `:\n${options.member.output()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
