--[[
  A producer's chunk joins its limit keys' lines at enqueue (see includes/line.lua): every job
  takes a ticket on each key it names, in the chunk's order, unless it holds one already (the same
  input enqueued again). The producer delays the jobs far back until about their turn
  (src/limits/line.ts), so that most of a backlog is fetched once, at its turn.

  Input:
    KEYS[1]                    index: every limit key name in use (set)
    KEYS[2 + 3 * (i - 1) ...]  for limit key i: state (hash), override (hash), line (zset)
    ARGV[1]  k, the number of limit keys
    ARGV[2]  maxInSlotWaitMs (the window's length in time)
    ARGV[3 + 3 * (i - 1) ...]  for limit key i: name, configured rate (requests/s), burst
    then for each job: holder, m (the number of its keys), the indexes (1-based) of its m keys
  Output: for each key i: {startInMs, window, intervalUs} (window 0: the key has no rate, no line);
    then for each job and each of its keys in its order: its position in that key's line
]]
--- @include "now-ms"
--- @include "effective-rate"
--- @include "line"

local k = tonumber(ARGV[1])
local maxWait = tonumber(ARGV[2])
local now = nowMs()
local out = {}
local lines = {}
for i = 1, k do
  local kb, ab = 2 + (i - 1) * 3, 3 + (i - 1) * 3
  local state, override, lineKey = KEYS[kb], KEYS[kb + 1], KEYS[kb + 2]
  local o = redis.call('HMGET', override, 'rate', 'burst')
  local rate, burst = tonumber(o[1] or ARGV[ab + 1]), tonumber(o[2] or ARGV[ab + 2])
  local s = redis.call('HMGET', state, 'tat', 'line', 'pausedUntil', 'decRate', 'decAt', 'next', 'served')
  local eff = effectiveRate(rate, tonumber(s[4]), tonumber(s[5] or '0'), now)
  if eff > 0 then
    local T = slotInterval(eff, burst)
    if not s[2] then redis.call('SADD', KEYS[1], ARGV[ab]) end
    local _, nextTicket, served = lineOf(state, lineKey, s[2], s[6], s[7])
    local startAt = math.max(now, tonumber(s[1] or now) - (clientBurst(burst) - 1) * T, tonumber(s[3] or '0'))
    lines[i] = { key = lineKey, state = state, next = nextTicket, served = served }
    table.insert(out, startAt - now)
    table.insert(out, lineWindow(maxWait, T))
    table.insert(out, math.floor(T * 1000))
  else
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, 0)
  end
end

local a = 3 + 3 * k
while a <= #ARGV do
  local holder, m = ARGV[a], tonumber(ARGV[a + 1])
  for j = 1, m do
    local line = lines[tonumber(ARGV[a + 1 + j])]
    if line then
      local ticket
      ticket, line.next = takeTicket(line.key, holder, line.next)
      table.insert(out, ticket - line.served)
    else
      table.insert(out, -1)
    end
  end
  a = a + 2 + m
end

for _, line in pairs(lines) do
  redis.call('HSET', line.state, 'next', line.next)
  redis.call('PEXPIRE', line.state, 86400000)
  redis.call('PEXPIRE', line.key, 86400000)
end
return out
