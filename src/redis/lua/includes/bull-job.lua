-- Writing a job as BullMQ 6 writes one (test/integration/add-jobs.test.ts compares the two field by
-- field: it is the guard for a BullMQ upgrade).

-- The events stream's length (BullMQ keeps it in the queue's meta, 10,000 unless set).
local function eventsMaxLen(meta)
  local maxEvents = redis.call('HGET', meta, 'opts.maxLenEvents')
  if not maxEvents then
    maxEvents = 10000
    redis.call('HSET', meta, 'opts.maxLenEvents', maxEvents)
  end
  return maxEvents
end

-- A prioritized job, as addPrioritizedJob writes it: the job hash, the prioritized set scored with
-- the priority counter, the `added` and `waiting` events (wakeWorkers then wakes a worker).
local function addPrioritizedJob(q, jobKey, jobId, name, data, opts, now, priority)
  redis.call('HSET', jobKey, 'name', name, 'data', data, 'opts', opts, 'timestamp', now, 'delay', 0, 'priority', priority)
  redis.call('XADD', q.events, '*', 'event', 'added', 'jobId', jobId, 'name', name)
  local counter = redis.call('INCR', q.counter)
  redis.call('ZADD', q.prioritized, priority * 0x100000000 + counter % 0x100000000, jobId)
  redis.call('XADD', q.events, 'MAXLEN', '~', q.maxEvents, '*', 'event', 'waiting', 'jobId', jobId)
end

-- Wakes a worker for jobs that wait now, unless the queue is paused or at its global concurrency.
local function wakeWorkers(q)
  local state = redis.call('HMGET', q.meta, 'paused', 'concurrency')
  local maxed = state[2] and redis.call('LLEN', q.active) >= tonumber(state[2])
  if not state[1] and not maxed then redis.call('ZADD', q.marker, 0, '0') end
end
