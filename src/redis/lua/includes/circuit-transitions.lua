--[[
  A circuit's two transitions, shared by the breaker (circuit-report.lua) and an operator's hand
  (circuit-admin-2.lua). Both keep the key's state a day; their caller, told of the transition,
  bumps the limiter's version so every worker notices within a second (limits/limit-index.ts).
]]

-- Opens the circuit: the first probe may go at probeAt, later ones back off from probeMs.
local function openCircuit(stateKey, now, probeAt, probeMs)
  redis.call('HSET', stateKey, 'circuit', 'open', 'openedAt', now, 'probeAt', probeAt, 'probeMs', probeMs)
  redis.call('HDEL', stateKey, 'probeUntil')
  redis.call('HINCRBY', stateKey, 'opened', 1)
  redis.call('PEXPIRE', stateKey, 86400000)
end

-- Closes the circuit and forgets its window: the counts that opened it no longer count.
local function closeCircuit(stateKey, windowKey)
  redis.call('HDEL', stateKey, 'circuit', 'openedAt', 'probeAt', 'probeMs', 'probeUntil')
  redis.call('HINCRBY', stateKey, 'closed', 1)
  redis.call('DEL', windowKey)
  redis.call('PEXPIRE', stateKey, 86400000)
end
