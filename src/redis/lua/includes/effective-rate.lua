--[[
  A limit key's effective rate and the burst a client keeps for itself.

  Adaptive: repeated 429s halve a key's effective rate (see limit-report.lua); it then recovers
  linearly to the configured rate over 30 s. A key with no configured rate learns one, which grows
  by 10% of itself per second and is forgotten after 30 s without a 429. Computed lazily from
  (decRate, decAt), so a success writes nothing.
]]
-- The rate (requests/s, 0 = none) after what 429s taught: `rate` configured, `decRate` set at `decAt`.
local function effectiveRate(rate, decRate, decAt, now)
  if not decRate then return rate end
  local elapsed = now - decAt
  if rate > 0 then
    return math.min(rate, decRate + (rate / 30) * elapsed / 1000)
  end
  if elapsed > 30000 then return 0 end
  return decRate + decRate * elapsed / 10000
end

-- The part of a key's burst that starts may use; the rest is kept in reserve for late starts.
local function clientBurst(burst)
  return math.max(1, math.min(math.floor(burst / 2), burst - 4))
end

-- A key's earliest free slot (ms): its schedule (tat) less the burst starts may use, not before now
-- nor before a pause (Retry-After) ends.
local function firstFreeSlot(now, tat, burst, T, pausedUntil)
  return math.max(now, tat - (clientBurst(burst) - 1) * T, pausedUntil)
end

-- A burst-1 key has no reserve: its slots are spaced this much wider than its rate instead.
local ZERO_RESERVE_SPACING = 1.1

-- A key's slot spacing (ms) at effective rate `eff` (> 0): a burst-1 key spaces its slots wider.
local function slotInterval(eff, burst)
  if burst > clientBurst(burst) then return 1000 / eff end
  return 1000 / eff * ZERO_RESERVE_SPACING
end
