--[[
  The first step of replaying a dead letter: the batch stops counting it as dead-lettered (once,
  however often an interrupted replay is retried), so the batch waits for the new job.

  Input:
    KEYS[1]  dead letters (hash: id -> JSON)
    KEYS[2]  replays under way (set of ids)
    KEYS[3]  the dead letter's batch (hash: counters), or a placeholder in the queue's slot
    ARGV[1]  the dead letter's id
  Output: -1 when there is no such dead letter, else 1
]]
local deadLettersKey, replayingKey, batchKey = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1]

if redis.call('HEXISTS', deadLettersKey, id) == 0 then return -1 end
if redis.call('SADD', replayingKey, id) == 1 and redis.call('EXISTS', batchKey) == 1 then
  redis.call('HINCRBY', batchKey, 'deadLettered', -1)
end
return 1
