-- What limit-acquire.lua answers; the same numbers as ACQUIRE_KIND in src/limits/acquire-call.ts.
local GO, QUEUED, BLOCKED, PAUSED, CIRCUIT_OPEN = 1, 2, 3, 4, 5
