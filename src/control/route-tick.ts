// What the controller tells Controller.onTick listeners after judging a route (the status page's interval history).
import type { GuardrailVerdict } from './guardrails.js';

/** One route's evaluation at one tick. */
export interface RouteTick {
  route: string;
  /** Changes when a new experiment starts (resume, another challenger, a changed route policy, the fleet's new epoch). */
  experiment: number;
  at: number;
  phase: string;
  challenger: string | null;
  servedPercent: number;
  step: { index: number; percent: number; of: readonly number[] } | null;
  verdicts: readonly GuardrailVerdict[];
}
