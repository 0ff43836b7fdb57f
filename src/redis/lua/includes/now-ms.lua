-- Redis's own clock in ms: one clock for every process of the fleet, whatever their hosts' clocks say.
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
