--[[
  May this operation start now? Acquires every limit key it names, atomically, in one call.

  Rate: GCRA with reservations. Each key keeps a theoretical arrival time (tat). A caller gets the
  earliest start S = max(now, tat - tau) and books it (tat = max(tat, S) + T, T = 1000 / rate ms).
  When S is near (within maxInSlotWaitMs) the caller waits in its worker slot; when it is far, the
  booking is recorded under the job's id and the job is delayed until S, giving its slot back. A
  booking belongs to an epoch: pausing a key or changing its rate starts a new one, so stale
  bookings are made again under the new schedule.

  Lateness: a start later than its slot bunches with the next ones, and the target's own GCRA does
  not bank the slots we left unused. The slack, how late a start may be before its slot is void,
  is the burst kept in reserve less a margin for the jitter between a start and its arrival at
  the target (min(T, 20 ms)). A booking more than the slack in the past is dropped and booked anew.

  Concurrency: a sorted set of leases (member lease id, score expiry). Expired leases, of workers
  that died, are dropped here, so capacity comes back within the lease time.

  Circuit: a key whose circuit is open (circuit-report.lua) starts nothing but one probe at a time,
  once its probe time has come; the probe holds the key's probe until it reports or its lease ends.

  Input:
    KEYS[1]                    index: every limit key name in use (set)
    KEYS[2 + 5 * (i - 1) ...]  for limit key i: state (hash), override (hash), leases (zset), bookings (zset),
             circuit waiters (zset: job (as jobId names it) → since, woken when the circuit closes)
    ARGV[1]  n, the number of limit keys
    ARGV[2]  jobId (bookings are made under it)
    ARGV[3]  leaseId (the concurrency lease, if one is taken)
    ARGV[4]  leaseMs, how long a lease lives unless released
    ARGV[5]  maxInSlotWaitMs, the longest wait a caller does in its worker slot
    ARGV[6]  wantSlots, consecutive slots the caller would take at once (a fast key's stock)
    ARGV[7]  waiter, recorded among a key's circuit waiters while its circuit is open ('' for none)
    ARGV[8 + 5 * (i - 1) ...]  for limit key i: name, rate (requests/s, 0 = none), burst, concurrency (0 = none),
             circuit ('1' when the key's circuit breaker is on)
  Output: {kind, waitMs, leased, slackMs, intervalMs, slots, probes, openForMs}
    kind     GO (start after waitMs), DEFERRED (booked: come back in waitMs), BLOCKED (concurrency),
             PAUSED (by an operator; look again in waitMs), CIRCUIT_OPEN (look again in waitMs; open for openForMs)
    leased   bit mask of the keys on which a concurrency lease was taken (release after the request)
    slackMs  how late the start may be before its slot is void (it must then acquire again)
    intervalMs  the slot spacing of the slowest key (the caller spaces its own late starts by it)
    slots    consecutive slots taken: the first for this start, the rest for the caller's next ones
    probes   bit mask of the keys whose circuit is open and on which this start is the probe
]]
--- @include "now-ms"
--- @include "effective-rate"
--- @include "acquire-kinds"

local indexKey = KEYS[1]
local n = tonumber(ARGV[1])
local jobId, leaseId = ARGV[2], ARGV[3]
local leaseMs, maxWait, wantSlots, waiter = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]

local now = nowMs()
local start = now
local ks = {}
for i = 1, n do
  local kb, ab = 2 + (i - 1) * 5, 8 + (i - 1) * 5
  local k = { state = KEYS[kb], override = KEYS[kb + 1], leases = KEYS[kb + 2], bookings = KEYS[kb + 3], waiters = KEYS[kb + 4] }
  local name, configuredRate, configuredBurst, configuredConc = ARGV[ab], ARGV[ab + 1], ARGV[ab + 2], ARGV[ab + 3]
  local circuitOn = ARGV[ab + 4] == '1'
  local o = redis.call('HMGET', k.override, 'rate', 'burst', 'concurrency', 'paused')
  if o[4] == '1' then return {PAUSED, 2000} end
  local s = redis.call('HMGET', k.state, 'tat', 'epoch', 'pausedUntil', 'decRate', 'decAt', 'lastSeen', 'effRate', 'rate', 'burst', 'concurrency',
    'circuit', 'openedAt', 'probeAt', 'probeUntil')
  if circuitOn and s[11] == 'open' then
    -- Open: only the probe goes, once its time has come and no other probe is out.
    local probeAt, probeUntil = tonumber(s[13] or '0'), tonumber(s[14] or '0')
    local openFor = now - tonumber(s[12] or now)
    local wait = math.max(probeAt, probeUntil) - now
    if wait > 0 then
      if waiter ~= '' then
        redis.call('ZADD', k.waiters, 'NX', now, waiter)
        redis.call('PEXPIRE', k.waiters, 172800000)
      end
      return {CIRCUIT_OPEN, math.max(100, wait), 0, 0, 0, 0, 0, openFor}
    end
    k.probe = true
  end
  if not s[2] then redis.call('SADD', indexKey, name) end
  local rate = tonumber(o[1] or configuredRate)
  local burst = tonumber(o[2] or configuredBurst)
  local conc = tonumber(o[3] or configuredConc)
  k.epoch = s[2] or '0'
  k.burst = burst
  k.pausedUntil = tonumber(s[3] or '0')
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', k.leases, '-inf', now)
    if redis.call('ZCARD', k.leases) >= conc then return {BLOCKED, 0} end
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
if n == 1 and go and wantSlots > 1 and only.T and only.T < 1 and not only.conc and not only.booked and not only.probe and only.s == now then
  slots = math.max(1, math.min(wantSlots, math.floor((only.burst - clientBurst(only.burst)) / 4)))
end
local leased = 0
local probes = 0
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
  if go and k.probe then
    -- The probe is this start's until its report, or its lease (a worker that died) runs out.
    redis.call('HSET', k.state, 'probeUntil', start + leaseMs)
    probes = probes + 2 ^ (i - 1)
  end
end
if go then return {GO, start - now, leased, math.floor(slack), math.floor(interval), slots, probes, 0} end
return {DEFERRED, start - now, 0, 0, 0, 1, 0, 0}
