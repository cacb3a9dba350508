// A bounded per-route history of every guardrail's estimate and always-valid interval, sampled at controller ticks, for the status page's charts.
import type { RouteTick } from '../control/route-tick.js';
import { guardrailNames, type GuardrailName, type GuardrailVerdict } from '../control/guardrails.js';

/** Samples kept per route. When full, every other one is dropped and the sampling stride doubles (see record()). */
export const HISTORY_CAPACITY = 240;
/** Breach moments kept per route (the newest). */
const BREACHES_KEPT = 16;
/** Per guardrail and sample: state, estimate, interval lower and upper bound, threshold (margin or ceiling). */
const COLUMNS = 5;
const stateNames = ['collecting', 'healthy', 'within', 'breach'] as const satisfies readonly GuardrailVerdict['state'][];
const stateCode = new Map<string, number>(stateNames.map((s, i) => [s, i]));
const guardrailIndex = new Map<string, number>(guardrailNames.map((n, i) => [n, i]));

/** The moment a guardrail turned to breach. */
export interface BreachMark {
  guardrail: GuardrailVerdict['name'];
  at: number;
  estimate: number | null;
  threshold: number;
}

/** The latest tick of a route, compact, for the overview. */
export interface LatestTick {
  at: number;
  phase: string;
  challenger: string | null;
  servedPercent: number;
  step: RouteTick['step'];
  guardrails: { name: GuardrailVerdict['name']; state: GuardrailVerdict['state'] }[];
}

/** GET /v1/routes/:route/history: columns of equal length, oldest first; null where a value was not defined. */
export interface HistoryView {
  route: string;
  /** When the current experiment's first sample was taken (ms since the epoch), null before any. */
  since: number | null;
  /** Ticks per sample: 1 until the ring first filled, then doubling, so the whole experiment fits in the ring. */
  stride: number;
  capacity: number;
  t: number[];
  phase: string[];
  servedPercent: number[];
  guardrails: { name: GuardrailName; kind: GuardrailVerdict['kind']; state: string[]; estimate: (number | null)[]; lower: (number | null)[]; upper: (number | null)[]; threshold: (number | null)[] }[];
  breaches: BreachMark[];
}

class RouteHistory {
  readonly t = new Float64Array(HISTORY_CAPACITY);
  readonly served = new Float32Array(HISTORY_CAPACITY);
  readonly phase: string[] = new Array<string>(HISTORY_CAPACITY);
  /** Sample-major: [sample][guardrail][column]. Float32 halves the memory; the charts need no more precision. */
  readonly values = new Float32Array(HISTORY_CAPACITY * guardrailNames.length * COLUMNS);
  readonly kinds: (GuardrailVerdict['kind'] | undefined)[] = new Array(guardrailNames.length);
  length = 0;
  stride = 1;
  skipped = 0;
  /** The controller's experiment the samples belong to. */
  experiment = -1;
  readonly breaches: BreachMark[] = [];
  readonly lastState: (string | undefined)[] = new Array(guardrailNames.length);

  reset(): void {
    this.length = 0;
    this.stride = 1;
    this.skipped = 0;
    this.breaches.length = 0;
    this.lastState.fill(undefined);
  }

  /** Keeps samples 0, 2, 4, …: half the ring, at twice the stride. */
  decimate(): void {
    const width = guardrailNames.length * COLUMNS;
    let kept = 0;
    for (let i = 0; i < this.length; i += 2, kept++) {
      this.t[kept] = this.t[i]!;
      this.served[kept] = this.served[i]!;
      this.phase[kept] = this.phase[i]!;
      this.values.copyWithin(kept * width, i * width, (i + 1) * width);
    }
    this.length = kept;
    this.stride *= 2;
  }
}

const orNaN = (x: number | null): number => (x === null || !Number.isFinite(x) ? Number.NaN : x);
const orNull = (x: number): number | null => (Number.isNaN(x) ? null : Number(x.toPrecision(6)));

/**
 * Per route, at most {@link HISTORY_CAPACITY} samples of the controller's verdicts (about 28 KB a route, whatever the
 * traffic or the experiment's length), and the latest tick of every route for the overview. Fed by
 * Controller.onTick off the request path; a route without any request yet takes no ring, and a new experiment (the
 * tick's `experiment` changed) starts a new history.
 */
export class GuardrailHistory {
  readonly #routes = new Map<string, RouteHistory>();
  readonly #latest = new Map<string, LatestTick>();

  /** Controller.onTick listener. */
  readonly record = (tick: RouteTick): void => {
    this.#latest.set(tick.route, {
      at: tick.at, phase: tick.phase, challenger: tick.challenger, servedPercent: tick.servedPercent, step: tick.step,
      guardrails: tick.verdicts.map((v) => ({ name: v.name, state: v.state })),
    });
    let history = this.#routes.get(tick.route);
    if (history === undefined) {
      if (!tick.verdicts.some((v) => v.nChampion + v.nChallenger > 0)) return;
      history = new RouteHistory();
      this.#routes.set(tick.route, history);
    }
    if (tick.experiment !== history.experiment) history.reset();
    history.experiment = tick.experiment;
    for (const v of tick.verdicts) {
      const g = guardrailIndex.get(v.name);
      if (g === undefined) continue;
      history.kinds[g] = v.kind;
      if (v.state === 'breach' && history.lastState[g] !== 'breach') {
        history.breaches.push({ guardrail: v.name, at: tick.at, estimate: v.estimate, threshold: v.threshold });
        if (history.breaches.length > BREACHES_KEPT) history.breaches.shift();
      }
      history.lastState[g] = v.state;
    }
    // Every tick counts towards the stride, so samples stay evenly spaced in time after a decimation.
    if (history.length > 0 && ++history.skipped < history.stride) return;
    history.skipped = 0;
    if (history.length === HISTORY_CAPACITY) history.decimate();
    const i = history.length++;
    history.t[i] = tick.at;
    history.served[i] = tick.servedPercent;
    history.phase[i] = tick.phase;
    const width = guardrailNames.length * COLUMNS;
    history.values.fill(Number.NaN, i * width, (i + 1) * width);
    for (const v of tick.verdicts) {
      const g = guardrailIndex.get(v.name);
      if (g === undefined) continue;
      const at = i * width + g * COLUMNS;
      history.values[at] = stateCode.get(v.state) ?? Number.NaN;
      history.values[at + 1] = orNaN(v.estimate);
      history.values[at + 2] = orNaN(v.csLower);
      history.values[at + 3] = orNaN(v.csUpper);
      history.values[at + 4] = orNaN(v.threshold);
    }
  };

  /** The latest tick of a route (undefined before its first). */
  latest(route: string): LatestTick | undefined {
    return this.#latest.get(route);
  }

  /** Forgets routes no longer in the policy. */
  retain(routes: ReadonlySet<string>): void {
    for (const name of this.#latest.keys()) if (!routes.has(name)) this.#latest.delete(name);
    for (const name of this.#routes.keys()) if (!routes.has(name)) this.#routes.delete(name);
  }

  /** The route's history as columns (empty columns before its first request). */
  view(route: string): HistoryView {
    const history = this.#routes.get(route);
    if (history === undefined || history.length === 0) {
      return { route, since: null, stride: 1, capacity: HISTORY_CAPACITY, t: [], phase: [], servedPercent: [], guardrails: [], breaches: [] };
    }
    const n = history.length;
    const width = guardrailNames.length * COLUMNS;
    const guardrails: HistoryView['guardrails'] = [];
    guardrailNames.forEach((name, g) => {
      const kind = history.kinds[g];
      if (kind === undefined) return;
      const column = (c: number) => Array.from({ length: n }, (_, i) => orNull(history.values[i * width + g * COLUMNS + c]!));
      guardrails.push({
        name, kind,
        state: Array.from({ length: n }, (_, i) => stateNames[history.values[i * width + g * COLUMNS]!] ?? 'collecting'),
        estimate: column(1), lower: column(2), upper: column(3), threshold: column(4),
      });
    });
    return {
      route,
      since: history.t[0]!,
      stride: history.stride,
      capacity: HISTORY_CAPACITY,
      t: Array.from(history.t.subarray(0, n)),
      phase: history.phase.slice(0, n),
      servedPercent: Array.from(history.served.subarray(0, n)),
      guardrails,
      breaches: [...history.breaches],
    };
  }
}
