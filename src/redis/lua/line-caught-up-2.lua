--[[
  A line that ran behind (or slower than its key may) has caught up, step 3 of 3 (see
  line-catch-up-4.lua): clears the mark, records the pace the line is timed at now (includes/line.lua),
  and lets go of the claim, if the claim is still the caller's.

  Input:
    KEYS[1]  the key's state (hash)
    KEYS[2]  the claim (string)
    ARGV[1]  the caller's token
    ARGV[2]  the rate the line's jobs were re-timed at (step 1's eff)
    ARGV[3]  the line's pace step 1 saw ('' for none) and ARGV[4] the tickets handed out then
    ARGV[5]  '1' when the line was brought forward (mode 2), else re-timed later only
  Output: 1 when cleared, 0 when the claim is not the caller's any more (it ran out; another took over)
]]
local state, claim = KEYS[1], KEYS[2]
if redis.call('GET', claim) ~= ARGV[1] then return 0 end
redis.call('HDEL', state, 'behind')
local s = redis.call('HMGET', state, 'lineRate', 'next')
local eff = tonumber(ARGV[2])
local lineRate = eff
if ARGV[5] ~= '1' then
  -- Later only: the jobs past the tickets handed out keep the times they had: the pace can only fall.
  if s[1] then lineRate = math.min(eff, tonumber(s[1])) end
elseif s[1] and (s[1] ~= ARGV[3] or s[2] ~= ARGV[4]) then
  -- Jobs joined or were sent away while the line was paged (a producer or a worker on the old
  -- config): they may have been timed slower, and the line is brought forward again in its time.
  lineRate = math.min(eff, tonumber(s[1]))
end
redis.call('HSET', state, 'lineRate', lineRate)
redis.call('DEL', claim)
return 1
