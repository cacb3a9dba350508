// Closed-loop saturation run (capacity): autocannon by default, wrk when asked for and installed.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';

/** Options for {@link runCapacity}. */
export interface CapacityOptions {
  url: string;
  connections: number;
  seconds: number;
  method: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  /** `autocannon` (in-process, the default) or `wrk` (one thread; a C generator that needs less CPU per request). */
  tool?: 'autocannon' | 'wrk';
}

/** What a saturation run measured. Latency is left out on purpose: autocannon's percentiles are whole milliseconds. */
export interface CapacityResult {
  tool: 'autocannon' | 'wrk';
  /** Responses with any status. */
  completed: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationS: number;
  /** 2xx responses per second. */
  rps: number;
}

async function viaAutocannon(options: CapacityOptions): Promise<CapacityResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.seconds,
    pipelining: 1,
    method: options.method,
    body: options.body,
    headers: options.headers,
  });
  const completed = result.requests.total;
  return {
    tool: 'autocannon',
    completed,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationS: result.duration,
    rps: result['2xx'] / result.duration,
  };
}

function luaString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

async function viaWrk(options: CapacityOptions): Promise<CapacityResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'swy-wrk-'));
  const script = path.join(dir, 'request.lua');
  const lines = [`wrk.method = ${luaString(options.method)}`];
  if (options.body !== undefined) lines.push(`wrk.body = ${luaString(options.body)}`);
  for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  // The summary hook prints exact counts, so nothing has to be parsed from wrk's rounded human-readable report.
  lines.push('done = function(summary, latency, requests)', '  local e = summary.errors', '  io.write(string.format("SUMMARY %d %d %d %d %d\\n", summary.requests, summary.duration, e.connect + e.read + e.write, e.timeout, e.status))', 'end');
  writeFileSync(script, lines.join('\n'));
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      // wrk takes whole seconds only.
      const args = ['-t1', `-c${options.connections}`, `-d${Math.max(1, Math.round(options.seconds))}s`, '-s', script, options.url];
      execFile('wrk', args, { encoding: 'utf8' }, (err, out, errOut) => (err ? reject(new Error(`wrk ${args.join(' ')} failed: ${err.message}\n${errOut}`, { cause: err })) : resolve(out)));
    });
    const match = /SUMMARY (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(stdout);
    if (match === null) throw new Error(`unexpected wrk output:\n${stdout}`);
    const [requests, durationUs, errors, timeouts, non2xx] = match.slice(1).map(Number) as [number, number, number, number, number];
    const durationS = durationUs / 1e6;
    return { tool: 'wrk', completed: requests, ok2xx: requests - non2xx, non2xx, errors, timeouts, durationS, rps: (requests - non2xx) / durationS };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the target at saturation with a fixed number of keep-alive connections. */
export function runCapacity(options: CapacityOptions): Promise<CapacityResult> {
  return options.tool === 'wrk' ? viaWrk(options) : viaAutocannon(options);
}
