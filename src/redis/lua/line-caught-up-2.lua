--[[
  A line that ran behind (or slower than its key may) has caught up, step 3 of 3 (see
  line-catch-up-4.lua): clears the mark, records the rate the line is timed at now, and lets go of
  the claim, if the claim is still the caller's.

  Input:
    KEYS[1]  the key's state (hash)
    KEYS[2]  the claim (string)
    ARGV[1]  the caller's token
    ARGV[2]  the rate the line's jobs were re-timed at (step 1's eff)
    ARGV[3]  the line's pace step 1 saw ('' for none): jobs timed slower since (a producer with
             another config) keep it slower, and the line is brought forward again
  Output: 1 when cleared, 0 when the claim is not the caller's any more (it ran out; another took over)
]]
local state, claim = KEYS[1], KEYS[2]
if redis.call('GET', claim) ~= ARGV[1] then return 0 end
redis.call('HDEL', state, 'behind')
local current = redis.call('HGET', state, 'lineRate')
local lineRate = tonumber(ARGV[2])
if current and current ~= ARGV[3] then lineRate = math.min(lineRate, tonumber(current)) end
redis.call('HSET', state, 'lineRate', lineRate)
redis.call('DEL', claim)
return 1
