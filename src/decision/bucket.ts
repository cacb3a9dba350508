// Sticky bucketing identical to Unleash's gradual rollout: murmurhash3 (x86, 32 bit, seed 0) of `groupId:key`, mod 100, plus 1.
import murmurHash3 from 'murmurhash3js';

/** Unleash's strategy seed (unleash-client src/strategy/util.ts STRATEGY_SEED). */
const STRATEGY_SEED = 0;

/**
 * Returns the bucket 1..100 for a key in a group, exactly as Unleash's flexibleRollout computes it, so the router
 * and any application using an Unleash SDK put the same key on the same side of the same percent.
 * We use the same murmurhash3js implementation as unleash-client because it hashes UTF-16 code units, not UTF-8
 * bytes; a byte-wise murmur would disagree with Unleash on non-ASCII keys.
 */
export function stickyBucket(key: string, groupId: string): number {
  return (murmurHash3.x86.hash32(`${groupId}:${key}`, STRATEGY_SEED) % 100) + 1;
}

/** A uniformly random bucket 1..100 for requests that carry no stickiness key. */
export function randomBucket(): number {
  return Math.floor(Math.random() * 100) + 1;
}
