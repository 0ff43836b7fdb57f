--[[
  A producer's chunk joins its limit keys' lines at enqueue (see includes/line.lua): every job
  takes a ticket on each key it names, in the chunk's order, unless it holds one already (the same
  input enqueued again). The producer delays the jobs far back until about their turn
  (src/limits/line.ts), so that most of a backlog is fetched once, at its turn.

  Only where the key binds: a key whose chunk all fits in its window (a key far from its limit,
  a few operations) places nobody, and its jobs are added as any other (they start on their first
  fetch, without a ticket, as a worker's newcomers within the window do).

  Input:
    KEYS[1 + 3 * (i - 1) ...]  for limit key i: state (hash), override (hash), line (zset)
    ARGV[1]  k, the number of limit keys
    ARGV[2]  maxInSlotWaitMs (the window's length in time)
    ARGV[3 + 2 * (i - 1) ...]  for limit key i: configured rate (requests/s), burst
    then for each job: holder, m (the number of its keys), the indexes (1-based) of its m keys
  Output: for each key i: {startInMs, window, intervalUs, placed} (window 0: the key has no rate,
    no line; placed 0: nobody was placed, the key does not bind); then for each job and each of its
    keys in its order: its position in that key's line (where it would stand, when not placed), and
    1 when it took a new ticket there (0: it held one, or nobody was placed)
]]
--- @include "now-ms"
--- @include "effective-rate"
--- @include "line"

local k = tonumber(ARGV[1])
local maxWait = tonumber(ARGV[2])
local now = nowMs()
-- Each key's line, or false for a key without a rate.
local lines = {}
for i = 1, k do
  local kb, ab = 1 + (i - 1) * 3, 3 + (i - 1) * 2
  local state, override, lineKey = KEYS[kb], KEYS[kb + 1], KEYS[kb + 2]
  local o = redis.call('HMGET', override, 'rate', 'burst')
  local rate, burst = tonumber(o[1] or ARGV[ab]), tonumber(o[2] or ARGV[ab + 1])
  local s = redis.call('HMGET', state, 'tat', 'line', 'pausedUntil', 'decRate', 'decAt', 'next', 'served', 'lineRate')
  local eff = effectiveRate(rate, tonumber(s[4]), tonumber(s[5] or '0'), now)
  lines[i] = false
  if eff > 0 then
    local T = slotInterval(eff, burst)
    local nextTicket, served = lineOf(state, lineKey, s[2], s[6], s[7])
    local startAt = firstFreeSlot(now, tonumber(s[1] or now), burst, T, tonumber(s[3] or '0'))
    lines[i] = {
      key = lineKey, state = state, next = nextTicket, served = served, added = 0, binds = false, eff = eff,
      lineRate = tonumber(s[8]),
      startIn = startAt - now, window = lineWindow(maxWait, T), intervalUs = math.floor(T * 1000),
      -- Nobody holds a ticket in an empty line: no need to look each job up.
      empty = redis.call('ZCARD', lineKey) == 0,
    }
  end
end

-- Where each job stands: a job holding a ticket keeps it, the others follow in the chunk's order.
-- A holder named twice (one idempotency key twice in a chunk: one job) takes one ticket.
local joins = {}
local seen = {}
local a = 3 + 2 * k
while a <= #ARGV do
  local holder, m = ARGV[a], tonumber(ARGV[a + 1])
  for j = 1, m do
    local line = lines[tonumber(ARGV[a + 1 + j])]
    local join = { line = line, holder = holder, position = -1 }
    if line then
      local first = seen[line.key .. '\n' .. holder]
      local held = not first and not line.empty and redis.call('ZSCORE', line.key, holder)
      if first then
        join.position = first.position
      elseif held then
        join.position = tonumber(held) - line.served
      else
        seen[line.key .. '\n' .. holder] = join
        join.ticket = line.next + line.added
        join.position = join.ticket - line.served
        line.added = line.added + 1
      end
      if join.position >= line.window or line.startIn > maxWait then line.binds = true end
    end
    table.insert(joins, join)
  end
  a = a + 2 + m
end

-- The new tickets, on the keys this chunk brings to their limit.
for _, join in ipairs(joins) do
  if join.ticket and join.line.binds then redis.call('ZADD', join.line.key, 'NX', join.ticket, join.holder) end
end
local reply = {}
for i = 1, k do
  local line = lines[i]
  if line then
    local placed = 0
    if line.binds then
      placed = 1
      -- Its jobs are timed at eff from here (src/limits/line.ts): the line's pace is at most that.
      redis.call('HSET', line.state, 'next', line.next + line.added, 'lineRate', lineRateAfter(line.lineRate, line.eff, line.empty))
      redis.call('PEXPIRE', line.state, 86400000)
      redis.call('PEXPIRE', line.key, 86400000)
    end
    for _, value in ipairs({ line.startIn, line.window, line.intervalUs, placed }) do table.insert(reply, value) end
  else
    for _ = 1, 4 do table.insert(reply, 0) end
  end
end
for _, join in ipairs(joins) do
  table.insert(reply, join.position)
  table.insert(reply, (join.ticket and join.line.binds) and 1 or 0)
end
return reply
