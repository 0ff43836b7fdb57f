--[[
  Counts one failed sign-in or bearer token of a client address. The first failure opens the
  window: the counter ends with it, and the next failure opens a new one.

  Input:
    KEYS[1]  the address's failures (string counter)
    ARGV[1]  windowMs
  Output: {failures in this window, ms until the window ends}
]]
local failuresKey = KEYS[1]
local windowMs = tonumber(ARGV[1])

local failures = redis.call('INCR', failuresKey)
local left = redis.call('PTTL', failuresKey)
if left < 0 then
  redis.call('PEXPIRE', failuresKey, windowMs)
  left = windowMs
end
return {failures, left}
