--[[
  Releases a concurrency lease on every key it was taken on.

  Input:
    KEYS[1 ...]  the leases (zset) of each key the lease holds
    ARGV[1]      leaseId
  Output: 1
]]
local leaseId = ARGV[1]

for i = 1, #KEYS do redis.call('ZREM', KEYS[i], leaseId) end
return 1
