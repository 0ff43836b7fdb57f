--[[
  A circuit's two transitions, shared by the breaker (circuit-report.lua) and an operator's hand
  (circuit-admin-4.lua). Both bump the key's version so every worker notices within a second.
]]
-- Marks the key announced: its state kept a day, its name in the index, the version bumped.
local function announceCircuit(indexKey, versionKey, stateKey, name)
  redis.call('PEXPIRE', stateKey, 86400000)
  redis.call('SADD', indexKey, name)
  redis.call('INCR', versionKey)
end

-- Opens the circuit: the first probe may go at probeAt, later ones back off from probeMs.
local function openCircuit(indexKey, versionKey, stateKey, name, now, probeAt, probeMs)
  redis.call('HSET', stateKey, 'circuit', 'open', 'openedAt', now, 'probeAt', probeAt, 'probeMs', probeMs)
  redis.call('HDEL', stateKey, 'probeUntil')
  redis.call('HINCRBY', stateKey, 'opened', 1)
  announceCircuit(indexKey, versionKey, stateKey, name)
end

-- Closes the circuit and forgets its window: the counts that opened it no longer count.
local function closeCircuit(indexKey, versionKey, stateKey, windowKey, name)
  redis.call('HDEL', stateKey, 'circuit', 'openedAt', 'probeAt', 'probeMs', 'probeUntil')
  redis.call('HINCRBY', stateKey, 'closed', 1)
  redis.call('DEL', windowKey)
  announceCircuit(indexKey, versionKey, stateKey, name)
end
