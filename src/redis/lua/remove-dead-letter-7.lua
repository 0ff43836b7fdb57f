--[[
  Removes a dead letter with its index entries and its place in the group counters, once: two
  removals of the same dead letter at once (two purges, two replays) lower the counters once.

  A purge of a dead letter whose replay as a job of its own began and never finished (its first
  step, begin-replay-3.lua, had the batch stop counting it) counts it in its batch again: no job
  will come for it, and the batch would wait for one for ever.

  Input:
    KEYS[1]  dead letters (hash: id -> JSON)
    KEYS[2]  the dead letters' time index (zset)
    KEYS[3]  the dead letters' group counters (hash)
    KEYS[4]  its batch's dead letters' time index (zset), or a placeholder in the queue's slot
    KEYS[5]  its batch's dead letters' group counters (hash), or a placeholder
    KEYS[6]  replays under way as jobs of their own (set of ids)
    KEYS[7]  its batch (hash: counters), or a placeholder
    ARGV[1]  the dead letter's id
    ARGV[2]  its group field
    ARGV[3]  '1' when it has a batch (KEYS[4], KEYS[5] and KEYS[7] are its), else ''
    ARGV[4]  'purge', or 'replayed' (its job is on the queue)
  Output: 1 when it was removed, 0 when it was gone already
]]
--- @include "dead-letter-groups"
local id, field, batched, purge = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4] == 'purge'
local begun = redis.call('SREM', KEYS[6], id) == 1
if redis.call('HDEL', KEYS[1], id) == 0 then return 0 end
redis.call('ZREM', KEYS[2], id)
lowerGroup(KEYS[3], field)
if batched then
  redis.call('ZREM', KEYS[4], id)
  lowerGroup(KEYS[5], field)
  if purge and begun and redis.call('EXISTS', KEYS[7]) == 1 then redis.call('HINCRBY', KEYS[7], 'deadLettered', 1) end
end
return 1
