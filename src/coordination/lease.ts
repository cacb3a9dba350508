// Leader lease with fencing tokens and the fenced compare-and-set of the control record, as Lua scripts run atomically by Redis.
//
// A lease value is `<instance>|<token>`. The token comes from INCR on a per-route counter at acquisition, floored by
// Redis TIME in microseconds: a Redis that lost its data (restart without persistence) still never hands out a token
// it handed out before, so an old leader's value can never match a new lease. Renewal is compare-and-pexpire, and
// every write a leader makes on the fleet's behalf checks the full value, so a leader that was paused past its expiry
// (GC, SIGSTOP, a slow network) cannot act late: its value is gone even if it was reacquired by the same instance.

/**
 * Renew-or-acquire. KEYS: lease, fence, leaderState. ARGV: instance, mine ('' when not leader), ttlMs, stateJson
 * ('' for none), stateTtlMs. Returns [1, value] renewed (and the leader state written), [2, value] acquired, or
 * [0, holder's value] when another instance holds it.
 */
export const LEASE_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local current = redis.call('GET', KEYS[1])
if current and current == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5]) end
  return {1, current}
end
if current then return {0, current} end
local token = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
if token < floor then
  token = floor
  redis.call('SET', KEYS[2], string.format('%.0f', token))
end
local value = ARGV[1] .. '|' .. string.format('%.0f', token)
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return {2, value}
`;

/** Compare-and-pexpire only (no acquisition). KEYS: lease. ARGV: mine, ttlMs. Returns 1 while the lease is still ours. */
export const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** Compare-and-delete, for a clean handover on shutdown. KEYS: lease. ARGV: mine. */
export const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/**
 * Compare-and-set of the control record, fenced when ARGV[3] is a lease value, then published. KEYS: control, lease.
 * ARGV: expectRev (0 = absent), recordJson, fence ('' = not a leader decision), channel, route.
 * Returns [1, newRev, record] written; [0, rev, record] revision mismatch; [-1, rev, record] fence rejected.
 * The new revision is max(rev + 1, Redis TIME in µs), so revisions stay monotonic across a data loss too.
 */
export const CONTROL_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
local record = redis.call('HGET', KEYS[1], 'record') or ''
if rev ~= tonumber(ARGV[1]) then return {0, string.format('%.0f', rev), record} end
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[3] then return {-1, string.format('%.0f', rev), record} end
local now = redis.call('TIME')
local nextRev = math.max(rev + 1, tonumber(now[1]) * 1000000 + tonumber(now[2]))
local revText = string.format('%.0f', nextRev)
redis.call('HSET', KEYS[1], 'rev', revText, 'record', ARGV[2])
redis.call('PUBLISH', ARGV[4], '{"route":' .. cjson.encode(ARGV[5]) .. ',"rev":' .. revText .. ',"record":' .. ARGV[2] .. '}')
return {1, revText, ARGV[2]}
`;

/** A parsed lease value. */
export interface LeaseValue {
  readonly instance: string;
  readonly token: number;
}

/** Parses `<instance>|<token>` (the instance may itself contain '|'); null when malformed. */
export function parseLease(value: string): LeaseValue | null {
  const bar = value.lastIndexOf('|');
  if (bar <= 0) return null;
  const token = Number(value.slice(bar + 1));
  if (!Number.isSafeInteger(token) || token <= 0) return null;
  return { instance: value.slice(0, bar), token };
}

/** Status codes of LEASE_SCRIPT. */
export const LeaseStatus = { HeldByOther: 0, Renewed: 1, Acquired: 2 } as const;

/** Status codes of CONTROL_SCRIPT. */
export const ControlWrite = { FenceRejected: -1, RevisionMismatch: 0, Written: 1 } as const;
