--[[
  Sets how many shards a queue is spread over (see src/queue/shards.ts): `count`, where producers
  write from now on, and `highest`, the most it ever had, which workers read and readers sum over,
  so a shard dropped from `count` is still drained and read.

  Input:
    KEYS[1]  the queue's shard count (hash, on shard 0)
    ARGV[1]  the new count
  Output: { previous count, highest } (1 for a queue never spread)
]]
local key = KEYS[1]
local count = tonumber(ARGV[1])
local previous = tonumber(redis.call('HGET', key, 'count') or '1')
local highest = math.max(tonumber(redis.call('HGET', key, 'highest') or '1'), count)
redis.call('HSET', key, 'count', count, 'highest', highest)
return { previous, highest }
