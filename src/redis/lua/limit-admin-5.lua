--[[
  An operator's change to a limit key (sluice limits set / pause / resume / reset). The schedule
  starts afresh; the line keeps its order (positions are places, not times: see includes/line.lua).

  Input:
    KEYS[1]  index: every limit key name in use (set)
    KEYS[2]  version (string, bumped so every worker notices within a second)
    KEYS[3]  the key's state (hash)
    KEYS[4]  the key's override (hash)
    KEYS[5]  the key's line (zset: holder → ticket)
    ARGV[1]  the key's name
    ARGV[2]  ttlMs of the override: 0 until removed, -1 keeps its current lifetime
    ARGV[3]  '1' deletes the override first
    ARGV[4]  the key's configured rate (requests/s, 0 = none) and ARGV[5] its configured burst
    ARGV[6 ...]  field, value pairs to set in the override ('' deletes the field)
  Output: {intervalUs, holder...}: the key's slot spacing from now on (µs, 0: no rate), then the
    line's holders in order: their jobs are delayed until about their turn at the old rate, and the
    caller may bring each forward to its turn at the new one
]]
--- @include "now-ms"
--- @include "effective-rate"

local indexKey, versionKey, stateKey, overrideKey, lineKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, ttl, clear = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local configuredRate, configuredBurst = tonumber(ARGV[4]), tonumber(ARGV[5])

local now = nowMs()
if clear then redis.call('DEL', overrideKey) end
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', overrideKey, ARGV[i]) else redis.call('HSET', overrideKey, ARGV[i], ARGV[i + 1]) end
end
if redis.call('EXISTS', overrideKey) == 1 then
  if ttl > 0 then redis.call('PEXPIRE', overrideKey, ttl) elseif ttl == 0 then redis.call('PERSIST', overrideKey) end
end
redis.call('HSET', stateKey, 'tat', now, 'pausedUntil', 0)
redis.call('HDEL', stateKey, 'decRate', 'decAt')
local o = redis.call('HMGET', overrideKey, 'rate', 'burst')
local rate, burst = tonumber(o[1] or configuredRate), tonumber(o[2] or configuredBurst)
local reply = { rate > 0 and math.floor(slotInterval(rate, burst) * 1000) or 0 }
for _, holder in ipairs(redis.call('ZRANGE', lineKey, 0, -1)) do table.insert(reply, holder) end
redis.call('SADD', indexKey, name)
redis.call('INCR', versionKey)
return reply
