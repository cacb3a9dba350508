// The one schema of a split set from outside the policy (operator override, flag, bootstrap): state.json, Redis and flags read it.
import { z } from 'zod';
import { challengerModes } from '../config/policy-schema.js';

/** Where a route's live split came from. */
export type SplitSource = 'policy' | 'flag' | 'override' | 'bootstrap' | 'stale' | 'rollback';

/** One challenger's live share of a route. */
export const shareSchema = z
  .object({
    name: z.string({ message: 'must be a challenger name' }).min(1, { message: 'must be a challenger name' }),
    mode: z.enum(challengerModes, { message: `must be one of ${challengerModes.join(', ')}` }),
    percent: z.number({ message: 'must be a number from 0 to 100' }).min(0, { message: 'must be at least 0' }).max(100, { message: 'must be at most 100' }),
  })
  .readonly();
export type ChallengerShare = z.infer<typeof shareSchema>;

export const sharesSchema = z.array(shareSchema, { message: 'must be a list of {name, mode, percent}' }).readonly();

/** An operator override: the challengers' shares and optionally the bucketing group (persisted and replicated as is). */
export const overrideSchema = z
  .object({ challengers: sharesSchema, groupId: z.string().min(1, { message: 'must not be empty' }).optional() }, { message: 'must be an object {challengers, groupId}' })
  .readonly();
export type OperatorOverride = z.infer<typeof overrideSchema>;

/** A split set from outside the policy (a flag, an operator, bootstrap data), as LiveSplits lays it over the policy's. */
export interface SplitOverlay extends OperatorOverride {
  readonly source: SplitSource;
}
