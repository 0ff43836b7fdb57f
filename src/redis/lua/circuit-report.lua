--[[
  A limit key's circuit breaker: requests' outcomes counted in a sliding window (ten buckets), the
  key opened when enough of them failed, and a probe's outcome closing it again or keeping it open
  with a longer probe interval. Only this script and an operator (circuit-admin-2.lua) change it.
  The caller bumps the limiter's version on a transition (limits/limit-index.ts).

  Input:
    KEYS[1]  the key's state (hash; the circuit fields: circuit, openedAt, probeAt, probeMs, probeUntil,
             and the counters opened, closed)
    KEYS[2]  the key's window (hash: n:<bucket>, f:<bucket> → attempts, failures)
    ARGV[1]  attempts to count (requests that got an answer or failed)
    ARGV[2]  failures among them (of the kinds the key's circuit counts)
    ARGV[3]  failureRatio
    ARGV[4]  minAttempts
    ARGV[5]  windowMs
    ARGV[6]  probeIntervalMs, the first probe's delay
    ARGV[7]  maxProbeIntervalMs
    ARGV[8]  the probe's outcome when these counts include one: 'success', 'failure', 'abandoned' (it
             was never sent: the next start may probe), or ''
    ARGV[9]  a random fraction in [0, 1): probes are jittered by ±20 % so workers do not align
  Output: {state, transition, attempts, failures, probeAt}
    state       'open' or 'closed' after this report
    transition  'opened', 'closed' or ''
    attempts, failures  in the window, after this report
    probeAt     when the next probe may go (ms), 0 when closed
]]
--- @include "now-ms"
--- @include "circuit-transitions"

local stateKey, windowKey = KEYS[1], KEYS[2]
local attempts, failures = tonumber(ARGV[1]), tonumber(ARGV[2])
local ratio, minAttempts, windowMs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local probeMs, maxProbeMs, probe = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local jitter = 0.8 + 0.4 * tonumber(ARGV[9])

local now = nowMs()
local bucketMs = windowMs / 10
local bucket = math.floor(now / bucketMs)

-- The window: ten buckets; older ones are dropped as they are read.
if attempts > 0 then
  redis.call('HINCRBY', windowKey, 'n:' .. bucket, attempts)
  if failures > 0 then redis.call('HINCRBY', windowKey, 'f:' .. bucket, failures) end
  redis.call('PEXPIRE', windowKey, windowMs * 2)
end
local inWindow, failed = 0, 0
local fields = redis.call('HGETALL', windowKey)
for i = 1, #fields, 2 do
  local b = tonumber(string.sub(fields[i], 3))
  if b <= bucket - 10 then
    redis.call('HDEL', windowKey, fields[i])
  elseif string.sub(fields[i], 1, 1) == 'n' then
    inWindow = inWindow + tonumber(fields[i + 1])
  else
    failed = failed + tonumber(fields[i + 1])
  end
end

local s = redis.call('HMGET', stateKey, 'circuit', 'probeMs')
local open = s[1] == 'open'
local transition = ''
local probeAt = 0

if open and probe == 'success' then
  -- The target is back: close and forget the window (the waiting jobs are woken in a slow start).
  closeCircuit(stateKey, windowKey)
  inWindow, failed, open, transition = 0, 0, false, 'closed'
elseif open and probe == 'abandoned' then
  redis.call('HDEL', stateKey, 'probeUntil')
  probeAt = tonumber(redis.call('HGET', stateKey, 'probeAt') or '0')
elseif open and probe == 'failure' then
  local interval = math.min(maxProbeMs, 2 * tonumber(s[2] or probeMs))
  probeAt = now + math.floor(interval * jitter)
  redis.call('HSET', stateKey, 'probeMs', interval, 'probeAt', probeAt)
  redis.call('HDEL', stateKey, 'probeUntil')
elseif not open and inWindow >= minAttempts and failed >= ratio * inWindow then
  probeAt = now + math.floor(probeMs * jitter)
  openCircuit(stateKey, now, probeAt, probeMs)
  open, transition = true, 'opened'
elseif open then
  probeAt = tonumber(redis.call('HGET', stateKey, 'probeAt') or '0')
end

local state = 'closed'
if open then state = 'open' end
return {state, transition, inWindow, failed, probeAt}
