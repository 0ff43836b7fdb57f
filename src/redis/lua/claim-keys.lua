--[[
  Claims the idempotency keys of a chunk of operations before their jobs are added, so that
  concurrent producers, and repeats inside one chunk, cannot both win. A claim is short-lived
  until its job is added (the producer then extends it to the whole dedup window), so a producer
  that dies in between blocks the key for a minute, not for the window.

  Input:
    KEYS[2 * i - 1]  for operation i: the idempotency key's mark (string: the job id holding it)
    KEYS[2 * i]      for operation i: the BullMQ hash of its job
    ARGV[i]          for operation i: its job id
    ARGV[#ARGV]      the claim's lifetime (ms)
  Output: per operation, '' when this call claimed the key, else the id of the job that holds it:
    the marked one, or the job itself when it outlived its mark (BullMQ would silently skip adding
    it again, so it must count as a duplicate)
]]
local claimMs = ARGV[#ARGV]

local out = {}
for i = 1, #KEYS / 2 do
  local markKey, jobKey, jobId = KEYS[2 * i - 1], KEYS[2 * i], ARGV[i]
  local first = redis.call('GET', markKey)
  if first then
    out[i] = first
  else
    redis.call('SET', markKey, jobId, 'PX', claimMs)
    if redis.call('EXISTS', jobKey) == 1 then out[i] = jobId else out[i] = '' end
  end
end
return out
