--[[
  The dead-letter group counters and the number of dead letters they should add up to, read
  together (a read-only script: it answers while Redis refuses writes, when a MULTI would abort).

  Input:
    KEYS[1]  group counters (hash: group -> count), of the queue or of a batch
    KEYS[2]  the dead letters counted: the queue's hash (id -> JSON) or a batch's index (sorted set)
    ARGV[1]  'hash' or 'zset': what KEYS[2] is
  Output: {{field, count, ...}, number of dead letters}
]]
local countsKey, entriesKey = KEYS[1], KEYS[2]
local entriesType = ARGV[1]

local stored
if entriesType == 'zset' then
  stored = redis.call('ZCARD', entriesKey)
else
  stored = redis.call('HLEN', entriesKey)
end
return {redis.call('HGETALL', countsKey), stored}
