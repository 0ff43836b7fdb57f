--[[
  A line catching up, step 2 of 3 (see line-catch-up-4.lua): delays each of a queue's delayed jobs
  until its turn, only ever later than it was due: a job delayed for something else as well (a
  backoff, an open circuit, its turn on another key) keeps the longer wait. Jobs no longer delayed
  (fetched, done, gone) are left alone. BullMQ's delayed score is dueMs × 0x1000 plus a counter
  that orders jobs due in the same millisecond: the counter is kept. When a job moved, the queue's
  marker names the earliest delayed job, as BullMQ's own changeDelay leaves it.

  Input:
    KEYS[1]  the queue's delayed jobs (BullMQ's zset)
    KEYS[2]  the queue's marker (BullMQ's zset)
    ARGV[1], ARGV[2], …  pairs: job id, due time (ms since the epoch)
  Output: how many jobs were re-timed
]]
local delayed, marker = KEYS[1], KEYS[2]
local moved = 0
for i = 1, #ARGV, 2 do
  local id, due = ARGV[i], tonumber(ARGV[i + 1])
  local score = redis.call('ZSCORE', delayed, id)
  if score and due > math.floor(tonumber(score) / 0x1000) then
    redis.call('ZADD', delayed, 'XX', due * 0x1000 + tonumber(score) % 0x1000, id)
    moved = moved + 1
  end
end
if moved > 0 then
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if first[2] then redis.call('ZADD', marker, math.floor(tonumber(first[2]) / 0x1000), '1') end
end
return moved
