--[[
  An operator opens or closes a limit key's circuit by hand (sluice limits open / close). Opening
  by hand works like opening on failures: one probe after probeIntervalMs may close it again. The
  caller bumps the limiter's version on a transition (limits/limit-index.ts).

  Input:
    KEYS[1]  the key's state (hash)
    KEYS[2]  the key's window (hash: the counts the circuit decides on)
    ARGV[1]  'open' or 'close'
    ARGV[2]  probeIntervalMs (open)
  Output: the transition made: 'opened', 'closed', or '' when it was so already
]]
--- @include "now-ms"
--- @include "circuit-transitions"

local stateKey, windowKey = KEYS[1], KEYS[2]
local action, probeMs = ARGV[1], tonumber(ARGV[2])

local now = nowMs()
local open = redis.call('HGET', stateKey, 'circuit') == 'open'
if action == 'open' and not open then
  openCircuit(stateKey, now, now + probeMs, probeMs)
  return 'opened'
elseif action == 'close' and open then
  closeCircuit(stateKey, windowKey)
  return 'closed'
end
return ''
