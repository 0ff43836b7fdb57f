--[[
  An operator's change to a limit key (sluice limits set / pause / resume / reset). The schedule
  starts afresh; the line keeps its order (positions are places, not times: see includes/line.lua).
  A change of rate sets the line's pace (`lineRate`) to the new rate: the caller brings the jobs
  waiting in it forward to their turns at that rate.

  Input:
    KEYS[1]  the key's state (hash)
    KEYS[2]  the key's override (hash)
    KEYS[3]  the key's line (zset: holder → ticket)
    ARGV[1]  ttlMs of the override: 0 until removed, -1 keeps its current lifetime
    ARGV[2]  '1' deletes the override first
    ARGV[3]  the key's configured rate (requests/s, 0 = none) and ARGV[4] its configured burst
    ARGV[5 ...]  field, value pairs to set in the override ('' deletes the field)
  Output: {intervalUs, holder...}: the key's slot spacing from now on (µs, 0: no rate), then the
    line's holders in order: their jobs are delayed until about their turn at the old rate, and the
    caller may bring each forward to its turn at the new one
]]
--- @include "now-ms"
--- @include "effective-rate"

local stateKey, overrideKey, lineKey = KEYS[1], KEYS[2], KEYS[3]
local ttl, clear = tonumber(ARGV[1]), ARGV[2] == '1'
local configuredRate, configuredBurst = tonumber(ARGV[3]), tonumber(ARGV[4])

local now = nowMs()
if clear then redis.call('DEL', overrideKey) end
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', overrideKey, ARGV[i]) else redis.call('HSET', overrideKey, ARGV[i], ARGV[i + 1]) end
end
if redis.call('EXISTS', overrideKey) == 1 then
  if ttl > 0 then redis.call('PEXPIRE', overrideKey, ttl) elseif ttl == 0 then redis.call('PERSIST', overrideKey) end
end
redis.call('HSET', stateKey, 'tat', now, 'pausedUntil', 0)
redis.call('HDEL', stateKey, 'decRate', 'decAt')
local o = redis.call('HMGET', overrideKey, 'rate', 'burst')
local rate, burst = tonumber(o[1] or configuredRate), tonumber(o[2] or configuredBurst)
-- A new rate: the caller brings the line forward to it (src/queue/wake-jobs.ts), so the line's pace
-- is that from now on (includes/line.lua; jobs timed faster come back early and are re-timed later).
local rateChanged = clear
for i = 5, #ARGV, 2 do
  if ARGV[i] == 'rate' then rateChanged = true end
end
if rateChanged then
  if rate > 0 then redis.call('HSET', stateKey, 'lineRate', rate) else redis.call('HDEL', stateKey, 'lineRate') end
end
local reply = { rate > 0 and math.floor(slotInterval(rate, burst) * 1000) or 0 }
for _, holder in ipairs(redis.call('ZRANGE', lineKey, 0, -1)) do table.insert(reply, holder) end
return reply
