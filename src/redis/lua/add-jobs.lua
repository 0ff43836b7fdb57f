--[[
  Adds a chunk of prioritized jobs in one call, each written exactly as BullMQ 6's
  addPrioritizedJob writes it (job hash, the prioritized set scored with BullMQ's priority counter,
  the `added` and `waiting` events, the queue's marker), so BullMQ workers, boards and Job.fromId
  read them as their own. test/integration/add-jobs.test.ts compares the two field by field: it is
  the guard for a BullMQ upgrade.

  Input:
    KEYS[1]  the queue's meta (hash)
    KEYS[2]  prioritized (zset)
    KEYS[3]  the priority counter (string)
    KEYS[4]  the marker (zset) that wakes workers
    KEYS[5]  events (stream)
    KEYS[6]  active (list)
    KEYS[6 + i]  for job i: its hash
    ARGV[1]  timestamp (ms)
    ARGV[2]  job name (the same for every job)
    ARGV[3]  priority (the same for every job)
    ARGV[3 + 3 * (i - 1) + 1 ...]  for job i: id, data (JSON), opts (JSON)
  Output: per job, 1 when added, 0 when a job with that id exists (left as it is, as BullMQ does)
]]
local meta, prioritized, counterKey, marker, events, active = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local timestamp, name, priority = ARGV[1], ARGV[2], tonumber(ARGV[3])

local maxEvents = redis.call('HGET', meta, 'opts.maxLenEvents')
if not maxEvents then
  maxEvents = 10000
  redis.call('HSET', meta, 'opts.maxLenEvents', maxEvents)
end
local added = {}
local any = false
for i = 1, #KEYS - 6 do
  local jobKey, a = KEYS[6 + i], 3 + (i - 1) * 3
  local jobId, data, opts = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  if redis.call('EXISTS', jobKey) == 1 then
    added[i] = 0
  else
    redis.call('HSET', jobKey, 'name', name, 'data', data, 'opts', opts, 'timestamp', timestamp, 'delay', 0, 'priority', priority)
    redis.call('XADD', events, '*', 'event', 'added', 'jobId', jobId, 'name', name)
    local counter = redis.call('INCR', counterKey)
    redis.call('ZADD', prioritized, priority * 0x100000000 + counter % 0x100000000, jobId)
    redis.call('XADD', events, 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', jobId)
    added[i] = 1
    any = true
  end
end
-- Wake a worker, unless the queue is paused or at its global concurrency.
if any then
  local state = redis.call('HMGET', meta, 'paused', 'concurrency')
  local maxed = state[2] and redis.call('LLEN', active) >= tonumber(state[2])
  if not state[1] and not maxed then redis.call('ZADD', marker, 0, '0') end
end
return added
