--[[
  Reads a dashboard session and starts its idle time again, never past its absolute end. A session
  past that end is deleted, whatever its key's expiry says.

  Input:
    KEYS[1]  the session (hash)
    ARGV[1]  idleMs, how long the session lasts unused
  Output: {role, token fingerprint} of a live session; false when there is none (or it has ended)
]]
--- @include "now-ms"

local sessionKey = KEYS[1]
local idleMs = tonumber(ARGV[1])

local fields = redis.call('HMGET', sessionKey, 'role', 'token', 'expiresAt')
local role, fingerprint, expiresAt = fields[1], fields[2], tonumber(fields[3])
if not role then return false end
local now = nowMs()
if not fingerprint or not expiresAt or expiresAt <= now then
  redis.call('DEL', sessionKey)
  return false
end
redis.call('PEXPIRE', sessionKey, math.min(idleMs, expiresAt - now))
return {role, fingerprint}
