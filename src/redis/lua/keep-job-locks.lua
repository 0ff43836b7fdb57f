--[[
  Renews the locks of the jobs a worker runs, as BullMQ's extendLocks does, with PEXPIRE where
  BullMQ uses SET: a full Redis (noeviction) refuses SET and allows PEXPIRE and SREM, so a worker
  keeps the jobs whose outcomes it is waiting to record instead of letting another worker take
  them and send them again.

  Input:
    KEYS[1]      the queue's stalled set (a renewed job is no stall candidate)
    KEYS[1 + i]  job i's lock (string: the token of the worker that holds it)
    ARGV[1]      the locks' new lifetime (ms)
    ARGV[2 * i], ARGV[2 * i + 1]  job i's id and its token
  Output: the ids of the jobs whose lock is not the worker's any more
]]
local stalledKey, lifetimeMs = KEYS[1], ARGV[1]

local lost = {}
for i = 1, #KEYS - 1 do
  local lockKey, jobId, token = KEYS[1 + i], ARGV[2 * i], ARGV[2 * i + 1]
  if redis.call('GET', lockKey) == token then
    redis.call('PEXPIRE', lockKey, lifetimeMs)
    redis.call('SREM', stalledKey, jobId)
  else
    lost[#lost + 1] = jobId
  end
end
return lost
