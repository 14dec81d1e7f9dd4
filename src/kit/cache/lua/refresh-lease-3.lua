--[[
  Takes the lease for a background refresh of a key that is still cached
  (TwoTierCache.refresh), so that one process reloads a hot key before it expires.

  KEYS[1]  the generation counter, {lc}:gen
  KEYS[2]  the lease, {lc}:<gen>:l:<key>
  KEYS[3]  the tombstone, {lc}:<gen>:t:<key>
  ARGV[1]  the generation the keys were built for
  ARGV[2]  the caller's lease token
  ARGV[3]  the lease's life in ms

  Returns { gen, tombstone } when the lease was taken (tombstone '' for none); { gen } when
  not: someone else holds it, or the generation is not ARGV[1].
]]
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return { gen } end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return { gen, redis.call('GET', KEYS[3]) or '' }
end
return { gen }
