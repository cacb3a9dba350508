// What a route's recording policy asks of the request path: how much response to copy, and how often for served records.
import type { RoutePolicy } from '../config/policy-schema.js';

/** The parts of a route policy that recording reads; a RoutePolicy is one. */
export interface RecordingPolicy {
  readonly predictions?: RoutePolicy['predictions'];
  readonly pairs: RoutePolicy['pairs'];
  /** Prediction divergence between arms, and drift over time (prediction-stats.ts). */
  readonly divergence?: RoutePolicy['divergence'];
  readonly drift?: RoutePolicy['drift'];
}

/** Looks up a route's recording policy by name; the same object is returned until the route's policy changes. */
export interface RecordingPolicies {
  policyOf(route: string): RecordingPolicy | undefined;
}

/** Capture settings derived from a recording policy. */
export interface CaptureLimits {
  /** Bytes of response body copied for extraction. */
  readonly captureBytes: number;
  /** Share of canary/ab served answers that get a record (mirrored requests are always paired). */
  readonly sampleRate: number;
  /** Whether the request body travels with the observation (inputs are logged only when the policy opts in). */
  readonly logInputs: boolean;
  /** Whether the request body travels to the recorder worker: logged inputs, or input features watched for drift. */
  readonly keepInputs: boolean;
}

const limitsByPolicy = new WeakMap<RecordingPolicy, CaptureLimits>();

/** Capture settings of a policy, computed once per policy object. */
export function captureLimits(policy: RecordingPolicy): CaptureLimits {
  let found = limitsByPolicy.get(policy);
  if (!found) {
    const p = policy.predictions;
    found = Object.freeze({ captureBytes: p?.maxResponseBytes ?? 256 * 1024, sampleRate: p ? p.sampleRate : 0, logInputs: p?.logInputs ?? false, keepInputs: (p?.logInputs ?? false) || (policy.drift?.features.length ?? 0) > 0 });
    limitsByPolicy.set(policy, found);
  }
  return found;
}

/** Bytes of response to copy for one request (0: none); `mirrored` requests are always paired. */
export function captureBytesFor(policy: RecordingPolicy | undefined, mirrored: boolean): number {
  if (!policy) return 0;
  const limits = captureLimits(policy);
  if (mirrored) return limits.captureBytes;
  return limits.sampleRate > 0 && (limits.sampleRate >= 1 || Math.random() < limits.sampleRate) ? limits.captureBytes : 0;
}
