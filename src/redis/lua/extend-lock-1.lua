--[[
  Renews a lock, only while it is still the caller's.

  Input:
    KEYS[1]  the lock (string: its holder's id)
    ARGV[1]  the holder's id
    ARGV[2]  the lock's new lifetime (ms)
  Output: 1 when renewed, else 0
]]
local lockKey, holder, lifetimeMs = KEYS[1], ARGV[1], ARGV[2]

if redis.call('GET', lockKey) == holder then return redis.call('PEXPIRE', lockKey, lifetimeMs) end
return 0
