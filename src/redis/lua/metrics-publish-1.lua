--[[
  Stores one worker's metrics snapshot as `<staleAtMs>|<payload>`, stamped with Redis's clock, so
  hosts' clocks do not matter. It also looks at one random other entry and deletes it if stale, and
  keeps the hash expiring after the longest keep, so the entries of dead workers go away even when
  no server reads them. (HRANDFIELD needs Redis 6.2; on older servers that clean-up is skipped.)

  Input:
    KEYS[1]  worker snapshots (hash: worker id -> staleAt|payload)
    ARGV[1]  the worker's id
    ARGV[2]  keepMs, how long the snapshot counts as live
    ARGV[3]  payload (JSON)
  Output: now (ms)
]]
--- @include "now-ms"

local snapshotsKey = KEYS[1]
local worker, keep, payload = ARGV[1], tonumber(ARGV[2]), ARGV[3]

local now = nowMs()
local probe = redis.pcall('HRANDFIELD', snapshotsKey)
if type(probe) == 'string' and probe ~= worker then
  local value = redis.call('HGET', snapshotsKey, probe)
  local bar = value and string.find(value, '|', 1, true)
  local staleAt = bar and tonumber(string.sub(value, 1, bar - 1))
  if not staleAt or staleAt < now then redis.call('HDEL', snapshotsKey, probe) end
end
redis.call('HSET', snapshotsKey, worker, string.format('%.0f', now + keep) .. '|' .. payload)
if redis.call('PTTL', snapshotsKey) < keep then redis.call('PEXPIRE', snapshotsKey, keep) end
return now
