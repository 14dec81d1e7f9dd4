--[[
  Gives up a lease after a failed or refused load, so that the next lookup loads at once
  instead of waiting the lease out; a lease someone else has taken since stays.

  KEYS[1]  the lease, {lc}:<gen>:l:<key>
  ARGV[1]  the caller's lease token
  Returns 1 when released, 0 when the lease was not the caller's.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
