--[[
  Invalidates a key after a committed write (TwoTierCache.invalidate): drops the value and
  any lease (a fill in flight then fails), raises the tombstone to the commit's position,
  and tells every web server to drop its L1 copy.

  KEYS[1]  the generation counter, {lc}:gen
  KEYS[2]  the value, {lc}:<gen>:v:<key>
  KEYS[3]  the lease, {lc}:<gen>:l:<key>
  KEYS[4]  the tombstone, {lc}:<gen>:t:<key>
  ARGV[1]  the generation the keys were built for
  ARGV[2]  the commit's WAL position (16 hex digits)
  ARGV[3]  the tombstone's life in ms
  ARGV[4]  the invalidation channel, {lc}:invalidate (a channel, not a key)
  ARGV[5]  now, epoch ms (receivers measure the delivery delay)
  ARGV[6]  the invalidation's id (receivers acknowledge it, ack-1.lua)
  ARGV[7]  the cache key, for the message

  Returns { gen, receivers }: how many subscribers the message 'k <gen> <now> <id> <key>'
  went to; receivers is -1 when the generation is not ARGV[1] (nothing was done).
]]
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return { gen, -1 } end
redis.call('DEL', KEYS[2], KEYS[3])
local t = redis.call('GET', KEYS[4])
if (not t) or t < ARGV[2] then t = ARGV[2] end
redis.call('SET', KEYS[4], t, 'PX', ARGV[3])
return { gen, redis.call('PUBLISH', ARGV[4], 'k ' .. gen .. ' ' .. ARGV[5] .. ' ' .. ARGV[6] .. ' ' .. ARGV[7]) }
