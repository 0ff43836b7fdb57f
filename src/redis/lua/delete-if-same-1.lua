--[[
  Deletes a key only if it still holds the value the caller knows: drops a refused OAuth2 token
  unless another worker replaced it meanwhile, and lets go of a lock only while it is the caller's.

  Input:
    KEYS[1]  the key (string)
    ARGV[1]  the value it must hold
  Output: 1 when deleted, else 0
]]
local key, expected = KEYS[1], ARGV[1]

if redis.call('GET', key) == expected then return redis.call('DEL', key) end
return 0
