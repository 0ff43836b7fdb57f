--[[
  A line that ran behind has caught up, step 3 of 3 (see line-catch-up-4.lua): clears the mark and
  lets go of the claim, if the claim is still the caller's.

  Input:
    KEYS[1]  the key's state (hash)
    KEYS[2]  the claim (string)
    ARGV[1]  the caller's token
  Output: 1 when cleared, 0 when the claim is not the caller's any more (it ran out; another took over)
]]
local state, claim = KEYS[1], KEYS[2]
if redis.call('GET', claim) ~= ARGV[1] then return 0 end
redis.call('HDEL', state, 'behind')
redis.call('DEL', claim)
return 1
