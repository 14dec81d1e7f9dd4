--[[
  Looks a key up on a miss of L1 (TwoTierCache.fetch): the value, or "absent" from the
  membership filter, or the lease to load and fill it, or "someone else is loading it".

  KEYS[1]  the generation counter, {lc}:gen
  KEYS[2]  the value, {lc}:<gen>:v:<key>
  KEYS[3]  the tombstone, {lc}:<gen>:t:<key>
  KEYS[4]  the lease, {lc}:<gen>:l:<key>
  KEYS[5]  the filter's bitmap, {lc}:<gen>:f:<filter> (unused unless ARGV[2] is '1')
  KEYS[6]  the filter's completion mark, {lc}:<gen>:f:<filter>:ready (likewise)
  ARGV[1]  the generation the keys were built for
  ARGV[2]  '1' to ask the filter, '' not to
  ARGV[3]  the caller's lease token
  ARGV[4]  the lease's life in ms
  ARGV[5..] the member's bit positions in the filter

  Returns { gen, status, payload, filter }:
    gen       the current generation
    status    'hit'    payload is the stored value
              'absent' the filter knows the member is not in the set
              'lease'  missed; the caller holds the lease and fills
              'wait'   missed; someone else holds the lease
              'gen'    the generation is not ARGV[1]: nothing was done, build the keys again
    payload   for absent, lease, wait: the tombstone ('' for none)
    filter    'ready', 'building' (no complete filter yet) or '' (not asked)
]]
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return { gen, 'gen', '', '' } end
local v = redis.call('GET', KEYS[2])
if v then return { gen, 'hit', v, '' } end
local tomb = redis.call('GET', KEYS[3]) or ''
local filter = ''
if ARGV[2] == '1' then
  if redis.call('EXISTS', KEYS[6]) == 1 and redis.call('EXISTS', KEYS[5]) == 1 then
    filter = 'ready'
    for i = 5, #ARGV do
      if redis.call('GETBIT', KEYS[5], tonumber(ARGV[i])) == 0 then return { gen, 'absent', tomb, filter } end
    end
  else
    filter = 'building'
  end
end
if redis.call('SET', KEYS[4], ARGV[3], 'NX', 'PX', ARGV[4]) then
  return { gen, 'lease', tomb, filter }
end
return { gen, 'wait', tomb, filter }
