--[[
  An operator's change to a limit key (sluice limits set / pause / resume / reset). Starts a new
  epoch, so every booking follows the new schedule at once.

  Input:
    KEYS[1]  index: every limit key name in use (set)
    KEYS[2]  version (string, bumped so every worker notices within a second)
    KEYS[3]  the key's state (hash)
    KEYS[4]  the key's override (hash)
    KEYS[5]  the key's bookings (zset; made under the old epoch, so void: dropped)
    ARGV[1]  the key's name
    ARGV[2]  ttlMs of the override: 0 until removed, -1 keeps its current lifetime
    ARGV[3]  '1' deletes the override first
    ARGV[4 ...]  field, value pairs to set in the override ('' deletes the field)
  Output: the members of the dropped bookings (jobId|epoch): their jobs are delayed until the old
    slots, and the caller may wake them to book again under the new schedule
]]
--- @include "now-ms"

local indexKey, versionKey, stateKey, overrideKey, bookingsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, ttl, clear = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'

local now = nowMs()
if clear then redis.call('DEL', overrideKey) end
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', overrideKey, ARGV[i]) else redis.call('HSET', overrideKey, ARGV[i], ARGV[i + 1]) end
end
if redis.call('EXISTS', overrideKey) == 1 then
  if ttl > 0 then redis.call('PEXPIRE', overrideKey, ttl) elseif ttl == 0 then redis.call('PERSIST', overrideKey) end
end
redis.call('HSET', stateKey, 'tat', now, 'pausedUntil', 0)
redis.call('HDEL', stateKey, 'decRate', 'decAt')
redis.call('HINCRBY', stateKey, 'epoch', 1)
local booked = redis.call('ZRANGE', bookingsKey, 0, -1)
redis.call('DEL', bookingsKey)
redis.call('SADD', indexKey, name)
redis.call('INCR', versionKey)
return booked
