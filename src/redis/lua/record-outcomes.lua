--[[
  Records how operations ended, atomically and at most once per job instance: the batch's
  counters and result line and, for a failure, the dead letter with its index and group counters.
  A job that runs twice (its worker died after the request, before BullMQ heard of it) is counted
  once: the outcome marker is set with NX.

  Input:
    KEYS[9 * (i - 1) + 1 ...]  for outcome i, nine keys:
      marker (string: the job instance's outcome), batch (hash: counters), batch results (hash),
      dead letters (hash), dead-letter index (zset), batch dead letters (zset), groups (hash: counts),
      groups' latest (hash: newest id per group), batch groups (hash: counts)
      (the batch keys are a placeholder in the queue's slot when the operation has no batch)
    ARGV[1]  marker lifetime (ms)
    ARGV[2]  batch retention (s): each batch key's lifetime, renewed once per call
    ARGV[3]  now (ms), the dead letters' index score
    ARGV[3 + 7 * (i - 1) + 1 ...]  for outcome i: outcome ('succeeded' or 'deadLettered'), jobId,
      opId, result line (JSON), dead letter (JSON, or ''), '1' when in a batch, group field
  Output: per outcome, 1 when written, 0 when this job instance's outcome was already recorded
]]
local markerTtl, retention, now = ARGV[1], ARGV[2], ARGV[3]

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
local function count(key, field)
  if not counts[key] then
    counts[key] = {}
    countKeys[#countKeys + 1] = key
  end
  counts[key][field] = (counts[key][field] or 0) + 1
end
local function line(key, field, value)
  if not lines[key] then
    lines[key] = {}
    lineKeys[#lineKeys + 1] = key
  end
  local pending = lines[key]
  pending[#pending + 1] = field
  pending[#pending + 1] = value
end

local written = {}
for i = 1, #KEYS / 9 do
  local k, a = (i - 1) * 9, 3 + (i - 1) * 7
  local markerKey, batchKey, batchResultsKey = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local deadLettersKey, deadLetterIndexKey, batchDeadLettersKey = KEYS[k + 4], KEYS[k + 5], KEYS[k + 6]
  local groupsKey, groupsLatestKey, batchGroupsKey = KEYS[k + 7], KEYS[k + 8], KEYS[k + 9]
  local outcome, jobId, opId, resultLine = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local deadLetter, inBatch, group = ARGV[a + 5], ARGV[a + 6] == '1', ARGV[a + 7]
  if redis.call('SET', markerKey, outcome, 'NX', 'PX', markerTtl) then
    local dead = outcome == 'deadLettered'
    if dead then
      redis.call('HSET', deadLettersKey, jobId, deadLetter)
      redis.call('ZADD', deadLetterIndexKey, now, jobId)
      redis.call('HINCRBY', groupsKey, group, 1)
      redis.call('HSET', groupsLatestKey, group, jobId)
    end
    if inBatch then
      count(batchKey, outcome)
      line(batchResultsKey, opId, resultLine)
      if dead then
        redis.call('ZADD', batchDeadLettersKey, now, jobId)
        redis.call('HINCRBY', batchGroupsKey, group, 1)
        renew(batchGroupsKey)
      end
    end
    written[i] = 1
  else
    written[i] = 0
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
end
return written
