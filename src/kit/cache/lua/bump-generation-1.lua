--[[
  Starts a new generation: every key of the old one is unreachable at once (they expire by
  themselves), and every web server is told to empty its L1. Used after an outage in which
  invalidations were lost, and by whatever writes behind the app's back (the bench's seed).

  KEYS[1]  the generation counter, {lc}:gen
  ARGV[1]  the invalidation channel, {lc}:invalidate (a channel, not a key)
  Returns the new generation.
]]
local gen = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], 'g ' .. gen)
return gen
