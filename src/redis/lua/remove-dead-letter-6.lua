--[[
  Removes a dead letter with its index entries and its place in the group counters, once: two
  removals of the same dead letter at once (two purges, two replays) lower the counters once.

  Input:
    KEYS[1]  dead letters (hash: id -> JSON)
    KEYS[2]  the dead letters' time index (zset)
    KEYS[3]  the dead letters' group counters (hash)
    KEYS[4]  its batch's dead letters' time index (zset), or a placeholder in the queue's slot
    KEYS[5]  its batch's dead letters' group counters (hash), or a placeholder
    KEYS[6]  replays under way as jobs of their own (set of ids)
    ARGV[1]  the dead letter's id
    ARGV[2]  its group field
    ARGV[3]  '1' when it has a batch (KEYS[4] and KEYS[5] are its), else ''
  Output: 1 when it was removed, 0 when it was gone already
]]
local id, field = ARGV[1], ARGV[2]
redis.call('SREM', KEYS[6], id)
if redis.call('HDEL', KEYS[1], id) == 0 then return 0 end
redis.call('ZREM', KEYS[2], id)
redis.call('HINCRBY', KEYS[3], field, -1)
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[4], id)
  redis.call('HINCRBY', KEYS[5], field, -1)
end
return 1
