--[[
  Replays dead letters of one batch as one lane (queue/lanes.ts), in one call: each member that is
  still a dead letter leaves the dead letters (its index entries, its place in the group counters,
  the batch's `deadLettered` count) and the lane is written with those members, as a prioritized
  job (includes/bull-job.lua). All of it or none: a crash cannot leave a dead letter both listed and
  on its way, nor a lane with a member that is also still listed, so a replay repeated after a
  crash sends each operation once.

  A member whose replay as a job of its own has begun (begin-replay-3.lua put it in KEYS[14]) is
  left to that replay: the caller finishes it the same way, whose job id is the same every time.

  Input:
    KEYS[1]  the queue's meta (hash)
    KEYS[2]  prioritized (zset)
    KEYS[3]  the priority counter (string)
    KEYS[4]  the marker (zset) that wakes workers
    KEYS[5]  events (stream)
    KEYS[6]  active (list)
    KEYS[7]  the lane's job (hash)
    KEYS[8]  dead letters (hash: id -> JSON)
    KEYS[9]  the dead letters' time index (zset)
    KEYS[10] the dead letters' group counters (hash)
    KEYS[11] the batch (hash: counters)
    KEYS[12] the batch's dead letters' time index (zset)
    KEYS[13] the batch's dead letters' group counters (hash)
    KEYS[14] replays under way as jobs of their own (set of ids)
    ARGV[1]  now (ms): the lane's timestamp
    ARGV[2]  priority
    ARGV[3]  the lane's job id
    ARGV[4]  the lane's opts (JSON)
    ARGV[5]  the lane's data before its members' data, ARGV[6] after it
    then per member: its dead letter's id, its group field, its data in the lane (JSON)
  Output: per member, its index in the lane; -1 when it is no longer a dead letter (replayed or
    purged meanwhile); -2 when its replay as a job of its own has begun
]]
--- @include "bull-job"
--- @include "dead-letter-groups"
local q = { meta = KEYS[1], prioritized = KEYS[2], counter = KEYS[3], marker = KEYS[4], events = KEYS[5], active = KEYS[6] }
local laneKey, deadLetters, deadLetterIndex, groups = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local batchKey, batchIndex, batchGroups, replaying = KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local now, priority, laneId, opts, before, after = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local out, kept, removed = {}, {}, {}
local fields = {}
local ids = {}
for a = 7, #ARGV, 3 do ids[#ids + 1] = ARGV[a] end
local under = redis.call('SMISMEMBER', replaying, unpack(ids))
for i, id in ipairs(ids) do
  local a = 7 + 3 * (i - 1)
  local field, data = ARGV[a + 1], ARGV[a + 2]
  if under[i] == 1 then
    out[#out + 1] = -2
  elseif redis.call('HDEL', deadLetters, id) == 0 then
    out[#out + 1] = -1
  else
    removed[#removed + 1] = id
    fields[field] = (fields[field] or 0) + 1
    out[#out + 1] = #kept
    kept[#kept + 1] = data
  end
end

-- What the removed members leave, written once per key (per group field) for the lane.
if #removed > 0 then
  redis.call('ZREM', deadLetterIndex, unpack(removed))
  redis.call('ZREM', batchIndex, unpack(removed))
  for field, n in pairs(fields) do
    lowerGroup(groups, field, n)
    lowerGroup(batchGroups, field, n)
  end
  -- The batch waits for them again.
  if redis.call('EXISTS', batchKey) == 1 then redis.call('HINCRBY', batchKey, 'deadLettered', -#removed) end
end

if #kept > 0 then
  q.maxEvents = eventsMaxLen(q.meta)
  addPrioritizedJob(q, laneKey, laneId, 'lane', before .. table.concat(kept, ',') .. after, opts, now, priority)
  wakeWorkers(q)
end
return out
