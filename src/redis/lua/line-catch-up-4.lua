--[[
  A line that runs behind its jobs' times catches up, step 1 of 3 (src/limits/line-catch-up.ts):
  claims the work, so that one caller at a time re-times the line's delayed jobs, and says how the
  line stands.

  A job away from the line is delayed to about its turn, counted at the line's rate from when it was
  delayed (line.ts). When the line moves slower than that (the workers started after the batch was
  enqueued, they start slowly, one stalled), every job comes back early and is fetched again.
  limit-acquire.lua marks the line `behind` when a job comes back half a window or more before its
  turn; the next start on the key claims the catch-up here, reads the next tickets in order
  (ZRANGE), re-times each queue's delayed jobs to their turn from now (line-retime-2.lua) and
  clears the mark (line-caught-up-2.lua). A caller that dies leaves the mark: the claim runs out
  after claimMs and a later start claims it again. Jobs are only ever re-timed to their turn: none
  waits past it.

  Input:
    KEYS[1]  the key's state (hash)
    KEYS[2]  its override (hash)
    KEYS[3]  its line (zset; declared for the cluster slot, read by the caller)
    KEYS[4]  the claim (string)
    ARGV[1]  configured rate (requests/s)
    ARGV[2]  configured burst
    ARGV[3]  maxInSlotWaitMs (the window's length in time)
    ARGV[4]  the caller's token
    ARGV[5]  claimMs
  Output: {} when the line is not behind, or another caller holds the claim; else
    {intervalUs, window, served, next} (intervalUs 0: the key has no rate any more)
]]
--- @include "now-ms"
--- @include "effective-rate"
--- @include "line"

local state, override, claim = KEYS[1], KEYS[2], KEYS[4]
local s = redis.call('HMGET', state, 'behind', 'decRate', 'decAt', 'next', 'served', 'line')
if s[1] ~= '1' or not s[6] then return {} end
if not redis.call('SET', claim, ARGV[4], 'NX', 'PX', tonumber(ARGV[5])) then return {} end
local o = redis.call('HMGET', override, 'rate', 'burst')
local rate, burst = tonumber(o[1] or ARGV[1]), tonumber(o[2] or ARGV[2])
local eff = effectiveRate(rate, tonumber(s[2]), tonumber(s[3] or '0'), nowMs())
local served, nextTicket = tonumber(s[5] or '0'), tonumber(s[4] or '0')
if eff <= 0 then return {0, 0, served, nextTicket} end
local T = slotInterval(eff, burst)
return {math.floor(T * 1000), lineWindow(tonumber(ARGV[3]), T), served, nextTicket}
