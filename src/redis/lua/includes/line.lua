--[[
  A limit key's line: the jobs waiting for its slots, in the order they came, as numbered tickets
  (`line:<key>`, holder → ticket). The key's state counts the tickets handed out (`next`) and those
  used by a start (`served`): a ticket's position is `ticket - served`, whatever time it is. A job
  at position p < window (the slots that fit in an in-slot wait) may take a slot; one further back
  is delayed until about its turn (src/limits/line.ts) and keeps its ticket while away. The line
  counts places, not time: a job back late loses nothing, and slots it left unused go to whoever
  is waiting. A job that had its turn and missed its slot stands half a place ahead of the head
  (`served - 0.5`): a place outside the count, so its start does not move the line.

  A line is named (`line`): when the state is lost (a Redis without persistence restarted, a key
  idle for a day) a new line starts and the old tickets are void; their jobs take new ones, in
  the order they come back.
]]

-- The key's line as it stands (`name` as the state holds it): its next and served; a new line when the state has none.
local function lineOf(stateKey, lineKey, name, nextTicket, served)
  if name then return tonumber(nextTicket or '0'), tonumber(served or '0') end
  local t = redis.call('TIME')
  name = t[1] .. '.' .. t[2]
  redis.call('DEL', lineKey)
  redis.call('HSET', stateKey, 'line', name, 'next', 0, 'served', 0)
  return 0, 0
end

-- How many slots an in-slot wait of maxWait ms covers at slot spacing T: the positions that may start.
local function lineWindow(maxWait, T)
  return math.max(1, math.floor(maxWait / T))
end

--[[
  The pace a line's delayed jobs were timed at (`lineRate` in the key's state): the slowest rate any
  of them was given (at enqueue, when sent away, when caught up). When the key's rate is now well
  above it (the config or an override raised it, a 429's cut has recovered), the jobs would come
  back at the old pace with the key idle between them: the line is brought forward (a catch-up,
  line-catch-up-4.lua, in its `faster` mode). Below LINE_FASTER times, a job a little late costs little.
]]
local LINE_FASTER = 1.2

-- The line's pace after jobs were timed at `eff`: the slower of the two, or `eff` for a line nobody waits in.
local function lineRateAfter(lineRate, eff, empty)
  if empty or not lineRate then return eff end
  return math.min(lineRate, eff)
end

-- Whether a line runs slower than its key may (see above): its jobs were timed at well under the
-- key's rate, that rate is not being recovered after a 429 (its turns would be timed at a rate still
-- rising), and tickets wait (next - served) beyond the window at the slow rate (those within it were
-- due at once). A burst-1 key's slots are spaced by slotInterval, the same at either rate.
local function lineSlower(lineRate, rate, eff, waiting, maxWait, burst)
  if lineRate == nil or rate <= 0 or eff < rate or eff <= lineRate * LINE_FASTER then return false end
  return waiting > lineWindow(maxWait, slotInterval(lineRate, burst))
end
