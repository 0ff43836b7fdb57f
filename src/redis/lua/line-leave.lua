--[[
  Jobs that took tickets in their keys' lines at enqueue (line-join.lua) but were not added give
  them back (see includes/line.lua): each ticket is removed; the last ones handed out are handed out
  again (`next` goes back), and one in the middle not yet reached (ticket >= served) moves the line
  up one place (served + 1), as a gap closes when its slot goes unclaimed. Without this, an input enqueued again (its jobs there already, or run)
  would leave a ticket per operation that nobody uses, and the line would close those gaps only as
  free slots went unclaimed.

  Input:
    KEYS[2 * (i - 1) + 1 ...]  for limit key i: its state (hash), its line (zset)
    ARGV[1 ...]  for each key i: m, then m holders
  Output: the number of tickets given back
]]
local given = 0
local a = 1
for i = 1, #KEYS / 2 do
  local state, line = KEYS[2 * i - 1], KEYS[2 * i]
  local m = tonumber(ARGV[a])
  local counts = redis.call('HMGET', state, 'next', 'served')
  local nextTicket, served = tonumber(counts[1] or '0'), tonumber(counts[2] or '0')
  local returned = {}
  for j = 1, m do
    local holder = ARGV[a + j]
    local ticket = tonumber(redis.call('ZSCORE', line, holder))
    if ticket then
      redis.call('ZREM', line, holder)
      given = given + 1
      -- Whole tickets not yet reached were counted by `next`; a half place ahead of the head was not.
      if ticket == math.floor(ticket) and ticket >= served then returned[#returned + 1] = ticket end
    end
  end
  table.sort(returned, function(x, y) return x > y end)
  local moved = 0
  for _, ticket in ipairs(returned) do
    if ticket == nextTicket - 1 then
      nextTicket = nextTicket - 1
    else
      moved = moved + 1
    end
  end
  if #returned > 0 then redis.call('HSET', state, 'next', nextTicket, 'served', served + moved) end
  a = a + 1 + m
end
return given
