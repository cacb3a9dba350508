// Byte budgets of the prediction log's buffers, all derived from the one memory setting (SWITCHYARD_MEMORY_MB).
import { totalmem } from 'node:os';
import { maxMemoryMb, minMemoryMb } from '../config/env.js';
import { SWY_ERR_ENV_INVALID } from '../errors.js';

/**
 * Share of the memory setting each buffer that grows with traffic may hold (README "Shadow traffic and the prediction
 * log"). Together 20 %: the bytes counted are payload (bodies, predictions, record lines), and a garbage-collected
 * heap holds up to about twice its live data between collections; the other 60 % is the serving thread's (sockets,
 * bodies in flight, Node and V8 themselves).
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
} as const;

/** The `buffer` label of each budget in switchyard_recorder_buffer_bytes and switchyard_recorder_budget_bytes. */
export const bufferLabels: { readonly [buffer in keyof typeof budgetShares]: string } = {
  toWorker: 'to_worker',
  queue: 'queue',
  pending: 'pending',
  joinTable: 'join_table',
  sink: 'sink',
};

/** Heap of the recorder worker, as a share of the memory setting: the budgets above plus room for its garbage. */
const workerHeapShare = 0.4;

/** Byte budgets of the recorder's buffers (structured-clone friendly: sent to the worker as they are). */
export type RecorderBudgets = { readonly [buffer in keyof typeof budgetShares]: number } & {
  /** The memory setting they were derived from (MiB). */
  readonly memoryMb: number;
  /** Old-generation limit of the worker's heap (MiB): an accounting slip costs a worker restart (counted), not the pod. */
  readonly workerHeapMb: number;
};

/** Used when neither SWITCHYARD_MEMORY_MB nor a container limit says how much memory there is. */
export const defaultMemoryMb = 1024;

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
  const bytes = memoryMb * 1_048_576;
  const share = (s: number): number => Math.floor(bytes * s);
  return Object.freeze({
    toWorker: share(budgetShares.toWorker),
    queue: share(budgetShares.queue),
    pending: share(budgetShares.pending),
    joinTable: share(budgetShares.joinTable),
    sink: share(budgetShares.sink),
    memoryMb,
    workerHeapMb: Math.max(48, Math.floor(memoryMb * workerHeapShare)),
  });
}
