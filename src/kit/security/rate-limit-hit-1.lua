--[[
  Counts one hit in a fixed rate-limit window (RedisRateLimitStore.hit).

  KEYS[1]  the window's counter, ladder:rl:<limit name>:<caller>
  ARGV[1]  the window length in milliseconds (a positive integer)

  Returns { count, resetMs }: hits in the current window including this one, and milliseconds
  until the window ends (the counter's PTTL).

  The first hit of a window creates the counter and starts its expiry; later hits only
  count. A counter found without an expiry (left by anything else) is given one, so that
  no key can count forever. Runs atomically, so concurrent hits from several web servers
  are each counted once.
]]
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return { count, ttl }
