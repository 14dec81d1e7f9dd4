--[[
  A web server has dropped its L1 copy for an invalidation (TwoTierCache.onMessage); the
  writer waits until the count reaches the number of receivers.

  KEYS[1]  the invalidation's acknowledgements, {lc}:ack:<id>
  Returns the count so far. The counter lives 10 s: long after any writer stopped waiting.
]]
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], 10000)
return n
