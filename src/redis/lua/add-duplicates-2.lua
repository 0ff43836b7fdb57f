--[[
  Lists operations that were not enqueued because an earlier one holds their idempotency key in
  their batch's results, and counts them, once each: a line already listed (the same input enqueued
  again, or a run that stopped between the chunk's two calls enqueued again) is neither written
  nor counted again.

  Input:
    KEYS[1]  the batch (hash: counters)
    KEYS[2]  the batch's results (hash: id → result line)
    ARGV[1]  batch retention (s)
    ARGV[2 * i], ARGV[2 * i + 1]  for duplicate i: its result id, its result line (JSON)
  Output: per duplicate, 1 when listed now, 0 when it was listed before
]]
local batchKey, resultsKey = KEYS[1], KEYS[2]
local retention = ARGV[1]

local listed, now = 0, {}
for i = 1, (#ARGV - 1) / 2 do
  local id, line = ARGV[2 * i], ARGV[2 * i + 1]
  now[i] = redis.call('HSETNX', resultsKey, id, line)
  listed = listed + now[i]
end
if listed > 0 then redis.call('HINCRBY', batchKey, 'duplicates', listed) end
redis.call('EXPIRE', batchKey, retention)
redis.call('EXPIRE', resultsKey, retention)
return now
