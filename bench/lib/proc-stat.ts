// CPU and memory accounting from /proc: per-process-tree CPU ticks (all threads) and machine-wide busy time.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second (USER_HZ), the unit of /proc CPU times. */
export const ticksPerSecond: number = (() => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

interface ProcEntry {
  ppid: number;
  ticks: number;
}

/** Reads utime+stime (fields 14 and 15) and the parent of every process; the tgid's line covers all its threads. */
function readProcessTable(): Map<number, ProcEntry> {
  const table = new Map<number, ProcEntry>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    let line: string;
    try {
      line = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited between readdir and read
    }
    // The command name may contain spaces and parentheses: parse after the last ')'.
    const fields = line.slice(line.lastIndexOf(')') + 2).split(' ');
    table.set(pid, { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
  }
  return table;
}

/** The pid and all its live descendants, read from a process table. */
function treeOf(root: number, table: Map<number, ProcEntry>): number[] {
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    const parent = tree[i];
    for (const [pid, entry] of table) if (entry.ppid === parent) tree.push(pid);
  }
  return tree.filter((pid) => table.has(pid));
}

/** The pid and its live descendants (e.g. an nginx master and its workers). */
export function processTree(root: number): number[] {
  return treeOf(root, readProcessTable());
}

/** A point-in-time CPU reading. */
export interface CpuSnapshot {
  atMs: number;
  /** Machine-wide user+nice+system ticks (irq/softirq left out: on loopback they are mostly our own traffic). */
  busy: number;
  steal: number;
  /** Ticks of each watched tree, keyed by root pid. */
  byRoot: Map<number, number>;
  /** Sum over all watched trees: the processes under test, whose CPU is not "foreign". */
  watched: number;
}

/** Reads machine and per-tree CPU ticks in one pass. */
export function cpuSnapshot(roots: readonly number[]): CpuSnapshot {
  const stat = readFileSync('/proc/stat', 'utf8');
  const cpu = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , , , steal = 0] = cpu;
  const table = readProcessTable();
  const byRoot = new Map<number, number>();
  let watched = 0;
  for (const root of new Set(roots)) {
    let ticks = 0;
    for (const pid of treeOf(root, table)) ticks += table.get(pid)?.ticks ?? 0;
    byRoot.set(root, ticks);
    watched += ticks;
  }
  return { atMs: performance.now(), busy: user + nice + system, steal, byRoot, watched };
}

/** CPU used between two snapshots. */
export interface CpuDelta {
  seconds: number;
  /** CPU seconds of a watched tree. */
  treeSeconds(root: number): number;
  /** CPU outside the watched processes, in percent of one core. */
  foreignPct: number;
  /** Hypervisor steal, in percent of one core. */
  stealPct: number;
}

/** Differences two snapshots taken with the same roots. */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuDelta {
  const seconds = (after.atMs - before.atMs) / 1000;
  const coreTicks = seconds * ticksPerSecond;
  const foreign = Math.max(0, after.busy - before.busy - (after.watched - before.watched));
  return {
    seconds,
    treeSeconds: (root) => ((after.byRoot.get(root) ?? 0) - (before.byRoot.get(root) ?? 0)) / ticksPerSecond,
    foreignPct: coreTicks > 0 ? (100 * foreign) / coreTicks : 0,
    stealPct: coreTicks > 0 ? (100 * (after.steal - before.steal)) / coreTicks : 0,
  };
}

/** User and system ticks of one process (all its threads), separately: system time is syscalls and kernel work. */
export function userSystemTicks(pid: number): { user: number; system: number } {
  const line = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]), system: Number(fields[12]) };
}

/** A kB field of /proc/<pid>/status (VmRSS: resident now, VmHWM: the kernel's peak of it), in KiB; null once it exited. */
export function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? null : Number(match[1]);
  } catch {
    return null; // exited meanwhile
  }
}

/** Resident set size of a process tree in MiB (VmRSS summed). */
export function treeRssMiB(root: number): number {
  let kib = 0;
  for (const pid of processTree(root)) kib += statusKiB(pid, 'VmRSS') ?? 0;
  return kib / 1024;
}
