--[[
  Adds a member's bits to a membership filter before the member is inserted
  (TwoTierCache.addMember), so that a lookup never answers "absent" for it.

  KEYS[1]  the generation counter, {lc}:gen
  KEYS[2]  the filter's bitmap, {lc}:<gen>:f:<filter>
  ARGV[1]  the generation the keys were built for
  ARGV[2..] the member's bit positions

  Returns { gen, added }: added is 1, or 0 when the generation is not ARGV[1] (nothing was
  done: build the keys again).
]]
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return { gen, 0 } end
for i = 2, #ARGV do redis.call('SETBIT', KEYS[2], tonumber(ARGV[i]), 1) end
return { gen, 1 }
