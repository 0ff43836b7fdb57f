--[[
  May this operation start now? Acquires every limit key it names, atomically, in one call. On a
  Redis Cluster its keys are of one group, one slot (src/redis/keys.ts limitGroupOf).

  Rate: GCRA. Each key keeps a theoretical arrival time (tat). A start gets the earliest slot
  S = max(now, tat - tau) and books it (tat = max(tat, S) + T, T = 1000 / rate ms), then waits for
  it in its worker slot: only near slots are booked (within 2 × maxInSlotWaitMs), never far ones.

  Line: who may book. A job waits its turn in the key's line (see includes/line.lua): it takes a
  ticket at its first call (the producer may have given it one at enqueue) and may book a slot
  when its position is within the window; further back it is QUEUED: delayed until about its turn,
  keeping its ticket. A slot nobody in the window claims (S is now) goes to whoever asks, and the
  line moves up one place as for any start: so gaps left by jobs that are gone close. A start that missed its slot asks again with
  `restore`: it had its turn, so it stands at the head. A line whose slots went unclaimed for a
  whole window (its head is gone: the operations of a lane whose worker died hold their tickets
  until the lane is recovered) moves its head to the one from further back that takes a free slot:
  the tickets before it become half places at the head (as missed slots), so those behind it
  book at once, and one that comes back later goes at once without moving the line.

  Lateness: a start later than its slot bunches with the next ones, and the target's own GCRA does
  not bank the slots we left unused. The slack, how late a start may be before its slot is void,
  is the burst kept in reserve less a margin for the way between a start and its arrival at the
  target: half the reserve, and at least min(T, 20 ms).

  Concurrency: a sorted set of leases (member lease id, score expiry). Expired leases, of workers
  that died, are dropped here, so capacity comes back within the lease time.

  Circuit: a key whose circuit is open (circuit-report.lua) starts nothing but one probe at a time,
  once its probe time has come; the probe holds the key's probe until it reports or its lease ends.

  Input:
    KEYS[1 + 5 * (i - 1) ...]  for limit key i: state (hash), override (hash), leases (zset), line (zset),
             circuit waiters (zset: job (as holder names it) → since, woken when the circuit closes)
    ARGV[1]  n, the number of limit keys
    ARGV[2]  holder: who waits in the lines (`{queue}jobId`)
    ARGV[3]  leaseId (the concurrency lease, if one is taken)
    ARGV[4]  leaseMs, how long a lease lives unless released
    ARGV[5]  maxInSlotWaitMs, the longest wait a caller does in its worker slot
    ARGV[6]  wantSlots, consecutive slots the caller would take at once (a fast key's stock)
    ARGV[7]  waiter, recorded among a key's circuit waiters while its circuit is open ('' for none)
    ARGV[8]  restore: '1' when the caller had its turn and missed its slot (it stands at the head)
    ARGV[9 + 5 * (i - 1) ...]  for limit key i: name, rate (requests/s, 0 = none), burst, concurrency (0 = none),
             circuit ('1' when the key's circuit breaker is on)
    ARGV[9 + 5 * n]  f, the number of followers (optional: 0): the holders of the operations of the
             caller's lane that come next in its lines (see "Followers" below)
    ARGV[10 + 5 * n ...]  the followers' holders, in the order of their tickets
  Output: GO {1, waitMs, leased, slackMs, intervalMs, slots, probes, 0, behind, followerWaitMs...}; QUEUED {2, startInMs,
    position, window, intervalUs, behind}; BLOCKED {3}; PAUSED {4, waitMs}; CIRCUIT_OPEN {5, waitMs, 0,
    0, 0, 0, 0, openForMs}
    behind   bit mask of the keys whose line runs behind its jobs' times (they come back early), or
             slower than the key's rate now (its jobs were timed at a lower one): the caller has
             their delayed jobs re-timed (line-catch-up-4.lua)
    GO       start after waitMs, within slackMs after it
    leased   bit mask of the keys on which a concurrency lease was taken (release after the request)
    intervalMs  the slot spacing of the slowest key (the caller spaces its own late starts by it)
    slots    consecutive slots taken: the first for this start, the rest for the caller's next ones
    probes   bit mask of the keys whose circuit is open and on which this start is the probe
    QUEUED   not its turn: its position in the line whose turn comes last, that line's window and
             slot spacing (µs), and the earliest slot (startInMs from now); the caller delays the
             job until about its turn (src/limits/line.ts)
    followerWaitMs  for each follower booked with this start, in order, its slot (ms from now)
    BLOCKED  a key is at its concurrency limit; PAUSED by an operator (look again in waitMs)
    CIRCUIT_OPEN  look again in waitMs; the circuit has been open for openForMs

  Followers: the operations of a lane (one BullMQ job holding many) each hold a ticket in their keys'
  lines, one behind the other. When one of them books its slot (GO, one slot, no concurrency limit,
  no probe, not a missed slot asked again), the script books the slots of those that follow it as
  if each had asked in turn at this moment, in ticket order, and stops at the first that could not
  book now (out of its window, its ticket gone, its slot too far). The caller hands each its slot
  when it asks (src/limits/run-grants.ts): a binding key is then called once per run of a lane's
  operations, not once per operation. The same rules hold per follower as per caller: its slot is
  the key's first free slot, and at least one spacing after the slot before it in the run (a run
  takes none of the burst), the schedule and the line move as for any start.
]]
--- @include "now-ms"
--- @include "effective-rate"
--- @include "acquire-kinds"
--- @include "line"

local n = tonumber(ARGV[1])
local holder, leaseId = ARGV[2], ARGV[3]
local leaseMs, maxWait, wantSlots, waiter = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local restore = ARGV[8] == '1'
-- The most tickets a line whose head is gone passes in one call (see the header).
local MAX_PASSED = 1000

local now = nowMs()
local start = now
-- Whether every key lets this caller book (its position is in the window, or the slot is free).
local admitted = true
-- Bit i set: the i-th key's line runs behind its jobs' times; the caller has it catch up.
local behind = 0
local ks = {}
for i = 1, n do
  local kb, ab = 1 + (i - 1) * 5, 9 + (i - 1) * 5
  local k = { state = KEYS[kb], override = KEYS[kb + 1], leases = KEYS[kb + 2], line = KEYS[kb + 3], waiters = KEYS[kb + 4] }
  local configuredRate, configuredBurst, configuredConc = ARGV[ab + 1], ARGV[ab + 2], ARGV[ab + 3]
  local circuitOn = ARGV[ab + 4] == '1'
  local o = redis.call('HMGET', k.override, 'rate', 'burst', 'concurrency', 'paused')
  if o[4] == '1' then return {PAUSED, 2000} end
  local s = redis.call('HMGET', k.state, 'tat', 'line', 'pausedUntil', 'decRate', 'decAt', 'lastSeen', 'effRate', 'rate', 'burst', 'concurrency',
    'circuit', 'openedAt', 'probeAt', 'probeUntil', 'next', 'served', 'behind', 'lineRate')
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
  local rate = tonumber(o[1] or configuredRate)
  local burst = tonumber(o[2] or configuredBurst)
  local conc = tonumber(o[3] or configuredConc)
  k.burst = burst
  k.pausedUntil = tonumber(s[3] or '0')
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', k.leases, '-inf', now)
    if redis.call('ZCARD', k.leases) >= conc then return {BLOCKED, 0} end
    k.conc = true
  end
  local eff = effectiveRate(rate, tonumber(s[4]), tonumber(s[5] or '0'), now)
  if eff > 0 then
    k.T = slotInterval(eff, burst)
    k.tat = tonumber(s[1] or now)
    if burst > clientBurst(burst) then
      -- The reserve covers two kinds of lateness: a start after its slot (a late timer) and the
      -- way from the start to the target (a process descheduled after deciding to start, a cold
      -- connection, the network). Half of it each, and at least min(T, 20 ms) for the way.
      local reserve = (burst - clientBurst(burst)) * k.T
      k.slack = math.max(1, reserve - math.max(math.min(k.T, 20), reserve / 2))
    else
      -- Burst 1: no burst to keep in reserve, so slots are spaced a tenth wider than the rate and a
      -- start may be half of that late (the other half covers the jitter to the target). Without the
      -- margin every start a millisecond late lost its slot: a backlog ran far below the rate.
      k.slack = math.max(1, (k.T - 1000 / eff) / 2)
    end
    k.s = firstFreeSlot(now, k.tat, burst, k.T, k.pausedUntil)
    -- Its place in line: its ticket's position, the head after a missed slot, else the back.
    local nextTicket, served = lineOf(k.state, k.line, s[2], s[15], s[16])
    k.next, k.served = nextTicket, served
    k.window = lineWindow(maxWait, k.T)
    -- Slots unclaimed for a whole window before now: nobody at the head is asking.
    k.idle = k.tat + k.window * k.T <= now
    local held = redis.call('ZSCORE', k.line, holder)
    if held then
      k.ticket = tonumber(held)
      k.position = k.ticket - served
    elseif restore then
      k.position = -1
    else
      k.position = nextTicket - served
    end
    -- At its turn it may book up to twice the in-slot wait ahead (the slots just ahead may be
    -- taken by starts that missed theirs); out of turn, only a slot nobody claimed (free now).
    if k.s > now and (k.position >= k.window or k.s - now > 2 * maxWait) then admitted = false end
    -- A job back from its delay half a window or more before its turn: the line runs behind the
    -- times its jobs were given (the workers came after the batch, started slowly, one stalled),
    -- and the jobs due after it would come back early too. Marked behind: the caller has the jobs
    -- due next re-timed (line-catch-up-4.lua).
    -- (Not while the key's first free slot is far: a pause holds the line still, not behind.)
    if k.ticket and k.position >= k.window + math.max(1, k.window / 2) and not s[17] and k.s - now <= 2 * maxWait then
      redis.call('HSET', k.state, 'behind', 1)
      s[17] = '1'
    end
    -- A line whose jobs were timed at well under the key's rate now (the config raised it): marked
    -- behind too, and the catch-up brings its jobs forward instead (line-catch-up-4.lua).
    k.eff, k.lineRate = eff, tonumber(s[18])
    if not s[17] and lineSlower(k.lineRate, rate, eff, nextTicket - served, maxWait, burst) then
      redis.call('HSET', k.state, 'behind', 1)
      s[17] = '1'
    end
    if s[17] then behind = behind + 2 ^ (i - 1) end
  else
    k.s = math.max(now, k.pausedUntil)
    if k.s - now > maxWait then admitted = false end
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

local go = admitted
if not go then
  -- Not its turn: it keeps (or takes) a ticket in every line, and hears the furthest position.
  local position, window, interval = -1, 1, 0
  local turnAt = -math.huge
  for i = 1, n do
    local k = ks[i]
    if k.T then
      if not k.ticket then
        if restore then
          -- Half a place ahead of the head: not one of the tickets counted by next and served.
          redis.call('ZADD', k.line, k.served - 0.5, holder)
        else
          redis.call('ZADD', k.line, k.next, holder)
          redis.call('HSET', k.state, 'next', k.next + 1)
        end
      end
      redis.call('PEXPIRE', k.line, 86400000)
      -- The caller times the job at this key's rate: the line's pace is at most that.
      local lineRate = lineRateAfter(k.lineRate, k.eff, k.next <= k.served)
      if lineRate ~= k.lineRate then redis.call('HSET', k.state, 'lineRate', lineRate) end
      -- The line whose turn comes last speaks for all.
      if k.position * k.T > turnAt then position, window, interval, turnAt = k.position, k.window, k.T, k.position * k.T end
    end
  end
  return {QUEUED, start - now, position, window, math.floor(interval * 1000), behind}
end

-- Slots taken at once: only for one fast key (under a millisecond apart) that is free now, with no
-- concurrency limit and nobody in its line ahead. The caller uses them at once rather than at their
-- times, early by up to (slots - 1) slots: a quarter of the burst kept in reserve at most.
local slots = 1
local only = ks[1]
if n == 1 and wantSlots > 1 and only.T and only.T < 1 and not only.conc and not only.ticket and not only.probe and only.s == now then
  slots = math.max(1, math.min(wantSlots, math.floor((only.burst - clientBurst(only.burst)) / 4)))
end
local leased = 0
local probes = 0
local slack = 3600000
local interval = 0
for i = 1, n do
  local k = ks[i]
  if k.T then
    k.tat = math.max(k.tat, start) + slots * k.T
    if k.ticket and k.ticket == math.floor(k.ticket) and k.idle and k.position >= k.window then
      -- The head is gone (see the header): every ticket before this one stands half a place ahead
      -- of it, and it is the head. A half place's start does not move the line, so no ticket below
      -- the head is counted again (`served` may fall short of the starts, never pass `next`). At
      -- most MAX_PASSED a call, oldest first: a line of stale tickets is passed over a few calls.
      local passed = redis.call('ZRANGEBYSCORE', k.line, '-inf', '(' .. k.ticket, 'WITHSCORES', 'LIMIT', 0, MAX_PASSED)
      local head = k.ticket
      if #passed == 2 * MAX_PASSED then head = math.floor(tonumber(passed[#passed])) + 1 end
      for p = 1, #passed, 2 do
        redis.call('ZADD', k.line, head - 0.5, passed[p])
      end
      k.served = head
      k.servedMoved = true
    end
    if k.ticket then
      -- Its ticket is used, and the line moves up one place. One taken on a free slot from further
      -- back than the window moves it up too: a gap left by a job that is gone closes a place at a
      -- time, at most as fast as slots go unclaimed. A restored job's half place was never counted:
      -- counting its start would move the line on twice for one ticket, and over a day of missed
      -- slots leave `served` far past `next`, every newcomer at the head and nobody placed.
      redis.call('ZREM', k.line, holder)
      if k.ticket == math.floor(k.ticket) then
        k.served = k.served + 1
        k.servedMoved = true
      end
    end
    if k.slack < slack then slack = k.slack end
    if k.T > interval then interval = k.T end
  end
  if k.conc then
    redis.call('ZADD', k.leases, now + leaseMs, leaseId)
    redis.call('PEXPIRE', k.leases, leaseMs + 60000)
    leased = leased + 2 ^ (i - 1)
  end
  if k.probe then
    -- The probe is this start's until its report, or its lease (a worker that died) runs out.
    redis.call('HSET', k.state, 'probeUntil', start + leaseMs)
    probes = probes + 2 ^ (i - 1)
  end
end
-- Followers: booked as if each asked now, in turn (see the header).
local reply = {GO, start - now, leased, math.floor(slack), math.floor(interval), slots, probes, 0, behind}
local followers = tonumber(ARGV[9 + 5 * n] or '0')
local eligible = followers > 0 and slots == 1 and leased == 0 and probes == 0 and not restore
for i = 1, n do
  if not ks[i].T then eligible = false end
end
if eligible then
  -- Each follower's slot is at least one spacing after the one before it in the run: the burst a key
  -- keeps for starts that come at once is not handed out in a run (its starts are planned one by one).
  local previous = start
  for f = 1, followers do
    local follower = ARGV[9 + 5 * n + f]
    local at, ok = previous + interval, true
    for i = 1, n do
      local k = ks[i]
      local held = redis.call('ZSCORE', k.line, follower)
      local ticket = held and tonumber(held)
      -- A half place (a missed slot asked again) is not a follower's: it asks for itself.
      if not ticket or ticket ~= math.floor(ticket) then
        ok = false
        break
      end
      local s = firstFreeSlot(now, k.tat, k.burst, k.T, k.pausedUntil)
      if s > now and (ticket - k.served >= k.window or s - now > 2 * maxWait) then
        ok = false
        break
      end
      if s > at then at = s end
    end
    if not ok or at - now > 2 * maxWait then break end
    for i = 1, n do
      local k = ks[i]
      k.tat = math.max(k.tat, at) + k.T
      redis.call('ZREM', k.line, follower)
      k.served = k.served + 1
      k.servedMoved = true
    end
    reply[#reply + 1] = at - now
    previous = at
  end
end
for i = 1, n do
  local k = ks[i]
  if k.T then
    redis.call('HSET', k.state, 'tat', k.tat)
    if k.servedMoved then redis.call('HSET', k.state, 'served', k.served) end
  end
end
return reply
