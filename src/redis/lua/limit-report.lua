--[[
  What a response taught us about its limit keys: a pause (Retry-After, a spent RateLimit quota)
  for every worker, and on repeated 429s a halved rate (see effective-rate.lua). The key's line
  stays as it is: positions are places, not times (see includes/line.lua). The caller names a key
  whose schedule changed in the index and bumps the version (limits/limit-index.ts): those are not
  in the key's slot.

  Input:
    KEYS[1 + 2 * (i - 1) ...]  for limit key i: state (hash), recent 429s (list)
    ARGV[1]  n, the number of limit keys
    ARGV[2]  live limiter processes (at least 1), as the caller last counted them
    ARGV[3 + 5 * (i - 1) ...]  for limit key i: configured rate (requests/s), burst, pauseMs (-1:
             none), is429 ('1' or '0'), this process's observed rate of the key (requests/s)
  Output: for each key, 1 when its schedule changed, else 0
]]
--- @include "now-ms"
--- @include "effective-rate"

local n = tonumber(ARGV[1])
local processes = math.max(1, tonumber(ARGV[2]))

local now = nowMs()
local changed = {}
for i = 1, n do
  local kb, ab = 1 + (i - 1) * 2, 3 + (i - 1) * 5
  local state, recent = KEYS[kb], KEYS[kb + 1]
  local rate, burst = tonumber(ARGV[ab]), tonumber(ARGV[ab + 1])
  local pauseMs, is429, observed = tonumber(ARGV[ab + 2]), ARGV[ab + 3] == '1', tonumber(ARGV[ab + 4])
  local s = redis.call('HMGET', state, 'pausedUntil', 'decRate', 'decAt', 'tat')
  local pausedUntil = tonumber(s[1] or '0')
  local pausedBefore = pausedUntil
  local decRate, decAt = tonumber(s[2]), tonumber(s[3] or '0')
  local bookedTat = tonumber(s[4] or '0')
  local eff = effectiveRate(rate, decRate, decAt, now)
  local change = false
  changed[i] = 0
  -- A pause of 0 (Retry-After: 0, or a date already past) asks for none.
  if pauseMs > 0 and now + pauseMs > pausedUntil then
    pausedUntil = now + pauseMs
    change = true
  end
  if is429 then
    redis.call('LPUSH', recent, now)
    -- The newest 100 are kept (RECENT_429S_KEPT in limits/limit-status.ts).
    redis.call('LTRIM', recent, 0, 99)
    redis.call('PEXPIRE', recent, 86400000)
    local t = redis.call('HMGET', state, 'last429', 'first429')
    local previous, first = tonumber(t[1] or '0'), tonumber(t[2] or '0')
    -- A run of 429s: each within 10 s of the one before; the first of the run is kept (a state an
    -- older version wrote has none: its last one stands for it).
    if now - previous > 10000 then
      first = now
    elseif first == 0 then
      first = previous
    end
    redis.call('HSET', state, 'last429', now, 'first429', first)
    -- Repeated means: 429s that go on 250 ms or more past the first of their run (not one more
    -- answer from the bunch sent with it: a steady stream of them, at any pace, is repeated), for
    -- requests sent after any pause they caused.
    local repeated = now - first >= 250 and now >= pausedBefore
    -- At most one halving every 2 s: the time a new rate needs to show.
    if repeated and now - decAt > 2000 then
      local base = eff
      if base <= 0 then base = observed * processes end
      if base <= 0 then base = 1 end
      -- A floor, so that 429s unrelated to our pace (per-resource limits, a flaky gateway) cannot
      -- starve the key: a tenth of the configured rate, or 1/s for a key with none.
      local floor = 1
      if rate > 0 then floor = math.min(rate, math.max(0.2, rate / 10)) end
      eff = math.max(floor, base / 2)
      redis.call('HSET', state, 'decRate', eff, 'decAt', now)
      change = true
    end
  end
  if change then
    local tat = math.max(now, pausedUntil)
    if eff > 0 then tat = tat + (clientBurst(burst) - 1) * 1000 / eff end
    -- Never earlier than the slots already booked: moved back, the schedule would give them again.
    tat = math.max(tat, bookedTat)
    redis.call('HSET', state, 'pausedUntil', pausedUntil, 'tat', tat, 'effRate', eff)
    redis.call('PEXPIRE', state, 86400000)
    changed[i] = 1
  end
end
return changed
