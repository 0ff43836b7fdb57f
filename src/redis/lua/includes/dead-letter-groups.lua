-- A dead letter leaves its group's counter: lowered only where the group is counted (a batch's
-- counters may be gone with the batch: no counter of -1 is made, nor a key without an expiry).
local function lowerGroup(key, field)
  if redis.call('HEXISTS', key, field) == 1 then redis.call('HINCRBY', key, field, -1) end
end
