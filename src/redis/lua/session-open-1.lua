--[[
  Opens a dashboard session: its role, its token's fingerprint and its absolute end, timed by
  Redis's clock. The key expires after the idle limit unless a use renews it (session-touch-1).

  Input:
    KEYS[1]  the session (hash)
    ARGV[1]  role
    ARGV[2]  the token's fingerprint (keyed by the session id, which Redis never sees)
    ARGV[3]  idleMs, how long the session lasts unused
    ARGV[4]  maxMs, how long it lasts at most, however busy
  Output: the absolute end (ms)
]]
--- @include "now-ms"

local sessionKey = KEYS[1]
local role, fingerprint = ARGV[1], ARGV[2]
local idleMs, maxMs = tonumber(ARGV[3]), tonumber(ARGV[4])

local now = nowMs()
local expiresAt = now + maxMs
redis.call('HSET', sessionKey, 'role', role, 'token', fingerprint, 'createdAt', string.format('%.0f', now),
  'expiresAt', string.format('%.0f', expiresAt))
redis.call('PEXPIRE', sessionKey, math.min(idleMs, maxMs))
return expiresAt
