--[[
  Records how operations ended, atomically and at most once per job instance: the batch's
  counters and result line and, for a failure, the dead letter with its index and group counters.
  A job that runs twice (its worker died after the request, before BullMQ heard of it) is counted
  once, by its outcome marker:
    - a single job's is a key of its own, set with NX (`succeeded` or `deadLettered`);
    - the operations of a lane share their lane's, a string of two bits an operation (what
      BITFIELD u2 #index reads: 0 not ended, 2 succeeded, 3 dead-lettered), read and written once
      per lane per call.
  Each distinct key is passed once (a group of outcomes of one lane and one batch names five keys,
  not nine an outcome), and an outcome names its keys by their place in KEYS.

  Input:
    KEYS[1..4]  dead letters (hash), dead-letter index (zset), groups (hash: counts),
                groups' latest (hash: newest id per group)
    KEYS[5...]  each batch's five keys: counters (hash), results (hash), dead letters (zset),
                groups (hash: counts), index of places (hash: renewed with the results, so it
                lasts as long as the batch does; see add-jobs.lua); then the markers
    ARGV[1]  marker lifetime (ms)
    ARGV[2]  batch retention (s): each batch key's lifetime, renewed once per call
    ARGV[3 ...]  for each outcome: its marker's place in KEYS, its index in its lane ('' for a
      single job), its batch's first key's place in KEYS ('0' when it has no batch), outcome
      ('succeeded' or 'deadLettered'), opId, result line (JSON); a dead-lettered one then also:
      jobId, dead letter (JSON), group field, its time (ms: the dead letters' index score)
  Output: per outcome, 1 when written, 0 when this job instance's outcome was already recorded
]]
local markerTtl, retention = ARGV[1], ARGV[2]
local DEAD = 'deadLettered'
local deadLettersKey, deadLetterIndexKey, groupsKey, groupsLatestKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- Where each outcome's arguments begin.
local starts = {}
local a = 3
while a <= #ARGV do
  starts[#starts + 1] = a
  a = a + (ARGV[a + 3] == DEAD and 10 or 6)
end

-- The markers first. A lane's marker is read once and written once per call; each of its
-- outcomes is two bits of it (from the high bits of each byte, as BITFIELD u2 #index counts them).
local written = {}
local lanes, laneKeys = {}, {}
for i, s in ipairs(starts) do
  local markerKey, index, outcome = KEYS[tonumber(ARGV[s])], ARGV[s + 1], ARGV[s + 3]
  if index == '' then
    written[i] = redis.call('SET', markerKey, outcome, 'NX', 'PX', markerTtl) and 1 or 0
  else
    local bytes = lanes[markerKey]
    if not bytes then
      bytes = {}
      local marker = redis.call('GET', markerKey)
      if marker then
        for k = 1, #marker do bytes[k] = string.byte(marker, k) end
      end
      lanes[markerKey] = bytes
      laneKeys[#laneKeys + 1] = markerKey
    end
    local n = tonumber(index)
    local k, shift = math.floor(n / 4) + 1, 6 - 2 * (n % 4)
    local byte = bytes[k] or 0
    if bit.band(bit.rshift(byte, shift), 3) == 0 then
      bytes[k] = bit.bor(byte, bit.lshift(outcome == DEAD and 3 or 2, shift))
      written[i] = 1
    else
      -- Ended before (or twice in this call): what it ended as first stays.
      written[i] = 0
    end
  end
end
for _, key in ipairs(laneKeys) do
  local bytes, last = lanes[key], 0
  for k in pairs(bytes) do
    if k > last then last = k end
  end
  for k = 1, last do bytes[k] = bytes[k] or 0 end
  redis.call('SET', key, string.char(unpack(bytes, 1, last)), 'PX', markerTtl)
end

local renewed = {}
local function renew(key)
  if not renewed[key] then
    redis.call('EXPIRE', key, retention)
    renewed[key] = true
  end
end

-- Counters and result lines are written once per batch per call (a group of outcomes of one batch
-- costs one HINCRBY per counter and one HSET), after every marker has said what counts.
local counts, countKeys = {}, {}
local lines, lineKeys = {}, {}
-- A batch's index of places, by its results' key.
local placesOf = {}
-- A key's table in `map`, made (and the key listed in `order`) when it is the first.
local function entryOf(map, order, key)
  local entry = map[key]
  if not entry then
    entry = {}
    map[key] = entry
    order[#order + 1] = key
  end
  return entry
end

for i, s in ipairs(starts) do
  if written[i] == 1 then
    local batch, outcome, opId, resultLine = tonumber(ARGV[s + 2]), ARGV[s + 3], ARGV[s + 4], ARGV[s + 5]
    local dead = outcome == DEAD
    local jobId, group, at
    if dead then
      jobId, group, at = ARGV[s + 6], ARGV[s + 8], ARGV[s + 9]
      redis.call('HSET', deadLettersKey, jobId, ARGV[s + 7])
      redis.call('ZADD', deadLetterIndexKey, at, jobId)
      redis.call('HINCRBY', groupsKey, group, 1)
      redis.call('HSET', groupsLatestKey, group, jobId)
    end
    if batch > 0 then
      local batchKey, batchResultsKey = KEYS[batch], KEYS[batch + 1]
      placesOf[batchResultsKey] = KEYS[batch + 4]
      local count = entryOf(counts, countKeys, batchKey)
      count[outcome] = (count[outcome] or 0) + 1
      local pending = entryOf(lines, lineKeys, batchResultsKey)
      pending[#pending + 1] = opId
      pending[#pending + 1] = resultLine
      if dead then
        local batchDeadLettersKey, batchGroupsKey = KEYS[batch + 2], KEYS[batch + 3]
        redis.call('ZADD', batchDeadLettersKey, at, jobId)
        redis.call('HINCRBY', batchGroupsKey, group, 1)
        renew(batchGroupsKey)
      end
    end
  end
end
-- Renewed once written: EXPIRE on a key not yet there would not hold.
for _, key in ipairs(countKeys) do
  for field, n in pairs(counts[key]) do redis.call('HINCRBY', key, field, n) end
  renew(key)
end
for _, key in ipairs(lineKeys) do
  redis.call('HSET', key, unpack(lines[key]))
  renew(key)
  renew(placesOf[key])
end
return written
