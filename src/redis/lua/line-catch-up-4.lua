--[[
  A line that runs behind its jobs' times catches up, step 1 of 3 (src/limits/line-catch-up.ts):
  claims the work, so that one caller at a time re-times the line's delayed jobs, and hands it the
  line as it stands with the tickets due next.

  A job away from the line is delayed to about its turn, counted at the line's rate from when it was
  delayed (line.ts). When the line moves slower than that (the workers started after the batch was
  enqueued, they start slowly, one stalled), every job comes back early and is fetched again.
  limit-acquire.lua marks the line `behind` when a job comes back half a window or more before its
  turn; the next start on the key claims the catch-up here, re-times each queue's delayed jobs to
  their turn counted from now, only ever later (line-retime-2.lua), and clears the mark
  (line-caught-up-2.lua). A caller that dies leaves the mark: the claim runs out after claimMs and
  a later start claims it again.

  A line can also run slower than its key may (includes/line.lua lineSlower): its jobs were timed at
  a rate well under the key's now (the config or an override raised it, a 429's cut recovered). Its
  jobs would come back at the old pace, the key idle between them. A start on the key marks it
  behind as well, and a worker checks its configured keys when it starts (a line whose jobs are all
  away sees no start until the first comes back); the catch-up then runs `faster`: the caller
  brings every delayed job in the line forward to its turn from now, only ever earlier
  (line-retime-2.lua), paging through the line past the tickets handed out here. Either way step 3
  records the rate the line is timed at now.

  Not claimed: while the key recovers its rate after 429s (its turns would be timed at a rate that
  is rising), while an operator pauses it, or within CATCH_UP_EVERY_MS of the last catch-up (a line
  that stays slow, a key held back by its concurrency, would otherwise be re-timed every second);
  brought forward at most once per FASTER_EVERY_MS.

  Input:
    KEYS[1]  the key's state (hash)
    KEYS[2]  its override (hash)
    KEYS[3]  its line (zset)
    KEYS[4]  the claim (string)
    ARGV[1]  configured rate (requests/s)
    ARGV[2]  configured burst
    ARGV[3]  maxInSlotWaitMs (the window's length in time)
    ARGV[4]  the caller's token
    ARGV[5]  claimMs
    ARGV[6]  how many tickets to hand out at most
  Output: {} when not claimed (neither behind nor slower, paused, claimed by another, recovering,
    too soon); else {mode, intervalUs, window, startInMs, served, eff, lineRate, next, n, holder1,
    position1, …, holderN, positionN}: mode 1 behind (re-time later), 2 faster (bring forward, and
    page on past these); the key's slot spacing, its window, its earliest free slot from now (a
    pause, a far tat), the tickets used so far (a position is ticket - served), the rate the line
    is timed at from now (a string: it may be a fraction), the pace it was timed at until now (''
    unknown) and the tickets handed out so far (for step 3), and the first n tickets from the head
    (those of jobs that missed their slot, half a place ahead, included; in mode 2 those passed over
    too), each with its position
]]
--- @include "now-ms"
--- @include "effective-rate"
--- @include "line"

local CATCH_UP_EVERY_MS = 2000
-- Bringing a line forward pages through all of it: at most this often per key, whatever keeps
-- timing its jobs at the old rate (a producer or a worker still on the old config).
local FASTER_EVERY_MS = 30000
local state, override, line, claim = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = nowMs()
local s = redis.call('HMGET', state, 'behind', 'decRate', 'decAt', 'served', 'line', 'caughtUpAt', 'tat', 'pausedUntil', 'next', 'lineRate',
  'fasterAt')
if not s[5] then return {} end
if now - tonumber(s[6] or '0') < CATCH_UP_EVERY_MS then return {} end
local o = redis.call('HMGET', override, 'rate', 'burst', 'paused')
-- Paused by an operator: its jobs stay away until it resumes (limits resume).
if o[3] == '1' then return {} end
local rate, burst = tonumber(o[1] or ARGV[1]), tonumber(o[2] or ARGV[2])
local eff = effectiveRate(rate, tonumber(s[2]), tonumber(s[3] or '0'), now)
if eff <= 0 or eff < rate then return {} end
local T = slotInterval(eff, burst)
local window = lineWindow(tonumber(ARGV[3]), T)
local served = tonumber(s[4] or '0')
local faster = lineSlower(tonumber(s[10]), rate, eff, tonumber(s[9] or '0') - served, tonumber(ARGV[3]), burst)
-- Slower but brought forward lately: the mark waits for its time (a later-only pass would not help).
if faster and now - tonumber(s[11] or '0') < FASTER_EVERY_MS then return {} end
if s[1] ~= '1' and not faster then return {} end
if not redis.call('SET', claim, ARGV[4], 'NX', 'PX', tonumber(ARGV[5])) then return {} end
redis.call('HSET', state, 'caughtUpAt', now)
if faster then redis.call('HSET', state, 'fasterAt', now) end
local startAt = firstFreeSlot(now, tonumber(s[7] or now), burst, T, tonumber(s[8] or '0'))
-- From the head: the tickets below `served - 0.5` are of jobs gone without starting (a duplicate, a
-- dead letter), never due again, or passed over while away (a line whose head was gone moved on,
-- limit-acquire.lua): their turn has passed. Brought forward, a line that was slower hands them
-- out too (due now), or they would wait out the times the slower rate gave them.
local from = faster and '-inf' or served - 0.5
local tickets = redis.call('ZRANGEBYSCORE', line, from, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[6]))
local reply = {faster and 2 or 1, math.floor(T * 1000), window, startAt - now, served, tostring(eff), s[10] or '', s[9] or '0', #tickets / 2}
for i = 1, #tickets, 2 do
  table.insert(reply, tickets[i])
  table.insert(reply, tostring(tonumber(tickets[i + 1]) - served))
end
return reply
