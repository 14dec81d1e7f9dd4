--[[
  A key's value as Redis holds it now, for renewing an L1 copy (TwoTierCache.renew). Takes
  no lease: a renewal never loads.

  KEYS[1]  the generation counter, {lc}:gen
  KEYS[2]  the value, {lc}:<gen>:v:<key>
  ARGV[1]  the generation the keys were built for
  Returns { gen, value }: value is '' when there is none, or when the generation is not ARGV[1].
]]
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return { gen, '' } end
return { gen, redis.call('GET', KEYS[2]) or '' }
