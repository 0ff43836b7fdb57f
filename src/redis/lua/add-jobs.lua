--[[
  Adds a chunk of prioritized jobs in one call, each written exactly as BullMQ 6's
  addPrioritizedJob writes it (includes/bull-job.lua: job hash, the prioritized set scored with
  BullMQ's priority counter, the `added` and `waiting` events, the queue's marker), so BullMQ
  workers, boards and Job.fromId read them as their own. A job given a delay (one far back in its limit key's line, see
  src/limits/line.ts) is written as addDelayedJob writes it instead: priority 0, the delayed set,
  the `delayed` event, the marker's next timestamp; due, it comes back ahead of the prioritized. test/integration/add-jobs.test.ts compares the two field by field: it is
  the guard for a BullMQ upgrade.

  With the jobs, in the same call, what the producer keeps about them: each idempotency key's mark
  (set only with its job, so concurrent producers and repeats inside a chunk cannot both win, and
  no claim outlives a crash) and the batch's `total`, counted by the jobs actually added. A crash
  leaves a chunk written and counted whole, or not at all.

  A lane (docs/architecture.md, "Lanes") is one job that carries several operations enqueued
  together: each of its members claims its own idempotency key's mark, and the lane's data is
  written with the members that were added; a duplicate member's place holds `null`, so every
  member keeps the place its id names (and such a lane is of version 2, which a worker that
  knows only version 1 leaves for a newer one). A lane whose every member is a duplicate is not written.

  A batch's index of places (keys.batchPlaces, KEYS[13]) holds the place of every line of a
  resumable input enqueued into it, with whatever packing: a line enqueued again is found there
  while it is queued in a lane of another packing (lanes switched, another lane size, the chunks
  moved by a fixed line), which neither its own job nor its result nor a lane id finds. It is one
  hash, kept as long as the batch (renewed by every call here, and with the batch's results by
  record-outcomes.lua): a field per part (64 consecutive lines), whose value holds each line's
  entry: `;` and the place's first 16 hex digits (a SHA-256: two lines of a part do not share
  them), then `=` and an id when the line is not answered with its operation id (a keyed member of
  a lane: its id; a line counted as a duplicate: its key's holder and the holder's batch,
  `<id>,<batch id>`).

  A chunk of a resumable input packed into lanes claims a chunk mark with its jobs: lanes are cut
  by the limits of the moment, so the same input enqueued again after a limit change would pack
  its operations into other lanes, with other ids, that no member check finds. The mark holds the
  ids the chunk's operations were given, in the chunk's order, for the dedup window; while it is
  held the chunk adds nothing and answers with them. A member counted as a duplicate is kept as
  its key's holder and the holder's batch (`<id>,<batch id>`), in the mark and in the index of
  places alike, so that a run answered by either lists the duplicates again (the producer lists
  them in a second call, which a crash may have cut off; listing is idempotent).

  Input:
    KEYS[1]  the queue's meta (hash)
    KEYS[2]  prioritized (zset)
    KEYS[3]  the priority counter (string)
    KEYS[4]  the marker (zset) that wakes workers
    KEYS[5]  events (stream)
    KEYS[6]  active (list)
    KEYS[7]  the batch (hash: counters), or a placeholder when there is no batch
    KEYS[8]  the batch's results (hash), or a placeholder
    KEYS[9]  the queue's batch index (zset)
    KEYS[10] delayed (zset)
    KEYS[11] the chunk's mark (string), or a placeholder
    KEYS[12] the shard's count (hash: `fence`, the shard count keyed members must have been routed
      with; see src/queue/shards.ts), or a placeholder
    KEYS[13] the batch's index of places (hash), or a placeholder
    then per job: its hash, then per member with an idempotency key its key's mark (string), and
      per lane member without one that has a place (a line of a resumable input) the hash of the
      job it would be alone, `p-<place>` (written so when lanes were off), unless ARGV[11] is '1'
    ARGV[1]  now (ms): the jobs' timestamp, the batch's score in the index
    ARGV[2]  for a chunk with a mark: per member (in the order below), its place in the chunk (from
      1), separated by spaces; '' for none
    ARGV[3]  priority (the same for every job)
    ARGV[4]  batch id, or '' for none
    ARGV[5]  the batch's createdAt (ISO), kept when the batch exists
    ARGV[6]  batch retention (s)
    ARGV[7]  dedup window (ms): how long a mark holds its key
    ARGV[8]  batches listed before this time (ms) are past retention and leave the index
    ARGV[9]  the shard count the keyed members were routed with, or '' when none is keyed
    ARGV[10] '1' when the batch keeps an index of places (KEYS[13]), else ''
    ARGV[11] '1' when the batch is new: its id was made for the enqueue writing it, so no line of it
      was written before as a job of its own (a place is a hash of its batch id and more), and the
      single-job keys (`p-<place>`, below) are not sent nor looked at (a million-line enqueue: a
      fifth of this script's time)
    then per job: id, name, opts (JSON), its delay (ms; 0 for none), '1' for a lane, its data (a
      lane's: the text before its members, their data joined by commas, the text after), for a lane
      the byte lengths of the text before its members and of each member's data, separated by
      spaces ('' for a single job), its member count n; then per member: its place in its input
      ('' when none), '1' when it has an idempotency key, the part of the index of places that
      holds its place ('' when none).
      A member's ids are not sent (src/queue/lanes.ts newLane makes them so): its job id is a
      single job's, `<lane id>-<index from 0>` in a lane; the id its result line is kept under in
      the batch (its operation id) is its job id, but for a lane member of a resumable input
      without a key: `p-<place>`, as its single job would be (whose hash is among the keys)
  Output: when keyed members were routed with a shard count other than the shard's fence (the count
    is changing, or the producer's was stale), one reply: `!` and the fence; nothing is written.
    When the chunk's mark is held, one reply: `=` and the mark (the chunk's ids in its order,
    separated by spaces; a duplicate: `<holder id>,<holder's batch>`). Else per member, 1 when added; 0 when it is there already (a job with that id exists, left as
    it is as BullMQ does); for a member with a place that ran (its result is in the batch), is queued as a job of its own,
    or is in the batch's index of places,
    '<its operation id> <batch id> <place>'; for a key already
    held, the key's mark: '<id> <batch id> <place>' (an older mark is the job id alone; the job id
    alone too when the job outlived its mark, which BullMQ would silently not add again)
]]
--- @include "bull-job"
local meta, prioritized, counterKey, marker, events, active = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local batchKey, resultsKey, indexKey, delayed = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local now, priority = ARGV[1], tonumber(ARGV[3])
local batchId, createdAt, retention, dedupMs, expiredBefore = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local chunkMark, chunkPlaces = KEYS[11], ARGV[2]
local shardCount, routedWith = KEYS[12], ARGV[9]
local placesKey = ARGV[10] == '1' and KEYS[13] or nil
local newBatch = ARGV[11] == '1'

-- A key's mark must be on the shard every producer picks for it: one routed by another count than
-- the shard's fence would dodge a mark held on another shard (sent twice), so nothing is written.
if routedWith ~= '' then
  local fence = redis.call('HGET', shardCount, 'fence') or '1'
  if fence ~= routedWith then return { '!' .. fence } end
end

if chunkPlaces ~= '' then
  local held = redis.call('GET', chunkMark)
  if held then
    if placesKey then redis.call('EXPIRE', placesKey, retention) end
    return { '=' .. held }
  end
end

local maxEvents = eventsMaxLen(meta)
local q = { meta = meta, events = events, counter = counterKey, prioritized = prioritized, maxEvents = maxEvents, active = active, marker = marker }

-- A member with a place ran and was removed: its result in the batch says so (for one with a key
-- too, once its mark's window is over: the same input enqueued again later must not send it twice).
-- Looked up by its operation id, which a line without a key has whatever lane it was packed in, and
-- by its lane id (where a version before that kept it).
-- (A batch with no result yet, as on an input's first run, is asked once a call, not once a member.)
local anyRan = batchId ~= '' and redis.call('EXISTS', resultsKey) == 1
local function ranInBatch(memberId, resultId, place)
  if place == '' or not anyRan then return false end
  return redis.call('HEXISTS', resultsKey, resultId) == 1 or (memberId ~= resultId and redis.call('HEXISTS', resultsKey, memberId) == 1)
end

-- A member that ran at its place is answered with its operation id there (a lane id of another
-- packing would name no operation), in a mark's form.
local function ranAt(resultId, place)
  return resultId .. ' ' .. batchId .. ' ' .. place
end

-- The parts of the batch's index of places this call reads (each once), with the entries it adds
-- to each (written at the end, one HSET a part).
local parts, partNames = {}, {}
local function part(name)
  local known = parts[name]
  if not known then
    known = { entries = redis.call('HGET', placesKey, name) or '', added = {} }
    parts[name], partNames[#partNames + 1] = known, name
  end
  return known
end

-- The id a place's entry keeps ('' for none), or nil when the place is not in the index.
local function indexedAt(name, place)
  local known, field = part(name), string.sub(place, 1, 16)
  if known.added[field] then return known.added[field] end
  -- A part not written yet (an input's first run) holds nothing: no search string made per line.
  if known.entries == '' then return nil end
  local _, last = string.find(known.entries, ';' .. field, 1, true)
  if not last then return nil end
  return string.match(known.entries, '^=([^;]*)', last + 1) or ''
end

local function index(name, place, id)
  part(name).added[string.sub(place, 1, 16)] = id
end

-- A member whose place is in the batch's index was enqueued before, however it was packed:
-- answered with the id its entry keeps, else its operation id; one counted as a duplicate then
-- (its entry `<holder>,<holder's batch>`), with its key's holder, as its key's mark answers.
local function indexedBefore(name, resultId, place)
  if name == '' then return nil end
  local id = indexedAt(name, place)
  if not id then return nil end
  local holder, holderBatch = string.match(id, '^([^,]*),(.*)$')
  if holder then return holder .. ' ' .. holderBatch end
  return ranAt(id ~= '' and id or resultId, place)
end

-- What the index and a chunk's mark keep of a member not added (`why`: its answer, see Output):
-- the id its place holds when it is at its own place (an earlier run of the same line), else,
-- counted as a duplicate, its key's holder and the holder's batch, `<id>,<batch>`, so that a run
-- that finds it there can list it again (the run that wrote it may have been killed before it did).
local function keptOf(why, place)
  local id, holderBatch, holderPlace = string.match(why, '^(%S*) ?(%S*) ?(%S*)$')
  if place ~= '' and holderPlace == place then return id end
  return id .. ',' .. holderBatch
end

-- Why a member cannot be added (see Output), or nil when it can. A lane that exists holds all its members.
-- A lane member of a resumable input written before as a job of its own (lanes were off) is that job.
-- (Its own job, its result and its lane id find what a batch written before its index of places holds.)
-- A keyed line whose key's job exists is at its place when the index says so (an earlier run of
-- the batch, past the key's window), else a duplicate of that job.
local function blocked(jobKey, markKey, singleKey, partName, memberId, resultId, place, keyed, lane)
  if keyed then
    local mark = redis.call('GET', markKey)
    if mark then return mark end
  elseif not lane and redis.call('EXISTS', jobKey) == 1 then
    return 0
  end
  local before = indexedBefore(partName, resultId, place)
  if before then return before end
  if keyed and not lane and redis.call('EXISTS', jobKey) == 1 then return memberId end
  if singleKey and redis.call('EXISTS', singleKey) == 1 then return ranAt(resultId, place) end
  if ranInBatch(memberId, resultId, place) then return ranAt(resultId, place) end
  return nil
end

-- BullMQ's delayed score: the due time with a counter in its low 12 bits, FIFO within a millisecond.
local function delayedScore(dueAt)
  local low, high = dueAt * 0x1000, (dueAt + 1) * 0x1000 - 1
  local last = redis.call('ZREVRANGEBYSCORE', delayed, high, low, 'WITHSCORES', 'LIMIT', 0, 1)
  if last[2] then return math.min(high, tonumber(last[2]) + 1) end
  return low
end

-- A lane's data without the members that were not added: `null` in their places (`kept[i]` false).
-- (Redis hashes every byte of every string a script makes: the data is cut only in this case.)
local function laneData(data, lengths, kept)
  local sizes = {}
  for size in string.gmatch(lengths, '%d+') do sizes[#sizes + 1] = tonumber(size) end
  local parts, at = {}, sizes[1] + 1
  for i = 1, #sizes - 1 do
    local size = sizes[i + 1]
    parts[i] = kept[i] and string.sub(data, at, at + size - 1) or 'null'
    -- Past the comma after it (past its end, for the last).
    at = at + size + 1
  end
  local before = string.sub(data, 1, sizes[1])
  -- A lane with empty places is of the version that has them (src/queue/lanes.ts, LANE_WITH_GAPS_VERSION).
  before = string.gsub(before, '^{"v":1,', '{"v":2,', 1)
  return before .. table.concat(parts, ',') .. string.sub(data, at - 1)
end

-- A member's index as text, made once a call (a number made text goes through sprintf).
local indexText = {}
local function textOf(i)
  local text = indexText[i]
  if not text then
    text = tostring(i)
    indexText[i] = text
  end
  return text
end

-- Per member (by its place in `out`): its id, and for one not added with a string answer what keptOf keeps.
local out, memberIds, keptIds = {}, {}, {}
local added = 0
local addedDelayed, addedNow = false, false
local k, a = 14, 12
while k <= #KEYS do
  local jobKey = KEYS[k]
  local jobId, name, opts, delay, lane = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4] == '1'
  local data, lengths, n = ARGV[a + 5], ARGV[a + 6], tonumber(ARGV[a + 7])
  k, a = k + 1, a + 8
  local laneThere = lane and redis.call('EXISTS', jobKey) == 1
  -- Which members were added, and how many.
  local kept, real = {}, 0
  for i = 1, n do
    local place, keyed = ARGV[a], ARGV[a + 1] == '1'
    -- The part of the index that holds its place, when the batch keeps one and it has a place.
    local partName = placesKey and place ~= '' and ARGV[a + 2] or ''
    local memberId = lane and (jobId .. '-' .. textOf(i - 1)) or jobId
    local resultId = (lane and not keyed and place ~= '') and ('p-' .. place) or memberId
    -- A lane member whose operation id is not its own names the job it would be alone too.
    local markKey = keyed and KEYS[k] or nil
    if keyed then k = k + 1 end
    local singleKey = not newBatch and resultId ~= memberId and KEYS[k] or nil
    if singleKey then k = k + 1 end
    a = a + 3
    memberIds[#memberIds + 1] = memberId
    local why
    if laneThere then
      -- Written by an earlier run of the same input: each member is there, or a duplicate of the key's
      -- holder (its key's mark says so, or past the key's window the index of places).
      why = keyed and (redis.call('GET', markKey) or indexedBefore(partName, resultId, place)) or 0
    else
      why = blocked(jobKey, markKey, singleKey, partName, memberId, resultId, place, keyed, lane)
    end
    if why then
      -- A line counted as a duplicate (its key held) is in the index too, with its key's holder: the
      -- same input enqueued again once the key's window is over adds it no more than the first time.
      local keptId = type(why) == 'string' and keptOf(why, place) or nil
      if partName ~= '' and keyed and keptId and not indexedAt(partName, place) then index(partName, place, keptId) end
      out[#out + 1] = why
      keptIds[#out] = keptId
      kept[i] = false
    else
      if keyed then redis.call('SET', markKey, memberId .. ' ' .. batchId .. ' ' .. place, 'PX', dedupMs) end
      if partName ~= '' then index(partName, place, (lane and keyed) and memberId or '') end
      kept[i] = true
      real = real + 1
      out[#out + 1] = 1
    end
  end
  if real > 0 then
    if real < n then data = laneData(data, lengths, kept) end
    if delay > 0 then
      redis.call('HSET', jobKey, 'name', name, 'data', data, 'opts', opts, 'timestamp', now, 'delay', delay, 'priority', 0)
      redis.call('XADD', events, '*', 'event', 'added', 'jobId', jobId, 'name', name)
      local dueAt = tonumber(now) + delay
      redis.call('ZADD', delayed, delayedScore(dueAt), jobId)
      redis.call('XADD', events, 'MAXLEN', '~', maxEvents, '*', 'event', 'delayed', 'jobId', jobId, 'delay', dueAt)
      addedDelayed = true
    else
      addPrioritizedJob(q, jobKey, jobId, name, data, opts, now, priority)
      addedNow = true
    end
    added = added + real
  end
end

for _, name in ipairs(partNames) do
  local known, entries = parts[name], {}
  for field, id in pairs(known.added) do entries[#entries + 1] = ';' .. field .. (id ~= '' and '=' .. id or '') end
  if #entries > 0 then redis.call('HSET', placesKey, name, known.entries .. table.concat(entries)) end
end
-- Renewed with the batch by every call, also one that adds nothing: a batch held back (a paused key)
-- longer than its retention since its first enqueue keeps it while its lines wait.
if placesKey then redis.call('EXPIRE', placesKey, retention) end

if batchId ~= '' then
  redis.call('HINCRBY', batchKey, 'total', added)
  redis.call('HSETNX', batchKey, 'createdAt', createdAt)
  redis.call('EXPIRE', batchKey, retention)
  -- Listed among the queue's recent batches at first sight; those past retention leave the list.
  if redis.call('ZADD', indexKey, 'NX', now, batchId) == 1 then
    redis.call('ZREMRANGEBYSCORE', indexKey, '-inf', expiredBefore)
  end
end

-- The chunk's ids in its order: a member's own, or for one not added what keptOf keeps.
if chunkPlaces ~= '' and tonumber(dedupMs) > 0 then
  local ids, i = {}, 0
  for place in string.gmatch(chunkPlaces, '%d+') do
    i = i + 1
    ids[tonumber(place)] = keptIds[i] or memberIds[i]
  end
  redis.call('SET', chunkMark, table.concat(ids, ' '), 'PX', dedupMs)
end

-- Workers waiting on the marker wake when the first delayed job is due (BullMQ's addDelayMarkerIfNeeded).
if addedDelayed then
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if first[2] then redis.call('ZADD', marker, tonumber(first[2]) / 0x1000, '1') end
end
if addedNow then wakeWorkers(q) end
return out
