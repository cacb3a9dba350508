// Profiles Switchyard's canary path at saturation with `node --cpu-prof` and lists self and inclusive time by function and file.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runCapacity } from './lib/capacity.js';
import { benchPolicy, startOrigin, startSwitchyardProcess } from './lib/fleet.js';
import { requestBody, requestHeaders, predictPath } from './lib/payload.js';
import { cpuDelta, cpuSnapshot, ticksPerSecond, userSystemTicks } from './lib/proc-stat.js';
import { ProcessGroup } from './lib/processes.js';
import { findRepoRoot } from './lib/repo.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The `.cpuprofile` format V8 writes (Chrome DevTools protocol Profiler.Profile). */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One row of the summary: a function or a file/package with its share of the sampled time. */
export interface ProfileRow {
  name: string;
  selfPct: number;
  inclusivePct: number;
}

/** Self and inclusive time of a profile, by function, file or package, and owner category. */
export interface ProfileSummary {
  sampledMs: number;
  samples: number;
  /** Share of sampled time the thread was idle (waiting in the event loop). */
  idlePct: number;
  functions: ProfileRow[];
  files: ProfileRow[];
  categories: ProfileRow[];
}

/** Groups a script URL: node core module, npm package (with file), Switchyard file, or a V8 pseudo-frame. */
export function fileOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    const pkg = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? '?');
    return `${pkg} (${rest.slice(pkg.includes('/') ? 2 : 1).join('/')})`;
  }
  const dist = url.indexOf('/dist/');
  return dist !== -1 ? `switchyard ${url.slice(dist + '/dist/'.length)}` : url;
}

/** Coarse owner of a frame: who to talk to about its cost. */
export function categoryOf(frame: CallFrame): string {
  const file = fileOf(frame);
  if (file === '(idle)' || file === '(program)' || file === '(garbage collector)') return file;
  if (file === '(native)' || file.startsWith('(')) return 'native calls (syscalls: writev, read, …)';
  if (file.startsWith('wasm://')) return 'undici llhttp parser (wasm)';
  if (file.startsWith('node:')) return 'node core (JS)';
  if (file.startsWith('switchyard ')) return 'switchyard';
  const space = file.indexOf(' (');
  return space === -1 ? file : file.slice(0, space);
}

function functionOf(frame: CallFrame): string {
  const file = fileOf(frame);
  if (frame.url === '') return file === '(native)' ? `${frame.functionName || '(anonymous)'} (native)` : file;
  return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

/**
 * Summarises samples whose timestamps fall in [fromUs, toUs] (V8 monotonic µs; pass -Infinity/Infinity for all).
 * A sample's time is the gap to the next sample, as DevTools counts it.
 */
export function summariseProfile(profile: CpuProfile, fromUs = -Infinity, toUs = Infinity): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfFn = new Map<string, number>();
  const selfFile = new Map<string, number>();
  const inclFn = new Map<string, number>();
  const inclFile = new Map<string, number>();
  const selfCat = new Map<string, number>();
  const inclCat = new Map<string, number>();
  let total = 0;
  let count = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const weight = profile.timeDeltas[i + 1] ?? 0;
    if (at < fromUs || at > toUs || weight <= 0) continue;
    const leaf = byId.get(profile.samples[i] as number);
    if (leaf === undefined) continue;
    total += weight;
    count++;
    const fn = functionOf(leaf.callFrame);
    const file = fileOf(leaf.callFrame);
    selfFn.set(fn, (selfFn.get(fn) ?? 0) + weight);
    selfFile.set(file, (selfFile.get(file) ?? 0) + weight);
    const category = categoryOf(leaf.callFrame);
    selfCat.set(category, (selfCat.get(category) ?? 0) + weight);
    const seenFn = new Set<string>();
    const seenFile = new Set<string>();
    const seenCat = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)?.callFrame;
      if (frame === undefined || frame.functionName === '(root)') continue;
      seenFn.add(functionOf(frame));
      seenFile.add(fileOf(frame));
      seenCat.add(categoryOf(frame));
    }
    for (const key of seenFn) inclFn.set(key, (inclFn.get(key) ?? 0) + weight);
    for (const key of seenFile) inclFile.set(key, (inclFile.get(key) ?? 0) + weight);
    for (const key of seenCat) inclCat.set(key, (inclCat.get(key) ?? 0) + weight);
  }
  const rows = (self: Map<string, number>, incl: Map<string, number>): ProfileRow[] =>
    [...incl.keys()]
      .map((name) => ({ name, selfPct: (100 * (self.get(name) ?? 0)) / total, inclusivePct: (100 * (incl.get(name) ?? 0)) / total }))
      .sort((a, b) => b.selfPct - a.selfPct || b.inclusivePct - a.inclusivePct);
  return { sampledMs: total / 1000, samples: count, idlePct: (100 * (selfCat.get('(idle)') ?? 0)) / total, functions: rows(selfFn, inclFn), files: rows(selfFile, inclFile), categories: rows(selfCat, inclCat) };
}

function table(rows: ProfileRow[], limit: number, heading: string): string {
  const lines = [`| ${heading} | self % | inclusive % |`, '|---|---|---|'];
  for (const row of rows.slice(0, limit)) lines.push(`| \`${row.name}\` | ${row.selfPct.toFixed(1)} | ${row.inclusivePct.toFixed(1)} |`);
  return lines.join('\n');
}

/** Markdown for the README's Profile section: owners, top functions, Switchyard's own functions, files/packages. */
export function profileMarkdown(summary: ProfileSummary, limit = 20): string {
  const own = summary.functions.filter((row) => row.name.includes(' switchyard ')).sort((a, b) => b.inclusivePct - a.inclusivePct);
  return [
    table(summary.categories, limit, 'owner'),
    table(summary.functions, limit, 'function (file:line)'),
    table(own, 12, 'Switchyard function, by inclusive time'),
    table(summary.files, limit, 'file or package'),
  ].join('\n\n');
}

async function main(): Promise<void> {
  const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
  const seconds = Number(process.env.BENCH_PROFILE_SECONDS ?? 10);
  const warmup = Number(process.env.BENCH_WARMUP ?? 5);
  const intervalUs = Number(process.env.BENCH_PROFILE_INTERVAL_US ?? 250);
  const origin = process.env.BENCH_ORIGIN === 'stub' ? 'stub' : 'nginx';
  const tool = process.env.BENCH_LOADGEN === 'wrk' ? 'wrk' : 'autocannon';
  const group = new ProcessGroup();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swy-profile-'));
  const profileDir = path.join(dir, 'profile');
  const onSignal = () => void group.stopAll().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  try {
    const started = await startOrigin(group, { repoRoot, dir, origin, stubDelayMs: 0 });
    const nodeFlags = ['--max-semi-space-size=64', '--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-interval=${intervalUs}`];
    const sy = await startSwitchyardProcess(group, { repoRoot, dir, nodeFlags }, 'switchyard-canary', benchPolicy(started.champion, started.challenger, 10));
    const load = (s: number) => runCapacity({ url: sy.url + predictPath, connections: 50, seconds: s, method: 'POST', body: requestBody, headers: { ...requestHeaders }, tool });
    console.log(`Profiling Switchyard canary 10% (pid ${sy.member.pid}) at saturation: ${warmup} s warm-up, ${seconds} s measured, ${intervalUs} µs sampling, origin ${started.version}`);
    await load(warmup);
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    const before = cpuSnapshot([sy.member.pid]);
    const splitBefore = userSystemTicks(sy.member.pid);
    const result = await load(seconds);
    const cpu = cpuDelta(before, cpuSnapshot([sy.member.pid])).treeSeconds(sy.member.pid);
    const splitAfter = userSystemTicks(sy.member.pid);
    const perRequest = (ticks: number) => (ticks / ticksPerSecond) * 1e6 / result.completed;
    const userUs = perRequest(splitAfter.user - splitBefore.user);
    const systemUs = perRequest(splitAfter.system - splitBefore.system);
    const toUs = Number(process.hrtime.bigint() / 1000n);
    // SIGTERM drains and exits 0; V8 writes the profile on exit.
    await group.stop(sy.member, 15_000);
    const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error(`no .cpuprofile written in ${profileDir}:\n${sy.member.output()}`);
    const profile = JSON.parse(readFileSync(path.join(profileDir, file), 'utf8')) as CpuProfile;
    let summary = summariseProfile(profile, fromUs, toUs);
    // V8's clock is CLOCK_MONOTONIC like hrtime; if it ever differs, fall back to the whole profile.
    if (summary.samples === 0) summary = summariseProfile(profile);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const resultsDir = path.join(repoRoot, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    const rawCopy = path.join(resultsDir, `${stamp}-switchyard.cpuprofile.json`);
    copyFileSync(path.join(profileDir, file), rawCopy);
    const md = profileMarkdown(summary);
    writeFileSync(path.join(resultsDir, `${stamp}-profile.json`), `${JSON.stringify({ seconds, intervalUs, tool, rps: result.rps, cpuUsPerReq: (cpu * 1e6) / result.completed, userUs, systemUs, summary, markdown: md }, null, 2)}\n`);
    console.log(`\n${result.completed} requests, ${Math.round(result.rps)} rps; Switchyard CPU ${((cpu * 1e6) / result.completed).toFixed(1)} µs/request under the profiler (user ${userUs.toFixed(1)}, system ${systemUs.toFixed(1)}); ${summary.samples} samples, ${summary.idlePct.toFixed(1)} % idle`);
    // V8 samples wall time on the main thread: a thread preempted inside a syscall (common on 2 shared cores, when a
    // write wakes the reader) is charged to that native frame, so native shares exceed the kernel's system time.
    console.log('Shares are of sampled wall time of the main thread; /proc user/system above is the authoritative CPU split.\n');
    console.log(md);
    console.log(`\nRaw profile (open in Chrome DevTools): ${path.relative(process.cwd(), rawCopy)}`);
  } finally {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await main();
  } catch (err) {
    console.error(`profile failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
}
