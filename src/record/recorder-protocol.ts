// Messages between the serving thread and the recorder worker (structured-clone friendly: no Buffers, no class instances).
import type { SinkKind } from '../config/env.js';
import type { RecorderBudgets } from './budgets.js';
import type { RecordingPolicy } from './capture.js';
import type { FeedbackResult } from './pair-recorder.js';
import type { ServedObservation, ShadowObservation } from './port.js';
import type { RoutePredictionTotals } from './prediction-stats.js';
import type { CloudEventsSinkSettings, NatsSinkSettings } from './sinks/sink.js';

/** How the recorder worker writes records; mirrors the `pairs` options of the app. */
export interface RecorderWorkerSettings {
  sink: SinkKind;
  dir: string;
  /** Required when sink is jetstream. */
  nats?: NatsSinkSettings;
  /** Required when sink is cloudevents. */
  cloudevents?: CloudEventsSinkSettings;
  maxFileBytes?: number;
  rotateMs?: number;
  retryMs?: number;
  keySalt?: string;
  /** Byte budgets of the worker's buffers (budgets.ts), from the one memory setting. */
  budgets: RecorderBudgets;
}

/**
 * Bodies travel as latin1 strings: a Buffer is usually a view into a larger pooled or socket ArrayBuffer, and
 * structured clone would copy all of it; a latin1 string holds exactly the bytes, one per character.
 */
export type WireServed = Omit<ServedObservation, 'requestBody' | 'responseBody'> & { kind: 'served'; requestBody: string | null; responseBody: string | null };
export type WireShadow = Omit<ShadowObservation, 'responseBody'> & { kind: 'shadow'; responseBody: string | null };
export type WireObservation = WireServed | WireShadow;

/** Bytes an observation is counted for against the budgets: its bodies (one byte per latin1 character) and its fields. */
export function wireBytes(item: WireObservation): number {
  return 256 + (item.responseBody?.length ?? 0) + (item.kind === 'served' ? (item.requestBody?.length ?? 0) : 0);
}

/** Parsed-pair and labelled-outcome totals per route, for the shadow gate and the A/B winner. */
export interface ExperimentTotals {
  agreement: Record<string, { agree: number; parsed: number }>;
  outcomes: Record<string, Record<string, { n: number; correct: number }>>;
  /**
   * Prediction counts per arm and the last drift windows, per route that has a divergence or drift policy; absent
   * when unchanged or not due (sent at most every 250 ms): the serving thread keeps the last ones it got.
   */
  predictions?: Record<string, RoutePredictionTotals>;
}

export type ToWorker =
  | { type: 'policies'; routes: [string, RecordingPolicy][] }
  | { type: 'observations'; items: WireObservation[] }
  | { type: 'feedback'; id: number; items: { requestId: string; label: unknown }[] }
  | { type: 'flush'; id: number }
  | { type: 'metrics'; id: number }
  | { type: 'close'; id: number };

export type FromWorker =
  /** `processed` observations of `bytes` ({@link wireBytes}) left the serving thread's budget. */
  | { type: 'ack'; processed: number; bytes: number; totals: ExperimentTotals | null }
  /** The sink could not reach its destination (the worker goes on; what it drops is counted). */
  | { type: 'sink-error'; message: string }
  | { type: 'reply'; id: number; result: FeedbackResult[] | unknown[] | null };
