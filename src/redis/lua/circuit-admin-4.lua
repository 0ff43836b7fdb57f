--[[
  An operator opens or closes a limit key's circuit by hand (sluice limits open / close). Opening
  by hand works like opening on failures: one probe after probeIntervalMs may close it again.

  Input:
    KEYS[1]  index: every limit key name in use (set)
    KEYS[2]  version (string, bumped so every worker notices within a second)
    KEYS[3]  the key's state (hash)
    KEYS[4]  the key's window (hash: the counts the circuit decides on)
    ARGV[1]  the key's name
    ARGV[2]  'open' or 'close'
    ARGV[3]  probeIntervalMs (open)
  Output: the transition made: 'opened', 'closed', or '' when it was so already
]]
--- @include "now-ms"
--- @include "circuit-transitions"

local indexKey, versionKey, stateKey, windowKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, action, probeMs = ARGV[1], ARGV[2], tonumber(ARGV[3])

local now = nowMs()
local open = redis.call('HGET', stateKey, 'circuit') == 'open'
if action == 'open' and not open then
  openCircuit(indexKey, versionKey, stateKey, name, now, now + probeMs, probeMs)
  return 'opened'
elseif action == 'close' and open then
  closeCircuit(indexKey, versionKey, stateKey, windowKey, name)
  return 'closed'
end
return ''
