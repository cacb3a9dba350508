// Byte budgets of the prediction log's buffers, all derived from the one memory setting (SWITCHYARD_MEMORY_MB).
import { totalmem } from 'node:os';
import { maxMemoryMb, minMemoryMb } from '../config/env.js';
import { SWY_ERR_ENV_INVALID } from '../errors.js';

/**
 * What the process holds before any traffic, in MiB: the node binary's resident pages (about 45 MiB), the serving
 * thread's and the recorder worker's isolates with the modules they load (about 80 MiB), measured idle with a policy
 * loaded (bench/README.md, Soak). Budgets are shares of what the memory setting leaves above it.
 */
export const idleBaselineMb = 128;

/**
 * Share of the traffic area (the memory setting minus {@link idleBaselineMb}, at least a quarter of the setting) each
 * buffer that grows with traffic may hold (README "Shadow traffic and the prediction log"). Together 21 %: the bytes
 * counted are payload (bodies, predictions, record lines), and a garbage-collected heap holds up to about twice its
 * live data between collections; the rest is the serving thread's (its young generation, sockets, bodies in flight).
 */
export const budgetShares = {
  /** Observations on the serving thread and in flight to the recorder worker. */
  toWorker: 0.03,
  /** Observations the worker received and has not processed yet. */
  queue: 0.03,
  /** Mirrored requests waiting for their other half (extracted predictions). */
  pending: 0.03,
  /** Predictions remembered for ground-truth feedback. */
  joinTable: 0.08,
  /** Records waiting for the sink (disk or stdout), the batch being written included. */
  sink: 0.03,
  /** Prediction counts, score sketches and drift windows per route and arm (prediction-stats.ts). */
  predictionStats: 0.01,
} as const;

/** The `buffer` label of each budget in switchyard_recorder_buffer_bytes and switchyard_recorder_budget_bytes. */
export const bufferLabels: { readonly [buffer in keyof typeof budgetShares]: string } = {
  toWorker: 'to_worker',
  queue: 'queue',
  pending: 'pending',
  joinTable: 'join_table',
  sink: 'sink',
  predictionStats: 'prediction_stats',
};

/** Old generation of the recorder worker, as a share of the traffic area: its budgets (18 %) plus room for garbage. */
const workerHeapShare = 0.4;

/**
 * Young generation of the recorder worker, as a share of the traffic area (4 to 16 MiB). A worker inherits the
 * process's `--max-semi-space-size`, which is sized for the serving thread's allocation rate; the worker allocates
 * little that is short-lived (large predictions go straight to large-object space), so a small young generation
 * costs it nothing and keeps up to 2 x 64 MiB out of the RSS (bench/README.md, Soak).
 */
const workerYoungShare = 1 / 64;

/** The part of a memory setting (MiB) left for what grows with traffic: the setting minus the idle baseline. */
export function trafficAreaMb(memoryMb: number): number {
  return Math.max(Math.floor(memoryMb / 4), memoryMb - idleBaselineMb);
}

/**
 * The serving thread's semi-space (MiB) for a memory setting: the young generation (two semi-spaces) takes at most a
 * quarter of the traffic area, and a semi-space at most the 64 MiB docs/performance.md recommends when memory allows.
 * Node takes it only as a start flag (`--max-semi-space-size`), so the Helm chart computes the same rule from the
 * container limit and `serve` warns when the flag it was started with is larger.
 */
export function semiSpaceMbFor(memoryMb: number): number {
  return Math.max(1, Math.min(64, Math.floor(trafficAreaMb(memoryMb) / 8)));
}

/**
 * The `--max-semi-space-size` (MiB) this process was started with, from its command line or NODE_OPTIONS (the last
 * one wins, as in Node); null when neither sets it (V8's default, 16 MiB on 64-bit, is within every rule above 256 MiB).
 */
export function startedSemiSpaceMb(execArgv: readonly string[] = process.execArgv, nodeOptions: string | undefined = process.env.NODE_OPTIONS): number | null {
  let found: number | null = null;
  const words = [...(nodeOptions ?? '').split(/\s+/), ...execArgv];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const value = word.startsWith('--max-semi-space-size=') ? word.slice('--max-semi-space-size='.length) : word === '--max-semi-space-size' ? words[i + 1] : undefined;
    if (value !== undefined && /^\d+$/.test(value)) found = Number(value);
  }
  return found;
}

/** Byte budgets of the recorder's buffers (structured-clone friendly: sent to the worker as they are). */
export type RecorderBudgets = { readonly [buffer in keyof typeof budgetShares]: number } & {
  /** The memory setting they were derived from (MiB). */
  readonly memoryMb: number;
  /** Old-generation limit of the worker's heap (MiB): an accounting slip costs a worker restart (counted), not the pod. */
  readonly workerHeapMb: number;
  /** Young-generation limit of the worker's heap (MiB). */
  readonly workerYoungMb: number;
};

/** Used when neither SWITCHYARD_MEMORY_MB nor a container limit says how much memory there is. */
export const defaultMemoryMb = 1024;

/**
 * The smallest memory setting whose peak RSS the soak bench keeps under the setting (bench/README.md, Soak: 87 % at
 * 384 MiB, 111 % at 256 MiB with the young generation and every budget cut to fit). Below it the idle baseline leaves
 * too little room; smaller settings are accepted (tests, sidecars) and `serve` warns.
 */
export const recommendedMinMemoryMb = 384;

/**
 * The memory setting: the explicit one, else the container's limit (cgroup, as Node sees it), else 1,024 MiB.
 * Without a limit Node reports the machine's memory or more (2^64 for cgroup v2's "max"): that is not a limit.
 */
export function resolveMemoryMb(explicit: number | undefined, constrained = process.constrainedMemory()): number {
  if (explicit !== undefined) return explicit;
  if (constrained !== undefined && constrained > 0 && constrained < totalmem()) return Math.max(minMemoryMb, Math.floor(constrained / 1_048_576));
  return defaultMemoryMb;
}

/** The byte budgets for a memory setting in MiB; throws SWY_ERR_ENV_INVALID for a setting out of range. */
export function recorderBudgets(memoryMb: number): RecorderBudgets {
  if (!Number.isInteger(memoryMb) || memoryMb < minMemoryMb || memoryMb > maxMemoryMb) {
    throw new SWY_ERR_ENV_INVALID(`SWITCHYARD_MEMORY_MB (memoryMb): must be a whole number of MiB from ${minMemoryMb} to ${maxMemoryMb}, got ${memoryMb}; set it to the container's memory limit`);
  }
  const areaMb = trafficAreaMb(memoryMb);
  const bytes = areaMb * 1_048_576;
  const share = (s: number): number => Math.floor(bytes * s);
  return Object.freeze({
    toWorker: share(budgetShares.toWorker),
    queue: share(budgetShares.queue),
    pending: share(budgetShares.pending),
    joinTable: share(budgetShares.joinTable),
    sink: share(budgetShares.sink),
    predictionStats: share(budgetShares.predictionStats),
    memoryMb,
    workerHeapMb: Math.max(48, Math.floor(areaMb * workerHeapShare)),
    workerYoungMb: Math.max(4, Math.min(16, Math.floor(areaMb * workerYoungShare))),
  });
}
