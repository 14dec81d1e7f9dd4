// The cache tier's Redis side, as Lua scripts so that each step is one round trip and
// atomic. Keys live under a prefix and a generation: `<prefix>gen` holds the current
// generation, and everything else is `<prefix><gen>:<kind>:<key>`, so that bumping the
// generation (after an outage in which invalidations were lost) drops the whole cache at
// once. Kinds: v (value), l (lease: who may fill), t (tombstone: the WAL position a fill
// must have reached since the last invalidation), f (membership filter bitmap; `:ready`
// once it holds every member).
//
// Positions are 16 hex digits, zero padded, so that string order is numeric order.

/**
 * Lookup. ARGV: prefix, key, filter name ('' for none), lease token, lease ms, n, then n bit
 * positions of the member. Returns {gen, status, payload, filter}:
 *   hit     payload = the stored value
 *   absent  the filter knows the member is not in the set (payload: tombstone or '')
 *   lease   missed; this caller holds the lease and fills (payload: tombstone or '')
 *   wait    missed; someone else holds the lease (payload: tombstone or '')
 * filter: 'ready', 'building' (no complete filter yet) or '' (none asked).
 */
export const LOOKUP = `
local gen = redis.call('GET', ARGV[1] .. 'gen') or '0'
local base = ARGV[1] .. gen .. ':'
local v = redis.call('GET', base .. 'v:' .. ARGV[2])
if v then return {gen, 'hit', v, ''} end
local tomb = redis.call('GET', base .. 't:' .. ARGV[2]) or ''
local filter = ''
if ARGV[3] ~= '' then
  local fk = base .. 'f:' .. ARGV[3]
  if redis.call('EXISTS', fk .. ':ready') == 1 and redis.call('EXISTS', fk) == 1 then
    filter = 'ready'
    for i = 1, tonumber(ARGV[6]) do
      if redis.call('GETBIT', fk, tonumber(ARGV[6 + i])) == 0 then return {gen, 'absent', tomb, filter} end
    end
  else
    filter = 'building'
  end
end
if redis.call('SET', base .. 'l:' .. ARGV[2], ARGV[4], 'NX', 'PX', ARGV[5]) then
  return {gen, 'lease', tomb, filter}
end
return {gen, 'wait', tomb, filter}
`;

/**
 * Fill after a load. ARGV: prefix, gen, key, lease token, position the load reflects,
 * value, ttl ms. Stores only if the generation is the same, the caller still holds the
 * lease (an invalidation since took it away), and the load is at least as fresh as the
 * last invalidation (a replica behind the write must not put the old value back).
 * Returns 'ok', 'gen', 'lease' or 'stale'.
 */
export const FILL = `
local gen = redis.call('GET', ARGV[1] .. 'gen') or '0'
if gen ~= ARGV[2] then return 'gen' end
local base = ARGV[1] .. gen .. ':'
if redis.call('GET', base .. 'l:' .. ARGV[3]) ~= ARGV[4] then return 'lease' end
local tomb = redis.call('GET', base .. 't:' .. ARGV[3])
if tomb and tomb > ARGV[5] then return 'stale' end
redis.call('SET', base .. 'v:' .. ARGV[3], ARGV[6], 'PX', ARGV[7])
redis.call('DEL', base .. 'l:' .. ARGV[3])
return 'ok'
`;

/**
 * Lease for a background refresh of a key that is still cached. ARGV: prefix, key, token,
 * lease ms. Returns {gen, tombstone} when taken, else {}.
 */
export const REFRESH_LEASE = `
local gen = redis.call('GET', ARGV[1] .. 'gen') or '0'
local base = ARGV[1] .. gen .. ':'
if redis.call('SET', base .. 'l:' .. ARGV[2], ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {gen, redis.call('GET', base .. 't:' .. ARGV[2]) or ''}
end
return {}
`;

/**
 * Invalidation after a committed write. ARGV: prefix, key, commit position, tombstone ms,
 * channel, now (epoch ms), invalidation id. Drops the value and any lease (a fill in flight
 * will fail), raises the tombstone to the position, and tells every web server to drop its
 * L1 copy. Returns how many subscribers the message went to (each acknowledges, ACK).
 */
export const INVALIDATE = `
local gen = redis.call('GET', ARGV[1] .. 'gen') or '0'
local base = ARGV[1] .. gen .. ':'
redis.call('DEL', base .. 'v:' .. ARGV[2], base .. 'l:' .. ARGV[2])
local t = redis.call('GET', base .. 't:' .. ARGV[2])
if (not t) or t < ARGV[3] then t = ARGV[3] end
redis.call('SET', base .. 't:' .. ARGV[2], t, 'PX', ARGV[4])
return redis.call('PUBLISH', ARGV[5], 'k ' .. gen .. ' ' .. ARGV[6] .. ' ' .. ARGV[7] .. ' ' .. ARGV[2])
`;

/** A subscriber has dropped its L1 copy for an invalidation. ARGV: prefix, invalidation id. */
export const ACK = `
local k = ARGV[1] .. 'ack:' .. ARGV[2]
local n = redis.call('INCR', k)
redis.call('PEXPIRE', k, 10000)
return n
`;

/** Gives up a lease after a failed load. ARGV: prefix, gen, key, token. */
export const RELEASE_LEASE = `
local k = ARGV[1] .. ARGV[2] .. ':l:' .. ARGV[3]
if redis.call('GET', k) == ARGV[4] then redis.call('DEL', k) end
return 1
`;

/** Adds a member's bits to a filter of the current generation. ARGV: prefix, filter, n, positions. */
export const ADD_MEMBER = `
local gen = redis.call('GET', ARGV[1] .. 'gen') or '0'
local fk = ARGV[1] .. gen .. ':f:' .. ARGV[2]
for i = 1, tonumber(ARGV[3]) do redis.call('SETBIT', fk, tonumber(ARGV[3 + i]), 1) end
return gen
`;

/** A new generation: the whole cache is dropped at once. ARGV: prefix, channel. */
export const BUMP_GENERATION = `
local gen = redis.call('INCR', ARGV[1] .. 'gen')
redis.call('PUBLISH', ARGV[2], 'g ' .. gen)
return gen
`;

/**
 * A key's value as Redis holds it now, for renewing an L1 copy. ARGV: prefix, key. Returns
 * {gen, value} ('' when there is none). Takes no lease: a renewal never loads.
 */
export const PEEK_VALUE = `
local gen = redis.call('GET', ARGV[1] .. 'gen') or '0'
return {gen, redis.call('GET', ARGV[1] .. gen .. ':v:' .. ARGV[2]) or ''}
`;

/**
 * Marks a filter complete once built, if the generation is still the one it was built
 * for. ARGV: prefix, gen, filter.
 */
export const FILTER_READY = `
local gen = redis.call('GET', ARGV[1] .. 'gen') or '0'
if gen ~= ARGV[2] then return 0 end
redis.call('SET', ARGV[1] .. gen .. ':f:' .. ARGV[3] .. ':ready', '1')
return 1
`;

/** Formats a WAL position for the scripts: 16 hex digits, zero padded. */
export function positionText(p: bigint): string {
  return p.toString(16).padStart(16, '0');
}

export function parsePosition(text: string): bigint {
  return text === '' ? 0n : BigInt(`0x${text}`);
}
