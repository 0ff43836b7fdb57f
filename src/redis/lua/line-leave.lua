--[[
  Jobs that took tickets in their keys' lines at enqueue (line-join.lua) but were not added give
  them back: each ticket is removed, and one not yet reached (ticket >= served) moves the line up
  one place (served + 1), so everyone behind it stands where they would had it never been taken
  (see includes/line.lua). Without this, an input enqueued again (its jobs there already, or run)
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
  local served = tonumber(redis.call('HGET', state, 'served') or '0')
  local moved = 0
  for j = 1, m do
    local holder = ARGV[a + j]
    local ticket = tonumber(redis.call('ZSCORE', line, holder))
    if ticket then
      redis.call('ZREM', line, holder)
      given = given + 1
      -- A whole ticket not yet reached was counted by `next`: the line moves up for it.
      if ticket == math.floor(ticket) and ticket >= served then moved = moved + 1 end
    end
  end
  if moved > 0 then redis.call('HINCRBY', state, 'served', moved) end
  a = a + 1 + m
end
return given
