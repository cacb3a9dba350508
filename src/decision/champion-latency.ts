// The shadow budget's running estimate of a champion's latency: mirrors are shed while it is above the route's bound.
import type { ShedPolicy } from '../config/policy-schema.js';

/**
 * One per route with `shadow.shed`, compiled into the snapshot (src/decision/compile.ts) and kept across split changes.
 * The data path feeds it every champion answer (`observe`, a few arithmetic operations); the mirror reads `shedding`
 * before it launches. A recent mean (exponentially weighted over about `samples` answers) is compared with an absolute
 * bound and with `ratio` × a baseline that moves over about `baselineSamples` answers; mirrors resume when the recent
 * mean is back under `resumeBelow` × the bound that was crossed, so the state does not flap at the threshold.
 */
export class ChampionLatency {
  readonly #recentWeight: number;
  readonly #baselineWeight: number;
  readonly #boundMs: number;
  readonly #ratio: number;
  readonly #resumeBelow: number;
  /** Answers before the ratio is judged: the baseline needs as many answers as the recent mean spans. */
  readonly #warmup: number;
  recentMs: number;
  baselineMs: number;
  answers: number;
  /** True while mirrors of the route are shed. */
  shedding: boolean;

  constructor(policy: ShedPolicy) {
    this.#recentWeight = 2 / (policy.samples + 1);
    this.#baselineWeight = 2 / (policy.baselineSamples + 1);
    this.#boundMs = policy.latencyMs ?? Number.POSITIVE_INFINITY;
    this.#ratio = policy.ratio ?? Number.POSITIVE_INFINITY;
    this.#resumeBelow = policy.resumeBelow;
    this.#warmup = policy.samples;
    this.recentMs = 0;
    this.baselineMs = 0;
    this.answers = 0;
    this.shedding = false;
  }

  /** One champion answer (not one the client caused to fail: that says nothing about the champion). */
  observe(latencyMs: number): void {
    const answers = ++this.answers;
    if (answers === 1) {
      this.recentMs = latencyMs;
      this.baselineMs = latencyMs;
    } else {
      this.recentMs += this.#recentWeight * (latencyMs - this.recentMs);
      // The baseline also follows a slowdown, at its own slow pace: one that lasts becomes the new normal.
      this.baselineMs += this.#baselineWeight * (latencyMs - this.baselineMs);
    }
    const limit = answers > this.#warmup ? Math.min(this.#boundMs, this.#ratio * this.baselineMs) : this.#boundMs;
    this.shedding = this.shedding ? this.recentMs > this.#resumeBelow * limit : this.recentMs > limit;
  }
}
