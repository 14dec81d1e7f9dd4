--[[
  Marks a membership filter complete once it holds every member (FilterBuilder), if the
  generation is still the one it was built for; until then lookups do not trust it.

  KEYS[1]  the generation counter, {lc}:gen
  KEYS[2]  the filter's completion mark, {lc}:<gen>:f:<filter>:ready
  ARGV[1]  the generation the filter was built for
  Returns 1 when marked, 0 when a new generation began meanwhile.
]]
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], '1')
return 1
