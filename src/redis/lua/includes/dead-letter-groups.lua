-- Dead letters leave their group's counter (by `n`, default 1): lowered only where the group is
-- counted (a batch's counters may be gone with the batch: no negative counter is made, nor a key
-- without an expiry).
local function lowerGroup(key, field, n)
  if redis.call('HEXISTS', key, field) == 1 then redis.call('HINCRBY', key, field, -(n or 1)) end
end
