--[[
  Every live worker's metrics snapshot; deletes the stale ones.

  Input:
    KEYS[1]  worker snapshots (hash: worker id -> staleAt|payload)
  Output: {field, value, ...} of the entries not yet stale
]]
--- @include "now-ms"

local snapshotsKey = KEYS[1]

local now = nowMs()
local all = redis.call('HGETALL', snapshotsKey)
local live = {}
for i = 1, #all, 2 do
  local value = all[i + 1]
  local bar = string.find(value, '|', 1, true)
  local staleAt = bar and tonumber(string.sub(value, 1, bar - 1))
  if staleAt and staleAt >= now then
    live[#live + 1] = all[i]
    live[#live + 1] = value
  else
    redis.call('HDEL', snapshotsKey, all[i])
  end
end
return live
