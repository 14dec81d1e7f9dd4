--[[
  Stores a loaded value (TwoTierCache.loadAndFill), only if it is still right to: the
  generation is the one the load began in, the caller still holds the lease (an
  invalidation since took it away: the load may predate the write), and the load is at
  least as fresh as the last invalidation (a replica behind the write must not put the old
  value back). The lease goes with the fill.

  KEYS[1]  the generation counter, {lc}:gen
  KEYS[2]  the lease, {lc}:<gen>:l:<key>
  KEYS[3]  the tombstone, {lc}:<gen>:t:<key>
  KEYS[4]  the value, {lc}:<gen>:v:<key>
  ARGV[1]  the generation the keys were built for
  ARGV[2]  the caller's lease token
  ARGV[3]  the WAL position the load reflects (16 hex digits)
  ARGV[4]  the value to store
  ARGV[5]  its life in ms

  Returns 'ok' (stored), 'gen' (a new generation), 'lease' (not the caller's any more) or
  'stale' (the load is older than the tombstone).
]]
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 'gen' end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 'lease' end
local tomb = redis.call('GET', KEYS[3])
if tomb and tomb > ARGV[3] then return 'stale' end
redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[5])
redis.call('DEL', KEYS[2])
return 'ok'
