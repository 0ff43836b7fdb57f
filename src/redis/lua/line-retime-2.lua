--[[
  A line catching up, step 2 of 3 (see line-catch-up-4.lua): moves each of a queue's delayed jobs to
  its turn, in one direction only.
  - later (a line that runs behind): never earlier than it was due: a job delayed for something
    else as well (a backoff, an open circuit, its turn on another key) keeps the longer wait;
  - earlier (a line slower than its key may be): never later than it was due: a job due sooner (it
    came back early once and was sent away again) keeps its time, and one that comes back early
    is sent away again (its turn on another key, a backoff) at the cost of one fetch.
  Jobs no longer delayed (fetched, done, gone) are left alone. BullMQ's delayed score is dueMs ×
  0x1000 plus a counter that orders jobs due in the same millisecond: the counter is kept. When a
  job moved, the queue's marker names the earliest delayed job, as BullMQ's own changeDelay leaves
  it: a worker waiting for the next due job wakes for one brought forward.

  Input:
    KEYS[1]  the queue's delayed jobs (BullMQ's zset)
    KEYS[2]  the queue's marker (BullMQ's zset)
    ARGV[1]  'later' or 'earlier'
    ARGV[2], ARGV[3], …  pairs: job id, due time (ms since the epoch)
  Output: how many jobs were re-timed
]]
local delayed, marker = KEYS[1], KEYS[2]
local earlier = ARGV[1] == 'earlier'
local moved = 0
for i = 2, #ARGV, 2 do
  local id, due = ARGV[i], tonumber(ARGV[i + 1])
  local score = redis.call('ZSCORE', delayed, id)
  if score then
    local was = math.floor(tonumber(score) / 0x1000)
    if (earlier and due < was) or (not earlier and due > was) then
      redis.call('ZADD', delayed, 'XX', due * 0x1000 + tonumber(score) % 0x1000, id)
      moved = moved + 1
    end
  end
end
if moved > 0 then
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if first[2] then redis.call('ZADD', marker, math.floor(tonumber(first[2]) / 0x1000), '1') end
end
return moved
