/**
 * The cluster-wide limiter, as Lua run atomically in Redis. One EVALSHA per acquisition, whatever
 * the number of keys. Every key lives in the `{sluice:limits}` slot so that an operation naming
 * several limit keys acquires them together in one script (also on Redis Cluster).
 *
 * Rate: GCRA with reservations. Each key keeps a theoretical arrival time (`tat`). A caller gets the
 * earliest start `S = max(now, tat - tau)` and books it (`tat = max(tat, S) + T`, T = 1000/rate ms).
 * When S is near, the job waits in its worker slot; when it is far, the booking is recorded under
 * the job's id and the job is delayed until S, giving its slot back (no head-of-line blocking).
 * A booking belongs to an epoch: pausing a key or changing its rate starts a new epoch, so stale
 * bookings are re-made under the new schedule.
 *
 * Concurrency: a sorted set of leases (member lease id, score expiry). Expired leases — from a worker
 * that died — are dropped on the next acquisition, so capacity returns within the lease time.
 *
 * Adaptive: repeated 429s (two within 10 s) halve the key's effective rate (at most once every
 * 2 s, the time a new rate needs to show; never below a tenth of the configured rate, or 1/s for
 * a key with none); it then recovers linearly to the configured rate over
 * 30 s. A key with no configured rate learns one — half the fleet's observed rate — which grows by
 * 10% of itself per second and is forgotten after 30 s without a 429. Computed lazily from
 * (decRate, decAt): no write is needed on success.
 *
 * State survives nothing on purpose: when Redis restarts or keys expire, every value falls back to
 * the configuration the caller passes in. No error path depends on a key existing.
 */

/** Shared Lua: the effective rate of a key (requests/s, 0 = none) and the client-side burst. */
const EFFECTIVE_RATE = `
local function effectiveRate(rate, decRate, decAt, now)
  if not decRate then return rate end
  local elapsed = now - decAt
  if rate > 0 then
    return math.min(rate, decRate + (rate / 30) * elapsed / 1000)
  end
  if elapsed > 30000 then return 0 end
  return decRate + decRate * elapsed / 10000
end
local function clientBurst(burst)
  return math.max(1, math.min(math.floor(burst / 2), burst - 4))
end
local ZERO_RESERVE_SPACING = 1.1
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * KEYS: [1] index set, then per limit key: state hash, override hash, leases zset, bookings zset.
 * ARGV: n, jobId, leaseId, leaseMs, maxInSlotWaitMs, wantSlots, then per key: name, rate/s, burst,
 * concurrency (0 = none). Returns {kind, waitMs, leased, slackMs, intervalMs, slots}: 1 go (after waitMs), 2 deferred until now+waitMs
 * (booked), 3 blocked on concurrency, 4 paused by an operator; `leased` is a bit mask of the keys
 * on which a concurrency lease was taken (to release after the request); `slackMs` how late the
 * caller may start before its slot is void (it must then acquire again); `intervalMs` the slot
 * spacing of its slowest key (the caller spaces its own late starts by it); `slots` how many
 * consecutive slots were taken (the first for this start, the rest for the caller's next starts).
 *
 * Lateness matters: requests that start late bunch up, and a target's own GCRA does not bank the
 * slots we left unused, so late starts could exceed its burst. The slack is the burst we keep in
 * reserve less a margin for the jitter between a start and its arrival at the target (min(T, 20 ms)).
 * A booking more than the slack in the past is dropped and the job books anew; `slackMs` is what is
 * left of it for this start; smaller lateness — timers of a busy process firing together — is
 * spread out by the caller.
 */
export const ACQUIRE = `${EFFECTIVE_RATE}
local now = nowMs()
local n = tonumber(ARGV[1])
local jobId, leaseId = ARGV[2], ARGV[3]
local leaseMs, maxWait, wantSlots = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local start = now
local ks = {}
for i = 1, n do
  local kb, ab = 1 + (i - 1) * 4, 6 + (i - 1) * 4
  local k = { state = KEYS[kb + 1], override = KEYS[kb + 2], leases = KEYS[kb + 3], bookings = KEYS[kb + 4] }
  local o = redis.call('HMGET', k.override, 'rate', 'burst', 'concurrency', 'paused')
  if o[4] == '1' then return {4, 2000} end
  local s = redis.call('HMGET', k.state, 'tat', 'epoch', 'pausedUntil', 'decRate', 'decAt', 'lastSeen', 'effRate', 'rate', 'burst', 'concurrency')
  if not s[2] then redis.call('SADD', KEYS[1], ARGV[ab + 1]) end
  local rate = tonumber(o[1] or ARGV[ab + 2])
  local burst = tonumber(o[2] or ARGV[ab + 3])
  local conc = tonumber(o[3] or ARGV[ab + 4])
  k.epoch = s[2] or '0'
  k.burst = burst
  k.pausedUntil = tonumber(s[3] or '0')
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', k.leases, '-inf', now)
    if redis.call('ZCARD', k.leases) >= conc then return {3, 0} end
    k.conc = true
  end
  local eff = effectiveRate(rate, tonumber(s[4]), tonumber(s[5] or '0'), now)
  if eff > 0 then
    k.T = 1000 / eff
    k.tat = tonumber(s[1] or now)
    if burst > clientBurst(burst) then
      k.slack = math.max(1, (burst - clientBurst(burst)) * k.T - math.min(k.T, 20))
    else
      -- Burst 1: no burst to keep in reserve, so slots are spaced a tenth wider than the rate and a
      -- start may be half of that late (the other half covers the jitter to the target). Without the
      -- margin every start a millisecond late lost its slot: a backlog ran far below the rate.
      k.T = k.T * ZERO_RESERVE_SPACING
      k.slack = math.max(1, (k.T - 1000 / eff) / 2)
    end
    local booked = redis.call('ZSCORE', k.bookings, jobId .. '|' .. k.epoch)
    if booked and tonumber(booked) >= k.pausedUntil and now - tonumber(booked) <= k.slack then
      k.booked = tonumber(booked)
      k.s = k.booked
    else
      if booked then redis.call('ZREM', k.bookings, jobId .. '|' .. k.epoch) end
      k.s = math.max(now, k.tat - (clientBurst(burst) - 1) * k.T, k.pausedUntil)
    end
  else
    k.s = math.max(now, k.pausedUntil)
  end
  if k.s > start then start = k.s end
  -- What operators see (sluice limits): written when it changes, and lastSeen at most once a second,
  -- so that a busy key costs no writes here.
  if not s[6] or now - tonumber(s[6]) >= 1000 or tonumber(s[7]) ~= eff or tonumber(s[8]) ~= rate
      or tonumber(s[9]) ~= burst or tonumber(s[10]) ~= conc then
    redis.call('HSET', k.state, 'rate', rate, 'burst', burst, 'concurrency', conc, 'effRate', eff, 'lastSeen', now)
    redis.call('PEXPIRE', k.state, 86400000)
  end
  ks[i] = k
end
local go = start - now <= maxWait
-- Slots taken at once: only for one fast key (under a millisecond apart) that is free now, with no
-- concurrency limit and no booking of its own. The caller uses them at once rather than at their
-- times, early by up to (slots - 1) slots: a quarter of the burst kept in reserve at most.
local slots = 1
local only = ks[1]
if n == 1 and go and wantSlots > 1 and only.T and only.T < 1 and not only.conc and not only.booked and only.s == now then
  slots = math.max(1, math.min(wantSlots, math.floor((only.burst - clientBurst(only.burst)) / 4)))
end
local leased = 0
local slack = 3600000
local interval = 0
for i = 1, n do
  local k = ks[i]
  if k.T then
    local member = jobId .. '|' .. k.epoch
    local deadline
    if k.booked and k.booked <= start and start - k.booked <= k.slack then
      -- Its own slot, perhaps a little late: use it (a late start must still begin within the slack).
      if go then redis.call('ZREM', k.bookings, member) end
      deadline = k.booked + k.slack
    else
      if k.booked then redis.call('ZREM', k.bookings, member) end
      redis.call('HSET', k.state, 'tat', math.max(k.tat, start) + slots * k.T, 'epoch', k.epoch)
      if not go then redis.call('ZADD', k.bookings, start, member) end
      deadline = start + k.slack
    end
    if deadline - start < slack then slack = deadline - start end
    if not go then
      redis.call('ZREMRANGEBYSCORE', k.bookings, '-inf', now - 600000)
      redis.call('PEXPIRE', k.bookings, 86400000)
    end
  end
  if k.T and k.T > interval then interval = k.T end
  if go and k.conc then
    redis.call('ZADD', k.leases, now + leaseMs, leaseId)
    redis.call('PEXPIRE', k.leases, leaseMs + 60000)
    leased = leased + 2 ^ (i - 1)
  end
end
if go then return {1, start - now, leased, math.floor(slack), math.floor(interval), slots} end
return {2, start - now, 0, 0, 0, 1}
`;

/** KEYS: leases zsets of the keys with concurrency. ARGV: the lease id. */
export const RELEASE = `
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 1
`;

/**
 * What a response taught us about a key. KEYS: [1] index, [2] live processes zset, [3] version,
 * then per key: state hash, recent-429 list, bookings zset (dropped with the old epoch). ARGV: n, then per key: name, configured rate/s, burst,
 * pauseMs (-1 none: from Retry-After or RateLimit-Reset), is429 (0/1), this process's observed
 * rate of the key (req/s). Returns the number of keys whose schedule changed.
 */
export const REPORT = `${EFFECTIVE_RATE}
local now = nowMs()
local n = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local processes = math.max(1, redis.call('ZCARD', KEYS[2]))
local changed = 0
for i = 1, n do
  local kb, ab = 3 + (i - 1) * 3, 1 + (i - 1) * 6
  local state, recent, bookings = KEYS[kb + 1], KEYS[kb + 2], KEYS[kb + 3]
  local name, rate, burst = ARGV[ab + 1], tonumber(ARGV[ab + 2]), tonumber(ARGV[ab + 3])
  local pauseMs, is429, observed = tonumber(ARGV[ab + 4]), ARGV[ab + 5] == '1', tonumber(ARGV[ab + 6])
  local s = redis.call('HMGET', state, 'pausedUntil', 'decRate', 'decAt', 'epoch')
  local pausedUntil = tonumber(s[1] or '0')
  local pausedBefore = pausedUntil
  local decRate, decAt = tonumber(s[2]), tonumber(s[3] or '0')
  local eff = effectiveRate(rate, decRate, decAt, now)
  local change = false
  if pauseMs >= 0 and now + pauseMs > pausedUntil then
    pausedUntil = now + pauseMs
    change = true
  end
  if is429 then
    redis.call('LPUSH', recent, now)
    redis.call('LTRIM', recent, 0, 99)
    redis.call('PEXPIRE', recent, 86400000)
    local previous = tonumber(redis.call('HGET', state, 'last429') or '0')
    redis.call('HSET', state, 'last429', now)
    -- Repeated means: a 429 for a request sent after the pause the previous one caused, not one
    -- more answer from the same bunch.
    local repeated = now - previous <= 10000 and now - previous >= 250 and now >= pausedBefore
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
    redis.call('HSET', state, 'pausedUntil', pausedUntil, 'tat', tat, 'effRate', eff)
    redis.call('HINCRBY', state, 'epoch', 1)
    redis.call('DEL', bookings)
    redis.call('PEXPIRE', state, 86400000)
    redis.call('SADD', KEYS[1], name)
    changed = changed + 1
  end
end
if changed > 0 then redis.call('INCR', KEYS[3]) end
return changed
`;

/**
 * An operator's change to a key. KEYS: [1] index, [2] version, [3] state, [4] override,
 * [5] bookings (made under the old epoch, so void: dropped).
 * ARGV: name, ttlMs (0 = until removed, -1 = keep the override's lifetime), then field/value pairs to set ('' value = delete), with
 * `clear` = '1' to delete the override first. Starts a new epoch so every booking follows at once.
 * Returns the job ids that held bookings (their jobs are delayed until the old slots: the caller
 * may wake them so that they book again under the new schedule).
 */
export const ADMIN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ARGV[3] == '1' then redis.call('DEL', KEYS[4]) end
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[4], ARGV[i]) else redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  if ttl > 0 then redis.call('PEXPIRE', KEYS[4], ttl) elseif ttl == 0 then redis.call('PERSIST', KEYS[4]) end
end
redis.call('HSET', KEYS[3], 'tat', now, 'pausedUntil', 0)
redis.call('HDEL', KEYS[3], 'decRate', 'decAt')
redis.call('HINCRBY', KEYS[3], 'epoch', 1)
local booked = redis.call('ZRANGE', KEYS[5], 0, -1)
redis.call('DEL', KEYS[5])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
return booked
`;
